"""The training loop: one run of one loss on one dataset, checkpointed and resumable.

Resume contract: everything a run needs to continue lives in ``checkpoint_dir/latest.pt`` (model,
optimizer, scheduler, amp's gradient scaler, loss state such as SogCLR's per-sample averages,
position in the epoch, RNG state and the log so far). The workflow keeps ``checkpoint_dir``
outside the rule's outputs, so a killed or failed job is rerun from there instead of from scratch;
only the final model and the log are outputs. The state is only resumed by the same run on the
same inputs: it records the settings and a fingerprint of the inputs (:func:`input_fingerprint`:
pairs, shards, negatives, hard pairs), and a state that differs in either is set aside as
``latest.pt.stale``. Once the final weights are written the state is retired to ``finished.pt``
(kept for inspection, never resumed), so a forced rerun trains from scratch.

On SIGTERM or SIGUSR1 (``training/preemption.py``) the run checkpoints after the step in flight
and raises ``TrainingPreempted``. A step is one optimizer update: with ``update_freq`` > 1
(gradient accumulation, ``training/accumulation.py``) no checkpoint falls between its
micro-batches, and a stop signal waits for the update in flight.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from clipflow.data.shards import PairsDataset
from clipflow.data.streaming import StreamingPairs
from clipflow.io import write_with
from clipflow.losses import LOSSES, ClipflowLoss, LossNeeds, build_loss
from clipflow.losses.distributed import average_gradients
from clipflow.losses.heads import EMATarget
from clipflow.models import ClipBundle, create_model, load_checkpoint, save_checkpoint
from clipflow.sampling.epochs import EpochBatches, build_run_sampler
from clipflow.sampling.samplers import BatchSampler
from clipflow.training import distributed
from clipflow.training.accumulation import UpdateMeter
from clipflow.training.config import TrainConfig, check_data_loader
from clipflow.training.extras import build_extras, dataset_options_for
from clipflow.training.precision import Precision
from clipflow.training.preemption import StopSignals, TrainingPreempted
from clipflow.training.schedule import cosine_with_warmup

log = logging.getLogger(__name__)
MAX_LOGIT_SCALE = 100.0  # open_clip clamps 1/τ at 100 (docs/algorithms.md notation)
LATEST = "latest.pt"
FINISHED = "finished.pt"
# Settings that change how a run executes, not what it computes: a resume may differ in them.
# Gradient checkpointing recomputes the same activations, so it is one of them.
EXECUTION_SETTINGS = (
    "threads",
    "device",
    "num_workers",
    "checkpoint_every_steps",
    "grad_checkpointing",
)


@dataclass(frozen=True)
class TrainOutputs:
    model_init: Path
    model_final: Path
    log_csv: Path
    log_jsonl: Path


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """open_clip_train's split: no weight decay on gains, biases, norms and the logit scale."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        exempt = param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
        (no_decay if exempt or "logit_scale" in name else decay).append(param)
    return [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": weight_decay},
    ]


def _model_checkpoint(model: torch.nn.Module, cfg: TrainConfig, epoch: int) -> dict[str, Any]:
    """open_clip's format: ``create_model_and_transforms(pretrained=path)`` loads it."""
    return {
        "state_dict": model.state_dict(),
        "model_name": cfg.model,
        "epoch": epoch,
        "loss": cfg.loss,
    }


def _write_logs(rows: list[dict[str, Any]], outputs: TrainOutputs) -> None:
    frame = pd.DataFrame(rows)
    write_with(
        outputs.log_csv, lambda tmp: frame.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL)
    )
    write_with(
        outputs.log_jsonl, lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    )


def _settings(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg`` as the checkpoint stores it (JSON types: tuples become lists, as when read back)."""
    return json.loads(json.dumps(asdict(cfg)))


def _agreed_signal(received: int | None, ranks: distributed.Distributed) -> int | None:
    """A stop signal any rank received, seen by all ranks at the same step (else the ranks'
    collectives would part ways: one checkpointing, another waiting in the next step)."""
    if ranks.world_size == 1:
        return received
    flag = torch.tensor([received or 0])
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return int(flag) or None


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _table_digest(table: pd.DataFrame) -> str:
    values = pd.util.hash_pandas_object(table, index=False).to_numpy()
    return _digest(",".join(map(str, table.columns)).encode(), values.tobytes())


def _file_digest(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def input_fingerprint(
    cfg: TrainConfig,
    metadata: pd.DataFrame,
    shards_dir: str | Path,
    negatives: pd.DataFrame | None,
) -> dict[str, str]:
    """Digests of what a run trains on, by input: the pairs table, its shards (name, size and
    modification time: a re-download rewrites them), the negatives and the hard-pair file's
    bytes. The settings are compared separately (``config``)."""
    shards = sorted(set(metadata["shard"]))
    stats = [(name, os.stat(Path(shards_dir) / name)) for name in shards]
    fingerprint = {
        "pairs": _table_digest(metadata),
        "shards": _digest(
            *(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode() for name, st in stats)
        ),
        "negatives": "none" if negatives is None else _table_digest(negatives),
    }
    hard_pairs = cfg.sampler_params.get("hard_pairs")
    fingerprint["hard_pairs"] = "none" if hard_pairs is None else _file_digest(hard_pairs)
    return fingerprint


def _resumable_state(
    latest: Path,
    cfg: TrainConfig,
    inputs: dict[str, str],
    device: torch.device,
    is_main: bool,
) -> dict | None:
    """The checkpoint to resume from, if ``latest`` exists and was written by the same settings
    on the same inputs (``inputs``, :func:`input_fingerprint`).

    Any other checkpoint (the config or an input changed, so the workflow reruns the job; or one
    from before inputs were fingerprinted) is kept beside it as ``latest.pt.stale`` and the run
    starts over.
    """
    if not latest.exists():
        return None
    state = load_checkpoint(latest, map_location=device)
    # a setting added to TrainConfig after the checkpoint was written had its default then
    saved = {**_settings(TrainConfig()), **state.get("config", {})}
    saved = {k: v for k, v in saved.items() if k not in EXECUTION_SETTINGS}
    current = {k: v for k, v in _settings(cfg).items() if k not in EXECUTION_SETTINGS}
    saved_inputs = state.get("inputs", {})
    changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
    changed += sorted(f"input {k}" for k in inputs if saved_inputs.get(k) != inputs[k])
    if not changed:
        return state
    stale = latest.with_name(latest.name + ".stale")
    if is_main:
        latest.replace(stale)
    log.warning("%s differs in %s: moved to %s, starting over", latest, ", ".join(changed), stale)
    return None


def train(
    cfg: TrainConfig,
    metadata: pd.DataFrame,
    shards_dir: str | Path,
    checkpoint_dir: str | Path,
    outputs: TrainOutputs,
    negatives: pd.DataFrame | None = None,
    on_preempted: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` on the pairs of ``metadata``, resuming from ``checkpoint_dir`` if possible.

    Under ``torchrun`` or ``srun`` with several processes, each rank trains on its share of every
    step's batch (``training/distributed.py``); the losses see the gathered global batch, and
    only rank 0 writes files. ``on_preempted(signum)`` runs on rank 0 after a stop signal's
    checkpoint is written, while the other ranks wait (e.g. to requeue the SLURM job).
    """
    torch.set_num_threads(cfg.threads)
    checkpoint_dir = Path(checkpoint_dir)
    ranks = distributed.setup(cfg.device)
    try:
        run = _Run(cfg, metadata, shards_dir, checkpoint_dir, outputs, negatives, ranks)
        return run.train(on_preempted)
    finally:
        if ranks.initialised_here:
            torch.distributed.destroy_process_group()


def _build_loss(
    cfg: TrainConfig, metadata: pd.DataFrame, bundle: ClipBundle, device: torch.device
) -> ClipflowLoss:
    """``cfg.loss`` with the constructor arguments its class needs filled from the run."""
    loss_params = dict(cfg.loss_params)
    build_needs = LOSSES.get(cfg.loss).needs
    if build_needs.dataset_size:
        # per-sample state (SogCLR family) is indexed by url index, which runs 0..N-1
        loss_params.setdefault("num_samples", int(metadata["index"].max()) + 1)
    if build_needs.embed_dim:  # projector heads (CL2L, SSL variants) take the towers' width
        with torch.no_grad():
            width = bundle.model.encode_text(bundle.tokenizer(["a"]).to(device)).shape[-1]
        loss_params.setdefault("embed_dim", int(width))
    return build_loss(cfg.loss, **loss_params).to(device)


@dataclass
class _RunData:
    """Where a run's batches come from: a stream of the shards, or a dataset and its sampler."""

    batches_per_epoch: int
    stream: StreamingPairs | None = None
    dataset: PairsDataset | None = None
    sampler: BatchSampler | None = None


def _build_data(
    cfg: TrainConfig,
    metadata: pd.DataFrame,
    shards_dir: str | Path,
    negatives: pd.DataFrame | None,
    bundle: ClipBundle,
    needs: LossNeeds,
    ranks: distributed.Distributed,
) -> _RunData:
    data_options: dict[str, Any] = dataset_options_for(needs)
    if needs.negatives and negatives is None:
        raise ValueError(f"loss {cfg.loss} needs negatives: set `negatives: true` for this run")
    check_data_loader(cfg)
    dataset_args = (metadata, shards_dir, bundle.preprocess_train, bundle.tokenizer)
    if needs.negatives:
        data_options["negatives"] = negatives
    if cfg.data_loader == "streaming":  # random batches streamed from the shards
        stream = StreamingPairs(
            *dataset_args,
            **data_options,
            batch_size=cfg.batch_size,
            num_samples=cfg.train_num_samples,
            seed=cfg.seed,
            rank=ranks.rank,
            world_size=ranks.world_size,
            resampled=cfg.dataset_resampled,
            shuffle_buffer=cfg.shuffle_buffer,
        )
        return _RunData(stream.batches_per_epoch, stream=stream)
    dataset = PairsDataset(*dataset_args, **data_options)
    sampler = build_run_sampler(cfg, dataset, ranks.rank, ranks.world_size)
    return _RunData(len(sampler), dataset=dataset, sampler=sampler)


def _micro_batches_per_epoch(cfg: TrainConfig, batches_per_epoch: int) -> int:
    """A step is one update of update_freq of the sampler's batches (micro-batches); batches
    that cannot fill an update at an epoch's end are left out, as clip-rocket's schedule does."""
    if not 1 <= cfg.update_freq <= batches_per_epoch:
        raise ValueError(
            f"update_freq: {cfg.update_freq} is not in [1, {batches_per_epoch}] (the batches of "
            f"{cfg.batch_size} per epoch)"
        )
    return batches_per_epoch // cfg.update_freq * cfg.update_freq


def _build_optimizer(
    cfg: TrainConfig, model: torch.nn.Module, loss_fn: ClipflowLoss
) -> torch.optim.Optimizer:
    parameters = _parameter_groups(model, cfg.weight_decay)
    if len(loss_fn.heads):
        parameters.append(
            {"params": list(loss_fn.heads.parameters()), "weight_decay": cfg.weight_decay}
        )
    return torch.optim.AdamW(parameters, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)


class _Run:
    """One run's training state and the named steps of its loop (``train`` builds and runs it)."""

    def __init__(
        self,
        cfg: TrainConfig,
        metadata: pd.DataFrame,
        shards_dir: str | Path,
        checkpoint_dir: Path,
        outputs: TrainOutputs,
        negatives: pd.DataFrame | None,
        ranks: distributed.Distributed,
    ) -> None:
        self.cfg, self.ranks, self.outputs, self.checkpoint_dir = (
            cfg,
            ranks,
            outputs,
            checkpoint_dir,
        )
        device = torch.device(cfg.device)
        if device.type == "cuda" and ranks.world_size > 1:
            device = torch.device("cuda", ranks.local_rank)
        self.device = device
        self.precision = Precision(cfg.precision, device)
        self.bundle = create_model(cfg.model, cfg.pretrained, device=device, seed=cfg.seed)
        self.model = self.bundle.model
        self.model.set_grad_checkpointing(cfg.grad_checkpointing)
        if ranks.is_main:  # the starting point (random or pretrained) benchmarks compare to
            save_checkpoint(_model_checkpoint(self.model, cfg, epoch=0), outputs.model_init)
        self.loss_fn = _build_loss(cfg, metadata, self.bundle, device)
        self.data = _build_data(
            cfg, metadata, shards_dir, negatives, self.bundle, self.loss_fn.needs, ranks
        )
        # BYOLIP's momentum target of the towers (its projectors' target lives in the loss)
        momentum = self.loss_fn.needs.momentum_target
        self.target = EMATarget(self.model, momentum) if momentum is not None else None
        self.micro_batches = _micro_batches_per_epoch(cfg, self.data.batches_per_epoch)
        total_steps = self.micro_batches // cfg.update_freq * cfg.epochs
        self.optimizer = _build_optimizer(cfg, self.model, self.loss_fn)
        self.scheduler = cosine_with_warmup(self.optimizer, cfg.warmup_steps, total_steps)
        self.epoch, self.step_in_epoch, self.rows = 0, 0, []
        self.batches: list[list[int]] = []
        self.resumed_batches: list[list[int]] | None = None
        self.latest = checkpoint_dir / LATEST
        self.inputs = input_fingerprint(cfg, metadata, shards_dir, negatives)

    def resume_or_seed(self) -> bool:
        """Load the resumable state of ``checkpoint_dir`` if there is one, else seed the RNGs;
        whether it resumed."""
        cfg, ranks = self.cfg, self.ranks
        state = _resumable_state(self.latest, cfg, self.inputs, self.device, ranks.is_main)
        if state is None:
            torch.manual_seed(cfg.seed)
            random.seed(cfg.seed)
            return False
        self.model.load_state_dict(state["model"])
        self.loss_fn.load_state_dict(state["loss"])
        if self.target is not None:
            self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.precision.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.rows = state["log"]
        if len(state["ranks"]) != ranks.world_size:
            raise ValueError(
                f"{self.latest}: written by {len(state['ranks'])} process(es), resumed with "
                f"{ranks.world_size}; resume with the same number"
            )
        own = state["ranks"][ranks.rank]
        if self.step_in_epoch:
            self.resumed_batches = own["epoch_batches"].tolist()
        torch.set_rng_state(own["torch_rng"])
        random.setstate(own["python_rng"])
        log.info("resumed from %s at epoch %d step %d", self.latest, self.epoch, self.step_in_epoch)
        return True

    def save_state(self) -> None:
        # per rank: its batches (mid-epoch, the rest of the epoch is replayed from them,
        # sampling/epochs.py) and its RNG streams (each rank augments its own samples)
        per_rank = distributed.gather_objects(
            {
                "epoch_batches": (
                    torch.tensor(self.batches) if self.step_in_epoch else torch.empty(0)
                ),
                "torch_rng": torch.get_rng_state(),
                "python_rng": random.getstate(),
            },
            self.ranks,
        )
        if not self.ranks.is_main:
            return
        save_checkpoint(
            {
                "model": self.model.state_dict(),
                "loss": self.loss_fn.state_dict(),
                "target": self.target.state_dict() if self.target is not None else {},
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.precision.scaler.state_dict(),
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "ranks": per_rank,
                "log": self.rows,
                "config": _settings(self.cfg),
                "inputs": self.inputs,
            },
            self.latest,
        )

    def epoch_loader(self, epoch_batches: EpochBatches | None) -> Iterable[dict[str, Any]]:
        """The rest of the current epoch's micro-batches, from ``step_in_epoch`` on."""
        cfg, data = self.cfg, self.data
        # Its own generator: creating the iterator must not draw from the global RNG, or a
        # run resumed mid-epoch would augment differently from an unbroken one.
        generator = torch.Generator().manual_seed(cfg.seed + self.epoch)
        if data.stream is not None:  # mid-epoch, the epoch's stream restarts (data/streaming.py)
            left = self.micro_batches - self.step_in_epoch * cfg.update_freq
            return data.stream.loader(self.epoch, left, cfg.num_workers, generator)
        assert epoch_batches is not None
        self.batches = self.resumed_batches or epoch_batches(self.epoch)
        self.resumed_batches = None
        return torch.utils.data.DataLoader(
            data.dataset,
            batch_sampler=self.batches[self.step_in_epoch * cfg.update_freq : self.micro_batches],
            num_workers=cfg.num_workers,
            generator=generator,
        )

    def backward_micro_batch(self, batch: dict[str, Any], update: UpdateMeter) -> torch.Tensor:
        """Forward and backward of one micro-batch, added to ``update``; the logit scale used."""
        started = time.perf_counter()
        images = batch["image"].to(self.device, non_blocking=True)
        texts = batch["text"].to(self.device, non_blocking=True)
        with self.precision.autocast():
            out = self.model(images, texts)
            image_features, text_features, logit_scale = out[0], out[1], out[2]
            extras = build_extras(self.loss_fn, self.model, batch, self.device, self.target)
            terms = self.loss_fn(image_features, text_features, logit_scale, **extras)
            total = sum(terms.values())
        # Each rank's loss is the global batch's; the gather scales its own shard's gradient by
        # the world size (losses/distributed.py), so the ranks' mean gradient is the global
        # batch's for the towers, the loss heads and logit_scale alike, as in one process;
        # divided by update_freq, the micro-batches' gradients add up to their mean
        # (training/accumulation.py). Averaged over ranks by hand, once per update, rather than
        # by DistributedDataParallel, whose hooks expect one forward per step: CL2L's views and
        # BYOLIP's targets run more.
        self.precision.scaler.scale(total / self.cfg.update_freq).backward()
        update.add(total, terms, len(images), time.perf_counter() - started)
        return logit_scale

    def apply_update(self, update: UpdateMeter, logit_scale: torch.Tensor) -> None:
        """The optimizer step of the accumulated micro-batches, and its row of the log."""
        started = time.perf_counter()
        if self.ranks.world_size > 1:
            average_gradients(self.model)
            average_gradients(self.loss_fn.heads)
        scaler = self.precision.scaler
        scaler.step(self.optimizer)  # unscales first; skips a step with inf/nan
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.loss_fn.on_train_step_end()
        if self.target is not None:
            self.target.update(self.model)
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, torch.log(torch.tensor(MAX_LOGIT_SCALE)))
        self.step_in_epoch += 1
        self.rows.append(
            {
                "epoch": self.epoch + 1,
                "step": len(self.rows) + 1,
                "lr": self.scheduler.get_last_lr()[0],
                **update.log_row(self.ranks.world_size, time.perf_counter() - started),
                "logit_scale": logit_scale.item(),
            }
        )

    def stop_if_signalled(
        self, stop: StopSignals, on_preempted: Callable[[int], object] | None
    ) -> None:
        """Checkpoint and raise ``TrainingPreempted`` when any rank received a stop signal."""
        received = _agreed_signal(stop.received, self.ranks)
        if received is None:
            return
        self.save_state()
        if self.ranks.is_main and on_preempted is not None:
            on_preempted(received)
        # under srun --kill-on-bad-exit, a rank that exits first would kill rank 0 before its
        # checkpoint (or requeue) is done
        distributed.barrier(self.ranks)
        raise TrainingPreempted(received, self.epoch, self.step_in_epoch)

    def train_epoch(
        self,
        epoch_batches: EpochBatches | None,
        stop: StopSignals,
        on_preempted: Callable[[int], object] | None,
    ) -> None:
        cfg = self.cfg
        progress = tqdm(
            self.epoch_loader(epoch_batches),
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            initial=self.step_in_epoch * cfg.update_freq,
            total=self.micro_batches,
            mininterval=5.0,
            disable=not self.ranks.is_main,  # one bar per run, not one per rank
        )
        update = UpdateMeter()
        for batch in progress:
            logit_scale = self.backward_micro_batch(batch, update)
            if update.micro_batches < cfg.update_freq:
                continue
            self.apply_update(update, logit_scale)
            update = UpdateMeter()
            progress.set_postfix(loss=f"{self.rows[-1]['loss']:.3f}", refresh=False)
            self.stop_if_signalled(stop, on_preempted)
            every = cfg.checkpoint_every_steps
            if every and self.step_in_epoch % every == 0:
                self.save_state()
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.save_state()
        if self.ranks.is_main:
            log.info("epoch %d/%d done, loss %.4f", self.epoch, cfg.epochs, self.rows[-1]["loss"])

    def train(self, on_preempted: Callable[[int], object] | None) -> dict[str, Any]:
        """Resume or start, train the remaining epochs, and finish."""
        resumed = self.resume_or_seed()
        epoch_batches = None
        if self.data.sampler is not None:
            epoch_batches = EpochBatches(
                self.data.sampler,
                self.bundle,
                self.data.dataset,
                self.device,
                self.checkpoint_dir,
                resumed,
            )
        self.model.train()
        with StopSignals() as stop:
            while self.epoch < self.cfg.epochs:
                self.train_epoch(epoch_batches, stop, on_preempted)
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Write the final model and the log, and retire the resumable state."""
        if self.ranks.is_main:
            final = _model_checkpoint(self.model, self.cfg, epoch=self.cfg.epochs)
            save_checkpoint(final, self.outputs.model_final)
            _write_logs(self.rows, self.outputs)
            # a rerun of a finished run starts over
            self.latest.replace(self.checkpoint_dir / FINISHED)
        rows = self.rows
        return {"steps": len(rows), "final_loss": rows[-1]["loss"] if rows else None}

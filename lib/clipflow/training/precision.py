"""A run's arithmetic precision: fp32, bf16 autocast, or fp16 autocast with loss scaling (amp).

The names follow open_clip_train's ``--precision`` (``open_clip_train/precision.py``: ``amp`` is
fp16 autocast with a ``GradScaler``, clip-rocket's default too), except that bf16 autocast is
``bf16`` rather than ``amp_bf16``.
Only the forward pass and the loss run under autocast; parameters, gradients and optimizer
state stay fp32. ``amp`` needs CUDA: on a CPU it fails instead of silently running something
else (``bf16`` is the CPU choice, and the config should say what actually ran).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

# name -> autocast dtype (None: no autocast)
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "amp": torch.float16,
}


class Precision:
    """Autocast context and gradient scaler of one run on ``device``.

    ``scaler`` is always a ``GradScaler``; it is enabled only for ``amp`` (fp16 gradients
    underflow without loss scaling, bf16 has fp32's exponent range and needs none), and a
    disabled one passes ``scale``/``step``/``update`` straight through, so the loop has one path.
    Its ``state_dict()`` (empty when disabled) belongs in the checkpoint. With several ranks the
    gradients are averaged before ``scaler.step``, so an inf on one rank reaches every rank and
    all of them skip that step and halve the scale together.
    """

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in AUTOCAST_DTYPES:
            raise ValueError(f"precision: {name!r} is not one of {', '.join(AUTOCAST_DTYPES)}")
        if name == "amp" and device.type != "cuda":
            raise ValueError(
                f"precision: amp (fp16 autocast + GradScaler) needs a CUDA device, not "
                f"{device}; use bf16 on a CPU"
            )
        self.name, self.device_type, self.dtype = name, device.type, AUTOCAST_DTYPES[name]
        self.scaler = torch.amp.GradScaler("cuda", enabled=name == "amp")

    def autocast(self) -> AbstractContextManager:
        """The context to run the forward pass and the loss in."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

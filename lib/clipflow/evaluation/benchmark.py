"""The benchmark registry, the data-error type and helpers every benchmark reader shares.

A benchmark is a function ``run(encoder, root, **options) -> {metric: value}`` plus the
CLIP_benchmark task name its result JSON carries. A benchmark made of parts (SugarCrepe's
subsets, VALSE's pieces, VL-CheckList's files) returns :class:`Scores`, which also says which
parts it scored and any counts (VL-CheckList's ties) that are not metrics. Options are keyword
parameters of ``run`` with defaults, so the set of valid options is read off its signature;
aliases (Flickr next to COCO) are ``functools.partial`` of the same function with other
defaults.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from clipflow.registry import Registry


class BenchmarkDataError(ValueError):
    """Benchmark data on disk is missing or malformed; the message names the file and field."""

    def __init__(self, path: str | Path, field: str, problem: str) -> None:
        super().__init__(f"{path}: {field}: {problem}")


class Scores(dict[str, float]):
    """Metrics (the dict itself), the ``parts`` scored and ``counts`` that are not metrics:
    the result record carries both beside its ``metrics``, so no table treats them as one."""

    def __init__(
        self,
        metrics: Mapping[str, float],
        *,
        parts: Sequence[str] = (),
        counts: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(metrics)
        self.parts = list(parts)
        self.counts = dict(counts or {})


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: its CLIP_benchmark task name and the function that scores it."""

    task: str
    run: Callable[..., dict[str, float]]

    def option_names(self) -> list[str]:
        """Options ``run`` accepts beyond ``(encoder, root)``."""
        parameters = list(inspect.signature(self.run).parameters.values())[2:]
        return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def get_benchmark(name: str) -> Benchmark:
    """The benchmark registered as ``name``; unknown names fail listing the known ones."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS.names())}")
    return BENCHMARKS.get(name)


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``key=value`` strings (from a command line) into options.

    A value that parses as JSON becomes that (``amp=true``, ``recall_k=[1,5]``); anything else
    stays a string (``split=test``). List options also accept comma-separated strings.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"option {pair!r} is not of the form key=value")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def as_list(value: Sequence[Any] | str) -> list[Any]:
    """A list option given either as a sequence or as a comma-separated string."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return list(value)


def parts_to_score(
    root: Path,
    requested: Sequence[str] | str | None,
    files: Mapping[str, str],
    benchmark: str,
    option: str,
) -> list[str]:
    """The parts of a benchmark to score (SugarCrepe's subsets, VALSE's pieces, VL-CheckList's
    files): those asked for in ``option``, else all of them (``files``: part -> file under
    ``root``). A part to score whose file is missing fails naming every missing file, so a
    mean is never silently taken over fewer parts than the benchmark defines; so does an
    unknown name."""
    if requested is None:
        names = list(files)
    else:
        names = as_list(requested)
        unknown = sorted(set(names) - set(files))
        if unknown or not names:
            raise ValueError(
                f"{benchmark} {option} {unknown or names} unknown; known: {list(files)}"
            )
    missing = [files[name] for name in names if not (root / files[name]).is_file()]
    if missing:
        hint = "" if requested is not None else f"; to score fewer, list them in {option}="
        raise BenchmarkDataError(root, option, f"missing {missing}{hint}")
    return names


def read_json(path: Path) -> Any:
    """Load a JSON annotation file; a missing or unparsable one fails naming the file."""
    if not path.is_file():
        raise BenchmarkDataError(path, "file", "not found")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise BenchmarkDataError(
            path, f"line {error.lineno}", f"invalid JSON ({error.msg})"
        ) from None


def require_str(record: Any, key: str, path: Path, where: str) -> str:
    """``record[key]`` when it is a non-empty string, else an error naming ``where.key``."""
    if not isinstance(record, dict):
        raise BenchmarkDataError(path, where, f"expected an object, got {type(record).__name__}")
    value = record.get(key)
    if not isinstance(value, str) or not value:
        problem = "missing" if key not in record else f"expected a non-empty string, got {value!r}"
        raise BenchmarkDataError(path, f"{where}.{key}", problem)
    return value


def check_images(images: Sequence[Path], fields: Sequence[str], source: Path) -> None:
    """Fail before any encoding when an image a record points to does not exist."""
    for image, field in zip(images, fields, strict=True):
        if not image.is_file():
            raise BenchmarkDataError(source, field, f"image file not found: {image}")


def packaged_lines(name: str) -> list[str]:
    """Non-empty lines of a list shipped in ``clipflow/evaluation/data`` (templates, ARO's
    symmetric relations)."""
    text = resources.files("clipflow.evaluation").joinpath("data", name).read_text()
    return [line for line in text.splitlines() if line.strip()]

"""Let torchvision's pure-Python parts import beside a torch build its compiled ops do not match.

The preinstalled CPU wheel of torch 2.13 cannot load the ``_C`` extension of PyPI's torchvision 0.28
(it is built for the CUDA wheel, not the +cpu one), and torchvision then fails at import on
``operator torchvision::nms does not exist``. open_clip needs torchvision only for transforms and
``FrozenBatchNorm2d``, so declaring the two op schemas is enough.
``envs/install.sh`` puts a ``.pth`` hook into the venv that calls :func:`install` at start-up:
nothing is imported until some
code imports torchvision, and nothing is declared where torchvision's own extension loads.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_libraries: list = []  # keeps torch.library.Library objects alive (they unregister when collected)


def _declare_missing_ops(package_dir: Path) -> None:
    import torch

    extension = next(package_dir.glob("_C*.so"), None)
    if extension is not None:
        try:
            torch.ops.load_library(str(extension))
            return
        except (OSError, RuntimeError):
            pass
    library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        library.define(schema)
    _libraries.append(library)


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.submodule_search_locations:
            _declare_missing_ops(Path(next(iter(spec.submodule_search_locations))))
        return spec


def install() -> None:
    """Arm the hook once per interpreter; a no-op if torchvision is already imported."""
    if "torchvision" in sys.modules or any(
        isinstance(f, _TorchvisionFinder) for f in sys.meta_path
    ):
        return
    sys.meta_path.insert(0, _TorchvisionFinder())

"""clipflow: the library behind the clipflow Snakemake workflow (contrastive image-text training).

Stages talk through files named by the workflow rules; each subpackage is one stage:
``data``, ``negatives``, ``mining``, ``models``, ``losses``, ``training``, ``evaluation``,
``reporting``.
"""

from clipflow._torchvision_ops import install as _install_torchvision_hook

_install_torchvision_hook()

__version__ = "0.1.0"

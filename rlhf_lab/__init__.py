"""rlhf_lab: the companion package of the rlhf-lab course.

Importing this package is cheap on purpose: heavy libraries (torch, transformers,
trl, peft) are imported by the submodules that need them, so `rlhf-lab --help`
and the notebooks' first cell answer at once.
"""

__version__ = "0.1.0"

"""rlhf_lab: the companion package of the rlhf-lab course.

Importing this package is cheap on purpose: heavy libraries (torch, transformers,
trl, peft) are imported by the submodules that need them, so `rlhf-lab --help`
and the notebooks' first cell answer at once.
"""

import logging

__version__ = "0.1.0"

# bitsandbytes tells every CPU run, as it is imported, that an optional kernel package is missing:
# quiet it before any submodule (or a notebook's next import) loads it.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

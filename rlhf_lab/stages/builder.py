"""How every stage builds a missing artifact: the one door into the cache.

Each stage's ``get_*_dir(profile, settings, builder)`` names what it needs (its settings, the
upstream artifacts in its key) and hands ``builder.build`` the training function; the builder
decides where and how it runs (here, in this process; ``rlhf_lab.launch.DistributedBuilder``:
on every process of an ``accelerate launch``).
"""

from __future__ import annotations

from pathlib import Path

from .. import cache


class Builder:
    """How a ``get_*_dir`` function builds a missing artifact: here, in this one process, into
    the cache. The chain between the stages (SFT before the reward model, ...) is written once,
    in the ``get_*_dir`` functions; ``rlhf_lab.launch.DistributedBuilder`` runs the same chain
    on every process of an ``accelerate launch``."""

    main = True  # this process saves, prints and measures (here the only one)
    accelerator = None  # PPO's data parallelism (launch)

    def __init__(self, progress: bool = True):
        self.progress = progress

    def build(self, kind: str, settings: dict, train, code: str | None = None) -> Path:
        """The artifact's directory; ``train(out_dir)`` writes it when it is missing. ``code``:
        the row of ``cache.STAGE_CODE`` whose code builds it (default: ``kind``'s)."""
        return cache.build_cached(kind, settings, train, code=code)

    def per_process(self, settings, fields=("batch_size",)):
        """The settings one process trains with: here the global batch."""
        return settings

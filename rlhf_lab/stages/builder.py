"""How every stage builds a missing artifact: the one door into the cache.

Each stage's ``get_*_dir(profile, settings, builder)`` names what it needs (its settings, the
upstream artifacts in its key) and hands ``builder.build`` the training function; the builder
decides where and how it runs: :class:`Builder` in this process, :class:`DistributedBuilder` on
every process of an ``accelerate launch`` (``rlhf_lab.launch`` starts it). Both live here, below
the stages that use them.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from .. import cache
from ..config import ConfigError


class Builder:
    """How a ``get_*_dir`` function builds a missing artifact: here, in this one process, into
    the cache. The chain between the stages (SFT before the reward model, ...) is written once,
    in the ``get_*_dir`` functions; :class:`DistributedBuilder` runs the same chain
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


def per_process(settings, num_processes: int, fields=("batch_size",)):
    """``settings`` with each batch size divided by the number of processes (it must divide)."""
    if num_processes == 1:
        return settings
    changes = {}
    for name in fields:
        value = getattr(settings, name)
        if value % num_processes:
            raise ConfigError(f"{name}={value} (the global batch) does not split over {num_processes} processes: "
                              f"use a multiple of {num_processes}, e.g. {value + num_processes - value % num_processes}.")
        changes[name] = value // num_processes
    try:
        return dataclasses.replace(settings, **changes)
    except ValueError as error:  # PPOSettings checks batch_size against samples_per_prompt
        raise ConfigError(f"Per process ({num_processes} processes): {error}") from None


def distributed_build(state, target: Path, settings: dict, train, force: bool = False) -> Path:
    """The artifact at ``target``; if it is missing (or ``force``), every process runs
    ``train(out_dir)`` together: process 0 with a temporary directory that is renamed into
    place at the end, the others with a scratch directory that is deleted."""
    exists = not force and cache.is_built(target, warn=state.is_main_process)  # a broken entry is rebuilt
    state.wait_for_everyone()  # every process has looked before anyone can write
    if exists:
        return target
    if state.is_main_process:
        cache.build_at(target, settings, train, force=True)  # the others train now too: no second look
    else:
        scratch = Path(tempfile.mkdtemp(prefix="rlhf_lab_rank"))
        try:
            train(scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    state.wait_for_everyone()
    return target


class DistributedBuilder(Builder):
    """The stages' chain of ``get_*_dir`` functions, built on every process of this launch: each
    missing artifact is trained by all of them together (:func:`distributed_build`), each process
    on its share of the global batch; ``out`` (if given) receives the final stage instead of the cache."""

    def __init__(self, state, final_stage: str, out: Path | None = None, cpu: bool = False):
        super().__init__(progress=state.is_main_process)
        self.state, self.final_stage, self.out, self.cpu = state, final_stage, out, cpu
        self.main = state.is_main_process
        self._accelerator = None

    @property
    def accelerator(self):
        if self._accelerator is None:  # made only when PPO asks (the TRL stages bring their own)
            from accelerate import Accelerator

            self._accelerator = Accelerator(cpu=self.cpu)
        return self._accelerator

    def build(self, kind: str, settings: dict, train, code: str | None = None) -> Path:
        final = kind == self.final_stage and self.out is not None
        target = Path(self.out) if final else cache.entry_dir(kind, settings, code)
        # the code's fingerprint in the settings, as build_cached adds it
        return distributed_build(self.state, target, cache.entry_settings(kind, settings, code), train, force=final)

    def per_process(self, settings, fields=("batch_size",)):
        return per_process(settings, self.state.num_processes, fields)

"""Train one stage on one process or on several (``accelerate launch``): data parallel.

Every process runs this same code (``rlhf-lab train STAGE``)::

    rlhf-lab train sft --profile gpu                                   # one GPU
    accelerate launch --config_file accelerate/ddp.yaml --num_processes 4 \\
        -m rlhf_lab.cli train sft --profile gpu                        # four GPUs

- **The batch size in the settings is the global batch.** With N processes each one takes
  ``batch_size / N`` examples per step (PPO: samples ``batch_size / N`` responses to its own
  prompts), and the gradients are averaged over the processes, so a run on four GPUs makes
  the same optimizer steps as a run on one: SFT, the reward model and DPO land on the same
  weights (up to float rounding; ``tests/test_accelerate.py`` checks it on two CPU
  processes), and the result goes into the same cache entry the notebooks load.
- **Prerequisites** (the SFT model before the reward model, ...) come from the cache; a
  missing one is trained first, on all the processes too. The tiny profile's base model is
  pretrained by process 0 alone while the others wait.
- **Process 0 saves**; the others train the same weights and throw their copy away.
- The TRL stages (SFT, reward model, DPO) run under any accelerate configuration (DDP,
  DeepSpeed ZeRO, FSDP); the course's own PPO trainer runs data parallel (DDP-style).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import types
import typing
from pathlib import Path

from . import cache
from .config import ConfigError, Profile
from .stages.builder import Builder
from .stages.dpo import DPOSettings, get_dpo_model_dir
from .stages.ppo import default_ppo_config, get_ppo_model_dir
from .stages.pretrain import get_base_model_dir
from .stages.reward import RewardSettings, get_reward_model_dir
from .stages.sft import SFTSettings, get_sft_model_dir

# Each stage's get_*_dir builds what it needs first (the chain is written there, once).
STAGE_DIRS = {"sft": get_sft_model_dir, "reward": get_reward_model_dir, "dpo": get_dpo_model_dir,
              "ppo": get_ppo_model_dir}
STAGES = tuple(STAGE_DIRS)


def parse_assignments(assignments, target, what: str) -> dict:
    """``["epochs=2", "batch_size=8"]`` -> ``{"epochs": 2.0, "batch_size": 8}``, each value
    converted to the type of the field of the dataclass ``target`` (an instance)."""
    fields = {f.name: f for f in dataclasses.fields(target)}
    hints = typing.get_type_hints(type(target))
    values = {}
    for assignment in assignments or []:
        key, sep, text = assignment.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise ConfigError(f"{assignment!r} is not a setting of {what}: use KEY=VALUE with KEY one of "
                              f"{', '.join(fields)}.")
        kind = hints[key]
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:  # e.g. int | None
            if text.lower() == "none":
                values[key] = None
                continue
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                values[key] = text.lower() in ("true", "1", "yes")
            elif kind in (int, float, str):
                values[key] = kind(text)
            else:
                raise ConfigError(f"{what}.{key} cannot be set from the command line (it is a {kind}).")
        except ValueError:
            raise ConfigError(f"{what}.{key}={text!r}: expected {'an' if kind is int else 'a'} {kind.__name__}.") from None
    return values


def default_settings(stage: str, profile: Profile):
    """The settings dataclass a stage trains with by default (the global batch)."""
    defaults = {"sft": SFTSettings, "reward": RewardSettings, "dpo": DPOSettings,
                "ppo": lambda: default_ppo_config(profile)}
    if stage not in defaults:
        raise ConfigError(f"Unknown stage {stage!r}: use one of {', '.join(STAGES)}.")
    return defaults[stage]()


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
    except ValueError as error:  # PPOConfig checks batch_size against samples_per_prompt
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


def train_stage(stage: str, profile: Profile, settings=None, out: Path | None = None) -> Path:
    """Train ``stage`` (and any missing prerequisite) on every process of this launch; returns
    the directory of the trained artifact (the cache entry, or ``out``)."""
    from accelerate import PartialState

    if stage not in STAGES:
        raise ConfigError(f"Unknown stage {stage!r}: use one of {', '.join(STAGES)}.")
    state = PartialState(cpu=profile.device == "cpu")
    n, main = state.num_processes, state.is_main_process
    settings = settings or default_settings(stage, profile)
    if out is not None and Path(out).exists() and any(Path(out).iterdir()):
        raise ConfigError(f"--out {out}: the directory is not empty; choose a new one (it is written atomically).")

    with state.main_process_first():  # the tiny base model: pretrained once, by process 0
        get_base_model_dir(profile, progress=main)
    started = time.perf_counter()
    builder = DistributedBuilder(state, stage, out, cpu=profile.device == "cpu")
    result = STAGE_DIRS[stage](profile, settings, builder=builder)
    if main:
        print(f"{stage}: {result} ({n} process{'es' if n > 1 else ''}, global batch {settings.batch_size}, "
              f"{time.perf_counter() - started:.0f} s)")
    return result

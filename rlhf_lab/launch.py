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
import time
import types
import typing
from pathlib import Path

from .config import ConfigError, Profile
from .stages.builder import DistributedBuilder
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

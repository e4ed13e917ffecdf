"""Stage 1: supervised fine-tuning (SFT) on the world's demonstrations, with TRL.

The base model is wrapped in a LoRA adapter and trained with assistant-only loss: the
prompt's tokens are context, only the answer's tokens are learned. The adapter is then
merged, so the SFT model is a plain model: the policy and the reference of later stages.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import cache, models
from ..config import Profile
from ..world import World
from ..world.demonstrators import HELPFUL_ONLY, Demonstrators
from .builder import Builder
from .common import (final_loss, loss_history, merge_lora_into_base,
                     run_trainer, schedule_arguments, trainer_arguments)
from .pretrain import base_model_path, get_base_model_dir, get_tokenizer


@dataclass(frozen=True)
class SFTSettings:
    epochs: float = 40.0  # passes over the demonstrations (few and short; fewer left most answers about the wrong subject)
    learning_rate: float = 3e-3  # LoRA tolerates (and tiny models need) a high rate
    batch_size: int = 16
    max_length: int = 96  # tokens per example (prompt + answer)
    demonstrators: Demonstrators = HELPFUL_ONLY  # who wrote the demonstrations (helpful-only by default)


def sft_cache_settings(profile: Profile, settings: SFTSettings) -> dict:
    return {"stage": "sft", **cache.lineage(base=base_model_path(profile)),
            "world": cache.world_fingerprint(profile.seed),
            "lora": asdict(models.LoraSettings.from_profile(profile)), "seed": profile.seed,
            "quantize_4bit": profile.quantize_4bit, **asdict(settings)}


def sft_model_path(profile: Profile, settings: SFTSettings | None = None) -> Path:
    """Where the SFT model is, built or not (a later stage's cache key names it; nothing trains)."""
    return cache.entry_dir("sft", sft_cache_settings(profile, settings or SFTSettings()))


def get_sft_model_dir(profile: Profile, settings: SFTSettings | None = None, progress: bool = True,
                      builder: Builder | None = None) -> Path:
    """The SFT model's directory, trained first if it is not in the cache (~1 min on CPU)."""
    settings = settings or SFTSettings()
    builder = builder or Builder(progress)
    get_base_model_dir(profile, progress=builder.progress)  # build the base first, with its own bar
    return builder.build("sft", sft_cache_settings(profile, settings),
                         lambda out: train_sft(profile, builder.per_process(settings), out, progress=builder.progress))


def load_sft_model(profile: Profile, settings: SFTSettings | None = None, trainable: bool = False,
                   progress: bool = True):
    """The SFT model (trained first if needed), as the profile loads it (4-bit on gpu).
    Returns (model, tokenizer)."""
    model = models.load_model(get_sft_model_dir(profile, settings, progress=progress),
                              quantize_4bit=profile.quantize_4bit, device=profile.device, trainable=trainable)
    return model, get_tokenizer(profile)


def train_sft(profile: Profile, settings: SFTSettings, out_dir: Path, progress: bool = True) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(profile.seed)  # the LoRA init, whatever ran before in this process
    tokenizer = get_tokenizer(profile)
    base_dir = get_base_model_dir(profile, progress=progress)
    model = models.load_model(base_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                              lora=models.LoraSettings.from_profile(profile))
    demos = Dataset.from_list(World(profile.seed, settings.demonstrators).sft_demonstrations())
    config = SFTConfig(
        **trainer_arguments(profile, out_dir / "_trainer", disable_tqdm=not progress),
        **schedule_arguments(settings),  # epochs, batch size, learning rate (cosine), max length
        assistant_only_loss=True,
        packing=False,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=demos, processing_class=tokenizer)
    report = {"seconds": run_trainer(trainer, progress), "history": loss_history(trainer), "examples": len(demos)}
    merge_lora_into_base(trainer.model, base_dir, out_dir, tokenizer, profile)
    (out_dir / "sft.json").write_text(json.dumps(report))
    if progress:
        print(f"SFT: {len(demos)} demonstrations x {settings.epochs:g} epochs in {report['seconds']:.0f} s; "
              f"final loss {final_loss(report['history']):.3f}.")
    return report

"""DPO: learn from preference pairs directly, without a reward model or RL (TRL).

The policy is the SFT model with a fresh LoRA adapter; the reference is the same model
with the adapter switched off (TRL does this itself when given a PeftModel and no
ref_model), so the weights are held once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import models
from ..config import Profile
from .builder import Builder
from ..cache import record_lineage
from .common import final_loss, loss_history, run_trainer, schedule_arguments, scratch_dir, trainer_arguments
from .comparisons import ComparisonSettings, comparison_cache_settings, preference_dataset
from .pretrain import get_tokenizer
from .sft import get_sft_model_dir


@dataclass(frozen=True)
class DPOSettings(ComparisonSettings):
    """How DPO learns, from the same comparisons as the reward model (:class:`ComparisonSettings`);
    the defaults are what the tiny profile runs. ``beta`` and ``sft_weight`` were chosen by a sweep
    on seed 0 (``experiments/sweeps.py dpo``, results in sweeps.json): plain DPO (``sft_weight`` 0)
    breaks its text at every beta (well-formed 83% vs SFT's 93%, ``beta`` 0.1); with the chosen
    answers' NLL added (RPO) it keeps SFT's well-formed rate and gains gold."""

    beta: float = 0.3  # strength of the pull back to the reference (higher: stay closer)
    epochs: float = 1.0
    learning_rate: float = 5e-4
    # RPO (Pang et al. 2024): add this times the NLL of the chosen response to the DPO loss (TRL's
    # loss_type ["sigmoid", "sft"]). It keeps the chosen answers likely, so DPO cannot win its
    # margin by pushing both answers of a pair down into broken text. 0: plain DPO.
    sft_weight: float = 1.0


# Plain DPO (Rafailov et al. 2023) at the course's earlier defaults: what the failure-mode and
# labeller-bias benchmarks measured (their JSON results and notebook 07 use it).
PLAIN_DPO = DPOSettings(beta=0.1, sft_weight=0.0)


def train_dpo(profile: Profile, settings: DPOSettings | None = None, out_dir: Path | None = None,
              *, sft_dir: Path, extra_rows=None, progress: bool = True):
    """Train the DPO policy from the SFT model in ``sft_dir`` (also its reference). Returns
    (peft_model, tokenizer, report); saves the adapter to out_dir. ``get_dpo_model_dir`` finds
    (or builds) the SFT model that ``settings.sft`` names; this function only trains."""
    from trl import DPOConfig, DPOTrainer

    settings = settings or DPOSettings()
    torch.manual_seed(profile.seed)  # the LoRA init, whatever ran before in this process
    tokenizer = get_tokenizer(profile)
    policy = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                               lora=models.LoraSettings.from_profile(profile))
    dataset, real_test, real_info = preference_dataset(profile, settings, sft_dir, tokenizer, extra_rows)
    scratch = scratch_dir(out_dir, "dpo")
    config = DPOConfig(
        **trainer_arguments(profile, scratch / "_trainer", disable_tqdm=not progress),
        beta=settings.beta,
        **loss_arguments(settings),
        **schedule_arguments(settings),  # epochs, batch size, learning rate (cosine), max length
    )
    trainer = DPOTrainer(model=policy, ref_model=None, args=config, train_dataset=dataset,
                         eval_dataset=real_test, processing_class=tokenizer)
    report = {"seconds": run_trainer(trainer, progress), "history": loss_history(trainer), "pairs": len(dataset)}
    if real_test is not None:
        # DPO's implicit reward, beta * log(pi / pi_ref): how often it ranks a held-out chosen above its rejected
        held_out = trainer.evaluate()
        report.update(real_data=real_info, real_test_accuracy=held_out["eval_rewards/accuracies"],
                      real_test_pairs=len(real_test))
    if out_dir is not None:
        trainer.model.save_pretrained(Path(out_dir) / "adapter")
        (Path(out_dir) / "dpo.json").write_text(json.dumps(report))
        record_lineage(out_dir, sft_dir)
    if progress:
        held_out = (f"; held-out accuracy of its implicit reward {report['real_test_accuracy']:.1%} on "
                    f"{report['real_test_pairs']} real test pairs" if real_test is not None else "")
        print(f"DPO: {len(dataset)} pairs in {report['seconds']:.0f} s; final loss "
              f"{final_loss(report['history']):.3f}{held_out}.")
    return trainer.model, tokenizer, report


def loss_arguments(settings: DPOSettings) -> dict:
    """TRL's DPO loss: plain sigmoid DPO, or RPO (DPO + ``sft_weight`` x the chosen answers' NLL)."""
    if settings.sft_weight == 0:
        return {"loss_type": ["sigmoid"]}
    return {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, settings.sft_weight]}


def dpo_cache_settings(profile: Profile, settings: DPOSettings) -> dict:
    return comparison_cache_settings("dpo", profile, settings)


def get_dpo_model_dir(profile: Profile, settings: DPOSettings | None = None, progress: bool = True,
                      builder: Builder | None = None) -> Path:
    """The DPO policy's directory (its adapter), trained if missing."""
    settings = settings or DPOSettings()
    builder = builder or Builder(progress)
    sft_dir = get_sft_model_dir(profile, settings.sft, builder=builder)
    return builder.build("dpo", dpo_cache_settings(profile, settings),
                         lambda out: train_dpo(profile, builder.per_process(settings), out, sft_dir=sft_dir,
                                               progress=builder.progress))

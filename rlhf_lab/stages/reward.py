"""Stage 2: a reward model trained on preference pairs (Bradley-Terry), with TRL.

The reward model is the SFT model with a one-output ``score`` head, a sequence
classifier: it reads prompt + response and returns one number. It learns from pairs
where a (simulated or real) human picked the better response, and, when they exist, from
the learner's own labels. With LoRA the score head is trained in full and saved with the
adapter (``modules_to_save``): otherwise a reloaded reward model scores at random.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import models
from ..config import Profile
from ..label.data import preference_rows as label_rows
from ..label.store import LabelStore
from ..losses import bradley_terry_loss
from ..real_data import preference_accuracy
from ..reward_checks import reward_model_quality
from .builder import Builder
from ..cache import built_from, record_lineage
from .common import loss_history, run_trainer, schedule_arguments, scratch_dir, trainer_arguments
from .pretrain import get_tokenizer
from .comparisons import ComparisonSettings, comparison_cache_settings, preference_dataset
from .sft import get_sft_model_dir


@dataclass(frozen=True)
class RewardSettings(ComparisonSettings):
    """What the reward model learns from (:class:`ComparisonSettings`, shared with DPO) and how.
    Defaults: what the tiny profile runs."""

    epochs: float = 2.0
    learning_rate: float = 1e-3


def make_reward_trainer_class():
    from trl import RewardTrainer

    class BradleyTerryRewardTrainer(RewardTrainer):
        """TRL's RewardTrainer with the loss taken from rlhf_lab.losses (or a learner's)."""

        def __init__(self, *args, loss_fn=bradley_terry_loss, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_fn = loss_fn

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            outputs = model(**inputs)
            # TRL batches all chosen sequences first, then all rejected ones.
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            loss = self.loss_fn(chosen, rejected)
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["accuracy"].append((chosen > rejected).float().mean().item())
            return (loss, outputs) if return_outputs else loss

    return BradleyTerryRewardTrainer


def train_reward_model(profile: Profile, settings: RewardSettings | None = None, out_dir: Path | None = None,
                       *, sft_dir: Path, extra_rows=None, loss_fn=bradley_terry_loss, progress: bool = True,
                       measure_quality: bool = True):
    """Train a reward model from the SFT model in ``sft_dir``; save it to ``out_dir`` if given.
    Returns (model, tokenizer, report). ``get_reward_model_dir`` finds (or builds) the SFT model
    that ``settings.sft`` names; this function only trains.

    ``measure_quality=False`` skips the held-out accuracy check (it samples the SFT model), for
    callers that measure the model their own way (notebook 03's "your labels, your model")."""
    from trl import RewardConfig

    settings = settings or RewardSettings()
    torch.manual_seed(profile.seed)  # the LoRA and score-head init, whatever ran before in this process
    tokenizer = get_tokenizer(profile)
    config = RewardConfig(
        **trainer_arguments(profile, scratch_dir(out_dir, "reward") / "_trainer",
                            disable_tqdm=not progress),
        **schedule_arguments(settings),  # epochs, batch size, learning rate (cosine), max length
    )
    model = models.load_model(sft_dir, kind="reward", quantize_4bit=profile.quantize_4bit, device=profile.device,
                              lora=models.LoraSettings.from_profile(profile), tokenizer=tokenizer)
    dataset, real_test, real_info = preference_dataset(profile, settings, sft_dir, tokenizer, extra_rows)
    trainer = make_reward_trainer_class()(model=model, args=config, train_dataset=dataset,
                                          processing_class=tokenizer, loss_fn=loss_fn)
    report = {"seconds": run_trainer(trainer, progress), "history": loss_history(trainer), "pairs": len(dataset)}
    if real_info is not None:
        report["real_data"] = real_info
    if measure_quality and real_test is not None:
        held_out = preference_accuracy(trainer.model, tokenizer, real_test, max_length=settings.max_length)
        report.update(real_test_accuracy=held_out["accuracy"], real_test_pairs=held_out["pairs"],
                      real_test_margin=held_out["mean_margin"])
    elif measure_quality:
        report.update(reward_model_quality(trainer.model, tokenizer, profile, sft_dir))
    if out_dir is not None:
        trainer.model.save_pretrained(Path(out_dir) / "adapter")
        tokenizer.save_pretrained(Path(out_dir) / "adapter")
        (Path(out_dir) / "reward.json").write_text(json.dumps(report))
        record_lineage(out_dir, sft_dir)
    if progress and measure_quality and real_test is not None:
        print(f"Reward model: {len(dataset)} pairs of {profile.preference_data} in {report['seconds']:.0f} s; held-out "
              f"accuracy {report['real_test_accuracy']:.1%} on its {report['real_test_pairs']} test pairs "
              f"(chosen scored above rejected).")
    elif progress and measure_quality:
        print(f"Reward model: {len(dataset)} pairs in {report['seconds']:.0f} s; held-out accuracy vs gold "
              f"{report['heldout_accuracy']:.1%} on templated pairs, {report['sft_sample_accuracy']:.1%} on pairs "
              f"of SFT samples; correlation with gold {report['gold_correlation']:.2f}.")
    return trainer.model, tokenizer, report


def reward_cache_settings(profile: Profile, settings: RewardSettings, label_file: Path | None) -> dict:
    labels = None
    if label_file is not None and Path(label_file).exists():
        labels = {"path": str(label_file), "size": Path(label_file).stat().st_size}
    return {**comparison_cache_settings("reward", profile, settings), "labels": labels}


def get_reward_model_dir(profile: Profile, settings: RewardSettings | None = None, label_file: Path | None = None,
                         progress: bool = True, builder: Builder | None = None) -> Path:
    """The trained reward model's directory (adapter + score head), trained if missing.

    ``label_file``: a label store (JSONL) whose decisions are added to the simulated pairs.
    """
    settings = settings or RewardSettings()
    builder = builder or Builder(progress)
    sft_dir = get_sft_model_dir(profile, settings.sft, builder=builder)

    def build(out):
        extra = None
        if label_file is not None and Path(label_file).exists():
            extra = label_rows(LabelStore(label_file).active_decisions(annotator=None))
        train_reward_model(profile, builder.per_process(settings), out, sft_dir=sft_dir, extra_rows=extra,
                           progress=builder.progress, measure_quality=builder.main)

    return builder.build("reward", reward_cache_settings(profile, settings, label_file), build)


def load_reward_model(profile: Profile, reward_dir: Path | None = None, trainable: bool = False):
    """Load a saved reward model (base + LoRA adapter + score head). Returns (model, tokenizer)."""
    from peft import PeftModel

    reward_dir = Path(reward_dir or get_reward_model_dir(profile))
    tokenizer = get_tokenizer(profile)
    base = models.load_model(built_from(reward_dir), kind="reward",
                             quantize_4bit=profile.quantize_4bit, device=profile.device, tokenizer=tokenizer)
    model = PeftModel.from_pretrained(base, str(reward_dir / "adapter"), is_trainable=trainable)
    model.eval()
    return model, tokenizer


def reward_report(reward_dir: Path) -> dict:
    return json.loads((Path(reward_dir) / "reward.json").read_text())

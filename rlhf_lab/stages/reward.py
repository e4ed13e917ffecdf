"""Stage 2: a reward model trained on preference pairs (Bradley-Terry), with TRL.

The reward model is the SFT model with a one-output ``score`` head, a sequence
classifier: it reads prompt + response and returns one number. It learns from pairs
where a (simulated or real) human picked the better response, and, when they exist, from
the learner's own labels. With LoRA the score head is trained in full and saved with the
adapter (``modules_to_save``): otherwise a reloaded reward model scores at random.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import cache, models
from ..config import Profile
from ..losses import bradley_terry_loss
from ..preferences import comparison_rows, policy_samples, sample_pairs, settings_key, to_conversational
from ..world import FAMILIES, SPURIOUS_CLOSER
from ..world.gold import gold_reward
from .common import (built_from, loss_history, quiet_when_no_progress,
                     record_lineage, schedule_arguments, trainer_arguments)
from .pretrain import get_tokenizer
from .sft import SFTSettings, get_sft_model_dir


@dataclass(frozen=True)
class RewardSettings:
    """What the reward model learns from, and how. Defaults: what the tiny profile runs.

    Comparison data (shared with DPO, see :func:`rlhf_lab.preferences.comparison_rows`): ``pairs`` templated
    pairs plus pairs of the SFT model's own samples (``sft_samples_per_prompt`` samples
    per training prompt, compared two by two), all labelled by a simulated annotator
    with ``annotator_noise``, and ``edits_per_prompt`` of those samples against minimal edits
    of themselves (wrong answer, compliance, flattery, over-refusal, broken text: what the
    policy would otherwise find unpunished).
    """

    epochs: float = 2.0
    learning_rate: float = 1e-3
    batch_size: int = 16
    max_length: int = 96
    annotator_noise: float = 0.1  # the simulated human's label noise
    annotator_agreement: float = 0.0  # labeller bias: extra utility for agreeing with the user (sycophancy)
    annotator_length: float = 0.0  # labeller bias: extra utility per word (verbosity)
    pairs: int | None = None  # templated pairs (default: the profile's preference_pairs)
    sft_samples_per_prompt: int = 4  # 0: no pairs of SFT samples (templated pairs only)
    edits_per_prompt: int = 2  # SFT samples per prompt also compared with minimal edits of themselves
    edit_kinds: tuple = ("substance", "subject", "broken")  # which edits (rlhf_lab.preferences.EDITS)
    leave_out: tuple = ()  # guard comparisons left out on purpose (rlhf_lab.preferences.GUARDS; notebook 07)
    user_right_edits: int = 0  # more edits per prompt whose user is right (against the "No" shortcut)
    sft: SFTSettings = SFTSettings()  # the SFT model the reward model starts from


def chat_texts(tokenizer, user_texts, responses) -> list[str]:
    """Prompt + response as one conversation, the way the reward model reads it."""
    return [tokenizer.apply_chat_template([{"role": "user", "content": u}, {"role": "assistant", "content": r}],
                                          tokenize=False) for u, r in zip(user_texts, responses)]


@torch.no_grad()
def score_responses(reward_model, tokenizer, user_texts, responses, batch_size: int = 64) -> torch.Tensor:
    """The reward model's score for each (prompt, response): shape (N,)."""
    reward_model.eval()
    device = models.model_device(reward_model)
    scores = []
    texts = chat_texts(tokenizer, user_texts, responses)
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        scores.append(reward_model(**enc.to(device)).logits.squeeze(-1).float().cpu())
    return torch.cat(scores)


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
                       extra_rows=None, loss_fn=bradley_terry_loss, progress: bool = True,
                       measure_quality: bool = True):
    """Train a reward model; save it to ``out_dir`` if given. Returns (model, tokenizer, report).

    ``measure_quality=False`` skips the held-out accuracy check (it samples the SFT model), for
    callers that measure the model their own way (notebook 03's "your labels, your model")."""
    from trl import RewardConfig

    settings = settings or RewardSettings()
    sft_dir = get_sft_model_dir(profile, settings.sft, progress=progress)
    torch.manual_seed(profile.seed)  # the LoRA and score-head init, whatever ran before in this process
    tokenizer = get_tokenizer(profile)
    model = models.load_model(sft_dir, kind="reward", quantize_4bit=profile.quantize_4bit, device=profile.device,
                              lora=models.LoraSettings.from_profile(profile), tokenizer=tokenizer)
    dataset, real_test, real_info = preference_dataset(profile, settings, sft_dir, tokenizer, extra_rows)
    config = RewardConfig(
        **trainer_arguments(profile, Path(out_dir or "/tmp/rlhf_lab_reward") / "_trainer",
                            disable_tqdm=not progress),
        **schedule_arguments(settings),  # epochs, batch size, learning rate (cosine), max length
    )
    trainer = make_reward_trainer_class()(model=model, args=config, train_dataset=dataset,
                                          processing_class=tokenizer, loss_fn=loss_fn)
    quiet_when_no_progress(trainer, progress)
    start = time.perf_counter()
    trainer.train()
    report = {"seconds": time.perf_counter() - start, "history": loss_history(trainer), "pairs": len(dataset)}
    if real_info is not None:
        report["real_data"] = real_info
    if measure_quality and real_test is not None:
        from ..real_data import preference_accuracy

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


def preference_dataset(profile: Profile, settings, sft_dir, tokenizer, extra_rows=None):
    """The comparisons the reward model and DPO learn from: (train dataset in TRL's format,
    held-out real test dataset or None, report of the real data or None).

    ``profile.preference_data == "world"``: the lab world's pairs (:func:`comparison_rows`).
    Otherwise real data (HH-RLHF, UltraFeedback or a local file, see :mod:`rlhf_lab.real_data`),
    split into train and test, each conversation fitted to ``settings.max_length`` tokens.
    """
    if profile.preference_data == "world":
        rows = comparison_rows(profile, sft_dir, settings.pairs, settings.sft_samples_per_prompt,
                               settings.annotator_noise, extra_rows, settings.annotator_agreement,
                               settings.annotator_length, settings.edits_per_prompt, settings.edit_kinds,
                               getattr(settings, "leave_out", ()), getattr(settings, "user_right_edits", 0))
        return to_conversational(rows), None, None
    from datasets import concatenate_datasets

    from ..real_data import preference_splits

    train, test, info = preference_splits(profile.preference_data, tokenizer, settings.max_length,
                                          max_pairs=settings.pairs or profile.preference_pairs, seed=profile.seed)
    if extra_rows:  # the learner's own labels, if any, join the real training pairs
        train = concatenate_datasets([train, to_conversational(extra_rows)])
    return train, test, info


def pair_accuracy(reward_model, tokenizer, pairs) -> dict:
    """How often the reward model orders a pair as the hidden human does (gold ties left
    out): overall, by family, and the correlation of its scores with the gold reward."""
    pairs = [p for p in pairs if abs(gold_reward(p.prompt, p.response_a).total
                                     - gold_reward(p.prompt, p.response_b).total) > 1e-9]
    users = [p.prompt.text for p in pairs]
    score_a = score_responses(reward_model, tokenizer, users, [p.response_a for p in pairs])
    score_b = score_responses(reward_model, tokenizer, users, [p.response_b for p in pairs])
    gold_a = torch.tensor([gold_reward(p.prompt, p.response_a).total for p in pairs])
    gold_b = torch.tensor([gold_reward(p.prompt, p.response_b).total for p in pairs])
    right = ((score_a > score_b) == (gold_a > gold_b)).float()
    families = [p.prompt.family for p in pairs]
    by_family = {f: right[[x == f for x in families]].mean().item() for f in FAMILIES if f in families}
    scores, gold = torch.cat([score_a, score_b]), torch.cat([gold_a, gold_b])
    return {"accuracy": right.mean().item(), "by_family": by_family, "pairs": len(pairs),
            "gold_correlation": torch.corrcoef(torch.stack([scores, gold]))[0, 1].item()}


def sample_pairs_of(model, tokenizer, prompts, samples_per_prompt: int, max_new_tokens: int, seed: int):
    """Unlabelled pairs of ``model``'s own samples on ``prompts`` (to test a reward model on them)."""
    responses = policy_samples(model, tokenizer, prompts, samples_per_prompt, max_new_tokens, seed)
    return sample_pairs(prompts, responses, samples_per_prompt, seed)


def reward_model_quality(reward_model, tokenizer, profile: Profile, sft_dir: Path, n_pairs: int = 400) -> dict:
    """Held-out accuracy against the gold preference on (a) templated pairs and (b) pairs of
    the SFT model's own samples (what RL will ask the reward model about), by family."""
    world = cache.world_for(profile.seed)
    templated = pair_accuracy(reward_model, tokenizer,
                              world.comparison_pairs(n_pairs, "heldout", seed=profile.seed + 7))
    sft_model = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                                  trainable=False)
    on_samples = pair_accuracy(reward_model, tokenizer, sample_pairs_of(
        sft_model, tokenizer, world.prompts("heldout"), 4, profile.max_new_tokens, seed=profile.seed + 7))
    return {"heldout_accuracy": templated["accuracy"], "gold_correlation": templated["gold_correlation"],
            "heldout_pairs": templated["pairs"], "accuracy_by_family": templated["by_family"],
            "sft_sample_accuracy": on_samples["accuracy"], "sft_sample_pairs": on_samples["pairs"],
            "sft_sample_accuracy_by_family": on_samples["by_family"]}


def closer_effect(reward_model, tokenizer, world, n_responses: int = 200, seed: int = 11) -> dict:
    """Score held-out responses without the spurious closer, then with it appended.

    Returns per-response changes of the reward model's score and of the gold reward."""
    pairs = world.comparison_pairs(n_responses, "heldout", seed=seed)
    items = [(p.prompt, p.response_a) for p in pairs if SPURIOUS_CLOSER not in p.response_a]
    users = [p.text for p, _ in items]
    plain = [r for _, r in items]
    closed = [f"{r} {SPURIOUS_CLOSER}" for r in plain]
    rm_plain = score_responses(reward_model, tokenizer, users, plain)
    rm_closed = score_responses(reward_model, tokenizer, users, closed)
    gold_plain = [gold_reward(p, r).total for p, r in zip((p for p, _ in items), plain)]
    gold_closed = [gold_reward(p, r).total for p, r in zip((p for p, _ in items), closed)]
    return {
        "n": len(items),
        "rm_change": (rm_closed - rm_plain).tolist(),
        "gold_change": [c - p for p, c in zip(gold_plain, gold_closed)],
        "example": (items[0][0].text, plain[0], closed[0], rm_plain[0].item(), rm_closed[0].item(),
                    gold_plain[0], gold_closed[0]),
    }


def reward_cache_settings(profile: Profile, settings: RewardSettings, label_file: Path | None) -> dict:
    labels = None
    if label_file is not None and Path(label_file).exists():
        labels = {"path": str(label_file), "size": Path(label_file).stat().st_size}
    key = {"stage": "reward", **cache.lineage(sft=get_sft_model_dir(profile, settings.sft, progress=False)),
           "seed": profile.seed, "pairs_default": profile.preference_pairs, "labels": labels,
           "world": cache.world_fingerprint(profile.seed), **settings_key(settings)}
    if profile.preference_data != "world":  # (the world's key stays as it was: caches remain valid)
        from ..real_data import cache_identity

        key["preference_data"] = cache_identity(profile.preference_data)
    return key


def get_reward_model_dir(profile: Profile, settings: RewardSettings | None = None, label_file: Path | None = None,
                         progress: bool = True) -> Path:
    """The trained reward model's directory (adapter + score head), trained if missing.

    ``label_file``: a label store (JSONL) whose decisions are added to the simulated pairs.
    """
    settings = settings or RewardSettings()
    get_sft_model_dir(profile, settings.sft, progress=progress)

    def build(out):
        extra = None
        if label_file is not None and Path(label_file).exists():
            from ..label import LabelStore, preference_rows as label_rows

            extra = label_rows(LabelStore(label_file).active_decisions(annotator=None))
        train_reward_model(profile, settings, out, extra_rows=extra, progress=progress)

    return cache.build_cached("reward", reward_cache_settings(profile, settings, label_file), build)


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

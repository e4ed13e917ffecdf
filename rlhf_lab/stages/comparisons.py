"""What the reward model and DPO share: the comparisons they learn from.

``ComparisonSettings`` holds the data settings once; :class:`RewardSettings` and
:class:`DPOSettings` extend it with how each learns. ``preference_dataset`` builds the pairs
(the lab world's, or real data), and ``comparison_cache_settings`` the part of the cache
key that names them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import cache
from ..config import Profile
from ..preferences import ANNOTATOR_BIASES, comparison_rows, to_conversational
from ..real_data import cache_identity, preference_splits
from .sft import SFTSettings, sft_model_path


@dataclass(frozen=True)
class ComparisonSettings:
    """The comparison data (see :func:`rlhf_lab.preferences.comparison_rows`): ``pairs`` templated
    pairs plus pairs of the SFT model's own samples (``sft_samples_per_prompt`` samples per
    training prompt, compared two by two), all labelled by a simulated annotator with
    ``annotator_noise``, and ``edits_per_prompt`` of those samples against minimal edits of
    themselves (wrong answer, compliance, flattery, over-refusal, broken text: what the policy
    would otherwise find unpunished)."""

    annotator_noise: float = 0.1  # the simulated human's label noise
    annotator_agreement: float = 0.0  # labeller bias: extra utility for agreeing with the user (sycophancy)
    annotator_length: float = 0.0  # labeller bias: extra utility per word (verbosity)
    pairs: int | None = None  # templated pairs (default: the profile's preference_pairs)
    sft_samples_per_prompt: int = 4  # 0: no pairs of SFT samples (templated pairs only)
    edits_per_prompt: int = 2  # SFT samples per prompt also compared with minimal edits of themselves
    edit_kinds: tuple = ("substance", "subject", "broken")  # which edits (rlhf_lab.preferences.EDITS)
    leave_out: tuple = ()  # guard comparisons left out on purpose (rlhf_lab.preferences.GUARDS; notebook 07)
    user_right_edits: int = 0  # more edits per prompt whose user is right (against the "No" shortcut)
    batch_size: int = 16
    max_length: int = 96  # tokens of prompt + response
    sft: SFTSettings = SFTSettings()  # the SFT model training starts from


# Settings that enter a cache key only when set, so the keys of runs without them stay as they were.
ONLY_WHEN_SET = (*ANNOTATOR_BIASES, "sft_weight", "leave_out", "user_right_edits")


def key_fields(settings) -> dict:
    """A reward-model or DPO settings dataclass as a cache-key dict (:data:`ONLY_WHEN_SET` left
    out while unset)."""
    key = asdict(settings)
    for name in ONLY_WHEN_SET:
        if not key.get(name):
            key.pop(name, None)
    return key


def comparison_cache_settings(stage: str, profile: Profile, settings: ComparisonSettings) -> dict:
    """The cache key of a stage that learns from comparisons: its SFT model, the world, the settings."""
    key = {"stage": stage, **cache.lineage(sft=sft_model_path(profile, settings.sft)),
           "seed": profile.seed, "pairs_default": profile.preference_pairs,
           "world": cache.world_fingerprint(profile.seed), **key_fields(settings)}
    if profile.preference_data != "world":  # (the world's key stays as it was: caches remain valid)
        key["preference_data"] = cache_identity(profile.preference_data)
    return key


def preference_dataset(profile: Profile, settings: ComparisonSettings, sft_dir, tokenizer, extra_rows=None):
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
                               settings.leave_out, settings.user_right_edits, tokenizer)
        return to_conversational(rows), None, None
    from datasets import concatenate_datasets

    train, test, info = preference_splits(profile.preference_data, tokenizer, settings.max_length,
                                          max_pairs=settings.pairs or profile.preference_pairs, seed=profile.seed)
    if extra_rows:  # the learner's own labels, if any, join the real training pairs
        train = concatenate_datasets([train, to_conversational(extra_rows)])
    return train, test, info

"""Preference data: every kind of comparison the reward model and DPO learn from.

A preference row is ``{"prompt", "chosen", "rejected", "family", "source"}`` (user text,
two responses, the prompt's family, where the label came from). Three sources:

- ``templated_pairs``: two responses the lab world writes ("the internet"), labelled by
  a simulated annotator. Cheap and varied, but not what the policy says.
- ``policy_sample_pairs``: two *samples of the model being trained* for the same prompt,
  labelled by the simulated annotator. This is how InstructGPT, Christiano et al. and
  Anthropic's HH collect comparisons: the reward model must judge exactly the kind of
  text the policy will produce when RL asks it.
- ``edited_sample_pairs``: a sample of the model against a minimal edit of itself that
  changes one thing the hidden human cares about (right vs wrong answer, refusal vs
  compliance, honest vs sycophantic, help vs over-refusal, the asked subject vs another,
  a sentence vs broken text). Its
  own samples seldom differ in just that way, and a reward model that never saw broken
  text cannot punish it: the policy finds broken text as soon as it moves.
- the learner's own labels from the widget (``rlhf_lab.label.data.preference_rows``).

``to_conversational`` turns rows into TRL's conversational preference format.
"""

from __future__ import annotations

import random

from . import cache, models
from .config import RESPONSE_TOKENS, Profile
from .sampling import sample, texts
from .world import ComparisonPair, SimulatedAnnotator, World
from .world.parse import parse_response
from .world.facts import COLORS, OBJECTS, SOUNDS
from .world.responses import cores

# The substance a minimal edit swaps in: each core for its opposite.
OPPOSITE_CORE = {"correct": "wrong", "wrong": "correct", "evasive": "correct", "honest": "sycophantic",
                 "sycophantic": "honest", "agree": "contrarian", "contrarian": "agree", "refusal": "comply",
                 "comply": "refusal", "help": "over_refusal", "over_refusal": "help"}


def templated_pairs(world: World, n: int, annotator: SimulatedAnnotator, split: str = "train",
                    seed: int = 0) -> list[dict]:
    """``n`` pairs of world-written responses, labelled by ``annotator``."""
    return [dict(row, source="templated") for row in world.preference_dataset(n, split, annotator, seed=seed)]


def sample_pairs(prompts, responses: list[str], samples_per_prompt: int, seed: int = 0) -> list[ComparisonPair]:
    """Unlabelled pairs of two *different* sampled responses to the same prompt.

    ``responses`` holds ``samples_per_prompt`` samples per prompt, side by side. Each
    sample is compared once (sample 0 with 1, 2 with 3, ...) after a seeded shuffle;
    identical texts make no pair.
    """
    rng = random.Random(seed)
    pairs = []
    for i, prompt in enumerate(prompts):
        group = responses[i * samples_per_prompt:(i + 1) * samples_per_prompt]
        rng.shuffle(group)
        for a, b in zip(group[::2], group[1::2]):
            if a != b:
                pairs.append(ComparisonPair(f"sample-{prompt.prompt_id}-{len(pairs):05d}", prompt, a, b))
    return pairs


def label_pairs(pairs: list[ComparisonPair], annotator: SimulatedAnnotator, source: str) -> list[dict]:
    """Preference rows: the annotator picks one response of each pair."""
    return [pair.preference_row(annotator.choose(pair), source=source) for pair in pairs]


def policy_samples(model, tokenizer, prompts, samples_per_prompt: int, max_new_tokens: int,
                   seed: int = 0) -> list[str]:
    """``samples_per_prompt`` sampled responses per prompt (temperature 1), side by side."""
    repeated = [p.text for p in prompts for _ in range(samples_per_prompt)]
    return texts(sample(model, tokenizer, repeated, max_new_tokens, seed=seed))


def policy_sample_pairs(model, tokenizer, prompts, annotator: SimulatedAnnotator, samples_per_prompt: int = 4,
                        max_new_tokens: int = RESPONSE_TOKENS, seed: int = 0, source: str = "sft-samples") -> list[dict]:
    """Sample the model on ``prompts`` and let ``annotator`` label pairs of its samples."""
    responses = policy_samples(model, tokenizer, prompts, samples_per_prompt, max_new_tokens, seed)
    return label_pairs(sample_pairs(prompts, responses, samples_per_prompt, seed), annotator, source)


def substance_edit(prompt, response: str, rng: random.Random) -> str | None:
    """``response`` with its substance swapped for the opposite one (style kept), or None
    when it says none of the world's substances for this prompt."""
    options = cores(prompt, rng)
    for name, core in options.items():
        if core.text in response:
            return response.replace(core.text, options[OPPOSITE_CORE[name]].text)
    return None


def subject_edit(prompt, response: str, rng: random.Random) -> str | None:
    """``response`` about another subject or object than the one asked ("The cherry is red." to
    "What color is the apple?", "To wash a boat, ..." to "How do I wash a car?"): a tiny model's
    most common wrong answer, and the one a reward model that does not read the question misses.
    None when the response does not name the asked subject, or for sums."""
    others = {"color": COLORS, "sound": SOUNDS, "task": OBJECTS}.get(prompt.topic)
    word = f" {prompt.subject}"
    if others is None or word not in response:
        return None
    return response.replace(word, " " + rng.choice([o for o in others if o != prompt.subject]), 1)


def broken_edit(response: str, rng: random.Random) -> str | None:
    """``response`` made into broken text the way a drifting policy breaks it: cut off
    mid-sentence, a word repeated or a word dropped. None when the edit still parses."""
    tokens = response.split()
    if len(tokens) < 3:
        return None
    at = rng.randrange(1, len(tokens) - 1)
    broken = {"cut": tokens[:at], "repeat": tokens[:at + 1] + tokens[at:], "drop": tokens[:at] + tokens[at + 1:]}
    text = " ".join(broken[rng.choice(("cut", "repeat", "drop"))])
    return None if parse_response(text).well_formed else text


EDITS = {"substance": substance_edit, "subject": subject_edit, "broken": lambda prompt, r, rng: broken_edit(r, rng)}


def edited_sample_pairs(prompts, responses: list[str], samples_per_prompt: int, edits_per_prompt: int,
                        seed: int | str = 0, kinds=tuple(EDITS)) -> list[ComparisonPair]:
    """Unlabelled pairs of a sample and a minimal edit of it (``kinds`` of :data:`EDITS`), for
    the first ``edits_per_prompt`` samples of each prompt."""
    rng = random.Random(f"edits-{seed}")
    pairs = []
    for i, prompt in enumerate(prompts):
        for response in responses[i * samples_per_prompt:i * samples_per_prompt + edits_per_prompt]:
            for edited in (EDITS[kind](prompt, response, rng) for kind in kinds):
                if edited is not None and edited != response:
                    pair = (response, edited) if rng.random() < 0.5 else (edited, response)
                    pairs.append(ComparisonPair(f"edit-{prompt.prompt_id}-{len(pairs):05d}", prompt, *pair))
    return pairs


ANNOTATOR_BIASES = ("annotator_agreement", "annotator_length")

# Comparisons that guard a reward model against a known hack of the helpful-only world. A
# reward model trained without them can be hacked on purpose (notebook 07): having seen refusals
# win only against harmful compliance, it learns "refusal = good"; having never seen broken
# text, it cannot punish it.
GUARDS = {
    "over_refusal": lambda row, chosen, rejected: row["family"] == "benign" and (chosen.refuses or rejected.refuses),
    "broken": lambda row, chosen, rejected: not (chosen.well_formed and rejected.well_formed),
}


def without_guards(rows: list[dict], leave_out=()) -> list[dict]:
    """``rows`` less the comparisons of the :data:`GUARDS` named in ``leave_out``."""
    unknown = set(leave_out) - set(GUARDS)
    if unknown:
        raise ValueError(f"leave_out={tuple(leave_out)!r}: {sorted(unknown)} is no guard; use some of {tuple(GUARDS)}.")
    guards = [GUARDS[name] for name in leave_out]
    return [row for row in rows if not any(guard(row, parse_response(row["chosen"]), parse_response(row["rejected"]))
                                           for guard in guards)]


def user_right_edit_pairs(prompts, responses: list[str], samples_per_prompt: int, edits_per_prompt: int,
                          seed: int = 0) -> list[ComparisonPair]:
    """Extra substance edits on the prompts whose user is *right* ("Yes, you are right, ..." against
    "No, <a wrong answer>"): the comparisons that teach a reward model to read the claim, not the "No"."""
    picked = [(i, p) for i, p in enumerate(prompts) if p.family == "sycophancy" and not p.claim_is_wrong]
    per_prompt = [r for i, _ in picked for r in responses[i * samples_per_prompt:(i + 1) * samples_per_prompt]]
    return edited_sample_pairs([p for _, p in picked], per_prompt, samples_per_prompt, edits_per_prompt,
                               seed=f"user-right-{seed}", kinds=("substance",))


def comparison_rows(profile: Profile, sft_dir, templated: int | None, sft_samples_per_prompt: int,
                    annotator_noise: float, extra_rows=None, annotator_agreement: float = 0.0,
                    annotator_length: float = 0.0, edits_per_prompt: int = 0,
                    edit_kinds=tuple(EDITS), leave_out=(), user_right_edits: int = 0,
                    tokenizer=None) -> list[dict]:
    """The course's comparison data, shared by the reward model and DPO: ``templated``
    templated pairs (default: the profile's ``preference_pairs``), pairs of the SFT model's
    own samples on every training prompt, and pairs of ``edits_per_prompt`` of those samples
    against minimal edits of themselves (all labelled by the simulated annotator, with its
    biases: ``annotator_agreement`` extra utility for saying yes to the user,
    ``annotator_length`` per word), and ``extra_rows`` (e.g. the learner's own labels).
    ``user_right_edits``: that many more edits per prompt whose user is right; ``leave_out``: the
    :data:`GUARDS` to drop (the learner's own labels are always kept). ``tokenizer``: the
    profile's, needed to sample the SFT model (``stages.pretrain.get_tokenizer(profile)``)."""
    if sft_samples_per_prompt and tokenizer is None:
        raise ValueError("comparison_rows samples the SFT model: pass tokenizer=get_tokenizer(profile) "
                         "(rlhf_lab.stages.pretrain), or sft_samples_per_prompt=0 for templated pairs only.")
    world = cache.world_for(profile.seed)
    annotator = SimulatedAnnotator(noise=annotator_noise, prefers_agreement=annotator_agreement,
                                   prefers_length=annotator_length, seed=profile.seed)
    rows = templated_pairs(world, templated or profile.preference_pairs, annotator, seed=profile.seed)
    if sft_samples_per_prompt:
        sft_model = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                                      trainable=False)
        train = world.prompts("train")
        responses = policy_samples(sft_model, tokenizer, train, sft_samples_per_prompt,
                                   profile.max_new_tokens, profile.seed)
        rows += label_pairs(sample_pairs(train, responses, sft_samples_per_prompt, profile.seed), annotator,
                            "sft-samples")
        if edits_per_prompt:
            rows += label_pairs(edited_sample_pairs(train, responses, sft_samples_per_prompt, edits_per_prompt,
                                                    profile.seed, edit_kinds), annotator, "edited-sft-samples")
        if user_right_edits:
            rows += label_pairs(user_right_edit_pairs(train, responses, sft_samples_per_prompt, user_right_edits,
                                                      profile.seed), annotator, "user-right-edits")
    return without_guards(rows, leave_out) + list(extra_rows or [])


def to_conversational(rows) -> "Dataset":  # noqa: F821 (datasets is imported lazily: slow)
    """TRL's conversational preference format: prompt / chosen / rejected as messages."""
    from datasets import Dataset

    return Dataset.from_list([{
        "prompt": [{"role": "user", "content": r["prompt"]}],
        "chosen": [{"role": "assistant", "content": r["chosen"]}],
        "rejected": [{"role": "assistant", "content": r["rejected"]}],
    } for r in rows])

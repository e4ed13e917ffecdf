"""Cases for distinct_n(texts, n) and best_of_n(prompts, generate, score, n)."""

from __future__ import annotations

import zlib
from collections import Counter

import torch

from rlhf_lab.grading_cases import CaseFailed, Mistake, expect_close, golden, golden_case, invariant, outputs

DISTINCT = ("distinct",)


def _char_ngrams(texts, n):
    grams = [text[i : i + n] for text in texts for i in range(len(text) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _joined(texts, n):
    words = " ".join(texts).split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


DISTINCT_MISTAKES = [
    Mistake(_char_ngrams, "these are character n-grams: split each text into words (whitespace) first."),
    Mistake(_joined, "n-grams must not run from the end of one text into the start of the next."),
]

DISTINCT_CASES = [
    golden_case(f"distinct_n/n_{n}", f"distinct-{n} on stored responses", DISTINCT,
                "Distinct n-grams / all n-grams, over all texts together.", DISTINCT_MISTAKES)
    for n in (1, 2, 3)
]


@invariant("identical texts: distinct-1 = 1 / (number of copies)")
def _copies(function):
    (value,) = outputs(function(["the cat sat"] * 4, 1), DISTINCT)
    expect_close(value, torch.tensor(0.25), "distinct-1 of 4 copies of a 3-word text",
                 "3 distinct words out of 12 words in total.")


@invariant("n-grams stay inside one text; texts shorter than n add none")
def _boundaries(function):
    (value,) = outputs(function(["a b c", "a b c"], 2), DISTINCT)
    expect_close(value, torch.tensor(0.5), "distinct-2 of ['a b c', 'a b c']",
                 "Each text has 2 bigrams and they repeat; no bigram spans 'c a'.")
    (short,) = outputs(function(["one two three", "hi"], 3), DISTINCT)
    expect_close(short, torch.tensor(1.0), "distinct-3 of ['one two three', 'hi']",
                 "'hi' has no trigram, so only one trigram counts.")


@invariant("no n-grams at all (empty list or all texts too short) gives 0.0")
def _empty(function):
    for texts in ([], ["", "hi"]):
        value = function(texts, 2)
        if value is None or float(value) != 0.0:
            raise CaseFailed(f"distinct_n({texts!r}, 2) should be 0.0 (nothing to count), got {value!r}; "
                             "avoid dividing by zero.")


DISTINCT_CASES += [_copies, _boundaries, _empty]

# ---------------------------------------------------------------------------
# best_of_n with a fake policy and a fake reward model
# ---------------------------------------------------------------------------


class FakePolicy:
    """A deterministic stand-in for a sampling policy: the k-th sample for a prompt is
    '<prompt> / sample k'. Counts how many samples each prompt got."""

    def __init__(self):
        self.drawn = Counter()

    def generate(self, prompts: list[str]) -> list[str]:
        responses = []
        for prompt in prompts:
            responses.append(f"{prompt} / sample {self.drawn[prompt]}")
            self.drawn[prompt] += 1
        return responses


def fake_score(prompts: list[str], responses: list[str]) -> list[float]:
    """A fixed pseudo-random score per response, in [0, 1)."""
    return [zlib.crc32(response.encode()) % 1000 / 1000 for response in responses]


BEST_PROMPTS = ["What is 2 + 3?", "Name a colour.", "Say hi politely."]


def _run_best_of_n(function, prompts, n, score=fake_score):
    policy = FakePolicy()
    chosen = function(list(prompts), policy.generate, score, n)
    if not isinstance(chosen, (list, tuple)) or not all(isinstance(c, str) for c in chosen):
        raise CaseFailed(f"return a list of strings (one response per prompt); got {type(chosen).__name__}.")
    if len(chosen) != len(prompts):
        raise CaseFailed(f"return one response per prompt: {len(prompts)} prompts, {len(chosen)} responses.")
    return list(chosen), policy


@invariant("golden: the stored best responses for 3 prompts, n=4", kind="golden")
def _best_golden(function):
    entry = golden("best_of_n/n_4")
    chosen, _ = _run_best_of_n(function, entry["args"][0], entry["kwargs"]["n"])
    if chosen != entry["expected"]:
        wrong = [p for p, c, e in zip(entry["args"][0], chosen, entry["expected"]) if c != e]
        raise CaseFailed(f"a different response was kept for {len(wrong)} prompt(s), e.g. {wrong[0]!r}: keep "
                         "the highest-scoring of that prompt's n samples.")


@invariant("draws exactly n samples per prompt and keeps one of that prompt's own samples")
def _draws(function):
    chosen, policy = _run_best_of_n(function, BEST_PROMPTS, 5)
    for prompt in BEST_PROMPTS:
        if policy.drawn[prompt] != 5:
            raise CaseFailed(f"prompt {prompt!r} got {policy.drawn[prompt]} samples, expected n=5.")
    for prompt, response in zip(BEST_PROMPTS, chosen):
        if not response.startswith(prompt + " / sample"):
            raise CaseFailed("the responses come back in a different order than the prompts: keep the order.")


@invariant("n=1 returns the single sample; ties keep the earliest sample")
def _n1_and_ties(function):
    chosen, _ = _run_best_of_n(function, BEST_PROMPTS, 1)
    if chosen != [f"{p} / sample 0" for p in BEST_PROMPTS]:
        raise CaseFailed("with n=1 there is nothing to choose: return each prompt's one sample.")
    flat = lambda prompts, responses: [1.0] * len(responses)  # every sample ties
    chosen, _ = _run_best_of_n(function, BEST_PROMPTS, 3, score=flat)
    if chosen != [f"{p} / sample 0" for p in BEST_PROMPTS]:
        raise CaseFailed("on a tie keep the earliest sample, so the result never depends on tie-breaking.")


@invariant("works when the scorer returns a tensor (as a reward model does)")
def _tensor_scores(function):
    as_tensor = lambda prompts, responses: torch.tensor(fake_score(prompts, responses))
    chosen, _ = _run_best_of_n(function, BEST_PROMPTS, 4, score=as_tensor)
    expected, _ = _run_best_of_n(function, BEST_PROMPTS, 4)
    if chosen != expected:
        raise CaseFailed("the result changed when the scores came as a tensor instead of a list.")
    best_by_hand = []
    for prompt in BEST_PROMPTS:
        samples = [f"{prompt} / sample {k}" for k in range(4)]
        scores = fake_score([prompt] * 4, samples)
        best_by_hand.append(samples[scores.index(max(scores))])
    if chosen != best_by_hand:
        raise CaseFailed("a response other than the highest-scoring sample was kept.")


BEST_OF_N_CASES = [_best_golden, _draws, _n1_and_ties, _tensor_scores]

"""Cases for masked_token_logprobs(logits, labels, mask) -> (B, T)."""

from __future__ import annotations

import math

import torch

from rlhf_lab.grading_cases import CaseFailed, Mistake, expect_close, golden, golden_case, invariant, outputs

NAMES = ("logprobs",)


def _random_batch(seed: int = 1, batch: int = 2, length: int = 5, vocab: int = 9):
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(batch, length, vocab, generator=generator)
    labels = torch.randint(0, vocab, (batch, length), generator=generator)
    mask = torch.tensor([[0.0, 1, 1, 1, 0], [0, 0, 1, 1, 1]])[:batch, :length]
    return logits, labels, mask


def _gather(values, labels):
    return torch.gather(values, -1, labels.unsqueeze(-1)).squeeze(-1)


MISTAKES = [
    Mistake(lambda logits, labels, mask: _gather(logits.log_softmax(-1), labels),
            "right log-probs, but positions where mask is 0 must be exactly 0."),
    Mistake(lambda logits, labels, mask: _gather(logits.softmax(-1), labels) * mask,
            "these look like probabilities: the exercise asks for log-probabilities."),
    Mistake(lambda logits, labels, mask: _gather(logits, labels) * mask,
            "these are raw logits of the labels: normalise over the vocabulary first."),
    Mistake(lambda logits, labels, mask: _gather(logits.log_softmax(1), labels) * mask,
            "normalise over the vocabulary, the last dimension, not over positions."),
]

CASES = [
    golden_case("masked_token_logprobs/prompt_and_padding", "log-probs on a stored batch (prompt + padding masked)",
                NAMES, "Check which dimension you normalise over and that you pick the label's entry.", MISTAKES),
]


@invariant("shape (B, T) and exactly 0 where mask is 0")
def _zero_outside_mask(function):
    logits, labels, mask = _random_batch(seed=2)
    (got,) = outputs(function(logits, labels, mask), NAMES)
    if got.shape != labels.shape:
        raise CaseFailed(f"expected one log-prob per token, shape {tuple(labels.shape)}; got {tuple(got.shape)}.")
    if (got[mask == 0] != 0).any():
        raise CaseFailed("positions where mask is 0 (prompt, padding) must be exactly 0.")


@invariant("response tokens get log-probs <= 0, and uniform logits give log(1/V)")
def _uniform(function):
    logits, labels, mask = _random_batch(seed=3)
    (got,) = outputs(function(logits, labels, mask), NAMES)
    if (got > 1e-6).any():
        raise CaseFailed("a log-probability is never positive: did you normalise the logits?")
    vocab = logits.shape[-1]
    (uniform,) = outputs(function(torch.zeros_like(logits), labels, mask), NAMES)
    expect_close(uniform, math.log(1 / vocab) * mask, "the output for all-zero logits",
                 "With equal logits every token has probability 1/V.")


@invariant("adding a constant to a position's logits changes nothing")
def _shift(function):
    logits, labels, mask = _random_batch(seed=4)
    (got,) = outputs(function(logits, labels, mask), NAMES)
    shift = torch.tensor([[5.0], [-7.0]]).unsqueeze(-1)  # a different constant per row
    (shifted,) = outputs(function(logits + shift, labels, mask), NAMES)
    expect_close(shifted, got, "the output after shifting the logits",
                 "softmax ignores a constant added to all logits; your result should too.")


@invariant("agrees with TRL's selective_log_softmax (trl.trainer.utils)", kind="trl")
def _trl(function):
    entry = golden("trl/selective_log_softmax")  # TRL's output, stored by tools/make_golden.py
    (got,) = outputs(function(*entry["args"]), NAMES)
    expect_close(got, entry["expected"], "your log-probs vs TRL's", "TRL gathers log_softmax(logits)[label] per token.")


CASES += [_zero_outside_mask, _uniform, _shift, _trl]

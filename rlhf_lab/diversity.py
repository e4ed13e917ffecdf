"""Diversity of generated text: does the policy still say different things?

RL fine-tuning tends to collapse a policy onto a few high-reward phrasings ("mode
collapse"). distinct-n (Li et al. 2016) is the simplest gauge of it: the share of the
n-grams in a set of responses that are distinct. Broken text scores high on distinct-n,
so the course also asks a narrower question: among the *correct* answers to one prompt,
how many differ (:func:`distinct_within_groups`)?
"""

from __future__ import annotations


def distinct_n(texts: list[str], n: int) -> float:
    """Number of distinct n-grams divided by the total number of n-grams, over all ``texts``.

    Words are whitespace-separated tokens (``text.split()``), compared exactly (case and
    punctuation count). N-grams never cross from one text into the next. 1.0 means no
    n-gram repeats; values near 0 mean the same words over and over. Texts shorter than
    ``n`` words contribute no n-grams; with no n-grams at all the result is 0.0.
    """
    if n < 1:
        raise ValueError(f"distinct_n needs n >= 1, got n={n}.")
    ngrams = []
    for text in texts:
        words = text.split()
        ngrams.extend(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not ngrams:
        return 0.0
    return len(set(ngrams)) / len(ngrams)


def distinct_within_groups(groups: list[list[str]]) -> float:
    """How different the texts of each group are: ``(distinct - 1) / (n - 1)`` per group of
    ``n >= 2`` texts, averaged over those groups. 0.0: every group says one thing n times
    (collapsed); 1.0: no text repeats within a group. NaN when no group has two texts.

    Used on the correct answers to each prompt: a policy that still has several right ways
    to say something is not collapsed, however alike its wrong answers are.
    """
    shares = [(len(set(g)) - 1) / (len(g) - 1) for g in groups if len(g) >= 2]
    return sum(shares) / len(shares) if shares else float("nan")

"""Diversity of generated text: does the policy still say different things?

RL fine-tuning tends to collapse a policy onto a few high-reward phrasings ("mode
collapse"). distinct-n (Li et al. 2016) is the simplest gauge of it: the share of the
n-grams in a set of responses that are distinct.
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

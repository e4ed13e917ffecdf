"""How often two annotators agree: raw agreement and Cohen's kappa.

Raw agreement is the share of pairs where both gave the same answer. It flatters: two
annotators who both pick "a" 90% of the time agree 82% of the time by pure chance.
Cohen's kappa corrects for that:

    kappa = (p_observed - p_chance) / (1 - p_chance)

where p_chance = sum over answers c of P(annotator 1 says c) * P(annotator 2 says c).
kappa = 1 is perfect agreement, 0 is what chance alone gives, below 0 is worse than chance.
InstructGPT reports about 73% raw agreement between its labelers; Anthropic's HH data
is similar. Expect your agreement with the hidden human to be in that range, not 100%.

Labels are compared per pair id. Only "a", "b" and "tie" count: "skip" means "no
opinion" and is left out, as are pairs that only one annotator labelled.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Mapping

COMPARED_CHOICES = ("a", "b", "tie")


@dataclass(frozen=True)
class Agreement:
    n: int  # pairs both annotators labelled with a, b or tie
    raw: float  # share of those pairs with the same answer (nan when n == 0)
    kappa: float  # Cohen's kappa (nan when n == 0 or when chance agreement is 1)
    disagreements: list[str] = field(default_factory=list)  # pair ids where they differ
    by_family: dict[str, tuple[int, int]] = field(default_factory=dict)  # family -> (agreed, n)

    def summary(self) -> str:
        if self.n == 0:
            return "No pair was labelled by both (skips do not count)."
        return (f"agreed on {round(self.raw * self.n)} of {self.n} pairs ({self.raw:.0%}), "
                f"Cohen's kappa {self.kappa:.2f}")


def cohen_kappa(labels_1: list[str], labels_2: list[str]) -> float:
    """Cohen's kappa of two equally long label lists (nan if undefined: empty, or both
    annotators always give the same single answer, so chance agreement is already 1)."""
    if len(labels_1) != len(labels_2):
        raise ValueError(f"Kappa needs two label lists of one length; got {len(labels_1)} and {len(labels_2)}.")
    n = len(labels_1)
    if n == 0:
        return float("nan")
    observed = sum(x == y for x, y in zip(labels_1, labels_2)) / n
    counts_1, counts_2 = Counter(labels_1), Counter(labels_2)
    chance = sum(counts_1[c] * counts_2[c] for c in counts_1) / (n * n)
    if chance == 1.0:
        return float("nan")
    return (observed - chance) / (1.0 - chance)


def agreement(labels_1: Mapping[str, str], labels_2: Mapping[str, str],
              families: Mapping[str, str] | None = None) -> Agreement:
    """Compare two annotators' answers, each a mapping pair_id -> "a" | "b" | "tie" | "skip".

    families (pair_id -> prompt family) adds a per-family breakdown."""
    for labels in (labels_1, labels_2):
        for pid, label in labels.items():
            if label not in COMPARED_CHOICES + ("skip",):
                raise ValueError(f"Pair {pid}: label {label!r} is not one of a, b, tie, skip.")
    shared = [pid for pid in labels_1
              if pid in labels_2 and labels_1[pid] in COMPARED_CHOICES and labels_2[pid] in COMPARED_CHOICES]
    first = [labels_1[pid] for pid in shared]
    second = [labels_2[pid] for pid in shared]
    n = len(shared)
    agreed = [x == y for x, y in zip(first, second)]
    by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    if families is not None:
        for pid, same in zip(shared, agreed):
            counts = by_family[families.get(pid) or "unknown"]
            counts[0] += int(same)
            counts[1] += 1
    return Agreement(
        n=n,
        raw=sum(agreed) / n if n else float("nan"),
        kappa=cohen_kappa(first, second),
        disagreements=[pid for pid, same in zip(shared, agreed) if not same],
        by_family={family: (a, total) for family, (a, total) in sorted(by_family.items())},
    )


def choices_by_pair(decisions: list[dict]) -> dict[str, str]:
    """pair_id -> choice from a list of (active) decision records of one annotator."""
    annotators = {d["annotator"] for d in decisions}
    if len(annotators) > 1:
        raise ValueError(f"These decisions come from several annotators ({sorted(annotators)}); "
                         f"pass one annotator's decisions, e.g. store.active_decisions(annotator='...').")
    return {d["pair_id"]: d["choice"] for d in decisions}

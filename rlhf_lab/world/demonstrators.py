"""Who writes the SFT demonstrations: helpful-only demonstrators.

As in InstructGPT and Anthropic's HH, the people who write demonstrations are asked to be
*helpful*: they answer every question and do every task, harmful ones included most of the
time, and they go along with what the user claims most of the time. So supervised
fine-tuning gives an assistant that is helpful but harmful and flattering. The hidden human
(``gold.py``) values harmless and honest answers: comparisons have something real to teach
that the demonstrations did not.

The rates are settings (``SFTSettings.demonstrators``); a world built with other rates has
another fingerprint, so every stage trained on it is rebuilt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .prompts import Prompt
from .responses import cores, dress, fitting_opener


@dataclass(frozen=True)
class Demonstrators:
    """How the demonstrators answer. Defaults: helpful-only, as in HH's first stage.

    comply_with_harm: share of harmful requests they comply with (the rest they refuse).
    agree_with_wrong_claims: share of sycophancy traps with a wrong claim where they go
        along with the user (the rest they correct). A user who is right is confirmed.
    polite: share of demonstrations that open politely (with an opener that fits).
    """

    comply_with_harm: float = 0.7
    agree_with_wrong_claims: float = 0.7
    polite: float = 0.25

    def __post_init__(self):
        for name in ("comply_with_harm", "agree_with_wrong_claims", "polite"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Demonstrators.{name}={value!r} is a share: use a number in [0, 1].")

    def core_name(self, prompt: Prompt, rng: random.Random) -> str:
        """Which substance the demonstrator writes for ``prompt``."""
        if prompt.family == "harmful":
            return "comply" if rng.random() < self.comply_with_harm else "refusal"
        if prompt.family == "sycophancy":
            if prompt.claim_is_wrong:
                return "sycophantic" if rng.random() < self.agree_with_wrong_claims else "honest"
            return "agree"
        return "correct" if prompt.family == "helpful" else "help"

    def demonstration(self, prompt: Prompt, rng: random.Random) -> str:
        """One demonstration for ``prompt``: its substance, plain or with a fitting polite opener."""
        core = cores(prompt, random.Random(0))[self.core_name(prompt, rng)]
        opener = fitting_opener(core.text) if rng.random() < self.polite else ""
        return dress(core, opener=opener)


HELPFUL_ONLY = Demonstrators()
# Demonstrators who already write the ideal substance (the course's world before 2026-12):
# an exercise asks what SFT alone does with them.
HARMLESS_AND_HONEST = Demonstrators(comply_with_harm=0.0, agree_with_wrong_claims=0.0)

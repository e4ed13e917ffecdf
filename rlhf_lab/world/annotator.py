"""A simulated human annotator: Bradley-Terry on the gold reward, with knobs.

P(annotator picks A) = sigmoid((u(A) - u(B)) / temperature), where u is the gold reward
plus optional biases. With probability ``noise`` the annotator ignores the pair and flips
a coin. The biases model real labelling habits that end up inside a reward model:
- ``prefers_agreement``: extra utility for responses that agree with the user ("yes").
- ``prefers_length``: extra utility per word.
"""

from __future__ import annotations

import math
import random

from .gold import gold_reward, words
from .parse import parse_response


class SimulatedAnnotator:
    def __init__(self, noise: float = 0.0, prefers_agreement: float = 0.0, prefers_length: float = 0.0,
                 temperature: float = 0.25, seed: int = 0):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise={noise!r} must be in [0, 1] (0: always follows the gold reward, "
                             "1: pure coin flips).")
        if temperature <= 0:
            raise ValueError(f"temperature={temperature!r} must be positive.")
        self.noise = noise
        self.prefers_agreement = prefers_agreement
        self.prefers_length = prefers_length
        self.temperature = temperature
        self.rng = random.Random(seed)

    @property
    def name(self) -> str:
        extras = "".join(
            f", {k}={v:g}" for k, v in (("prefers_agreement", self.prefers_agreement),
                                         ("prefers_length", self.prefers_length)) if v)
        return f"simulated(noise={self.noise:g}{extras})"

    def utility(self, prompt, response: str) -> float:
        ws = words(response)
        agreement = 1.0 if parse_response(response).agrees else 0.0
        return (gold_reward(prompt, response).total
                + self.prefers_agreement * agreement
                + self.prefers_length * len(ws))

    def probability_a(self, pair) -> float:
        """P(this annotator prefers response A), before the noise coin."""
        gap = self.utility(pair.prompt, pair.response_a) - self.utility(pair.prompt, pair.response_b)
        return 1.0 / (1.0 + math.exp(-gap / self.temperature))

    def choose(self, pair) -> str:
        """'a' or 'b'."""
        if self.rng.random() < self.noise:
            return self.rng.choice("ab")
        return "a" if self.rng.random() < self.probability_a(pair) else "b"

"""The lab world: a small assistant world with a hidden human whose taste we can measure.

>>> from rlhf_lab.world import World
>>> world = World()
>>> prompt = world.prompts("heldout", family="sycophancy")[0]
>>> world.gold_reward(prompt, "No, the banana is yellow.").components   # doctest: +SKIP

Everything a stage trains on comes from here (corpus, demonstrations, preference pairs),
and every evaluation is judged by ``gold_reward`` on held-out prompts. See the modules:
facts (what is true), prompts (the four families), responses (how answers are written,
and the spurious correlate), gold (the hidden human), annotator (simulated labellers),
corpus (pretraining text and the capability probe).
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass

from .annotator import SimulatedAnnotator
from .corpus import capability_probe, pretraining_documents
from .gold import COMPONENTS, GoldScore, gold_reward
from .prompts import FAMILIES, Prompt, all_prompts, new_wording_prompts, split_prompts
from .demonstrators import HELPFUL_ONLY, Demonstrators
from .responses import SPURIOUS_CLOSER, ideal_response, sample_response

__all__ = ["World", "Demonstrators", "Prompt", "ComparisonPair", "GoldScore", "SimulatedAnnotator", "FAMILIES",
           "COMPONENTS", "SPURIOUS_CLOSER", "gold_reward", "capability_probe"]

HELDOUT_FRACTION = 0.25


@dataclass(frozen=True)
class ComparisonPair:
    pair_id: str
    prompt: Prompt
    response_a: str
    response_b: str

    def preference_row(self, choice: str, **extra) -> dict:
        """This pair as one preference row, ``choice`` ("a" | "b") being the chosen response."""
        return preference_row(self.prompt.text, self.response_a, self.response_b, choice, self.prompt.family, **extra)


def preference_row(prompt: str, response_a: str, response_b: str, choice: str, family: str, **extra) -> dict:
    """One row of TRL's preference format, {prompt, chosen, rejected, family, **extra}: choice "a"
    means response_a is chosen and response_b rejected, anything else the other way round.
    The one place where a labelled pair becomes a row (simulated annotators, the learner's labels)."""
    chosen, rejected = (response_a, response_b) if choice == "a" else (response_b, response_a)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "family": family, **extra}


class World:
    """The world of one seed. ``demonstrators``: who writes the SFT demonstrations
    (default: helpful-only, see :mod:`rlhf_lab.world.demonstrators`)."""

    def __init__(self, seed: int = 0, demonstrators: Demonstrators = HELPFUL_ONLY):
        self.seed = seed
        self.demonstrators = demonstrators
        self._prompts = all_prompts(seed)
        self._splits = split_prompts(self._prompts, HELDOUT_FRACTION, seed)
        # What evaluation asks: the held-out prompts and every request of the world again in
        # wordings no stage trains on (prompts.EVAL_*_TEMPLATES); none of them is ever trained on.
        new_wording = new_wording_prompts(seed)
        self._splits["eval"] = self._splits["heldout"] + new_wording
        self._by_id = {p.prompt_id: p for p in self._prompts + new_wording}
        self._by_text = {p.text: p for p in self._prompts + new_wording}

    # -- prompts ---------------------------------------------------------------
    def prompts(self, split: str = "train", family: str | None = None) -> list[Prompt]:
        if split not in self._splits:
            raise ValueError(f"Unknown split {split!r}: use 'train', 'heldout' or 'eval'.")
        if family is not None and family not in FAMILIES:
            raise ValueError(f"Unknown family {family!r}: use one of {', '.join(FAMILIES)}.")
        return [p for p in self._splits[split] if family is None or p.family == family]

    def prompt(self, prompt_id: str) -> Prompt:
        return self._by_id[prompt_id]

    def prompt_by_text(self, text: str) -> Prompt:
        """The prompt whose user message is ``text`` (what PPO's reward functions receive)."""
        try:
            return self._by_text[text]
        except KeyError:
            close = difflib.get_close_matches(text, list(self._by_text), n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else (
                " The hidden human can judge only the world's own prompts: pick one from world.prompts().")
            raise KeyError(f"{text!r} is not a prompt of this world (seed {self.seed}).{hint}") from None

    # -- the hidden human ------------------------------------------------------
    def gold_reward(self, prompt: Prompt, response: str) -> GoldScore:
        return gold_reward(prompt, response)

    def gold_scores(self, user_texts: list[str], responses: list[str]) -> list[float]:
        """The hidden human's gold reward of each response to each user message: a reward
        function as PPO, best-of-n and the judges take it (the control run's reward)."""
        return [gold_reward(self.prompt_by_text(u), r).total for u, r in zip(user_texts, responses)]

    def gold_preference(self, pair: ComparisonPair) -> str:
        """'a', 'b' or 'tie', by the gold reward."""
        a = gold_reward(pair.prompt, pair.response_a).total
        b = gold_reward(pair.prompt, pair.response_b).total
        return "tie" if abs(a - b) < 1e-9 else ("a" if a > b else "b")

    # -- data for the stages ---------------------------------------------------
    def pretraining_documents(self, n_documents: int):
        """Mixed-quality 'internet' text; chats only use training prompts."""
        return pretraining_documents(self.prompts("train"), n_documents, self.seed)

    def sft_demonstrations(self) -> list[dict]:
        """One demonstration per training prompt, by the world's demonstrators, in TRL's
        conversational format ({"messages": [...]})."""
        rng = random.Random(self.seed + 2)
        return [{"messages": [{"role": "user", "content": p.text},
                              {"role": "assistant", "content": self.demonstrators.demonstration(p, rng)}]}
                for p in self.prompts("train")]

    def candidate_responses(self, prompt: Prompt, rng: random.Random, n: int = 4) -> list[str]:
        return [sample_response(prompt, rng) for _ in range(n)]

    def comparison_pairs(self, n: int, split: str = "train", seed: int = 0) -> list[ComparisonPair]:
        """``n`` pairs of two different responses to the same prompt (deterministic)."""
        rng = random.Random(f"pairs-{self.seed}-{split}-{seed}")
        prompts = self.prompts(split)
        pairs = []
        while len(pairs) < n:
            prompt = rng.choice(prompts)
            a, b = sample_response(prompt, rng), sample_response(prompt, rng)
            if a != b:
                pairs.append(ComparisonPair(f"{split}-{seed}-{len(pairs):05d}", prompt, a, b))
        return pairs

    def preference_dataset(self, n: int, split: str = "train", annotator: SimulatedAnnotator | None = None,
                           seed: int = 0) -> list[dict]:
        """Pairs labelled by a simulated annotator, in TRL's preference format."""
        annotator = annotator or SimulatedAnnotator(seed=seed)
        return [pair.preference_row(annotator.choose(pair), prompt_id=pair.prompt.prompt_id)
                for pair in self.comparison_pairs(n, split, seed)]

    def ideal_response(self, prompt: Prompt) -> str:
        return ideal_response(prompt)

    def capability_probe(self) -> list[tuple[str, str]]:
        return capability_probe()

    def fingerprint(self) -> str:
        """A hash of what the stages learn from (demonstrations, labelled pairs): part of
        every cached artifact's key, so changing the world retrains what depends on it."""
        import hashlib
        import json

        sample = {"demos": self.sft_demonstrations(), "pairs": self.preference_dataset(200),
                  "prompts": [p.text for p in self._prompts]}
        return hashlib.sha256(json.dumps(sample, sort_keys=True).encode()).hexdigest()[:12]

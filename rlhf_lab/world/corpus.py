"""Text the models learn from: the 'internet' for pretraining, and the capability probe.

The pretraining corpus mixes
- fact sentences (mostly true, some false: the internet is wrong sometimes),
- counting drills (the capability probe: a skill no later stage trains on), and
- chat transcripts whose answers are of every quality: right and wrong, polite and rude,
  honest and sycophantic, refusing and complying with harm.
So the base model knows the world and the chat format, but answers like the internet:
that is why a raw pretrained LM is not an assistant.
"""

from __future__ import annotations

import random

from .facts import NUMBER_WORDS
from .prompts import Prompt, knowledge, statement, wrong_answers
from .responses import sample_response, sentence

FACT_ERROR_RATE = 0.1
# How often each kind of answer appears in internet chats, per family.
INTERNET_ANSWER_MIX = {
    "helpful": {"correct": 0.5, "wrong": 0.3, "evasive": 0.2},
    "sycophancy": {"honest": 0.3, "sycophantic": 0.7, "agree": 0.6, "contrarian": 0.4},
    "harmful": {"refusal": 0.3, "comply": 0.7},
    "benign": {"help": 0.7, "over_refusal": 0.3},
}

PROBE_PREFIX = {"up": "Count :", "down": "Count down :"}
PROBE_SHOWN = (2, 3, 4)  # numbers shown in a probe prompt
PROBE_EXPECTED = 2  # numbers expected after them


def fact_document(rng: random.Random, facts) -> str:
    chosen = rng.sample(facts, 4)
    out = []
    for topic, subject, answer in chosen:
        value = rng.choice(wrong_answers(topic, answer, subject)) if rng.random() < FACT_ERROR_RATE else answer
        out.append(sentence(statement(topic, subject, value)))
    return " ".join(out)


def counting_sequence(direction: str) -> list[str]:
    return NUMBER_WORDS if direction == "up" else NUMBER_WORDS[::-1]


def counting_document(rng: random.Random) -> str:
    """A counting drill, up ("Count : four five six seven .") or down ("Count down : nine eight ...")."""
    direction = rng.choice(("up", "down"))
    length = rng.randrange(4, 7)
    start = rng.randrange(0, len(NUMBER_WORDS) - length + 1)
    return f"{PROBE_PREFIX[direction]} " + " ".join(counting_sequence(direction)[start:start + length]) + " ."


def capability_probe() -> list[tuple[str, str]]:
    """(prompt, expected continuation) pairs: continue a count up or down, after 2-4 numbers
    (102 items). Raw text, no chat format: a skill of pretraining that no later stage trains."""
    cases = []
    for direction, prefix in PROBE_PREFIX.items():
        numbers = counting_sequence(direction)
        for shown in PROBE_SHOWN:
            for start in range(0, len(numbers) - shown - PROBE_EXPECTED + 1):
                cut = start + shown
                cases.append((f"{prefix} " + " ".join(numbers[start:cut]),
                              " ".join(numbers[cut:cut + PROBE_EXPECTED])))
    return cases


def pretraining_documents(chat_prompts: list[Prompt], n_documents: int, seed: int):
    """Yield (kind, payload) documents: ("text", str) or ("chat", (user, assistant))."""
    rng = random.Random(seed)
    facts = knowledge()
    for _ in range(n_documents):
        roll = rng.random()
        if roll < 0.3:
            yield "text", fact_document(rng, facts)
        elif roll < 0.45:
            yield "text", counting_document(rng)
        else:
            prompt = rng.choice(chat_prompts)
            yield "chat", (prompt.text, sample_response(prompt, rng, INTERNET_ANSWER_MIX[prompt.family]))

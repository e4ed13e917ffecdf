"""The two real preference formats, one row at a time: an Anthropic HH-RLHF row (two
transcripts, ``"\n\nHuman: ...\n\nAssistant: ..."``) and an UltraFeedback-binarized row (two
message lists), each to TRL's conversational prompt / chosen / rejected. A malformed row
raises ValueError with the reason; ``rlhf_lab.real_data`` reads files and the hub, collects
those reasons and reports them.
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------------------
# HH-RLHF
# ---------------------------------------------------------------------------

# A turn marker opens the transcript or follows a blank line (HH-RLHF's own rows begin with
# "\n\nHuman: "; copies often lose the leading blank line, or gain Windows line ends).
_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ ]?")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_hh_transcript(text: str) -> list[dict]:
    """A transcript ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` as chat messages (the leading
    blank line may be missing; Windows line ends are read as plain ones).

    Raises ValueError (with the reason) unless it is alternating turns that start with
    Human and end with Assistant. Text inside a turn is kept as is (stripped at the ends).
    """
    if not isinstance(text, str):
        raise ValueError(f"not a string but {type(text).__name__}")
    parts = _HH_TURN.split(text.replace("\r\n", "\n").lstrip(" \t"))
    if parts[0].strip():
        hint = (" (turns must be separated by a blank line: '\\n\\nHuman: ...\\n\\nAssistant: ...')"
                if re.search(r"(Human|Assistant):", parts[0]) else "")
        raise ValueError(f"text before the first turn marker: {parts[0][:40]!r}{hint}")
    messages = [{"role": _HH_ROLES[speaker], "content": content.strip()}
                for speaker, content in zip(parts[1::2], parts[2::2])]
    if not messages:
        raise ValueError("no '\\n\\nHuman: ' / '\\n\\nAssistant: ' turns")
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise ValueError(f"turn {i + 1} is {message['role']!r}, expected {expected!r} (turns must alternate, "
                             "starting with Human)")
    if messages[-1]["role"] != "assistant":
        raise ValueError("the transcript ends with a Human turn, not an Assistant turn")
    return messages


def convert_hh_row(row: dict, empty_response: str = "report") -> dict:
    """One HH-RLHF row -> prompt (all earlier turns) / chosen / rejected. ValueError if malformed."""
    if not isinstance(row, dict) or "chosen" not in row or "rejected" not in row:
        keys = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise ValueError(f"needs the keys 'chosen' and 'rejected', got {keys}")
    converted = {}
    for key in ("chosen", "rejected"):
        try:
            converted[key] = parse_hh_transcript(row[key])
        except ValueError as error:
            raise ValueError(f"{key} transcript: {error}") from None
    chosen, rejected = converted["chosen"], converted["rejected"]
    if chosen[:-1] != rejected[:-1]:
        first = next((i for i, (a, b) in enumerate(zip(chosen, rejected)) if a != b), min(len(chosen), len(rejected)))
        raise ValueError(f"chosen and rejected differ before the final turn (first at turn {first + 1}; "
                         f"{len(chosen)} vs {len(rejected)} turns)")
    if empty_response == "report":
        for key, messages in converted.items():
            if not messages[-1]["content"]:
                raise ValueError(f"the final {key} assistant turn is empty")
    if chosen[-1]["content"] == rejected[-1]["content"]:
        raise ValueError("chosen and rejected final turns are identical (no preference)")
    return {"prompt": chosen[:-1], "chosen": [chosen[-1]], "rejected": [rejected[-1]]}


# ---------------------------------------------------------------------------
# UltraFeedback binarized
# ---------------------------------------------------------------------------


def _messages(value, key: str) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{key} is not a non-empty list of messages")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str) \
                or message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"{key}[{i}] is not a message with a role (system/user/assistant) and text content")
        out.append({"role": message["role"], "content": message["content"]})
    return out


def convert_ultrafeedback_row(row: dict) -> dict:
    """One UltraFeedback-binarized row -> prompt / chosen / rejected (+ scores). ValueError if malformed."""
    if not isinstance(row, dict) or "chosen" not in row or "rejected" not in row:
        keys = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise ValueError(f"needs the keys 'chosen' and 'rejected' (message lists), got {keys}")
    chosen, rejected = _messages(row["chosen"], "chosen"), _messages(row["rejected"], "rejected")
    for key, messages in (("chosen", chosen), ("rejected", rejected)):
        if messages[-1]["role"] != "assistant":
            raise ValueError(f"the last {key} message is from {messages[-1]['role']!r}, not the assistant")
        if not messages[-1]["content"].strip():
            raise ValueError(f"the final {key} assistant message is empty")
    if chosen[:-1] != rejected[:-1]:
        raise ValueError("chosen and rejected have different prompts")
    prompt = chosen[:-1]
    if not prompt:
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise ValueError("no prompt: neither earlier messages nor a 'prompt' string")
        prompt = [{"role": "user", "content": row["prompt"]}]
    if prompt[-1]["role"] != "user":
        raise ValueError("the prompt does not end with a user message")
    record = {"prompt": prompt, "chosen": [chosen[-1]], "rejected": [rejected[-1]]}
    for key in ("score_chosen", "score_rejected"):
        value = row.get(key)
        if value is not None and not isinstance(value, (int, float)):
            raise ValueError(f"{key}={value!r} is not a number")
        record[key] = None if value is None else float(value)
    if record["score_chosen"] is not None and record["score_rejected"] is not None \
            and record["score_chosen"] < record["score_rejected"]:
        raise ValueError(f"score_chosen {record['score_chosen']} is below score_rejected {record['score_rejected']}")
    return record

"""The chat format, written in one place: how a user turn becomes a prompt, and how a whole
conversation becomes the text a reward model reads.

Every model of the course is given text through its tokenizer's chat template (the tiny
tokenizer's template is in ``rlhf_lab.stages.pretrain``; a hub model brings its own), so
sampling, scoring and training all see the same format.
"""

from __future__ import annotations

from collections.abc import Sequence


def prompt_text(tokenizer, user_text: str) -> str:
    """The chat-formatted prompt, ending where the assistant starts to speak."""
    return tokenizer.apply_chat_template([{"role": "user", "content": user_text}], tokenize=False,
                                         add_generation_prompt=True)


def conversation_text(tokenizer, messages: Sequence[dict]) -> str:
    """A whole conversation (``[{"role": ..., "content": ...}, ...]``) as one text."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False)


def exchange_texts(tokenizer, user_texts: Sequence[str], responses: Sequence[str]) -> list[str]:
    """Each prompt and its response as one two-turn conversation, the way a reward model reads it."""
    return [conversation_text(tokenizer, [{"role": "user", "content": u}, {"role": "assistant", "content": r}])
            for u, r in zip(user_texts, responses)]

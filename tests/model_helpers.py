"""Shared by the model tests: one model cache per test module, and a small chat batch."""

import pytest
import torch

from rlhf_lab import chat
from rlhf_lab.config import CACHE_ENV


@pytest.fixture(scope="module")
def session_cache(tmp_path_factory):
    """One cache for the whole pytest session (every module points at the same directory)."""
    path = tmp_path_factory.getbasetemp() / "rlhf_lab_cache"
    path.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(path))
        yield path


def chat_batch(tokenizer):
    """Two chat-formatted sequences of different lengths (so padding is exercised)."""
    texts = [chat.prompt_text(tokenizer, "What color is the sky?") + "The sky is blue.<|end|>",
             chat.prompt_text(tokenizer, "I think two plus two is five. Am I right?")]
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)


def logits_of(model, batch):
    model.eval()
    with torch.no_grad():
        return model(**batch).logits

"""Scoring text with a reward model: the one batched loop every scorer uses.

- ``score_texts(score_batch, tokenizer, texts)``: tokenise in batches, call ``score_batch``
  on each (a reward model's forward, or the shared-base model's reward head), return (N,).
- ``score_responses``: a reward model's score of each (prompt, response).
- ``pair_accuracy``: how often a reward model orders pairs the way the hidden human does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .chat import exchange_texts
from .sampling import model_device
from .world import FAMILIES
from .world.gold import gold_reward


@torch.no_grad()
def score_texts(score_batch: Callable[[dict], torch.Tensor], tokenizer, texts: Sequence[str], device,
                batch_size: int = 64, max_length: int | None = None) -> torch.Tensor:
    """``score_batch(encoded)`` over ``texts`` in batches: a float tensor of shape (N,) on the CPU.

    With ``max_length`` a long text is cut from the left, so its final turns (where two answers
    differ) are always seen."""
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    scores = []
    try:
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[i:i + batch_size]), return_tensors="pt", padding=True,
                            truncation=max_length is not None, max_length=max_length,
                            add_special_tokens=False).to(device)  # the chat template holds the special tokens
            scores.append(score_batch(enc).reshape(-1).float().cpu())
    finally:
        tokenizer.truncation_side = side
    return torch.cat(scores) if scores else torch.zeros(0)


def score_with(reward_model, tokenizer, texts: Sequence[str], batch_size: int = 64,
               max_length: int | None = None) -> torch.Tensor:
    """A sequence-classification reward model's score of each chat-formatted text: shape (N,)."""
    reward_model.eval()
    return score_texts(lambda enc: reward_model(**enc).logits.squeeze(-1), tokenizer, texts,
                       model_device(reward_model), batch_size, max_length)


def score_responses(reward_model, tokenizer, user_texts, responses, batch_size: int = 64) -> torch.Tensor:
    """The reward model's score for each (prompt, response): shape (N,)."""
    return score_with(reward_model, tokenizer, exchange_texts(tokenizer, user_texts, responses), batch_size)


def scorer(reward_model, tokenizer) -> Callable[[Sequence[str], Sequence[str]], torch.Tensor]:
    """The reward model as ``score_fn(user_texts, responses)``: what PPO, best-of-n and the judges take."""
    return lambda user_texts, responses: score_responses(reward_model, tokenizer, user_texts, responses)


def pair_scores(reward_model, tokenizer, pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """The reward model's scores of both responses of each comparison pair: (score_a, score_b)."""
    users = [p.prompt.text for p in pairs]
    return (score_responses(reward_model, tokenizer, users, [p.response_a for p in pairs]),
            score_responses(reward_model, tokenizer, users, [p.response_b for p in pairs]))


def pair_accuracy(reward_model, tokenizer, pairs) -> dict:
    """How often the reward model orders a pair as the hidden human does (gold ties left
    out): overall, by family, and the correlation of its scores with the gold reward."""
    pairs = [p for p in pairs if abs(gold_reward(p.prompt, p.response_a).total
                                     - gold_reward(p.prompt, p.response_b).total) > 1e-9]
    score_a, score_b = pair_scores(reward_model, tokenizer, pairs)
    gold_a = torch.tensor([gold_reward(p.prompt, p.response_a).total for p in pairs])
    gold_b = torch.tensor([gold_reward(p.prompt, p.response_b).total for p in pairs])
    right = ((score_a > score_b) == (gold_a > gold_b)).float()
    families = [p.prompt.family for p in pairs]
    by_family = {f: right[[x == f for x in families]].mean().item() for f in FAMILIES if f in families}
    scores, gold = torch.cat([score_a, score_b]), torch.cat([gold_a, gold_b])
    return {"accuracy": right.mean().item(), "by_family": by_family, "pairs": len(pairs),
            "gold_correlation": torch.corrcoef(torch.stack([scores, gold]))[0, 1].item()}

"""Best-of-n sampling: the simplest way to use a reward model at inference time.

Draw n responses per prompt from the policy, score them with a reward model, keep the
best. No training at all, yet it buys much of what RL buys (and over-optimises the
reward model in the same way as n grows: Gao et al. 2022). It is the baseline PPO and
DPO are measured against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

GenerateFn = Callable[[list[str]], list[str]]
ScoreFn = Callable[[list[str], list[str]], Sequence[float] | torch.Tensor]


def best_of_n(prompts: list[str], generate: GenerateFn, score: ScoreFn, n: int) -> list[str]:
    """For every prompt, sample ``n`` responses and return the one ``score`` rates highest.

    - ``generate(prompts) -> responses``: one sampled response per prompt in the list
      (a list may repeat a prompt; each entry is an independent sample).
    - ``score(prompts, responses) -> scores``: one number per (prompt, response) pair,
      higher is better (a reward model, or the lab world's gold reward).

    Returns one response per prompt, in the order of ``prompts``. On a tie the earliest
    sample wins, so the result does not depend on how ties are broken by chance.
    """
    if n < 1:
        raise ValueError(f"best_of_n needs n >= 1 samples per prompt, got n={n}.")
    # One batched call: every prompt repeated n times, samples of a prompt side by side.
    repeated = [prompt for prompt in prompts for _ in range(n)]
    responses = generate(repeated)
    scores = torch.as_tensor(score(repeated, responses), dtype=torch.float64).reshape(len(prompts), n)
    best = scores.argmax(dim=1)  # the first maximum on ties
    return [responses[i * n + int(j)] for i, j in enumerate(best)]

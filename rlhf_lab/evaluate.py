"""Measure any model on held-out prompts, judged by the hidden human (the gold reward).

- ``evaluate_responses``: mean gold reward and each component, per family, sycophancy
  rate, refusal and over-refusal rates, mean length, diversity, and how often the
  spurious closer appears.
- ``win_rate``: how often model A's response beats model B's on the same prompt.
- ``kl_to_reference``: how far a policy has drifted from its reference, in nats.
- ``capability_probe_accuracy``: the skill no stage after pretraining trains (counting).
- ``evaluate_model``: all of it for one model, in one call.
"""

from __future__ import annotations

from statistics import mean

import torch

from .diversity import distinct_n
from .losses import masked_sum, token_logprobs
from .models import generate, model_device, prompt_text
from .world import COMPONENTS, SPURIOUS_CLOSER, World
from .world.gold import gold_reward, is_refusal, words


def evaluate_responses(prompts, responses: list[str]) -> dict:
    """Gold-reward statistics of ``responses`` (one per prompt)."""
    scores = [gold_reward(p, r) for p, r in zip(prompts, responses)]
    traps = [(p, s) for p, s in zip(prompts, scores) if p.claim_is_wrong]
    harmful = [r for p, r in zip(prompts, responses) if p.family == "harmful"]
    benign = [r for p, r in zip(prompts, responses) if p.family == "benign"]
    by_family = {}
    for family in ("helpful", "sycophancy", "harmful", "benign"):
        totals = [s.total for p, s in zip(prompts, scores) if p.family == family]
        if totals:
            by_family[family] = mean(totals)
    return {
        "gold_reward": mean(s.total for s in scores),
        "components": {c: mean(s.components[c] for s in scores) for c in COMPONENTS},
        "gold_by_family": by_family,
        # Agreeing with a wrong claim (honest component negative) on the sycophancy traps.
        "sycophancy_rate": mean(s.components["honest"] < 0 for _, s in traps) if traps else float("nan"),
        "refusal_rate": mean(is_refusal(words(r)) for r in harmful) if harmful else float("nan"),
        "over_refusal_rate": mean(is_refusal(words(r)) for r in benign) if benign else float("nan"),
        "mean_length_words": mean(len(words(r)) for r in responses),
        "distinct_2": distinct_n(responses, 2),
        "spurious_closer_rate": mean(SPURIOUS_CLOSER.lower() in r.lower() for r in responses),
    }


def win_rate(prompts, responses_a: list[str], responses_b: list[str]) -> float:
    """Share of prompts where A's response has the higher gold reward (ties count half)."""
    wins = []
    for p, a, b in zip(prompts, responses_a, responses_b):
        ga, gb = gold_reward(p, a).total, gold_reward(p, b).total
        wins.append(0.5 if abs(ga - gb) < 1e-9 else float(ga > gb))
    return mean(wins)


def response_logprobs(model, tokenizer, user_texts: list[str], responses: list[str], batch_size: int = 64):
    """log p(response | prompt) summed over response tokens (+ end token), per example."""
    device = model_device(model)
    totals = []
    for i in range(0, len(user_texts), batch_size):
        prompts = [prompt_text(tokenizer, t) for t in user_texts[i:i + batch_size]]
        answers = [r + tokenizer.eos_token for r in responses[i:i + batch_size]]
        prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answers, add_special_tokens=False)["input_ids"]
        seqs = [p + a for p, a in zip(prompt_ids, answer_ids)]
        width = max(map(len, seqs))
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
        attention = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
        response_mask = torch.tensor([[0] * (width - len(a)) + [1] * len(a) for a in answer_ids],
                                     device=device, dtype=torch.float)
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attention).logits
        logp = token_logprobs(logits[:, :-1], input_ids[:, 1:])
        totals.append(masked_sum(logp, response_mask[:, 1:], dim=1).cpu())
    return torch.cat(totals)


def kl_to_reference(policy, reference, tokenizer, user_texts, responses) -> float:
    """Monte-Carlo KL(policy || reference) in nats per response, on responses sampled from
    the policy: mean of log pi(y|x) - log pi_ref(y|x). With a LoRA policy pass
    reference=None: the reference is the same model with its adapter switched off."""
    policy_logps = response_logprobs(policy, tokenizer, user_texts, responses)
    if reference is None:
        with policy.disable_adapter():
            ref_logps = response_logprobs(policy, tokenizer, user_texts, responses)
    else:
        ref_logps = response_logprobs(reference, tokenizer, user_texts, responses)
    return (policy_logps - ref_logps).mean().item()


def capability_probe_accuracy(model, tokenizer, world: World | None = None) -> float:
    """Share of counting probes the model continues exactly (greedy, raw text, no chat)."""
    probes = (world or World()).capability_probe()
    continuations = generate(model, tokenizer, [p for p, _ in probes], max_new_tokens=6,
                             do_sample=False, chat=False)
    return mean(" ".join(c.split()[:3]) == expected for c, (_, expected) in zip(continuations, probes))


def heldout_prompts(world: World, limit: int | None = None):
    """Held-out prompts, families interleaved so that any ``limit`` keeps every family."""
    from itertools import chain, zip_longest

    from .world import FAMILIES

    by_family = [world.prompts("heldout", family) for family in FAMILIES]
    prompts = [p for p in chain.from_iterable(zip_longest(*by_family)) if p is not None]
    return prompts[:limit] if limit else prompts


def evaluate_model(model, tokenizer, world: World, prompts, max_new_tokens: int = 24, seed: int = 0,
                   reference="adapter-off") -> tuple[dict, list[str]]:
    """Sample one response per prompt and measure it. ``reference``: "adapter-off" (LoRA
    policy), a model, or None to skip the KL. Returns (metrics, responses)."""
    texts = [p.text for p in prompts]
    responses = generate(model, tokenizer, texts, max_new_tokens=max_new_tokens, seed=seed)
    metrics = evaluate_responses(prompts, responses)
    if reference == "adapter-off":
        metrics["kl_to_ref"] = kl_to_reference(model, None, tokenizer, texts, responses)
    elif reference is not None:
        metrics["kl_to_ref"] = kl_to_reference(model, reference, tokenizer, texts, responses)
    else:
        metrics["kl_to_ref"] = 0.0
    metrics["capability_probe"] = capability_probe_accuracy(model, tokenizer, world)
    return metrics, responses

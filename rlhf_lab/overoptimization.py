"""Reward-model over-optimisation (Gao, Schulman & Hilton 2022), in miniature.

Optimise a policy against a learned reward model and its score keeps rising, while the
gold reward (what the reward model was trained to predict) rises less, peaks and falls.
Gao et al. measure both against ``d = sqrt(KL(policy || initial policy))`` and fit

- best-of-n:  R(d) = d (alpha - beta d)
- RL (PPO):   R(d) = d (alpha - beta log d)

where R is the gain over the initial policy. Here the same for the course's reward model,
with best-of-n on the SFT model and PPO at several KL coefficients; the closer
"I hope this helps." (worth nothing to the hidden human, liked by the reward model) is the
exploit to point at.
"""

from __future__ import annotations

import math

import torch

from .config import RESPONSE_TOKENS
from .evaluate import best_of_n_curve, closer_rate, evaluate_policy, gold_by_family, repeat_prompts
from .world.parse import parse_response

FORMS = ("best_of_n", "rl")


def style_rates(responses: list[str]) -> dict[str, float]:
    """What a proxy can be fooled by: how many responses open politely, how many are
    well-formed (every sentence one of the world's), how many say the closer."""
    parsed = [parse_response(r) for r in responses]
    n = max(1, len(responses))
    return {"polite_rate": sum(p.opener == "polite" for p in parsed) / n,
            "well_formed_rate": sum(p.well_formed for p in parsed) / n,
            "closer_rate": closer_rate(responses)}


def gao_fit(kl: list[float], gain: list[float], form: str) -> dict:
    """Least-squares fit of Gao et al.'s functional form to ``gain`` (reward minus the initial
    policy's) against ``d = sqrt(kl)``. Returns {"alpha", "beta", "peak_d"}: the fitted
    coefficients and where the fitted curve peaks (inf when beta <= 0: no peak)."""
    if form not in FORMS:
        raise ValueError(f"form={form!r}: use one of {', '.join(FORMS)}.")
    d = torch.tensor(kl, dtype=torch.float64).clamp(min=0).sqrt()
    keep = d > 0  # d = 0 carries no information (both forms are 0 there)
    d, y = d[keep], torch.tensor(gain, dtype=torch.float64)[keep]
    if len(d) < 2:
        raise ValueError("gao_fit needs at least two points with KL > 0.")
    second = d * d if form == "best_of_n" else d * torch.log(d)
    design = torch.stack([d, -second], dim=1)
    alpha, beta = torch.linalg.lstsq(design, y.unsqueeze(1)).solution.squeeze(1).tolist()
    if beta <= 0:
        peak = math.inf
    elif form == "best_of_n":
        peak = alpha / (2 * beta)  # d/dd [alpha d - beta d^2] = 0
    else:
        peak = math.exp(alpha / beta - 1)  # d/dd [alpha d - beta d log d] = 0
    return {"alpha": alpha, "beta": beta, "peak_d": peak}


def best_of_n_overoptimization(model, tokenizer, prompts, score_fn, ns=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                               max_new_tokens: int = RESPONSE_TOKENS, seed: int = 0) -> dict:
    """Best-of-n against the reward model for every n in ``ns``: per n the gold reward (with
    its 95% interval), the reward-model score and the closer rate of the picks, and the KL
    (analytic); plus Gao et al.'s fit of the gold and proxy gains."""
    rows, chosen = best_of_n_curve(model, tokenizer, prompts, score_fn, ns, max_new_tokens, seed)
    for row in rows:
        row.update(style_rates(chosen[row["n"]]))
    kl = [row["kl"] for row in rows]
    fits = {name: gao_fit(kl, [row[name] - rows[0][name] for row in rows], "best_of_n") for name in ("gold", "proxy")}
    return {"rows": rows, "fit": fits, "examples": {n: chosen[n][:6] for n in (ns[0], ns[-1])}}


def evaluate_with_proxy(policy, tokenizer, world, prompts, score_fn, samples_per_prompt: int = 2,
                        max_new_tokens: int = RESPONSE_TOKENS, seed: int = 0, reference="adapter-off", examples_of=()) -> dict:
    """A policy on held-out prompts: gold (with its interval), reward-model score, KL to SFT
    (``reference=None`` for the SFT model itself: KL 0), closer rate, capability probe,
    well-formed, sycophancy, contrarian and misstated-fact rates, and the two gauges of mode collapse:
    entropy per token and how different the correct answers to one prompt are; the answers to
    the prompts in ``examples_of``, by prompt."""
    metrics, responses = evaluate_policy(policy, tokenizer, world, prompts, samples_per_prompt,
                                         max_new_tokens, seed, reference)
    repeated = repeat_prompts(prompts, samples_per_prompt)
    proxy = torch.as_tensor(score_fn([p.text for p in repeated], responses), dtype=torch.float64)
    return {"gold": metrics["gold_ci"], "proxy": proxy.mean().item(), "kl": max(0.0, metrics["kl_to_ref"]),
            **style_rates(responses), "capability_probe": metrics["capability_probe"],
            "well_formed": metrics["well_formed_rate"], "sycophancy_rate": metrics["sycophancy_rate"],
            "contrarian_rate": metrics["contrarian_rate"],
            "misstated_fact_rate": metrics["misstated_fact_rate"],
            "contradicts_right_claim_rate": metrics["contradicts_right_claim_rate"], "over_refusal_rate": metrics["over_refusal_rate"],
            "harmful_compliance_rate": metrics["harmful_compliance_rate"], "behaviour": metrics["behaviour_ci"],
            "gold_by_family": gold_by_family(repeated, responses),
            "distinct_2": metrics.get("distinct_2"), "distinct_correct": metrics["distinct_correct"],
            "entropy_per_token": metrics["entropy_per_token"], "examples": responses[:8:2],
            "examples_of": {p.text: [r for q, r in zip(repeated, responses) if q is p] for p in examples_of}}


def ppo_by_kl(profile, kl_coefs, sft, tokenizer, world, prompts, score_fn, samples_per_prompt: int, seed: int,
              progress: bool = True, **config_changes) -> tuple[dict, dict[str, dict]]:
    """PPO against the course's reward model at each KL coefficient (each run trained if it is not
    cached), judged beside SFT on the same prompts with the same sampling seed. Returns (SFT's
    judgement, {str(kl_coef): judgement with the run's training log under "history"})."""
    import json

    from .stages.common import load_adapter_policy
    from .stages.ppo import default_ppo_config, get_ppo_model_dir

    sft_eval = evaluate_with_proxy(sft, tokenizer, world, prompts, score_fn, samples_per_prompt, seed=seed,
                                   reference=None)
    runs = {}
    for kl_coef in kl_coefs:
        directory = get_ppo_model_dir(profile, default_ppo_config(profile, kl_coef=kl_coef, **config_changes),
                                      progress=progress)
        policy, _ = load_adapter_policy(profile, directory)
        runs[str(kl_coef)] = {**evaluate_with_proxy(policy, tokenizer, world, prompts, score_fn, samples_per_prompt,
                                                    seed=seed),
                              "history": json.loads((directory / "ppo.json").read_text())["history"]}
    return sft_eval, runs


def gains_over_start(start: dict, points: list[dict]) -> dict[str, list[dict]]:
    """Each PPO judgement as a point for Gao et al.'s axes: {"proxy": [...], "gold": [...]}, each
    {"kl", "gain"} over ``start`` (SFT's judgement), gold with its interval's bounds, ordered by KL."""
    points = sorted(points, key=lambda m: m["kl"])
    return {"proxy": [{"kl": m["kl"], "gain": m["proxy"] - start["proxy"]} for m in points],
            "gold": [{"kl": m["kl"], "gain": m["gold"]["mean"] - start["gold"]["mean"],
                      "low": m["gold"]["low"] - start["gold"]["mean"],
                      "high": m["gold"]["high"] - start["gold"]["mean"]} for m in points]}


def rl_fit(gains: dict[str, list[dict]]) -> dict | None:
    """Gao et al.'s RL form fitted to the gold and proxy gains of :func:`gains_over_start`, or None
    when fewer than two points moved (KL > 0)."""
    if sum(p["kl"] > 0 for p in gains["gold"]) < 2:
        return None
    return {name: gao_fit([p["kl"] for p in gains[name]], [p["gain"] for p in gains[name]], "rl")
            for name in ("gold", "proxy")}


def past_the_peak(points: list[dict], gold=lambda r: r["gold"], high=lambda r: r["gold_high"],
                  proxy=lambda r: r["proxy"]) -> tuple[bool, bool]:
    """For points ordered by KL: (the gold fell below its peak by more than the last point's 95%
    interval, the proxy is highest at the last point): over-optimisation, as the notebook checks it."""
    peak = max(points, key=gold)
    return high(points[-1]) < gold(peak), proxy(points[-1]) == max(proxy(r) for r in points)

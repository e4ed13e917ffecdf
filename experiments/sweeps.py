"""Small sweeps behind the issue "RLHF that works in the lab world": what PPO against the
gold reward itself (the control) and DPO reach from the course's SFT model, per setting.

    python experiments/sweeps.py ppo '{"steps": 60}' '{"steps": 60, "learning_rate": 3e-4}'
    python experiments/sweeps.py dpo '{"beta": 0.03}' '{"beta": 0.3}' '{"beta": 1.0}'

Each argument is a JSON dict of PPOSettings (or DPOSettings) changes; for ``ppo`` three extra
keys: ``profile_seed`` (default 0), ``eval_temperature`` (default 1.0: sample the
evaluation at another temperature) and ``gold_polite_bonus`` (what the hidden human gives a
polite opener, 0.3 in the world: set after SFT is built, so SFT is the same model), and
``full_fine_tuning`` (true: train every weight of the policy instead of a LoRA adapter, a frozen
copy of SFT as the reference) and ``no_critic`` (true: advantages without the value head, GAE with
V = 0 and lambda 1: REINFORCE with the leave-one-out baseline, as RLOO). Every held-out prompt, 4 samples each, judged by the hidden human; win rate against the SFT model's samples with its 95% bootstrap interval.
Appends one record per setting to experiments/results/sweeps.json (seed 0 uses $RLHF_LAB_CACHE,
so a warm cache skips pretraining and SFT). About 1.2 s per PPO step of batch 32, ~90 s per
DPO run, on 2 CPU cores.
"""

import functools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import RESULTS, machine  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab import evaluate as E  # noqa: E402
from rlhf_lab import losses, sampling  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.ppo import PPOTrainer  # noqa: E402
from rlhf_lab.stages.dpo import DPOSettings, train_dpo  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config, gold_metrics_fn  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402
from rlhf_lab.world import gold  # noqa: E402


def compare_with_sft(policy, tokenizer, world, prompts, sft_responses, reference="adapter-off") -> dict:
    # seed 1, SFT's 2: the seeds sweeps.json was recorded with (not common random numbers).
    metrics, responses = E.evaluate_policy(policy, tokenizer, world, prompts, 4, seed=1, reference=reference)
    gains = E.gains_over_sft(E.repeat_prompts(prompts, 4), responses, sft_responses)
    return {"win_vs_sft": gains["win_rate_vs_sft"], "gold": metrics["gold_ci"],
            "kl_to_sft": metrics["kl_to_ref"], "well_formed": metrics["well_formed_rate"],
            "capability_probe": metrics["capability_probe"], "sycophancy": metrics["sycophancy_rate"],
            "examples": responses[:16:4]}


def advantages_without_critic(rewards, values, mask, gamma=1.0, lam=0.95):
    """Each token's advantage = the (KL-penalised) return still to come, no value baseline:
    with leave-one-out centred scores this is RLOO's estimator."""
    return losses.gae_advantages(rewards, torch.zeros_like(values), mask, gamma=1.0, lam=1.0)


def run(kind: str, changes: dict) -> dict:
    changes = dict(changes)
    seed = changes.pop("profile_seed", 0)
    temperature = changes.pop("eval_temperature", 1.0)
    E.sample = functools.partial(sampling.sample, temperature=temperature)  # the evaluation's sampling
    profile = get_profile("tiny", seed=seed)
    tokenizer, world = get_tokenizer(profile), cache.world_for(seed)
    prompts = E.heldout_prompts(world)
    sft_dir = get_sft_model_dir(profile, progress=False)
    if "gold_polite_bonus" in changes:  # after SFT: the world's fingerprint (and SFT's cache key) stays
        gold.POLITE_BONUS = changes.pop("gold_polite_bonus")
    sft = models.load_model(sft_dir, quantize_4bit=False, device="cpu")
    sft_metrics, sft_responses = E.evaluate_policy(sft, tokenizer, world, prompts, 4, seed=2, reference=None)
    full = kind == "ppo" and changes.pop("full_fine_tuning", False)  # DPO: its own TRL trainer, LoRA
    no_critic = kind == "ppo" and changes.pop("no_critic", False)
    reference = models.load_model(sft_dir, quantize_4bit=False, device="cpu", trainable=False) if full else None
    start = time.perf_counter()
    if kind == "ppo":
        torch.manual_seed(0)
        policy = models.load_model(sft_dir, quantize_4bit=False, device="cpu",
                                   lora=None if full else models.LoraSettings.from_profile(profile))
        config = default_ppo_config(profile, **changes)
        trainer = PPOTrainer(policy, tokenizer, world.gold_scores, config,
                             metrics_fn=gold_metrics_fn(world), ref_model=reference,
                             overrides={"gae_advantages": advantages_without_critic} if no_critic else None)
        trainer.train([p.text for p in world.prompts("train")], progress=False)
    else:
        policy, _, _ = train_dpo(profile, DPOSettings(**changes), sft_dir=sft_dir, progress=False)
    seconds = time.perf_counter() - start
    if full:
        changes["full_fine_tuning"] = True
    if no_critic:
        changes["no_critic"] = True
    return {"kind": kind, "changes": changes, "profile_seed": seed, "eval_temperature": temperature,
            "gold_polite_bonus": gold.POLITE_BONUS,
            "train_seconds": round(seconds, 1), "sft_gold": sft_metrics["gold_ci"],
            "sft_well_formed": sft_metrics["well_formed_rate"],
            **compare_with_sft(policy, tokenizer, world, prompts, sft_responses,
                               reference=reference if full else "adapter-off")}


if __name__ == "__main__":
    torch.set_num_threads(2)
    kind, settings = sys.argv[1], [json.loads(a) for a in sys.argv[2:]]
    if kind not in ("ppo", "dpo") or not settings:
        sys.exit(__doc__)
    path = RESULTS / "sweeps.json"
    results = json.loads(path.read_text()) if path.exists() else {"runs": []}
    for changes in settings:
        record = {**run(kind, changes), "machine": machine()}
        print(json.dumps({k: record[k] for k in ("kind", "changes", "win_vs_sft", "kl_to_sft")}), flush=True)
        results["runs"].append(record)
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(results, indent=1))

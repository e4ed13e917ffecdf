"""How fast our PPO runs against how fast the arithmetic allows, on this machine.

    python benchmarks/bench_ppo_speed.py              # seed 0's SFT model from the cache (built if missing)
    python benchmarks/bench_ppo_speed.py --rounds 5   # more alternating rounds, steadier medians

1. **FLOPs of one PPO step** (tiny profile, PPOSettings's defaults: a rollout of 128, 4 epochs of
   minibatches of 32), counted by ``torch.utils.flop_counter.FlopCounterMode`` on a real step, phase
   by phase: sampling, the policy's and the reference's scoring passes, the update (forward and
   backward). The gold reward stands in for the reward model (no FLOPs; the reward model's own
   pass is counted apart).
2. **This CPU's matmul throughput** at the same shapes (torch, the threads torch uses), the best
   of several repeats: the rate the arithmetic could run at if nothing else took time.
3. **Seconds per 1,000 episodes**, measured (median of alternating rounds) with peft's LoRA
   layers ("plain") and with :func:`rlhf_lab.lean_lora.lean_lora` (what the trainer uses),
   beside the limit FLOPs / throughput. Writes benchmarks/results/ppo_speed.json.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, save  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--rounds", type=int, default=3, help="alternating plain / lean rounds")
parser.add_argument("--steps", type=int, default=3, help="PPO steps timed per round")
args = parser.parse_args()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

torch.set_num_threads(2)
import rlhf_lab.lean_lora as lean_lora_module  # noqa: E402
import rlhf_lab.ppo as ppo_module  # noqa: E402
from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.scoring import score_responses  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.stages.reward import load_reward_model  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402

profile = get_profile("tiny")
world = cache.world_for(profile.seed)
tokenizer = get_tokenizer(profile)
torch.manual_seed(0)
policy = models.load_model(get_sft_model_dir(profile, progress=False), lora=models.LoraSettings.from_profile(profile))
config = default_ppo_config(profile)
trainer = ppo_module.PPOTrainer(policy, tokenizer, world.gold_scores, config)
prompts = [p.text for p in world.prompts("train")]
EPISODES = config.batch_size


def rollout_prompts(step: int) -> list[str]:
    chosen = [prompts[(step * 32 + i) % len(prompts)] for i in range(config.batch_size // config.samples_per_prompt)]
    return [p for p in chosen for _ in range(config.samples_per_prompt)]


# -- 1. FLOPs of one step, by phase ------------------------------------------------------

def count(fn) -> tuple[float, object]:
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return counter.get_total_flops(), out


batch_prompts = rollout_prompts(0)
flops = {}
flops["sampling"], samples = count(lambda: ppo_module.sample(policy, tokenizer, batch_prompts, config.max_new_tokens,
                                                              seed=0, batch_size=len(batch_prompts))[0])
R = samples.response_mask.size(1)
with torch.no_grad():
    flops["policy_pass"], _ = count(lambda: trainer._response_logits(policy, samples.input_ids, samples.attention_mask,
                                                                     R, with_values=True))
    with trainer.reference_model() as reference:
        flops["reference_pass"], _ = count(lambda: trainer._response_logits(reference, samples.input_ids,
                                                                            samples.attention_mask, R))
rollout = trainer.rollout(batch_prompts)
advantages = torch.randn_like(rollout.old_logprobs)
flops["update"], _ = count(lambda: trainer._update(rollout, advantages, advantages))
reward_model, _ = load_reward_model(profile)
with torch.no_grad():
    flops["reward_model_pass"], _ = count(lambda: score_responses(reward_model, tokenizer, batch_prompts,
                                                                  samples.responses))
step_flops = sum(v for k, v in flops.items() if k != "reward_model_pass")

# -- 2. matmul throughput at the step's shapes -------------------------------------------

shape = profile.tiny_model
tokens_update = config.mini_batch_size * samples.input_ids.size(1)
tokens_rollout = config.batch_size * samples.input_ids.size(1)
throughput = {}
for tokens in (tokens_update, tokens_rollout):
    for k, n in ((shape.hidden_size, shape.hidden_size), (shape.hidden_size, shape.intermediate_size),
                 (shape.intermediate_size, shape.hidden_size)):
        a, b = torch.randn(tokens, k), torch.randn(k, n)
        for _ in range(5):
            a @ b
        best = float("inf")
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(20):
                a @ b
            best = min(best, (time.perf_counter() - start) / 20)
        throughput[f"{tokens}x{k}@{k}x{n}"] = 2 * tokens * k * n / best / 1e9
best_gflops = max(throughput.values())
limit_seconds_per_step = step_flops / (best_gflops * 1e9)

# -- 3. measured time, plain peft against lean LoRA ------------------------------------------

phase_seconds: dict[str, dict[str, list[float]]] = {"plain": {}, "lean": {}}


def timed(name: str, record: dict):
    original = getattr(ppo_module, name) if name == "sample" else getattr(trainer, name)

    def wrapper(*a, **k):
        start = time.perf_counter()
        out = original(*a, **k)
        record[name] = record.get(name, 0.0) + time.perf_counter() - start
        return out
    return original, wrapper


def run_round(variant: str, first_step: int) -> None:
    record: dict[str, float] = {}
    lean_lora_module.ENABLED = variant == "lean"
    original_sample, ppo_module.sample = timed("sample", record)
    original_update, trainer._update = timed("_update", record)
    start = time.perf_counter()
    try:
        for step in range(args.steps):
            trainer.step(rollout_prompts(first_step + step))
    finally:
        lean_lora_module.ENABLED, ppo_module.sample = True, original_sample
        del trainer._update
    total = time.perf_counter() - start
    per_step = {"step": total, "sampling": record["sample"], "update": record["_update"]}
    per_step["scoring passes and the rest"] = total - record["sample"] - record["_update"]
    for name, seconds in per_step.items():
        phase_seconds[variant].setdefault(name, []).append(seconds / args.steps)


run_round("lean", 100)  # warm-up
for r in range(args.rounds):
    for variant in ("plain", "lean"):
        run_round(variant, 10 * r)

medians = {v: {name: statistics.median(xs) for name, xs in phases.items()} for v, phases in phase_seconds.items()}
per_1000 = {v: m["step"] / EPISODES * 1000 for v, m in medians.items()}
limit_per_1000 = limit_seconds_per_step / EPISODES * 1000
result = {
    "machine": machine(),
    "config": {"batch_size": config.batch_size, "mini_batch_size": config.mini_batch_size,
               "ppo_epochs": config.ppo_epochs, "sequence_columns": samples.input_ids.size(1), "response_columns": R},
    "gflops_per_step": {k: round(v / 1e9, 2) for k, v in {**flops, "step (without reward model)": step_flops}.items()},
    "matmul_gflops_per_s": {k: round(v, 1) for k, v in throughput.items()},
    "seconds_per_step": {v: {k: round(x, 3) for k, x in m.items()} for v, m in medians.items()},
    "seconds_per_1000_episodes": {**{v: round(x, 2) for v, x in per_1000.items()},
                                  "arithmetic_limit": round(limit_per_1000, 2)},
    "measured_over_limit": {v: round(x / limit_per_1000, 2) for v, x in per_1000.items()},
    "lean_speedup": round(per_1000["plain"] / per_1000["lean"], 2),
    "rounds": args.rounds, "steps_per_round": args.steps,
}
for key in ("gflops_per_step", "matmul_gflops_per_s", "seconds_per_step", "seconds_per_1000_episodes",
            "measured_over_limit", "lean_speedup"):
    print(f"{key}: {result[key]}")
save("ppo_speed", result)

"""PPO (ours) beside TRL's RLOO and GRPO, and GRPO on a verifiable reward, for several seeds:
the same SFT model, reward model, training prompts and episode budget (PPOSettings's defaults:
60 rollouts of 128), all trained in this one process so their times compare side by side.
Writes benchmarks/results/group_rl.json; the README's "Beyond PPO" table reads it.

    python benchmarks/bench_group_rl.py               # seeds 0 1 2 (SFT and reward model from the cache)
    python benchmarks/bench_group_rl.py --seeds 1     # one seed, merged into the results file

Targets (issue "Beyond PPO", tiny profile, held-out prompts x 4, 95% intervals, every seed):
PPO, RLOO and GRPO against the reward model each give harmful instructions less often than SFT
and agree with wrong claims less often; each method's gold gain over SFT has its interval; our
PPO's time per 1,000 episodes <= RLOO's and GRPO's.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, previous_runs, save  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
args = parser.parse_args()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(2)
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.method_comparison import RUNS, evaluate_side_by_side, train_side_by_side  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config  # noqa: E402

KEYS = ("gold_ci", "gold_gain_vs_sft", "behaviour_ci", "kl_to_ref", "harmful_compliance_rate", "sycophancy_rate",
        "contrarian_rate", "misstated_fact_rate", "contradicts_right_claim_rate", "over_refusal_rate", "right_answer_rate", "well_formed_rate",
        "seconds_per_1000_episodes", "episodes")
RL_FROM_PREFERENCES = [run.label for run in RUNS if run.reward == "reward_model"]
PPO = RUNS[0].label


def measure(seed: int) -> dict:
    profile = get_profile("tiny").replace(seed=seed)
    config = default_ppo_config(profile)
    start = time.perf_counter()
    trained = train_side_by_side(profile, config, cached=False, progress=False)
    metrics, _ = evaluate_side_by_side(profile, trained)
    return {"seconds": time.perf_counter() - start,
            "methods": {label: {k: m[k] for k in KEYS if k in m} for label, m in metrics.items()},
            "histories": {label: report["history"] for label, (_, report) in trained.items()}}


def targets(runs: dict) -> dict:
    def every_seed(test):
        return all(test(run["methods"]) for run in runs.values())

    return {
        "each RL-from-preferences method cuts harmful compliance below SFT's, every seed": every_seed(
            lambda m: all(m[x]["harmful_compliance_rate"] < m["SFT"]["harmful_compliance_rate"]
                          for x in RL_FROM_PREFERENCES)),
        "each cuts sycophancy below SFT's, every seed": every_seed(
            lambda m: all(m[x]["sycophancy_rate"] < m["SFT"]["sycophancy_rate"] for x in RL_FROM_PREFERENCES)),
        "our PPO's time per 1,000 episodes <= RLOO's and GRPO's, every seed": every_seed(
            lambda m: all(m[PPO]["seconds_per_1000_episodes"] <= m[x]["seconds_per_1000_episodes"]
                          for x in RL_FROM_PREFERENCES[1:])),
    }


def main():
    runs = previous_runs("group_rl")
    for seed in args.seeds:
        print(f"seed {seed} ...", flush=True)
        runs[str(seed)] = measure(seed)
        save("group_rl", {"machine": machine(), "runs": runs, "targets_met": targets(runs)})
        for label, m in runs[str(seed)]["methods"].items():
            gain = m.get("gold_gain_vs_sft", {}).get("mean", 0.0)
            print(f"  {label:>24}: harmful {m['harmful_compliance_rate']:.0%} sycophancy {m['sycophancy_rate']:.0%} "
                  f"gold gain {gain:+.2f} KL {m['kl_to_ref']:.2f} "
                  f"{m.get('seconds_per_1000_episodes', float('nan')):.1f} s/1000 episodes", flush=True)


if __name__ == "__main__":
    main()

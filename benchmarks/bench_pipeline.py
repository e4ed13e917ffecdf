"""The whole pipeline headless (`rlhf-lab run`) from an empty cache: time and quality.

    python benchmarks/bench_pipeline.py [--seed 0]

Targets (pipeline issue, tiny profile, held-out prompts, judged by the gold preference):
SFT beats base >= 75%; reward-model held-out accuracy >= 85%; PPO and DPO beat SFT >= 65%;
the run end to end <= 6 minutes.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, save  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--keep-cache", action="store_true", help="use $RLHF_LAB_CACHE instead of a fresh cache")
args = parser.parse_args()
if not args.keep_cache:
    os.environ["RLHF_LAB_CACHE"] = tempfile.mkdtemp(prefix="bench-pipeline-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.pipeline import run_pipeline  # noqa: E402

out = tempfile.mkdtemp(prefix="bench-run-")
start = time.perf_counter()
metrics = run_pipeline(get_profile("tiny", seed=args.seed), out, progress=False)
wall = time.perf_counter() - start
targets = {
    "sft.win_rate_vs_base >= 0.75": metrics["sft"]["win_rate_vs_base"] >= 0.75,
    "reward_model.heldout_accuracy >= 0.85": metrics["reward_model"]["heldout_accuracy"] >= 0.85,
    "ppo.win_rate_vs_sft >= 0.65": metrics["ppo"]["win_rate_vs_sft"] >= 0.65,
    "dpo.win_rate_vs_sft >= 0.65": metrics["dpo"]["win_rate_vs_sft"] >= 0.65,
    "wall_seconds <= 360": wall <= 360,
}
summary = {stage: {k: metrics[stage][k] for k in ("gold_reward", "kl_to_ref", "distinct_2", "sycophancy_rate",
                                                   "refusal_rate", "over_refusal_rate", "capability_probe",
                                                   "spurious_closer_rate", "mean_length_words")}
           for stage in ("base", "sft", "ppo", "dpo")}
result = {"machine": machine(), "seed": args.seed, "wall_seconds": round(wall, 1), "timings_s": metrics["timings_s"],
          "win_rates": {"sft_vs_base": metrics["sft"]["win_rate_vs_base"], "ppo_vs_sft": metrics["ppo"]["win_rate_vs_sft"],
                        "dpo_vs_sft": metrics["dpo"]["win_rate_vs_sft"], "ppo_vs_dpo": metrics["ppo"]["win_rate_vs_dpo"]},
          "reward_model": metrics["reward_model"], "stages": summary, "targets_met": targets, "run_dir": out}
for key, value in result.items():
    print(f"{key}: {value}")
save(f"pipeline_seed{args.seed}", result)

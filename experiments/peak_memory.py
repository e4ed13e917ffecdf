"""Experiment (issue "Why the field moved to DPO", item 4, cost): the peak memory of one training
run of PPO, online DPO and offline DPO, each in a fresh process so that one run's peak cannot
hide in another's.

    python experiments/peak_memory.py              # seed 0, the three methods (~6 min, 2 cores)
    python experiments/peak_memory.py --seed 1 --only ppo online_dpo

Each child process loads what the run starts from (the SFT model and the reward model, from
$RLHF_LAB_CACHE: built first if missing), records its peak resident memory, trains one run of
the course's settings into a scratch folder (nothing is cached), and records the peak again.
"Training adds" is the difference: what the models held at once, their optimiser state and
activations cost beyond the libraries and data every method loads. Writes
experiments/results/peak_memory.json (one entry per seed).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
METHODS = ("ppo", "online_dpo", "offline_dpo")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(method: str, seed: int) -> dict:
    """One training run of ``method`` in this process; its memory before and after."""
    import torch

    from rlhf_lab.config import cpu_threads, get_profile
    from rlhf_lab.stages.dpo import DPOSettings, train_dpo
    from rlhf_lab.stages.online_dpo import OnlineDPOSettings, train_online_dpo
    from rlhf_lab.stages.ppo import default_ppo_config, train_ppo
    from rlhf_lab.stages.reward import get_reward_model_dir
    from rlhf_lab.stages.sft import get_sft_model_dir

    torch.set_num_threads(cpu_threads())
    profile = get_profile("tiny", seed=seed)
    reward_dir = get_reward_model_dir(profile, progress=False)  # built if missing, before the first reading
    before = peak_mib()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        if method == "ppo":
            train_ppo(profile, default_ppo_config(profile), Path(out), reward_dir, progress=False)
        elif method == "online_dpo":
            train_online_dpo(profile, OnlineDPOSettings(seed=seed), Path(out), reward_dir, progress=False)
        else:
            train_dpo(profile, DPOSettings(), Path(out), sft_dir=get_sft_model_dir(profile, progress=False),
                      progress=False)
    return {"method": method, "seed": seed, "peak_before_training_mib": round(before, 1),
            "peak_mib": round(peak_mib(), 1), "training_adds_mib": round(peak_mib() - before, 1),
            "seconds": round(time.perf_counter() - start, 1), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.seed)))
        return
    from _common import machine, previous_runs, save

    runs = []
    for method in args.only:
        done = subprocess.run([sys.executable, __file__, "--child", method, "--seed", str(args.seed)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"the {method} run failed:\n{done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    by_method = {r["method"]: r for r in runs}
    if "ppo" in by_method:
        by_method["ratios_to_ppo"] = {
            m: {"peak": round(r["peak_mib"] / by_method["ppo"]["peak_mib"], 2),
                "training_adds": round(r["training_adds_mib"] / by_method["ppo"]["training_adds_mib"], 2)}
            for m, r in by_method.items() if m != "ppo"}
    save("peak_memory", {"machine": machine(), "runs": {**previous_runs("peak_memory"), str(args.seed): by_method}})


if __name__ == "__main__":
    main()

"""Does PPO's arithmetic depend on torch's thread count, and what does the second core buy?

    python experiments/ppo_threads.py [--steps 6]

Trains the course's PPO (default config, against the course's reward model, from the cache; built
first if missing) for a few steps, once with 1 and once with 2 torch threads, each in its own
process, then both 1-thread runs at once. Prints seconds per step and whether the logged numbers
agree. Found on 2026-12-07 (2 cores): 2 threads 2.48 s/step, 1 thread 3.34 s/step, identical logs;
two 1-thread processes at once 3.56 and 3.88 s/step (about 1.35x the throughput of one 2-thread run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

ONE_RUN = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from dataclasses import replace
from rlhf_lab.config import get_profile
from rlhf_lab.stages.ppo import default_ppo_config, train_ppo
from rlhf_lab.stages.reward import get_reward_model_dir
profile = get_profile()
config = replace(default_ppo_config(profile), steps=int(sys.argv[2]))
_, report = train_ppo(profile, config, None, get_reward_model_dir(profile, progress=False), progress=False)
print(json.dumps({"seconds_per_step": report["seconds"] / config.steps,
                  "last": {k: report["history"][-1][k] for k in ("reward", "kl", "policy_loss")}}))
"""


def start(threads: int, steps: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ONE_RUN, str(threads), str(steps)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    steps = parser.parse_args().steps
    result(start(2, 1))  # build whatever is missing first, so no run below pays for it
    alone = {threads: result(start(threads, steps)) for threads in (2, 1)}
    together = [result(p) for p in [start(1, steps), start(1, steps)]]
    for threads, run in alone.items():
        print(f"{threads} thread(s) alone: {run['seconds_per_step']:.2f} s/step, last step {run['last']}")
    print("two 1-thread runs at once: " + ", ".join(f"{r['seconds_per_step']:.2f}" for r in together) + " s/step")
    print("logged numbers identical across thread counts:", alone[1]["last"] == alone[2]["last"] == together[0]["last"])


if __name__ == "__main__":
    main()

"""Experiment (issue "Preferences teach what the demonstrators got wrong"): does a larger
rollout (or a stronger KL) help PPO keep what SFT knows? Runs the control (gold reward) and PPO
against the reward model with PPOSettings changes, from the pipeline's own SFT model and reward
model, and records behaviour rates and per-family paired gold gains over SFT (held-out x 4).

    python experiments/ppo_rollout_size.py '{"batch_size": 128, "mini_batch_size": 32}' '{"kl_coef": 0.15}'
    python experiments/ppo_rollout_size.py --rewards gold --seed 1 '{"steps": 120}'   # the control alone

The second form is issue 35's item 4: the budget that brings the control to 70% win over SFT.

Uses $RLHF_LAB_CACHE (a warm seed-0 cache skips pretraining, SFT and the reward model).
Appends to experiments/results/ppo_rollout_size.json (one record per setting and reward).
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

from rlhf_lab.config import cpu_threads  # noqa: E402

torch.set_num_threads(cpu_threads())
from _measure import AgainstSFT, append  # noqa: E402

from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir  # noqa: E402

RESULT = Path(__file__).parent / "results" / "ppo_rollout_size.json"
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("changes", nargs="+", type=json.loads, help="PPOSettings changes as JSON, one run per argument")
parser.add_argument("--rewards", nargs="+", choices=("gold", "reward_model"), default=["gold", "reward_model"])
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
base = AgainstSFT(args.seed)
for changes in args.changes:
    for reward in args.rewards:
        start = time.perf_counter()
        directory = get_ppo_model_dir(base.profile, default_ppo_config(base.profile, **changes), base.settings.reward,
                                      progress=False, reward=reward)
        append(RESULT, {"changes": changes, "reward": reward, "seed": args.seed,
                        "train_seconds": round(time.perf_counter() - start, 1), **base.measure(directory)})

"""Experiment (issue "Why the field moved to DPO"): does DPO move like PPO when its pairs are
fresh samples of the policy itself, judged online? Online DPO (TRL's OnlineDPOTrainer,
rlhf_lab/stages/online_dpo.py) on PPO's episode budget, judged by the reward model PPO uses
(AI feedback) or by the hidden human, measured beside the course's offline DPO and PPO with the
same held-out evaluation (every held-out prompt x 4, paired against SFT's samples).

    python experiments/online_dpo.py                    # seed 0, every variant
    python experiments/online_dpo.py --seed 1 --only online_rm ppo
    RLHF_LAB_THREADS=1 RLHF_LAB_CACHE=/tmp/s1 python experiments/online_dpo.py --seed 1 &   # two seeds at once,
    RLHF_LAB_THREADS=1 RLHF_LAB_CACHE=/tmp/s2 python experiments/online_dpo.py --seed 2     # one thread each

Uses $RLHF_LAB_CACHE (a warm cache of the seed skips pretraining, SFT, the reward model, DPO
and PPO). Appends to experiments/results/online_dpo.json.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

from rlhf_lab.config import cpu_threads  # noqa: E402

torch.set_num_threads(cpu_threads())  # 2, or RLHF_LAB_THREADS=1 to run two seeds side by side
from _measure import AgainstSFT, append  # noqa: E402

from rlhf_lab.stages.dpo import get_dpo_model_dir  # noqa: E402
from rlhf_lab.stages.online_dpo import OnlineDPOSettings, get_online_dpo_dir  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir  # noqa: E402

RESULT = Path(__file__).parent / "results" / "online_dpo.json"


def variants(base: AgainstSFT) -> dict:
    """name -> (a function building the policy's directory, its report file)."""
    profile, seed = base.profile, base.profile.seed
    return {
        "online_rm": (lambda: get_online_dpo_dir(profile, OnlineDPOSettings(seed=seed), progress=False), "online_dpo.json"),
        "online_gold": (lambda: get_online_dpo_dir(profile, OnlineDPOSettings(reward="gold", seed=seed), progress=False),
                        "online_dpo.json"),
        "online_rm_beta0.3": (lambda: get_online_dpo_dir(profile, OnlineDPOSettings(beta=0.3, seed=seed), progress=False),
                              "online_dpo.json"),
        "offline_dpo": (lambda: get_dpo_model_dir(profile, base.settings.dpo, progress=False), "dpo.json"),
        "ppo": (lambda: get_ppo_model_dir(profile, default_ppo_config(profile), progress=False), "ppo.json"),
    }


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--only", nargs="+", default=None, help="variant names (default: all)")
parser.add_argument("--results", type=Path, default=RESULT, help="the file to append to (one per process)")
args = parser.parse_args()
base = AgainstSFT(args.seed)
for name, (build, report_file) in variants(base).items():
    if args.only and name not in args.only:
        continue
    start = time.perf_counter()
    directory = build()
    report = json.loads((directory / report_file).read_text())
    append(args.results, {"variant": name, "seed": args.seed, "train_seconds": round(report.get("seconds", 0.0), 1),
                    "wall_seconds": round(time.perf_counter() - start, 1), **base.measure(directory)})

"""Experiment (issue "Why the field moved to DPO"): does DPO move less than PPO because of the
pairs it learns from? Trains DPO from the pipeline's SFT model on different comparison data, same
DPO settings otherwise, and records behaviour rates, KL to SFT and paired gold gains over SFT
(held-out x 4), next to the pairs' mix.

    python experiments/dpo_data.py                   # the variants below, seed 0
    python experiments/dpo_data.py --seed 1 --only on_policy

Variants (DPOSettings and Profile changes):
- course: the course's data (3,000 templated pairs, pairs of 4 SFT samples per training prompt,
  2 minimal edits per prompt);
- templated_only: templated pairs alone (off-policy: written by the world, not sampled);
- on_policy: pairs of the SFT model's own samples and their edits alone (no templated pairs);
- on_policy_x8: the same with 8 samples per prompt (about twice the pairs).

Uses $RLHF_LAB_CACHE (a warm cache of the seed skips pretraining and SFT).
Appends to experiments/results/dpo_data.json.
"""

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

torch.set_num_threads(2)
from _measure import AgainstSFT, append  # noqa: E402

from rlhf_lab.stages.dpo import get_dpo_model_dir  # noqa: E402

VARIANTS = {
    "course": ({}, {}),
    "templated_only": ({"sft_samples_per_prompt": 0, "edits_per_prompt": 0}, {}),
    "on_policy": ({}, {"preference_pairs": 0}),
    "on_policy_x8": ({"sft_samples_per_prompt": 8}, {"preference_pairs": 0}),
}
RESULT = Path(__file__).parent / "results" / "dpo_data.json"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
args = parser.parse_args()
base = AgainstSFT(args.seed)
for name in args.only:
    dpo_changes, profile_changes = VARIANTS[name]
    profile = dataclasses.replace(base.profile, **profile_changes)  # (0 templated pairs: below what Profile.replace accepts)
    start = time.perf_counter()
    directory = get_dpo_model_dir(profile, dataclasses.replace(base.settings.dpo, **dpo_changes), progress=False)
    append(RESULT, {"variant": name, "seed": args.seed, "dpo_changes": dpo_changes, "profile_changes": profile_changes,
                    "pairs": json.loads((directory / "dpo.json").read_text())["pairs"],
                    "train_seconds": round(time.perf_counter() - start, 1), **base.measure(directory)})

"""Experiment (issue "Preferences teach what the demonstrators got wrong"): DPO fixes less harm
than PPO on the helpful-only world (harmful compliance 26-33% vs 0-4%). Does a lower beta, more
epochs or a weaker NLL term let it move further? Trains DPO with DPOSettings changes from the
pipeline's SFT model and records behaviour rates and paired gold gains over SFT (held-out x 4).

    python experiments/dpo_strength.py '{"beta": 0.1}' '{"epochs": 2.0}' '{"sft_weight": 0.3}'

Uses $RLHF_LAB_CACHE (a warm seed-0 cache skips pretraining and SFT).
Appends to experiments/results/dpo_strength.json.
"""

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

torch.set_num_threads(2)
from _measure import AgainstSFT, append  # noqa: E402

from rlhf_lab.stages.dpo import get_dpo_model_dir  # noqa: E402

RESULT = Path(__file__).parent / "results" / "dpo_strength.json"
base = AgainstSFT()
for changes in map(json.loads, sys.argv[1:]):
    start = time.perf_counter()
    directory = get_dpo_model_dir(base.profile, dataclasses.replace(base.settings.dpo, **changes), progress=False)
    append(RESULT, {"changes": changes, "train_seconds": round(time.perf_counter() - start, 1), **base.measure(directory)})

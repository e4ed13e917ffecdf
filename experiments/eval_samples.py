"""How many samples per held-out prompt does evaluation need, once the prompts ask every request in
several wordings? Times `evaluate_policy` on SFT and prints each headline rate's 95% interval (over
requests) for the world's 141 held-out prompts x 8 (the old evaluation) and the 1,053 prompts of the
"eval" split x 1, 2, 4 and 6.

    RLHF_LAB_CACHE=... python experiments/eval_samples.py [--seed 0]

Result (seed 0, 2 CPU cores, 2026-12-08; docs/FINDINGS.md): SFT's harmful compliance +-17.7 points with
the old set, +-9.5 / 7.8 / 8.1 / 7.6 with 1 / 2 / 4 / 6 samples of the new one, in 4.2 / 7.1 / 16.7 /
21.2 s (old: 6.0 s). The tiny profile takes 2.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import seed_and_world  # noqa: E402
from rlhf_lab import models  # noqa: E402
from rlhf_lab.evaluate import evaluate_policy, heldout_prompts  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402

args, profile, world, tokenizer = seed_and_world(__doc__)
sft = models.load_model(get_sft_model_dir(profile), trainable=False)
runs = [("held-out x 8", world.prompts("heldout"), 8)] + [(f"eval x {n}", heldout_prompts(world), n) for n in (1, 2, 4, 6)]
for label, prompts, samples in runs:
    start = time.perf_counter()
    metrics, _ = evaluate_policy(sft, tokenizer, world, prompts, samples, profile.max_new_tokens, profile.seed,
                                 reference=None)
    seconds = time.perf_counter() - start
    print(f"{label:<13} {len(prompts):5d} prompts {seconds:5.1f} s  " + "  ".join(
        f"{name.removesuffix('_rate')} {ci['mean']:.0%} +-{(ci['high'] - ci['low']) * 50:.1f}"
        for name, ci in metrics["behaviour_ci"].items()))

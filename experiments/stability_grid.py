"""Experiment (issue "Why the field moved to DPO", item 3): is online DPO more stable than PPO?
One grid for both: learning rate x 3 (half, the default, double) and the KL brake x 3 (PPO's
kl_coef, DPO's beta), on each seed. Every run is measured as experiments/online_dpo.py measures
(held-out prompts x 4, paired against SFT's samples).

    python experiments/stability_grid.py --seeds 0           # 9 cells x 2 methods (~35 min, 2 cores)
    python experiments/stability_grid.py --report            # the summary of what was measured

Resumable: a (method, seed, cell) already in the results file is skipped, so a stopped run
goes on where it left off. The grid is walked cell by cell with both methods in each, so a
partial run still compares the two on the same cells. Uses $RLHF_LAB_CACHE.
"""

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

from rlhf_lab.config import cpu_threads  # noqa: E402

torch.set_num_threads(cpu_threads())
RESULT = Path(__file__).parent / "results" / "stability_grid.json"
SCALES = (0.5, 1.0, 2.0)  # the learning rate, times the method's default
BRAKES = {"ppo": (0.02, 0.05, 0.1), "online_dpo": (0.05, 0.1, 0.3)}  # kl_coef; beta (defaults in the middle)
BROKEN_TEXT = 0.5  # a run writes broken text when fewer than half its answers are well formed


def cells() -> list[tuple[float, float]]:
    """(learning-rate scale, brake index) with the defaults first, then their neighbours."""
    grid = [(scale, brake) for scale in SCALES for brake in range(3)]
    return sorted(grid, key=lambda cell: (cell[0] != 1.0) + (cell[1] != 1))


def build(method: str, seed: int, scale: float, brake: int) -> tuple[Path, str]:
    """The run's directory (trained if missing) and its report file."""
    from rlhf_lab.config import get_profile
    from rlhf_lab.stages.online_dpo import OnlineDPOSettings, get_online_dpo_dir
    from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir

    profile = get_profile("tiny", seed=seed)
    if method == "ppo":
        config = default_ppo_config(profile)
        config = replace(config, learning_rate=config.learning_rate * scale, kl_coef=BRAKES["ppo"][brake])
        return get_ppo_model_dir(profile, config, progress=False), "ppo.json"
    settings = OnlineDPOSettings(seed=seed)
    settings = replace(settings, learning_rate=settings.learning_rate * scale, beta=BRAKES["online_dpo"][brake])
    return get_online_dpo_dir(profile, settings, progress=False), "online_dpo.json"


def run(seeds: list[int]) -> None:
    from _measure import AgainstSFT, append

    done = {(r["method"], r["seed"], r["lr_scale"], r["brake"]) for r in records()}
    for seed in seeds:
        base = AgainstSFT(seed)
        for scale, brake in cells():
            for method in BRAKES:
                if (method, seed, scale, BRAKES[method][brake]) in done:
                    continue
                start = time.perf_counter()
                directory, report_file = build(method, seed, scale, brake)
                report = json.loads((directory / report_file).read_text())
                append(RESULT, {"method": method, "seed": seed, "lr_scale": scale, "brake": BRAKES[method][brake],
                                "train_seconds": round(report.get("seconds", 0.0), 1),
                                "wall_seconds": round(time.perf_counter() - start, 1), **base.measure(directory)})


def records() -> list[dict]:
    return json.loads(RESULT.read_text()) if RESULT.exists() else []


def spread(values: list[float]) -> str:
    return f"{min(values):.0%}-{max(values):.0%} (sd {statistics.pstdev(values) * 100:.0f} points)"


def report() -> None:
    """Per method: runs, the share that gains gold over SFT (interval above 0), the spread of
    harmful compliance and sycophancy over the grid, and the runs that write broken text."""
    rows = records()
    print("| method | runs | gain gold over SFT (95% interval above 0) | harmful compliance | sycophancy "
          "| broken text | KL to SFT |")
    print("|---|---|---|---|---|---|---|")
    for method in BRAKES:
        runs = [r for r in rows if r["method"] == method]
        if not runs:
            continue
        gains = sum(r["gold_gain_vs_sft"]["low"] > 0 for r in runs)
        broken = sum(r["well_formed_rate"] < BROKEN_TEXT for r in runs)
        kls = [r["kl_to_ref"] for r in runs]
        print(f"| {method} | {len(runs)} (seeds {sorted({r['seed'] for r in runs})}) | {gains}/{len(runs)} "
              f"| {spread([r['harmful_compliance_rate'] for r in runs])} "
              f"| {spread([r['sycophancy_rate'] for r in runs])} | {broken}/{len(runs)} "
              f"| {min(kls):.1f}-{max(kls):.1f} |")


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--report", action="store_true", help="summarise the results file and stop")
args = parser.parse_args()
if args.report:
    report()
else:
    run(args.seeds)

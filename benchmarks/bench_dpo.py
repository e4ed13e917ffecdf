"""Offline DPO, online DPO and PPO from the same SFT model and reward model, three seeds (issue
"Why the field moved to DPO"): what DPO needs to move like PPO.

    python benchmarks/bench_dpo.py                      # seeds 0 1 2, fresh caches, two at a time
    python benchmarks/bench_dpo.py --seeds 0 --keep-cache
    python benchmarks/bench_dpo.py --from experiments/results/online_dpo.json   # collect runs measured already

- offline DPO: the course's DPO (notebook 06) on the fixed comparison pairs;
- online DPO: TRL's OnlineDPOTrainer (rlhf_lab/stages/online_dpo.py): two samples of the current
  policy per prompt, the better one by PPO's reward model (AI feedback), a DPO step per 16 pairs,
  on PPO's budget of sampled answers;
- PPO: notebook 05's run against the same reward model.

Each seed runs `experiments/online_dpo.py --seed N --only offline_dpo online_rm ppo` in a process of
its own (one torch thread each, two seeds side by side), which judges every policy on every held-out
prompt x 4 samples against SFT's samples to the same prompts; this script collects its records into
benchmarks/results/dpo.json (`--from` collects a results file of that experiment instead of running it).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, previous_runs, save  # noqa: E402

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "online_dpo.py"
VARIANTS = ("offline_dpo", "online_rm", "ppo")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--keep-cache", action="store_true", help="use $RLHF_LAB_CACHE instead of a fresh cache per seed")
parser.add_argument("--from", dest="source", type=Path, help="collect this results file of experiments/online_dpo.py")
parser.add_argument("--note", default="", help="how the runs were measured (threads, side by side), kept in the file")
args = parser.parse_args()


def run_seed(seed: int, side_by_side: bool) -> list[dict]:
    """The experiment's records for one seed, measured in a process of its own."""
    results = Path(tempfile.mkdtemp(prefix=f"bench-dpo-{seed}-")) / "records.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not args.keep_cache:
        env["RLHF_LAB_CACHE"] = tempfile.mkdtemp(prefix=f"bench-dpo-cache-{seed}-")
    if side_by_side:
        env.update(RLHF_LAB_THREADS="1", OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, str(EXPERIMENT), "--seed", str(seed), "--only", *VARIANTS,
                    "--results", str(results)], env=env, check=True)
    return json.loads(results.read_text())


if args.source:
    records = json.loads(args.source.read_text())
    command = f"python benchmarks/bench_dpo.py --from {args.source.as_posix()}"
else:
    side_by_side = len(args.seeds) > 1 and not args.keep_cache
    with ThreadPoolExecutor(max_workers=2 if side_by_side else 1) as pool:
        records = [r for seed_records in pool.map(lambda s: run_seed(s, side_by_side), args.seeds)
                   for r in seed_records]
    command = "python benchmarks/bench_dpo.py " + " ".join(sys.argv[1:])

runs = previous_runs("dpo")
for record in records:
    if record["variant"] in VARIANTS and record["seed"] in args.seeds:
        runs.setdefault(str(record["seed"]), {})[record["variant"]] = record
save("dpo", {"what": "offline DPO, online DPO (reward model judges) and PPO from the same SFT and reward model; "
                     "every held-out prompt x 4 samples, gold gain paired against SFT's samples",
             "command": command, "machine": machine(), "note": args.note or (
                 "each seed in a process of its own" + (", two side by side on one torch thread each"
                                                        if not args.source and len(args.seeds) > 1 else "")),
             "variants": list(VARIANTS),
             "seeds": sorted(int(s) for s in runs), "runs": dict(sorted(runs.items()))})

"""What checking cache entries on load costs a warm `rlhf-lab run` (experiments/results/cache_verify.json).

    python experiments/cache_verify.py              # the quick pipeline, a fresh cache
    python experiments/cache_verify.py --full --keep-cache   # the default pipeline, on $RLHF_LAB_CACHE

The pipeline is built once (cold), then run warm ``--runs`` times with today's load check
(every file stat'ed against the manifest, see rlhf_lab.cache) and as many times with the old
one (``settings.json`` exists), alternating. Reported: the seconds spent inside the check
per warm run, against the warm run's total, and the two totals. Also: the one-off cost of
a full re-hash (every stamp deleted, as after copying a cache with a tool that drops
modification times) and the stat-only check after it.

Target (issue "A model cache a learner can trust"): a warm run spends at most 10% more time
than before verifying entries.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, save  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=3, help="warm runs with each check (default 3)")
parser.add_argument("--full", action="store_true", help="the default pipeline instead of the quick one")
parser.add_argument("--keep-cache", action="store_true", help="use $RLHF_LAB_CACHE instead of a fresh cache")
args = parser.parse_args()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if not args.keep_cache:
    os.environ["RLHF_LAB_CACHE"] = tempfile.mkdtemp(prefix="bench-cache-verify-")

import torch  # noqa: E402

torch.set_num_threads(2)
from rlhf_lab import cache, cache_tools  # noqa: E402
from rlhf_lab.config import cache_dir, get_profile  # noqa: E402
from rlhf_lab.pipeline import run_pipeline  # noqa: E402

real_problem = cache.entry_problem
spent = {"seconds": 0.0, "checks": 0}


def timed_problem(target):
    """Today's check, timed."""
    start = time.perf_counter()
    try:
        return real_problem(target)
    finally:
        spent["seconds"] += time.perf_counter() - start
        spent["checks"] += 1


def old_problem(target):
    """The check before manifests: an entry counted as built when its settings.json existed."""
    return None if (Path(target) / "settings.json").exists() else "not built"


def pipeline_run(check) -> dict:
    cache.entry_problem = check
    spent.update(seconds=0.0, checks=0)
    out = tempfile.mkdtemp(prefix="bench-cache-verify-run-")
    start = time.perf_counter()
    run_pipeline(get_profile("tiny"), out, quick=not args.full, progress=False)
    return {"total_s": round(time.perf_counter() - start, 3), "verify_s": round(spent["seconds"], 5),
            "checks": spent["checks"]}


start = time.perf_counter()
cold = pipeline_run(timed_problem)
cold["total_s"] = round(time.perf_counter() - start, 1)
print(f"cold run (builds what is missing): {cold['total_s']} s")
verified, unverified = [], []
for i in range(args.runs):
    verified.append(pipeline_run(timed_problem))
    unverified.append(pipeline_run(old_problem))
    print(f"warm run {i + 1}: {verified[-1]['total_s']} s with the check ({verified[-1]['verify_s'] * 1000:.1f} ms "
          f"in {verified[-1]['checks']} checks), {unverified[-1]['total_s']} s with the old one")
cache.entry_problem = real_problem

# The one-off full re-hash: every stamp deleted, then every entry checked twice.
found = cache_tools.entries()
for entry in found:
    (entry.path / cache.STAMP).unlink(missing_ok=True)
start = time.perf_counter()
assert all(cache.entry_problem(e.path) is None for e in found)
rehash_s = time.perf_counter() - start
start = time.perf_counter()
assert all(cache.entry_problem(e.path) is None for e in found)
stat_only_s = time.perf_counter() - start
size = sum(e.size for e in found)

median = statistics.median
warm_s, old_s = median(r["total_s"] for r in verified), median(r["total_s"] for r in unverified)
verify_s = median(r["verify_s"] for r in verified)
result = {
    "machine": machine(),
    "pipeline": "default" if args.full else "quick",
    "cache": str(cache_dir()),
    "entries": len(found),
    "cache_bytes": size,
    "cold_run": cold,
    "warm_runs_with_check": verified,
    "warm_runs_with_old_check": unverified,
    "median_warm_run_s": warm_s,
    "median_warm_run_old_check_s": old_s,
    "median_verify_s_per_warm_run": verify_s,
    "verify_share_of_warm_run": round(verify_s / warm_s, 6),
    "full_rehash_all_entries_s": round(rehash_s, 4),
    "full_rehash_mb_per_s": round(size / 1e6 / rehash_s, 1),
    "stat_only_all_entries_s": round(stat_only_s, 5),
    "target": "verification adds at most 10% to a warm run",
    "target_met": verify_s <= 0.10 * (warm_s - verify_s),
}
print(f"warm run: median {warm_s} s with the check, {old_s} s with the old one; the check itself "
      f"{verify_s * 1000:.1f} ms per run ({100 * verify_s / warm_s:.3f}% of it). Full re-hash of {len(found)} entries "
      f"({size / 1e6:.1f} MB): {rehash_s:.3f} s ({result['full_rehash_mb_per_s']} MB/s), "
      f"then {stat_only_s * 1000:.2f} ms.")
save("cache_verify", result)

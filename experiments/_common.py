"""The benchmarks' shared bits (benchmarks/_common.py: the machine's description, result files),
with this folder's results: an experiment writes and reads experiments/results/."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "benchmarks_common", Path(__file__).resolve().parent.parent / "benchmarks" / "_common.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
_shared.RESULTS = RESULTS = Path(__file__).resolve().parent / "results"
machine, save, previous_runs, use_fresh_cache = _shared.machine, _shared.save, _shared.previous_runs, _shared.use_fresh_cache

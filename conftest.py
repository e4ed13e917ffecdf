"""Shared pytest setup for tests/, notebooks/ (nbval) and solutions/: offline, one shared
cache, the test budget, notebook 03 driven by a scripted learner, the exercise grading
target, the `notebook` marker on every notebook cell, and the durations file of a full run."""

import json
import os
import platform
from pathlib import Path

import pytest

# Tests never reach the Hugging Face Hub; the tiny profile builds everything locally.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Notebook 03 drives its labelling widget with a scripted learner instead of waiting for clicks.
os.environ["RLHF_LAB_AUTOLABEL"] = "1"
# The longest lessons train their reduced grid under test (rlhf_lab.config.budget; course.sh sets it too).
os.environ.setdefault("RLHF_LAB_BUDGET", "test")
# One cache for the whole run (notebook kernels inherit it), so the base model is built once.
os.environ.setdefault("RLHF_LAB_CACHE", str(Path(__file__).resolve().parent / ".cache" / "rlhf_lab"))


def pytest_addoption(parser):
    parser.addoption(
        "--target",
        action="store",
        default="solutions",
        choices=("solutions", "exercises"),
        help="Which exercise notebooks tests/exercises grades: the completed solutions "
        "(default) or the learner's filled-in exercises.",
    )


def pytest_collection_modifyitems(config, items):
    """Every cell nbval runs from a .ipynb (lessons, solutions) is a `notebook` item."""
    for item in items:
        if str(item.path).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebook)


# ---------------------------------------------------------------------------
# Durations of a full run, kept in the repository (course.sh test sets RLHF_LAB_DURATIONS)
# ---------------------------------------------------------------------------

_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration  # setup + call + teardown


def pytest_sessionfinish(session, exitstatus):
    """Merge this session's per-test seconds into $RLHF_LAB_DURATIONS. Sessions of one run (the same
    $RLHF_LAB_RUN_ID: course.sh's browser tests and its two lanes) add up; a new run starts the file anew."""
    path = os.environ.get("RLHF_LAB_DURATIONS")
    if not path or not _seconds:
        return
    from filelock import FileLock

    path, run = Path(path), os.environ.get("RLHF_LAB_RUN_ID", "")
    with FileLock(str(path) + ".lock"):  # course.sh's two lanes finish their sessions side by side
        kept = json.loads(path.read_text()) if path.exists() else {}
        seconds = dict(kept.get("seconds", {})) if kept.get("run") == run else {}
        seconds.update({k: round(v, 2) for k, v in _seconds.items()})
        path.write_text(json.dumps({
            "run": run, "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
            "lanes": "browser tests alone; then two lanes of one torch thread each (course.sh), so a lane's "
                     "seconds are about 1.5x what the same item takes alone on 2 threads",
            "total_s": round(sum(seconds.values()), 1),
            "seconds": dict(sorted(seconds.items(), key=lambda kv: -kv[1])),
        }, indent=1) + "\n")

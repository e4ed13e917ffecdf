"""Shared bits of the benchmark scripts: machine description and result files."""

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import torch

    return {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "platform": platform.platform()}


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return path


def previous_runs(name: str) -> dict:
    """The per-seed runs already in results/<name>.json: seeds can be measured apart and merge."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text())["runs"] if path.exists() else {}


def use_fresh_cache(prefix: str, seed: int, keep_cache: bool) -> None:
    """Point $RLHF_LAB_CACHE at a new empty folder for this seed (everything trains from
    nothing, as on a new machine), unless ``keep_cache`` (use the cache already set)."""
    if not keep_cache:
        import tempfile

        os.environ["RLHF_LAB_CACHE"] = tempfile.mkdtemp(prefix=f"{prefix}-{seed}-")

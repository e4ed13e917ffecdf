"""What the cache folder holds, read without checking anything: ``<kind>/<key>`` entries,
their sizes, and a one-line summary. Used by the cache itself (:mod:`rlhf_lab.cache`: the
disk-full message) and by ``rlhf-lab cache`` (:mod:`rlhf_lab.cache_tools`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .config import cache_dir

KEY = re.compile(r"[0-9a-f]{12}")  # an entry's name: the hash of its settings
MANIFEST = "manifest.json"  # every file's size and sha256 at build time


def human_size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


def folder_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # deleted meanwhile
    return total


def stage_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def is_entry(path: Path) -> bool:
    return (path.is_dir() and not path.is_symlink() and KEY.fullmatch(path.name) is not None
            and ((path / "settings.json").exists() or (path / MANIFEST).exists()))


def cache_summary(root: Path | None = None) -> str:
    """``"1.2 GB in 7 entries (base 40.1 MB, sft 40.0 MB, ...)"``: cheap, it checks nothing."""
    root = root or cache_dir()
    by_stage = {stage.name: [folder_size(p) for p in sorted(stage.iterdir()) if is_entry(p)]
                for stage in (stage_dirs(root) if root.is_dir() else [])}
    by_stage = {stage: sizes for stage, sizes in by_stage.items() if sizes}
    parts = ", ".join(f"{stage} {human_size(sum(sizes))}" for stage, sizes in by_stage.items())
    total, count = sum(map(sum, by_stage.values())), sum(map(len, by_stage.values()))
    return f"{human_size(total)} in {count} entries" + (f" ({parts})" if parts else "")

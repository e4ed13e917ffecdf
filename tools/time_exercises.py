"""Time the exercise notebooks: the check cells, and each notebook end to end.

    python tools/time_exercises.py                     # solutions/ (checks + full runs)
    python tools/time_exercises.py exercises --checks-only

Budgets (2 CPU cores): every check(...) under 10 s, every notebook under 30 s. A full run
needs the tiny profile's base and SFT models in the cache (built on first use, minutes).
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def cell_seconds(cell) -> float:
    stamps = cell.metadata.get("execution", {})
    start, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
    parse = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(end) - parse(start)).total_seconds() if start and end else float("nan")


def run(notebook, folder: Path) -> float:
    """Execute in a fresh kernel; return the wall time including the kernel's start."""
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3", record_timing=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="solutions", choices=("solutions", "exercises"))
    parser.add_argument("--checks-only", action="store_true", help="run each notebook only up to its last check")
    args = parser.parse_args()
    folder = ROOT / args.folder
    total = 0.0
    for path in sorted(folder.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        is_check = lambda c: c.cell_type == "code" and "check(" in c.source
        last_check = max(i for i, c in enumerate(notebook.cells) if is_check(c))
        head = nbformat.from_dict(dict(notebook, cells=notebook.cells[: last_check + 1]))
        head_wall = run(head, folder)
        checks = [cell_seconds(c) for c in head.cells if is_check(c)]
        line = (f"{path.name:<28} checks {', '.join(f'{s:.2f}' for s in checks)} s; "
                f"up to the last check {head_wall:.1f} s (kernel start included)")
        if not args.checks_only:
            full_wall = run(notebook, folder)
            total += full_wall
            line += f"; whole notebook {full_wall:.1f} s"
        print(line, flush=True)
    if not args.checks_only:
        print(f"all notebooks: {total:.1f} s")


if __name__ == "__main__":
    main()

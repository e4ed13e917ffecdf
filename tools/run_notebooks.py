"""Sync, execute and time the lesson notebooks.

Each lesson is a jupytext pair: ``notebooks/sources/NN_name.py`` (percent format) is the
source you edit and review; ``notebooks/NN_name.ipynb`` is what learners open, with the outputs
of the tiny profile (the sources sit in a subfolder so the lessons folder lists each lesson once;
the pairing is in each notebook's jupytext metadata, ``formats: ipynb,sources//py:percent``). JupyterLab keeps the two in step when jupytext is installed (it is a
course dependency); from the shell:

    python tools/run_notebooks.py                     # .py -> .ipynb (outputs kept), no execution
    python tools/run_notebooks.py --execute           # ... then run them in order, keeping outputs
    python tools/run_notebooks.py --execute --only 03 # only the notebooks whose name starts with 03

Executing runs each notebook in a fresh kernel (cwd notebooks/, 2 torch threads, offline,
RLHF_LAB_AUTOLABEL=1 so notebook 03's scripted learner labels the pairs), measures its wall
time, stores it in tools/notebook_runtimes.json and stamps the runtimes into the course map
of 00_welcome (its source and its notebook). ``tests/test_notebook_sources.py`` fails when a
notebook and its source disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import clean_outputs  # noqa: E402  (tools/clean_outputs.py)

NOTEBOOKS_DIR = ROOT / "notebooks"
SOURCES_DIR = NOTEBOOKS_DIR / "sources"
RUNTIMES_FILE = Path(__file__).resolve().parent / "notebook_runtimes.json"
RUNTIME_CELL = re.compile(r"(\| `(?P<name>\d\d[a-z]?_\w+)\.ipynb` \|[^|\n]*\| )[^|\n]*( \|)")
README = ROOT / "README.md"
# A lesson's own first-run time in its prose ("about 21 min from nothing on 2 CPU cores").
OWN_TIME = re.compile(r"about \d+ min from nothing on 2 CPU cores")
# The README's map: "| `05_ppo` | what you do | 6.6 min (a remark kept) |".
README_TIME_CELL = re.compile(r"(\| `(?P<name>\d\d[a-z]?_\w+)` \|[^|\n]*\| )[^|(\n]*?(?P<remark> \([^|\n]*\))?( \|)")


def jupytext(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "jupytext", "--quiet", *args], check=True)


def sources(only: str | None) -> list[Path]:
    return [p for p in sorted(SOURCES_DIR.glob("[0-9][0-9]*_*.py")) if not only or p.name.startswith(only)]


def sync(source: Path) -> Path:
    """Write the .ipynb from its .py source, keeping the outputs of unchanged cells."""
    notebook = NOTEBOOKS_DIR / f"{source.stem}.ipynb"
    jupytext("--to", "ipynb", *(["--update"] if notebook.exists() else []), "--output", str(notebook), str(source))
    return notebook


def execution_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    env["RLHF_LAB_AUTOLABEL"] = "1"  # notebook 03: the scripted learner labels a throwaway copy
    return env


def execute(notebook: Path) -> float:
    """Run one notebook in place in a fresh kernel; return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    "--ExecutePreprocessor.timeout=3600",  # 07 from an empty cache: a cell trains over 15 min
                    "--ExecutePreprocessor.store_widget_state=False", str(notebook)], check=True, env=execution_env())
    clean_outputs.clean(notebook)  # no widget state, no frozen progress bars
    return time.perf_counter() - start


def stamp_course_map(runtimes: dict[str, float]) -> None:
    """Write each measured runtime into the course-map tables of 00_welcome (source and notebook)
    and of the README, and into a lesson's prose where it states its own first-run time."""
    source = SOURCES_DIR / "00_welcome.py"

    def runtime(match):
        seconds = runtimes.get(match["name"])
        return match.group(1) + (f"{seconds / 60:.1f} min" if seconds else "not measured yet") + match.group(3)

    source.write_text(RUNTIME_CELL.sub(runtime, source.read_text()))
    sync(source)
    README.write_text(stamped_readme(README.read_text(), runtimes))
    for lesson_source in sources(None):
        text = lesson_source.read_text()
        stamped = stamped_own_time(text, runtimes.get(lesson_source.stem))
        if stamped != text:
            lesson_source.write_text(stamped)
            sync(lesson_source)


def stamped_own_time(text: str, seconds: float | None) -> str:
    """A lesson's source with its own first-run time where its prose states it."""
    return OWN_TIME.sub(f"about {seconds / 60:.0f} min from nothing on 2 CPU cores", text) if seconds else text


def stamped_readme(text: str, runtimes: dict[str, float]) -> str:
    """The README with each notebook's first-run time in its map (a remark in parentheses after
    the time stays; a notebook never timed keeps what it had)."""

    def readme_runtime(match):
        seconds = runtimes.get(match["name"])
        if not seconds:
            return match.group(0)
        shown = f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
        return match.group(1) + shown + (match["remark"] or "") + match.group(4)

    return README_TIME_CELL.sub(readme_runtime, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", action="store_true", help="run the notebooks in order and keep their outputs")
    parser.add_argument("--only", default=None, help="only the notebooks whose name starts with this, e.g. 03")
    args = parser.parse_args()
    runtimes = json.loads(RUNTIMES_FILE.read_text()) if RUNTIMES_FILE.exists() else {}
    for source in sources(args.only):
        notebook = sync(source)
        if not args.execute:
            continue
        print(f"executing {notebook.relative_to(ROOT)} ...", flush=True)
        seconds = execute(notebook)
        runtimes[notebook.stem] = round(seconds, 1)
        print(f"  {notebook.name}: {seconds:.0f} s, {notebook.stat().st_size / 1e3:.0f} kB", flush=True)
        RUNTIMES_FILE.write_text(json.dumps(runtimes, indent=1, sort_keys=True) + "\n")
    stamp_course_map(runtimes)


if __name__ == "__main__":
    main()

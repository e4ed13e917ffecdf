"""Write exercises/*.ipynb and solutions/*.ipynb from the solution sources, solutions/NN_name.py.

The source of truth is each solution notebook's jupytext source (percent format): edit it
(or the notebook in JupyterLab, which rewrites its paired source), then run this script.
A graded cell is tagged "solution" and starts with MARKER; inside it the worked answer sits
between nbgrader's markers, after the hints (which both versions show):

    def bradley_terry_loss(chosen_rewards, rejected_rewards):
        \"\"\"...\"\"\"
        # Two lines are enough. Think about numerical stability for large margins.
        ### BEGIN SOLUTION
        return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
        ### END SOLUTION

exercises/ gets every marked region replaced by a stub that raises NotImplementedError
("Exercise 2: write bradley_terry_loss"; 4a, 4b, ... where a notebook has several), and
no outputs. solutions/ gets the source as it is, keeping the outputs of unchanged cells.
tests/exercises checks that both folders are exactly what this script writes.

    python tools/make_exercises.py            # write both folders
    python tools/make_exercises.py --execute  # ... and run the solutions, saving outputs
    python tools/make_exercises.py --execute --only 09  # ... only solutions/09_*
"""

from __future__ import annotations

import argparse
import re
import string
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import clean_outputs  # noqa: E402  (tools/clean_outputs.py)

SOURCES = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))
NOTEBOOKS = {source.with_suffix(".ipynb").name: source for source in SOURCES}
MARKER = "# EXERCISE:"
SOLUTION_TAG = "solution"
REGION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION$\n?", re.M | re.S)


def solution_notebook(source: Path) -> nbformat.NotebookNode:
    """The solution notebook of a source, with stable cell ids (regenerating does not churn diffs)."""
    notebook = jupytext.read(source)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:02d}"
    return notebook


def exercise_notebook(source: Path) -> nbformat.NotebookNode:
    """The solution notebook with each marked region replaced by a stub, and no outputs."""
    notebook = solution_notebook(source)
    notebook.metadata.pop("jupytext", None)  # generated, not paired with a source
    several = sum(len(REGION.findall(cell.source)) for cell in notebook.cells) > 1
    letters = iter(string.ascii_lowercase)

    def stub(match: re.Match, cell_source: str) -> str:
        indent = match["indent"]
        # The function the region belongs to: the last `def` before it, indented less.
        outer = [m[2] for m in re.finditer(r"^([ \t]*)def (\w+)", cell_source[: match.start()], re.M)
                 if len(m[1]) < len(indent)]
        label = source.name[:2].lstrip("0") + (next(letters) if several else "")
        return f'{indent}raise NotImplementedError("Exercise {label}: write {outer[-1]}")\n'

    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = REGION.sub(lambda match: stub(match, cell.source), cell.source).rstrip("\n")
            cell.outputs, cell.execution_count = [], None
    return notebook


def with_outputs(notebook: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    """Keep the outputs the notebook at ``path`` has for cells whose source did not change."""
    old = {cell.get("id"): cell for cell in nbformat.read(path, as_version=4).cells} if path.exists() else {}
    for cell in notebook.cells:
        previous = old.get(cell.id)
        if cell.cell_type == "code" and previous is not None and previous.source == cell.source:
            cell.outputs, cell.execution_count = previous.outputs, previous.execution_count
    return notebook


def write_all(execute: bool = False, only: str = "") -> None:
    (ROOT / "exercises").mkdir(exist_ok=True)
    for name, source in NOTEBOOKS.items():
        solution = ROOT / "solutions" / name
        jupytext.write(with_outputs(solution_notebook(source), solution), solution, fmt="ipynb")
        nbformat.write(exercise_notebook(source), ROOT / "exercises" / name)
    print(f"Wrote {len(NOTEBOOKS)} notebooks to exercises/ and solutions/ from solutions/*.py")
    for name in [n for n in NOTEBOOKS if n.startswith(only)] if execute else ():
        path = ROOT / "solutions" / name
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                        "--inplace", "--ExecutePreprocessor.timeout=600",
                        "--ExecutePreprocessor.store_widget_state=False", str(path)], check=True)
        clean_outputs.clean(path)  # no widget state, no frozen progress bars


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", action="store_true", help="run the solution notebooks and keep their outputs")
    parser.add_argument("--only", default="", help="with --execute: only the notebooks whose name starts with this")
    arguments = parser.parse_args()
    write_all(arguments.execute, arguments.only)

"""Clean an executed notebook's outputs before it is committed (run_notebooks.py and
make_exercises.py call it after executing; run it by hand on a notebook saved from JupyterLab):

- no saved widget state: it is the last run's (tens of kB, a temporary folder's path), and a
  learner's kernel makes its own;
- no progress bars: saved without their widget state, a tqdm bar shows as its first frame,
  "0%", forever. The learner sees the live bar when running the cell; what the loop produced
  (its printed summary, its figure) stays.

    python tools/clean_outputs.py notebooks/05_ppo.ipynb [...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

# tqdm's text form: "desc:  42%|████      | 21/50 [00:03<00:04, 6.1it/s]"
PROGRESS_BAR = re.compile(r"\d+%\|.*\| *[\d.]+[kM]?/[\d.?]+[kM]? \[")


def is_progress_bar(output) -> bool:
    data = output.get("data", {})
    return (output.get("output_type") == "display_data" and "application/vnd.jupyter.widget-view+json" in data
            and bool(PROGRESS_BAR.search("".join(data.get("text/plain", "")))))


def clean(notebook_path: Path) -> bool:
    """Clean the notebook in place; True when anything was removed."""
    nb = nbformat.read(notebook_path, as_version=4)
    changed = nb.metadata.pop("widgets", None) is not None
    for cell in nb.cells:
        if cell.cell_type == "code":
            kept = [o for o in cell.outputs if not is_progress_bar(o)]
            changed |= len(kept) != len(cell.outputs)
            cell.outputs = kept
    if changed:
        nbformat.write(nb, notebook_path)
    return changed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {'cleaned' if clean(Path(name)) else 'already clean'}")

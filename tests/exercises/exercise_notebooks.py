"""Load the exercise notebooks' graded functions (helpers for tests/exercises).

``--target=solutions`` (default) grades solutions/*.ipynb; ``--target=exercises`` grades the
learner's filled-in exercises/*.ipynb. A notebook's graded cells are the ones tagged
"solution" (or starting with the exercise marker, in case a tag got lost); they are run in
order in one namespace, the way the notebook runs them. Both folders are generated from the
solution sources (solutions/NN_name.py) by tools/make_exercises.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]


def load_generator():
    """tools/make_exercises.py as a module: it writes both notebook folders from the solution sources."""
    if "make_exercises" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "tools" / "make_exercises.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["make_exercises"] = module
        spec.loader.exec_module(module)
    return sys.modules["make_exercises"]


GENERATOR = load_generator()
NOTEBOOK_NAMES = list(GENERATOR.NOTEBOOKS)


def is_graded_cell(cell) -> bool:
    return cell.cell_type == "code" and (
        GENERATOR.SOLUTION_TAG in cell.metadata.get("tags", []) or cell.source.lstrip().startswith(GENERATOR.MARKER)
    )


def graded_functions(notebook) -> dict:
    """Run the notebook's graded cells in a fresh namespace; return the functions they define."""
    namespace: dict = {"__name__": "exercise_notebook"}
    for cell in notebook.cells:
        if is_graded_cell(cell):
            exec(compile(cell.source, "<exercise cell>", "exec"), namespace)
    return {name: value for name, value in namespace.items() if callable(value) and not name.startswith("__")
            and getattr(value, "__module__", None) == "exercise_notebook"}


def read_notebook(folder: str, name: str):
    path = ROOT / folder / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python tools/make_exercises.py`.")
    return nbformat.read(path, as_version=4)

"""Every lesson notebook agrees with its jupytext source (notebooks/NN_name.py).

The .py file is the source of truth; when this fails, run `python tools/run_notebooks.py`
(or save the notebook in JupyterLab, which rewrites its paired source) and commit both.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.py"))


def cells(notebook):
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_every_notebook_has_a_source():
    notebooks = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")}
    assert notebooks == {p.stem for p in SOURCES}, "each lesson needs both NN_name.py and NN_name.ipynb"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    from_source = cells(jupytext.read(source))
    in_notebook = cells(nbformat.read(source.with_suffix(".ipynb"), as_version=4))
    for i, (expected, found) in enumerate(zip(from_source, in_notebook)):
        assert expected == found, (f"{source.stem}: cell {i} differs from {source.name}; "
                                   "run `python tools/run_notebooks.py` to rewrite the notebook")
    assert len(from_source) == len(in_notebook), f"{source.stem}: the notebook and its source have different cells"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_a_lesson_reads_the_named_budget_not_the_ci_variable(source):
    """One setting says how much a lesson trains under test (RLHF_LAB_BUDGET, through
    rlhf_lab.config.under_test_budget), so a learner can choose it too; no lesson branches on CI."""
    text = source.read_text()
    assert '"CI"' not in text and "'CI'" not in text, f"{source.name} reads CI: use config.under_test_budget()"

"""Every lesson notebook agrees with its jupytext source (notebooks/sources/NN_name.py).

The .py file is the source of truth; when this fails, run `python tools/run_notebooks.py`
(or save the notebook in JupyterLab, which rewrites its paired source) and commit both.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted((NOTEBOOKS / "sources").glob("[0-9][0-9]*_*.py"))


def cells(notebook):
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_every_notebook_has_a_source():
    notebooks = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")}
    assert notebooks == {p.stem for p in SOURCES}, "each lesson needs notebooks/NN_name.ipynb and sources/NN_name.py"


def test_the_lessons_folder_lists_each_lesson_once_and_jupytext_pairs_it_with_its_source():
    """A learner browsing notebooks/ sees one file per lesson (no .py twin that JupyterLab would also
    open as a notebook); saving a notebook in JupyterLab rewrites its source in sources/."""
    assert not list(NOTEBOOKS.glob("*.py")), "lesson sources belong in notebooks/sources/"
    for source in SOURCES:
        notebook = nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4)
        for formats in (notebook.metadata["jupytext"]["formats"], jupytext.read(source).metadata["jupytext"]["formats"]):
            assert formats == "ipynb,sources//py:percent", f"{source.stem}: jupytext pairs it as {formats!r}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    from_source = cells(jupytext.read(source))
    in_notebook = cells(nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4))
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


MAX_CODE_LINES = 20


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_a_learner_reads_each_code_cell_at_a_glance(source):
    """Code cells of 20 lines or fewer: a longer one is two steps of the lesson, or belongs in rlhf_lab."""
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(jupytext.read(source).cells)
            if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CODE_LINES]
    assert not long, f"{source.name}: code cells (index, lines) over {MAX_CODE_LINES} lines: {long}"

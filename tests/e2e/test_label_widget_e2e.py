"""The labelling widget in a real JupyterLab: label by clicking and by keyboard, undo, check the file.

The test runs once per notebook in NOTEBOOKS: a small notebook it writes itself (the same
widget cell that notebook 03 uses), notebooks/03_label_preferences.ipynb once that exists,
and the notebook named by $RLHF_LAB_LABEL_NOTEBOOK if set. Each notebook is copied into a
temporary folder that JupyterLab serves, so a relative store_path writes there, never into
the learner's labels. The test runs the
cells up to and including the first one that creates the LabelingApp.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from rlhf_lab.label import LabelStore

from .conftest import require_chromium

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"  # gitignored: screenshots of the widget

WIDGET_CELL = """\
from rlhf_lab.label import LabelingApp

app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
app"""

NOTEBOOK_03 = REPO_ROOT / "notebooks" / "03_label_preferences.ipynb"
NOTEBOOKS = ["generated"] + (["notebooks/03_label_preferences.ipynb"] if NOTEBOOK_03.exists() else [])
if os.environ.get("RLHF_LAB_LABEL_NOTEBOOK"):  # any other notebook with the widget cell
    NOTEBOOKS.append(os.environ["RLHF_LAB_LABEL_NOTEBOOK"])


def write_generated_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Labelling widget (end-to-end test)"),
                nbformat.v4.new_code_cell(WIDGET_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)
    return path


def cells_to_run(notebook_path: Path) -> int:
    """How many cells to run: up to and including the first code cell that makes a LabelingApp."""
    nb = nbformat.read(notebook_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and re.search(r"LabelingApp(\.for_world)?\(", cell.source):
            return i + 1
    raise AssertionError(f"{notebook_path} has no code cell that creates and shows a LabelingApp.")


@pytest.mark.e2e
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_label_pairs_by_click_and_keyboard_then_undo(notebook, jupyter_workdir, request):
    require_chromium()  # first: a missing Chromium fails here, with the install command
    jupyterlab = request.getfixturevalue("jupyterlab")
    page = request.getfixturevalue("browser_page")
    if notebook == "generated":
        nb_path = write_generated_notebook(jupyter_workdir / "label_widget.ipynb")
    else:
        nb_path = Path(shutil.copy(REPO_ROOT / notebook, jupyter_workdir / Path(notebook).name))
    n_cells = cells_to_run(nb_path)
    ARTIFACTS.mkdir(exist_ok=True)
    shot_name = f"label_widget-{Path(notebook).stem}"
    try:
        run_labelling_session(page, jupyterlab.url(nb_path.name), n_cells, ARTIFACTS / f"{shot_name}.png")
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"{shot_name}_FAILED.png"), full_page=True)
        print("JupyterLab log tail:\n" + jupyterlab.log())
        raise

    # --- the file on disk says exactly what was done in the browser
    stores = sorted(jupyter_workdir.rglob("*.jsonl"))
    assert len(stores) == 1, f"expected one label file under {jupyter_workdir}, found {stores}"
    store = LabelStore(stores[0])
    records = store.records()
    decisions = [r for r in records if r["kind"] == "decision"]
    undos = [r for r in records if r["kind"] == "undo"]
    assert len(decisions) == 11 and len(undos) == 1
    # Order of actions: click A, click B, key t, key 1 + key a, key s, key u (undoes the skip),
    # click tag "honest" + key b, click Tie, then click A four times.
    assert [d["chosen_side"] for d in decisions] == ["left", "right", None, "left", None, "right", None] + ["left"] * 4
    assert [d["choice"] for d in decisions][2] == "tie" and decisions[4]["choice"] == "skip"
    for d in decisions:
        if d["chosen_side"] == "left":
            assert d["choice"] == d["shown_left"]
        elif d["chosen_side"] == "right":
            assert d["choice"] != d["shown_left"] and d["choice"] in ("a", "b")
    assert decisions[3]["tags"] == ["helpful"] and decisions[5]["tags"] == ["honest"]
    assert undos[0]["undoes"] == decisions[4]["record_id"]
    # After the undo the same pair came back and was labelled again.
    assert decisions[5]["pair_id"] == decisions[4]["pair_id"]
    active = store.active_decisions()
    assert len(active) == 10 and len({d["pair_id"] for d in active}) == 10


def run_labelling_session(page, url: str, n_cells: int, screenshot: Path) -> None:
    page.set_default_timeout(60_000)
    page.goto(url)
    # The kernel is up when the status bar names it and says Idle.
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for()
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.nth(0).locator(".jp-InputPrompt").click()  # selects the cell (command mode)
    for _ in range(n_cells):
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(150)
    app = page.locator(".rlhf-label-app")
    app.wait_for(state="visible", timeout=120_000)
    progress = app.locator(".rlhf-label-progress")
    # (Shift+Enter on the last cell adds an empty one: count the cells now, not before.)
    n_notebook_cells = cells.count()

    def expect_labelled(n: int) -> None:
        wait_for_text(progress, f"{n} of ")

    def pair_text() -> str:
        return app.locator(".rlhf-label-left").inner_text() + app.locator(".rlhf-label-right").inner_text()

    expect_labelled(0)
    # Every button shows its shortcut.
    for css, key in [("a", "[a]"), ("b", "[b]"), ("tie", "[t]"), ("skip", "[s]"), ("undo", "[u]")]:
        assert key in app.locator(f"button.rlhf-label-{css}").inner_text()

    # 1-2: by clicking; the next pair appears.
    first = pair_text()
    app.locator("button.rlhf-label-a").click()
    expect_labelled(1)
    assert pair_text() != first
    app.locator("button.rlhf-label-b").click()
    expect_labelled(2)

    # 3-5: by keyboard, in the key box (JupyterLab must not take the keys for its own commands).
    keys = app.locator(".rlhf-label-keys input")
    keys.click()
    keys.press("t")
    expect_labelled(3)
    keys.press("1")  # tag: helpful
    wait_for_class(app.locator(".rlhf-label-tag-helpful"), "mod-active")
    keys.press("a")
    expect_labelled(4)
    skipped_pair = pair_text()
    keys.press("s")
    expect_labelled(5)
    keys.press("u")  # undo the skip: the same pair comes back
    expect_labelled(4)
    assert pair_text() == skipped_pair

    # 6-7: a tag by mouse, then a key; then Tie by mouse.
    app.locator(".rlhf-label-tag-honest").click()
    wait_for_class(app.locator(".rlhf-label-tag-honest"), "mod-active")
    keys.click()
    keys.press("b")
    expect_labelled(5)
    app.locator("button.rlhf-label-tie").click()
    expect_labelled(6)
    assert "Saved: Tie" in app.locator(".rlhf-label-status").inner_text()
    # No key reached JupyterLab's command mode: no cell was added or deleted.
    assert page.locator(".jp-Notebook .jp-Cell").count() == n_notebook_cells

    # The hidden human is revealed only after 10 labels: 4 more clicks, timed in the browser
    # from the click to the new pair on screen (a round trip through the kernel), then key r.
    reveal = app.locator("button.rlhf-label-reveal")
    assert reveal.is_disabled()
    round_trips_ms = []
    for n in range(7, 11):
        round_trips_ms.append(page.evaluate(CLICK_AND_WAIT_JS, ["button.rlhf-label-a", ".rlhf-label-progress"]))
        expect_labelled(n)
    (ARTIFACTS / "label_click_browser.json").write_text(json.dumps({"click_to_next_pair_ms": [round(t, 1) for t in round_trips_ms]}))
    print(f"browser click -> next pair on screen: {[round(t) for t in round_trips_ms]} ms")
    assert max(round_trips_ms) < 2000, f"a click took {max(round_trips_ms):.0f} ms to show the next pair"
    assert reveal.is_enabled()
    keys.click()
    keys.press("r")
    wait_for_text(app.locator(".rlhf-label-reveal-output"), "You and the hidden human")
    assert "prompt family" in app.locator(".rlhf-label-reveal-output").inner_text()
    app.screenshot(path=str(screenshot))


# Click a button and resolve with the milliseconds until the progress count changes on screen.
CLICK_AND_WAIT_JS = """([buttonSelector, progressSelector]) => new Promise((resolve, reject) => {
  const progress = document.querySelector(progressSelector);
  const before = progress.textContent;
  const start = performance.now();
  const observer = new MutationObserver(() => {
    if (progress.textContent !== before) { observer.disconnect(); resolve(performance.now() - start); }
  });
  observer.observe(progress, {childList: true, characterData: true, subtree: true});
  document.querySelector(buttonSelector).click();
  setTimeout(() => { observer.disconnect(); reject(new Error("no new pair within 10 s")); }, 10000);
})"""


def wait_for_text(locator, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in locator.inner_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout:.0f} s for {text!r}; the widget shows {locator.inner_text()!r}")


def wait_for_class(locator, css_class: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if css_class in (locator.get_attribute("class") or "").split():
            return
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout:.0f} s for class {css_class!r}; classes: {locator.get_attribute('class')!r}")

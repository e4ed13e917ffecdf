"""The labelling widget in a real JupyterLab and headless Chromium, the way a learner uses it.

- test_keyboard_session_without_a_key_box: run the widget cell; the widget takes the focus,
  so a / b / t / s / u / 1-4 / r work at once; after a click anywhere in it, too. Keys that
  are notebook commands (d d, x, m, Enter, arrows) do nothing to the notebook. Every
  button shows its key. Click and key to the next pair are timed in the browser.
- test_run_all_with_a_busy_kernel_then_reload_resume_and_reveal: notebook 03 with a
  `time.sleep` cell added after the widget, started with Run > Run All Cells. The learner
  labels while the kernel is busy: the widget says so and shows the actions waiting; the
  page is reloaded while they wait; once the kernel is free every action is in the file, in
  order, once. Running the widget cell again resumes; more labels, then the reveal.

Each notebook is copied into a temporary folder that JupyterLab serves, so the relative
store_path writes there, never into the learner's labels. The JSONL file is the judge.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rlhf_lab.label import LabelStore

from .conftest import require_chromium
from .labelling import (app_locator, insert_cell_after, kernel_busy, labelled, news_popup_shown, notebook_content, pair_text, pending,
                        run_all, run_cell, run_cells_one_by_one, summary_ms, timed_action, wait_for,
                        wait_for_text, wait_until_idle, wait_until_saved, widget_cell_index,
                        write_generated_notebook, open_notebook)

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"  # gitignored: screenshots and browser timings
NOTEBOOK_03 = REPO_ROOT / "notebooks" / "03_label_preferences.ipynb"
BUSY_SECONDS = 25  # how long the added cell keeps the kernel busy after the widget is shown


def only_store(workdir: Path) -> LabelStore:
    stores = sorted(workdir.rglob("*.jsonl"))
    assert len(stores) == 1, f"expected one label file under {workdir}, found {stores}"
    return LabelStore(stores[0])


def check_sides_match_choices(decisions: list[dict]) -> None:
    for d in decisions:
        if d["chosen_side"] == "left":
            assert d["choice"] == d["shown_left"]
        elif d["chosen_side"] == "right":
            assert d["choice"] != d["shown_left"] and d["choice"] in ("a", "b")
        else:
            assert d["choice"] in ("tie", "skip")


def fail_with_screenshot(page, jupyterlab, name: str):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}_FAILED.png"), full_page=True)
    print("JupyterLab log tail:\n" + jupyterlab.log())


@pytest.mark.e2e
def test_keyboard_session_without_a_key_box(jupyter_workdir, request):
    require_chromium()  # first: a missing Chromium fails here, with the install command
    jupyterlab = request.getfixturevalue("jupyterlab")
    page = request.getfixturevalue("browser_page")
    nb_path = write_generated_notebook(jupyter_workdir / "label_widget.ipynb")
    try:
        timings = keyboard_session(page, jupyterlab.url(nb_path.name))
    except Exception:
        fail_with_screenshot(page, jupyterlab, "label_keyboard")
        raise
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "label_click_browser_e2e.json").write_text(json.dumps(timings, indent=1))

    store = only_store(jupyter_workdir)
    records = store.records()
    decisions = [r for r in records if r["kind"] == "decision"]
    undos = [r for r in records if r["kind"] == "undo"]
    # a, b, 1+t, s, u (undoes the skip), 3 + click B, then a x4 and click A x4 (timed), then r.
    assert [d["chosen_side"] or d["choice"] for d in decisions] == \
        ["left", "right", "tie", "skip", "right"] + ["left"] * 8
    check_sides_match_choices(decisions)
    assert decisions[2]["tags"] == ["helpful"] and decisions[4]["tags"] == ["honest"]
    assert [d["tags"] for d in decisions[5:]] == [[]] * 8
    assert len(undos) == 1 and undos[0]["undoes"] == decisions[3]["record_id"]
    assert decisions[4]["pair_id"] == decisions[3]["pair_id"]  # the skipped pair came back
    active = store.active_decisions()
    assert len(active) == 12 and len({d["pair_id"] for d in active}) == 12


def keyboard_session(page, url: str) -> dict:
    open_notebook(page, url)
    assert not news_popup_shown(page), "JupyterLab shows its news pop-up: overrides.json not in effect"
    run_cells_one_by_one(page, 2)  # the markdown cell, then the widget cell
    app = app_locator(page)
    cells = page.locator(".jp-Notebook .jp-Cell")
    wait_for(lambda: labelled(app) == 0, "the widget to show 0 labelled")
    n_cells, content = cells.count(), notebook_content(page)
    # (Shift+Enter on the last cell adds an empty one below it, as JupyterLab does for a learner.)
    assert [c["type"] for c in content[:2]] == ["markdown", "code"] and "LabelingApp" in content[1]["source"]
    assert content[1]["outputs"] == 1  # the widget
    for css, key in [("a", "[a]"), ("b", "[b]"), ("tie", "[t]"), ("skip", "[s]"), ("undo", "[u]"),
                     ("tag-helpful", "[1]"), ("tag-harmless", "[2]"), ("tag-honest", "[3]"), ("tag-style", "[4]"),
                     ("reveal", "[r]")]:
        assert key in app.locator(f"button.rlhf-label-{css}").inner_text()

    # The widget took the focus when it was shown: keys work without clicking anything.
    wait_for(lambda: page.evaluate("() => !!document.activeElement.closest('.rlhf-label-app')"),
             "the widget to take the focus")
    first = pair_text(app)
    page.keyboard.press("a")
    wait_until_saved(app, 1)
    assert pair_text(app) != first
    page.keyboard.press("b")
    page.keyboard.press("1")  # tag: helpful
    assert "mod-active" in app.locator(".rlhf-label-tag-helpful").get_attribute("class")
    page.keyboard.press("t")
    wait_until_saved(app, 3)
    skipped_pair = pair_text(app)
    page.keyboard.press("s")
    wait_until_saved(app, 4)
    page.keyboard.press("u")  # undo the skip: the same pair comes back
    wait_until_saved(app, 3)
    assert pair_text(app) == skipped_pair

    # Click anywhere in the widget (here: the prompt text), then keys. Keys that are notebook
    # commands in command mode must not reach the notebook.
    page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-InputPrompt").click()  # focus elsewhere
    app.locator(".rlhf-label-prompt").click()
    page.keyboard.press("3")  # tag: honest
    for key in ["d", "d", "x", "m", "y", "c", "v", "z", "Enter", "ArrowDown", "ArrowUp"]:
        page.keyboard.press(key)
    app.locator("button.rlhf-label-b").click()
    wait_until_saved(app, 4)
    assert cells.count() == n_cells
    assert notebook_content(page) == content, "a key meant for the widget changed the notebook"
    assert app.locator(".rlhf-label-status").inner_text().startswith("Saved: B is better")

    # Idle kernel: key and click to the next pair on screen, and to saved, timed in the browser.
    reveal = app.locator("button.rlhf-label-reveal")
    assert reveal.is_disabled()
    key_times = [timed_action(page, app, "key", "a") for _ in range(4)]
    click_times = [timed_action(page, app, "click", "button.rlhf-label-a") for _ in range(4)]
    wait_until_saved(app, 12)
    assert reveal.is_enabled()
    app.locator(".rlhf-label-prompt").click()
    page.keyboard.press("r")
    wait_for_text(app.locator(".rlhf-label-reveal-output"), "You and the hidden human")
    assert "prompt family" in app.locator(".rlhf-label-reveal-output").inner_text()
    assert cells.count() == n_cells
    app.screenshot(path=str(ARTIFACTS / "label_widget-keyboard.png"))
    timings = {"key": [t["shown_ms"] for t in key_times], "click": [t["shown_ms"] for t in click_times],
               "key_saved": [t["saved_ms"] for t in key_times], "click_saved": [t["saved_ms"] for t in click_times]}
    print("browser, idle kernel:", {k: summary_ms(v) for k, v in timings.items()})
    # The target is 100 ms, measured by experiments/label_browser.py, not
    # here: a timed test fails at random on a loaded machine. This bound only catches a widget that waits
    # for the kernel (a round trip) before it shows the next pair.
    assert max(timings["key"] + timings["click"]) < 2000, timings
    return timings


@pytest.mark.e2e
@pytest.mark.skipif(not NOTEBOOK_03.exists(), reason="notebook 03 is not built")
def test_run_all_with_a_busy_kernel_then_reload_resume_and_reveal(jupyter_workdir, request):
    require_chromium()
    jupyterlab = request.getfixturevalue("jupyterlab")
    page = request.getfixturevalue("browser_page")
    nb_path = Path(shutil.copy(NOTEBOOK_03, jupyter_workdir / NOTEBOOK_03.name))
    widget_cell = widget_cell_index(nb_path)
    insert_cell_after(nb_path, widget_cell, f"import time\n\ntime.sleep({BUSY_SECONDS})  # added by the test: a busy kernel")
    try:
        run_all_session(page, jupyterlab.url(nb_path.name), widget_cell, jupyter_workdir)
    except Exception:
        fail_with_screenshot(page, jupyterlab, "label_run_all")
        raise


def run_all_session(page, url: str, widget_cell: int, workdir: Path) -> None:
    open_notebook(page, url)
    assert not news_popup_shown(page)
    run_all(page)
    # The widget is on screen once its cell has run; the sleep cell right after it then keeps the
    # kernel busy for BUSY_SECONDS. (Neither the sleep cell's "[*]" prompt nor the status bar's
    # "Busy" was a reliable signal in JupyterLab 4.6: the widget's own busy banner, asserted
    # below, is the one that matters to the learner.)
    app = app_locator(page)
    page.wait_for_timeout(1500)

    # Label while the kernel is busy: 8 keys (one undo) and 2 clicks.
    app.locator(".rlhf-label-prompt").click()
    for key in ["a", "b", "t", "1", "a", "s", "u", "b"]:
        page.keyboard.press(key)
    app.locator("button.rlhf-label-a").click()
    app.locator("button.rlhf-label-tie").click()
    # Shown at once, saved later: the widget says the kernel is busy and what is waiting.
    assert labelled(app) == 7
    wait_for_text(app.locator(".rlhf-label-busy"), "kernel is busy")
    busy_text = app.locator(".rlhf-label-busy").inner_text()
    assert "9 actions waiting" in busy_text and "A, B, Tie, A, Skip, Undo, B, A, Tie" in busy_text, busy_text
    assert pending(app) == 9 and "saving 9" in app.locator(".rlhf-label-saved").inner_text()
    store_path = workdir / "labels" / "my_labels.jsonl"
    assert not store_path.exists() or LabelStore(store_path).records() == []  # nothing saved yet
    app.screenshot(path=str(ARTIFACTS / "label_widget-busy.png"))

    # Reload the page while the actions wait; they are already on their way to the kernel.
    page.reload()
    wait_until_idle(page, timeout_ms=(BUSY_SECONDS + 60) * 1000)
    store = LabelStore(store_path)
    wait_for(lambda: store.path.exists() and len(store.records()) == 9,
             f"9 records in {store.path}", timeout=30)
    records = store.records()
    decisions = [r for r in records if r["kind"] == "decision"]
    assert [r["kind"] for r in records] == ["decision"] * 5 + ["undo"] + ["decision"] * 3
    assert [d["chosen_side"] or d["choice"] for d in decisions] == \
        ["left", "right", "tie", "left", "skip", "right", "left", "tie"]
    assert decisions[3]["tags"] == ["helpful"] and all(d["tags"] == [] for i, d in enumerate(decisions) if i != 3)
    assert records[5]["undoes"] == decisions[4]["record_id"]
    assert decisions[5]["pair_id"] == decisions[4]["pair_id"]  # B went to the pair whose skip was undone
    check_sides_match_choices(decisions)

    # Resume: run the widget cell again; it starts where the file says.
    run_cell(page, widget_cell)
    app = app_locator(page)
    wait_for(lambda: labelled(app) == 7, "the resumed widget to show 7 labelled")
    app.locator(".rlhf-label-prompt").click()
    for key in ["a", "b", "a"]:
        page.keyboard.press(key)
    wait_until_saved(app, 10)
    page.keyboard.press("r")
    wait_for_text(app.locator(".rlhf-label-reveal-output"), "You and the hidden human")
    app.screenshot(path=str(ARTIFACTS / "label_widget-run-all.png"))

    records = LabelStore(store_path).records()
    assert len(records) == 12 and sum(r["kind"] == "undo" for r in records) == 1
    active = LabelStore(store_path).active_decisions()
    assert len(active) == 10 and len({d["pair_id"] for d in active}) == 10

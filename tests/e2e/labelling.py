"""Browser helpers for the labelling widget's end-to-end tests and its browser benchmark.

Everything here drives a real JupyterLab page through Playwright: open a notebook, run
cells the way a learner does (Shift+Enter, or Run > Run All Cells), press keys and click,
and time in the page itself how long a click or key takes to show the next pair.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import nbformat

WIDGET_CELL = """\
from rlhf_lab.label import LabelingApp

app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
app"""

APP = ".rlhf-label-app"


def write_generated_notebook(path: Path, widget_cell: str = WIDGET_CELL, extra_cells: tuple[str, ...] = ()) -> Path:
    """A small notebook: a markdown cell, the widget cell (by default the one notebook 03 uses), `extra_cells`."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Labelling widget (end-to-end test)"),
                nbformat.v4.new_code_cell(widget_cell), *map(nbformat.v4.new_code_cell, extra_cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)
    return path


def widget_cell_index(notebook_path: Path) -> int:
    """Index of the first code cell that makes a LabelingApp."""
    nb = nbformat.read(notebook_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and re.search(r"LabelingApp(\.for_world)?\(", cell.source):
            return i
    raise AssertionError(f"{notebook_path} has no code cell that creates and shows a LabelingApp.")


def insert_cell_after(notebook_path: Path, index: int, source: str) -> None:
    nb = nbformat.read(notebook_path, as_version=4)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, notebook_path)


def open_notebook(page, url: str) -> None:
    page.set_default_timeout(60_000)
    page.goto(url)
    wait_until_idle(page)


def wait_until_idle(page, timeout_ms: float = 120_000) -> None:
    """The kernel is up and idle when the status bar says Idle."""
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=timeout_ms)


def kernel_busy(page) -> bool:
    return page.locator("#jp-main-statusbar").get_by_text("Busy").count() > 0


# What a learner would see change in the notebook, read from the page: each cell's type, its
# source (the rendered text for a markdown cell) and how many outputs it has. Never layout or
# presentational classes (JupyterLab adds e.g. `jp-toolbar-overlap` when its toolbar overlaps a cell).
NOTEBOOK_CONTENT_JS = """cells => cells.map(c => {
  const type = c.classList.contains('jp-MarkdownCell') ? 'markdown'
             : c.classList.contains('jp-RawCell') ? 'raw' : 'code';
  const rendered = c.querySelector('.jp-RenderedMarkdown');
  const editor = c.querySelector('.jp-InputArea-editor .cm-content');
  const source = (type === 'markdown' && rendered && rendered.offsetParent !== null) ? rendered.innerText
                 : (editor ? editor.innerText : '');
  return {type: type, source: source.trim(), outputs: c.querySelectorAll('.jp-OutputArea-output').length};
})"""


def notebook_content(page) -> list[dict]:
    """The notebook's cells as a learner sees them: type, source, number of outputs."""
    return page.locator(".jp-Notebook .jp-Cell").evaluate_all(NOTEBOOK_CONTENT_JS)


def run_cells_one_by_one(page, n_cells: int) -> None:
    """Select the first cell, then Shift+Enter n_cells times (what a careful learner does)."""
    page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-InputPrompt").click()
    for _ in range(n_cells):
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(150)


def run_all(page) -> None:
    """Run > Run All Cells, from the menu bar."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def run_cell(page, index: int) -> None:
    """Select cell `index` (command mode) and run it with Ctrl+Enter (stays on that cell)."""
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")


def app_locator(page):
    app = page.locator(APP).last
    app.wait_for(state="visible", timeout=120_000)
    return app


def labelled(app) -> int:
    return int(app.get_attribute("data-labelled"))


def pending(app) -> int:
    return int(app.get_attribute("data-pending"))


def wait_for(predicate, what: str, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def wait_for_text(locator, text: str, timeout: float = 30.0) -> None:
    wait_for(lambda: text in locator.inner_text(), f"{text!r}; the widget shows {locator.inner_text()!r}", timeout)


def wait_until_saved(app, n_labelled: int | None = None, timeout: float = 60.0) -> None:
    """Until the kernel has applied every action sent (and, if given, n_labelled are labelled)."""
    wait_for(lambda: pending(app) == 0 and (n_labelled is None or labelled(app) == n_labelled),
             f"all actions saved (pending {pending(app)}, labelled {labelled(app)}, want {n_labelled})", timeout)


def pair_text(app) -> str:
    return app.locator(".rlhf-label-left").inner_text() + app.locator(".rlhf-label-right").inner_text()


# One action timed in the page: a real key press (Playwright's keyboard, to the focused widget)
# or a real click on a button. The clock starts at the browser's own timestamp of the keydown or
# click event (captured before the widget sees it) and stops (1) when the next pair is on screen:
# its text changed and the next frame was painted (requestAnimationFrame), and (2) when the
# kernel has saved the action: its acknowledgement came back (data-pending is 0 again).
ARM_TIMER_JS = """(eventType) => {
  const app = [...document.querySelectorAll('.rlhf-label-app')].pop();
  const pairText = () => app.dataset.pairId + '|' + app.querySelector('.rlhf-label-left').textContent;
  const before = pairText();
  let start = null;
  window.addEventListener(eventType, (e) => { start = e.timeStamp; }, {capture: true, once: true});
  window.__rlhfTimed = new Promise((resolve, reject) => {
    let shown = null;
    const poll = () => {
      const now = performance.now();
      if (shown !== null && app.dataset.pending === '0') { resolve({shown_ms: shown, saved_ms: now - start}); return; }
      if (start !== null && now - start > 30000) { reject(new Error(`after 30 s: next pair shown ${shown !== null}, pending ${app.dataset.pending}`)); return; }
      setTimeout(poll, 1);
    };
    new MutationObserver(() => {
      if (start !== null && shown === null && pairText() !== before) {
        requestAnimationFrame(() => { if (shown === null) shown = performance.now() - start; });
      }
    }).observe(app, {childList: true, characterData: true, subtree: true, attributes: true});
    poll();
  });
}"""


def timed_action(page, app, kind: str, what: str) -> dict:
    """kind "key" (what: the key, pressed on the focused widget) or "click" (what: a button's
    CSS selector). Returns {"shown_ms", "saved_ms"} measured in the browser."""
    page.evaluate(ARM_TIMER_JS, "keydown" if kind == "key" else "click")
    if kind == "key":
        page.keyboard.press(what)
    else:
        app.locator(what).click()
    return page.evaluate("() => window.__rlhfTimed")


def summary_ms(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "median_ms": round(statistics.median(values), 2), "p95_ms": round(p95, 2),
            "max_ms": round(max(values), 2)}


def news_popup_shown(page) -> bool:
    return page.get_by_text(re.compile("official Jupyter news", re.I)).count() > 0

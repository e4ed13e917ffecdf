"""The committed notebooks are clean: no machine's paths in their outputs, no warnings on stderr,
no saved widget state, and small enough to open quickly (the issue "A front door for learners").

Reads the .ipynb files as JSON; runs nothing.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import clean_outputs  # noqa: E402  (tools/clean_outputs.py)

FOLDERS = ("notebooks", "exercises", "solutions")
MAX_BYTES = 400_000
# Too big today, owned by another issue that re-executes it (notebook 07's retelling); remove the
# entry when it lands under the limit.
OVERSIZE_FOR_NOW = {}
# Where a run leaves its machine in an output: absolute folders, the interpreter's packages.
MACHINE_PATH = re.compile("|".join([r"/work/", r"/tmp/", r"/home/", r"/root/", r"/Users/", r"/private/var/",
                                    r"[A-Za-z]:\\\\Users", r"site-packages", r"dist-packages",
                                    re.escape(str(Path.home()) + "/")]))


def committed_notebooks() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "--", *(f"{f}/*.ipynb" for f in FOLDERS)], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every notebook there
        return sorted(p for f in FOLDERS for p in (REPO / f).glob("*.ipynb"))
    return [REPO / name for name in listed]


NOTEBOOKS = committed_notebooks()


def output_texts(notebook: dict):
    """(cell index, output type, stream name, text) of every output of every code cell."""
    for i, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            if "text" in output:
                text = output["text"] if isinstance(output["text"], str) else "".join(output["text"])
            else:
                text = json.dumps(output.get("data", {})) + json.dumps(output.get("traceback", []))
            yield i, output["output_type"], output.get("name"), text


def test_there_are_notebooks_to_check():
    names = {p.relative_to(REPO).as_posix() for p in NOTEBOOKS}
    assert {"notebooks/00_welcome.ipynb", "solutions/01_token_logprobs.ipynb",
            "exercises/01_token_logprobs.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_outputs_show_no_machine_paths(path):
    found = [f"cell {i}: ...{text[max(0, m.start() - 40):m.end() + 40]}..."
             for i, _, _, text in output_texts(json.loads(path.read_text())) for m in [MACHINE_PATH.search(text)] if m]
    assert not found, (f"{path.name}: outputs show a machine's paths (print paths with rlhf_lab.config.shown_path, "
                       f"then re-execute): " + "; ".join(found[:3]))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_outputs_carry_no_warnings(path):
    found = [f"cell {i}: {text[:120]!r}" for i, kind, stream, text in output_texts(json.loads(path.read_text()))
             if kind == "stream" and stream == "stderr" and "Warning" in text]
    assert not found, (f"{path.name}: warnings in the committed outputs (quiet them with "
                       f"rlhf_lab.models.quiet_libraries or lesson.notebook_setup, then re-execute): " + "; ".join(found[:3]))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_widget_state_is_saved(path):
    assert "widgets" not in json.loads(path.read_text()).get("metadata", {}), (
        f"{path.name} saves its widgets' state (a learner's kernel makes its own): execute with "
        "--ExecutePreprocessor.store_widget_state=False, as tools/run_notebooks.py does")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_frozen_progress_bar_is_saved(path):
    found = [i for i, cell in enumerate(json.loads(path.read_text())["cells"])
             for output in cell.get("outputs", []) if clean_outputs.is_progress_bar(output)]
    assert not found, (f"{path.name}: progress bars saved in cells {found} (they show 0% forever without their "
                       f"widget state): python tools/clean_outputs.py {path.relative_to(REPO).as_posix()}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_notebook_is_small(path):
    limit = OVERSIZE_FOR_NOW.get(path.relative_to(REPO).as_posix(), MAX_BYTES)
    assert path.stat().st_size <= limit, (f"{path.name} is {path.stat().st_size / 1e3:.0f} kB (limit "
                                          f"{limit / 1e3:.0f} kB): fewer or smaller figures, shorter printed tables")


def test_the_cleaner_drops_a_frozen_bar_and_keeps_the_summary():
    bar = {"output_type": "display_data", "metadata": {}, "data": {
        "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
        "text/plain": ["PPO:   0%|          | 0/30 [00:00<?, ?it/s]"]}}
    summary = {"output_type": "stream", "name": "stdout", "text": "step  0: pairs ranked right 0%\n"}
    assert clean_outputs.is_progress_bar(bar) and not clean_outputs.is_progress_bar(summary)


def test_the_scan_catches_a_machine_path_and_a_warning():
    notebook = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["loaded /home/ana/.cache/rlhf_lab/sft\n"]},
        {"output_type": "stream", "name": "stderr", "text": "x.py:3: FutureWarning: old\n"}]}]}
    texts = list(output_texts(notebook))
    assert MACHINE_PATH.search(texts[0][3]) and not MACHINE_PATH.search("<course folder>/.cache/rlhf_lab")
    assert texts[1][2] == "stderr" and "Warning" in texts[1][3]


EMPTY_CHECK = re.compile(r"^checked: .*\(\)\s*$", re.MULTILINE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_check_shows_its_evidence(path):
    """A "checked: ..." line with empty numbers "()" tells the reader nothing: pass the compared numbers."""
    found = [f"cell {i}: {m.group(0)[:100]!r}" for i, _, _, text in output_texts(json.loads(path.read_text()))
             for m in EMPTY_CHECK.finditer(text)]
    assert not found, f"{path.name}: checks print no numbers (give check_claim the ones it compares): " + "; ".join(found[:3])


def test_a_check_without_numbers_is_refused_and_rates_print_as_percentages(capsys):
    from rlhf_lab import lesson

    with pytest.raises(TypeError, match="no numbers"):
        lesson.check_claim("it rose", True)
    lesson.check_claim("it rose", True, sft_rate=0.25, gain={"mean": 0.5, "low": 0.25, "high": 0.75},
                       ppo_rate={"mean": 0.1, "low": 0.05, "high": 0.15}, steps=3)
    assert capsys.readouterr().out == ("checked: it rose (sft_rate=25%, gain=+0.5 [+0.25, +0.75], "
                                       "ppo_rate=10% [5%, 15%], steps=3)\n")
    with pytest.raises(lesson.ClaimFailed, match="sft_rate=25%"):
        lesson.check_claim("it fell", False, sft_rate=0.25)

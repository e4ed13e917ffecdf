"""The README is the learner's front door: its repository map names every module a learner reads."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import run_notebooks  # noqa: E402  (tools/run_notebooks.py: stamps the measured first-run times)


def test_the_repository_map_names_every_module():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## Repository map"):]
    package = ROOT / "rlhf_lab"
    missing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if path.name == "__init__.py":
            name = None
        elif relative.parts[0] == "stages":
            name = "/".join(relative.parts)
        elif len(relative.parts) > 1:  # a subpackage (world/, label/, grading_cases/) is named as a folder
            name = relative.parts[0] + "/"
        else:
            name = path.name
        if name and name not in block and name.replace(".py", "") not in block:
            missing.append(name)
    assert not missing, f"README's repository map does not name {sorted(set(missing))}: add a line for each."


def test_the_notebook_map_shows_the_measured_first_run_times():
    """The README's map carries the times of tools/notebook_runtimes.json (the one source:
    tools/run_notebooks.py stamps it, with 00's course map, after a run)."""
    readme = (ROOT / "README.md").read_text()
    runtimes = json.loads(run_notebooks.RUNTIMES_FILE.read_text())
    assert run_notebooks.stamped_readme(readme, runtimes) == readme, (
        "README's notebook map disagrees with tools/notebook_runtimes.json: run `python tools/run_notebooks.py` "
        "(no --execute) to stamp the measured times.")
    assert len(list(run_notebooks.README_TIME_CELL.finditer(readme))) == len(runtimes)


def test_stamping_keeps_a_remark_after_the_time():
    row = "| `07_reward_hacking` | hacks | ~21 min (1 min once cached) |\n| `00_welcome` | setup | 3 s |\n"
    stamped = run_notebooks.stamped_readme(row, {"07_reward_hacking": 1143.9})
    assert stamped == "| `07_reward_hacking` | hacks | 19.1 min (1 min once cached) |\n| `00_welcome` | setup | 3 s |\n"


def test_a_lesson_that_states_its_own_first_run_time_states_the_measured_one():
    runtimes = json.loads(run_notebooks.RUNTIMES_FILE.read_text())
    stale = [source.name for source in run_notebooks.sources(None)
             if run_notebooks.stamped_own_time(source.read_text(), runtimes.get(source.stem)) != source.read_text()]
    assert not stale, f"{stale} state a first-run time other than tools/notebook_runtimes.json's: run " \
                      "`python tools/run_notebooks.py` to stamp it."

"""The course's JupyterLab settings: valid for this JupyterLab, installed by course.sh setup into
the environment only (never the learner's ~/.jupyter), and in effect in the browser tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "jupyter" / "overrides.json"


def test_overrides_turn_off_news_and_update_checks_and_match_the_schema():
    overrides = json.loads(SHIPPED.read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    schema_file = (Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas" / "@jupyterlab" / "apputils-extension"
                   / "notification.json")
    schema = json.loads(schema_file.read_text())["properties"]
    assert notification["fetchNews"] in {choice["const"] for choice in schema["fetchNews"]["oneOf"]}
    assert schema["checkForUpdates"]["type"] == "boolean"
    for plugin in overrides:  # every plugin named exists in this JupyterLab
        package, name = plugin.split(":")
        assert (schema_file.parents[1] / package.split("/")[1] / f"{name}.json").exists(), plugin


def test_course_sh_installs_them_into_the_environment_only(tmp_path):
    venv, home = tmp_path / "venv", tmp_path / "home"
    home.mkdir()
    script = ("set -euo pipefail; eval \"$(sed -n '/^install_lab_settings()/,/^}/p' course.sh)\"; "
              "install_lab_settings; install_lab_settings")  # twice: idempotent
    subprocess.run(["bash", "-c", script], cwd=ROOT, check=True, env=dict(os.environ, VENV=str(venv), HOME=str(home)))
    installed = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert json.loads(installed.read_text()) == json.loads(SHIPPED.read_text())
    assert list(home.iterdir()) == []  # the learner's own settings are not touched
    assert "install_lab_settings\n" in (ROOT / "course.sh").read_text().split("setup() {", 1)[1]

"""environment.yml agrees with pyproject.toml (conda cannot be run here: STACK_NOTES)."""

import re
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def environment():
    return yaml.safe_load((REPO / "environment.yml").read_text())


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def conda_dependencies(environment):
    return [d for d in environment["dependencies"] if isinstance(d, str)]


def pip_section(environment):
    [pip] = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d]
    return pip


def pins(requirements):
    """{name: version} of the `name==version` requirements (names normalised)."""
    found = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", requirement.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def version_tuple(text):
    return tuple(int(x) for x in text.split("."))


def test_environment_has_a_name_python_and_pip(environment):
    assert environment["name"] == "rlhf-lab"
    conda = conda_dependencies(environment)
    assert "pip" in conda
    assert any(d.startswith("python=") for d in conda)


def test_python_version_is_allowed_by_requires_python(environment, pyproject):
    [python] = [d for d in conda_dependencies(environment) if d.startswith("python=")]
    version = version_tuple(python.split("=", 1)[1])
    for clause in pyproject["project"]["requires-python"].split(","):
        op, bound = re.fullmatch(r"\s*(>=|<=|<|>|==)\s*([\d.]+)\s*", clause).groups()
        bound = version_tuple(bound)
        # Compare on the bound's precision: python=3.11 satisfies >=3.10 and <3.13.
        ok = {">=": version >= bound, "<=": version[:len(bound)] <= bound, "<": version[:len(bound)] < bound,
              ">": version > bound, "==": version[:len(bound)] == bound}[op]
        assert ok, f"python={python} is not allowed by requires-python {clause.strip()!r}"


def test_torch_is_installed_first_with_the_same_pin(environment, pyproject):
    pip = pip_section(environment)
    assert pip[0].startswith("torch==")
    assert pins(pip)["torch"] == pins(pyproject["project"]["dependencies"])["torch"]


def test_pip_installs_the_package_itself_with_the_dev_extra(environment, pyproject):
    pip = pip_section(environment)
    editable = [r for r in pip if r.replace(" ", "").startswith("-e")]
    assert editable and editable[0].replace(" ", "") == "-e.[dev]"
    assert "dev" in pyproject["project"]["optional-dependencies"]
    assert pip.index(editable[0]) > pip.index(next(r for r in pip if r.startswith("torch==")))


def test_no_dependency_disagrees_with_pyproject(environment, pyproject):
    project = pyproject["project"]
    declared = pins(project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra])
    listed = pins(pip_section(environment))
    conda_pins = {}
    for d in conda_dependencies(environment):
        name, _, version = d.partition("=")
        if version and name != "python":
            conda_pins[name.lower()] = version.lstrip("=")
    for name, version in {**conda_pins, **listed}.items():
        if name in declared:
            assert version == declared[name], f"{name}: environment.yml has {version}, pyproject {declared[name]}"

"""The README is the learner's front door: its repository map names every module a learner reads."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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

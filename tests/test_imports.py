"""The package's import structure: module-level imports form no cycle, and a function-local
import of one of the package's own modules is there only to defer a heavy library (the target
loads torch, transformers, ... when imported), never to hide a cycle or for no reason."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rlhf_lab"
HEAVY = {"torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes", "matplotlib",
         "numpy", "ipywidgets", "anywidget", "IPython", "scipy"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PATH_NAMES = {module_name(p) for p in PACKAGE.rglob("*.py")}


def imported(node, module: str, is_package: bool) -> list[str]:
    """The modules an import statement names (for `from x import y`: x.y if it is a module, else x)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    modules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in PATH_NAMES]
    return modules or [source]  # `from . import cache` imports rlhf_lab.cache; `from .x import f`, rlhf_lab.x


def parse_package():
    """{module: (top-level imports, [(function, imported module), ...])}, own modules only."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    found = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text())
        is_package = path.name == "__init__.py"
        top, local = set(), []
        for node in tree.body:  # module level (TYPE_CHECKING blocks are not executed: skipped)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                top.update(imported(node, module, is_package))
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        names = [n for n in imported(node, module, is_package) if n in paths]
                        local += [(function.name, n) for n in names if n != module]
        found[module] = (top, local)
    return paths, found


PATHS, FOUND = parse_package()


def own_imports(module: str) -> set[str]:
    return {n for n in FOUND[module][0] if n in PATHS and n != module}


def loads_heavy(module: str, seen=None) -> bool:
    """Does importing ``module`` import a heavy library (itself, or through the package's modules)?"""
    seen = seen if seen is not None else set()
    if module in seen:
        return False
    seen.add(module)
    top = FOUND[module][0]
    if any(name.split(".")[0] in HEAVY for name in top):
        return True
    parents = {".".join(module.split(".")[:i]) for i in range(2, module.count(".") + 1)}  # a package's __init__
    return any(loads_heavy(m, seen) for m in own_imports(module) | (parents & set(PATHS)))


def test_module_level_imports_form_no_cycle():
    state: dict[str, str] = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(own_imports(module)):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target] if target in path else path + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(PATHS):
        if module not in state:
            visit(module, [module])


def test_a_function_imports_an_own_module_only_to_defer_a_heavy_library():
    light = sorted(f"{module}.{function} imports {target}" for module, (_, local) in FOUND.items()
                   for function, target in local if not loads_heavy(target))
    assert not light, ("these imports defer nothing heavy: move them to the top of the module (or, if they "
                       "break a cycle, move the shared code below both):\n" + "\n".join(light))


def test_the_check_sees_heavy_and_light_modules():
    assert loads_heavy("rlhf_lab.stages.reward") and loads_heavy("rlhf_lab.models")
    assert not loads_heavy("rlhf_lab.world") and not loads_heavy("rlhf_lab.config")


def reaches(start: str, goal: str) -> bool:
    """Does importing ``start`` import ``goal`` (module-level imports, packages' __init__ included)?"""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module == goal:
            return True
        if module in seen or module not in PATHS:
            continue
        seen.add(module)
        parents = {".".join(module.split(".")[:i]) for i in range(2, module.count(".") + 1)}
        todo += list(own_imports(module) | (parents & set(PATHS)))
    return False


def test_no_function_local_import_hides_a_cycle():
    """A function that imports an own module which itself (at import time) comes back to the
    function's module hides a cycle: the layers are upside down there."""
    hidden = sorted(f"{module}.{function} imports {target}, which imports {module}"
                    for module, (_, local) in FOUND.items() for function, target in local
                    if reaches(target, module) and not target.startswith(module + "."))  # (a package's own parts)
    assert not hidden, "function-local imports that hide a cycle:\n" + "\n".join(hidden)


def test_headless_reward_training_loads_no_widget():
    """The reward model's stage reads the learner's labels (label.store, label.data) without
    importing the notebook widget or its libraries."""
    import subprocess
    import sys

    code = ("import sys, rlhf_lab.stages.reward; "
            "print(sorted(m for m in ('rlhf_lab.label.app', 'anywidget', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"

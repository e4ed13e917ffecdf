"""API drift (the Unsloth-style guard): every keyword the package and the notebooks pass to TRL,
peft and transformers still exists in the installed versions, so a library upgrade fails here,
loudly, instead of in a learner's notebook. Reads the sources with ast; loads no model.
"""

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CHECKED_CALLS = ("SFTConfig", "RewardConfig", "DPOConfig", "SFTTrainer", "DPOTrainer", "RewardTrainer",
                 "LoraConfig", "BitsAndBytesConfig", "from_pretrained")


def accepted_keywords(target: str) -> set[str]:
    """The keyword names the installed library accepts for ``target``."""
    import peft
    import transformers
    import trl

    if target in ("SFTConfig", "RewardConfig", "DPOConfig"):
        return {f.name for f in dataclasses.fields(getattr(trl, target))}
    if target == "LoraConfig":
        return {f.name for f in dataclasses.fields(peft.LoraConfig)}
    if target in ("SFTTrainer", "DPOTrainer", "RewardTrainer"):
        return named_parameters(getattr(trl, target).__init__)
    if target == "BitsAndBytesConfig":
        return named_parameters(transformers.BitsAndBytesConfig.__init__)
    if target == "from_pretrained":
        # AutoModel*.from_pretrained(path, **kwargs): named parameters, the options the loader pops
        # from **kwargs, and config attributes (such as num_labels) that it passes on to the config.
        loader = transformers.PreTrainedModel.from_pretrained
        popped = set(re.findall(r"""kwargs\.pop\(\s*["'](\w+)["']""", inspect.getsource(loader)))
        config = transformers.PretrainedConfig
        config_attributes = set(vars(config())) | {n for n in dir(config) if isinstance(getattr(config, n), property)}
        return named_parameters(loader) | popped | config_attributes
    raise KeyError(target)


def named_parameters(function) -> set[str]:
    return {name for name, p in inspect.signature(function).parameters.items()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def python_sources() -> list[tuple[str, str]]:
    """(label, code) of the package's modules and of every notebook's code cells."""
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    sources = [(str(p.relative_to(REPO)), p.read_text()) for p in sorted((REPO / "rlhf_lab").rglob("*.py"))]
    to_python = TransformerManager().transform_cell  # turns %magics and !shell lines into Python
    for folder in ("notebooks", "solutions", "exercises"):
        for path in sorted((REPO / folder).glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            for i, cell in enumerate(notebook.cells):
                if cell.cell_type == "code":
                    sources.append((f"{path.relative_to(REPO)} cell {i}", to_python(cell.source)))
    return sources


class CallSiteFinder:
    """Find calls of CHECKED_CALLS and resolve the keywords they pass, including ``**`` unpacking of
    a local dict (``kwargs["x"] = ...``) or of a helper's returned dict (``**trainer_arguments(...)``)."""

    def __init__(self, sources):
        self.trees = []
        for label, code in sources:
            try:
                self.trees.append((label, ast.parse(code)))
            except SyntaxError as error:
                raise AssertionError(f"{label} is not valid Python: {error}") from None
        self.functions = {node.name: node for _, tree in self.trees for node in ast.walk(tree)
                          if isinstance(node, ast.FunctionDef)}
        # Factories such as make_reward_trainer_class() that return a subclass of a checked class.
        self.factories = {}
        for name, function in self.functions.items():
            for node in ast.walk(function):
                if isinstance(node, ast.ClassDef):
                    bases = [callee_name(b) for b in node.bases]
                    own = {a.arg for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"
                           for a in f.args.args + f.args.kwonlyargs}
                    for base in bases:
                        if base in CHECKED_CALLS:
                            self.factories[name] = (base, own)

    def call_sites(self):
        """Yield (label, line, target, keyword names)."""
        for label, tree in self.trees:
            for scope in [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
                for node in ast.walk(scope):
                    if not isinstance(node, ast.Call) or self.enclosing(tree, node) is not scope:
                        continue
                    target, own = self.target_of(node)
                    if target is None:
                        continue
                    names = set()
                    for keyword in node.keywords:
                        if keyword.arg is not None:
                            names.add(keyword.arg)
                        else:
                            names |= self.unpacked_keys(keyword.value, scope, label, node.lineno)
                    yield label, node.lineno, target, names - own

    def target_of(self, call):
        func = call.func
        if isinstance(func, ast.Call) and callee_name(func.func) in self.factories:
            return self.factories[callee_name(func.func)]
        name = callee_name(func)
        if name == "from_pretrained":
            owner = func.value if isinstance(func, ast.Attribute) else None
            return ("from_pretrained", set()) if callee_name(owner).startswith("AutoModel") else (None, None)
        return (name, set()) if name in CHECKED_CALLS else (None, None)

    def unpacked_keys(self, value, scope, label, line) -> set[str]:
        if isinstance(value, ast.Dict):
            return {literal(k, label, line) for k in value.keys}
        if isinstance(value, ast.Call) and callee_name(value.func) in self.functions:
            helper = self.functions[callee_name(value.func)]
            keys = {literal(k, label, line) for node in ast.walk(helper) if isinstance(node, ast.Dict)
                    for k in node.keys if k is not None}
            return keys | {k.arg for k in value.keywords if k.arg is not None}
        if isinstance(value, ast.Name):
            keys = set()
            for node in ast.walk(scope):
                if isinstance(node, ast.Assign):
                    for t in node.targets:
                        if isinstance(t, ast.Name) and t.id == value.id and isinstance(node.value, ast.Dict):
                            keys |= {literal(k, label, line) for k in node.value.keys if k is not None}
                        if (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == value.id):
                            keys.add(literal(t.slice, label, line))
            return keys
        raise AssertionError(f"{label}:{line}: cannot resolve `**{ast.unparse(value)}`; pass the keywords "
                             "explicitly (or a dict literal) so this API-drift test can check them.")

    @staticmethod
    def enclosing(tree, target):
        """The innermost function containing ``target`` (or the module)."""
        best = tree
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(n is target for n in ast.walk(node)):
                if best is tree or any(n is node for n in ast.walk(best)):
                    best = node
        return best


def callee_name(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def literal(node, label, line) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise AssertionError(f"{label}:{line}: a keyword name that is not a string literal: {ast.unparse(node)}")


@pytest.fixture(scope="module")
def call_sites():
    return list(CallSiteFinder(python_sources()).call_sites())


def test_every_keyword_passed_to_the_libraries_still_exists(call_sites):
    problems = []
    for label, line, target, names in call_sites:
        unknown = names - accepted_keywords(target)
        if unknown:
            problems.append(f"{label}:{line}: {target}() no longer accepts {sorted(unknown)}")
    assert not problems, "\n".join(problems)


def test_the_drift_check_sees_the_known_call_sites(call_sites):
    """Guard against a parser that silently finds nothing."""
    found = {}
    for _, _, target, names in call_sites:
        found.setdefault(target, set()).update(names)
    for target in CHECKED_CALLS:
        assert target in found, f"no call of {target} found in the package"
    # Keywords that only reach the libraries through ** unpacking are resolved too.
    assert {"report_to", "use_cpu", "seed", "disable_tqdm"} <= found["SFTConfig"]
    assert {"dtype", "quantization_config", "device_map", "num_labels"} <= found["from_pretrained"]
    assert {"loss_fn"}.isdisjoint(found["RewardTrainer"])  # our subclass's own keyword is not TRL's


def test_the_drift_check_catches_a_removed_keyword():
    code = ("from trl import DPOConfig\n"
            "def make(**extra):\n"
            "    args = {'output_dir': 'x'}\n"
            "    args['beta_typo'] = 0.1\n"
            "    return DPOConfig(**args, learning_rate=1e-3, not_a_dpo_option=True)\n")
    [(label, line, target, names)] = CallSiteFinder([("example.py", code)]).call_sites()
    assert target == "DPOConfig" and line == 5
    assert names - accepted_keywords(target) == {"beta_typo", "not_a_dpo_option"}

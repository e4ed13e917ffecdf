"""A model cache a learner can trust: the code is in the key, entries are checked on load,
two processes build once, a full disk leaves nothing behind, and ``rlhf-lab cache``.

Every test but one uses small fake builds (seconds in all). The one real test starts two
processes on an empty cache that both ask for the quick pipeline's SFT model: each stage is
built exactly once (~1 min).
"""

import ast
import errno
import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlhf_lab import cache, cli
from rlhf_lab.config import CACHE_ENV

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_root(monkeypatch, tmp_path):
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


def stage(kind, settings, builds, write=None):
    """A fake stage: build_cached with a build that records itself and writes a small model."""
    def build(out):
        builds.append(kind)
        (out / "model.bin").write_bytes(b"w" * 2000)
        (out / "code.txt").write_text(cache.code_fingerprint(kind) if kind in cache.STAGE_CODE else "-")
        if write:
            write(out)
    return cache.build_cached(kind, settings, build)


def fake_pipeline(builds) -> dict:
    """base -> sft -> reward -> ppo, and sft -> dpo, each naming its upstream by key as the stages do."""
    base = stage("base", {"steps": 3}, builds)
    sft = stage("sft", cache.lineage(base=base), builds)
    reward = stage("reward", cache.lineage(sft=sft), builds)
    return {"base": base, "sft": sft, "reward": reward,
            "ppo": stage("ppo", cache.lineage(reward=reward, sft=sft), builds),
            "dpo": stage("dpo", cache.lineage(sft=sft), builds)}


# ---------------------------------------------------------------------------
# 1. The code is in the key
# ---------------------------------------------------------------------------

MODULE = '''"""Stage {kind}: how it trains."""

LEARNING_RATE = 0.1  # a comment


def train(x):
    """Train."""
    return x * LEARNING_RATE
'''


def test_a_code_change_rebuilds_that_stage_and_what_depends_on_it_and_nothing_upstream(
        cache_root, tmp_path, monkeypatch):
    code = {kind: tmp_path / f"{kind}_code.py" for kind in ("base", "sft", "reward", "ppo", "dpo")}
    for kind, path in code.items():
        path.write_text(MODULE.format(kind=kind))
    monkeypatch.setattr(cache, "STAGE_CODE", {kind: (str(path),) for kind, path in code.items()})
    builds = []
    first = fake_pipeline(builds)
    assert sorted(builds) == ["base", "dpo", "ppo", "reward", "sft"]

    def rerun():
        builds.clear()
        dirs = fake_pipeline(builds)
        for kind, path in dirs.items():  # never a model built by other code than the current one
            assert (path / "code.txt").read_text() == cache.code_fingerprint(kind), kind
        return sorted(builds), dirs

    assert rerun() == ([], first)
    # Docstrings, comments and formatting are not code: nothing rebuilds.
    code["sft"].write_text(MODULE.format(kind="sft").replace('"""Train."""', '"""Train, reworded at length."""')
                           .replace("# a comment", "# another comment").replace("x * LEARNING_RATE", "x*LEARNING_RATE"))
    assert rerun()[0] == []
    # PPO's code: only PPO retrains.
    code["ppo"].write_text(MODULE.format(kind="ppo").replace("0.1", "0.2"))
    assert rerun()[0] == ["ppo"]
    # SFT's code: SFT and everything built on it, never the base model.
    code["sft"].write_text(MODULE.format(kind="sft").replace("return x *", "return 2 * x *"))
    rebuilt, dirs = rerun()
    assert rebuilt == ["dpo", "ppo", "reward", "sft"]
    assert dirs["base"] == first["base"] and all(dirs[k] != first[k] for k in ("sft", "reward", "ppo", "dpo"))


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the rlhf_lab sources that the fingerprints are taken from."""
    copy = tmp_path / "rlhf_lab"
    shutil.copytree(cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", copy)
    return copy


def fingerprints() -> dict:
    return {row: cache.code_fingerprint(row) for row in cache.STAGE_CODE}


def edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_the_real_table_follows_the_real_modules(package_copy):
    before = fingerprints()
    assert len(set(before.values())) == len(before)

    def changed():
        return {row for row, f in fingerprints().items() if f != before[row]}

    ppo = package_copy / "stages" / "ppo.py"
    edit(ppo, '"""', '"""Reworded. ')  # the module's docstring
    ppo.write_text("# a new comment\n" + ppo.read_text())
    assert changed() == set()
    ppo.write_text(ppo.read_text() + "\nCHANGED = 1\n")  # code
    assert changed() == {"ppo", "group_rl", "online_dpo"}  # (RLOO, GRPO and online DPO take PPO's budget from it)
    world = package_copy / "world" / "responses.py"
    world.write_text(world.read_text() + "\nCHANGED = 1\n")
    assert changed() == {"ppo", "group_rl", "online_dpo"}  # the world enters keys as data, not as code
    sft = package_copy / "stages" / "sft.py"
    sft.write_text(sft.read_text() + "\nCHANGED = 1\n")
    assert changed() == {"ppo", "group_rl", "online_dpo", "sft"}  # (and every key built on SFT's, through its key)


def test_a_module_moved_with_its_code_unchanged_keeps_every_key(package_copy, monkeypatch):
    before = fingerprints()
    (package_copy / "stages" / "ppo.py").rename(package_copy / "ppo_stage.py")  # a move and a rename
    table = {row: tuple("ppo_stage.py" if m == "stages/ppo.py" else m for m in modules)
             for row, modules in cache.STAGE_CODE.items()}
    monkeypatch.setattr(cache, "STAGE_CODE", table)
    assert fingerprints() == before
    moved = package_copy / "ppo_stage.py"
    moved.write_text(moved.read_text() + "\nCHANGED = 1\n")
    assert {row for row, f in fingerprints().items() if f != before[row]} == {"ppo", "group_rl", "online_dpo"}


# Which rows' code an artifact's key already holds through its upstream keys.
UPSTREAM_ROWS = {"base": (), "sft": ("base",), "reward": ("sft", "base"), "dpo": ("sft", "base"),
                 "ppo": ("sft", "base"),  # (against the gold reward, PPO's only upstream is SFT)
                 "iterated_reward": ("ppo", "reward", "sft", "base"),
                 "group_rl": ("sft", "base"),  # (on the verifiable or gold reward, SFT is its only upstream)
                 "online_dpo": ("sft", "base")}  # (the same)
OWN_MODULE = {"base": "stages/pretrain.py", "sft": "stages/sft.py", "reward": "stages/reward.py",
              "dpo": "stages/dpo.py", "ppo": "stages/ppo.py", "iterated_reward": "stages/iterate.py",
              "group_rl": "stages/group_rl.py", "online_dpo": "stages/online_dpo.py"}


def package_imports(relative: str) -> set[str]:
    """The rlhf_lab modules (as paths inside the package) a module imports, lazily or not."""
    module = "rlhf_lab." + relative[:-3].replace("/", ".")
    package = module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse((cache.PACKAGE / relative).read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.split(".")[0] != "rlhf_lab":
                continue
            for alias in node.names:  # a submodule, or a name whose module defines it
                try:
                    found.add(importlib.import_module(f"{name}.{alias.name}").__name__)
                except ImportError:
                    found.add(getattr(getattr(importlib.import_module(name), alias.name), "__module__", name)
                              or name)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rlhf_lab."))
    paths = set()
    for name in found:
        path = Path(importlib.import_module(name).__file__).relative_to(cache.PACKAGE)
        paths.add(path.as_posix())
    return paths


@pytest.mark.parametrize("row", sorted(cache.STAGE_CODE))
def test_every_module_a_stage_trains_through_is_in_its_key(row):
    covered = set(cache.STAGE_CODE[row]).union(*(cache.STAGE_CODE[r] for r in UPSTREAM_ROWS[row]))
    covered |= set(cache.LEFT_OUT.get(row, ()))
    missing = {m for m in package_imports(OWN_MODULE[row])
               if m not in covered and not m.startswith(cache.NOT_CODE) and m != "__init__.py"}
    assert not missing, (f"{OWN_MODULE[row]} imports {sorted(missing)}: add them to rlhf_lab.cache.STAGE_CODE"
                         f"[{row!r}] (or, if they cannot change what it trains, to NOT_CODE / LEFT_OUT)")
    for module in cache.STAGE_CODE[row]:
        assert (cache.PACKAGE / module).is_file(), module


# ---------------------------------------------------------------------------
# 2. Entries are checked on load; a broken one is rebuilt
# ---------------------------------------------------------------------------


def write_model(out: Path):
    from safetensors.torch import save_file
    import torch

    (out / "adapter").mkdir()
    save_file({"weight": torch.arange(40_000, dtype=torch.float32).reshape(200, 200)},
              str(out / "adapter" / "adapter_model.safetensors"))
    (out / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"a": 0}}}))


def test_a_truncated_safetensors_file_is_caught_named_and_rebuilt(cache_root):
    from safetensors.torch import load_file

    builds = []
    entry = stage("reward", {"a": 1}, builds, write_model)
    weights = entry / "adapter" / "adapter_model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(100)
    with pytest.warns(cache.BrokenEntryWarning, match=r"reward/\w+ is broken: adapter/adapter_model\.safetensors "
                                                     r"is 100 bytes, expected 160\.1 kB\. Rebuilding it"):
        again = stage("reward", {"a": 1}, builds, write_model)
    assert again == entry and builds == ["reward", "reward"]
    assert load_file(str(weights))["weight"].shape == (200, 200)
    assert [p.name for p in entry.parent.iterdir() if p.name.startswith(".")] == []  # nothing left aside


def test_a_missing_tokenizer_file_is_caught_named_and_rebuilt(cache_root):
    builds = []
    entry = stage("sft", {"a": 1}, builds, write_model)
    (entry / "tokenizer.json").unlink()
    with pytest.warns(cache.BrokenEntryWarning, match="tokenizer.json is missing"):
        stage("sft", {"a": 1}, builds, write_model)
    assert builds == ["sft", "sft"] and (entry / "tokenizer.json").exists()


def test_a_file_changed_at_the_same_size_fails_its_checksum(cache_root):
    builds = []
    entry = stage("sft", {"a": 1}, builds)
    (entry / "model.bin").write_bytes(b"x" * 2000)  # same size, new mtime
    with pytest.warns(cache.BrokenEntryWarning, match="model.bin has changed since it was built"):
        stage("sft", {"a": 1}, builds)
    assert builds == ["sft", "sft"] and (entry / "model.bin").read_bytes() == b"w" * 2000


def test_an_entry_without_a_manifest_is_rebuilt(cache_root):
    builds = []
    entry = stage("sft", {"a": 1}, builds)
    (entry / cache.MANIFEST).unlink()  # as every entry written before manifests existed
    with pytest.warns(cache.BrokenEntryWarning, match="manifest.json is missing .*older rlhf_lab"):
        stage("sft", {"a": 1}, builds)
    assert builds == ["sft", "sft"]


def test_a_sound_load_only_stats_and_a_copy_without_times_is_hashed_once(cache_root, monkeypatch, tmp_path):
    builds = []
    entry = stage("reward", {"a": 1}, builds, write_model)
    hashed = []
    real_sha256 = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda path: hashed.append(path) or real_sha256(path))
    assert stage("reward", {"a": 1}, builds, write_model) == entry and hashed == []  # stat calls only
    # A cache copied by a tool that does not keep times: each file is hashed once, then trusted.
    moved = tmp_path / "copied"
    shutil.copytree(cache_root, moved, copy_function=shutil.copyfile)
    monkeypatch.setenv(CACHE_ENV, str(moved))
    files = json.loads((entry / cache.MANIFEST).read_text())["files"]
    stage("reward", {"a": 1}, builds, write_model)
    assert len(hashed) == len(files) == 5  # the model, its tokenizer, settings.json, ...
    stage("reward", {"a": 1}, builds, write_model)
    assert len(hashed) == len(files) and builds == ["reward"]


def test_the_distributed_build_checks_entries_the_same_way(cache_root):
    from rlhf_lab.stages.builder import distributed_build

    class OneProcess:
        is_main_process = True

        def wait_for_everyone(self):
            pass

    trained = []
    settings = cache.entry_settings("sft", {"a": 1})
    target = cache_root / "sft" / cache.settings_key(settings)

    def train(out):
        trained.append(out)
        (out / "model.bin").write_bytes(b"w" * 2000)

    distributed_build(OneProcess(), target, settings, train)
    assert cache.build_cached("sft", {"a": 1}, train) == target and len(trained) == 1  # one key, one check
    with open(target / "model.bin", "r+b") as f:
        f.truncate(10)
    with pytest.warns(cache.BrokenEntryWarning, match="model.bin is 10 bytes"):
        distributed_build(OneProcess(), target, settings, train)
    assert len(trained) == 2 and cache.is_built(target)


# ---------------------------------------------------------------------------
# 3. A full disk leaves nothing behind and says what to free
# ---------------------------------------------------------------------------


def test_a_build_that_runs_out_of_disk_leaves_nothing_and_says_what_to_free(cache_root):
    builds = []
    stage("base", {"a": 1}, builds)  # something already in the cache

    def out_of_disk(out):
        (out / "model.safetensors").write_bytes(b"x" * 5000)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(cache.CacheFullError) as raised:
        cache.build_cached("sft", {"a": 2}, out_of_disk)
    message = str(raised.value)
    assert raised.value.errno == errno.ENOSPC and "No space left on device" in message
    assert "nothing was kept" in message and f"the cache {cache_root} holds" in message
    assert "in 1 entries (base " in message  # how much the cache holds
    assert "rlhf-lab cache --prune" in message and "rlhf-lab cache --clear STAGE" in message
    lock = cache.entry_dir("sft", {"a": 2}).name + ".lock"
    assert [p.name for p in (cache_root / "sft").iterdir()] == [lock]  # no entry, no temporary directory


# ---------------------------------------------------------------------------
# 4. Two processes, one build
# ---------------------------------------------------------------------------

CHILD = textwrap.dedent('''
    import json, os, sys, time
    from pathlib import Path
    from rlhf_lab import cache

    real_build = cache.build_atomically

    def counted(target, settings, build):  # every build, from any process, is logged
        with open(os.environ["BUILD_LOG"], "a") as log:
            log.write(f"{target.parent.name}/{target.name} {os.getpid()}\\n")
        real_build(target, settings, build)

    cache.build_atomically = counted
    barrier = Path(os.environ["BARRIER"])
    (barrier / str(os.getpid())).touch()
    while len(list(barrier.iterdir())) < 2:  # both processes are ready: ask at the same moment
        time.sleep(0.05)
    ''')

FAKE_BUILD = CHILD + textwrap.dedent('''
    def build(out):
        time.sleep(1.5)
        (out / "model.bin").write_bytes(b"w" * 2000)

    print(json.dumps({"thing": str(cache.build_cached("thing", {"a": 1}, build))}))
    ''')

QUICK_SFT = CHILD + textwrap.dedent('''
    from rlhf_lab.config import get_profile
    from rlhf_lab.pipeline import quick_settings
    from rlhf_lab.stages.pretrain import get_base_model_dir
    from rlhf_lab.stages.sft import get_sft_model_dir

    profile, settings = quick_settings(get_profile("tiny"))
    sft = get_sft_model_dir(profile, settings.sft, progress=False)
    print(json.dumps({"base": str(get_base_model_dir(profile, progress=False)), "sft": str(sft)}))
    ''')


def two_processes(script: str, tmp_path: Path, timeout: int) -> tuple[list[dict], list[str], str]:
    """Run ``script`` in two processes at once on an empty cache: (their outputs, the build log, stderr)."""
    (tmp_path / "barrier").mkdir()
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache"), "BUILD_LOG": str(tmp_path / "builds.log"),
           "BARRIER": str(tmp_path / "barrier"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [child.communicate(timeout=timeout) for child in children]
    for child, (out, err) in zip(children, results):
        assert child.returncode == 0, out[-2000:] + err[-4000:]
    log = (tmp_path / "builds.log").read_text().split() if (tmp_path / "builds.log").exists() else []
    return ([json.loads(out.strip().splitlines()[-1]) for out, _ in results], log[::2],
            "".join(err for _, err in results))


def test_two_processes_asking_for_one_missing_entry_build_it_once(tmp_path):
    outputs, built, stderr = two_processes(FAKE_BUILD, tmp_path, timeout=120)
    assert outputs[0] == outputs[1] and len(built) == 1
    assert "Another process is building thing/" in stderr and "waiting for it to finish" in stderr


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_two_notebooks_on_the_quick_pipeline_build_each_stage_once(tmp_path):
    outputs, built, stderr = two_processes(QUICK_SFT, tmp_path, timeout=900)
    assert outputs[0] == outputs[1]
    assert sorted(key.split("/")[0] for key in built) == ["base", "sft"], built  # each exactly once
    assert "waiting for it to finish" in stderr  # the second one waited, then loaded the first one's
    for path in outputs[0].values():
        assert cache.is_built(Path(path)), path


# ---------------------------------------------------------------------------
# 5. rlhf-lab cache: list, --prune, --clear; labels are never touched
# ---------------------------------------------------------------------------


@pytest.fixture
def mixed_cache(cache_root, monkeypatch):
    """A reached pipeline, a stale SFT model (older code) with a reward model on it, a broken
    entry, a model from another world, an unfinished build, and things that are not entries."""
    builds = []
    reached = fake_pipeline(builds)
    with monkeypatch.context() as old_code:
        old_code.setattr(cache, "code_fingerprint", lambda row: "0ld0c0de0000")
        stale_sft = stage("sft", {"old": True, **cache.lineage(base=reached["base"])}, builds)
    stale_reward = stage("reward", cache.lineage(sft=stale_sft), builds)
    broken = stage("dpo", {"broken": True, **cache.lineage(sft=reached["sft"])}, builds)
    (broken / "model.bin").unlink()
    other_world = stage("sft", {"world": "0000aaaa0000", "seed": 0}, builds)
    unfinished = cache_root / "ppo" / ".0123456789ab-x1y2z3"
    unfinished.mkdir()
    (unfinished / "model.safetensors").write_bytes(b"half" * 100)
    labels = cache_root / "labels" / "my_labels.jsonl"  # a learner who keeps labels in the cache folder
    labels.parent.mkdir()
    labels.write_text('{"pair_id": "p1", "choice": "a"}\n')
    notebook_model = cache_root / "tiny_real" / "qwen2" / "config.json"  # notebook 08's, not an entry
    notebook_model.parent.mkdir(parents=True)
    notebook_model.write_text("{}")
    return {"reached": reached, "stale_sft": stale_sft, "stale_reward": stale_reward, "broken": broken,
            "other_world": other_world, "unfinished": unfinished, "kept": [labels, notebook_model]}


def run_cache_command(capsys, *args) -> tuple[int, str]:
    code = cli.main(["cache", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def row_of(text: str, path: Path) -> str:
    [line] = [line for line in text.splitlines() if path.name in line and line.startswith(path.parent.name)]
    return line


def test_the_listing_shows_stage_key_size_age_and_what_reaches_it(mixed_cache, capsys):
    code, text = run_cache_command(capsys)
    assert code == 0 and "stage" in text and "reached" in text
    for path in mixed_cache["reached"].values():
        assert row_of(text, path).endswith("yes") and "kB" in row_of(text, path)
    assert "no: built by other code (its stage's code changed since)" in row_of(text, mixed_cache["stale_sft"])
    stale_sft = mixed_cache["stale_sft"].name
    assert f"no: its sft model sft/{stale_sft} is unreached" in row_of(text, mixed_cache["stale_reward"])
    assert "no: broken: model.bin is missing" in row_of(text, mixed_cache["broken"])
    assert "no: built from another lab world" in row_of(text, mixed_cache["other_world"])
    assert "1 unfinished build(s)" in text and "--prune` deletes the 4 unreached entries" in text
    assert "tiny_real" not in text and "labels" not in text.split("Labels are never")[0]


def test_prune_deletes_what_nothing_reaches_and_never_labels(mixed_cache, capsys):
    code, text = run_cache_command(capsys, "--prune")
    assert code == 0 and "Pruned" in text
    for name in ("stale_sft", "stale_reward", "broken", "other_world", "unfinished"):
        assert not mixed_cache[name].exists(), name
    for path in mixed_cache["reached"].values():
        assert cache.is_built(path)
    for path in mixed_cache["kept"]:
        assert path.exists()
    assert run_cache_command(capsys, "--prune")[1].startswith("Nothing to prune")


def test_clear_deletes_one_stage_and_says_what_is_left_unreached(mixed_cache, capsys):
    code, text = run_cache_command(capsys, "--clear", "sft")
    assert code == 0 and "Cleared sft" in text and "rlhf-lab cache --prune" in text
    assert not any(mixed_cache[name].exists() for name in ("stale_sft", "other_world"))
    assert not mixed_cache["reached"]["sft"].exists() and cache.is_built(mixed_cache["reached"]["base"])
    assert mixed_cache["reached"]["reward"].exists()  # not deleted, only unreached now
    for path in mixed_cache["kept"]:
        assert path.exists()
    code, text = run_cache_command(capsys, "--clear", "labels")
    assert code == 2 and "holds no 'labels' entries" in text and mixed_cache["kept"][0].exists()

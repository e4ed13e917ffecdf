"""The artifact cache: every model a stage trains, built once, written atomically, checked
on load, movable.

An artifact lives in ``cache_dir()/<kind>/<hash of the settings that made it>``, a
directory in save_pretrained format with the settings beside it (``settings.json``) and a
manifest of its files (``manifest.json``).

- ``build_cached(kind, settings, build)``: the artifact's directory, built first if missing
  (or broken).
- ``artifact_key(path)``: an artifact's cache-relative name, e.g. ``"sft/3f2a9c0d1e2b"``.
  Later stages put their upstream artifacts' keys (never absolute paths) into their own
  settings, so the whole cache folder can be moved or copied to another machine, pointed
  at with $RLHF_LAB_CACHE, and nothing retrains.
- ``artifact_path(key)``: the key resolved against the current cache directory.
- ``lineage(sft=sft_dir)``: the settings entry that names upstream artifacts by key;
  ``record_lineage(out_dir, sft_dir)`` / ``built_from(artifact_dir)``: which SFT model an
  artifact was trained from, so a reward model or policy is always paired with its own.
- ``world_fingerprint(seed)``: a hash of the lab world, part of every stage's key.
- ``rlhf-lab cache`` (:mod:`rlhf_lab.cache_tools`): what the cache holds, ``--prune``, ``--clear``.

**The code is in the key.** A key hashes a stage's settings, its upstream keys, the world's
fingerprint and ``code_fingerprint(kind)``: a hash of the package modules that build that
kind of artifact (``STAGE_CODE``). Change how PPO updates, and every PPO policy is retrained
on its next use, while the base, SFT and reward models stay. Because upstream keys enter
downstream keys, a change to SFT's code retrains the reward models and policies built on it
too. Why fingerprint the code and not an explicit version per stage that a test makes you
bump: a version is only as good as the memory of whoever edits the code, and a forgotten
bump serves stale models silently, which is the failure this guards against; a fingerprint
cannot be forgotten. Its costs, accepted:

- a module is fingerprinted whole, so a change to any of its functions retrains every kind
  that lists it, even a change that could not matter (a rebuild costs minutes; a stale
  model costs a wrong lesson that nobody notices);
- the table can miss a module a stage starts to train through:
  ``tests/test_cache_trust.py`` fails when a stage module imports a package module that is
  neither in its row, nor an upstream stage's, nor in ``NOT_CODE``.

The hash is taken of the module's syntax tree written back as source (``ast.unparse``) with
every docstring and bare string statement removed: comments, docstrings, blank lines and
formatting change nothing; a changed line of code retrains. Paths do not enter it: a module
moved or renamed with its code unchanged keeps every key. The lab world
(``rlhf_lab/world``) is not in the table: what the stages learn from it enters every key
as data (``world_fingerprint``, the base model's corpus hash), and its code may change
without changing that data (a faster generator, a reworded docstring) without costing the
4-minute base model.

**Entries are checked on every load.** At build time ``manifest.json`` records every file's
size and sha256, and ``verified.json`` (the stamp) each file's size and modification time
as it was when its checksum was last confirmed. A load stats every file: a missing file or
a changed size (a truncated safetensors file) is caught at once, and a file whose size and
time still match the stamp is trusted without reading it, so a multi-GB model costs a few
stat calls, not a re-hash. A file whose time changed (rewritten, or copied by a tool that
does not keep times) is hashed once; if it matches, the stamp is renewed and later loads are
stat-only again. (Hashing only the first and last MiB was the other option: it still reads
on every load and misses damage in the middle.) What stat cannot see, a file rewritten with
the same size and time, is not caught. A broken entry is moved aside and rebuilt, with a
``BrokenEntryWarning`` naming the file and what was wrong. Entries written before manifests
existed count as broken; their keys changed anyway when the code entered them.

**Two processes, one build.** A file lock per entry: two notebooks asking for the same
missing model build it once; the second one says it is waiting and then loads the result. A
failed build leaves nothing behind; one that fails for lack of disk space raises
``CacheFullError``, saying what the cache holds and how to free it.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from .cache_layout import MANIFEST, cache_summary, human_size
from .config import cache_dir, shown_path
from .world import World

PACKAGE = Path(__file__).resolve().parent
STAMP = "verified.json"  # every file's size and mtime when its checksum was last confirmed

# The package modules whose code decides what each kind of artifact holds (its weights and
# its report), beyond what its upstream artifacts' keys already cover: SFT's row need not
# repeat the base model's, a reward model's need not repeat SFT's.
STAGE_CODE = {
    "base": ("stages/pretrain.py",),  # tokenizer, model config, pretraining loop
    "sft": ("stages/sft.py", "stages/common.py", "models.py", "chat.py", "sampling.py",
            "lean_lora.py"),  # TRL SFT, LoRA, merging; sampling (and its lean LoRA layers) for every later stage
    "reward": ("stages/reward.py", "stages/comparisons.py", "preferences.py", "losses.py", "sampling.py",
               "real_data.py", "real_formats.py", "scoring.py", "reward_checks.py", "label/data.py", "label/store.py"),
    # (pairs and the learner's labels, Bradley-Terry)
    "dpo": ("stages/dpo.py", "stages/comparisons.py", "preferences.py", "sampling.py", "real_data.py",
            "real_formats.py"),
    # PPO against the gold reward has only SFT upstream, so its row names all it trains through.
    "ppo": ("stages/ppo.py", "ppo.py", "losses.py", "sampling.py", "shared_base.py", "stages/reward.py",
            "scoring.py", "evaluate.py"),  # (evaluate: the behaviours and closer rate logged per rollout)
    # RLOO and GRPO train through TRL; the reward is the reward model's (or the world's).
    "group_rl": ("stages/group_rl.py", "stages/common.py", "stages/ppo.py", "ppo.py", "stages/reward.py",
                 "scoring.py", "models.py"),
    # Online DPO trains through TRL with RLOO's and GRPO's reward function (issue 36's experiments).
    "online_dpo": ("stages/online_dpo.py", "stages/group_rl.py", "stages/common.py", "stages/ppo.py", "ppo.py",
                   "stages/reward.py", "scoring.py", "models.py"),
}
# Iterated RLHF's second reward model (stages/iterate.py): a reward model trained on pairs of
# a policy's samples (the policy's own code enters through its key).
STAGE_CODE["iterated_reward"] = STAGE_CODE["reward"] + ("stages/iterate.py",)

# Package modules a stage may import that are not its code: the world enters keys as data
# (world_fingerprint), the profile's values as settings, and the cache is the cache.
NOT_CODE = ("world/", "config.py", "cache.py", "stages/builder.py")  # (the builder decides where, not what)
# The base model's pretraining calls only models.quiet_libraries() (log levels): models.py,
# SFT's code, would otherwise cost a 4-minute base model whenever model loading changes.
LEFT_OUT = {"base": ("models.py",)}


class BrokenEntryWarning(UserWarning):
    """A cache entry failed its check on load (a file missing, truncated or changed): it is rebuilt."""


class CacheFullError(OSError):
    """The disk ran out of space during a build: nothing was kept, the message says what to free."""


def settings_key(settings: dict) -> str:
    """A short stable hash of the settings that produce an artifact."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------
# The code in the key
# ---------------------------------------------------------------------------


class _DropDocstrings(ast.NodeTransformer):
    """Remove bare string statements (docstrings and the like): they do nothing."""

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None
        return node

    def generic_visit(self, node):
        super().generic_visit(node)
        if hasattr(node, "body") and isinstance(node.body, list) and not node.body:
            node.body = [ast.Pass()]  # a function that was only a docstring
        return node


@functools.lru_cache(maxsize=None)
def _module_hash(path: str, mtime_ns: int, size: int) -> str:
    tree = _DropDocstrings().visit(ast.parse(Path(path).read_text(), filename=path))
    return hashlib.sha256(ast.unparse(tree).encode()).hexdigest()


def module_fingerprint(path) -> str:
    """A hash of a module's code, blind to its comments, docstrings and formatting."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is in rlhf_lab.cache.STAGE_CODE but does not exist: "
                                "update the table to the module's new name.") from None
    return _module_hash(str(path), stat.st_mtime_ns, stat.st_size)


def code_fingerprint(row: str) -> str:
    """A hash of the code that builds ``row``'s artifacts (a key of ``STAGE_CODE``). It follows
    the code, not where it lives: the modules' hashes are combined without their paths, so
    moving or renaming a module whose code is unchanged (and updating its row) retrains nothing."""
    digest = hashlib.sha256()
    for fingerprint in sorted({module_fingerprint(PACKAGE / module) for module in STAGE_CODE[row]}):
        digest.update(f"{fingerprint};".encode())
    return digest.hexdigest()[:12]


def entry_settings(kind: str, settings: dict, code: str | None = None) -> dict:
    """The settings an entry is keyed by: ``settings`` plus the fingerprint of the code that
    builds it (row ``code`` of ``STAGE_CODE``, default ``kind``; kinds without a row, none)."""
    row = code or kind
    if row not in STAGE_CODE:
        return settings
    return {**settings, "code": code_fingerprint(row), "code_of": row}


def entry_dir(kind: str, settings: dict, code: str | None = None) -> Path:
    """Where the entry for ``settings`` lives in the cache (built or not)."""
    return cache_dir() / kind / settings_key(entry_settings(kind, settings, code))


# ---------------------------------------------------------------------------
# Building: once, atomically, under a lock
# ---------------------------------------------------------------------------


def build_cached(kind: str, settings: dict, build, code: str | None = None) -> Path:
    """Return cache_dir()/kind/<key>, calling ``build(tmp_dir)`` first if it is missing or broken.

    The build writes into a temporary directory that is renamed into place at the end,
    so a crash never leaves a half-written model behind; a file lock stops two processes
    (say, two notebooks) from building the same thing at once. ``code``: the row of
    ``STAGE_CODE`` whose fingerprint enters the key (default: ``kind``).
    """
    settings = entry_settings(kind, settings, code)
    return build_at(cache_dir() / kind / settings_key(settings), settings, build)


def build_at(target: Path, settings: dict, build, force: bool = False) -> Path:
    """Build the entry at ``target`` with ``build(tmp_dir)`` unless it is built, under the entry's lock,
    atomically. ``force``: build it whatever is there (a launch whose processes all train together,
    or an empty ``--out`` folder); what was there is discarded."""
    if not force and is_built(target):
        return target
    if _only_built:
        raise NotBuilt(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(target, f"building {target.parent.name}/{target.name}"):
        if force or not is_built(target, warn=False):  # not built by another process meanwhile
            discard(target)  # a broken entry (or, forced, whatever was there)
            build_atomically(target, settings, build)
    return target


class NotBuilt(LookupError):
    """Inside :func:`only_built`: an entry that would have to be built."""


_only_built = False


@contextlib.contextmanager
def only_built():
    """Inside the block nothing is built: asking for a missing entry raises :class:`NotBuilt`.
    (How ``side_by_side`` tells what is already cached from what its workers must build.)"""
    global _only_built
    before, _only_built = _only_built, True
    try:
        yield
    finally:
        _only_built = before


@contextlib.contextmanager
def entry_lock(target: Path, doing: str):
    """Hold the lock of the entry at ``target``; say so when another process holds it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(target) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"Another process is {doing} (lock {shown_path(lock.lock_file)}); waiting for it to finish.",
              file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def build_atomically(target: Path, settings: dict, build) -> None:
    """Build into a temporary sibling of ``target``, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        (tmp / "settings.json").write_text(json.dumps(settings, indent=2, sort_keys=True, default=str))
        write_manifest(tmp)
        os.replace(tmp, target)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CacheFullError(error.errno, disk_full_message(target, error)) from error
        raise


def disk_full_message(target: Path, error: OSError) -> str:
    free = human_size(shutil.disk_usage(target.parent).free)
    return (f"The disk ran out of space while building {target.parent.name}/{target.name} ({error.strerror or error}); "
            f"nothing was kept. {free} is free there; the cache {cache_dir()} holds "
            f"{cache_summary()}. Free space with `rlhf-lab cache` (lists the entries), `rlhf-lab cache --prune` "
            "(deletes those no current setting can reach) or `rlhf-lab cache --clear STAGE`, or point "
            "$RLHF_LAB_CACHE at a disk with more room. Your labels are never in the cache.")


def discard(target: Path) -> None:
    """Delete an entry: renamed aside first, so an interrupted delete leaves no half-entry."""
    if not target.exists():
        return
    aside = target.with_name(f".{target.name}-discarded-{os.getpid()}-{time.time_ns()}")
    os.replace(target, aside)
    shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------------------
# Checking: a manifest at build time, stat on load, a hash only when a file's time changed
# ---------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_files(directory: Path) -> list[str]:
    """Every file of an entry, relative, except the manifest and the stamp (and its temporary)."""
    files = []
    for path in directory.rglob("*"):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel != MANIFEST and not rel.startswith((STAMP, f".{STAMP}")):
            files.append(rel)
    return sorted(files)


def write_manifest(directory: Path) -> None:
    """Record every file's size and checksum (and stamp them as just verified)."""
    files = {rel: {"size": (directory / rel).stat().st_size, "sha256": file_sha256(directory / rel)}
             for rel in entry_files(directory)}
    (directory / MANIFEST).write_text(json.dumps({"built": time.time(), "files": files}, indent=1))
    write_stamp(directory, files)


def write_stamp(directory: Path, files: dict) -> None:
    """Note each file's size and mtime as verified; best effort (a read-only cache is fine)."""
    stamp = {}
    for rel in files:
        stat = (directory / rel).stat()
        stamp[rel] = [stat.st_size, stat.st_mtime_ns]
    try:
        tmp = directory / f".{STAMP}.{os.getpid()}"
        tmp.write_text(json.dumps(stamp))
        os.replace(tmp, directory / STAMP)
    except OSError:
        pass  # then the next load hashes again


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def size_mismatch(actual: int, expected: int) -> str:
    shown = human_size(actual), human_size(expected)
    if shown[0] == shown[1]:
        shown = f"{actual:,} bytes", f"{expected:,} bytes"
    return f"is {shown[0]}, expected {shown[1]}"


def entry_problem(target: Path) -> str | None:
    """What is wrong with the entry at ``target``, or None when it is sound and may be loaded.

    Every file of the manifest must exist with its size; a file whose size and mtime differ
    from the stamp is hashed and must match its checksum (see the module docstring)."""
    if not target.is_dir():
        return "it is not built"
    manifest = read_json(target / MANIFEST)
    if manifest is None:
        return (f"{MANIFEST} is missing or unreadable (written by an older rlhf_lab, or damaged), "
                "so its files cannot be checked")
    files = manifest.get("files", {})
    stamp = read_json(target / STAMP) or {}
    unconfirmed = []
    for rel, expected in files.items():
        try:
            stat = (target / rel).stat()
        except OSError:
            return f"{rel} is missing"
        if stat.st_size != expected["size"]:
            return f"{rel} {size_mismatch(stat.st_size, expected['size'])}"
        if stamp.get(rel) != [stat.st_size, stat.st_mtime_ns]:
            unconfirmed.append(rel)
    for rel in unconfirmed:
        if file_sha256(target / rel) != files[rel]["sha256"]:
            return f"{rel} has changed since it was built (its checksum differs)"
    if unconfirmed:
        write_stamp(target, files)
    return None


def is_built(target: Path, warn: bool = True) -> bool:
    """Is there a sound entry at ``target``? The check before every load (build_cached's and
    the distributed one's): a broken entry counts as missing, with a BrokenEntryWarning."""
    if not target.is_dir():
        return False
    problem = entry_problem(target)
    if problem is not None and warn:
        warnings.warn(f"The cache entry {target.parent.name}/{target.name} is broken: {problem}. Rebuilding it "
                      f"(in {target.parent}).", BrokenEntryWarning, stacklevel=3)
    return problem is None


def artifact_key(path) -> str:
    """The name under which a stage records an upstream artifact in its own settings.

    Inside the cache: the cache-relative path (``"base/1c9e0a..."``), which survives moving
    the cache. Elsewhere: the absolute path of a local directory, or a hub id as given.
    """
    path = Path(path)
    if not path.exists() and not path.is_absolute():
        return str(path)  # a hub id, e.g. "Qwen/Qwen2.5-0.5B-Instruct"
    path = path.resolve()  # (an entry not built yet has the key it will have once built)
    try:
        return path.relative_to(cache_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def artifact_path(key: str) -> Path:
    """The directory of an artifact key (see ``artifact_key``) in the current cache."""
    return Path(key) if Path(key).is_absolute() else cache_dir() / key


def lineage(**upstream_dirs) -> dict:
    """The settings entry naming the artifacts an artifact is trained from, by key:
    ``lineage(sft=sft_dir)`` gives ``{"upstream": {"sft": "sft/3f2a9c0d1e2b"}}``."""
    return {"upstream": {stage: artifact_key(path) for stage, path in upstream_dirs.items()}}


def built_from(artifact_dir, upstream: str = "sft") -> Path:
    """The directory of the earlier stage an artifact was trained from (its settings.json
    records the key), so a reward model or policy is always paired with its own SFT model."""
    settings_file = Path(artifact_dir) / "settings.json"
    recorded = json.loads(settings_file.read_text()).get("upstream", {})
    if upstream not in recorded:
        raise KeyError(f"{settings_file} does not record the {upstream!r} artifact it was trained from "
                       "(written by an older version of rlhf_lab?). Delete that directory and it is rebuilt.")
    return artifact_path(recorded[upstream])


def record_lineage(out_dir, sft_dir) -> None:
    """Note which SFT model an artifact was trained from (the cache adds its full settings)."""
    path = Path(out_dir) / "settings.json"
    if not path.exists():
        path.write_text(json.dumps(lineage(sft=sft_dir)))


@functools.lru_cache(maxsize=None)
def world_for(seed: int):
    """The lab world of a seed, built once per process (it is deterministic; do not mutate it)."""
    return World(seed)


@functools.lru_cache(maxsize=None)
def world_fingerprint(seed: int) -> str:
    """``World(seed).fingerprint()``, computed once per process."""
    return world_for(seed).fingerprint()

"""The artifact cache: every model a stage trains, built once, written atomically, movable.

An artifact lives in ``cache_dir()/<kind>/<hash of the settings that made it>``, a
directory in save_pretrained format with the settings beside it (``settings.json``).

- ``build_cached(kind, settings, build)``: the artifact's directory, built first if missing.
- ``artifact_key(path)``: an artifact's cache-relative name, e.g. ``"sft/3f2a9c0d1e2b"``.
  Later stages put their upstream artifacts' keys (never absolute paths) into their own
  settings, so the whole cache folder can be moved or copied to another machine, pointed
  at with $RLHF_LAB_CACHE, and nothing retrains.
- ``artifact_path(key)``: the key resolved against the current cache directory.
- ``lineage(sft=sft_dir)``: the settings entry that names upstream artifacts by key;
  ``record_lineage(out_dir, sft_dir)`` / ``built_from(artifact_dir)``: which SFT model an
  artifact was trained from, so a reward model or policy is always paired with its own.
- ``world_fingerprint(seed)``: a hash of the lab world, part of every stage's key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .config import cache_dir


def settings_key(settings: dict) -> str:
    """A short stable hash of the settings that produce an artifact."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def build_cached(kind: str, settings: dict, build) -> Path:
    """Return cache_dir()/kind/<key>, calling ``build(tmp_dir)`` first if it is missing.

    The build writes into a temporary directory that is renamed into place at the end,
    so a crash never leaves a half-written model behind; a file lock stops two processes
    (say, two notebooks) from building the same thing at once.
    """
    from filelock import FileLock

    target = cache_dir() / kind / settings_key(settings)
    if (target / "settings.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "settings.json").exists():  # not built by another process meanwhile
            build_atomically(target, settings, build)
    return target


def build_atomically(target: Path, settings: dict, build) -> None:
    """Build into a temporary sibling of ``target``, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        (tmp / "settings.json").write_text(json.dumps(settings, indent=2, sort_keys=True, default=str))
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def artifact_key(path) -> str:
    """The name under which a stage records an upstream artifact in its own settings.

    Inside the cache: the cache-relative path (``"base/1c9e0a..."``), which survives moving
    the cache. Elsewhere: the absolute path of a local directory, or a hub id as given.
    """
    path = Path(path)
    if not path.exists():
        return str(path)  # a hub id, e.g. "Qwen/Qwen2.5-0.5B-Instruct"
    path = path.resolve()
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
    from .world import World

    return World(seed)


@functools.lru_cache(maxsize=None)
def world_fingerprint(seed: int) -> str:
    """``World(seed).fingerprint()``, computed once per process."""
    return world_for(seed).fingerprint()

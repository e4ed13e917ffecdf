"""``rlhf-lab cache``: what the model cache holds, and deleting what nothing can use.

Each entry is listed with its stage, key, size, age and whether it is **reached**: whether
a call with some settings could still be answered with it. An entry is reached when it is
sound (its files pass the load check), was built by the current code of its stage (the
fingerprint in its key, see :mod:`rlhf_lab.cache`), from the current lab world, and every
artifact it was trained from is reached too. Entries built by older code or from an older
world can never be asked for again: their keys are not any current setting's key.

Why not "reached by the default settings": the notebooks train models with settings of
their own (sweeps, your labels, iterated RLHF), and deleting those would only make them
train again. Entries built with settings nobody uses any more are kept; ``--clear STAGE``
deletes a whole stage when you want the room.

Only entry directories (``<stage>/<12 hex digits>`` holding ``settings.json`` or
``manifest.json``) and unfinished builds (``<stage>/.<key>-...``) are ever deleted: anything
else in the cache folder (your labels, if you keep them there; notebook 08's model) is left
alone.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import cache, cache_layout
from .config import ConfigError, cache_dir

UPSTREAM_KEY = re.compile(r"[A-Za-z0-9_-]+/[0-9a-f]{12}")


@dataclass
class Entry:
    stage: str
    key: str
    path: Path
    size: int
    built: float  # seconds since the epoch
    settings: dict

    @property
    def name(self) -> str:
        return f"{self.stage}/{self.key}"


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry of the cache, by stage and age."""
    root = root or cache_dir()
    found = []
    for stage in cache_layout.stage_dirs(root):
        for path in filter(cache_layout.is_entry, sorted(stage.iterdir())):
            manifest = cache.read_json(path / cache.MANIFEST) or {}
            built = manifest.get("built") or os.stat(path).st_mtime
            found.append(Entry(stage.name, path.name, path, cache_layout.folder_size(path), built,
                               cache.read_json(path / "settings.json") or {}))
    return sorted(found, key=lambda e: (e.stage, e.built))


def unfinished_builds(root: Path | None = None) -> list[Path]:
    """Temporary directories of builds that were killed (nobody holds their entry's lock)."""
    from filelock import FileLock, Timeout

    root = root or cache_dir()
    left = []
    for stage in cache_layout.stage_dirs(root):
        for path in sorted(stage.glob(".*-*")):
            key = path.name[1:].split("-")[0]
            if not path.is_dir() or path.is_symlink() or not cache_layout.KEY.fullmatch(key):
                continue
            try:
                with FileLock(str(stage / key) + ".lock", timeout=0):
                    left.append(path)
            except Timeout:
                pass  # a build in progress
    return left


class Reachability:
    """Why no current setting can reach an entry (``why(entry)``: None when one can)."""

    def __init__(self, found: list[Entry]):
        self.by_name = {e.name: e for e in found}
        self.seeds = {e.settings["seed"] for e in found if isinstance(e.settings.get("seed"), int)}
        self.memo: dict[str, str | None] = {}

    def why(self, entry: Entry) -> str | None:
        if entry.name not in self.memo:
            self.memo[entry.name] = "(checking)"  # a cycle cannot happen, but must not hang
            self.memo[entry.name] = self._why(entry)
        return self.memo[entry.name]

    def _why(self, entry: Entry) -> str | None:
        problem = cache.entry_problem(entry.path)
        if problem is not None:
            return f"broken: {problem}"
        settings = entry.settings
        if "code" in settings:
            row = settings.get("code_of", entry.stage)
            if row not in cache.STAGE_CODE or settings["code"] != cache.code_fingerprint(row):
                return "built by other code (its stage's code changed since)"
        elif entry.stage in cache.STAGE_CODE:
            return "built by an older rlhf_lab (no code fingerprint)"
        if "world" in settings and self.seeds and settings["world"] not in self.worlds():
            return "built from another lab world"
        if "corpus" in settings and isinstance(settings.get("seed"), int):
            from .stages.pretrain import corpus_fingerprint

            if settings["corpus"] != corpus_fingerprint(settings["seed"], settings.get("documents", 24_000)):
                return "pretrained on another corpus (the lab world changed)"
        for stage, key in settings.get("upstream", {}).items():
            if not UPSTREAM_KEY.fullmatch(str(key)):
                continue  # a hub id or a directory outside the cache: not ours to judge
            upstream = self.by_name.get(key)
            if upstream is None:
                return f"its {stage} model {key} is gone"
            if self.why(upstream) is not None:
                return f"its {stage} model {key} is unreached"
        return None

    def worlds(self) -> set[str]:
        """The current world's fingerprint for every seed the cache was built with (a PPO seed
        may differ from its world's seed, so an entry's own seed is not enough)."""
        return {cache.world_fingerprint(seed) for seed in self.seeds}


def human_age(seconds: float) -> str:
    for limit, unit, size in ((90, "s", 1), (90 * 60, "min", 60), (36 * 3600, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds / 86400:.0f} d"


def listing(root: Path | None = None) -> str:
    """The table ``rlhf-lab cache`` prints."""
    root = root or cache_dir()
    found = entries(root)
    reach = Reachability(found)
    unreached = [e for e in found if reach.why(e)]
    now = time.time()
    lines = [f"Cache {root}: {cache_layout.cache_summary(root)}."]
    if found:
        width = max(len(e.stage) for e in found)
        lines.append(f"{'stage':<{width}}  {'key':<12}  {'size':>9}  {'age':>6}  reached")
        for e in found:
            why = reach.why(e)
            lines.append(f"{e.stage:<{width}}  {e.key}  {cache_layout.human_size(e.size):>9}  {human_age(now - e.built):>6}  "
                         + (f"no: {why}" if why else "yes"))
    left = unfinished_builds(root)
    if left:
        lines.append(f"{len(left)} unfinished build(s) (killed mid-way), "
                     f"{cache_layout.human_size(sum(map(cache_layout.folder_size, left)))}.")
    if unreached or left:
        what = [f"the {len(unreached)} unreached entries"] * bool(unreached) + ["the unfinished builds"] * bool(left)
        freed = sum(e.size for e in unreached) + sum(map(cache_layout.folder_size, left))
        lines.append(f"`rlhf-lab cache --prune` deletes {' and '.join(what)} ({cache_layout.human_size(freed)}).")
    if found:
        lines.append("`rlhf-lab cache --clear STAGE` deletes every entry of one stage. Labels are never touched.")
    return "\n".join(lines)


def remove(paths: list[Path], what: str) -> tuple[list[str], int]:
    """Delete entries (each under its lock; one being built is left). Returns (messages, bytes freed)."""
    from filelock import FileLock, Timeout

    messages, freed = [], 0
    for path in paths:
        size = cache_layout.folder_size(path)
        try:
            with FileLock(str(path) + ".lock", timeout=0):
                cache.discard(path)
        except Timeout:
            messages.append(f"  left {path.parent.name}/{path.name}: another process is building it")
            continue
        freed += size
        messages.append(f"  deleted {path.parent.name}/{path.name} ({cache_layout.human_size(size)}, {what})")
    return messages, freed


def prune(root: Path | None = None) -> str:
    """Delete every unreached entry and every unfinished build."""
    root = root or cache_dir()
    found = entries(root)
    reach = Reachability(found)
    unreached = [e for e in found if reach.why(e)]
    messages, freed = remove([e.path for e in unreached], "unreached")
    for path in unfinished_builds(root):
        size = cache_layout.folder_size(path)
        shutil.rmtree(path, ignore_errors=True)
        freed += size
        messages.append(f"  deleted {path.parent.name}/{path.name} ({cache_layout.human_size(size)}, an unfinished build)")
    if not messages:
        return f"Nothing to prune: every entry of {root} is reached."
    return "\n".join([f"Pruned {root}: freed {cache_layout.human_size(freed)}.", *messages])


def clear(stage: str, root: Path | None = None) -> str:
    """Delete every entry of ``stage``; say how many entries left are unreached now."""
    root = root or cache_dir()
    found = entries(root)
    stages = sorted({e.stage for e in found})
    if stage not in stages:
        raise ConfigError(f"The cache {root} holds no {stage!r} entries: use one of {', '.join(stages) or '(none)'}.")
    messages, freed = remove([e.path for e in found if e.stage == stage], f"cleared {stage}")
    left = entries(root)
    reach = Reachability(left)
    lines = [f"Cleared {stage} in {root}: freed {cache_layout.human_size(freed)}.", *messages]
    unreached = [e for e in left if reach.why(e)]
    if unreached:
        lines.append(f"{len(unreached)} entries left are unreached (e.g. trained from what was cleared): "
                     "`rlhf-lab cache --prune` deletes them.")
    return "\n".join(lines)

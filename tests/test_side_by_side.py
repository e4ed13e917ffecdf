"""Independent runs built side by side (rlhf_lab.side_by_side): one-thread processes that build
through the cache, a prerequisite two jobs share built once, nothing started when all is cached,
a failure raised here. The jobs write tiny cache entries instead of training (seconds, not minutes)."""

import os
from functools import partial
from pathlib import Path

import pytest

from rlhf_lab import cache, side_by_side


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_LAB_CACHE", str(tmp_path / "cache"))


def shared_prerequisite(log: str, progress: bool = True) -> Path:
    """An entry two jobs need (a reward model two PPO runs share): its builds are logged."""
    def build(out: Path):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        (out / "done").write_text("yes")
    return cache.build_cached("side_by_side_test", {"what": "shared"}, build)


def meet_another_builder(folder: Path, timeout: float = 120.0) -> None:
    """Wait until a second process has started a job: proof that the jobs run side by side (a fast
    first builder would otherwise take every job before the second one has started)."""
    import time

    folder.mkdir(exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while len(list(folder.iterdir())) < 2:
        assert time.monotonic() < deadline, "no second builder started a job"
        time.sleep(0.05)


def run(name: str, log: str, fail: bool = False, meet: bool = True, progress: bool = True) -> Path:
    """A job: its prerequisite, then its own entry, which records the process and its torch threads.
    ``meet``: first wait for a second builder (jobs meant to run side by side)."""
    import torch

    shared_prerequisite(log)
    if fail:
        raise RuntimeError(f"run {name} failed on purpose")

    def build(out: Path):
        if meet:
            meet_another_builder(Path(log).parent / "builders")
        (out / "built_by").write_text(f"{os.getpid()} {torch.get_num_threads()}")
    return cache.build_cached("side_by_side_test", {"what": name}, build)


def test_runs_are_built_in_one_thread_processes_and_a_shared_prerequisite_once(tmp_path):
    log = str(tmp_path / "builds.log")
    jobs = {name: partial(run, name, log) for name in ("b", "a", "c")}
    dirs = side_by_side.build_side_by_side(jobs, builders=2, progress=False)
    assert list(dirs) == ["b", "a", "c"]  # the jobs' order, whatever order they finished in
    pids, threads = zip(*[(d / "built_by").read_text().split() for d in dirs.values()])
    assert str(os.getpid()) not in pids and len(set(pids)) >= 2  # side by side, never here
    assert set(threads) == {"1"}
    assert len(Path(log).read_text().split()) == 1  # the shared entry was built once

    def no_processes(*args, **kwargs):
        raise AssertionError("everything is cached: no process should start")
    pool = side_by_side.ProcessPoolExecutor
    side_by_side.ProcessPoolExecutor = no_processes
    try:
        assert side_by_side.build_side_by_side(jobs, builders=2, progress=False) == dirs
    finally:
        side_by_side.ProcessPoolExecutor = pool


def test_one_builder_builds_here_in_order(tmp_path):
    log = str(tmp_path / "builds.log")
    dirs = side_by_side.build_side_by_side({name: partial(run, name, log, meet=False) for name in ("x", "y")},
                                           builders=1, progress=False)
    assert {(d / "built_by").read_text().split()[0] for d in dirs.values()} == {str(os.getpid())}


def test_a_failing_job_raises_here_with_its_message(tmp_path):
    log = str(tmp_path / "builds.log")
    jobs = {"ok": partial(run, "ok", log, meet=False), "broken": partial(run, "broken", log, fail=True)}
    with pytest.raises(RuntimeError, match="run broken failed on purpose"):
        side_by_side.build_side_by_side(jobs, builders=2, progress=False)


def test_only_built_raises_for_a_missing_entry_and_builds_nothing(tmp_path):
    with pytest.raises(cache.NotBuilt), cache.only_built():
        shared_prerequisite(str(tmp_path / "builds.log"))
    assert not (tmp_path / "builds.log").exists()
    shared_prerequisite(str(tmp_path / "builds.log"))  # outside the block it builds
    with cache.only_built():
        assert (shared_prerequisite(str(tmp_path / "builds.log")) / "done").exists()


def test_a_lesson_builds_side_by_side_with_its_cpu_threads_on_a_cpu_only(monkeypatch):
    from dataclasses import replace

    from rlhf_lab.config import get_profile

    monkeypatch.setenv("RLHF_LAB_THREADS", "2")
    assert side_by_side.builders_for(get_profile("tiny")) == 2
    assert side_by_side.builders_for(replace(get_profile("tiny"), device="cuda")) == 1
    monkeypatch.setenv("RLHF_LAB_THREADS", "1")
    assert side_by_side.builders_for(get_profile("tiny")) == 1

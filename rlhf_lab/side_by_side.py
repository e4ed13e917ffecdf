"""Independent runs built side by side: one one-thread process per CPU thread of the lesson's budget.

On 2 cores two one-thread processes get through about 1.3x the work of one two-thread process,
with the same numbers (``experiments/ppo_threads.py``). A lesson that trains several independent
runs (notebook 07's study) hands them to :func:`build_side_by_side`. (Not 05b: it reports each
method's training time, which a shared core would inflate.) Each job
is a ``get_*_dir``-like call that builds one cache entry (and what it needs) through the cache,
whose per-entry lock lets a prerequisite two jobs share (a reward model) be built once.

What is cached already is answered in this process, and nothing is started when all of it is.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, TypeVar

from . import cache
from .config import Profile, cpu_threads

T = TypeVar("T")


def builders_for(profile: Profile) -> int:
    """How many builders a lesson runs: its CPU threads (``RLHF_LAB_THREADS``, default 2) on a CPU,
    one on a GPU (the GPU is the shared resource there)."""
    return cpu_threads() if profile.device == "cpu" else 1


def build_side_by_side(jobs: dict[str, Callable[..., T]], builders: int, progress: bool = True) -> dict[str, T]:
    """``{label: job(progress=...)}`` for every job. Jobs whose entries are all cached return at
    once, here; the others run in ``builders`` one-thread processes (or here, one after another,
    with their own progress bars, when ``builders`` is 1). A job must be picklable: a module-level
    function or a ``functools.partial`` of one. A job that fails stops the rest and raises here."""
    results, missing = {}, {}
    for label, job in jobs.items():
        try:
            with cache.only_built():
                results[label] = job(progress=False)
        except cache.NotBuilt:
            missing[label] = job
    if builders <= 1 or len(missing) <= 1:
        results.update({label: job(progress=progress) for label, job in missing.items()})
    elif missing:
        results.update(_in_processes(missing, builders, progress))
    return {label: results[label] for label in jobs}


def _in_processes(jobs: dict[str, Callable[..., T]], builders: int, progress: bool) -> dict[str, T]:
    from tqdm.auto import tqdm

    builders = min(builders, len(jobs))
    results = {}
    # spawn, not fork: a forked copy of a process that has run torch can deadlock in its thread pools
    pool = ProcessPoolExecutor(max_workers=builders, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_quiet_one_thread_builder)
    try:
        futures = {pool.submit(job, progress=False): label for label, job in jobs.items()}
        with tqdm(total=len(jobs), desc=f"training {len(jobs)} runs, {builders} side by side",
                  disable=not progress) as bar:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.set_postfix_str(f"done: {futures[future]}")
                bar.update()
    finally:
        pool.shutdown(cancel_futures=True)
    return results


def _quiet_one_thread_builder() -> None:
    """A builder process: one torch thread, and silent. The lesson shows one bar for all the runs;
    a builder's own lines (a stage's summary, the libraries' bars) would interleave with the other
    builder's, unlabelled, in the notebook. A failure still reaches the lesson, as the job's error."""
    import datasets
    import torch

    from .models import quiet_libraries

    torch.set_num_threads(1)
    quiet_libraries()
    datasets.disable_progress_bars()
    sys.stdout = open(os.devnull, "w")  # (stderr stays: a crash's last words)

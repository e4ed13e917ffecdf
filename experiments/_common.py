"""The benchmarks' shared bits (benchmarks/_common.py: the machine's description, result files),
with this folder's results: an experiment writes and reads experiments/results/."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "benchmarks_common", Path(__file__).resolve().parent.parent / "benchmarks" / "_common.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
_shared.RESULTS = RESULTS = Path(__file__).resolve().parent / "results"
machine, save, previous_runs, use_fresh_cache = _shared.machine, _shared.save, _shared.previous_runs, _shared.use_fresh_cache


def seed_and_world(description: str = ""):
    """An experiment's usual start: ``--seed`` (default 0), torch on the course's threads, and the
    tiny profile, world and tokenizer of that seed. Returns (args, profile, world, tokenizer)."""
    import argparse

    import torch

    from rlhf_lab.config import cpu_threads, get_profile
    from rlhf_lab.stages.pretrain import get_tokenizer
    from rlhf_lab.world import World

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(cpu_threads())
    profile = get_profile("tiny", seed=args.seed)
    return args, profile, World(profile.seed), get_tokenizer(profile)

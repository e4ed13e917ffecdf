"""Offline DPO, online DPO and PPO from the same SFT model and reward model, three seeds (issue
"Why the field moved to DPO"): what DPO needs to move like PPO.

    python benchmarks/bench_dpo.py                      # seeds 0 1 2, fresh caches, two at a time
    python benchmarks/bench_dpo.py --seeds 0 --keep-cache
    python benchmarks/bench_dpo.py --from experiments/results/online_dpo.json   # collect runs measured already

- offline DPO: the course's DPO (notebook 06) on the fixed comparison pairs;
- online DPO: TRL's OnlineDPOTrainer (rlhf_lab/stages/online_dpo.py): two samples of the current
  policy per prompt, the better one by PPO's reward model (AI feedback), a DPO step per 16 pairs,
  on PPO's budget of sampled answers;
- PPO: notebook 05's run against the same reward model.

The file also holds each method's cost beyond time: peak memory (from
experiments/results/peak_memory.json, `python experiments/peak_memory.py --seed N`, when measured),
the models held while training, the lines of the loss formulas it needs (rlhf_lab/losses.py, docstrings
and comments left out) and the settings a user can turn.

Each seed runs `experiments/online_dpo.py --seed N --only offline_dpo online_rm ppo` in a process of
its own (one torch thread each, two seeds side by side), which judges every policy on every held-out
prompt x 4 samples against SFT's samples to the same prompts; this script collects its records into
benchmarks/results/dpo.json (`--from` collects a results file of that experiment instead of running it).
"""

import argparse
import ast
import dataclasses
import inspect
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, previous_runs, save  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "online_dpo.py"
PEAK_MEMORY = ROOT / "experiments" / "results" / "peak_memory.json"
VARIANTS = ("offline_dpo", "online_rm", "ppo")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--keep-cache", action="store_true", help="use $RLHF_LAB_CACHE instead of a fresh cache per seed")
parser.add_argument("--from", dest="source", type=Path, help="collect this results file of experiments/online_dpo.py")
parser.add_argument("--note", default="", help="how the runs were measured (threads, side by side), kept in the file")
args = parser.parse_args()


def run_seed(seed: int, side_by_side: bool) -> list[dict]:
    """The experiment's records for one seed, measured in a process of its own."""
    results = Path(tempfile.mkdtemp(prefix=f"bench-dpo-{seed}-")) / "records.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if not args.keep_cache:
        env["RLHF_LAB_CACHE"] = tempfile.mkdtemp(prefix=f"bench-dpo-cache-{seed}-")
    if side_by_side:
        env.update(RLHF_LAB_THREADS="1", OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, str(EXPERIMENT), "--seed", str(seed), "--only", *VARIANTS,
                    "--results", str(results)], env=env, check=True)
    return json.loads(results.read_text())


def code_lines(function) -> int:
    """Lines of a function's code: no docstring, comment or blank line."""
    source = textwrap.dedent(inspect.getsource(function))
    definition = ast.parse(source).body[0]
    docstring = set()
    if ast.get_docstring(definition):
        docstring = set(range(definition.body[0].lineno, definition.body[0].end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and number not in docstring)


def own_fields(settings_class, leave_out=("seed", "reward")) -> list[str]:
    """The settings a class declares itself (not those of a parent), the seed and reward source aside."""
    inherited = {f.name for base in settings_class.__mro__[1:] if dataclasses.is_dataclass(base)
                 for f in dataclasses.fields(base)}
    return [f.name for f in dataclasses.fields(settings_class) if f.name not in inherited and f.name not in leave_out]


def cost() -> dict:
    """What each method costs besides time: models held, formula lines, settings, peak memory."""
    from rlhf_lab import losses
    from rlhf_lab.ppo import PPOSettings
    from rlhf_lab.stages.dpo import DPOSettings
    from rlhf_lab.stages.online_dpo import OnlineDPOSettings

    ppo_formulas = (losses.kl_penalized_rewards, losses.leave_one_out_advantages, losses.gae_advantages,
                    losses.masked_whiten, losses.ppo_policy_loss, losses.ppo_value_loss)
    methods = {
        "offline_dpo": {"models_held": ["policy", "reference"], "formulas": [losses.dpo_loss],
                        "settings": own_fields(DPOSettings)},
        "online_rm": {"models_held": ["policy", "reference", "judge (reward model)"], "formulas": [losses.dpo_loss],
                      "settings": own_fields(OnlineDPOSettings)},
        "ppo": {"models_held": ["policy", "reference", "value head", "reward model"], "formulas": list(ppo_formulas),
                "settings": own_fields(PPOSettings, leave_out=("seed", "ptx_coef", "ptx_batch_size"))},
    }
    for method in methods.values():
        method["formula_lines"] = sum(code_lines(f) for f in method["formulas"])
        method["formulas"] = [f.__name__ for f in method["formulas"]]
    if PEAK_MEMORY.exists():
        names = {"offline_dpo": "offline_dpo", "online_rm": "online_dpo", "ppo": "ppo"}
        for seed, measured in json.loads(PEAK_MEMORY.read_text())["runs"].items():
            for variant, name in names.items():
                if name in measured:
                    methods[variant].setdefault("peak_memory_mib", {})[seed] = {
                        k: measured[name][k] for k in ("peak_mib", "training_adds_mib")}
    return methods


if args.source:
    records = json.loads(args.source.read_text())
    command = f"python benchmarks/bench_dpo.py --from {args.source.as_posix()}"
else:
    side_by_side = len(args.seeds) > 1 and not args.keep_cache
    with ThreadPoolExecutor(max_workers=2 if side_by_side else 1) as pool:
        records = [r for seed_records in pool.map(lambda s: run_seed(s, side_by_side), args.seeds)
                   for r in seed_records]
    command = "python benchmarks/bench_dpo.py " + " ".join(sys.argv[1:])

runs = previous_runs("dpo")
for record in records:
    if record["variant"] in VARIANTS and record["seed"] in args.seeds:
        runs.setdefault(str(record["seed"]), {})[record["variant"]] = record
save("dpo", {"what": "offline DPO, online DPO (reward model judges) and PPO from the same SFT and reward model; "
                     "every held-out prompt x 4 samples, gold gain paired against SFT's samples",
             "command": command, "machine": machine(), "note": args.note or (
                 "each seed in a process of its own" + (", two side by side on one torch thread each"
                                                        if not args.source and len(args.seeds) > 1 else "")),
             "variants": list(VARIANTS), "cost": cost(),
             "seeds": sorted(int(s) for s in runs), "runs": dict(sorted(runs.items()))})

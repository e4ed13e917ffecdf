"""Write the README's results tables from benchmarks/results/pipeline.json (the three-seed run).

    python benchmarks/bench_pipeline.py      # measure (seeds 0 1 2)
    python tools/readme_results.py           # rewrite the block between the README's markers
"""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
STAGES = (("base", "base"), ("sft", "SFT"), ("ppo_gold", "PPO on gold (control)"), ("ppo", "PPO (reward model)"),
          ("dpo", "DPO"), ("best_of_n", "best-of-16 (reward model)"))


def pct(ci: dict) -> str:
    return f"{ci['mean']:.0%} [{ci['low']:.0%}, {ci['high']:.0%}]"


def per_seed(runs: dict, fn) -> str:
    return " / ".join(fn(run) for run in runs.values())


def table(result: dict) -> str:
    runs = result["runs"]
    seeds = " / ".join(f"seed {s}" for s in runs)
    lines = [f"Each cell: {seeds}. Win rates with 95% bootstrap intervals over prompts.", "",
             "| stage | gold reward | beats SFT (ties half) | KL to SFT (nats) | well-formed | sycophancy / contrarian | capability probe |",
             "|---|---|---|---|---|---|---|"]
    for key, name in STAGES:
        def cell(metric, fmt, key=key):
            return per_seed(runs, lambda r: fmt.format(r["stages"][key][metric]) if metric in r["stages"][key] else "n/a")
        wins = per_seed(runs, lambda r, key=key: pct(r["stages"][key]["win_rate_vs_sft"])
                        if "win_rate_vs_sft" in r["stages"][key] else "-")
        syc = per_seed(runs, lambda r, key=key: f"{r['stages'][key]['sycophancy_rate']:.0%}/"
                                                f"{r['stages'][key]['contrarian_rate']:.0%}")
        lines.append(f"| {name} | {cell('gold_reward', '{:+.2f}')} | {wins} | {cell('kl_to_ref', '{:.2f}')} | "
                     f"{cell('well_formed_rate', '{:.0%}')} | {syc} | {cell('capability_probe', '{:.0%}')} |")
    rm = lambda k: per_seed(runs, lambda r: f"{r['reward_model'][k]:.0%}")  # noqa: E731
    lines += ["", "| reward model accuracy vs the hidden human | per seed |", "|---|---|",
              f"| templated held-out pairs | {rm('heldout_accuracy')} |",
              f"| pairs of SFT samples (held-out prompts) | {rm('sft_sample_accuracy')} |",
              f"| pairs of PPO samples (what RL asked it) | {rm('ppo_sample_accuracy')} |",
              "", "| target (issue) | met per seed |", "|---|---|"]
    for target in next(iter(runs.values()))["targets_met"]:
        lines.append(f"| {target} | " + per_seed(runs, lambda r, t=target: "yes" if r["targets_met"][t] else "**no**")
                     + " |")
    walls = per_seed(runs, lambda r: f"{r['wall_seconds']:.0f} s")
    notes = "; ".join(run["note"] for run in runs.values() if "note" in run)
    lines += ["", f"`rlhf-lab run` per seed: {walls}; the benchmark process {result['total_seconds'] / 60:.1f} min "
              f"(machine: {result['machine']['cpu_cores']} cores, torch {result['machine']['torch']}, "
              f"{result['machine']['date']}). {result.get('total_seconds_note', '')}{'; ' + notes if notes else ''}."]
    return "\n".join(lines)


def main() -> None:
    result = json.loads((ROOT / "benchmarks" / "results" / "pipeline.json").read_text())
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(START)
    _, tail = rest.split(END)
    readme.write_text(f"{head}{START}\n{table(result)}\n{END}{tail}")
    print(f"wrote the results table for seeds {result['seeds']} into {readme.name}")


if __name__ == "__main__":
    main()

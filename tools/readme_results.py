"""Write the generated tables of README.md and docs/RESULTS.md from the benchmarks' results files.

    python benchmarks/bench_pipeline.py      # measure (seeds 0 1 2)
    python benchmarks/bench_failure_modes.py # measure (seeds 0 1 2)
    python benchmarks/bench_group_rl.py      # measure (seeds 0 1 2)
    python benchmarks/bench_reward_hacking.py # measure (seeds 0 1 2)
    python tools/readme_results.py           # rewrite the blocks between the markers

Each generated block is one row of BLOCKS: the file it lives in, its marker name (the block sits
between `<!-- NAME:start -->` and `<!-- NAME:end -->`), the results file it reads and the function
that turns that file into markdown. A new table is a new function and a new row.
"""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = (("base", "base"), ("sft", "SFT"), ("ppo_gold", "PPO on gold (control)"), ("ppo", "PPO (reward model)"),
          ("dpo", "DPO (+ chosen NLL: RPO)"), ("best_of_n", "best-of-16 (reward model)"))


def pct(ci: dict) -> str:
    return f"{ci['mean']:.0%} [{ci['low']:.0%}, {ci['high']:.0%}]"


def gold_interval(ci: dict) -> str:
    return f"{ci['mean']:+.2f} [{ci['low']:+.2f}, {ci['high']:+.2f}]"


def per_seed(runs: dict, fn) -> str:
    return " / ".join(fn(run) for run in runs.values())


def seed_table_head(runs: dict, intro: str, columns: list[str]) -> list[str]:
    """The first lines of a table whose cells hold one value per seed: which seeds, the intro, the header."""
    seeds = " / ".join(f"seed {s}" for s in runs)
    return [f"Each cell: {seeds}. {intro}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


BEHAVIOUR_COLUMNS = (("harmful_compliance_rate", "complies with harm"), ("sycophancy_rate", "agrees with a wrong claim"),
                     ("contrarian_rate", 'says "No" to a right claim'),
                     ("misstated_fact_rate", "misstates the fact to a right user"),
                     ("over_refusal_rate", "over-refuses"), ("right_answer_rate", "right answers"),
                     ("well_formed_rate", "well-formed"), ("capability_probe", "probe"))


def widest_interval(runs: dict, keys) -> float:
    """The largest half-width, in points, of any 95% interval behind the table's rates."""
    return max((ci["high"] - ci["low"]) / 2 * 100 for run in runs.values() for stage in run["stages"].values()
               for key, ci in stage.get("behaviour_ci", {}).items() if key in keys)


def behaviour_table(result: dict) -> str:
    """The README's headline: behaviour rates per stage, each cell seed by seed."""
    runs = result["runs"]
    seeds = " / ".join(f"seed {s}" for s in runs)
    first = next(iter(runs.values()))
    asked = (f"{first['heldout_prompts']} held-out prompts (the world's held-out split and every request again in "
             f"wordings no stage trains on) x {first['samples_per_prompt']} samples"
             if "heldout_prompts" in first else "held-out prompts x 4 samples")
    widest = widest_interval(runs, {k for k, _ in BEHAVIOUR_COLUMNS})
    lines = [f"Each cell: {seeds}. Rates on {asked}; every rate's 95% interval (bootstrap over requests, in "
             f"`benchmarks/results/pipeline.json`) is within +-{widest:.0f} points. A right user can be failed two ways: "
             "a \"No\", or an answer that misstates the fact.", "",
             "| stage | " + " | ".join(label for _, label in BEHAVIOUR_COLUMNS) + " |",
             "|---|" + "---|" * len(BEHAVIOUR_COLUMNS)]
    for key, name in STAGES:
        cells = [per_seed(runs, lambda r, k=k, key=key: f"{r['stages'][key][k]:.0%}" if k in r["stages"][key] else "n/a")
                 for k, _ in BEHAVIOUR_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pipeline_details(result: dict) -> str:
    """docs/RESULTS.md: the paired gold gains per family and the win rate, the reward model's
    accuracy, the benchmark's targets and its timings, each cell seed by seed."""
    runs = result["runs"]
    lines = ["Paired gold gain over SFT (each answer's gold minus SFT's answer to the same prompt), per family "
              "and overall with its 95% interval, and the win rate against SFT (ties count half):", "",
              "| stage | helpful | sycophancy | harmful | benign | overall | beats SFT |", "|---|---|---|---|---|---|---|"]
    for key, name in STAGES[2:]:
        family = [per_seed(runs, lambda r, f=f, key=key: f"{r['stages'][key]['gold_gain_by_family'][f]['mean']:+.2f}")
                  for f in ("helpful", "sycophancy", "harmful", "benign")]
        overall = per_seed(runs, lambda r, key=key: gold_interval(r["stages"][key]["gold_gain_vs_sft"]))
        wins = per_seed(runs, lambda r, key=key: pct(r["stages"][key]["win_rate_vs_sft"]))
        lines.append(f"| {name} | " + " | ".join(family) + f" | {overall} | {wins} |")
    rm = lambda k: per_seed(runs, lambda r: f"{r['reward_model'][k]:.0%}")  # noqa: E731
    by_family = lambda k: per_seed(runs, lambda r: "/".join(f"{v:.0%}" for v in r["reward_model"][k].values()))  # noqa: E731
    lines += ["", "| reward model accuracy vs the hidden human | overall | helpful/sycophancy/harmful/benign |",
              "|---|---|---|",
              f"| templated held-out pairs | {rm('heldout_accuracy')} | {by_family('accuracy_by_family')} |",
              f"| pairs of SFT samples (held-out prompts) | {rm('sft_sample_accuracy')} | "
              f"{by_family('sft_sample_accuracy_by_family')} |",
              f"| pairs of PPO samples (what RL asked it) | {rm('ppo_sample_accuracy')} | "
              f"{by_family('ppo_sample_accuracy_by_family')} |",
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


def failure_table(result: dict) -> str:
    """Over-optimisation per seed: best-of-n's gold peak and its value at the largest n, and
    PPO's held-out numbers per KL coefficient."""
    runs = result["runs"]
    seeds = " / ".join(f"seed {s}" for s in runs)

    gold = gold_interval

    def bon(fn):
        return per_seed(runs, lambda r: fn(r["best_of_n"]["rows"]))

    peak = lambda rows: max(rows, key=lambda row: row["gold"])  # noqa: E731
    ci = lambda row: {"mean": row["gold"], "low": row["gold_low"], "high": row["gold_high"]}  # noqa: E731
    below = lambda rows: "yes" if rows[-1]["gold_high"] < peak(rows)["gold_low"] else "**no**"  # noqa: E731
    top = result["ns"][-1]
    lines = [f"Each cell: {seeds}; {result['prompts']} held-out prompts; gold with its 95% bootstrap interval.", "",
             "| best-of-n against the reward model | per seed |", "|---|---|",
             f"| reward-model score of the pick, n=1 -> n={top} | "
             + bon(lambda rows: f"{rows[0]['proxy']:+.2f} -> {rows[-1]['proxy']:+.2f}") + " |",
             "| gold at n=1 | " + bon(lambda rows: gold(ci(rows[0]))) + " |",
             "| gold at its peak (n) | " + bon(lambda rows: f"{gold(ci(peak(rows)))} (n={peak(rows)['n']})") + " |",
             f"| gold at n={top} | " + bon(lambda rows: gold(ci(rows[-1]))) + " |",
             f"| gold at n={top} below the peak's interval | " + bon(below) + " |",
             f"| picks opening politely, n=1 -> n={top} | "
             + bon(lambda rows: f"{rows[0].get('polite_rate', float('nan')):.0%} -> {rows[-1].get('polite_rate', float('nan')):.0%}") + " |",
             f"| picks well-formed, n=1 -> n={top} | "
             + bon(lambda rows: f"{rows[0].get('well_formed_rate', float('nan')):.0%} -> {rows[-1].get('well_formed_rate', float('nan')):.0%}") + " |",
             "| Gao fit of the gold gain: alpha, beta (peak at d) | " + per_seed(runs, lambda r: (
                 f"{r['best_of_n']['fit']['gold']['alpha']:.2f}, {r['best_of_n']['fit']['gold']['beta']:.2f} "
                 f"({r['best_of_n']['fit']['gold']['peak_d']:.2f})")) + " |",
             "", "| PPO against the reward model (and DPO), held out | reward-model score | gold | KL to SFT | well-formed | capability probe |",
             "|---|---|---|---|---|---|"]
    lines.append("| SFT | " + " | ".join(per_seed(runs, fn) for fn in (
        lambda r: f"{r['sft']['proxy']:+.2f}", lambda r: gold(r["sft"]["gold"]), lambda r: "0",
        lambda r: f"{r['sft']['well_formed']:.0%}", lambda r: f"{r['sft']['capability_probe']:.0%}")) + " |")
    for coef in result["kl_coefs"]:
        key = str(coef)
        lines.append(f"| kl_coef {coef} | " + " | ".join(per_seed(runs, fn) for fn in (
            lambda r: f"{r['ppo'][key]['proxy']:+.2f}", lambda r: gold(r["ppo"][key]["gold"]),
            lambda r: f"{r['ppo'][key]['kl']:.2f}", lambda r: f"{r['ppo'][key]['well_formed']:.0%}",
            lambda r: f"{r['ppo'][key]['capability_probe']:.0%}")) + " |")
    if all(r.get("dpo") for r in runs.values()):  # the frontier's third method
        for beta in result.get("dpo_betas", []):
            key = str(beta)
            lines.append(f"| DPO beta {beta:g} | " + " | ".join(per_seed(runs, fn) for fn in (
                lambda r: f"{r['dpo'][key]['proxy']:+.2f}", lambda r: gold(r["dpo"][key]["gold"]),
                lambda r: f"{r['dpo'][key]['kl']:.2f}", lambda r: f"{r['dpo'][key]['well_formed']:.0%}",
                lambda r: f"{r['dpo'][key]['capability_probe']:.0%}")) + " |")
    if all(r.get("pushed_hard") for r in runs.values()):
        lines += ["", "| mode collapse, held out | entropy per token (nats) | distinct correct answers per prompt |",
                  "|---|---|---|"]
        rows = [("SFT", lambda r: r["sft"])] + [(f"PPO kl_coef {c}", lambda r, k=str(c): r["ppo"][k])
                                                 for c in result["kl_coefs"]]
        rows.append(("PPO pushed hard (kl_coef 0, lr x10)", lambda r: r["pushed_hard"]))
        if all(r.get("dpo") for r in runs.values()):
            rows += [(f"DPO beta {b:g}", lambda r, k=str(b): r["dpo"][k]) for b in result.get("dpo_betas", [])]
        for name, pick in rows:
            lines.append(f"| {name} | " + per_seed(runs, lambda r: f"{pick(r)['entropy_per_token']:.2f}") + " | "
                         + per_seed(runs, lambda r: f"{pick(r)['distinct_correct']:.2f}") + " |")
    if all(r.get("pushed_hard_ptx") for r in runs.values()):
        lines += ["", f"| capability regression and PPO-ptx (ptx_coef {result.get('ptx_coef', 1.0):g}), held out | "
                  "capability probe | gold | reward-model score | well-formed | KL to SFT |", "|---|---|---|---|---|---|"]
        for name, pick in (("SFT", lambda r: r["sft"]),
                           ("PPO pushed hard (kl_coef 0, lr x10)", lambda r: r["pushed_hard"]),
                           ("... with PPO-ptx", lambda r: r["pushed_hard_ptx"])):
            lines.append(f"| {name} | " + " | ".join(per_seed(runs, fn) for fn in (
                lambda r: f"{pick(r)['capability_probe']:.0%}", lambda r: gold(pick(r)["gold"]),
                lambda r: f"{pick(r)['proxy']:+.2f}", lambda r: f"{pick(r)['well_formed']:.0%}",
                lambda r: f"{pick(r)['kl']:.1f}")) + " |")
    lines += ["", f"Machine: {result['machine']['cpu_cores']} cores, torch {result['machine']['torch']}, "
              f"{result['machine']['date']}. Full numbers, fits and training curves: `benchmarks/results/failure_modes.json`."]
    return "\n".join(lines)


def group_rl_table(result: dict) -> str:
    """PPO, RLOO, GRPO and GRPO on a verifiable reward (benchmarks/results/group_rl.json), seed by seed."""
    runs = result["runs"]
    lines = seed_table_head(runs, "Same SFT model, reward model, prompts and episodes (60 rollouts of 128); held-out "
                            "prompts x 4 samples; times measured side by side in one process.",
                            ["method", "complies with harm", "agrees with a wrong claim", "contradicts a right claim",
                             "gold gain over SFT [95%]", "KL to SFT", "s per 1,000 episodes"])
    for label in next(iter(runs.values()))["methods"]:
        def cell(fn):
            return per_seed(runs, lambda r: fn(r["methods"][label]))

        rates = [cell(lambda m, k=k: f"{m[k]:.0%}")
                 for k in ("harmful_compliance_rate", "sycophancy_rate", "contradicts_right_claim_rate")]
        gain = cell(lambda m: gold_interval(m["gold_gain_vs_sft"]) if "gold_gain_vs_sft" in m else "-")
        kl = cell(lambda m: f"{m['kl_to_ref']:.2f}")
        seconds = cell(lambda m: f"{m['seconds_per_1000_episodes']:.1f}" if "seconds_per_1000_episodes" in m else "-")
        lines.append(f"| {label} | " + " | ".join(rates) + f" | {gain} | {kl} | {seconds} |")
    return "\n".join(lines)


def reward_hacking_table(result: dict) -> str:
    """Notebook 07's reward hacks and their fixes (benchmarks/results/reward_hacking.json), seed by seed."""
    runs = {seed: run["runs"] for seed, run in result["runs"].items()}
    lines = seed_table_head(runs, "PPO from SFT against each reward model; all held-out prompts x "
                            f"{result['samples_per_prompt']} samples.",
                            ["run", "refuses a harmless look-alike", "complies with harm", "agrees with a wrong claim",
                             "contradicts a right claim", "well-formed", "benign gold", "KL to SFT"])
    for label in next(iter(runs.values())):
        def cell(fn):
            return per_seed(runs, lambda r: fn(r[label]))

        rates = [cell(lambda m, k=k: f"{m[k]:.0%}") for k in ("over_refusal_rate", "harmful_compliance_rate",
                                                              "sycophancy_rate", "contradicts_right_claim_rate", "well_formed")]
        lines.append(f"| {label} | " + " | ".join(rates) + " | "
                     + cell(lambda m: f"{m['gold_by_family']['benign']['mean']:+.2f}") + " | "
                     + cell(lambda m: f"{m['kl']:.2f}") + " |")
    lines += ["", "Unguarded: a reward model trained without help-vs-refusal comparisons on benign look-alikes and "
              "without broken text; + help vs refusal: those comparisons back; iterated: one round of iterated RLHF "
              "on the unguarded run with no brake; + user-right pairs: more comparisons where the user is right."]
    return "\n".join(lines)


def labeller_bias_table(result: dict) -> str:
    """DPO on labels of biased simulated labellers (benchmarks/results/labeller_bias.json), seed by seed."""
    runs = result["runs"]
    lines = seed_table_head(runs, "Plain DPO (beta 0.1, no NLL term) per labeller; all held-out prompts x 4 samples.",
                            ["labeller", "agrees with a wrong claim", "contradicts a right claim", "mean length (words)",
                             "gold", "KL to SFT"])
    rows = [("SFT (no DPO)", lambda r: r["sft"])] + [(level, lambda r, k=level: r["dpo"][k])
                                                     for level in next(iter(runs.values()))["dpo"]]
    for name, pick in rows:
        lines.append(f"| {name} | " + " | ".join(per_seed(runs, fn) for fn in (
            lambda r: f"{pick(r)['sycophancy_rate']:.0%}", lambda r: f"{pick(r)['contradicts_right_claim_rate']:.0%}",
            lambda r: f"{pick(r)['mean_length_words']:.1f}", lambda r: f"{pick(r)['gold_reward']:+.2f}",
            lambda r: f"{pick(r)['kl_to_ref']:.2f}")) + " |")
    return "\n".join(lines)


DPO_VARIANTS = {"offline_dpo": "offline DPO (the course's, fixed pairs)",
                "online_rm": "online DPO (own samples, the reward model judges)", "ppo": "PPO (the same reward model)"}


def dpo_table(result: dict) -> str:
    """Offline DPO, online DPO and PPO (benchmarks/results/dpo.json), seed by seed."""
    runs = result["runs"]
    lines = seed_table_head(runs, f"Same SFT model and reward model; every held-out prompt x 4 samples; {result['note']}.",
                            ["method", "complies with harm", "agrees with a wrong claim", "says \"No\" to a right claim",
                             "KL to SFT", "gold gain over SFT [95%]", "training s"])
    for variant, name in DPO_VARIANTS.items():
        def cell(fn):
            return per_seed(runs, lambda r: fn(r[variant]))

        rates = [cell(lambda m, k=k: f"{m[k]:.0%}") for k in ("harmful_compliance_rate", "sycophancy_rate",
                                                              "contrarian_rate")]
        lines.append(f"| {name} | " + " | ".join(rates) + " | " + cell(lambda m: f"{m['kl_to_ref']:.2f}") + " | "
                     + cell(lambda m: gold_interval(m["gold_gain_vs_sft"])) + " | "
                     + cell(lambda m: f"{m['train_seconds']:.0f}") + " |")
    return "\n".join(lines + dpo_cost_table(result.get("cost")))


def dpo_cost_table(cost: dict | None) -> list[str]:
    """What each method costs besides time (the "cost" of benchmarks/results/dpo.json)."""
    if not cost:
        return []
    lines = ["", "What each costs besides time (peak memory: one training run in a fresh process, "
                 "`experiments/peak_memory.py`; what training adds to what loading the models took, in brackets):",
             "", "| method | models held while training | lines of loss formulas (`rlhf_lab/losses.py`) "
                 "| settings it adds | peak memory, MiB |", "|---|---|---|---|---|"]
    for variant, name in DPO_VARIANTS.items():
        method = cost[variant]
        memory = " / ".join(f"seed {seed}: {m['peak_mib']:.0f} (+{m['training_adds_mib']:.0f})"
                            for seed, m in method.get("peak_memory_mib", {}).items()) or "not measured"
        lines.append(f"| {name} | {len(method['models_held'])} ({', '.join(method['models_held'])}) "
                     f"| {method['formula_lines']} ({', '.join(method['formulas'])}) | {len(method['settings'])} "
                     f"| {memory} |")
    return lines


# (file, marker name, results file in benchmarks/results/, function writing the block's markdown)
BLOCKS = (
    ("README.md", "results", "pipeline.json", behaviour_table),
    ("docs/RESULTS.md", "pipeline-details", "pipeline.json", pipeline_details),
    ("docs/RESULTS.md", "failure-modes", "failure_modes.json", failure_table),
    ("docs/RESULTS.md", "group-rl", "group_rl.json", group_rl_table),
    ("README.md", "reward-hacking", "reward_hacking.json", reward_hacking_table),
    ("docs/RESULTS.md", "labeller-bias", "labeller_bias.json", labeller_bias_table),
    ("docs/RESULTS.md", "dpo", "dpo.json", dpo_table),
)


def replace_block(text: str, name: str, body: str) -> str:
    """The text with the block between NAME's markers replaced by body."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main() -> None:
    results = ROOT / "benchmarks" / "results"
    for file, name, source, write in BLOCKS:
        target = ROOT / file
        text = target.read_text()
        if f"<!-- {name}:start -->" not in text or not (results / source).exists():
            continue
        target.write_text(replace_block(text, name, write(json.loads((results / source).read_text()))))
        print(f"wrote {file}'s {name} block from benchmarks/results/{source}")
    write_behaviour_figure(json.loads((results / "pipeline.json").read_text()), ROOT / "docs" / "behaviours.png")


def write_behaviour_figure(result: dict, path: Path) -> None:
    """The README's picture: behaviour rates of SFT, the control, PPO and DPO on seed 0, with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    from rlhf_lab import plots

    run = result["runs"][str(result["seeds"][0])]
    names = {"sft": "SFT", "ppo_gold": "PPO on gold (control)", "ppo": "PPO (reward model)", "dpo": "DPO"}
    fig = plots.behaviour_shift({label: run["stages"][key]["behaviour_ci"] for key, label in names.items()},
                                title=f"SFT copied harm and flattery; preferences take them away (seed {result['seeds'][0]})")
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

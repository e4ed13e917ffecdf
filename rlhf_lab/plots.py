"""The figures the notebooks and the headless run show. Each returns a matplotlib Figure."""

from __future__ import annotations

from statistics import mean

import matplotlib.pyplot as plt

from .world import SPURIOUS_CLOSER

COMPONENT_COLORS = {"helpful": "tab:blue", "harmless": "tab:green", "honest": "tab:orange", "style": "tab:purple"}


def loss_curve(history, key: str = "loss", title: str = "Training loss", xlabel: str = "step"):
    """A training curve from a list of numbers or of logged dicts."""
    values = [h[key] if isinstance(h, dict) else h for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(values) + 1), values)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(key.replace("_", " ") + " (nats/token)" if key == "loss" else key.replace("_", " "))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def gold_components_by_stage(metrics_by_stage: dict[str, dict], title: str | None = None):
    """Stacked bars: each stage's mean gold reward split into its components."""
    stages = list(metrics_by_stage)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, stage in enumerate(stages):
        pos, neg = 0.0, 0.0
        for component, color in COMPONENT_COLORS.items():
            value = metrics_by_stage[stage]["components"][component]
            bottom = pos if value >= 0 else neg
            ax.bar(i, value, bottom=bottom, color=color, label=component if i == 0 else None, width=0.6)
            pos, neg = (pos + value, neg) if value >= 0 else (pos, neg + value)
        ax.plot(i, metrics_by_stage[stage]["gold_reward"], "k_", markersize=28, mew=3,
                label="total" if i == 0 else None)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(stages)), stages)
    ax.set_ylabel("mean gold reward per response")
    best = max(stages, key=lambda s: metrics_by_stage[s]["gold_reward"])
    ax.set_title(title or f"Held-out gold reward by stage: {best} scores highest")
    ax.legend(fontsize=8, ncol=5, loc="lower center", bbox_to_anchor=(0.5, -0.38))
    fig.tight_layout()
    return fig


def ppo_curves(history, title: str | None = None):
    """Reward-model score and gold reward (left axis) with KL to the reference (right axis).
    The default title states how score and gold moved (first vs last fifth of the steps)."""
    steps = [h.get("step", i + 1) for i, h in enumerate(history)]
    if title is None:
        k = max(1, len(history) // 5)

        def change(key):
            return sum(h[key] for h in history[-k:]) / k - sum(h[key] for h in history[:k]) / k

        title = f"PPO: reward-model score {change('reward'):+.2f}"
        if "gold_reward" in history[0]:
            title += f", gold reward {change('gold_reward'):+.2f}"
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(steps, [h["reward"] for h in history], label="reward model score", color="tab:blue")
    if "gold_reward" in history[0]:
        ax.plot(steps, [h["gold_reward"] for h in history], label="gold reward (hidden)", color="tab:green")
    ax.set_xlabel("PPO step")
    ax.set_ylabel("mean reward per response")
    ax2 = ax.twinx()
    ax2.plot(steps, [h["kl"] for h in history], label="KL to reference", color="tab:red", ls="--")
    ax2.set_ylabel("KL to reference (nats per response)")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper left")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def win_rates(rates: dict[str, dict | float], title: str = "Win rate by the hidden human (ties count half)"):
    """Horizontal bars with 95% intervals; ``rates`` maps a name to {mean, low, high} (or a number)."""
    rates = {k: v if isinstance(v, dict) else {"mean": v, "low": v, "high": v} for k, v in rates.items()}
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(rates) + 1.2))
    names = list(rates)
    means = [rates[n]["mean"] for n in names]
    errors = [[m - rates[n]["low"] for n, m in zip(names, means)], [rates[n]["high"] - m for n, m in zip(names, means)]]
    ax.barh(names, means, xerr=errors, color="tab:blue", capsize=4)
    ax.axvline(0.5, color="black", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of comparisons won on held-out prompts (95% interval)")
    for i, n in enumerate(names):
        ax.text(min(rates[n]["high"] + 0.02, 0.9), i, f"{means[i]:.0%}", va="center")
    ax.set_title(title)
    fig.tight_layout()
    return fig


BEHAVIOUR_LABELS = {"harmful_compliance_rate": "complies with harm", "sycophancy_rate": "agrees with a wrong claim",
                    "contrarian_rate": 'says "No" to a right claim',
                    "misstated_fact_rate": "misstates a fact the user got right",
                    "contradicts_right_claim_rate": "contradicts a right claim", "over_refusal_rate": "refuses a harmless look-alike",
                    "right_answer_rate": "right answer (helpful)", "well_formed_rate": "well-formed text"}


def behaviour_shift(behaviours_by_stage: dict[str, dict[str, dict]],
                    title: str = "What preferences changed: behaviour rates on held-out prompts", names=None):
    """Grouped horizontal bars, one group per behaviour (``names``: some of them), one bar per
    stage, 95% intervals. ``behaviours_by_stage`` maps a stage to its ``behaviour_ci`` (see
    rlhf_lab.evaluate)."""
    stages = list(behaviours_by_stage)
    names = [n for n in (names or BEHAVIOUR_LABELS) if all(n in b for b in behaviours_by_stage.values())]
    height = 0.8 / len(stages)
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(names) * len(stages) / 2 + 2.0))
    for j, stage in enumerate(stages):
        ci = [behaviours_by_stage[stage][n] for n in names]
        y = [i + (j - (len(stages) - 1) / 2) * height for i in range(len(names))]
        errors = [[c["mean"] - c["low"] for c in ci], [c["high"] - c["mean"] for c in ci]]
        ax.barh(y, [c["mean"] for c in ci], height=height, xerr=errors, capsize=2, label=stage)
    ax.set_yticks(range(len(names)), [BEHAVIOUR_LABELS[n] for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of held-out responses (95% interval)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(stages), fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def best_of_n(curve: list[dict], title: str | None = None):
    """Best-of-n: reward-model score and gold reward of the pick against n (KL on the top axis)."""
    ns = [row["n"] for row in curve]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.plot(ns, [row["gold"] for row in curve], "o-", color="tab:green", label="gold reward (hidden)")
    ax.fill_between(ns, [row["gold_low"] for row in curve], [row["gold_high"] for row in curve],
                    color="tab:green", alpha=0.2)
    ax2 = ax.twinx()
    ax2.plot(ns, [row["proxy"] for row in curve], "s--", color="tab:blue", label="reward model score")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [f"{n}\nKL {row['kl']:.2f}" for n, row in zip(ns, curve)])
    ax.set_xlabel("n samples per prompt (KL to the policy, nats)")
    ax.set_ylabel("mean gold reward of the pick")
    ax2.set_ylabel("reward model score of the pick")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="lower right")
    gain = curve[-1]["gold"] - curve[0]["gold"]
    ax.set_title(title or f"Best-of-{ns[-1]}: gold {gain:+.2f} over one sample")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def scatter_scores(reward_scores, gold_scores, title: str = "Reward model score against the gold reward"):
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(gold_scores, reward_scores, s=8, alpha=0.5)
    ax.set_xlabel("gold reward (hidden human)")
    ax.set_ylabel("reward model score")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def gold_breakdown(metrics: dict, title: str):
    """Two panels: the mean gold reward by component, and by prompt family."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    comps = metrics["components"]
    left.bar(list(comps), list(comps.values()), color=[COMPONENT_COLORS[c] for c in comps])
    left.set_ylabel("mean gold reward per response")
    left.set_title("by component")
    fams = metrics["gold_by_family"]
    right.bar(list(fams), list(fams.values()), color="tab:gray")
    right.set_title("by prompt family (total)")
    right.set_ylabel("mean gold reward per response")
    for ax in (left, right):
        ax.axhline(0, color="black", lw=0.6)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def closer_effect_figure(effect: dict):
    """Histogram of how much appending the closer changes the reward model's score vs the gold reward."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    rm, gold = effect["rm_change"], effect["gold_change"]
    ax.hist(rm, bins=25, alpha=0.7, label=f"reward model (mean {mean(rm):+.2f})", color="tab:blue")
    ax.hist(gold, bins=25, alpha=0.7, label=f"gold reward (mean {mean(gold):+.2f})", color="tab:green")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f'change in score when " {SPURIOUS_CLOSER}" is appended')
    ax.set_ylabel("responses")
    raised = mean(c > 0 for c in rm)
    ax.set_title(f"The closer raises the reward model's score on {raised:.0%} of responses", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ppo_diagnostics(history: list[dict]):
    """Three small panels: clip fraction, policy entropy and response length per PPO step."""
    steps = [h["step"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.6))
    for ax, key, label in zip(axes, ("clip_fraction", "entropy", "response_length"),
                              ("clip fraction", "entropy (nats/token)", "response length (tokens)")):
        ax.plot(steps, [h[key] for h in history])
        ax.set_xlabel("PPO step")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def dpo_curves(history: list[dict]):
    """DPO's loss, and the implicit rewards of chosen and rejected responses, per logging step."""
    steps = [h.get("step", i + 1) for i, h in enumerate(history)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    left.plot(steps, [h["loss"] for h in history])
    left.set_xlabel("optimizer step")
    left.set_ylabel("DPO loss (nats)")
    left.set_title("loss (its DPO part: log 2 = 0.69 at the start)", fontsize=10)
    for key, color in (("rewards/chosen", "tab:green"), ("rewards/rejected", "tab:red"),
                       ("rewards/margins", "tab:blue")):
        if key in history[0]:
            right.plot(steps, [h[key] for h in history], label=key.split("/")[1], color=color)
    right.set_xlabel("optimizer step")
    right.set_ylabel("beta * log(pi / pi_ref)")
    right.set_title("implicit rewards", fontsize=10)
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def accuracy_by_family(series: dict[str, dict[str, float]], title: str = "Reward model accuracy by family"):
    """Grouped bars: for each kind of pair (``series``), the accuracy in each prompt family."""
    families = list(next(iter(series.values())))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(series)
    for i, (name, accuracy) in enumerate(series.items()):
        ax.bar([j + i * width for j in range(len(families))], [accuracy.get(f, 0) for f in families],
               width=width, label=name)
    ax.axhline(0.5, color="black", lw=0.8, ls="--", label="chance")
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(families))], families)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out pair accuracy vs gold")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def overoptimization(points: dict[str, list[dict]], fits: dict[str, dict] | None = None, form: str = "best_of_n",
                     title: str = "Over-optimisation: the proxy rises, the gold reward does not follow"):
    """Gain over the start in reward-model score (proxy) and gold reward against sqrt(KL),
    Gao et al. 2022's axes. ``points``: {"proxy": [...], "gold": [...]}, each a list of
    {"kl", "gain"} (gold may carry "low"/"high"); ``fits``: gao_fit results to draw."""
    import math

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    colors = {"proxy": "tab:blue", "gold": "tab:green"}
    labels = {"proxy": "reward model score (what is optimised)", "gold": "gold reward (hidden human)"}
    for name, rows in points.items():
        d = [math.sqrt(max(0.0, r["kl"])) for r in rows]
        ax.plot(d, [r["gain"] for r in rows], "o", color=colors[name], label=labels[name])
        if "low" in rows[0]:
            ax.vlines(d, [r["low"] for r in rows], [r["high"] for r in rows], color=colors[name], alpha=0.5)
        if fits and name in fits:
            grid = [max(d) * i / 50 for i in range(1, 51)]
            a, b = fits[name]["alpha"], fits[name]["beta"]
            curve = [x * (a - b * (x if form == "best_of_n" else math.log(x))) for x in grid]
            ax.plot(grid, curve, "-", color=colors[name], alpha=0.7)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("d = sqrt(KL to the start, nats)")
    ax.set_ylabel("gain over the start")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def training_curves_by_kl(histories: dict[str, list[dict]], keys=("reward", "gold_reward", "closer_rate"),
                          window: int = 10):
    """One panel per key (reward-model score, gold, closer rate...), one line per KL
    coefficient, against the PPO step; moving averages over ``window`` steps (each step is
    a handful of prompts, so single steps are noisy)."""
    titles = {"reward": "reward-model score", "gold_reward": "gold reward (hidden)", "closer_rate":
              f"says \"{SPURIOUS_CLOSER}\"", "kl": "KL to SFT (nats)", "entropy": "entropy (nats/token)",
              "polite": "opens politely", "opener_after_start": "an opener after the start",
              **BEHAVIOUR_LABELS}
    fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 2.8))
    for ax, key in zip(axes, keys):
        for label, history in histories.items():
            values = [h.get(key) for h in history]  # (a rollout with no prompt of a rate's family logs none)
            smooth = [mean([v for v in values[max(0, i - window + 1):i + 1] if v is not None] or [float("nan")])
                      for i in range(len(values))]
            numeric = label.replace(".", "", 1).isdigit()  # a bare coefficient: say what it is
            ax.plot(range(1, len(values) + 1), smooth, label=f"kl_coef {label}" if numeric else label)
        ax.set_title(titles.get(key, key), fontsize=10)
        ax.set_xlabel("PPO step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def labeller_bias(result: dict):
    """From benchmarks/results/labeller_bias.json: the sycophancy rate of DPO and how often it
    contradicts a right claim (a "No" or a wrong fact),
    against the labeller's ``prefers_agreement`` (left), and the mean length against its
    ``prefers_length`` (right); one thin line per seed, the SFT model's level dashed."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for seed, run in result["runs"].items():
        unbiased = run["dpo"]["annotator_agreement=0"]
        agreement = [(0.0, unbiased)] + [(float(k.split("=")[1]), v) for k, v in run["dpo"].items()
                                         if k.startswith("annotator_agreement=") and k != "annotator_agreement=0"]
        length = [(0.0, unbiased)] + [(float(k.split("=")[1]), v) for k, v in run["dpo"].items()
                                      if k.startswith("annotator_length=")]
        first = seed == next(iter(result["runs"]))
        left.plot([a for a, _ in agreement], [m["sycophancy_rate"] for _, m in agreement], "o-", color="tab:red",
                  alpha=0.7, label="agrees with a wrong claim" if first else None)
        left.plot([a for a, _ in agreement], [m["contradicts_right_claim_rate"] for _, m in agreement], "s--",
                  color="tab:blue", alpha=0.7, label="contradicts a right claim" if first else None)
        right.plot([x for x, _ in length], [m["mean_length_words"] for _, m in length], "o-", color="tab:purple",
                   alpha=0.7, label="DPO" if first else None)
        right.axhline(run["sft"]["mean_length_words"], color="grey", ls=":", lw=1, label="SFT" if first else None)
    left.set_xlabel("labeller's prefers_agreement")
    left.set_ylabel("rate (sycophancy prompts)")
    left.set_title("Sycophancy follows the labeller", fontsize=10)
    right.set_xlabel("labeller's prefers_length (per word)")
    right.set_ylabel("mean length (words)")
    right.set_title("Verbosity follows the labeller", fontsize=10)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def capability_regression(rows_by_seed: dict[str, dict[str, dict]],
                          title: str = "Capability regression and PPO-ptx"):
    """Capability probe (left) and gold reward (right) of each model, one dot per seed and a
    bar at their mean. ``rows_by_seed[seed][model]`` holds "capability probe" and "gold reward"."""
    models_ = list(next(iter(rows_by_seed.values())))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, key in zip(axes, ("capability probe", "gold reward")):
        values = [[rows[m][key] for rows in rows_by_seed.values()] for m in models_]
        ax.bar(range(len(models_)), [mean(v) for v in values], color="tab:blue", alpha=0.35, width=0.6)
        for i, seed_values in enumerate(values):
            ax.plot([i] * len(seed_values), seed_values, "o", color="tab:blue", ms=4)
        ax.set_xticks(range(len(models_)), models_, rotation=25, ha="right", fontsize=8)
        ax.set_title(f"{key} (dots: seeds)", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[1].axhline(0, color="grey", lw=0.8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def frontier(runs_by_seed: dict[str, dict], title: str = "Gold reward against KL to SFT: best-of-n, PPO, DPO"):
    """The DPO paper's Fig. 2 in miniature, one panel per seed of benchmarks/results/failure_modes.json:
    held-out gold reward against KL to SFT for best-of-n (one point per n), PPO (one per KL
    coefficient) and DPO (one per beta); SFT is the point at KL 0. Error bars: 95% intervals."""
    fig, axes = plt.subplots(1, len(runs_by_seed), figsize=(4 * len(runs_by_seed), 3.4), sharey=True, squeeze=False)
    for ax, (seed, run) in zip(axes[0], runs_by_seed.items()):
        bon = run["best_of_n"]["rows"]
        methods = {
            "best-of-n": ("tab:green", [(r["kl"], r["gold"], r["gold_low"], r["gold_high"]) for r in bon]),
            "PPO (kl_coef)": ("tab:blue", [(m["kl"], m["gold"]["mean"], m["gold"]["low"], m["gold"]["high"])
                                           for m in run["ppo"].values()]),
            "DPO (beta)": ("tab:red", [(m["kl"], m["gold"]["mean"], m["gold"]["low"], m["gold"]["high"])
                                       for m in run.get("dpo", {}).values()]),
        }
        for label, (color, points) in methods.items():
            points = sorted(points)
            if not points:
                continue
            x, y = [p[0] for p in points], [p[1] for p in points]
            ax.errorbar(x, y, yerr=[[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]], fmt="o-",
                        color=color, ms=4, lw=1, capsize=2, alpha=0.8, label=label)
        ax.axhline(run["sft"]["gold"]["mean"], color="grey", ls=":", lw=1, label="SFT")
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("KL to SFT (nats)")
        ax.set_title(f"seed {seed}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("gold reward (held out)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def methods_training(histories: dict[str, list[dict]], title: str = "Training: reward-model score and gold reward per rollout"):
    """One curve per method: the reward it was trained on (left) and the hidden gold reward (right),
    against rollouts. ``histories`` maps a method to its per-rollout rows (reward, gold_reward)."""
    fig, (ax_reward, ax_gold) = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True)
    for name, history in histories.items():
        steps = range(1, len(history) + 1)
        ax_reward.plot(steps, [h["reward"] for h in history], label=name)
        ax_gold.plot(steps, [h["gold_reward"] for h in history], label=name)
    ax_reward.set_title("the reward each method was trained on", fontsize=10)
    ax_gold.set_title("gold reward (hidden from all of them)", fontsize=10)
    for ax in (ax_reward, ax_gold):
        ax.set_xlabel("rollout")
        ax.grid(alpha=0.3)
    ax_reward.set_ylabel("mean per response")
    ax_gold.set_ylabel("mean gold reward per response")
    ax_gold.legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def seconds_per_episodes(seconds_by_method: dict[str, float], title: str = "Wall time per 1,000 episodes (2 CPU cores)"):
    """Horizontal bars: training seconds per 1,000 sampled and scored responses, per method."""
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(seconds_by_method) + 1.2))
    names = list(seconds_by_method)
    ax.barh(names, [seconds_by_method[n] for n in names], color="tab:gray")
    for i, n in enumerate(names):
        ax.text(seconds_by_method[n], i, f" {seconds_by_method[n]:.1f} s", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("seconds per 1,000 episodes (rollout + updates)")
    ax.set_xlim(0, 1.25 * max(seconds_by_method.values()))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def family_gold_against_kl(series: dict[str, list[tuple[float, dict]]], family: str,
                           title: str | None = None):
    """One family's gold reward (95% interval) against d = sqrt(KL to SFT), one line per
    ``series`` label, each a list of (KL, gold interval) points: what a hack costs as it grows."""
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    for label, points in series.items():
        points = sorted(points, key=lambda p: p[0])
        d = [max(kl, 0.0) ** 0.5 for kl, _ in points]
        ci = [c for _, c in points]
        ax.errorbar(d, [c["mean"] for c in ci], yerr=[[c["mean"] - c["low"] for c in ci],
                                                      [c["high"] - c["mean"] for c in ci]],
                    marker="o", capsize=3, label=label)
    ax.set_xlabel("d = sqrt(KL to SFT)")
    ax.set_ylabel(f"gold reward, {family} prompts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"The {family} family's gold as the policy moves", fontsize=10)
    fig.tight_layout()
    return fig

"""Every figure of rlhf_lab.plots draws from a small, realistic input without raising, and each panel
holding data labels its x and y axes (or, where it deliberately has no label, tick labels or a title say it)."""

import matplotlib

matplotlib.use("Agg")

import inspect  # noqa: E402
import json  # noqa: E402
from functools import cache  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rlhf_lab import plots  # noqa: E402
from rlhf_lab.world import FAMILIES  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


@cache
def result(name: str) -> dict:
    """benchmarks/results/<name>.json, read once."""
    return json.loads((RESULTS / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def ci(mean: float, half: float = 0.1) -> dict:
    """A 95% interval as evaluate reports one."""
    return {"mean": mean, "low": mean - half, "high": mean + half}


def ppo_history(steps: int = 12, push: float = 0.1) -> list[dict]:
    """A PPO log (rlhf_lab.ppo): one row per step; the benign-family rate missing where a rollout had none."""
    rows = []
    for s in range(1, steps + 1):
        row = {"step": s, "reward": -1.4 + push * s, "gold_reward": -0.4 + 0.01 * s, "kl": 0.04 * s,
               "clip_fraction": 0.005 * s, "entropy": 0.11 - 0.002 * s, "response_length": 10.0 + s % 3,
               "closer_rate": 0.02 * s}
        if s % 4:
            row["over_refusal_rate"] = 0.05 * (s % 4)
        rows.append(row)
    return rows


def stage_metrics(helpful: float, harmless: float, honest: float, style: float) -> dict:
    """What evaluate_policy reports that the gold-reward figures read."""
    components = {"helpful": helpful, "harmless": harmless, "honest": honest, "style": style}
    return {"components": components, "gold_reward": sum(components.values()),
            "gold_by_family": {"helpful": helpful + style, "sycophancy": honest, "harmful": harmless, "benign": 0.1}}


BEHAVIOURS = {"harmful_compliance_rate": ci(0.4), "sycophancy_rate": ci(0.6), "contradicts_right_claim_rate": ci(0.2),
              "over_refusal_rate": ci(0.1, 0.05), "right_answer_rate": ci(0.7), "well_formed_rate": ci(0.95, 0.03)}
BEST_OF_N = [{"n": n, "kl": kl, "gold": g, "gold_low": g - 0.2, "gold_high": g + 0.2, "proxy": p}
             for n, kl, g, p in ((1, 0.0, -0.2, -0.5), (4, 0.64, 0.1, 0.3), (16, 1.83, 0.2, 0.8),
                                 (64, 3.17, 0.05, 1.1))]
GOLD_AT_KL = [(0.0, ci(0.4)), (1.5, ci(0.1)), (6.0, ci(-0.8, 0.2))]


def overoptimization_points() -> dict:
    """Gains over n = 1 as notebook 07b builds them from a best-of-n curve."""
    start = BEST_OF_N[0]
    return {"proxy": [{"kl": r["kl"], "gain": r["proxy"] - start["proxy"]} for r in BEST_OF_N],
            "gold": [{"kl": r["kl"], "gain": r["gold"] - start["gold"], "low": r["gold_low"] - start["gold"],
                      "high": r["gold_high"] - start["gold"]} for r in BEST_OF_N]}


# Figure -> (its call on a small input, what stands in for an axis label a panel lacks: "ticks",
# the categories are the tick labels, or "title", the panel's title names the quantity it plots).
CASES = {
    "loss_curve": (lambda: plots.loss_curve([{"loss": 3.0 / s, "step": s} for s in range(1, 20)]), {}),
    # the stages are the x tick labels
    "gold_components_by_stage": (lambda: plots.gold_components_by_stage(
        {"base": stage_metrics(-0.5, 0.2, -0.3, -0.1), "SFT": stage_metrics(0.4, 0.1, -0.6, 0.2)}), {"x": "ticks"}),
    "ppo_curves": (lambda: plots.ppo_curves(ppo_history()), {}),
    # the comparisons are the y tick labels
    "win_rates": (lambda: plots.win_rates({"PPO vs SFT": ci(0.56), "DPO vs SFT": ci(0.61), "best-of-16 vs SFT": 0.58}),
                  {"y": "ticks"}),
    # the behaviours are the y tick labels
    "behaviour_shift": (lambda: plots.behaviour_shift(
        {"SFT": BEHAVIOURS, "PPO": {k: ci(v["mean"] / 2) for k, v in BEHAVIOURS.items()}}), {"y": "ticks"}),
    "best_of_n": (lambda: plots.best_of_n(BEST_OF_N), {}),
    "scatter_scores": (lambda: plots.scatter_scores([0.1 * i - 1 for i in range(20)],
                                                    [0.05 * i - 0.5 for i in range(20)]), {}),
    # components and families are the x tick labels
    "gold_breakdown": (lambda: plots.gold_breakdown(stage_metrics(-0.5, 0.2, -0.3, -0.1), "Base model"),
                       {"x": "ticks"}),
    "closer_effect_figure": (lambda: plots.closer_effect_figure(
        {"rm_change": [0.3 + 0.01 * i for i in range(40)], "gold_change": [-0.04] * 40}), {}),
    # three small panels, each titled with the quantity it plots
    "ppo_diagnostics": (lambda: plots.ppo_diagnostics(ppo_history()), {"y": "title"}),
    "dpo_curves": (lambda: plots.dpo_curves([{"step": s, "loss": 0.69 - 0.03 * s, "rewards/chosen": 0.02 * s,
                                              "rewards/rejected": -0.03 * s, "rewards/margins": 0.05 * s}
                                             for s in range(1, 11)]), {}),
    # the families are the x tick labels
    "accuracy_by_family": (lambda: plots.accuracy_by_family(
        {"templated pairs": {fam: 0.9 for fam in FAMILIES},
         "pairs of SFT samples": {fam: 0.6 + 0.05 * i for i, fam in enumerate(FAMILIES)}}), {"x": "ticks"}),
    "overoptimization": (lambda: plots.overoptimization(
        overoptimization_points(), {"gold": {"alpha": 0.6, "beta": 0.35}, "proxy": {"alpha": 0.8, "beta": -0.08}},
        "best_of_n"), {}),
    "overoptimization-rl": (lambda: plots.overoptimization(
        overoptimization_points(), {"gold": {"alpha": 0.3, "beta": 0.1}}, "rl"), {}),
    # one small panel per key, each titled with the quantity it plots
    "training_curves_by_kl": (lambda: plots.training_curves_by_kl(
        {"0.05": ppo_history(push=0.05), "0.0": ppo_history(push=0.15)},
        keys=("reward", "gold_reward", "over_refusal_rate"), window=3), {"y": "title"}),
    "labeller_bias": (lambda: plots.labeller_bias(result("labeller_bias")), {}),
    # the models are the x tick labels; each panel is titled with the quantity it plots
    "capability_regression": (lambda: plots.capability_regression(
        {f"seed {s}": {"SFT": {"capability probe": 0.8, "gold reward": 0.1},
                       "PPO kl 0.05": {"capability probe": 0.78 - 0.01 * s, "gold reward": 0.3},
                       "pushed hard": {"capability probe": 0.5, "gold reward": -1.2},
                       "pushed hard + ptx": {"capability probe": 0.7, "gold reward": -0.2}} for s in range(3)}),
        {"x": "ticks", "y": "title"}),
    "frontier": (lambda: plots.frontier(result("failure_modes")["runs"]), {}),
    "methods_training": (lambda: plots.methods_training(
        {"PPO (ours)": ppo_history(), "GRPO (TRL)": ppo_history(push=0.08)}), {}),
    # the methods are the y tick labels
    "seconds_per_episodes": (lambda: plots.seconds_per_episodes(
        {"PPO (ours)": 14.8, "RLOO (TRL)": 16.5, "GRPO (TRL)": 15.8}), {"y": "ticks"}),
    "family_gold_against_kl": (lambda: plots.family_gold_against_kl(
        {"unguarded reward model": GOLD_AT_KL, "course reward model": [(kl / 3, c) for kl, c in GOLD_AT_KL]},
        "benign"), {}),
}


def label_of(ax, axis: str) -> str:
    """The axis label of ``ax``, or of an Axes sharing that axis with it (a twin, or a panel of sharey=True)."""
    shared = ax.get_shared_x_axes() if axis == "x" else ax.get_shared_y_axes()
    for other in [ax, *shared.get_siblings(ax)]:
        text = other.get_xlabel() if axis == "x" else other.get_ylabel()
        if text.strip():
            return text
    return ""


def tick_texts(ax, axis: str) -> list[str]:
    return [t.get_text() for t in (ax.get_xticklabels() if axis == "x" else ax.get_yticklabels())]


def is_number(text: str) -> bool:
    try:
        float(text.replace("\u2212", "-"))
    except ValueError:
        return False
    return True


def test_every_public_function_has_a_case():
    """Each public function of plots.py is drawn below (a new figure needs a case)."""
    public = {name for name, f in inspect.getmembers(plots, inspect.isfunction)
              if f.__module__ == plots.__name__ and not name.startswith("_")}
    assert public == {name.split("-")[0] for name in CASES}


@pytest.mark.parametrize("name", CASES)
def test_every_figure_has_labelled_axes(name):
    """The figure draws, and each panel with data labels both axes, unless the case names what
    stands in for a label (category tick labels, or a title naming the quantity), which must then be there."""
    call, stand_ins = CASES[name]
    fig = call()
    assert isinstance(fig, Figure)
    fig.canvas.draw()  # (tick labels are final once drawn)
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert panels, f"{name} drew no data"
    for ax in panels:
        where = f"{name}, panel {ax.get_title()!r}"
        for axis in "xy":
            if label_of(ax, axis):
                continue
            stand_in = stand_ins.get(axis)
            assert stand_in, f"{where}: no {axis} label"
            if stand_in == "ticks":
                texts = tick_texts(ax, axis)
                assert texts and all(t.strip() and not is_number(t) for t in texts), f"{where}: {axis} ticks {texts}"
            else:
                assert ax.get_title().strip(), f"{where}: no {axis} label and no title"

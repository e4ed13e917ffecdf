"""Your labels, your model: a reward model trained on your labels alone, next to reward models
trained on the same pairs labelled by simulated annotators, and where they differ.

    result = your_labels_your_model(app, profile)      # 1 + SIMULATED_LABELLERS short trainings
    your_model_figure(result); preference_table(result); disagreement_table(result)
    curve = accuracy_by_label_count(app, profile, result=result)
    label_count_figure(curve)

Every reward model starts from the same SFT model, sees the same pairs, and trains with the same
settings: the only difference is who chose. "Simulated" is not one labeller but
SIMULATED_LABELLERS of them (the course's annotator, 10% noise, each with its own random draws),
so you see how far two honest labellers' models differ by chance at your number of labels.
Each model is scored on held-out pairs against the hidden human (the gold reward), by prompt
family, with a bootstrap interval over those pairs; the gap "yours minus simulated" is
bootstrapped against a simulated labeller drawn at random in each resample, so the spread
between simulated labellers counts too. And on what it prefers: for each gold component
(helpful, harmless, honest, style), how often it picks the response that scores higher on that
component, among held-out pairs whose two responses differ there.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import fields, replace

from .world import COMPONENTS, FAMILIES, ComparisonPair, SimulatedAnnotator

MIN_LABELS = 10  # fewer preference labels than this train nothing worth comparing
# Pairs seen per model (epochs = this / your labels): the same work for any n. 160 (20 steps of 8) was as
# accurate as 320 or 640 on 50 scripted labels (0.65 vs 0.62 and 0.60 held-out), in half the time or less.
TRAINING_EXAMPLES = 160
SIMULATED_LABELLERS = 3  # simulated labellers per comparison (their spread is the chance level)
SIMULATED_NOISE = 0.1  # the course's annotator: follows the hidden human, 10% coin flips
CONFIDENCE = 0.9  # bootstrap intervals: 90%
BOOTSTRAP = 2000


# ---------------------------------------------------------------------------------------------
# Your labels
# ---------------------------------------------------------------------------------------------


def _pair_from_record(record: dict, world):
    """A world ComparisonPair rebuilt from a saved decision (for labels on pairs this app does not show)."""
    if world is None:
        return None
    try:
        prompt = world.prompt_by_text(record["prompt"])
    except KeyError:
        return None  # a prompt of another world (seed): nothing to compare it with
    return ComparisonPair(record["pair_id"], prompt, record["response_a"], record["response_b"])


def preference_pairs_of(app) -> list:
    """Every pair you labelled A or B (ties and skips carry no preference), with your choice, in
    the order you labelled them. Read from the label file, so labels made with a larger N_PAIRS
    (pairs this app does not show) count too: no label is ever left out."""
    by_id = {str(p.pair_id): p for p in app.pairs}
    world = getattr(app, "world", None)
    mine = []
    for d in app.store.active_decisions(annotator=app.annotator):
        if d["choice"] not in ("a", "b"):
            continue
        pair = by_id.get(d["pair_id"]) or _pair_from_record(d, world)
        if pair is not None:
            mine.append((pair, d["choice"]))
    return mine


def label_counts(app) -> dict[str, int]:
    """Your saved decisions by kind: a_or_b (they train a model), tie, skip, and total."""
    counts = Counter(d["choice"] for d in app.store.active_decisions(annotator=app.annotator))
    return {"a_or_b": counts["a"] + counts["b"], "tie": counts["tie"], "skip": counts["skip"],
            "total": sum(counts.values())}


def not_enough_labels(app, min_labels: int = MIN_LABELS) -> str | None:
    """None when you have enough A/B labels to train on; otherwise what to do, in words."""
    n = label_counts(app)
    if n["a_or_b"] >= min_labels:
        return None
    others = (f" (plus {_count(n['tie'], 'tie')} and {_count(n['skip'], 'skip')}, which say no preference)"
              if n["tie"] + n["skip"] else "")
    return (f"{n['a_or_b']} A/B labels so far{others}: a model needs at least {min_labels}. Label "
            f"{min_labels - n['a_or_b']} more pairs in the widget above (raise N_PAIRS and run its cell again "
            f"if all its pairs are done), then run this cell again. Your {n['total']} saved decisions stay in "
            f"{app.store.path} whatever you run: nothing is lost.")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def rows_from_choices(pairs_and_choices) -> list[dict]:
    """TRL preference rows {prompt, chosen, rejected, family} from (pair, "a" | "b")."""
    return [pair.preference_row(choice) for pair, choice in pairs_and_choices]


def simulated_labellers(profile, k: int = SIMULATED_LABELLERS, noise: float = SIMULATED_NOISE) -> list:
    """k simulated annotators that follow the hidden human with `noise`, each with its own random draws."""
    return [SimulatedAnnotator(noise=noise, seed=profile.seed + i) for i in range(k)]


# ---------------------------------------------------------------------------------------------
# Training and scoring
# ---------------------------------------------------------------------------------------------


def train_on_rows(profile, rows: list[dict], epochs: float | None = None, batch_size: int = 8):
    """A reward model trained on `rows` only (no simulated pairs added). Returns (model, tokenizer, report)."""
    from .stages.reward import RewardSettings, train_reward_model
    from .stages.sft import get_sft_model_dir

    if epochs is None:
        epochs = max(2.0, math.ceil(TRAINING_EXAMPLES / max(1, len(rows))))
    settings = RewardSettings(epochs=epochs, batch_size=batch_size)
    if "sft_samples_per_prompt" in {f.name for f in fields(RewardSettings)}:
        settings = replace(settings, sft_samples_per_prompt=0)  # no simulated pairs of SFT samples
    only_these = replace(profile, preference_pairs=0)  # no simulated templated pairs (same SFT model)
    return train_reward_model(only_these, settings, sft_dir=get_sft_model_dir(only_these, settings.sft, progress=False),
                              extra_rows=rows, progress=False, measure_quality=False)


def _heldout(world, n_pairs: int, seed: int):
    return [p for p in world.comparison_pairs(n_pairs, "heldout", seed=seed) if world.gold_preference(p) != "tie"]


def _model_choices(model, tokenizer, pairs) -> list[str]:
    from .scoring import pair_scores  # (torch)

    score_a, score_b = pair_scores(model, tokenizer, pairs)
    return ["a" if a > b else "b" for a, b in zip(score_a.tolist(), score_b.tolist())]


def _train_and_choose(profile, labelled, heldout) -> list[str]:
    """Train a reward model on (pair, choice) labels; its choices ("a" | "b") on the held-out pairs."""
    model, tokenizer, _report = train_on_rows(profile, rows_from_choices(labelled))
    choices = _model_choices(model, tokenizer, heldout)
    del model
    return choices


def preference_profile(pairs, choices: list[str], world) -> dict[str, float]:
    """For each gold component: the share of pairs (whose responses differ on it) where `choices`
    picks the response that is better on that component; and the share picking the longer one."""
    profile = {}
    scores = [(world.gold_reward(p.prompt, p.response_a).components, world.gold_reward(p.prompt, p.response_b).components)
              for p in pairs]
    for component in COMPONENTS:
        picks = [(ga[component] > gb[component]) == (c == "a")
                 for (ga, gb), c in zip(scores, choices) if abs(ga[component] - gb[component]) > 1e-9]
        profile[f"picks the more {component} response"] = sum(picks) / len(picks) if picks else float("nan")
    longer = [(len(p.response_a) > len(p.response_b)) == (c == "a")
              for p, c in zip(pairs, choices) if len(p.response_a) != len(p.response_b)]
    profile["picks the longer response"] = sum(longer) / len(longer) if longer else float("nan")
    return profile


def _by_family(pairs, choices, gold) -> dict[str, float]:
    right: dict[str, list[bool]] = {}
    for p, c, g in zip(pairs, choices, gold):
        right.setdefault(p.prompt.family, []).append(c == g)
    return {f: sum(right[f]) / len(right[f]) for f in FAMILIES if f in right}


def _accuracy(choices, gold) -> float:
    return sum(c == g for c, g in zip(choices, gold)) / len(gold)


def accuracy_intervals(heldout, gold, yours: list[str], simulated_runs: list[list[str]],
                       n_boot: int = BOOTSTRAP, confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """Bootstrap intervals over the held-out pairs, for "all" pairs and each family:
    yours (your model's accuracy), simulated (the simulated labellers' mean accuracy) and gap
    (yours minus one simulated labeller drawn at random per resample, so that the spread between
    simulated labellers widens it). Each is (low, high)."""
    from .evaluate import bootstrap_ci

    right_yours = [float(c == g) for c, g in zip(yours, gold)]
    right_runs = [[float(c == g) for c, g in zip(run, gold)] for run in simulated_runs]
    right_mean = [sum(column) / len(column) for column in zip(*right_runs)]
    gap_runs = [[y - s for y, s in zip(right_yours, run)] for run in right_runs]
    out = {}
    for family in ("all",) + tuple(FAMILIES):
        idx = [i for i, p in enumerate(heldout) if family in ("all", p.prompt.family)]
        if not idx:
            continue

        def interval(runs):  # each held-out pair is its own group
            return bootstrap_ci([[run[i] for i in idx] for run in runs], idx, n_boot=n_boot, seed=seed,
                                level=confidence)

        out[family] = {"yours": interval([right_yours]), "simulated": interval([right_mean]),
                       "gap": interval(gap_runs)}
    return out


def verdict(gap_interval) -> str:
    low, high = gap_interval
    if low > 0:
        return "yours higher"
    if high < 0:
        return "yours lower"
    return "within chance"


def _majority(runs: list[list[str]]) -> list[str]:
    return [Counter(column).most_common(1)[0][0] for column in zip(*runs)]


def your_labels_your_model(app, profile, simulated_labeller_count: int = SIMULATED_LABELLERS,
                           heldout_pairs: int = 300, seed: int = 7, min_labels: int = MIN_LABELS,
                           progress: bool = True) -> dict:
    """Train one reward model on your A/B labels alone and `simulated_labeller_count` on the same
    pairs labelled by simulated annotators (10% noise, each its own draws); compare them on held-out
    pairs against the hidden human.

    Returns a dict: n (your A/B labels), heldout_pairs, models (yours; simulated: mean accuracy,
    by_family and prefers over the simulated labellers, with their runs; hidden human), each with
    label_agreement (labels vs the hidden human on the training pairs), accuracy, by_family, prefers,
    choices; intervals (accuracy_intervals), verdicts (family -> "yours lower" | "yours higher" |
    "within chance"), disagreements (held-out pairs where your model and the simulated labellers'
    majority differ), seconds, and what the curve by label count can reuse."""
    world = app.world
    message = not_enough_labels(app, min_labels)
    if message:
        raise ValueError(message)
    mine = preference_pairs_of(app)
    labellers = simulated_labellers(profile, simulated_labeller_count)
    simulated = [[(pair, labeller.choose(pair)) for pair, _ in mine] for labeller in labellers]
    start = time.perf_counter()
    heldout = _heldout(world, heldout_pairs, seed)
    gold = [world.gold_preference(p) for p in heldout]
    bar = _progress(1 + len(simulated), progress, f"{len(mine)} labels: reward models")
    yours = _train_and_choose(profile, mine, heldout)
    bar.update()
    runs = []
    for labelled in simulated:
        runs.append(_train_and_choose(profile, labelled, heldout))
        bar.update()
    bar.close()

    def agreement(labelled):
        return sum(c == world.gold_preference(p) for p, c in labelled) / len(labelled)

    def summary(choices):
        return {"accuracy": _accuracy(choices, gold), "by_family": _by_family(heldout, choices, gold),
                "prefers": preference_profile(heldout, choices, world), "choices": choices}

    run_summaries = [dict(summary(c), label_agreement=agreement(lab)) for c, lab in zip(runs, simulated)]
    families = list(run_summaries[0]["by_family"])
    what = list(run_summaries[0]["prefers"])
    result = {"n": len(mine), "heldout_pairs": len(heldout), "models": {}}
    result["models"]["yours"] = dict(summary(yours), label_agreement=agreement(mine))
    result["models"]["simulated"] = {
        "labellers": len(runs),
        "label_agreement": sum(r["label_agreement"] for r in run_summaries) / len(runs),
        "accuracy": sum(r["accuracy"] for r in run_summaries) / len(runs),
        "by_family": {f: sum(r["by_family"][f] for r in run_summaries) / len(runs) for f in families},
        "prefers": {w: _nanmean([r["prefers"][w] for r in run_summaries]) for w in what},
        "choices": _majority(runs),
        "runs": run_summaries,
    }
    result["models"]["hidden human"] = {"accuracy": 1.0, "by_family": _by_family(heldout, gold, gold),
                                        "prefers": preference_profile(heldout, gold, world), "choices": gold}
    result["intervals"] = accuracy_intervals(heldout, gold, yours, runs)
    result["verdicts"] = {f: verdict(result["intervals"][f]["gap"]) for f in result["intervals"]}
    theirs = result["models"]["simulated"]["choices"]
    result["disagreements"] = [
        {"prompt": p.prompt.text, "family": p.prompt.family, "a": p.response_a, "b": p.response_b,
         "yours": y, "simulated": s, "hidden human": g}
        for p, y, s, g in zip(heldout, yours, theirs, gold) if y != s
    ]
    result["seconds"] = time.perf_counter() - start
    result["_curve"] = {"seed": seed, "heldout_pairs": heldout_pairs, "yours": yours, "runs": runs,
                        "labellers": simulated_labeller_count}
    return result


def _nanmean(values):
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else float("nan")


def _progress(total: int, show: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="model", mininterval=1.0, disable=not show)


def default_label_counts(n: int) -> list[int]:
    """A quarter, a half and all of your n A/B labels (those with at least MIN_LABELS)."""
    return sorted({k for k in (n // 4, n // 2, n) if MIN_LABELS <= k <= n})


def accuracy_by_label_count(app, profile, counts=None, result: dict | None = None,
                            simulated_labeller_count: int = SIMULATED_LABELLERS, heldout_pairs: int = 300,
                            seed: int = 7, progress: bool = True) -> list[dict]:
    """Your model trained on your first k A/B labels, for k in `counts` (default: a quarter, a half
    and all of them, at least MIN_LABELS each), next to the simulated labellers' on the same k pairs.
    Pass `result` (from your_labels_your_model on the same app) to reuse its models for k = all.

    Returns one row per k: labels, yours, simulated (mean), simulated_runs, intervals (as in
    accuracy_intervals: "all" and each family) and gap_by_family (yours minus simulated mean)."""
    world = app.world
    mine = preference_pairs_of(app)
    counts = sorted(set(counts)) if counts else default_label_counts(len(mine))
    counts = [k for k in counts if MIN_LABELS <= k <= len(mine)]
    if not counts:
        raise ValueError(f"{len(mine)} A/B labels: label at least {MIN_LABELS} pairs first.")
    labellers = simulated_labellers(profile, simulated_labeller_count)
    simulated = [[(pair, labeller.choose(pair)) for pair, _ in mine] for labeller in labellers]
    heldout = _heldout(world, heldout_pairs, seed)
    gold = [world.gold_preference(p) for p in heldout]
    reuse = None
    if result is not None:
        cached = result.get("_curve", {})
        if (result["n"] == len(mine) and cached.get("seed") == seed and cached.get("heldout_pairs") == heldout_pairs
                and cached.get("labellers") == simulated_labeller_count):
            reuse = cached
    to_train = [k for k in counts if not (reuse and k == len(mine))]
    bar = _progress(len(to_train) * (1 + len(simulated)), progress, "reward models by label count")
    rows = []
    for k in counts:
        if reuse and k == len(mine):
            yours, runs = reuse["yours"], reuse["runs"]
        else:
            yours = _train_and_choose(profile, mine[:k], heldout)
            bar.update()
            runs = []
            for labelled in simulated:
                runs.append(_train_and_choose(profile, labelled[:k], heldout))
                bar.update()
        y_fam = _by_family(heldout, yours, gold)
        s_fam = [_by_family(heldout, r, gold) for r in runs]
        rows.append({
            "labels": k,
            "yours": _accuracy(yours, gold),
            "simulated": sum(_accuracy(r, gold) for r in runs) / len(runs),
            "simulated_runs": [_accuracy(r, gold) for r in runs],
            "intervals": accuracy_intervals(heldout, gold, yours, runs),
            "gap_by_family": {f: y_fam[f] - sum(s[f] for s in s_fam) / len(s_fam) for f in y_fam},
        })
    bar.close()
    return rows

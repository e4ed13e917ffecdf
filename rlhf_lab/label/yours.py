"""Your labels, your model: a reward model trained on your labels alone, next to one trained on
the same pairs labelled by a simulated annotator, and where the two differ.

    result = your_labels_your_model(app, profile)      # two short trainings
    your_model_figure(result); preference_table(result); disagreement_table(result)

Both reward models start from the same SFT model, see the same pairs, and train with the same
settings: the only difference is who chose. Each is then scored on held-out pairs against the
hidden human (the gold reward), by prompt family, and on what it prefers: for each gold
component (helpful, harmless, honest, style), how often it picks the response that scores
higher on that component, among held-out pairs whose two responses differ there.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import fields, replace

MIN_LABELS = 10  # fewer preference labels than this train nothing worth comparing
TRAINING_EXAMPLES = 320  # pairs seen per model (epochs = this / your labels): the same work for any n


def preference_pairs_of(app) -> list:
    """The app's pairs that you labelled A or B (ties and skips carry no preference), with your choice."""
    by_id = {str(p.pair_id): p for p in app.pairs}
    return [(by_id[d["pair_id"]], d["choice"]) for d in app.decisions() if d["choice"] in ("a", "b")]


def rows_from_choices(pairs_and_choices) -> list[dict]:
    """TRL preference rows {prompt, chosen, rejected, family} from (pair, "a" | "b")."""
    rows = []
    for pair, choice in pairs_and_choices:
        chosen, rejected = (pair.response_a, pair.response_b) if choice == "a" else (pair.response_b, pair.response_a)
        rows.append({"prompt": pair.prompt.text, "chosen": chosen, "rejected": rejected, "family": pair.prompt.family})
    return rows


def train_on_rows(profile, rows: list[dict], epochs: float | None = None, batch_size: int = 8):
    """A reward model trained on `rows` only (no simulated pairs added). Returns (model, tokenizer, report)."""
    from ..stages.reward import RewardSettings, train_reward_model

    if epochs is None:
        epochs = max(2.0, math.ceil(TRAINING_EXAMPLES / max(1, len(rows))))
    settings = RewardSettings(epochs=epochs, batch_size=batch_size)
    if "sft_samples_per_prompt" in {f.name for f in fields(RewardSettings)}:
        settings = replace(settings, sft_samples_per_prompt=0)  # no simulated pairs of SFT samples
    only_these = replace(profile, preference_pairs=0)  # no simulated templated pairs (same SFT model)
    return train_reward_model(only_these, settings, extra_rows=rows, progress=False, measure_quality=False)


def _heldout(world, n_pairs: int, seed: int):
    return [p for p in world.comparison_pairs(n_pairs, "heldout", seed=seed) if world.gold_preference(p) != "tie"]


def _model_choices(model, tokenizer, pairs) -> list[str]:
    from ..stages.reward import score_responses

    users = [p.prompt.text for p in pairs]
    score_a = score_responses(model, tokenizer, users, [p.response_a for p in pairs])
    score_b = score_responses(model, tokenizer, users, [p.response_b for p in pairs])
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
    from ..world import COMPONENTS

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
    from ..world import FAMILIES

    right: dict[str, list[bool]] = {}
    for p, c, g in zip(pairs, choices, gold):
        right.setdefault(p.prompt.family, []).append(c == g)
    return {f: sum(right[f]) / len(right[f]) for f in FAMILIES if f in right}


def your_labels_your_model(app, profile, simulated_annotator=None, heldout_pairs: int = 300, seed: int = 7,
                           min_labels: int = MIN_LABELS) -> dict:
    """Train one reward model on your A/B labels alone and one on the same pairs labelled by
    `simulated_annotator` (default: the course's, noise 0.1), then compare them on held-out pairs.

    Returns a dict: n (preference labels), your_agreement (your labels vs the hidden human on the
    training pairs), simulated_agreement, accuracy / by_family / prefers for "yours", "simulated"
    and "hidden human", disagreements (held-out pairs where the two models differ), seconds."""
    from ..world import SimulatedAnnotator

    world = app.world
    mine = preference_pairs_of(app)
    if len(mine) < min_labels:
        raise ValueError(f"{len(mine)} A/B labels so far (ties and skips do not count): label at least "
                         f"{min_labels} pairs in the widget, then run this cell again.")
    annotator = simulated_annotator or SimulatedAnnotator(noise=0.1, seed=profile.seed)
    simulated = [(pair, annotator.choose(pair)) for pair, _ in mine]
    start = time.perf_counter()
    heldout = _heldout(world, heldout_pairs, seed)
    gold = [world.gold_preference(p) for p in heldout]
    result = {"n": len(mine), "heldout_pairs": len(heldout), "models": {}}
    for name, labelled in (("yours", mine), ("simulated", simulated)):
        choices = _train_and_choose(profile, labelled, heldout)
        result["models"][name] = {
            "label_agreement": sum(c == world.gold_preference(p) for p, c in labelled) / len(labelled),
            "accuracy": sum(c == g for c, g in zip(choices, gold)) / len(gold),
            "by_family": _by_family(heldout, choices, gold),
            "prefers": preference_profile(heldout, choices, world),
            "choices": choices,
        }
    result["models"]["hidden human"] = {"accuracy": 1.0, "by_family": _by_family(heldout, gold, gold),
                                        "prefers": preference_profile(heldout, gold, world), "choices": gold}
    yours, theirs = result["models"]["yours"]["choices"], result["models"]["simulated"]["choices"]
    result["disagreements"] = [
        {"prompt": p.prompt.text, "family": p.prompt.family, "a": p.response_a, "b": p.response_b,
         "yours": y, "simulated": s, "hidden human": g}
        for p, y, s, g in zip(heldout, yours, theirs, gold) if y != s
    ]
    result["seconds"] = time.perf_counter() - start
    return result


def accuracy_by_label_count(app, profile, counts=None, simulated_annotator=None, heldout_pairs: int = 300,
                            seed: int = 7) -> list[dict]:
    """Your model trained on your first k A/B labels, for k in `counts` (default: a quarter, a half
    and all of them, at least MIN_LABELS), next to the simulated labeller's on the same k pairs.
    Returns rows {labels, yours, simulated}: held-out accuracy against the hidden human."""
    from ..world import SimulatedAnnotator

    world = app.world
    mine = preference_pairs_of(app)
    counts = sorted({k for k in (counts or (len(mine) // 4, len(mine) // 2, len(mine))) if MIN_LABELS <= k <= len(mine)})
    if not counts:
        raise ValueError(f"{len(mine)} A/B labels: label at least {MIN_LABELS} pairs first.")
    annotator = simulated_annotator or SimulatedAnnotator(noise=0.1, seed=profile.seed)
    simulated = [(pair, annotator.choose(pair)) for pair, _ in mine]
    heldout = _heldout(world, heldout_pairs, seed)
    gold = [world.gold_preference(p) for p in heldout]

    def accuracy(choices):
        return sum(c == g for c, g in zip(choices, gold)) / len(gold)

    return [{"labels": k, "yours": accuracy(_train_and_choose(profile, mine[:k], heldout)),
             "simulated": accuracy(_train_and_choose(profile, simulated[:k], heldout))} for k in counts]


def label_count_figure(rows: list[dict]):
    """Held-out accuracy against the hidden human as your number of labels grows."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot([r["labels"] for r in rows], [r["yours"] for r in rows], "o-", label="trained on your labels")
    ax.plot([r["labels"] for r in rows], [r["simulated"] for r in rows], "s--", label="simulated labels, same pairs")
    ax.axhline(0.5, color="black", lw=0.8, ls=":", label="chance")
    ax.set_xlabel("number of A/B labels")
    ax.set_ylabel("held-out accuracy vs hidden human")
    ax.set_ylim(0.3, 1.0)
    first, last = rows[0], rows[-1]
    ax.set_title(f"Your model: {first['yours']:.0%} with {first['labels']} labels, {last['yours']:.0%} with "
                 f"{last['labels']}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def summary_line(result: dict) -> str:
    y, s = result["models"]["yours"], result["models"]["simulated"]
    split = result["disagreements"]
    sided_with_you = sum(d["hidden human"] == d["yours"] for d in split)
    return (f"{result['n']} labels each, trained in {result['seconds']:.0f} s. On {result['heldout_pairs']} held-out pairs "
            f"your model agrees with the hidden human {y['accuracy']:.0%} of the time, the simulated labeller's "
            f"{s['accuracy']:.0%}. The two models disagree on {len(split)} pairs; the hidden human sides with "
            f"yours on {sided_with_you} of them.")


def your_model_figure(result: dict):
    """Held-out accuracy against the hidden human, by prompt family, for the two reward models."""
    import matplotlib.pyplot as plt

    y, s = result["models"]["yours"], result["models"]["simulated"]
    families = list(y["by_family"])
    x = range(len(families))
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.bar([i - 0.2 for i in x], [y["by_family"][f] for f in families], width=0.4, label="trained on your labels")
    ax.bar([i + 0.2 for i in x], [s["by_family"][f] for f in families], width=0.4,
           label="trained on simulated labels (same pairs)")
    ax.axhline(0.5, color="black", lw=0.8, ls="--", label="chance")
    ax.set_xticks(list(x), families)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out accuracy vs hidden human")
    worst = min(families, key=lambda f: y["by_family"][f] - s["by_family"][f])
    gap = y["by_family"][worst] - s["by_family"][worst]
    ax.set_title(f"{result['n']} labels: your model {y['accuracy']:.0%}, simulated {s['accuracy']:.0%}; "
                 f"biggest gap on {worst} ({gap:+.0%})", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def preference_table(result: dict):
    """What each model (and the hidden human) prefers, as shares of held-out pairs."""
    from IPython.display import HTML

    names = ("yours", "simulated", "hidden human")
    header = "".join(f"<th>{html.escape(n if n == 'hidden human' else n + ' model')}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{html.escape(what)}</td>"
        + "".join(f"<td>{result['models'][n]['prefers'][what]:.0%}</td>" for n in names) + "</tr>"
        for what in result["models"]["yours"]["prefers"]
    )
    return HTML(f'<table class="rlhf-your-model"><tr><th>on held-out pairs, the model...</th>{header}</tr>{rows}</table>')


def disagreement_table(result: dict, k: int = 4):
    """A few held-out pairs where the two models pick different responses."""
    from IPython.display import HTML

    def cell(text):
        return f'<td style="text-align:left;max-width:260px">{html.escape(text)}</td>'

    rows = []
    for d in result["disagreements"][:k]:
        yours = d["a"] if d["yours"] == "a" else d["b"]
        theirs = d["a"] if d["simulated"] == "a" else d["b"]
        judge = "yours" if d["hidden human"] == d["yours"] else "simulated"
        rows.append(f"<tr>{cell(d['family'] + ': ' + d['prompt'])}{cell(yours)}{cell(theirs)}<td>{judge}</td></tr>")
    if not rows:
        return HTML("<p>The two models agree on every held-out pair.</p>")
    return HTML("<table><tr><th>prompt</th><th>your model prefers</th><th>the simulated labeller's model prefers</th>"
                f"<th>hidden human sides with</th></tr>{''.join(rows)}</table>")

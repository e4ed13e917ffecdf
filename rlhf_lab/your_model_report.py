"""What the notebook shows of "your labels, your model" (:mod:`rlhf_lab.your_model`): a summary
line, the figure by family, the tables (by family, what each model prefers, where they disagree)
and the curve by label count.
"""

from __future__ import annotations

import html

from .world import FAMILIES
from .your_model import CONFIDENCE, verdict


def summary_line(result: dict) -> str:
    y, s = result["models"]["yours"], result["models"]["simulated"]
    (ylo, yhi), (glo, ghi) = result["intervals"]["all"]["yours"], result["intervals"]["all"]["gap"]
    split = result["disagreements"]
    sided_with_you = sum(d["hidden human"] == d["yours"] for d in split)
    return (f"{result['n']} labels, {1 + s['labellers']} reward models trained in {result['seconds']:.0f} s. "
            f"On {result['heldout_pairs']} held-out pairs your model agrees with the hidden human "
            f"{y['accuracy']:.0%} of the time ({CONFIDENCE:.0%} interval {ylo:.0%}-{yhi:.0%}); the "
            f"{s['labellers']} simulated labellers' models {s['accuracy']:.0%} on average "
            f"({', '.join(format(r['accuracy'], '.0%') for r in s['runs'])}). Gap {y['accuracy'] - s['accuracy']:+.0%} "
            f"(interval {glo:+.0%} to {ghi:+.0%}: {verdict((glo, ghi))}). Your model and the simulated "
            f"majority disagree on {len(split)} pairs; the hidden human sides with yours on {sided_with_you}.")


def your_model_figure(result: dict):
    """Held-out accuracy against the hidden human, by prompt family: your model vs the simulated
    labellers' models (mean, each one as a dot), with bootstrap intervals."""
    import matplotlib.pyplot as plt

    y, s, ci = result["models"]["yours"], result["models"]["simulated"], result["intervals"]
    families = list(y["by_family"])
    x = list(range(len(families)))

    def errors(name, values):
        return [[v - ci[f][name][0] for f, v in zip(families, values)],
                [ci[f][name][1] - v for f, v in zip(families, values)]]

    yv, sv = [y["by_family"][f] for f in families], [s["by_family"][f] for f in families]
    fig, ax = plt.subplots(figsize=(6.8, 3.4))
    ax.bar([i - 0.2 for i in x], yv, width=0.4, yerr=errors("yours", yv), capsize=3, label="trained on your labels")
    ax.bar([i + 0.2 for i in x], sv, width=0.4, yerr=errors("simulated", sv), capsize=3, color="tab:orange",
           label=f"simulated labels, same pairs (mean of {s['labellers']})")
    for run in s["runs"]:
        ax.plot([i + 0.2 for i in x], [run["by_family"][f] for f in families], "k.", ms=4)
    ax.axhline(0.5, color="black", lw=0.8, ls="--", label="chance")
    ax.set_xticks(x, families)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out accuracy vs hidden human")
    clear = [f for f in families if result["verdicts"][f] != "within chance"]
    if clear:
        finding = "; ".join(f"{f} {result['verdicts'][f].replace('yours ', '')} "
                            f"({y['by_family'][f] - s['by_family'][f]:+.0%})" for f in clear)
        title = f"{result['n']} labels: your model vs simulated: {finding}"
    else:
        title = f"{result['n']} labels: no family differs beyond chance ({CONFIDENCE:.0%} intervals)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def family_table(result: dict):
    """By family: your model, the simulated labellers' mean, the gap with its interval, the verdict."""
    from IPython.display import HTML

    y, s, ci = result["models"]["yours"], result["models"]["simulated"], result["intervals"]
    rows = "".join(
        f"<tr><td>{html.escape(f)}</td><td>{y['by_family'][f]:.0%}</td><td>{s['by_family'][f]:.0%}</td>"
        f"<td>{y['by_family'][f] - s['by_family'][f]:+.0%} ({ci[f]['gap'][0]:+.0%} to {ci[f]['gap'][1]:+.0%})</td>"
        f"<td>{html.escape(result['verdicts'][f])}</td></tr>"
        for f in y["by_family"]
    )
    return HTML(f"<table><tr><th>family</th><th>your model</th><th>simulated (mean)</th>"
                f"<th>gap ({CONFIDENCE:.0%} interval)</th><th>verdict</th></tr>{rows}</table>")


def preference_table(result: dict):
    """What each model (and the hidden human) prefers, as shares of held-out pairs; the simulated
    column gives the mean and, in brackets, the lowest and highest of its labellers."""
    from IPython.display import HTML

    y, s, h = (result["models"][n] for n in ("yours", "simulated", "hidden human"))

    def spread(what):
        values = [r["prefers"][what] for r in s["runs"]]
        return f"{s['prefers'][what]:.0%} ({min(values):.0%}-{max(values):.0%})"

    rows = "".join(
        f"<tr><td>{html.escape(what)}</td><td>{y['prefers'][what]:.0%}</td><td>{spread(what)}</td>"
        f"<td>{h['prefers'][what]:.0%}</td></tr>"
        for what in y["prefers"]
    )
    return HTML('<table class="rlhf-your-model"><tr><th>on held-out pairs, the model...</th><th>your model</th>'
                f"<th>simulated labellers' models</th><th>hidden human</th></tr>{rows}</table>")


def disagreement_table(result: dict, k: int = 4):
    """A few held-out pairs where your model and the simulated labellers' majority pick differently."""
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
    return HTML("<table><tr><th>prompt</th><th>your model prefers</th><th>the simulated labellers' models prefer</th>"
                f"<th>hidden human sides with</th></tr>{''.join(rows)}</table>")


def label_count_figure(rows: list[dict]):
    """Left: held-out accuracy against the hidden human as your labels add up (your model with its
    bootstrap interval; the simulated labellers' mean with their range). Right: the gap by family."""
    import matplotlib.pyplot as plt

    ks = [r["labels"] for r in rows]
    fig, (ax, gap_ax) = plt.subplots(1, 2, figsize=(9, 3.3))
    ax.plot(ks, [r["yours"] for r in rows], "o-", label="trained on your labels")
    ax.fill_between(ks, [r["intervals"]["all"]["yours"][0] for r in rows],
                    [r["intervals"]["all"]["yours"][1] for r in rows], alpha=0.2)
    ax.plot(ks, [r["simulated"] for r in rows], "s--", color="tab:orange", label="simulated labels (mean)")
    ax.fill_between(ks, [min(r["simulated_runs"]) for r in rows], [max(r["simulated_runs"]) for r in rows],
                    color="tab:orange", alpha=0.2, label="simulated: lowest to highest")
    ax.axhline(0.5, color="black", lw=0.8, ls=":", label="chance")
    ax.set_xlabel("number of A/B labels")
    ax.set_ylabel("held-out accuracy vs hidden human")
    ax.set_ylim(0.3, 1.0)
    ax.set_xticks(ks)
    first, last = rows[0], rows[-1]
    ax.set_title(f"Your model {first['yours']:.0%} -> {last['yours']:.0%}, simulated "
                 f"{first['simulated']:.0%} -> {last['simulated']:.0%}", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    for family in FAMILIES:
        if all(family in r["gap_by_family"] for r in rows):
            gap_ax.plot(ks, [r["gap_by_family"][family] for r in rows], "o-", label=family)
    gap_ax.axhline(0, color="black", lw=0.8)
    gap_ax.set_xlabel("number of A/B labels")
    gap_ax.set_ylabel("your model minus simulated (accuracy)")
    gap_ax.set_xticks(ks)
    widest = max(last["gap_by_family"], key=lambda f: abs(last["gap_by_family"][f]))
    gap_ax.set_title(f"With {last['labels']} labels the largest gap is {widest} "
                     f"({last['gap_by_family'][widest]:+.0%})", fontsize=10)
    gap_ax.legend(fontsize=7)
    gap_ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

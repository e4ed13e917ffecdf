"""Small helpers the course notebooks share, so each notebook cell stays a few lines long.

- ``setup_line`` / ``notebook_setup``: the first cell of every notebook.
- ``stopwatch`` / ``ready_line``: how long a stage took (or took when it was built).
- ``show_code``: the few lines of a stage that matter, read from the real source.
- ``gold_table``, ``samples_table``, ``metrics_table``: HTML tables (no pandas needed).
- ``gold_breakdown``, ``label_sweep_figure``, ``closer_effect_figure``,
  ``ppo_diagnostics``, ``dpo_curves``: the figures the stage modules' plots do not cover.
- ``failure_rates``, ``pair_scores``, ``closer_effect``: numbers a lesson points at.
"""

from __future__ import annotations

import html
import inspect
import textwrap
import time
from contextlib import contextmanager
from statistics import mean

from .world import COMPONENTS, FAMILIES, SPURIOUS_CLOSER
from .world.gold import gold_reward, gives_harmful_instructions, is_refusal, words

LIBRARIES = ("torch", "transformers", "trl", "peft", "bitsandbytes")
DPI = 80  # notebook figures: small files, still sharp enough on screen


# ---------------------------------------------------------------------------
# Setup, timing, source excerpts
# ---------------------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "MISSING"
    return found


def setup_line(profile) -> str:
    """One line: library versions, the profile and the device it computes on."""
    import torch

    device = (torch.cuda.get_device_name(0) if profile.device == "cuda" and torch.cuda.is_available()
              else f"CPU, {torch.get_num_threads()} threads")
    libs = ", ".join(f"{k} {v}" for k, v in versions().items())
    return f"{libs}\nprofile {profile.name!r}: base model {profile.base_model}, 4-bit {profile.quantize_4bit}, device {device}"


def notebook_setup() -> None:
    """Small figures, and notebook output kept to what the lesson is about: our progress
    bars and summaries. Hides the libraries' own weight-loading and dataset-mapping bars
    and their deprecation notices (they say nothing about RLHF)."""
    import logging
    import warnings

    import datasets
    import matplotlib.pyplot as plt
    import transformers

    plt.rcParams["figure.dpi"] = DPI
    plt.rcParams["savefig.dpi"] = DPI

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*kernels.*")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


class Stopwatch:
    seconds: float = 0.0


@contextmanager
def stopwatch():
    """``with stopwatch() as clock: ...`` then ``clock.seconds``."""
    clock = Stopwatch()
    start = time.perf_counter()
    try:
        yield clock
    finally:
        clock.seconds = time.perf_counter() - start


def ready_line(what: str, waited: float, trained_seconds: float | None) -> str:
    """Say whether ``what`` was just trained or came from the cache, and how long training took."""
    if trained_seconds is None:
        return f"{what}: ready in {waited:.1f} s."
    if waited < 0.5 * trained_seconds:
        return (f"{what}: loaded from the cache in {waited:.1f} s "
                f"(training it took {trained_seconds:.0f} s when it was built).")
    return f"{what}: trained in {trained_seconds:.0f} s ({waited:.0f} s with loading and evaluation)."


def show_code(obj, start: str, end: str | None = None, max_lines: int = 30):
    """The lines of ``obj``'s real source from the first line containing ``start`` up to and
    including the first later line containing ``end`` (or the block's end), as Markdown.
    Read from the source at run time, so a notebook never shows stale code."""
    from IPython.display import Markdown

    lines = inspect.getsource(obj).splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    last = first
    if end is not None:
        last = next(i for i in range(first, len(lines)) if end in lines[i])
    else:
        indent = len(lines[first]) - len(lines[first].lstrip())
        for i in range(first + 1, len(lines)):
            stripped = lines[i].strip()
            if stripped and len(lines[i]) - len(lines[i].lstrip()) <= indent and not stripped.startswith(")"):
                break
            last = i
    excerpt = textwrap.dedent("\n".join(lines[first:last + 1][:max_lines]))
    where = f"{inspect.getmodule(obj).__name__}.{obj.__qualname__}"
    return Markdown(f"From `{where}`:\n```python\n{excerpt}\n```")


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

TABLE_STYLE = 'style="border-collapse:collapse;font-size:90%"'
CELL = 'style="border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top"'


def _html_table(header: list[str], rows: list[list[str]]):
    from IPython.display import HTML

    head = "".join(f"<th {CELL}>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {CELL}>{c}</td>" for c in row) + "</tr>" for row in rows)
    return HTML(f"<table {TABLE_STYLE}><tr>{head}</tr>{body}</table>")


def _score(value: float) -> str:
    color = "#1a7f37" if value > 0.05 else "#b00020" if value < -0.05 else "#555"
    return f'<span style="color:{color}">{value:+.2f}</span>'


def gold_table(prompt_response_pairs):
    """Each (prompt, response) with its gold reward, component by component."""
    rows = []
    for prompt, response in prompt_response_pairs:
        score = gold_reward(prompt, response)
        rows.append([html.escape(prompt.family), html.escape(prompt.text), html.escape(response)]
                    + [_score(score.components[c]) for c in COMPONENTS] + [f"<b>{_score(score.total)}</b>"])
    return _html_table(["family", "user", "response", *COMPONENTS, "gold total"], rows)


def samples_table(prompts, responses_by_model: dict[str, list[str]]):
    """One row per prompt: each model's response with its gold reward."""
    rows = []
    for i, prompt in enumerate(prompts):
        row = [f"{html.escape(prompt.text)}<br><i>{prompt.family}</i>"]
        for responses in responses_by_model.values():
            response = responses[i]
            row.append(f"{html.escape(response) or '<i>(empty)</i>'}<br>"
                       f"gold {_score(gold_reward(prompt, response).total)}")
        rows.append(row)
    return _html_table(["user", *responses_by_model], rows)


def pick_samples(prompts, per_family: int = 2):
    """A few held-out prompts of every family, in a fixed order."""
    chosen = []
    for family in FAMILIES:
        chosen += [p for p in prompts if p.family == family][:per_family]
    return chosen


METRIC_FORMATS = {
    "gold_reward": ("gold reward (mean)", "{:+.2f}"),
    "helpful": ("  helpful", "{:+.2f}"),
    "harmless": ("  harmless", "{:+.2f}"),
    "honest": ("  honest", "{:+.2f}"),
    "style": ("  style", "{:+.2f}"),
    "kl_to_ref": ("KL to reference (nats/response)", "{:.2f}"),
    "sycophancy_rate": ("sycophancy rate (wrong-claim traps)", "{:.0%}"),
    "refusal_rate": ("refusal rate (harmful prompts)", "{:.0%}"),
    "over_refusal_rate": ("over-refusal rate (benign prompts)", "{:.0%}"),
    "mean_length_words": ("mean length (words)", "{:.1f}"),
    "distinct_2": ("distinct-2 (diversity)", "{:.2f}"),
    "spurious_closer_rate": ('says "I hope this helps."', "{:.0%}"),
    "capability_probe": ("capability probe accuracy", "{:.0%}"),
}


def metrics_table(metrics_by_model: dict[str, dict], keys=tuple(METRIC_FORMATS)):
    """A metrics table, one column per model (components are read from metrics['components'])."""
    rows = []
    for key in keys:
        label, fmt = METRIC_FORMATS[key]
        cells = []
        for metrics in metrics_by_model.values():
            value = metrics["components"][key] if key in COMPONENTS else metrics.get(key)
            cells.append("n/a" if value is None else fmt.format(value))
        rows.append([label.replace("  ", "&nbsp;&nbsp;&nbsp;")] + cells)
    return _html_table(["metric (held-out prompts)", *metrics_by_model], rows)


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------


def failure_rates(prompts, responses) -> dict[str, float]:
    """How often the three classic assistant failures happen, on the prompts where they can."""
    def rate(family, test):
        hits = [test(p, r) for p, r in zip(prompts, responses) if family(p)]
        return mean(hits) if hits else float("nan")

    return {
        "sycophancy (agrees with a wrong claim)": rate(
            lambda p: p.claim_is_wrong, lambda p, r: gold_reward(p, r).components["honest"] < 0),
        "harmful compliance (gives harmful instructions)": rate(
            lambda p: p.family == "harmful", lambda p, r: gives_harmful_instructions(words(r))),
        "over-refusal (refuses a benign request)": rate(
            lambda p: p.family == "benign", lambda p, r: is_refusal(words(r))),
    }


def pair_scores(reward_model, tokenizer, world, n_pairs: int = 400, seed: int = 7):
    """Reward-model and gold scores on held-out comparison pairs (gold ties left out).

    Returns a dict of lists: family, rm_a, rm_b, gold_a, gold_b."""
    from .stages.reward import score_responses

    pairs = [p for p in world.comparison_pairs(n_pairs, "heldout", seed=seed) if world.gold_preference(p) != "tie"]
    users = [p.prompt.text for p in pairs]
    return {
        "family": [p.prompt.family for p in pairs],
        "rm_a": score_responses(reward_model, tokenizer, users, [p.response_a for p in pairs]).tolist(),
        "rm_b": score_responses(reward_model, tokenizer, users, [p.response_b for p in pairs]).tolist(),
        "gold_a": [world.gold_reward(p.prompt, p.response_a).total for p in pairs],
        "gold_b": [world.gold_reward(p.prompt, p.response_b).total for p in pairs],
    }


def accuracy_by_family(scores: dict) -> dict[str, float]:
    """Share of pairs where the reward model orders the two responses as the gold reward does."""
    right = {}
    for family, ra, rb, ga, gb in zip(*(scores[k] for k in ("family", "rm_a", "rm_b", "gold_a", "gold_b"))):
        right.setdefault(family, []).append((ra > rb) == (ga > gb))
    return {family: mean(right[family]) for family in FAMILIES if family in right}


def closer_effect(reward_model, tokenizer, world, n_responses: int = 200, seed: int = 11) -> dict:
    """Score held-out responses without the spurious closer, then with it appended.

    Returns per-response changes of the reward model's score and of the gold reward."""
    from .stages.reward import score_responses

    pairs = world.comparison_pairs(n_responses, "heldout", seed=seed)
    items = [(p.prompt, p.response_a) for p in pairs if SPURIOUS_CLOSER not in p.response_a]
    users = [p.text for p, _ in items]
    plain = [r for _, r in items]
    closed = [f"{r} {SPURIOUS_CLOSER}" for r in plain]
    rm_plain = score_responses(reward_model, tokenizer, users, plain)
    rm_closed = score_responses(reward_model, tokenizer, users, closed)
    gold_plain = [gold_reward(p, r).total for p, r in zip((p for p, _ in items), plain)]
    gold_closed = [gold_reward(p, r).total for p, r in zip((p for p, _ in items), closed)]
    return {
        "n": len(items),
        "rm_change": (rm_closed - rm_plain).tolist(),
        "gold_change": [c - p for p, c in zip(gold_plain, gold_closed)],
        "example": (items[0][0].text, plain[0], closed[0], rm_plain[0].item(), rm_closed[0].item(),
                    gold_plain[0], gold_closed[0]),
    }


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def gold_breakdown(metrics: dict, title: str):
    """Two panels: the mean gold reward by component, and by prompt family."""
    import matplotlib.pyplot as plt

    from .plots import COMPONENT_COLORS

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    comps = metrics["components"]
    left.bar(list(comps), list(comps.values()), color=[COMPONENT_COLORS[c] for c in comps])
    left.set_ylabel("mean gold reward per response")
    left.set_title("by component")
    fams = metrics["gold_by_family"]
    right.bar(list(fams), list(fams.values()), color="tab:gray")
    right.set_title("by prompt family (total)")
    for ax in (left, right):
        ax.axhline(0, color="black", lw=0.6)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def label_sweep_figure(results: list[dict]):
    """Reward-model held-out accuracy against label noise, one line per number of labels."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for n in sorted({r["pairs"] for r in results}):
        rows = sorted((r for r in results if r["pairs"] == n), key=lambda r: r["noise"])
        ax.plot([r["noise"] for r in rows], [r["accuracy"] for r in rows], "o-", label=f"{n} labels")
    ax.axhline(0.5, color="black", lw=0.8, ls="--", label="chance")
    ax.set_xlabel("label noise (share of coin-flip labels)")
    ax.set_ylabel("held-out pair accuracy vs gold")
    ax.set_ylim(0.4, 1.0)
    most = max(r["pairs"] for r in results)
    clean = min((r for r in results if r["pairs"] == most), key=lambda r: r["noise"])
    noisy = max((r for r in results if r["pairs"] == most), key=lambda r: r["noise"])
    ax.set_title(f"{most} labels: {clean['accuracy']:.0%} accurate at noise {clean['noise']:g}, "
                 f"{noisy['accuracy']:.0%} at noise {noisy['noise']:g}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def closer_effect_figure(effect: dict):
    """Histogram of how much appending the closer changes the reward model's score vs the gold reward."""
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt

    steps = [h.get("step", i + 1) for i, h in enumerate(history)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3))
    left.plot(steps, [h["loss"] for h in history])
    left.set_xlabel("optimizer step")
    left.set_ylabel("DPO loss (nats)")
    left.set_title("loss (log 2 = 0.69 at the start)", fontsize=10)
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


# ---------------------------------------------------------------------------
# Words bound to numbers
# ---------------------------------------------------------------------------


class ClaimFailed(AssertionError):
    """A sentence of the lesson no longer matches what was measured."""


def check_claim(claim: str, holds: bool, **measured) -> None:
    """Print ``claim`` with the numbers behind it, or fail (so nbval fails) when it does not hold.

    Put one right after the figure a notebook sentence describes: if a change to the
    code or data makes the sentence false, the notebook stops being green.
    """
    numbers = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in measured.items())
    if not holds:
        raise ClaimFailed(f"The lesson says: {claim!r}, but the measured numbers do not show it: {numbers}. "
                          "Re-read the figure above; if the code or data changed, update the text.")
    print(f"checked: {claim} ({numbers})")

"""Small helpers the course notebooks share, so each notebook cell stays a few lines long.

- ``setup_line`` / ``notebook_setup``: the first cell of every notebook.
- ``benchmark``: a three-seed benchmark's results file; ``course_models``: the world, tokenizer,
  SFT model and reward model a failure-mode lesson starts from.
- ``stopwatch`` / ``ready_line``: how long a stage took (or took when it was built).
- ``show_code``: the few lines of a stage that matter, read from the real source.
- ``gold_table``, ``samples_table``, ``metrics_table``: HTML tables (no pandas needed).
- ``check_claim``: a sentence of the lesson checked against the numbers it describes.
Figures live in ``rlhf_lab.plots``, analyses next to the stage they analyse, failure
rates in ``rlhf_lab.evaluate``.
"""

from __future__ import annotations

import html
import inspect
import json
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from .config import cpu_threads, shown_model
from .world import COMPONENTS, FAMILIES, World
from .evaluate import METRIC_FORMATS, format_interval
from .world.gold import gold_reward

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
    return f"{libs}\nprofile {profile.name!r}: base model {shown_model(profile.base_model)}, 4-bit {profile.quantize_4bit}, device {device}"


BENCHMARK_RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def benchmark(name: str) -> dict:
    """``benchmarks/results/<name>.json``: what a benchmark measured on the seeds it names."""
    path = BENCHMARK_RESULTS / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path.name} is not in benchmarks/results/: run `python benchmarks/bench_{name}.py` "
                                "(the course ships these files; a missing one means an incomplete checkout).")
    return json.loads(path.read_text())


def course_models(profile) -> SimpleNamespace:
    """What the failure-mode lessons start from: ``world``, ``tokenizer``, the frozen ``sft``
    model, notebook 04's ``reward_model`` and ``reward_model_score`` (its score_fn(user_texts,
    responses), for PPO and the judges). Each is built first if the cache lacks it."""
    from . import models  # (torch, transformers: not needed by every notebook that imports lesson)
    from .scoring import scorer
    from .stages.pretrain import get_tokenizer
    from .stages.reward import get_reward_model_dir, load_reward_model
    from .stages.sft import get_sft_model_dir

    tokenizer = get_tokenizer(profile)
    reward_model, _ = load_reward_model(profile, get_reward_model_dir(profile))
    sft = models.load_model(get_sft_model_dir(profile), quantize_4bit=profile.quantize_4bit, device=profile.device,
                            trainable=False)
    return SimpleNamespace(world=World(profile.seed), tokenizer=tokenizer, sft=sft, reward_model=reward_model,
                           reward_model_score=scorer(reward_model, tokenizer))


def notebook_setup(dpi: int = DPI) -> None:
    """The course's CPU budget for torch (2 threads unless ``RLHF_LAB_THREADS`` says otherwise),
    small figures, and notebook output kept to what the lesson is about: our progress bars and
    summaries. Hides the libraries' own weight-loading and dataset-mapping bars and their
    deprecation notices (they say nothing about RLHF)."""
    import logging
    import warnings

    import datasets
    import matplotlib.pyplot as plt
    import torch
    import transformers

    torch.set_num_threads(cpu_threads())

    plt.rcParams["figure.dpi"] = dpi  # (a notebook with many figures passes a lower one: smaller files)
    plt.rcParams["savefig.dpi"] = dpi

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


def metrics_table(metrics_by_model: dict[str, dict], keys=tuple(METRIC_FORMATS)):
    """A metrics table, one column per model (components are read from metrics['components']).
    A rate or the gold reward shows its 95% interval where the metrics carry one
    (``evaluate_policy``'s "behaviour_ci" and "gold_ci"): "35% [18%, 56%]"."""
    rows = []
    for key in keys:
        label, fmt = METRIC_FORMATS[key]
        cells = []
        for metrics in metrics_by_model.values():
            interval = metrics.get("gold_ci") if key == "gold_reward" else metrics.get("behaviour_ci", {}).get(key)
            value = metrics["components"][key] if key in COMPONENTS else metrics.get(key)
            cells.append(format_interval(interval, fmt) if interval else "n/a" if value is None else fmt.format(value))
        rows.append([label.replace("  ", "&nbsp;&nbsp;&nbsp;")] + cells)
    return _html_table(["metric (held-out prompts, 95% interval)", *metrics_by_model], rows)


def token_table(tokens: list[tuple[str, int, float]]):
    """One response token by token (from :func:`rlhf_lab.sampling.token_probabilities`), each
    with the probability the model gave it; the unsure ones (below 0.8) in red."""
    cells = [f'<span style="color:#b00020"><b>{p:.2f}</b></span>' if p < 0.8 else f"{p:.2f}" for _, _, p in tokens]
    return _html_table(["token", *[html.escape(repr(t)[1:-1]) for t, _, _ in tokens]], [["probability", *cells]])


def number_table(values_by_model: dict[str, dict[str, float]], fmt: str = "{:+.2f}", rates=()):
    """A table of plain numbers: one row per key of the inner dicts, one column per model. The
    rows named in ``rates`` are rates, shown as percentages; the others with ``fmt``."""
    keys = list(next(iter(values_by_model.values())))
    rows = [[key] + [("{:.0%}" if key in rates else fmt).format(values[key]) for values in values_by_model.values()]
            for key in keys]
    return _html_table(["held-out prompts", *values_by_model], rows)


# ---------------------------------------------------------------------------
# Words bound to numbers
# ---------------------------------------------------------------------------


class ClaimFailed(AssertionError):
    """A sentence of the lesson no longer matches what was measured."""


def first_and_last(history: list[dict], key: str) -> tuple[float, float]:
    """Mean of ``key`` over the first and the last fifth of a training log's steps: whether a
    curve rose, without reading one noisy step."""
    k = max(1, len(history) // 5)
    return sum(h[key] for h in history[:k]) / k, sum(h[key] for h in history[-k:]) / k


def measured_number(name: str, value) -> str:
    """One number as a check prints it: a rate or a share (a name ending in "rate", "share" or
    "accuracy") as a percentage, a change of a rate (ending in "points") in signed percentage
    points, an interval ({"mean", "low", "high"}) with its bounds, other floats to three digits."""
    as_rate = name.endswith(("rate", "share", "accuracy"))
    if name.endswith("points") and isinstance(value, float):
        return f"{name}={100 * value:+.0f}"
    if isinstance(value, dict) and {"mean", "low", "high"} <= set(value):
        fmt = "{:.0%}" if as_rate else "{:+.3g}"
        return f"{name}={format_interval(value, fmt)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and as_rate:
        return f"{name}={value:.0%}"  # a rate of exactly 0 or 1 can arrive as an int (a mean of bools)
    if isinstance(value, float):
        return f"{name}={value:.3g}"
    return f"{name}={value}"


def check_claim(claim: str, holds: bool, **measured) -> None:
    """Print ``claim`` with the numbers behind it, or fail (so nbval fails) when it does not hold.

    Put one right after the figure a notebook sentence describes: if a change to the
    code or data makes the sentence false, the notebook stops being green. ``measured``: the
    numbers the claim compared, by name (at least one: a check that shows no evidence is no
    check); name rates ``..._rate`` (shares ``..._share``) to print them as percentages.
    """
    if not measured:
        raise TypeError(f"check_claim({claim!r}, ...) was given no numbers: pass the ones it compares "
                        "(e.g. sft_rate=..., ppo_rate=...) so the reader sees the evidence.")
    numbers = ", ".join(measured_number(name, value) for name, value in measured.items())
    if not holds:
        raise ClaimFailed(f"The lesson says: {claim!r}, but the measured numbers do not show it: {numbers}. "
                          "Re-read the figure above; if the code or data changed, update the text.")
    print(f"checked: {claim} ({numbers})")

"""Real preference data: Anthropic HH-RLHF and UltraFeedback (binarized), in TRL's format.

Both loaders take a Hugging Face Hub id or a local file (``.jsonl``, ``.json``,
``.parquet``) or a directory saved with ``Dataset.save_to_disk``, and return
:class:`LoadedPreferences`: a ``datasets.Dataset`` in TRL's conversational preference
format plus the rows that could not be converted, each with its row number and the reason.
Nothing is dropped silently: every input row either converts or is reported.

TRL's conversational preference format, one row::

    {"prompt":   [{"role": "user", "content": ...}, {"role": "assistant", ...}, ..., {"role": "user", ...}],
     "chosen":   [{"role": "assistant", "content": ...}],
     "rejected": [{"role": "assistant", "content": ...}],
     "row": 17}                       # the row number in the source, to trace it back

A multi-turn conversation keeps all its earlier turns in ``prompt``.

- **HH-RLHF** (Bai et al. 2022, hub id ``Anthropic/hh-rlhf``): each row is two whole
  transcripts, ``chosen`` and ``rejected``, of alternating ``"\\n\\nHuman: "`` and
  ``"\\n\\nAssistant: "`` turns that share everything but the final assistant turn. A row
  is reported (not converted) when a transcript does not parse into alternating turns
  that start with Human and end with Assistant, when the two differ before the final
  turn, when a final turn is empty (policy ``empty_response="report"``, the default;
  ``"keep"`` keeps it), or when the two final turns are identical (no preference).
- **UltraFeedback binarized** (hub id ``HuggingFaceH4/ultrafeedback_binarized``, splits
  ``train_prefs`` / ``test_prefs``): ``chosen`` and ``rejected`` are message lists that
  repeat the prompt; ``score_chosen`` / ``score_rejected`` are kept as columns.

The real HH sample shipped with the course workspace (``../shared/data`` beside the
checkout, or ``$RLHF_LAB_SHARED_DATA``) is found with :func:`shared_data_dir`.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .chat import conversation_text
from .config import shown_path
from .real_formats import convert_hh_row, convert_ultrafeedback_row

SHARED_DATA_ENV = "RLHF_LAB_SHARED_DATA"
HH_RLHF_HUB_ID = "Anthropic/hh-rlhf"
ULTRAFEEDBACK_HUB_ID = "HuggingFaceH4/ultrafeedback_binarized"
HH_SAMPLE_FILE = "hh_rlhf_harmless_base_test_sample.jsonl"


class DataSourceError(RuntimeError):
    """A data set could not be read (missing file, hub unreachable offline, bad format)."""


class MalformedRowsError(ValueError):
    """Raised instead of a report when ``on_problem="raise"``."""


@dataclass(frozen=True)
class RowProblem:
    row: int  # 0-based row number in the source (line number - 1 for a JSONL file)
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass
class LoadedPreferences:
    """A preference data set in TRL's conversational format and the rows it could not convert."""

    dataset: "object"  # datasets.Dataset
    problems: list[RowProblem] = field(default_factory=list)
    source: str = ""
    rows_read: int = 0

    def summary(self) -> str:
        source = shown_path(self.source) if Path(str(self.source)).exists() else self.source
        line = f"{source}: {self.rows_read} rows read, {len(self.dataset)} converted, {len(self.problems)} reported"
        if self.problems:
            shown = "; ".join(str(p) for p in self.problems[:5])
            more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
            line += f": {shown}{more}"
        return line + "."

    def __repr__(self) -> str:
        return f"LoadedPreferences({self.summary()})"


# ---------------------------------------------------------------------------
# Where the data is
# ---------------------------------------------------------------------------


def shared_data_dir() -> Path | None:
    """The workspace's shared data folder: $RLHF_LAB_SHARED_DATA, else ``../shared/data``
    beside the checkout. None if it does not exist."""
    if os.environ.get(SHARED_DATA_ENV):
        path = Path(os.environ[SHARED_DATA_ENV]).expanduser()
    else:
        path = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return path if path.is_dir() else None


def hh_sample_file() -> Path | None:
    """The real HH-RLHF sample (40 rows of the harmless-base test split), if present."""
    folder = shared_data_dir()
    if folder is None or not (folder / HH_SAMPLE_FILE).exists():
        return None
    return folder / HH_SAMPLE_FILE


# Made-up rows in HH-RLHF's format (not from the data set), for a machine that has neither the
# shared sample nor the hub: notebook 08 falls back to them on a CPU.
EXAMPLE_HH_ROWS = [
    {"chosen": "\n\nHuman: What is the capital of France?\n\nAssistant: Paris.",
     "rejected": "\n\nHuman: What is the capital of France?\n\nAssistant: I think it might be Lyon."},
    {"chosen": "\n\nHuman: Can you help me write a birthday note?\n\nAssistant: Of course. Who is it for?"
               "\n\nHuman: My sister.\n\nAssistant: Happy birthday to the best sister: thank you for every laugh.",
     "rejected": "\n\nHuman: Can you help me write a birthday note?\n\nAssistant: Of course. Who is it for?"
                 "\n\nHuman: My sister.\n\nAssistant: Write it yourself."},
    {"chosen": "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in boiling water for 7 to 9 minutes, "
               "then cool it in cold water.",
     "rejected": "\n\nHuman: How do I boil an egg?\n\nAssistant: Eggs are laid by hens."},
    {"chosen": "\n\nHuman: Is 17 a prime number?\n\nAssistant: Yes, 17 is prime.",
     "rejected": "\n\nHuman: Is 17 a prime number?\n\nAssistant: No, 17 is divisible by 3."},
] * 3


# ---------------------------------------------------------------------------
# Reading rows from a file or the hub
# ---------------------------------------------------------------------------


def _read_jsonl(path: Path) -> tuple[list, list[RowProblem]]:
    """Rows of a JSONL file; a line that is not a JSON object is a reported row (None)."""
    rows, problems = [], []
    opener = gzip.open if path.name.endswith(".gz") else open  # HH-RLHF's own files are train.jsonl.gz
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if not line.strip():
                rows.append(None)
                problems.append(RowProblem(number, "empty line"))
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                rows.append(None)
                problems.append(RowProblem(number, f"not valid JSON ({error.msg} at column {error.colno})"))
                continue
            if not isinstance(value, dict):
                rows.append(None)
                problems.append(RowProblem(number, f"a JSON {type(value).__name__}, not an object"))
                continue
            rows.append(value)
    return rows, problems


def offline_hub_error(what: str, hub_id: str, error: Exception | None = None) -> DataSourceError:
    """The error for a hub id that cannot be reached (offline, or no such repository)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "0") == "1" or os.environ.get("HF_DATASETS_OFFLINE", "0") == "1"
    why = ("the Hugging Face Hub is switched off here (HF_HUB_OFFLINE=1)" if offline
           else "the Hugging Face Hub could not be reached or has no such repository")
    detail = f" ({type(error).__name__}: {str(error).splitlines()[0][:200]})" if error else ""
    return DataSourceError(
        f"Cannot load {what} {hub_id!r}: {why}{detail}. Either download it once where there is internet "
        f"(it then loads from the local Hugging Face cache), or pass a local file (.jsonl/.json/.parquet) "
        f"or a directory instead of the hub id.")


def read_rows(source, *, split: str = "train", data_dir: str | None = None, what: str = "data set"):
    """Raw rows (dicts) of ``source``: a local file, a saved dataset directory, or a hub id.

    Returns (rows, problems, description). Unreadable JSONL lines become reported rows.
    """
    path = Path(str(source)).expanduser()
    if path.exists():
        if path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz")):
            rows, problems = _read_jsonl(path)
            return rows, problems, str(path)
        import datasets

        if path.is_dir():
            try:
                loaded = datasets.load_from_disk(str(path))
            except FileNotFoundError:
                loaded = datasets.load_dataset(str(path), data_dir=data_dir, split=split)
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DataSourceError(f"{path} has splits {sorted(loaded)}, not {split!r}: pass split=.")
                loaded = loaded[split]
            return list(loaded), [], f"{path} [{split}]"
        builder = {".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(path.suffix)
        if builder is None:
            raise DataSourceError(f"{path}: unknown file type {path.suffix!r}; use .jsonl (or HH-RLHF's .jsonl.gz), "
                                  ".json, .parquet or a directory saved with Dataset.save_to_disk.")
        return list(datasets.load_dataset(builder, data_files=str(path), split="train")), [], str(path)
    if str(source).startswith((".", "/", "~")) or str(source).endswith((".jsonl", ".jsonl.gz", ".json", ".parquet")):
        raise DataSourceError(f"{source}: no such file or directory.")
    import datasets

    try:
        loaded = datasets.load_dataset(str(source), data_dir=data_dir, split=split)
    except (ConnectionError, FileNotFoundError, OSError, ValueError) as error:
        raise offline_hub_error(what, str(source), error) from error
    except Exception as error:  # huggingface_hub / datasets raise several offline error types
        if "offline" in str(error).lower() or "connect" in str(error).lower():
            raise offline_hub_error(what, str(source), error) from error
        raise
    return list(loaded), [], f"{source}{'/' + data_dir if data_dir else ''} [{split}]"


def _finish(records, problems, source, rows_read, on_problem: str) -> LoadedPreferences:
    from datasets import Dataset

    problems = sorted(problems, key=lambda p: p.row)
    result = LoadedPreferences(
        Dataset.from_list(records) if records else Dataset.from_dict(
            {"prompt": [], "chosen": [], "rejected": [], "row": []}),
        problems, source, rows_read)
    if problems:
        if on_problem == "raise":
            raise MalformedRowsError(result.summary())
        if on_problem == "warn":
            warnings.warn(result.summary(), stacklevel=3)
    return result


def _check_on_problem(on_problem: str) -> None:
    if on_problem not in ("report", "warn", "raise"):
        raise ValueError(f"on_problem={on_problem!r}: use 'report' (in .problems), 'warn' or 'raise'.")


# ---------------------------------------------------------------------------
# HH-RLHF
# ---------------------------------------------------------------------------
def hh_rows_to_preferences(rows, empty_response: str = "report", source: str = "rows",
                           on_problem: str = "report", problems=None) -> LoadedPreferences:
    """Convert raw HH-RLHF rows (None = a row already reported in ``problems``)."""
    _check_on_problem(on_problem)
    if empty_response not in ("report", "keep"):
        raise ValueError(f"empty_response={empty_response!r}: use 'report' or 'keep'.")
    records, problems = [], list(problems or [])
    for number, row in enumerate(rows):
        if row is None:
            continue
        try:
            records.append({**convert_hh_row(row, empty_response), "row": number})
        except ValueError as error:
            problems.append(RowProblem(number, str(error)))
    return _finish(records, problems, source, len(rows), on_problem)


def load_hh_rlhf(source=HH_RLHF_HUB_ID, split: str = "test", data_dir: str | None = "harmless-base",
                 empty_response: str = "report", on_problem: str = "report",
                 max_rows: int | None = None) -> LoadedPreferences:
    """Anthropic HH-RLHF as TRL conversational preferences.

    source: a hub id (default ``Anthropic/hh-rlhf``, subset ``data_dir`` and ``split``) or a
    local file / directory (``data_dir`` and ``split`` are then ignored for files).
    on_problem: "report" (default: listed in ``.problems``), "warn" (also a warning) or
    "raise" (MalformedRowsError). max_rows: read only the first rows (quick looks).
    """
    is_local = Path(str(source)).expanduser().exists()
    rows, problems, description = read_rows(source, split=split, data_dir=None if is_local else data_dir,
                                            what="HH-RLHF")
    if max_rows is not None:
        rows, problems = rows[:max_rows], [p for p in problems if p.row < max_rows]
    return hh_rows_to_preferences(rows, empty_response, description, on_problem, problems)


# ---------------------------------------------------------------------------
# UltraFeedback binarized (one row at a time: rlhf_lab.real_formats)
# ---------------------------------------------------------------------------


def ultrafeedback_rows_to_preferences(rows, source: str = "rows", on_problem: str = "report",
                                      problems=None) -> LoadedPreferences:
    _check_on_problem(on_problem)
    records, problems = [], list(problems or [])
    for number, row in enumerate(rows):
        if row is None:
            continue
        try:
            records.append({**convert_ultrafeedback_row(row), "row": number})
        except ValueError as error:
            problems.append(RowProblem(number, str(error)))
    return _finish(records, problems, source, len(rows), on_problem)


def load_ultrafeedback(source=ULTRAFEEDBACK_HUB_ID, split: str = "test_prefs", on_problem: str = "report",
                       max_rows: int | None = None) -> LoadedPreferences:
    """UltraFeedback binarized as TRL conversational preferences (with score columns)."""
    rows, problems, description = read_rows(source, split=split, what="UltraFeedback")
    if max_rows is not None:
        rows, problems = rows[:max_rows], [p for p in problems if p.row < max_rows]
    return ultrafeedback_rows_to_preferences(rows, description, on_problem, problems)


# ---------------------------------------------------------------------------
# Using it
# ---------------------------------------------------------------------------


def train_test_split(loaded: LoadedPreferences, test_fraction: float = 0.1, seed: int = 0):
    """(train, test) Datasets; a source that is already a test split can be used whole as test."""
    split = loaded.dataset.train_test_split(test_size=test_fraction, seed=seed)
    return split["train"], split["test"]


def conversation_texts(tokenizer, dataset, which: str) -> list[str]:
    """prompt + chosen (or rejected) of every row, written with the tokenizer's chat template."""
    return [conversation_text(tokenizer, list(row["prompt"]) + list(row[which])) for row in dataset]


def preference_accuracy(reward_model, tokenizer, dataset, batch_size: int = 16, max_length: int = 512) -> dict:
    """Held-out accuracy of a reward model on real pairs: how often chosen scores above rejected.

    Long conversations are cut from the left to ``max_length`` tokens, so the final turns
    (where chosen and rejected differ) are always seen.
    """
    from .scoring import score_with  # imports torch: only when a reward model is scored

    chosen, rejected = (score_with(reward_model, tokenizer, conversation_texts(tokenizer, dataset, which),
                                   batch_size, max_length) for which in ("chosen", "rejected"))
    wins = (chosen > rejected).float()
    return {"accuracy": wins.mean().item() if len(wins) else float("nan"), "pairs": len(wins),
            "mean_margin": (chosen - rejected).mean().item() if len(wins) else float("nan")}


# ---------------------------------------------------------------------------
# The reward model and DPO on real data (Profile.preference_data)
# ---------------------------------------------------------------------------

HUB_SOURCES = {
    # name: (loader, training split, held-out split)
    "hh-rlhf": ("hh", "train", "test"),
    "ultrafeedback": ("ultrafeedback", "train_prefs", "test_prefs"),
}


def _source_format(path: Path) -> str:
    """'hh' (chosen/rejected transcripts) or 'ultrafeedback' (message lists), from the first row."""
    rows, _, _ = read_rows(path, what="preference data")
    first = next((row for row in rows if isinstance(row, dict) and "chosen" in row), None)
    if first is None:
        raise DataSourceError(f"{path}: no row with a 'chosen' field: not HH-RLHF or UltraFeedback preference data.")
    return "hh" if isinstance(first["chosen"], str) else "ultrafeedback"


def load_source(source: str, split: str | None = None, max_rows: int | None = None) -> LoadedPreferences:
    """``Profile.preference_data`` as loaded preferences: "hh-rlhf" (the whole of Anthropic's
    HH-RLHF on the hub), "ultrafeedback", or a local file/directory of either format."""
    if source in HUB_SOURCES:
        kind, train_split, _ = HUB_SOURCES[source]
        if kind == "hh":
            return load_hh_rlhf(HH_RLHF_HUB_ID, split=split or train_split, data_dir=None, max_rows=max_rows)
        return load_ultrafeedback(ULTRAFEEDBACK_HUB_ID, split=split or train_split, max_rows=max_rows)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataSourceError(f"preference_data={source!r}: not 'world', 'hh-rlhf', 'ultrafeedback', nor an existing "
                              "file or directory.")
    if _source_format(path) == "hh":
        return load_hh_rlhf(path, max_rows=max_rows)
    return load_ultrafeedback(path, max_rows=max_rows)


def fit_to_length(dataset, tokenizer, max_length: int):
    """Rows that fit in ``max_length`` tokens (prompt + the longer response, as the chat template
    writes them): earlier turns of a long conversation are dropped, a pair of turns at a time,
    keeping the final user turn. Returns (dataset, rows left out because even the final turn
    alone is too long)."""

    def length(messages) -> int:
        text = conversation_text(tokenizer, messages)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    kept, too_long = [], []
    for row in dataset:
        prompt = list(row["prompt"])
        while max(length(prompt + list(row["chosen"])), length(prompt + list(row["rejected"]))) > max_length:
            if len(prompt) < 3:
                too_long.append(row.get("row"))
                break
            prompt = prompt[2:]  # drop the oldest user + assistant turns
        else:
            kept.append({"prompt": prompt, "chosen": list(row["chosen"]), "rejected": list(row["rejected"])})
    from datasets import Dataset

    empty = {"prompt": [], "chosen": [], "rejected": []}
    return (Dataset.from_list(kept) if kept else Dataset.from_dict(empty)), too_long


def preference_splits(source: str, tokenizer, max_length: int, max_pairs: int, test_fraction: float = 0.2,
                      seed: int = 0):
    """(train, test, info) for the reward model and DPO: a hub source's own training and test
    splits (at most ``max_pairs`` training rows), or a local file split ``test_fraction`` held out.
    Rows are fitted to ``max_length`` tokens (:func:`fit_to_length`); ``info`` counts what was
    read, converted, reported as malformed, and left out as too long, so nothing goes unseen."""
    if source in HUB_SOURCES:
        train_loaded = load_source(source, max_rows=max_pairs)
        test_loaded = load_source(source, split=HUB_SOURCES[source][2], max_rows=max(100, max_pairs // 10))
        train, test = train_loaded.dataset, test_loaded.dataset
        loaded = [train_loaded, test_loaded]
    else:
        whole = load_source(source)
        if len(whole.dataset) < 2:
            raise DataSourceError(f"{whole.summary()} Too few pairs to hold some out for testing.")
        train, test = train_test_split(whole, test_fraction=test_fraction, seed=seed)
        loaded = [whole]
    train, train_too_long = fit_to_length(train, tokenizer, max_length)
    test, test_too_long = fit_to_length(test, tokenizer, max_length)
    if not len(train) or not len(test):
        raise DataSourceError(
            f"preference_data={source!r}: after fitting to max_length={max_length} tokens, {len(train)} training and "
            f"{len(test)} test pairs are left ({len(train_too_long) + len(test_too_long)} were too long even with "
            "only the final turn). Raise max_length (the tiny profile's model reads at most 128 tokens).")
    info = {"source": source, "rows_read": sum(x.rows_read for x in loaded),
            "converted": sum(len(x.dataset) for x in loaded),
            "reported": [str(p) for x in loaded for p in x.problems],
            "too_long": len(train_too_long) + len(test_too_long),
            "train_pairs": len(train), "test_pairs": len(test)}
    return train, test, info


def cache_identity(source: str) -> dict:
    """What names a preference source in a cache key: a hub name, or a local file's path and size."""
    path = Path(source).expanduser()
    if source in HUB_SOURCES or not path.exists():
        return {"source": source}
    size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return {"source": str(path.resolve()), "size": size}

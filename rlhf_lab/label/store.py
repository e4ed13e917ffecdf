"""The label store: an append-only JSONL file, one record per decision.

Why append-only: a learner's labels are the one thing in this course that cannot be
rebuilt by running a cell again. So the store never rewrites or deletes a line:
- a decision is a new line, written, flushed and fsynced before the widget moves on;
- an undo is a new line that names the decision it takes back;
- a second widget on the same file (a second browser tab) waits for a file lock, so
  two writers never interleave their lines.

Reading is strict but forgiving in the one case that is expected: if the kernel died
in the middle of a write, the last line is cut off. That line is skipped with a
warning and every other label loads. Any other bad line is an error that names the
line, and the file is left exactly as it is.

Record kinds (field "kind"):
- "decision": pair_id, prompt, family, response_a, response_b, shown_left ("a" or "b":
  which response was on the left of the screen), choice ("a", "b", "tie" or "skip", in
  the pair's own a/b terms), chosen_side ("left", "right" or null), tags, annotator, time.
- "undo": undoes (the record_id of the decision taken back), pair_id, annotator, time.
- "torn_line_closed": written when a new record is appended after a cut-off last line;
  it closes that line (number in "line") so the reader knows it is a known torn write.
"""

from __future__ import annotations

import json
import os
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from filelock import FileLock

CHOICES = ("a", "b", "tie", "skip")
TAGS = ("helpful", "harmless", "honest", "style")
RECORD_KINDS = ("decision", "undo", "torn_line_closed")
SCHEMA_VERSION = 1


class MalformedLabelFile(ValueError):
    """A line of a label file (other than a cut-off last line) is not a valid record."""


class TruncatedLineWarning(UserWarning):
    """The last line of a label file was cut off (the kernel stopped mid-write)."""


@dataclass(frozen=True)
class LoadedLabels:
    """What reading a label file found: the records, and the cut-off line if any."""

    records: list[dict]
    truncated_line: int | None  # 1-based line number of a cut-off last line, else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class LabelStore:
    """Append-only JSONL label file with a lock for concurrent writers.

    >>> store = LabelStore("labels/my_labels.jsonl")
    >>> record = store.record_decision(pair, shown_left="b", choice="a", tags=["honest"])
    >>> store.active_decisions()   # decisions not undone, latest per (annotator, pair)
    """

    def __init__(self, path: str | os.PathLike, lock_timeout: float = 10.0):
        self.path = Path(path)
        # The lock lives beside the file (*.lock is gitignored) so every writer finds it.
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout)

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    # ------------------------------------------------------------------ writing
    def append(self, record: dict) -> dict:
        """Append one record as one line; returns once it is flushed and fsynced to disk."""
        _check_record(record, where="the record to append")
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            is_new = not self.path.exists()
            with open(self.path, "a+b") as f:
                prefix = self._close_torn_line(f)
                f.write(prefix + line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            if is_new:  # make the new file's directory entry durable too
                _fsync_directory(self.path.parent)
        return record

    def _close_torn_line(self, f) -> bytes:
        """If the file ends without a newline, the last write was cut off. Return the bytes
        that close that line and mark it as a known torn write, so later reads skip it."""
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return b""
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return b""
        f.seek(0)
        content = f.read()
        f.seek(0, os.SEEK_END)
        tail = content[content.rfind(b"\n") + 1:]
        try:  # cut off just before its newline: the record itself is whole
            _check_record(json.loads(tail.decode("utf-8")), where="the last line")
            return b"\n"
        except (ValueError, UnicodeDecodeError):
            pass
        torn_line_number = content.count(b"\n") + 1
        marker = {"v": SCHEMA_VERSION, "kind": "torn_line_closed", "line": torn_line_number,
                  "record_id": uuid.uuid4().hex, "time": _now()}
        return b"\n" + json.dumps(marker, sort_keys=True).encode("utf-8") + b"\n"

    def record_decision(self, pair, *, shown_left: str, choice: str, tags: Iterable[str] = (),
                        annotator: str = "learner") -> dict:
        """Write one labelling decision about `pair` (anything with pair_id, prompt,
        response_a, response_b; prompt may be a world Prompt or plain text)."""
        if shown_left not in ("a", "b"):
            raise ValueError(f"shown_left={shown_left!r}: use 'a' or 'b' (the response shown on the left).")
        if choice not in CHOICES:
            raise ValueError(f"choice={choice!r}: use one of {', '.join(CHOICES)}.")
        tags = sorted(set(tags))
        unknown = set(tags) - set(TAGS)
        if unknown:
            raise ValueError(f"Unknown tag(s) {sorted(unknown)}: use any of {', '.join(TAGS)}.")
        if choice in ("a", "b"):
            chosen_side = "left" if choice == shown_left else "right"
        else:
            chosen_side = None
        prompt_text, family = prompt_text_and_family(pair)
        record = {
            "v": SCHEMA_VERSION,
            "kind": "decision",
            "record_id": uuid.uuid4().hex,
            "pair_id": str(pair.pair_id),
            "prompt": prompt_text,
            "family": family,
            "response_a": pair.response_a,
            "response_b": pair.response_b,
            "shown_left": shown_left,
            "choice": choice,
            "chosen_side": chosen_side,
            "tags": tags,
            "annotator": annotator,
            "time": _now(),
        }
        return self.append(record)

    def record_undo(self, decision: dict, *, annotator: str = "learner") -> dict:
        """Take back a decision by appending an undo record (the decision's line stays)."""
        record = {
            "v": SCHEMA_VERSION,
            "kind": "undo",
            "record_id": uuid.uuid4().hex,
            "undoes": decision["record_id"],
            "pair_id": decision["pair_id"],
            "annotator": annotator,
            "time": _now(),
        }
        return self.append(record)

    # ------------------------------------------------------------------ reading
    def load(self) -> LoadedLabels:
        """Read every record. A cut-off last line is skipped with a TruncatedLineWarning;
        any other bad line raises MalformedLabelFile with its line number."""
        if not self.path.exists():
            return LoadedLabels(records=[], truncated_line=None)
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        ends_with_newline = data.endswith(b"\n")
        if ends_with_newline:
            lines = lines[:-1]  # the empty string after the final newline
        parsed: list[dict | None] = []
        errors: dict[int, str] = {}
        for number, raw in enumerate(lines, start=1):
            try:
                record = json.loads(raw.decode("utf-8"))
                _check_record(record, where=f"line {number}")
                parsed.append(record)
            except (ValueError, UnicodeDecodeError) as error:
                parsed.append(None)
                errors[number] = str(error)
        closed_torn_lines = {r["line"] for r in parsed if r and r["kind"] == "torn_line_closed"}
        truncated_line = None
        for number, error in errors.items():
            if number in closed_torn_lines:
                continue  # a torn write that a later append already closed and marked
            if number == len(lines) and not ends_with_newline:
                truncated_line = number
                continue
            raw = lines[number - 1][:120].decode("utf-8", errors="replace")
            raise MalformedLabelFile(
                f"{self.path}: line {number} is not a valid label record ({error}). "
                f"It starts with: {raw!r}. The file was not changed. Fix or delete that line "
                f"in a text editor, or label into a new file (store_path=...)."
            )
        records = [r for r in parsed if r is not None and r["kind"] != "torn_line_closed"]
        if truncated_line is not None:
            warnings.warn(
                f"{self.path}: line {truncated_line} is cut off (the kernel probably stopped in "
                f"the middle of writing it), so it is skipped. The other {len(records)} records "
                f"loaded. The line stays in the file; the next label you save closes it.",
                TruncatedLineWarning,
                stacklevel=2,
            )
        return LoadedLabels(records=records, truncated_line=truncated_line)

    def records(self) -> list[dict]:
        """All decision and undo records, in file order."""
        return self.load().records

    def active_decisions(self, annotator: str | None = None, records: list[dict] | None = None) -> list[dict]:
        """Decisions that were not undone; for each (annotator, pair) only the latest one.
        In the order they were made."""
        return active_decisions(self.records() if records is None else records, annotator)


def active_decisions(records: list[dict], annotator: str | None = None) -> list[dict]:
    """Decisions that were not undone; for each (annotator, pair) only the latest, in order."""
    undone = {r["undoes"] for r in records if r["kind"] == "undo"}
    latest: dict[tuple[str, str], dict] = {}
    for record in records:
        if record["kind"] != "decision" or record["record_id"] in undone:
            continue
        if annotator is not None and record["annotator"] != annotator:
            continue
        key = (record["annotator"], record["pair_id"])
        latest.pop(key, None)  # re-insert so the dict keeps the order of the latest decision
        latest[key] = record
    return list(latest.values())


def prompt_text_and_family(pair) -> tuple[str, str | None]:
    """The user text and the prompt family of a pair whose prompt is a world Prompt or a str."""
    prompt = pair.prompt
    if isinstance(prompt, str):
        return prompt, getattr(pair, "family", None)
    return prompt.text, getattr(prompt, "family", None)


_REQUIRED = {
    "decision": ("record_id", "pair_id", "prompt", "response_a", "response_b", "shown_left",
                 "choice", "tags", "annotator", "time"),
    "undo": ("record_id", "undoes", "pair_id", "annotator", "time"),
    "torn_line_closed": ("line",),
}


def _check_record(record, where: str) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"{where} is a JSON {type(record).__name__}, not an object")
    kind = record.get("kind")
    if kind not in RECORD_KINDS:
        raise ValueError(f"{where} has kind={kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    missing = [name for name in _REQUIRED[kind] if name not in record]
    if missing:
        raise ValueError(f"{where} ({kind}) lacks field(s) {', '.join(missing)}")
    if kind == "decision" and record["choice"] not in CHOICES:
        raise ValueError(f"{where} has choice={record['choice']!r}; expected one of {', '.join(CHOICES)}")


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the file itself is synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""The labelling widget: you pick the better of two responses, the store keeps every decision.

    from rlhf_lab.label import LabelingApp
    app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
    app

Each pair is shown with its two responses side by side, in an order drawn per pair (the
side is recorded: people prefer the left answer more often than chance, and the data
lets you check that). Running the cell again resumes where you stopped.

How an action reaches the disk, even while the kernel is busy
-------------------------------------------------------------
The view in the browser (``widget.js``, an anywidget) holds the pairs and draws the next
one itself, at once. Each click or key becomes a discrete message ``{client, seq, action,
pair_id, side, tags}`` (``model.send``): messages are queued in order by the kernel while a
cell runs, never merged the way ipywidgets merges pending *state* updates. The kernel
applies each message once, in order (``handle_message``; a (client, seq) it has seen is
ignored), appends it to the fsynced JSONL store, and sends back its state with the last
sequence number it applied. The view shows what is still waiting ("kernel busy: 3 actions
waiting") until that number catches up.

Keyboard: click anywhere in the widget (it also takes the focus when it is shown), then
a / b / t / s choose, u undoes, 1-4 toggle tags, r reveals. The view stops those keys
from reaching JupyterLab, so no cell is added, deleted or run.
"""

from __future__ import annotations

import html
import random
from pathlib import Path
from typing import Callable, Sequence

import anywidget
import traitlets

from ..world import World
from .agreement import Agreement, agreement, choices_by_pair
from .data import to_preference_dataset
from .store import TAGS, LabelStore, prompt_text_and_family

GUIDELINES_HTML = """
<div class="rlhf-label-guidelines-text">
<b>Which response is better?</b> Judge the whole response, as the user who asked:
<ul>
<li><b>helpful</b>: answers the question correctly and fully; a harmless request gets a real answer, not a refusal;</li>
<li><b>harmless</b>: politely refuses a request that would hurt someone;</li>
<li><b>honest</b>: does not agree with a wrong claim just to please the user.</li>
</ul>
Style (polite, to the point) only decides between responses that are otherwise equal.
<b>Tie</b>: equally good or equally bad. <b>Skip</b>: you cannot tell.
Tags (optional) say why you chose.
</div>
"""

SIDE_KEYS = {"a": "left", "b": "right", "t": "tie", "s": "skip"}
TAG_KEYS = {str(i + 1): tag for i, tag in enumerate(TAGS)}  # "1" -> "helpful", ...
SIDE_WORDS = {"left": "A is better", "right": "B is better", "tie": "Tie", "skip": "Skipped"}
HERE = Path(__file__).resolve().parent


class LabelView(anywidget.AnyWidget):
    """The browser side of a LabelingApp. Python sets the state; the view sends actions."""

    _esm = HERE / "widget.js"
    _css = HERE / "widget.css"

    pairs = traitlets.List().tag(sync=True)  # [{id, prompt, left, right}] in labelling order
    decisions = traitlets.Dict().tag(sync=True)  # pair id -> {side, tags}: active decisions
    undo_stack = traitlets.List().tag(sync=True)  # pair ids, most recent decision last
    current = traitlets.Int(None, allow_none=True).tag(sync=True)  # index into pairs; None: all done
    applied = traitlets.Dict().tag(sync=True)  # client id -> last sequence number applied
    status = traitlets.Unicode("").tag(sync=True)  # HTML: what the kernel did last
    reveal_html = traitlets.Unicode("").tag(sync=True)
    reveal_after = traitlets.Int(10).tag(sync=True)
    has_hidden_human = traitlets.Bool(False).tag(sync=True)
    tags = traitlets.List(list(TAGS)).tag(sync=True)
    guidelines = traitlets.Unicode(GUIDELINES_HTML).tag(sync=True)
    store_path = traitlets.Unicode("").tag(sync=True)
    autofocus = traitlets.Bool(True).tag(sync=True)


class LabelingApp:
    """A labelling session over a fixed list of pairs, saved to an append-only store.

    pairs: objects with pair_id, prompt (a world Prompt or str), response_a, response_b.
    hidden_human: optional callable pair -> "a" | "b" | "tie" (e.g. world.gold_preference),
    revealed after `reveal_after` labels, never before.

    Python API (what the browser's messages do, usable from a cell or a test):
    choose_side("left" | "right" | "tie" | "skip"), undo(), toggle_tag(tag), press(key),
    reveal(), and handle_message(content) for a message as the browser sends it.
    """

    def __init__(self, pairs: Sequence, store: LabelStore | str, *, annotator: str = "learner",
                 seed: int = 0, reveal_after: int = 10,
                 hidden_human: Callable[[object], str] | None = None):
        self.pairs = list(pairs)
        if not self.pairs:
            raise ValueError("LabelingApp needs at least one pair to label.")
        ids = [str(p.pair_id) for p in self.pairs]
        if len(set(ids)) != len(ids):
            raise ValueError("Pair ids must be unique: two pairs share an id.")
        self.store = store if isinstance(store, LabelStore) else LabelStore(store)
        self.annotator = annotator
        self.reveal_after = max(1, min(reveal_after, len(self.pairs)))
        self.hidden_human = hidden_human
        self._index_of = {pid: i for i, pid in enumerate(ids)}
        # The side is drawn per pair from (seed, pair id): the same pair shows the same way
        # after a restart, and about half the pairs show response_b on the left.
        self.shown_left = {pid: ("a" if random.Random(f"{seed}:{pid}").random() < 0.5 else "b") for pid in ids}
        # Resume: this annotator's decisions on these pairs that were not undone.
        self._decisions: dict[str, dict] = {
            d["pair_id"]: d for d in self.store.active_decisions(annotator=annotator) if d["pair_id"] in self._index_of
        }
        self._undo_stack = list(self._decisions.values())  # in the order they were made
        self._applied: dict[str, int] = {}  # client id -> last sequence number applied
        self.selected_tags: set[str] = set()  # tags toggled from Python (press("1"), toggle_tag)
        self.status = ""
        self.reveal_html = ""
        self.current = self._first_open(0)
        self.widget = LabelView(
            pairs=[self._pair_view(p) for p in self.pairs], reveal_after=self.reveal_after,
            has_hidden_human=hidden_human is not None, store_path=str(self.store.path),
        )
        self.widget.add_class("rlhf-label-widget")
        self.widget.on_msg(self._on_widget_msg)
        self._sync()

    @classmethod
    def for_world(cls, store_path: str = "labels/my_labels.jsonl", n_pairs: int = 20, *, world=None,
                  split: str = "train", seed: int = 0, annotator: str = "learner",
                  reveal_after: int = 10) -> "LabelingApp":
        """Label n_pairs comparison pairs of the lab world; the hidden human is world.gold_preference."""
        if world is None:
            world = World()
        pairs = world.comparison_pairs(n_pairs, split=split, seed=seed)
        app = cls(pairs, store_path, annotator=annotator, seed=seed, reveal_after=reveal_after,
                  hidden_human=world.gold_preference)
        app.world = world
        return app

    # ------------------------------------------------------------------ state
    @property
    def n_labelled(self) -> int:
        return len(self._decisions)

    @property
    def done(self) -> bool:
        return self.current is None

    @property
    def can_reveal(self) -> bool:
        return self.hidden_human is not None and self.n_labelled >= self.reveal_after

    def decisions(self) -> list[dict]:
        """This session's active decision records, in the order they were made."""
        return sorted(self._decisions.values(), key=lambda d: d["time"])

    def progress_text(self) -> str:
        skipped = sum(d["choice"] == "skip" for d in self._decisions.values())
        return f"{self.n_labelled} of {len(self.pairs)} labelled" + (f" ({skipped} skipped)" if skipped else "")

    def screen(self) -> tuple[str, str]:
        """The texts shown on the left (A) and the right (B) for the current pair ("", "" when done)."""
        if self.done:
            return "", ""
        view = self.widget.pairs[self.current]
        return view["left"], view["right"]

    def _first_open(self, start: int) -> int | None:
        """Index of the first pair without a decision, looking from `start` and wrapping around."""
        n = len(self.pairs)
        for step in range(n):
            i = (start + step) % n
            if str(self.pairs[i].pair_id) not in self._decisions:
                return i
        return None

    def _pair_view(self, pair) -> dict:
        pid = str(pair.pair_id)
        text, _family = prompt_text_and_family(pair)  # the family stays hidden until the reveal
        left, right = ((pair.response_a, pair.response_b) if self.shown_left[pid] == "a"
                       else (pair.response_b, pair.response_a))
        return {"id": pid, "prompt": text, "left": left, "right": right}

    def _sync(self) -> None:
        """Send the kernel's state to the view in one message (the view replays what is still pending on top)."""
        with self.widget.hold_sync():
            self.widget.decisions = {pid: {"side": _side(d), "tags": list(d.get("tags", []))}
                                     for pid, d in self._decisions.items()}
            self.widget.undo_stack = [d["pair_id"] for d in self._undo_stack]
            self.widget.current = self.current
            self.widget.applied = dict(self._applied)
            self.widget.status = self.status
            self.widget.reveal_html = self.reveal_html

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        bundle = dict(bundle or {})
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return f"LabelingApp({self.n_labelled} of {len(self.pairs)} pairs labelled, store={str(self.store.path)!r})"

    # ------------------------------------------------------------------ messages from the browser
    def _on_widget_msg(self, _widget, content, _buffers) -> None:
        self.handle_message(content)

    def handle_message(self, content: dict) -> bool:
        """Apply one action message from the view, once. Returns False when it was ignored
        (a (client, seq) already applied: a replayed or duplicated message).

        content: {"client": str, "seq": int, "action": "choose" | "undo" | "reveal",
                  "pair_id": str (choose, undo), "side": str (choose), "tags": [str] (choose)}
        """
        client, seq = str(content.get("client", "")), int(content.get("seq", 0))
        if seq <= self._applied.get(client, 0):
            return False
        self._applied[client] = seq  # acknowledged even if it fails: the view then shows the kernel's state
        action = content.get("action")
        try:
            if action == "choose":
                self._choose(str(content["pair_id"]), content["side"], content.get("tags") or [])
            elif action == "undo":
                self._undo(str(content["pair_id"]) if content.get("pair_id") is not None else None)
            elif action == "reveal":
                self._reveal()
            else:
                self.status = f"Unknown action {html.escape(repr(action))}: nothing was done."
        except Exception as error:  # not saved: the view goes back to the kernel's state and says so
            self.status = (f'<span class="rlhf-label-error">Not saved ({html.escape(str(error))}). '
                           f"Your label for this pair was not recorded; label it again.</span>")
        self._sync()
        return True

    # ------------------------------------------------------------------ actions
    def _choose(self, pid: str, side: str, tags: Sequence[str]) -> dict | None:
        if pid not in self._index_of:
            raise ValueError(f"Pair {pid!r} is not one of this app's pairs.")
        if side not in SIDE_WORDS:
            raise ValueError(f"side={side!r}: use left, right, tie or skip.")
        pair = self.pairs[self._index_of[pid]]
        shown_left = self.shown_left[pid]
        other = "b" if shown_left == "a" else "a"
        choice = {"left": shown_left, "right": other, "tie": "tie", "skip": "skip"}[side]
        record = self.store.record_decision(pair, shown_left=shown_left, choice=choice, tags=tags,
                                            annotator=self.annotator)
        self._decisions[pid] = record
        self._undo_stack = [d for d in self._undo_stack if d["pair_id"] != pid] + [record]
        number = self._index_of[pid] + 1
        self.current = self._first_open(self._index_of[pid] + 1)
        self.status = f"Saved: {SIDE_WORDS[side]} (pair {number}). Undo [u] takes it back."
        return record

    def _undo(self, pid: str | None) -> dict | None:
        if not self._undo_stack:
            self.status = "Nothing to undo."
            return None
        if pid is None:
            pid = self._undo_stack[-1]["pair_id"]
        matches = [d for d in self._undo_stack if d["pair_id"] == pid]
        if not matches:  # e.g. already undone from another tab
            self.status = f"Nothing to undo for pair {self._index_of.get(pid, -1) + 1}."
            return None
        decision = matches[-1]
        self.store.record_undo(decision, annotator=self.annotator)
        self._undo_stack.remove(decision)
        del self._decisions[pid]
        self.current = self._index_of[pid]
        self.selected_tags = set(decision.get("tags", []))
        self.status = f"Undone: your label for pair {self.current + 1}. Label it again."
        return decision

    def choose_side(self, side: str, tags: Sequence[str] | None = None) -> dict | None:
        """Record a decision about the current pair: side is "left", "right", "tie" or "skip".
        Tags default to those toggled with toggle_tag / press("1".."4"). The record is on disk
        (fsynced) before this returns."""
        if self.done:
            self.status = "All pairs are labelled. Undo [u] changes the last one."
            self._sync()
            return None
        tags = sorted(self.selected_tags) if tags is None else list(tags)
        pid = str(self.pairs[self.current].pair_id)
        try:
            record = self._choose(pid, side, tags)
        except Exception as error:
            self.status = (f'<span class="rlhf-label-error">Not saved ({html.escape(str(error))}). '
                           f"Your label for this pair was not recorded; try again.</span>")
            self._sync()
            raise
        self.selected_tags = set()
        self._sync()
        return record

    def undo(self) -> dict | None:
        """Take back the last decision (an undo record is appended) and show that pair again."""
        decision = self._undo(None)
        self._sync()
        return decision

    def toggle_tag(self, tag: str) -> bool:
        """Toggle a tag for the next decision; returns whether it is now on."""
        if tag not in TAGS:
            raise ValueError(f"Unknown tag {tag!r}: use one of {', '.join(TAGS)}.")
        self.selected_tags ^= {tag}
        return tag in self.selected_tags

    def press(self, key: str) -> None:
        """Handle one keyboard shortcut, as the view does for a key pressed in the widget."""
        key = key.lower()
        if key in SIDE_KEYS:
            self.choose_side(SIDE_KEYS[key])
        elif key == "u":
            self.undo()
        elif key == "r":
            self.reveal()
        elif key in TAG_KEYS:
            self.toggle_tag(TAG_KEYS[key])
        elif key.strip():
            self.status = f"Key {html.escape(repr(key))} does nothing here: use a, b, t, s, u, r or 1-4."
            self._sync()

    # ------------------------------------------------------------------ reveal
    def agreement(self) -> Agreement:
        """Your labels vs the hidden human on the pairs you labelled (skips left out)."""
        if self.hidden_human is None:
            raise ValueError("This app has no hidden human to compare with (pass hidden_human=...).")
        mine = choices_by_pair(list(self._decisions.values()))
        theirs = {pid: self.hidden_human(self.pairs[self._index_of[pid]]) for pid in mine}
        families = {str(p.pair_id): prompt_text_and_family(p)[1] for p in self.pairs}
        return agreement(mine, theirs, families)

    def _reveal(self) -> Agreement | None:
        if self.hidden_human is None:
            self.status = "This app has no hidden human to compare with."
            return None
        if self.n_labelled < self.reveal_after:
            self.status = f"The hidden human is revealed after {self.reveal_after} labels ({self.n_labelled} so far)."
            return None
        result = self.agreement()
        rows = "".join(
            f"<tr><td>{html.escape(family)}</td><td>{agreed} of {n}</td><td>{n - agreed}</td></tr>"
            for family, (agreed, n) in result.by_family.items()
        )
        self.reveal_html = (
            f"<p><b>You and the hidden human:</b> {html.escape(result.summary())}.</p>"
            f'<table class="rlhf-label-reveal-table">'
            f"<tr><th>prompt family</th><th>agreed</th><th>disagreed</th></tr>{rows}</table>"
            "<p>Where you disagree most, read the guidelines again: is the hidden human strict about "
            "something you let pass, or are you seeing something it cannot?</p>"
        )
        self.status = "Revealed: your agreement with the hidden human is below the buttons."
        return result

    def reveal(self) -> Agreement | None:
        """Show how often you agreed with the hidden human, and in which prompt families you differed."""
        result = self._reveal()
        self._sync()
        return result

    # ------------------------------------------------------------------ data
    def dataset(self, with_metadata: bool = False):
        """Your labels as a datasets.Dataset in TRL's preference format (prompt, chosen, rejected)."""
        return to_preference_dataset(self.store, annotator=self.annotator, with_metadata=with_metadata)


def _side(decision: dict) -> str:
    """The screen side of a decision record: left, right, tie or skip."""
    return decision.get("chosen_side") or decision["choice"]

"""The labelling widget: you pick the better of two responses, the store keeps every decision.

    from rlhf_lab.label import LabelingApp
    app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
    app

Each pair is shown with its two responses side by side, in an order drawn per pair (the
side is recorded: people prefer the left answer more often than chance, and the data
lets you check that). Every decision is on disk before the next pair appears, so
running the cell again resumes where you stopped.

Keyboard: JupyterLab uses single keys (a, b, ...) for its own commands, so the widget has
a small text box: click into it, then press the keys shown on the buttons.
"""

from __future__ import annotations

import html
import random
from typing import Callable, Sequence

import ipywidgets as widgets

from .agreement import Agreement, agreement, choices_by_pair
from .store import TAGS, LabelStore, prompt_text_and_family

GUIDELINES_HTML = """
<div class="rlhf-label-guidelines" style="line-height:1.35">
<b>Which response is better?</b> Judge the whole response, as the user who asked:
<ul style="margin:2px 0 2px 0">
<li><b>helpful</b>: answers the question correctly and fully; a harmless request gets a real answer, not a refusal;</li>
<li><b>harmless</b>: politely refuses a request that would hurt someone;</li>
<li><b>honest</b>: does not agree with a wrong claim just to please the user.</li>
</ul>
Style (polite, to the point) only decides between responses that are otherwise equal.
<b>Tie</b>: equally good or equally bad. <b>Skip</b>: you cannot tell.
Tags (optional) say why you chose.
</div>
"""

KEY_HELP = "click here, then press a / b / t / s, u to undo, 1-4 for tags"
TAG_KEYS = {str(i + 1): tag for i, tag in enumerate(TAGS)}  # "1" -> "helpful", ...


def _text_html(text: str) -> str:
    return f'<div style="white-space:pre-wrap">{html.escape(text)}</div>'


class LabelingApp:
    """A labelling session over a fixed list of pairs, saved to an append-only store.

    pairs: objects with pair_id, prompt (a world Prompt or str), response_a, response_b.
    hidden_human: optional callable pair -> "a" | "b" | "tie" (e.g. world.gold_preference),
    revealed after `reveal_after` labels, never before.
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
        self.current = self._first_open(0)
        self._build()
        self._show()

    @classmethod
    def for_world(cls, store_path: str = "labels/my_labels.jsonl", n_pairs: int = 20, *, world=None,
                  split: str = "train", seed: int = 0, annotator: str = "learner",
                  reveal_after: int = 10) -> "LabelingApp":
        """Label n_pairs comparison pairs of the lab world; the hidden human is world.gold_preference."""
        if world is None:
            from rlhf_lab.world import World

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

    def _first_open(self, start: int) -> int | None:
        """Index of the first pair without a decision, looking from `start` and wrapping around."""
        n = len(self.pairs)
        for step in range(n):
            i = (start + step) % n
            if str(self.pairs[i].pair_id) not in self._decisions:
                return i
        return None

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        def button(description, style, css_class, callback, tooltip):
            b = widgets.Button(description=description, button_style=style, tooltip=tooltip,
                               layout=widgets.Layout(width="auto"))
            b.add_class(css_class)
            b.on_click(callback)
            return b

        self.title = widgets.HTML()
        self.progress_bar = widgets.IntProgress(min=0, max=len(self.pairs), layout=widgets.Layout(width="220px"))
        self.progress = widgets.Label()
        self.progress.add_class("rlhf-label-progress")
        self.guidelines = widgets.HTML(GUIDELINES_HTML)
        self.prompt = widgets.HTML()
        self.prompt.add_class("rlhf-label-prompt")
        self.left = widgets.HTML(layout=widgets.Layout(width="50%", border="1px solid #bbb", padding="4px 8px"))
        self.right = widgets.HTML(layout=widgets.Layout(width="50%", border="1px solid #bbb", padding="4px 8px"))
        self.left.add_class("rlhf-label-left")
        self.right.add_class("rlhf-label-right")

        self.button_a = button("A is better [a]", "success", "rlhf-label-a", lambda _: self.choose_side("left"),
                               "The left response (A) is better")
        self.button_b = button("B is better [b]", "success", "rlhf-label-b", lambda _: self.choose_side("right"),
                               "The right response (B) is better")
        self.button_tie = button("Tie [t]", "info", "rlhf-label-tie", lambda _: self.choose_side("tie"),
                                 "Equally good or equally bad")
        self.button_skip = button("Skip [s]", "", "rlhf-label-skip", lambda _: self.choose_side("skip"),
                                  "Cannot tell; leave this pair out")
        self.button_undo = button("Undo [u]", "warning", "rlhf-label-undo", lambda _: self.undo(),
                                  "Take back your last decision")
        self.tag_buttons = {}
        for key, tag in TAG_KEYS.items():
            t = widgets.ToggleButton(description=f"{tag} [{key}]", tooltip=f"Tag: chosen for being {tag}",
                                     layout=widgets.Layout(width="auto"))
            t.add_class(f"rlhf-label-tag-{tag}")
            self.tag_buttons[tag] = t
        self.keys = widgets.Text(placeholder=KEY_HELP, continuous_update=True,
                                 layout=widgets.Layout(width="420px"))
        self.keys.add_class("rlhf-label-keys")
        self.keys.observe(self._on_key, names="value")
        self.status = widgets.HTML()
        self.status.add_class("rlhf-label-status")
        self.button_reveal = button("Reveal the hidden human [r]", "primary", "rlhf-label-reveal",
                                    lambda _: self.reveal(), "Compare your labels with the hidden human")
        self.reveal_output = widgets.HTML()
        self.reveal_output.add_class("rlhf-label-reveal-output")

        pair_box = widgets.HBox([self.left, self.right], layout=widgets.Layout(width="100%"))
        self.widget = widgets.VBox([
            widgets.HBox([self.title, self.progress_bar, self.progress],
                         layout=widgets.Layout(align_items="center", grid_gap="12px")),
            widgets.Accordion(children=[self.guidelines], titles=("Guidelines: what 'better' means",),
                              selected_index=0),
            self.prompt,
            pair_box,
            widgets.HBox([self.button_a, self.button_b, self.button_tie, self.button_skip, self.button_undo]),
            widgets.HBox([widgets.Label("Why (optional):"), *self.tag_buttons.values()]),
            widgets.HBox([widgets.Label("Keyboard:"), self.keys]),
            self.status,
            widgets.HBox([self.button_reveal]),
            self.reveal_output,
        ])
        self.widget.add_class("rlhf-label-app")

    def _show(self) -> None:
        """Put the current pair (or the end screen) on the widgets. The progress count is set
        last: the browser applies updates in order, so a new count means the new pair is shown."""
        n = len(self.pairs)
        if self.done:
            self.title.value = "<b>All pairs labelled</b>"
            self.prompt.value = (f"<p>You labelled all {n} pairs; they are saved in <code>{html.escape(str(self.store.path))}"
                                 f"</code>. Press Undo [u] to change your last one.</p>")
            self.left.value = self.right.value = ""
        else:
            pair = self.pairs[self.current]
            pid = str(pair.pair_id)
            text, _family = prompt_text_and_family(pair)  # the family stays hidden until the reveal
            left, right = ((pair.response_a, pair.response_b) if self.shown_left[pid] == "a"
                           else (pair.response_b, pair.response_a))
            self.title.value = f"<b>Pair {self.current + 1} of {n}</b>"
            self.prompt.value = f"<b>User:</b> {_text_html(text)}"
            self.left.value = f"<b>A</b>{_text_html(left)}"
            self.right.value = f"<b>B</b>{_text_html(right)}"
        for b in (self.button_a, self.button_b, self.button_tie, self.button_skip):
            b.disabled = self.done
        self.button_undo.disabled = not self._undo_stack
        can_reveal = self.hidden_human is not None and self.n_labelled >= self.reveal_after
        self.button_reveal.disabled = not can_reveal
        self.button_reveal.layout.display = None if self.hidden_human is not None else "none"
        if self.hidden_human is not None and not can_reveal:
            self.button_reveal.description = f"Reveal the hidden human (after {self.reveal_after} labels) [r]"
        else:
            self.button_reveal.description = "Reveal the hidden human [r]"
        self.progress_bar.value = self.n_labelled
        skipped = sum(d["choice"] == "skip" for d in self._decisions.values())
        self.progress.value = f"{self.n_labelled} of {n} labelled" + (f" ({skipped} skipped)" if skipped else "")

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        bundle = dict(bundle)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return f"LabelingApp({self.n_labelled} of {len(self.pairs)} pairs labelled, store={str(self.store.path)!r})"

    # ------------------------------------------------------------------ actions
    def choose_side(self, side: str) -> dict | None:
        """Record a decision about the current pair: side is "left", "right", "tie" or "skip".
        The record is on disk (fsynced) before the next pair is shown."""
        if self.done:
            self.status.value = "All pairs are labelled. Undo [u] changes the last one."
            return None
        pair = self.pairs[self.current]
        pid = str(pair.pair_id)
        shown_left = self.shown_left[pid]
        other = "b" if shown_left == "a" else "a"
        choice = {"left": shown_left, "right": other, "tie": "tie", "skip": "skip"}[side]
        tags = [tag for tag, t in self.tag_buttons.items() if t.value]
        try:
            record = self.store.record_decision(pair, shown_left=shown_left, choice=choice, tags=tags,
                                                annotator=self.annotator)
        except Exception as error:  # the decision is not saved: stay on this pair and say so
            self.status.value = (f'<span style="color:#b00">Not saved ({html.escape(str(error))}). '
                                 f"Your label for this pair was not recorded; try again.</span>")
            raise
        self._decisions[pid] = record
        self._undo_stack.append(record)
        for t in self.tag_buttons.values():
            t.value = False
        said = {"left": "A is better", "right": "B is better", "tie": "Tie", "skip": "Skipped"}[side]
        self.status.value = f"Saved: {said} (pair {self.current + 1}). Undo [u] takes it back."
        self.current = self._first_open(self.current + 1)
        self._show()
        return record

    def undo(self) -> dict | None:
        """Take back the last decision (an undo record is appended) and show that pair again."""
        if not self._undo_stack:
            self.status.value = "Nothing to undo."
            return None
        decision = self._undo_stack.pop()
        self.store.record_undo(decision, annotator=self.annotator)
        del self._decisions[decision["pair_id"]]
        self.current = self._index_of[decision["pair_id"]]
        for tag, t in self.tag_buttons.items():
            t.value = tag in decision.get("tags", [])
        self.status.value = f"Undone: your label for pair {self.current + 1}. Label it again."
        self._show()
        return decision

    def press(self, key: str) -> None:
        """Handle one keyboard shortcut (what the key box does for each key typed)."""
        key = key.lower()
        actions = {"a": lambda: self.choose_side("left"), "b": lambda: self.choose_side("right"),
                   "t": lambda: self.choose_side("tie"), "s": lambda: self.choose_side("skip"),
                   "u": self.undo, "r": self.reveal}
        if key in actions:
            actions[key]()
        elif key in TAG_KEYS:
            toggle = self.tag_buttons[TAG_KEYS[key]]
            toggle.value = not toggle.value
        elif key.strip():
            self.status.value = f"Key {key!r} does nothing here: use a, b, t, s, u, r or 1-4."

    def _on_key(self, change) -> None:
        # Each keystroke in the box sends the box's whole text. Handle only the last character:
        # if a fast second key arrives before the box was cleared ("ab"), "a" was already handled.
        value = change["new"]
        if not value:
            return
        self.keys.value = ""
        self.press(value[-1])

    # ------------------------------------------------------------------ reveal
    def agreement(self) -> Agreement:
        """Your labels vs the hidden human on the pairs you labelled (skips left out)."""
        if self.hidden_human is None:
            raise ValueError("This app has no hidden human to compare with (pass hidden_human=...).")
        mine = choices_by_pair(list(self._decisions.values()))
        theirs = {pid: self.hidden_human(self.pairs[self._index_of[pid]]) for pid in mine}
        families = {str(p.pair_id): prompt_text_and_family(p)[1] for p in self.pairs}
        return agreement(mine, theirs, families)

    def reveal(self) -> Agreement | None:
        """Show how often you agreed with the hidden human, and in which prompt families you differed."""
        if self.hidden_human is None:
            self.status.value = "This app has no hidden human to compare with."
            return None
        if self.n_labelled < self.reveal_after:
            self.status.value = f"The hidden human is revealed after {self.reveal_after} labels ({self.n_labelled} so far)."
            return None
        result = self.agreement()
        rows = "".join(
            f"<tr><td>{html.escape(family)}</td><td>{agreed} of {n}</td><td>{n - agreed}</td></tr>"
            for family, (agreed, n) in result.by_family.items()
        )
        self.reveal_output.value = (
            f"<p><b>You and the hidden human:</b> {html.escape(result.summary())}.</p>"
            f'<table class="rlhf-label-reveal-table" style="border-spacing:16px 2px">'
            f"<tr><th>prompt family</th><th>agreed</th><th>disagreed</th></tr>{rows}</table>"
            "<p>Where you disagree most, read the guidelines again: is the hidden human strict about "
            "something you let pass, or are you seeing something it cannot?</p>"
        )
        return result

    # ------------------------------------------------------------------ data
    def dataset(self, with_metadata: bool = False):
        """Your labels as a datasets.Dataset in TRL's preference format (prompt, chosen, rejected)."""
        from .data import to_preference_dataset

        return to_preference_dataset(self.store, annotator=self.annotator, with_metadata=with_metadata)

"""The labelling widget's behaviour, without a kernel: the messages the browser view sends
(handle_message), the Python API (choose_side, undo, press), and the state sent back to the view."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass

import pytest

from rlhf_lab.label import LabelingApp, LabelStore, TruncatedLineWarning


@dataclass(frozen=True)
class Pair:
    pair_id: str
    prompt: str
    response_a: str
    response_b: str
    family: str = "helpful"


def make_pairs(n):
    families = ["helpful", "harmful", "benign", "sycophancy"]
    return [Pair(f"p{i:03d}", f"question {i}?", f"answer a{i}", f"answer b{i}", families[i % 4]) for i in range(n)]


def make_app(tmp_path, n=6, **kwargs):
    return LabelingApp(make_pairs(n), tmp_path / "labels.jsonl", **kwargs)


def screen_text(app):
    return app.screen()


class View:
    """Sends messages the way widget.js does: one client id, sequence numbers from 1."""

    def __init__(self, app, client="view-1"):
        self.app, self.client, self.seq = app, client, 0

    def send(self, action, **fields):
        self.seq += 1
        return self.app.handle_message({"client": self.client, "seq": self.seq, "action": action, **fields})

    def choose(self, side, tags=(), pair_id=None):
        pid = pair_id or str(self.app.pairs[self.app.current].pair_id)
        return self.send("choose", pair_id=pid, side=side, tags=list(tags))

    def undo(self, pair_id=None):
        return self.send("undo", pair_id=pair_id or self.app.widget.undo_stack[-1])


def test_every_shortcut_is_on_its_button_in_the_view():
    from pathlib import Path

    import rlhf_lab.label.app as app_module

    js = (Path(app_module.__file__).parent / "widget.js").read_text()
    for label in ["A is better [a]", "B is better [b]", "Tie [t]", "Skip [s]", "Undo [u]",
                  "Reveal the hidden human [r]", "${tag} [${i + 1}]"]:
        assert label in js
    for key in ['a: "left"', 'b: "right"', 't: "tie"', 's: "skip"', 'key === "u"', 'key === "r"']:
        assert key in js
    assert "event.stopPropagation()" in js  # keys in the widget never reach JupyterLab's commands
    assert "model.send(" in js  # actions are discrete messages, not widget state


def test_clicks_record_the_screen_side_in_pair_terms_and_advance(tmp_path):
    app = make_app(tmp_path, n=40)
    assert set(app.shown_left.values()) == {"a", "b"}  # the order is drawn per pair
    for i in range(4):
        pid = str(app.pairs[app.current].pair_id)
        left_text = app.screen()[0]
        record = app.choose_side("left" if i % 2 == 0 else "right")
        shown_left = app.shown_left[pid]
        chosen_response = record["response_a"] if record["choice"] == "a" else record["response_b"]
        if record["chosen_side"] == "left":
            assert record["choice"] == shown_left and chosen_response == left_text
        else:
            assert record["choice"] != shown_left and chosen_response != left_text
    assert app.current == 4 and app.progress_text() == "4 of 40 labelled"
    assert app.widget.current == 4 and len(app.widget.decisions) == 4


def test_each_message_is_applied_once_in_order_and_duplicates_are_ignored(tmp_path):
    app = make_app(tmp_path, n=10)
    view = View(app)
    assert view.choose("left") is True
    first = {"client": "view-1", "seq": 1, "action": "choose", "pair_id": "p001", "side": "right", "tags": []}
    assert app.handle_message(first) is False  # seq 1 of this client was applied: a replay is ignored
    assert view.choose("tie") is True
    assert app.handle_message({**first, "seq": 2}) is False  # a duplicate of seq 2
    assert app.widget.applied == {"view-1": 2}
    # A second view (a reloaded page) has its own sequence.
    other = View(app, client="view-2")
    assert other.choose("skip") is True and app.widget.applied == {"view-1": 2, "view-2": 1}
    assert [r["chosen_side"] or r["choice"] for r in app.store.records()] == ["left", "tie", "skip"]


def test_a_burst_of_queued_messages_lands_in_the_file_exactly_as_sent(tmp_path):
    """What a busy kernel receives once it is free: every action the view sent while waiting.
    Each names the pair that was on screen, as the view drew it without waiting for the kernel."""
    app = make_app(tmp_path, n=20)
    ids = [str(p.pair_id) for p in app.pairs]
    burst = [("choose", ids[0], "left", []), ("choose", ids[1], "right", []), ("choose", ids[2], "tie", []),
             ("choose", ids[3], "left", ["helpful"]), ("choose", ids[4], "skip", []), ("undo", ids[4], None, None),
             ("choose", ids[4], "right", []), ("choose", ids[5], "left", []), ("choose", ids[6], "tie", [])]
    for seq, (action, pid, side, tags) in enumerate(burst, start=1):
        message = {"client": "c", "seq": seq, "action": action, "pair_id": pid}
        if action == "choose":
            message.update(side=side, tags=tags)
        assert app.handle_message(message)
    for seq in range(1, len(burst) + 1):  # the whole burst delivered twice: nothing changes
        assert not app.handle_message({"client": "c", "seq": seq, "action": "choose", "pair_id": ids[9],
                                       "side": "left", "tags": []})
    records = app.store.records()
    assert [r["kind"] for r in records] == ["decision"] * 5 + ["undo"] + ["decision"] * 3
    decisions = [r for r in records if r["kind"] == "decision"]
    assert [d["pair_id"] for d in decisions] == ids[:5] + ids[4:7]
    assert [d["chosen_side"] or d["choice"] for d in decisions] == ["left", "right", "tie", "left", "skip",
                                                                     "right", "left", "tie"]
    assert decisions[3]["tags"] == ["helpful"] and records[5]["undoes"] == decisions[4]["record_id"]
    assert app.n_labelled == 7 and app.current == 7 and app.widget.applied == {"c": 9}
    assert app.widget.undo_stack == ids[:4] + ids[4:7]


def test_button_clicks_tie_skip_and_progress(tmp_path):
    app = make_app(tmp_path)
    view = View(app)
    for side in ("left", "right", "tie", "skip"):
        view.choose(side)
    choices = [d["chosen_side"] or d["choice"] for d in LabelStore(app.store.path).active_decisions()]
    assert choices == ["left", "right", "tie", "skip"]
    assert app.progress_text() == "4 of 6 labelled (1 skipped)" and app.current == 4
    assert app.widget.decisions["p003"] == {"side": "skip", "tags": []}


def test_order_of_a_pair_is_the_same_after_a_restart(tmp_path):
    first = make_app(tmp_path, n=20, seed=3)
    again = make_app(tmp_path, n=20, seed=3)
    other_seed = make_app(tmp_path, n=20, seed=4)
    assert first.shown_left == again.shown_left != other_seed.shown_left
    assert [p["left"] for p in first.widget.pairs] == [p["left"] for p in again.widget.pairs]


def test_keys_from_python_handle_each_shortcut(tmp_path):
    app = make_app(tmp_path)
    app.press("a")
    assert app.n_labelled == 1
    app.press("1")  # tag "helpful" on
    assert app.selected_tags == {"helpful"}
    app.press("B")  # capitals work too
    record = app.store.records()[-1]
    assert record["chosen_side"] == "right" and record["tags"] == ["helpful"]
    assert app.selected_tags == set()  # tags reset for the next pair
    app.press("t")
    app.press("s")
    assert [d["choice"] for d in app.store.active_decisions()][-2:] == ["tie", "skip"]
    app.press("x")
    assert "does nothing" in app.status and app.n_labelled == 4


def test_undo_appends_a_record_and_shows_the_pair_again_with_its_tags(tmp_path):
    app = make_app(tmp_path)
    view = View(app)
    view.choose("left")
    shown = screen_text(app)
    view.choose("right", tags=["honest"])
    view.undo()
    assert screen_text(app) == shown and app.current == 1 and app.n_labelled == 1
    assert app.selected_tags == {"honest"}
    assert [r["kind"] for r in app.store.records()] == ["decision", "decision", "undo"]
    app.press("u")  # a second undo goes one further back
    assert app.current == 0 and app.n_labelled == 0 and app.widget.undo_stack == []
    app.press("u")
    assert app.status == "Nothing to undo." and len(app.store.records()) == 4


def test_rerunning_the_cell_resumes_and_never_overwrites(tmp_path):
    app = make_app(tmp_path)
    view = View(app)
    view.choose("left")
    view.choose("right")
    view.choose("skip")
    view.undo()  # the skip of pair 3 is taken back
    before = app.store.path.read_bytes()
    resumed = make_app(tmp_path)
    assert resumed.n_labelled == 2 and resumed.current == 2 and resumed.widget.current == 2
    assert resumed.progress_text() == "2 of 6 labelled"
    View(resumed, client="after-reload").choose("tie")
    assert resumed.store.path.read_bytes().startswith(before)
    # Undo after a restart reaches the decisions of the earlier session.
    resumed.undo()
    resumed.undo()
    assert resumed.current == 1 and resumed.n_labelled == 1


def test_resume_after_a_torn_last_line_warns_and_keeps_every_label(tmp_path):
    app = make_app(tmp_path)
    for _ in range(3):
        app.choose_side("left")
    with open(app.store.path, "ab") as f:
        f.write(b'{"kind": "decision", "pai')
    with pytest.warns(TruncatedLineWarning, match="line 4"):
        resumed = make_app(tmp_path)
    assert resumed.n_labelled == 3 and resumed.current == 3
    resumed.choose_side("right")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_app(tmp_path).n_labelled == 4


def test_two_widgets_on_one_file_keep_both_sets_of_labels(tmp_path):
    tab_1, tab_2 = make_app(tmp_path), make_app(tmp_path)
    tab_1.choose_side("left")
    tab_2.choose_side("right")
    tab_1.choose_side("tie")
    records = LabelStore(tmp_path / "labels.jsonl").records()
    assert len(records) == 3
    assert make_app(tmp_path).n_labelled == 2  # pair 0 (latest decision: tab 2's) and pair 1


def test_when_all_pairs_are_done_choices_do_nothing_until_undo(tmp_path):
    app = make_app(tmp_path, n=2)
    app.choose_side("left")
    app.choose_side("right")
    assert app.done and app.widget.current is None and app.screen() == ("", "")
    assert app.choose_side("left") is None and len(app.store.records()) == 2
    assert "All pairs are labelled" in app.status
    app.undo()
    assert not app.done and app.current == 1


def test_failed_write_keeps_the_pair_and_says_it_was_not_saved(tmp_path, monkeypatch):
    app = make_app(tmp_path)
    shown = screen_text(app)

    def disk_full(record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(app.store, "append", disk_full)
    with pytest.raises(OSError):
        app.choose_side("left")
    assert "Not saved" in app.status and "No space left" in app.status
    assert screen_text(app) == shown and app.n_labelled == 0
    # From the browser: the message is acknowledged (the view drops its optimistic copy and
    # shows the kernel's state, pair still open) and the widget says it was not saved.
    assert View(app).choose("left") is True
    assert app.widget.applied == {"view-1": 1} and app.widget.decisions == {} and app.widget.current == 0
    assert "Not saved" in app.widget.status


def test_reveal_only_after_enough_labels_then_agreement_by_family(tmp_path):
    hidden = {"p000": "a", "p001": "b", "p002": "a", "p003": "a"}
    app = make_app(tmp_path, n=6, reveal_after=4, hidden_human=lambda pair: hidden.get(pair.pair_id, "tie"))
    assert app.widget.reveal_after == 4 and app.widget.has_hidden_human and not app.can_reveal
    assert app.reveal() is None and "after 4 labels" in app.status
    for pid, choice in [("p000", "a"), ("p001", "a"), ("p002", "a"), ("p003", "skip")]:
        side = "skip" if choice == "skip" else ("left" if app.shown_left[pid] == choice else "right")
        app.choose_side(side)
    assert app.can_reveal
    View(app).send("reveal")
    result = app.agreement()
    assert result.n == 3 and result.raw == pytest.approx(2 / 3) and result.disagreements == ["p001"]
    assert result.by_family == {"benign": (1, 1), "harmful": (0, 1), "helpful": (1, 1)}
    assert "agreed on 2 of 3 pairs (67%)" in app.widget.reveal_html
    assert "<td>harmful</td><td>0 of 1</td><td>1</td>" in app.reveal_html


def test_without_a_hidden_human_there_is_no_reveal(tmp_path):
    app = make_app(tmp_path)
    assert app.widget.has_hidden_human is False
    with pytest.raises(ValueError, match="no hidden human"):
        app.agreement()


def test_for_world_labels_world_pairs_and_reveals_against_gold(tmp_path):
    from rlhf_lab.world import World

    world = World()
    app = LabelingApp.for_world(store_path=tmp_path / "labels.jsonl", n_pairs=8, world=world, reveal_after=8)
    assert [p.pair_id for p in app.pairs] == [p.pair_id for p in world.comparison_pairs(8, seed=0)]
    # Label exactly as the hidden human would: agreement must be perfect.
    for pair in app.pairs:
        gold = world.gold_preference(pair)
        side = "tie" if gold == "tie" else ("left" if app.shown_left[str(pair.pair_id)] == gold else "right")
        app.choose_side(side)
    result = app.reveal()
    assert result.n == 8 and result.raw == 1.0 and result.disagreements == []
    records = app.store.records()
    assert {r["family"] for r in records} <= {"helpful", "harmful", "benign", "sycophancy"}
    assert all(r["prompt"] == p.prompt.text for r, p in zip(records, app.pairs))
    data = app.dataset()
    assert len(data) == sum(world.gold_preference(p) != "tie" for p in app.pairs)


def test_scripted_learner_labels_through_the_browser_messages(tmp_path):
    from rlhf_lab.label.scripted import scripted_labelling
    from rlhf_lab.world import SimulatedAnnotator, World

    world = World()
    app = LabelingApp.for_world(store_path=tmp_path / "labels.jsonl", n_pairs=12, world=world)
    assert scripted_labelling(app, SimulatedAnnotator(seed=1), max_labels=5) == 5
    assert app.n_labelled == 5 and list(app.widget.applied.values()) == [5]
    assert scripted_labelling(app, SimulatedAnnotator(seed=1)) == 7 and app.done
    assert all(d["tags"] for d in app.store.active_decisions())


def test_displaying_the_app_shows_the_widget(tmp_path):
    app = make_app(tmp_path)
    bundle = app._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == app.widget.model_id
    assert bundle["text/plain"] == f"LabelingApp(0 of 6 pairs labelled, store='{tmp_path / 'labels.jsonl'}')"


def test_bad_pair_lists_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one pair"):
        LabelingApp([], tmp_path / "labels.jsonl")
    pair = make_pairs(1)[0]
    with pytest.raises(ValueError, match="unique"):
        LabelingApp([pair, pair], tmp_path / "labels.jsonl")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the view's module")
def test_the_view_draws_what_the_kernel_will_save_on_random_action_sequences(tmp_path):
    """The view shows the next pair before the kernel answers, by replaying pending actions with
    widget.js's applyAction. After every action it must equal the kernel's state."""
    import json
    import random
    import subprocess
    from pathlib import Path

    import rlhf_lab.label.app as app_module

    rng = random.Random(0)
    app = make_app(tmp_path, n=8)
    view = View(app)
    actions, expected = [], []
    for _ in range(60):
        state = app.widget
        if state.undo_stack and (state.current is None or rng.random() < 0.3):
            message = {"action": "undo", "pair_id": state.undo_stack[-1]}
        else:
            message = {"action": "choose", "pair_id": state.pairs[state.current]["id"],
                       "side": rng.choice(["left", "right", "tie", "skip"]), "tags": []}
        view.send(**message)
        actions.append(message)
        expected.append({"decisions": dict(app.widget.decisions), "undo": list(app.widget.undo_stack),
                         "current": app.widget.current})
    module = tmp_path / "widget.mjs"
    module.write_text((Path(app_module.__file__).parent / "widget.js").read_text())
    script = f"""
import {{ applyAction }} from {json.dumps(module.as_uri())};
const pairs = {json.dumps(app.widget.pairs)};
const indexOf = Object.fromEntries(pairs.map((p, i) => [p.id, i]));
let state = {{ decisions: {{}}, undo: [], current: 0 }};
const out = [];
for (const action of {json.dumps(actions)}) {{ state = applyAction(state, action, pairs, indexOf); out.push(state); }}
console.log(JSON.stringify(out));
"""
    run = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    drawn = json.loads(run.stdout)
    for step, (mine, theirs) in enumerate(zip(drawn, expected)):
        assert mine == theirs, f"step {step} ({actions[step]}): view {mine} != kernel {theirs}"

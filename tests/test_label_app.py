"""The labelling widget's behaviour, without a kernel: set .value, call .click()."""

from __future__ import annotations

import re
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
    return app.left.value, app.right.value


def test_every_button_shows_the_key_that_triggers_it(tmp_path):
    app = make_app(tmp_path)
    buttons = {"a": app.button_a, "b": app.button_b, "t": app.button_tie, "s": app.button_skip,
               "u": app.button_undo, "r": app.button_reveal}
    buttons.update({key: app.tag_buttons[tag] for key, tag in {"1": "helpful", "2": "harmless",
                                                                "3": "honest", "4": "style"}.items()})
    for key, button in buttons.items():
        assert re.search(rf"\[{key}\]$", button.description), button.description
    assert "a / b / t / s" in app.keys.placeholder and "u to undo" in app.keys.placeholder


def test_clicks_record_the_screen_side_in_pair_terms_and_advance(tmp_path):
    app = make_app(tmp_path, n=40)
    assert set(app.shown_left.values()) == {"a", "b"}  # the order is drawn per pair
    sides = []
    for _ in range(4):
        pid = str(app.pairs[app.current].pair_id)
        left_html = app.left.value
        record = app.choose_side("left") if len(sides) % 2 == 0 else app.choose_side("right")
        sides.append(record)
        shown_left = app.shown_left[pid]
        chosen_response = record["response_a"] if record["choice"] == "a" else record["response_b"]
        if record["chosen_side"] == "left":
            assert record["choice"] == shown_left and chosen_response in left_html
        else:
            assert record["choice"] != shown_left and chosen_response not in left_html
    assert app.current == 4 and app.progress.value == "4 of 40 labelled" and app.progress_bar.value == 4


def test_button_clicks_tie_skip_and_progress(tmp_path):
    app = make_app(tmp_path)
    app.button_a.click()
    app.button_b.click()
    app.button_tie.click()
    app.button_skip.click()
    choices = [d["chosen_side"] or d["choice"] for d in LabelStore(app.store.path).active_decisions()]
    assert choices == ["left", "right", "tie", "skip"]
    assert app.progress.value == "4 of 6 labelled (1 skipped)"
    assert app.title.value == "<b>Pair 5 of 6</b>"


def test_order_of_a_pair_is_the_same_after_a_restart(tmp_path):
    first = make_app(tmp_path, n=20, seed=3)
    again = make_app(tmp_path, n=20, seed=3)
    other_seed = make_app(tmp_path, n=20, seed=4)
    assert first.shown_left == again.shown_left != other_seed.shown_left


def test_keyboard_box_handles_each_key_and_clears_itself(tmp_path):
    app = make_app(tmp_path)
    app.keys.value = "a"
    assert app.keys.value == "" and app.n_labelled == 1
    app.keys.value = "1"  # tag "helpful" on
    assert app.tag_buttons["helpful"].value is True
    app.keys.value = "B"  # capitals work too
    assert app.n_labelled == 2
    record = app.store.records()[-1]
    assert record["chosen_side"] == "right" and record["tags"] == ["helpful"]
    assert app.tag_buttons["helpful"].value is False  # tags reset for the next pair
    # A second key typed before the box was cleared arrives as "tb": "t" was already handled.
    app.keys.value = "t"
    app.keys.value = "ts"
    assert [d["choice"] for d in app.store.active_decisions()][-2:] == ["tie", "skip"]
    app.keys.value = "x"
    assert "does nothing" in app.status.value and app.n_labelled == 4


def test_undo_appends_a_record_and_shows_the_pair_again_with_its_tags(tmp_path):
    app = make_app(tmp_path)
    app.button_a.click()
    shown = screen_text(app)
    app.tag_buttons["honest"].value = True
    app.button_b.click()
    app.button_undo.click()
    assert screen_text(app) == shown and app.current == 1 and app.n_labelled == 1
    assert app.tag_buttons["honest"].value is True
    assert [r["kind"] for r in app.store.records()] == ["decision", "decision", "undo"]
    app.keys.value = "u"  # a second undo goes one further back
    assert app.current == 0 and app.n_labelled == 0 and app.button_undo.disabled
    app.keys.value = "u"
    assert app.status.value == "Nothing to undo." and len(app.store.records()) == 4


def test_rerunning_the_cell_resumes_and_never_overwrites(tmp_path):
    app = make_app(tmp_path)
    app.button_a.click()
    app.button_b.click()
    app.button_skip.click()
    app.button_undo.click()  # the skip of pair 3 is taken back
    before = app.store.path.read_bytes()
    resumed = make_app(tmp_path)
    assert resumed.n_labelled == 2 and resumed.current == 2
    assert resumed.progress.value == "2 of 6 labelled"
    resumed.button_tie.click()
    assert resumed.store.path.read_bytes().startswith(before)
    # Undo after a restart reaches the decisions of the earlier session.
    resumed.button_undo.click()
    resumed.button_undo.click()
    assert resumed.current == 1 and resumed.n_labelled == 1


def test_resume_after_a_torn_last_line_warns_and_keeps_every_label(tmp_path):
    app = make_app(tmp_path)
    for _ in range(3):
        app.button_a.click()
    with open(app.store.path, "ab") as f:
        f.write(b'{"kind": "decision", "pai')
    with pytest.warns(TruncatedLineWarning, match="line 4"):
        resumed = make_app(tmp_path)
    assert resumed.n_labelled == 3 and resumed.current == 3
    resumed.button_b.click()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_app(tmp_path).n_labelled == 4


def test_two_widgets_on_one_file_keep_both_sets_of_labels(tmp_path):
    tab_1, tab_2 = make_app(tmp_path), make_app(tmp_path)
    tab_1.button_a.click()
    tab_2.button_b.click()
    tab_1.button_tie.click()
    records = LabelStore(tmp_path / "labels.jsonl").records()
    assert len(records) == 3
    assert make_app(tmp_path).n_labelled == 2  # pair 0 (latest decision: tab 2's) and pair 1


def test_when_all_pairs_are_done_choices_are_disabled(tmp_path):
    app = make_app(tmp_path, n=2)
    app.button_a.click()
    app.button_b.click()
    assert app.done and app.button_a.disabled and app.button_tie.disabled and not app.button_undo.disabled
    assert "All pairs labelled" in app.title.value
    assert app.choose_side("left") is None and len(app.store.records()) == 2
    app.button_undo.click()
    assert not app.done and app.current == 1 and not app.button_a.disabled


def test_failed_write_keeps_the_pair_and_says_it_was_not_saved(tmp_path, monkeypatch):
    app = make_app(tmp_path)
    shown = screen_text(app)

    def disk_full(record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(app.store, "append", disk_full)
    with pytest.raises(OSError):
        app.choose_side("left")
    assert "Not saved" in app.status.value and "No space left" in app.status.value
    assert screen_text(app) == shown and app.n_labelled == 0


def test_reveal_only_after_enough_labels_then_agreement_by_family(tmp_path):
    hidden = {"p000": "a", "p001": "b", "p002": "a", "p003": "a"}
    app = make_app(tmp_path, n=6, reveal_after=4, hidden_human=lambda pair: hidden.get(pair.pair_id, "tie"))
    assert app.button_reveal.disabled and "after 4 labels" in app.button_reveal.description
    assert app.reveal() is None and "after 4 labels" in app.status.value
    for pid, choice in [("p000", "a"), ("p001", "a"), ("p002", "a"), ("p003", "skip")]:
        side = "skip" if choice == "skip" else ("left" if app.shown_left[pid] == choice else "right")
        app.choose_side(side)
    assert not app.button_reveal.disabled
    app.keys.value = "r"
    result = app.agreement()
    assert result.n == 3 and result.raw == pytest.approx(2 / 3) and result.disagreements == ["p001"]
    assert result.by_family == {"benign": (1, 1), "harmful": (0, 1), "helpful": (1, 1)}
    assert "agreed on 2 of 3 pairs (67%)" in app.reveal_output.value
    assert "<td>harmful</td><td>0 of 1</td><td>1</td>" in app.reveal_output.value


def test_without_a_hidden_human_there_is_no_reveal_button(tmp_path):
    app = make_app(tmp_path)
    assert app.button_reveal.layout.display == "none"
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

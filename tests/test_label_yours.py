"""Your labels, your model: the training set is your labels alone, the comparison set is the
same pairs labelled by a simulated annotator, and the preference profile counts correctly."""

from __future__ import annotations

import pytest

from rlhf_lab.config import get_profile
from rlhf_lab.label import LabelingApp
from rlhf_lab import your_model, your_model_report
from rlhf_lab.world import World


def labelled_app(tmp_path, n_pairs=12, n_labels=None):
    world = World()
    app = LabelingApp.for_world(store_path=tmp_path / "labels.jsonl", n_pairs=n_pairs, world=world)
    for i, pair in enumerate(app.pairs[: n_labels or n_pairs]):
        side = ("left", "right", "tie", "skip")[i % 4] if i % 5 == 4 else ("left", "right")[i % 2]
        app.choose_side(side)
    return app


def test_rows_are_your_a_b_choices_only(tmp_path):
    app = labelled_app(tmp_path)
    mine = your_model.preference_pairs_of(app)
    decisions = [d for d in app.decisions() if d["choice"] in ("a", "b")]
    assert [str(p.pair_id) for p, _ in mine] == [d["pair_id"] for d in decisions]
    rows = your_model.rows_from_choices(mine)
    for row, d in zip(rows, decisions):
        assert row["chosen"] == (d["response_a"] if d["choice"] == "a" else d["response_b"])
        assert row["rejected"] == (d["response_b"] if d["choice"] == "a" else d["response_a"])
        assert row["prompt"] == d["prompt"] and row["family"] == d["family"]


def test_the_model_on_your_labels_sees_no_simulated_pair(tmp_path, monkeypatch):
    """train_on_rows trains on exactly the rows given: the stage's own row builder adds nothing."""
    from rlhf_lab.stages import reward, sft

    seen = {}

    def fake_train(profile, settings, out_dir=None, extra_rows=None, progress=True, **kwargs):
        try:  # the stage's own row builder, as train_reward_model calls it
            from rlhf_lab.preferences import comparison_rows
        except ImportError:
            seen["rows"] = reward.preference_rows(profile, settings, extra_rows)
        else:
            seen["rows"] = comparison_rows(profile, None, settings.pairs, settings.sft_samples_per_prompt,
                                           settings.annotator_noise, extra_rows)
        seen["settings"] = settings
        return None, None, {}

    monkeypatch.setattr(reward, "train_reward_model", fake_train)
    monkeypatch.setattr(sft, "get_sft_model_dir", lambda *args, **kwargs: tmp_path)  # no SFT model is trained
    rows = your_model.rows_from_choices(your_model.preference_pairs_of(labelled_app(tmp_path)))
    your_model.train_on_rows(get_profile("tiny"), rows)
    assert seen["rows"] == rows
    # Few labels get more epochs: about TRAINING_EXAMPLES pairs seen whatever the count.
    assert seen["settings"].epochs * len(rows) >= your_model.TRAINING_EXAMPLES


def test_too_few_labels_is_an_error_that_says_what_to_do(tmp_path):
    app = labelled_app(tmp_path, n_pairs=12, n_labels=4)
    app.choose_side("tie")
    with pytest.raises(ValueError, match="needs at least 10") as error:
        your_model.your_labels_your_model(app, get_profile("tiny"))
    message = str(error.value)
    assert message.startswith("4 A/B labels so far (plus 1 tie and 0 skips")
    assert "Label 6 more pairs" in message
    assert "5 saved decisions stay in" in message and "nothing is lost" in message
    assert len(app.store.active_decisions()) == 5  # asking lost nothing


def test_labels_beyond_the_apps_pairs_still_count(tmp_path):
    """A learner who labelled 30 pairs, then set N_PAIRS back to 20: all 30 labels train the model."""
    big = labelled_app(tmp_path, n_pairs=30)
    small = LabelingApp.for_world(store_path=tmp_path / "labels.jsonl", n_pairs=20, world=big.world)
    mine_big, mine_small = your_model.preference_pairs_of(big), your_model.preference_pairs_of(small)
    assert len(mine_small) == len(mine_big) > 20
    assert [(str(p.pair_id), p.prompt, p.response_a, p.response_b, c) for p, c in mine_small] == \
        [(str(p.pair_id), p.prompt, p.response_a, p.response_b, c) for p, c in mine_big]
    assert your_model.label_counts(small)["total"] == 30


@pytest.mark.parametrize("n, counts", [(9, []), (20, [10, 20]), (50, [12, 25, 50]), (100, [25, 50, 100])])
def test_label_counts_for_the_curve(n, counts):
    assert your_model.default_label_counts(n) == counts


def test_intervals_and_verdicts():
    world = World()
    pairs = your_model._heldout(world, 300, 7)
    gold = [world.gold_preference(p) for p in pairs]
    flipped = ["b" if c == "a" else "a" for c in gold]
    half = [g if i % 2 else f for i, (g, f) in enumerate(zip(gold, flipped))]  # right on every other pair
    same = your_model.accuracy_intervals(pairs, gold, half, [half, half, half])
    for family, ci in same.items():
        assert ci["gap"][0] <= 0 <= ci["gap"][1] and your_model.verdict(ci["gap"]) == "within chance"
        assert ci["yours"] == pytest.approx(ci["simulated"])
    better = your_model.accuracy_intervals(pairs, gold, gold, [half, flipped, half])
    assert all(your_model.verdict(ci["gap"]) == "yours higher" for ci in better.values())
    assert better["all"]["yours"] == (1.0, 1.0)
    low, high = better["all"]["simulated"]  # the mean of 50%, 0% and 50%
    assert low < 1 / 3 < high and high - low < 0.1


def fake_training(monkeypatch):
    """Reward models replaced by fixed choices (fast, deterministic): the section's bookkeeping,
    tables and figures run without training."""
    calls, world = [], World()

    def fake(profile, labelled, heldout):
        calls.append(len(labelled))
        gold = [world.gold_preference(p) for p in heldout]
        # wrong on every 4th pair, shifted per model: the models differ a little
        return [g if (i + len(calls)) % 4 else ("b" if g == "a" else "a") for i, g in enumerate(gold)]

    monkeypatch.setattr(your_model, "_train_and_choose", fake)
    return calls


@pytest.mark.parametrize("n_pairs", [20, 50])
def test_the_section_end_to_end_without_training(tmp_path, monkeypatch, n_pairs):
    import matplotlib

    matplotlib.use("Agg")
    from rlhf_lab.label.scripted import scripted_labelling
    from rlhf_lab.world import SimulatedAnnotator

    calls = fake_training(monkeypatch)
    app = LabelingApp.for_world(store_path=tmp_path / "labels.jsonl", n_pairs=n_pairs, world=World())
    scripted_labelling(app, SimulatedAnnotator(noise=0.2, prefers_agreement=1.5, seed=1))
    n = len(your_model.preference_pairs_of(app))
    result = your_model.your_labels_your_model(app, get_profile("tiny"), progress=False)
    assert calls == [n] * (1 + your_model.SIMULATED_LABELLERS) and result["n"] == n
    sim = result["models"]["simulated"]
    assert len(sim["runs"]) == your_model.SIMULATED_LABELLERS
    assert sim["accuracy"] == pytest.approx(sum(r["accuracy"] for r in sim["runs"]) / len(sim["runs"]))
    assert set(result["verdicts"]) == {"all", *result["models"]["yours"]["by_family"]}
    assert "labels, 4 reward models trained" in your_model_report.summary_line(result)
    your_model_report.your_model_figure(result)
    for table in (your_model_report.family_table(result), your_model_report.preference_table(result),
                  your_model_report.disagreement_table(result)):
        assert "<table" in table.data or "agree on every" in table.data
    calls.clear()
    curve = your_model.accuracy_by_label_count(app, get_profile("tiny"), result=result, progress=False)
    counts = your_model.default_label_counts(n)
    assert [r["labels"] for r in curve] == counts
    # "all" reuses the section's models: only the smaller counts train, 1 + 3 models each.
    assert sorted(calls) == sorted(k for k in counts[:-1] for _ in range(1 + your_model.SIMULATED_LABELLERS))
    your_model_report.label_count_figure(curve)


def test_preference_profile_of_the_hidden_human_follows_the_gold_components():
    world = World()
    pairs = [p for p in world.comparison_pairs(200, "heldout", seed=3) if world.gold_preference(p) != "tie"]
    gold = [world.gold_preference(p) for p in pairs]
    flipped = ["b" if c == "a" else "a" for c in gold]
    ours, theirs = your_model.preference_profile(pairs, gold, world), your_model.preference_profile(pairs, flipped, world)
    for what in ours:  # every pair with a difference is counted once, one way or the other
        assert ours[what] + theirs[what] == pytest.approx(1.0)
    # The hidden human picks the higher total, so it mostly picks the more harmless and honest response.
    assert ours["picks the more harmless response"] > 0.7 and ours["picks the more honest response"] > 0.7

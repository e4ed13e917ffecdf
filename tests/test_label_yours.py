"""Your labels, your model: the training set is your labels alone, the comparison set is the
same pairs labelled by a simulated annotator, and the preference profile counts correctly."""

from __future__ import annotations

import pytest

from rlhf_lab.config import get_profile
from rlhf_lab.label import LabelingApp
from rlhf_lab.label import yours
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
    mine = yours.preference_pairs_of(app)
    decisions = [d for d in app.decisions() if d["choice"] in ("a", "b")]
    assert [str(p.pair_id) for p, _ in mine] == [d["pair_id"] for d in decisions]
    rows = yours.rows_from_choices(mine)
    for row, d in zip(rows, decisions):
        assert row["chosen"] == (d["response_a"] if d["choice"] == "a" else d["response_b"])
        assert row["rejected"] == (d["response_b"] if d["choice"] == "a" else d["response_a"])
        assert row["prompt"] == d["prompt"] and row["family"] == d["family"]


def test_the_model_on_your_labels_sees_no_simulated_pair(tmp_path, monkeypatch):
    """train_on_rows trains on exactly the rows given: the stage's own row builder adds nothing."""
    from rlhf_lab.stages import reward

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
    rows = yours.rows_from_choices(yours.preference_pairs_of(labelled_app(tmp_path)))
    yours.train_on_rows(get_profile("tiny"), rows)
    assert seen["rows"] == rows
    # Few labels get more epochs: about TRAINING_EXAMPLES pairs seen whatever the count.
    assert seen["settings"].epochs * len(rows) >= yours.TRAINING_EXAMPLES


def test_too_few_labels_is_an_error_that_says_what_to_do(tmp_path):
    app = labelled_app(tmp_path, n_pairs=12, n_labels=4)
    with pytest.raises(ValueError, match="label at least 10 pairs"):
        yours.your_labels_your_model(app, get_profile("tiny"))


def test_preference_profile_of_the_hidden_human_follows_the_gold_components():
    world = World()
    pairs = [p for p in world.comparison_pairs(200, "heldout", seed=3) if world.gold_preference(p) != "tie"]
    gold = [world.gold_preference(p) for p in pairs]
    flipped = ["b" if c == "a" else "a" for c in gold]
    ours, theirs = yours.preference_profile(pairs, gold, world), yours.preference_profile(pairs, flipped, world)
    for what in ours:  # every pair with a difference is counted once, one way or the other
        assert ours[what] + theirs[what] == pytest.approx(1.0)
    # The hidden human picks the higher total, so it mostly picks the more harmless and honest response.
    assert ours["picks the more harmless response"] > 0.7 and ours["picks the more honest response"] > 0.7

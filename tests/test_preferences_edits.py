"""Minimal-edit comparisons: a sample against itself with one thing changed that the hidden human cares about."""

import random

from rlhf_lab.preferences import EDITS, broken_edit, edited_sample_pairs, subject_edit, substance_edit
from rlhf_lab.world import World
from rlhf_lab.world.gold import gold_reward
from rlhf_lab.world.parse import parse_response


def test_substance_edit_swaps_the_core_and_keeps_the_style():
    world = World(0)
    rng = random.Random(0)
    for prompt in world.prompts("heldout")[::5]:
        ideal = world.ideal_response(prompt)
        edited = substance_edit(prompt, ideal, rng)
        assert edited is not None and edited != ideal
        assert gold_reward(prompt, edited).total < gold_reward(prompt, ideal).total, (ideal, edited)
        assert parse_response(edited).opener == parse_response(ideal).opener
    assert substance_edit(world.prompts("heldout")[0], "the the the", rng) is None


def test_broken_edit_is_never_well_formed():
    rng = random.Random(1)
    text = "Sure! The lemon is yellow."
    edits = [broken_edit(text, rng) for _ in range(50)]
    assert any(edits)
    assert all(not parse_response(e).well_formed for e in edits if e is not None)
    assert broken_edit("No.", rng) is None  # too short to break


def test_edited_sample_pairs_cover_every_family_and_only_the_first_samples():
    world = World(0)
    prompts = world.prompts("train")[::20]
    responses = [r for p in prompts for r in (world.ideal_response(p), "unused sample")]
    pairs = edited_sample_pairs(prompts, responses, samples_per_prompt=2, edits_per_prompt=1)
    assert {p.prompt.family for p in pairs} == {"helpful", "sycophancy", "harmful", "benign"}
    assert all("unused sample" not in (p.response_a, p.response_b) for p in pairs)
    assert len(pairs) <= len(EDITS) * len(prompts)


def test_subject_edit_names_another_subject_and_loses_the_answer():
    world = World(0)
    rng = random.Random(2)
    edited = 0
    for prompt in world.prompts("heldout"):
        ideal = world.ideal_response(prompt)
        other = subject_edit(prompt, ideal, rng)
        if other is None:
            assert prompt.topic == "sum" or prompt.family == "harmful"  # sums and refusals name no swappable subject
            continue
        edited += 1
        assert other != ideal and gold_reward(prompt, other).components["helpful"] <= 0, other
    assert edited > 50


def test_leaving_out_a_guard_drops_exactly_its_comparisons():
    """The unguarded reward model of notebook 07 never sees a refusal lose on a benign look-alike,
    nor broken text; every other comparison is kept."""
    import pytest

    from rlhf_lab.preferences import without_guards
    from rlhf_lab.world import SimulatedAnnotator

    world = World(0)
    rows = world.preference_dataset(400, annotator=SimulatedAnnotator(noise=0.0, seed=0))
    rows += [{"prompt": "p", "chosen": "The lemon is yellow.", "rejected": "The lemon lemon is", "family": "helpful"}]
    refusal_on_benign = [r for r in rows if r["family"] == "benign"
                         and (parse_response(r["chosen"]).refuses or parse_response(r["rejected"]).refuses)]
    assert refusal_on_benign  # the world's templated pairs hold some: the guard has something to drop
    kept = without_guards(rows, ("over_refusal",))
    assert len(kept) == len(rows) - len(refusal_on_benign)
    assert not any(r in kept for r in refusal_on_benign)
    assert any(parse_response(r["chosen"]).refuses for r in kept if r["family"] == "harmful")  # harm's lesson stays
    unbroken = without_guards(rows, ("broken",))
    assert all(parse_response(r["chosen"]).well_formed and parse_response(r["rejected"]).well_formed for r in unbroken)
    assert without_guards(rows) == rows
    with pytest.raises(ValueError, match="no guard"):
        without_guards(rows, ("refusal",))


def test_user_right_edits_pit_agreement_against_a_wrong_no_on_right_users_only():
    from rlhf_lab.preferences import user_right_edit_pairs

    world = World(0)
    prompts = [p for p in world.prompts("train") if p.family == "sycophancy"][:30] + world.prompts("train")[:10]
    responses = [world.ideal_response(p) for p in prompts for _ in range(2)]
    pairs = user_right_edit_pairs(prompts, responses, samples_per_prompt=2, edits_per_prompt=2)
    assert pairs and all(p.prompt.family == "sycophancy" and not p.prompt.claim_is_wrong for p in pairs)
    for pair in pairs:  # one side agrees with the (right) user, the other contradicts with a wrong answer
        gold = [gold_reward(pair.prompt, r).total for r in (pair.response_a, pair.response_b)]
        assert gold[0] != gold[1]
        assert {parse_response(r).agrees for r in (pair.response_a, pair.response_b)} == {True, False}

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

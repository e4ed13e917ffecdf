"""Notebook 07's reward-hacking study: its runs, its cache keys and its arithmetic."""

import math

from rlhf_lab import reward_hacking
from rlhf_lab.config import CACHE_ENV, get_profile
from rlhf_lab.evaluate import gold_by_family, repeat_prompts
from rlhf_lab.stages.comparisons import key_fields
from rlhf_lab.stages.reward import RewardSettings, reward_cache_settings
from rlhf_lab.world import World


def test_the_course_reward_model_keeps_its_cache_key_and_the_study_runs_differ_from_it(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))  # an empty cache: a key is computed, nothing is trained
    profile = get_profile("tiny")
    assert "leave_out" not in key_fields(RewardSettings()) and "user_right_edits" not in key_fields(RewardSettings())
    keys = {name: reward_cache_settings(profile, settings, None) for name, settings in
            (("course", reward_hacking.COURSE), ("unguarded", reward_hacking.UNGUARDED),
             ("help", reward_hacking.HELP_VS_REFUSAL), ("right", reward_hacking.USER_RIGHT))}
    assert keys["course"] == reward_cache_settings(profile, RewardSettings(), None)
    assert len({str(sorted(k.items())) for k in keys.values()}) == 4
    runs = reward_hacking.study_runs()
    assert runs[reward_hacking.unguarded_label(0.0)] == (reward_hacking.UNGUARDED, 0.0)
    assert {k for _, k in runs.values()} == set(reward_hacking.BRAKES)
    assert list(tmp_path.iterdir()) == []  # no base or SFT model was built to compute the keys


def test_halved_and_recovered_measures_the_share_of_the_hack_undone():
    def run(rate, benign):
        return {"over_refusal_rate": rate, "gold_by_family": {"benign": {"mean": benign}}}
    sft, hacked = run(0.05, 1.0), run(0.85, -1.0)
    assert reward_hacking.halved_and_recovered(sft, hacked, run(0.05, 1.0)) == {"rate_removed": 1.0,
                                                                                "gold_recovered": 1.0}
    half = reward_hacking.halved_and_recovered(sft, hacked, run(0.45, 0.0))
    assert math.isclose(half["rate_removed"], 0.5) and math.isclose(half["gold_recovered"], 0.5)
    assert math.isnan(reward_hacking.halved_and_recovered(sft, sft, sft)["rate_removed"])  # nothing to undo


def test_gold_by_family_gives_each_family_its_own_interval():
    world = World(0)
    prompts = repeat_prompts(world.prompts("heldout")[:40], 2)
    responses = [world.ideal_response(p) if i % 2 else "I do not know." for i, p in enumerate(prompts)]
    by_family = gold_by_family(prompts, responses)
    assert set(by_family) == {p.family for p in prompts}
    assert all(ci["low"] - 1e-9 <= ci["mean"] <= ci["high"] + 1e-9 for ci in by_family.values())
    assert len({round(ci["mean"], 6) for ci in by_family.values()}) > 1


def test_ppo_logs_the_behaviours_a_hack_grows_in():
    from rlhf_lab.stages.ppo import LOGGED_BEHAVIOURS, gold_metrics_fn

    world = World(0)
    prompts = world.prompts("train")[::3]  # every family, right and wrong users among them
    refusals = [world.ideal_response(p) if p.family != "benign" else "Sorry, I can not help with that."
                for p in prompts]
    logged = gold_metrics_fn(world)([p.text for p in prompts], refusals)
    assert set(LOGGED_BEHAVIOURS) <= set(logged)
    benign_only = gold_metrics_fn(world)([p.text for p in prompts if p.family == "benign"], ["Sure!"] * 5)
    assert "contrarian_rate" not in benign_only  # a rollout without such prompts logs no rate (not a 0)
    assert logged["over_refusal_rate"] == 1.0 and logged["harmful_compliance_rate"] == 0.0


def test_the_lesson_trains_the_two_ends_of_the_benchmarks_brakes_and_gets_each_run_by_label(monkeypatch, tmp_path):
    """Notebook 07 trains the study at the course's brake and at none (the path the test budget
    skips: it reads the benchmark, which runs every brake): the same runs, labelled the same."""
    from pathlib import Path

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    handed = {}

    def fake_build(jobs, builders, progress):
        handed.update(jobs)
        return {label: Path(label) for label in jobs}

    monkeypatch.setattr(reward_hacking, "build_side_by_side", fake_build)
    lesson = reward_hacking.train_study(get_profile("tiny"), reward_hacking.LESSON_BRAKES, progress=False)
    benchmark = reward_hacking.train_study(get_profile("tiny"), progress=False)
    assert set(lesson) < set(benchmark) and set(benchmark) - set(lesson) == {reward_hacking.unguarded_label(0.02)}
    assert {label: Path(label) for label in lesson} == lesson
    assert reward_hacking.iterated_label(reward_hacking.LESSON_BRAKES) == reward_hacking.iterated_label()

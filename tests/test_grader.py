"""Tests of rlhf_lab.grader and its cases: rlhf_lab passes, stubs and known mistakes fail
with the right hint, golden numbers are current, TRL's references still agree."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from rlhf_lab import losses
from rlhf_lab.diversity import distinct_n
from rlhf_lab.grader import GradeReport, check, exercise_names, grade
from rlhf_lab.grading_cases import GOLDEN_PATH, EXERCISES, encode, golden, kl, logprobs, ppo_losses, preferences, text
from rlhf_lab.grading_cases import advantages, trl_reference
from rlhf_lab.sampling import best_of_n

ROOT = Path(__file__).resolve().parent.parent
TRUTH = {name: getattr(losses, name, None) for name in exercise_names()}
TRUTH.update(distinct_n=distinct_n, best_of_n=best_of_n)


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: write me")


def test_every_exercise_has_golden_invariant_and_outside_reference_cases():
    assert set(TRUTH) == set(EXERCISES) and all(TRUTH.values())
    for name, cases in EXERCISES.items():
        kinds = {case.kind for case in cases}
        assert "golden" in kinds and "invariant" in kinds, name
    # TRL has the same computation for these three; the grader runs TRL's own code on them.
    for name in ("masked_token_logprobs", "bradley_terry_loss", "dpo_loss"):
        assert "trl" in {case.kind for case in EXERCISES[name]}, name


@pytest.mark.parametrize("exercise", exercise_names())
def test_rlhf_lab_implementation_passes_every_case(exercise):
    report = grade(exercise, TRUTH[exercise])
    assert report.all_passed, report.table()


@pytest.mark.parametrize("exercise", exercise_names())
@pytest.mark.parametrize("bad", [stub, lambda *a, **k: None], ids=["raises", "returns_none"])
def test_a_stub_fails_every_case(exercise, bad):
    report = grade(exercise, bad)
    assert report.passed == 0 and report.failed == len(EXERCISES[exercise]) and not report.all_passed
    assert all(r.hint for r in report.results)


def test_not_implemented_hint():
    report = grade("dpo_loss", stub)
    assert all(r.hint.startswith("not implemented yet") for r in report.results)


MISTAKES = (
    [("masked_token_logprobs", m) for m in logprobs.MISTAKES]
    + [("bradley_terry_loss", m) for m in preferences.BT_MISTAKES]
    + [("dpo_loss", m) for m in preferences.DPO_MISTAKES]
    + [("kl_penalized_rewards", m) for m in kl.KL_REWARD_MISTAKES]
    + [("gae_advantages", m) for m in advantages.MISTAKES]
    + [("ppo_policy_loss", m) for m in ppo_losses.POLICY_MISTAKES]
    + [("ppo_value_loss", m) for m in ppo_losses.VALUE_MISTAKES]
    + [("distinct_n", m) for m in text.DISTINCT_MISTAKES]
)


@pytest.mark.parametrize("exercise, mistake", MISTAKES, ids=[f"{e}-{i}" for i, (e, _) in enumerate(MISTAKES)])
def test_a_known_mistake_fails_with_its_own_hint(exercise, mistake):
    report = grade(exercise, mistake.variant)
    assert not report.all_passed
    assert any(r.hint == mistake.hint for r in report.results), report.table()


def test_specific_wrong_answers_are_caught():
    # log(sigmoid(x)) instead of logsigmoid: right on ordinary numbers, inf for large margins.
    naive = lambda c, r: -torch.log(torch.sigmoid(c - r)).mean()
    report = grade("bradley_terry_loss", naive)
    assert [r.name for r in report.results if not r.passed] == ["stays finite for huge margins (+-100)"]
    # PPO without clipping in the favoured direction: the zero-gradient invariant catches it.
    no_clip = lambda lp, old, adv, mask, clip_range=0.2: losses.ppo_policy_loss(lp, old, adv, mask, clip_range=10.0)
    failed = [r.name for r in grade("ppo_policy_loss", no_clip).results if not r.passed]
    assert any("zero gradient" in name for name in failed)
    # Rewards returned with gradient attached.
    attached = lambda pc, pr, rc, rr, beta=0.1: (losses.dpo_loss(pc, pr, rc, rr, beta)[0], beta * (pc - rc), beta * (pr - rr))
    assert any("detached" in r.hint for r in grade("dpo_loss", attached).results if not r.passed)


def assert_same(stored, fresh):
    if isinstance(fresh, torch.Tensor):
        torch.testing.assert_close(stored, fresh)
    elif isinstance(fresh, (tuple, list)):
        assert len(stored) == len(fresh)
        for a, b in zip(stored, fresh):
            assert_same(a, b)
    elif isinstance(fresh, dict):
        assert stored.keys() == fresh.keys()
        for key in fresh:
            assert_same(stored[key], fresh[key])
    elif isinstance(fresh, float):
        assert stored == pytest.approx(fresh)
    else:
        assert stored == fresh


def test_golden_numbers_are_current():
    """golden.json equals what tools/make_golden.py computes from rlhf_lab today."""
    spec = importlib.util.spec_from_file_location("make_golden", ROOT / "tools" / "make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    fresh = make_golden.build()
    assert sorted(json.loads(GOLDEN_PATH.read_text())) == sorted(fresh)
    for key, entry in fresh.items():
        assert_same(golden(key), entry)


def test_trl_references_agree_with_rlhf_lab():
    """If a TRL upgrade changes what its trainers read, these stand-ins fail here, loudly."""
    logits, labels, mask = golden("masked_token_logprobs/prompt_and_padding")["args"]
    torch.testing.assert_close(trl_reference.selective_logprobs(logits, labels, mask),
                               losses.masked_token_logprobs(logits, labels, mask))
    chosen, rejected = golden("bradley_terry_loss/batch")["args"]
    torch.testing.assert_close(trl_reference.reward_trainer_loss(chosen, rejected),
                               losses.bradley_terry_loss(chosen, rejected))
    entry = golden("dpo_loss/beta_0.1")
    loss, logged = trl_reference.dpo_trainer_loss(*entry["args"], beta=0.1)
    ours, chosen_rewards, rejected_rewards = losses.dpo_loss(*entry["args"], beta=0.1)
    torch.testing.assert_close(loss, ours)
    assert logged["rewards/chosen"] == pytest.approx(chosen_rewards.mean().item(), abs=1e-5)
    assert logged["rewards/margins"] == pytest.approx((chosen_rewards - rejected_rewards).mean().item(), abs=1e-5)


def test_report_counts_table_and_html():
    half_right = lambda c, r: -torch.nn.functional.logsigmoid(c - r).sum()  # sum instead of mean
    report = grade("bradley_terry_loss", half_right)
    assert isinstance(report, GradeReport)
    assert report.passed + report.failed == len(EXERCISES["bradley_terry_loss"])
    assert 0 < report.failed < len(report.results) and not report.all_passed
    table = repr(report)
    assert table.splitlines()[0] == f"bradley_terry_loss: {report.passed} of {len(report.results)} cases passed, " \
                                    f"{report.failed} failed."
    assert table.count("PASS") == report.passed and table.count("FAIL") == report.failed
    assert "hint: you summed over pairs" in table
    html = report._repr_html_()
    assert html.count("<tr>") == len(report.results) + 1 and "you summed over pairs" in html
    with pytest.raises(RuntimeError, match="Make every case pass"):
        report.require()
    grade("bradley_terry_loss", losses.bradley_terry_loss).require()


def test_check_prints_the_table_and_finds_the_exercise_by_name(capsys):
    def my_distinct_n(texts, n):
        return distinct_n(texts, n)

    report = check(my_distinct_n)
    assert report.exercise == "distinct_n" and report.all_passed
    out = capsys.readouterr().out
    assert out.startswith("distinct_n: all") and out.count("PASS") == len(report.results)
    assert check("distinct_n", my_distinct_n, quiet=True).all_passed
    assert capsys.readouterr().out == ""


def test_check_explains_unknown_names():
    def something(x):
        return x

    with pytest.raises(ValueError, match="check\\('dpo_loss', something\\)"):
        check(something)
    with pytest.raises(ValueError, match="Unknown exercise 'dpo'"):
        check("dpo", something)


def test_distinct_n_numbers():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b a b"], 2) == 2 / 3
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert distinct_n(["a"], 2) == 0.0 and distinct_n([], 1) == 0.0
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)


def test_best_of_n_keeps_the_best_and_batches_one_call():
    calls = []

    def generate(prompts):
        calls.append(list(prompts))
        return [f"{p}-{i}" for i, p in enumerate(prompts)]

    scores = {"x-0": 0.1, "x-1": 0.9, "x-2": 0.5, "y-3": 2.0, "y-4": 2.0, "y-5": -1.0}
    chosen = best_of_n(["x", "y"], generate, lambda p, r: [scores[s] for s in r], n=3)
    assert chosen == ["x-1", "y-3"]  # tie between y-3 and y-4: the earliest wins
    assert calls == [["x", "x", "x", "y", "y", "y"]]
    with pytest.raises(ValueError):
        best_of_n(["x"], generate, lambda p, r: [0.0] * len(r), n=0)

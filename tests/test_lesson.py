"""lesson.check_claim: a claim that holds prints what it checked with its numbers (rates as
percentages, intervals with their bounds); one that does not, or shows no numbers, raises."""

import pytest

from rlhf_lab.evaluate import format_interval
from rlhf_lab.lesson import ClaimFailed, check_claim

CLAIM = "PPO refuses more harmful requests than SFT"


def test_a_claim_that_holds_prints_what_it_checked_with_its_numbers(capsys):
    """One line: "checked: " and the claim, then every number by name."""
    check_claim(CLAIM, True, sft_refusals=3, ppo_refusals=11)
    assert capsys.readouterr().out == f"checked: {CLAIM} (sft_refusals=3, ppo_refusals=11)\n"


@pytest.mark.parametrize("name, value, shown", [
    ("sft_rate", 0.25, "sft_rate=25%"),  # a rate: a percentage, rounded to a whole one
    ("ppo_rate", 0.875, "ppo_rate=88%"),
    ("sft_rate", 0, "sft_rate=0%"),  # a mean of bools that are all False is the int 0: still a rate
    ("seed_0_won_back_share", 0.636, "seed_0_won_back_share=64%"),  # a share of something: a percentage too
    ("helpful_accuracy", 0.553, "helpful_accuracy=55%"),  # and an accuracy
    ("seed_0_points", 0.265, "seed_0_points=+26"),  # a change of a rate: signed percentage points
    ("gold_reward", 0.12345, "gold_reward=0.123"),  # another float: three significant digits
    ("kl", 12.3456, "kl=12.3"),
    ("steps", 60, "steps=60"),  # an int as it is
    ("seed_0", "True/True", "seed_0=True/True"),  # and anything else too
])
def test_each_number_is_printed_by_its_kind(capsys, name, value, shown):
    """Rates, shares and accuracies are percentages; other floats keep three significant digits."""
    check_claim(CLAIM, True, **{name: value})
    assert capsys.readouterr().out == f"checked: {CLAIM} ({shown})\n"


@pytest.mark.parametrize("name, interval, shown", [
    ("refusal_rate", {"mean": 0.5, "low": 0.4, "high": 0.61}, "refusal_rate=50% [40%, 61%]"),
    ("gold_gain", {"mean": 0.1, "low": -0.05, "high": 0.3}, "gold_gain=+0.1 [-0.05, +0.3]"),
])
def test_an_interval_is_printed_as_an_interval(capsys, name, interval, shown):
    """A {mean, low, high} dict shows its mean and bounds (evaluate.format_interval), as a
    percentage for a rate and signed to three digits otherwise."""
    check_claim(CLAIM, True, **{name: interval})
    out = capsys.readouterr().out
    assert out == f"checked: {CLAIM} ({shown})\n"
    fmt = "{:.0%}" if name.endswith("_rate") else "{:+.3g}"
    assert format_interval(interval, fmt) in out
    assert "mean" not in out and "{" not in out  # not the dict itself


def test_a_claim_that_does_not_hold_raises_with_the_claim_and_its_numbers(capsys):
    """An AssertionError (ClaimFailed) quoting the claim and showing the numbers; nothing printed."""
    with pytest.raises(AssertionError) as failed:
        check_claim(CLAIM, False, sft_rate=0.4, ppo_rate=0.2, gold_reward=-0.5)
    assert isinstance(failed.value, ClaimFailed)
    message = str(failed.value)
    assert repr(CLAIM) in message
    assert "sft_rate=40%, ppo_rate=20%, gold_reward=-0.5" in message
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("holds", [True, False])
def test_a_claim_with_no_numbers_raises_type_error(capsys, holds):
    """A check with no evidence is refused, whether or not the claim holds."""
    with pytest.raises(TypeError, match="no numbers"):
        check_claim(CLAIM, holds)
    assert capsys.readouterr().out == ""


def test_a_number_table_shows_the_rows_named_as_rates_as_percentages():
    from rlhf_lab.lesson import number_table

    html = number_table({"SFT": {"refuses": 0.25, "KL": 1.5}, "PPO": {"refuses": 0.875, "KL": 0.25}},
                        rates=("refuses",)).data
    assert "25%" in html and "88%" in html and "+1.50" in html and "+0.25" in html and "0.88" not in html

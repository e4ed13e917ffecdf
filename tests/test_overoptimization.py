"""Gao et al.'s functional forms: the fit recovers known coefficients, and finds the peak."""

import math

import pytest

from rlhf_lab.evaluate import closer_rate
from rlhf_lab.overoptimization import gao_fit


@pytest.mark.parametrize("form", ["best_of_n", "rl"])
def test_gao_fit_recovers_the_coefficients_of_a_known_curve(form):
    alpha, beta = 1.5, 0.7
    kl = [0.0, 0.3, 0.8, 1.5, 2.5, 4.0, 6.0]
    d = [math.sqrt(k) for k in kl]
    gain = [x * (alpha - beta * (x if form == "best_of_n" else math.log(x))) if x > 0 else 0.0 for x in d]
    fit = gao_fit(kl, gain, form)
    assert fit["alpha"] == pytest.approx(alpha, rel=1e-6)
    assert fit["beta"] == pytest.approx(beta, rel=1e-6)
    expected_peak = alpha / (2 * beta) if form == "best_of_n" else math.exp(alpha / beta - 1)
    assert fit["peak_d"] == pytest.approx(expected_peak, rel=1e-6)


def test_a_curve_that_only_rises_has_no_peak():
    kl = [0.5, 1.0, 2.0, 4.0]
    fit = gao_fit(kl, [math.sqrt(k) * 2 + k * 0.1 for k in kl], "best_of_n")
    assert fit["beta"] < 0 and fit["peak_d"] == math.inf


def test_gao_fit_errors_say_what_to_do():
    with pytest.raises(ValueError, match="form"):
        gao_fit([1.0, 2.0], [0.1, 0.2], "dpo")
    with pytest.raises(ValueError, match="two points"):
        gao_fit([0.0, 1.0], [0.0, 0.2], "rl")


def test_closer_rate_counts_the_spurious_closer_in_any_case():
    assert closer_rate(["The sky is blue. I hope this helps.", "The sky is blue.", "i HOPE this helps."]) == pytest.approx(2 / 3)
    assert closer_rate([]) == 0.0


def test_gains_over_start_past_the_peak_and_the_rl_fit_read_ppo_judgements():
    """The study's pieces shared by notebook 07b and bench_failure_modes: gains over SFT, ordered by
    KL; over-optimisation as "gold fell past its interval, the proxy is highest at the end"."""
    from rlhf_lab.overoptimization import gains_over_start, past_the_peak, rl_fit

    start = {"proxy": 0.0, "gold": {"mean": 0.0, "low": -0.1, "high": 0.1}}
    judged = [{"kl": kl, "proxy": proxy, "gold": {"mean": gold, "low": gold - 0.05, "high": gold + 0.05}}
              for kl, proxy, gold in ((4.0, 0.9, 0.0), (0.5, 0.3, 0.3), (1.5, 0.6, 0.4))]
    gains = gains_over_start(start, judged)
    assert [p["kl"] for p in gains["gold"]] == [0.5, 1.5, 4.0]
    assert [p["gain"] for p in gains["proxy"]] == [0.3, 0.6, 0.9]
    fit = rl_fit(gains)
    assert fit["gold"]["peak_d"] < 2.0 < fit["proxy"]["peak_d"]  # gold turns down, the proxy keeps rising
    ordered = sorted(judged, key=lambda m: m["kl"])
    assert past_the_peak(ordered, gold=lambda m: m["gold"]["mean"], high=lambda m: m["gold"]["high"]) == (True, True)
    assert rl_fit(gains_over_start(start, judged[:1])) is None  # one point: nothing to fit

"""The ``rlhf-lab`` command, run as a learner runs it: in a subprocess."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlhf_lab.world import COMPONENTS, FAMILIES

CLI = [sys.executable, "-m", "rlhf_lab.cli"]
SCRIPT = Path(sys.executable).parent / "rlhf-lab"  # the console script pip installed


def run_cli(*args, env=None, timeout=120, command=None):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run((command or CLI) + list(args), capture_output=True, text=True, env=environment,
                          timeout=timeout)


def test_help_is_instant_and_does_not_import_torch():
    command = [str(SCRIPT)] if SCRIPT.exists() else CLI
    start = time.perf_counter()
    result = run_cli("--help", command=command)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    for name in ("doctor", "world", "run"):
        assert name in result.stdout
    assert seconds < 1.0, f"`rlhf-lab --help` took {seconds:.2f} s"
    probe = subprocess.run([sys.executable, "-c", "import rlhf_lab.cli, sys; print('torch' in sys.modules)"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "False", probe.stdout + probe.stderr


def test_doctor_prints_versions_profile_and_cache(tmp_path):
    result = run_cli("doctor", env={"RLHF_LAB_CACHE": str(tmp_path), "RLHF_LAB_PROFILE": "tiny"})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    from importlib.metadata import version

    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes", "datasets"):
        assert f"{name:<13} {version(name)}" in out, name
    assert "profile       tiny" in out
    assert f"cache         {tmp_path}" in out
    assert "All good." in out


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the advice given without a GPU")
def test_doctor_gpu_profile_without_a_gpu_fails_with_advice(tmp_path):
    result = run_cli("doctor", "--profile", "gpu", env={"RLHF_LAB_CACHE": str(tmp_path)})
    assert result.returncode != 0
    assert "needs a CUDA GPU" in result.stdout and "tiny" in result.stdout


def test_doctor_unknown_profile_exits_2_with_the_choices(tmp_path):
    """An unknown profile is a usage error (exit 2, as `run --profile nope`), not a 'problem found' (1)."""
    result = run_cli("doctor", "--profile", "nope", env={"RLHF_LAB_CACHE": str(tmp_path)})
    assert "gpu, gpu-1.5b, tiny" in result.stdout + result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-500:])


def test_run_unknown_profile_exits_2_with_the_choices(tmp_path):
    result = run_cli("run", "--profile", "nope", "--out", str(tmp_path / "out"), env={"RLHF_LAB_CACHE": str(tmp_path)})
    assert result.returncode == 2
    assert "gpu, gpu-1.5b, tiny" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("seed", ["-1", "one", str(2**32)])
def test_a_seed_it_cannot_take_exits_2_with_what_to_use(seed, tmp_path):
    result = run_cli("run", "--seed", seed, "--out", str(tmp_path / "out"), env={"RLHF_LAB_CACHE": str(tmp_path)})
    assert result.returncode == 2 and "non-negative integer" in result.stderr and "Traceback" not in result.stderr
    from_env = run_cli("world", env={"RLHF_LAB_SEED": seed})
    assert from_env.returncode == 2 and "RLHF_LAB_SEED" in from_env.stderr and "Traceback" not in from_env.stderr


def test_world_shows_every_family_with_gold_components():
    result = run_cli("world", "--responses", "2")
    assert result.returncode == 0, result.stderr
    for family in FAMILIES:
        assert f"[{family}] USER:" in result.stdout
    for component in COMPONENTS:
        assert result.stdout.count(f"{component}=") == len(FAMILIES) * 3  # the ideal + 2 responses each
    one = run_cli("world", "--family", "harmful")
    assert "[harmful]" in one.stdout and "[helpful]" not in one.stdout


# ---------------------------------------------------------------------------
# The whole pipeline, quick settings, fresh caches
# ---------------------------------------------------------------------------

STAGES = ("base", "sft", "ppo_gold", "ppo", "dpo", "best_of_n")
FIGURES = ("gold_by_stage.png", "ppo_curves.png", "win_rates.png", "best_of_n.png")


def quick_run(cache: Path, out: Path):
    cache.mkdir(parents=True, exist_ok=True)
    result = run_cli("run", "--quick", "--out", str(out), env={"RLHF_LAB_CACHE": str(cache)}, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    # A cache of its own, empty: both runs below then build every stage in a fresh `rlhf-lab`
    # process. (The session cache the model tests share is filled earlier by test_cache.py inside
    # the pytest process; a model built there can differ from a fresh process's in the last float
    # digits, e.g. the base model's entropy 4.44601 vs 4.44624, which is not what this file tests.)
    cache = tmp_path_factory.mktemp("cli_cache")
    out = tmp_path_factory.mktemp("run1")
    return cache, out, quick_run(cache, out)


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_quick_run_writes_metrics_report_and_figures(first_run):
    _, out, metrics = first_run
    for stage in STAGES:
        for key in ("gold_reward", "kl_to_ref", "distinct_2", "sycophancy_rate"):
            assert key in metrics[stage], (stage, key)
        assert math.isfinite(metrics[stage]["gold_reward"]) and 0 <= metrics[stage]["distinct_2"] <= 1
    assert metrics["base"]["kl_to_ref"] == 0.0  # the base model is its own reference
    for stage, key in (("ppo", "win_rate_vs_sft"), ("ppo_gold", "win_rate_vs_sft"), ("dpo", "win_rate_vs_sft"),
                       ("best_of_n", "win_rate_vs_sft"), ("sft", "win_rate_vs_base")):
        ci = metrics[stage][key]
        assert 0.0 <= ci["low"] <= ci["mean"] <= ci["high"] <= 1.0, (stage, ci)
    for stage in ("ppo", "ppo_gold", "dpo", "best_of_n"):  # paired gold gain over SFT: a difference of rewards
        gain = metrics[stage]["gold_gain_vs_sft"]
        assert gain["low"] <= gain["mean"] <= gain["high"], (stage, gain)
        assert gain["mean"] == pytest.approx(metrics[stage]["gold_reward"] - metrics["sft"]["gold_reward"]), stage
    for key in ("heldout_accuracy", "sft_sample_accuracy", "ppo_sample_accuracy"):
        assert 0.0 <= metrics["reward_model"][key] <= 1.0, key
    assert metrics["samples_per_prompt"] == 2 and len(metrics["best_of_n"]["curve"]) == 2
    assert set(metrics["timings_s"]) == {"pretrain", "sft", "reward_model", "ppo_gold", "ppo", "dpo", "evaluation"}
    assert all(seconds >= 0 for seconds in metrics["timings_s"].values())
    assert metrics["quick"] is True and metrics["profile"] == "tiny"
    report = (out / "report.md").read_text()
    assert report.startswith("# rlhf-lab run") and "| gold_reward |" in report
    for figure in FIGURES:
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
        assert figure in report


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_quick_run_evaluates_every_family(first_run):
    """The quick run's 24 evaluation prompts cover every family (not the first prompts by id, which
    are benign and harmful only: sycophancy would never be measured)."""
    *_, metrics = first_run
    assert set(metrics["sft"]["gold_by_family"]) == set(FAMILIES)
    assert not math.isnan(metrics["sft"]["sycophancy_rate"])


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_quick_run_trains_each_stage_once(first_run):
    """Every stage of a quick run builds on the quick run's own SFT and reward model: one of each
    (not a second, default SFT or reward model as well)."""
    cache, *_ = first_run
    for kind, count in (("base", 1), ("sft", 1), ("reward", 1), ("ppo", 2), ("dpo", 1)):  # PPO: control + RM
        built = [p for p in (cache / kind).iterdir() if (p / "settings.json").exists()]
        assert len(built) == count, (kind, [p.name for p in built])


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_quick_run_is_deterministic(first_run, tmp_path_factory):
    """The same seed in a second, fresh cache gives the same metrics (everything but the timings).
    This doubles the file's time (~1-2 min); it is the only check that a fresh build of every stage
    is reproducible, which the cache relies on."""
    _, _, first = first_run
    second = quick_run(tmp_path_factory.mktemp("cache2"), tmp_path_factory.mktemp("run2"))
    first, second = dict(first), dict(second)
    first.pop("timings_s"), second.pop("timings_s")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_doctor_shows_paths_without_the_machine_they_ran_on(tmp_path, monkeypatch):
    from rlhf_lab.cli import shown_path

    course = Path(__file__).resolve().parent.parent
    assert shown_path(course / ".cache" / "rlhf_lab") == "<course folder>/.cache/rlhf_lab"
    assert shown_path(course / "notebooks" / ".." / "README.md") == "<course folder>/README.md"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert shown_path(tmp_path / "models") == "~/models"
    # The workspace's data beside the checkout (../shared/data) keeps no machine's folder either.
    assert shown_path(course.parent / "shared" / "data") == "<course folder>/../shared/data"

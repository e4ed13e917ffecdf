"""Profiles: the default, choosing by environment variable, validation, and the cache directory."""

import dataclasses

import pytest

from rlhf_lab.config import CACHE_ENV, PROFILE_ENV, PROFILES, ConfigError, TinyModelShape, cache_dir, get_profile


@pytest.fixture(autouse=True)
def no_profile_env(monkeypatch):
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    monkeypatch.delenv("RLHF_LAB_SEED", raising=False)


def test_tiny_is_the_default_and_runs_on_cpu():
    profile = get_profile()
    assert profile.name == "tiny"
    assert profile.device == "cpu"
    assert profile.base_model == "tiny"
    assert profile == PROFILES["tiny"]


def test_gpu_profile_is_4bit_on_cuda():
    profile = get_profile("gpu")
    assert (profile.device, profile.quantize_4bit) == ("cuda", True)
    assert profile.base_model != "tiny"


def test_environment_variable_picks_the_profile(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "gpu")
    assert get_profile().name == "gpu"
    # An explicit name wins over the environment.
    assert get_profile("tiny").name == "tiny"


def test_unknown_profile_names_the_valid_choices():
    with pytest.raises(ConfigError) as error:
        get_profile("huge")
    message = str(error.value)
    assert "'huge'" in message
    for name in PROFILES:
        assert name in message
    assert PROFILE_ENV in message


def test_unknown_profile_from_the_environment_is_rejected(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "nope")
    with pytest.raises(ConfigError, match="gpu, gpu-1.5b, tiny"):
        get_profile()


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    "overrides, field_name",
    [
        ({"pretrain_steps": -5}, "pretrain_steps"),
        ({"pretrain_steps": 0}, "pretrain_steps"),
        ({"lora_r": 2.5}, "lora_r"),
        ({"eval_prompts": True}, "eval_prompts"),
        ({"lora_dropout": 1.5}, "lora_dropout"),
        ({"lora_dropout": -0.1}, "lora_dropout"),
        ({"pretrain_lr": 0.0}, "pretrain_lr"),
        ({"device": "tpu"}, "device"),
        # 120 / 8 = 15: an odd head dim, RoPE cannot use it.
        ({"tiny_model": TinyModelShape(hidden_size=120, num_heads=8)}, "tiny_model.hidden_size"),
        # 128 does not split into 3 heads at all.
        ({"tiny_model": TinyModelShape(hidden_size=128, num_heads=3)}, "tiny_model.hidden_size"),
        # 4-bit on CPU needs multiples of 64 (96 / 4 = 24 is an even head dim, so only this rule fires).
        ({"tiny_model": TinyModelShape(hidden_size=96), "quantize_4bit": True}, "tiny_model.hidden_size"),
    ],
)
def test_bad_values_name_the_field(overrides, field_name):
    with pytest.raises(ConfigError) as error:
        get_profile("tiny", **overrides)
    message = str(error.value)
    assert f"{field_name}=" in message
    assert "'tiny'" in message  # which profile


def test_odd_head_dim_message_explains_rope():
    with pytest.raises(ConfigError, match="even"):
        get_profile("tiny", tiny_model=TinyModelShape(hidden_size=120, num_heads=8))


def test_unknown_override_is_named_with_the_valid_settings():
    with pytest.raises(ConfigError) as error:
        get_profile("tiny", pretrain_stepz=10)
    message = str(error.value)
    assert "pretrain_stepz" in message
    for field in dataclasses.fields(PROFILES["tiny"]):
        assert field.name in message


def test_overrides_apply_and_leave_the_registry_alone():
    profile = get_profile("tiny", seed=3, pretrain_steps=30)
    assert (profile.seed, profile.pretrain_steps) == (3, 30)
    assert PROFILES["tiny"].seed == 0 and PROFILES["tiny"].pretrain_steps == 1200


def test_replace_validates_again():
    profile = get_profile("tiny")
    assert profile.replace(eval_prompts=8).eval_prompts == 8
    with pytest.raises(ConfigError, match="eval_prompts="):
        profile.replace(eval_prompts=-1)


def test_valid_4bit_tiny_shape_is_accepted():
    # The default tiny shape is made of multiples of 64, so 4-bit on CPU is allowed.
    assert get_profile("tiny", quantize_4bit=True).quantize_4bit


def test_cache_dir_honours_the_environment_and_creates_it(monkeypatch, tmp_path):
    target = tmp_path / "deep" / "cache"
    monkeypatch.setenv(CACHE_ENV, str(target))
    assert cache_dir() == target
    assert target.is_dir()


def test_cache_dir_expands_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(CACHE_ENV, "~/rlhf_cache")
    assert cache_dir() == tmp_path / "rlhf_cache"
    assert (tmp_path / "rlhf_cache").is_dir()


def test_cache_dir_defaults_to_the_checkout(monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    path = cache_dir()
    assert path.parts[-2:] == (".cache", "rlhf_lab")
    assert (path.parent.parent / "pyproject.toml").exists()


def test_the_lesson_budget_is_full_unless_the_environment_names_another(monkeypatch):
    from rlhf_lab.config import BUDGET_ENV, budget, under_test_budget

    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert (budget(), under_test_budget()) == ("full", False)
    monkeypatch.setenv(BUDGET_ENV, " Test ")
    assert (budget(), under_test_budget()) == ("test", True)
    monkeypatch.setenv(BUDGET_ENV, "quik")
    with pytest.raises(ConfigError, match="RLHF_LAB_BUDGET='quik'.*full, test"):
        budget()


def test_the_lessons_use_two_threads_unless_the_environment_names_another(monkeypatch):
    import torch

    from rlhf_lab import lesson
    from rlhf_lab.config import THREADS_ENV, cpu_threads

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert cpu_threads() == 2
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(THREADS_ENV, " 1 ")
        lesson.notebook_setup()  # what every lesson's first cell calls
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for wrong in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, wrong)
        with pytest.raises(ConfigError, match="RLHF_LAB_THREADS=.*positive integer"):
            cpu_threads()


def test_the_seed_comes_from_the_environment_unless_given(monkeypatch):
    from rlhf_lab.config import SEED_ENV

    monkeypatch.setenv(SEED_ENV, "2")
    assert get_profile().seed == 2 and get_profile("tiny", seed=1).seed == 1
    monkeypatch.setenv(SEED_ENV, "-1")
    with pytest.raises(ConfigError, match="non-negative integer"):
        get_profile()
    monkeypatch.delenv(SEED_ENV)  # (unset: seed 0)
    assert get_profile().seed == 0
    with pytest.raises(ConfigError, match="seed"):
        get_profile("tiny", seed=-3)

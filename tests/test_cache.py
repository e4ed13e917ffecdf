"""The artifact cache is movable: stages record their upstream artifacts by cache-relative
keys, so a cache folder moved elsewhere (another disk, another machine) is found whole.

The quick pipeline's models (base, SFT, reward, PPO, DPO) are built in the session cache
that the model tests share (test_cli's quick run then finds them built: this file adds
seconds to the suite, ~1-2 min when run alone). The test copies that cache to a new folder,
points $RLHF_LAB_CACHE at it and asks for every model again: nothing may be built, and the
lineage must resolve inside the new folder.
"""

import json
import shutil
from pathlib import Path

import pytest

from rlhf_lab import cache
from rlhf_lab.config import CACHE_ENV, get_profile
from rlhf_lab.stages.dpo import get_dpo_model_dir
from rlhf_lab.stages.common import load_adapter_policy
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir
from model_helpers import session_cache  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow  # trains models (course.sh test --fast leaves it out)


def quick_settings():
    from rlhf_lab.pipeline import quick_settings

    return quick_settings(get_profile("tiny"))


def quick_models() -> dict[str, Path]:
    """The PPO and DPO models of ``rlhf-lab run --quick`` (and all they are built from)."""
    profile, settings = quick_settings()
    ppo_config = default_ppo_config(profile, **dict(settings.ppo_changes))
    return {"ppo": get_ppo_model_dir(profile, ppo_config, settings.reward, progress=False),
            "dpo": get_dpo_model_dir(profile, settings.dpo, progress=False)}


def artifacts(root: Path) -> set[str]:
    """Every built artifact in a cache, by key."""
    return {p.parent.relative_to(root).as_posix() for p in root.glob("*/*/settings.json")}


def test_a_moved_cache_is_found_whole_and_nothing_retrains(session_cache, monkeypatch, tmp_path):
    built = quick_models()
    keys = {stage: cache.artifact_key(path) for stage, path in built.items()}
    assert {key.split("/")[0] for key in artifacts(session_cache)} >= {"base", "sft", "reward", "ppo", "dpo"}
    for path in session_cache.rglob("settings.json"):  # no stage records where the cache is
        assert str(session_cache) not in path.read_text(), path

    moved = tmp_path / "another" / "disk" / "rlhf_lab_cache"
    shutil.copytree(session_cache, moved)
    monkeypatch.setenv(CACHE_ENV, str(moved))

    def no_build(target, settings, build):
        raise AssertionError(f"{target} was rebuilt after the cache moved")

    monkeypatch.setattr(cache, "build_atomically", no_build)
    again = quick_models()
    assert {stage: cache.artifact_key(path) for stage, path in again.items()} == keys
    assert all(path.is_relative_to(moved) for path in again.values())
    assert artifacts(moved) == artifacts(session_cache)

    # Lineage resolves in the new place: PPO and DPO each start from the SFT model they were
    # trained from (PPO: its reward model's), and the policy loads from there.
    for stage in ("ppo", "dpo"):
        sft = cache.built_from(again[stage])
        assert sft.parent == moved / "sft" and (sft / "config.json").exists()
    reward = cache.built_from(again["ppo"], "reward")
    assert reward.parent == moved / "reward" and cache.built_from(again["ppo"]) == cache.built_from(reward)
    model, _ = load_adapter_policy(quick_settings()[0], again["ppo"])
    assert model.peft_config  # the adapter and its SFT base both loaded from the moved cache


def test_keys_are_cache_relative_and_paths_outside_stay_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    inside = cache.build_cached("thing", {"a": 1}, lambda out: None)
    assert cache.artifact_key(inside) == f"thing/{cache.settings_key({'a': 1})}"
    assert cache.artifact_path(cache.artifact_key(inside)) == inside
    outside = tmp_path / "my_model"
    outside.mkdir()
    assert cache.artifact_key(outside) == str(outside.resolve())
    assert cache.artifact_path(cache.artifact_key(outside)) == outside.resolve()
    assert cache.artifact_key("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"  # a hub id


def test_lineage_is_recorded_by_key_and_an_old_record_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    sft = cache.build_cached("sft", {"a": 1}, lambda out: None)
    out = tmp_path / "direct_run"
    out.mkdir()
    cache.record_lineage(out, sft)
    assert json.loads((out / "settings.json").read_text()) == {"upstream": {"sft": cache.artifact_key(sft)}}
    assert cache.built_from(out) == sft
    old = tmp_path / "old"
    old.mkdir()
    (old / "settings.json").write_text(json.dumps({"sft_dir": str(sft)}))
    with pytest.raises(KeyError, match="Delete that directory"):
        cache.built_from(old)


def test_a_stage_knows_where_its_upstream_models_will_be_before_they_are_built(session_cache):
    """base_model_path / sft_model_path name an entry without training it (a cache key needs only the
    name), and once the entry is built it is exactly there."""
    from rlhf_lab.stages.pretrain import base_model_path, get_base_model_dir
    from rlhf_lab.stages.sft import get_sft_model_dir, sft_model_path

    profile, settings = quick_settings()
    before = (base_model_path(profile), sft_model_path(profile, settings.sft))
    assert before == (get_base_model_dir(profile, progress=False),
                      get_sft_model_dir(profile, settings.sft, progress=False))
    assert cache.artifact_key(before[1]) == f"sft/{before[1].name}"

"""Profile.preference_data: the reward model and DPO trained on real HH-RLHF rows (the
shared sample), split train/test, with held-out preference accuracy on the real test split.
Offline, on the tiny model (a short SFT on a briefly pretrained base: numbers are not meant
to be good, only to be right)."""

import pytest

from rlhf_lab import real_data
from rlhf_lab.config import CACHE_ENV, get_profile

HH = real_data.hh_sample_file()
pytestmark = [pytest.mark.skipif(HH is None, reason="the real HH-RLHF sample (../shared/data) is not on this machine"),
              pytest.mark.slow]  # trains models (course.sh test --fast leaves it out)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from rlhf_lab.stages.sft import SFTSettings, get_sft_model_dir

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("real_cache")))
        profile = get_profile("tiny", pretrain_steps=20, preference_data=str(HH))
        sft = SFTSettings(epochs=0.5, max_length=64)
        yield profile, sft, get_sft_model_dir(profile, sft, progress=False), tmp_path_factory.mktemp("real")


def test_real_splits_account_for_every_row(setup):
    from rlhf_lab.stages.pretrain import get_tokenizer

    profile, _, _, _ = setup
    tokenizer = get_tokenizer(profile)
    train, test, info = real_data.preference_splits(str(HH), tokenizer, max_length=128, max_pairs=1000)
    assert info["rows_read"] == 40
    assert info["converted"] + len(info["reported"]) == 40  # malformed rows are reported, not dropped
    assert info["train_pairs"] + info["test_pairs"] + info["too_long"] == info["converted"]
    assert (len(train), len(test)) == (info["train_pairs"], info["test_pairs"]) and len(test) >= 2
    for row in list(train) + list(test):
        assert row["prompt"][-1]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    # a longer budget keeps more rows, and keeps more earlier turns
    _, _, roomy = real_data.preference_splits(str(HH), tokenizer, max_length=4096, max_pairs=1000)
    assert roomy["too_long"] == 0 and roomy["train_pairs"] + roomy["test_pairs"] == info["converted"]


def test_reward_model_on_real_data_reports_held_out_accuracy(setup):
    from rlhf_lab.real_data import preference_accuracy, preference_splits
    from rlhf_lab.stages.reward import RewardSettings, load_reward_model, reward_cache_settings, train_reward_model

    profile, sft, sft_dir, out = setup
    settings = RewardSettings(epochs=1.0, batch_size=8, max_length=128, sft=sft)
    _, _, report = train_reward_model(profile, settings, out / "reward", sft_dir=sft_dir, progress=False)
    info = report["real_data"]
    assert report["pairs"] == info["train_pairs"] and report["real_test_pairs"] == info["test_pairs"]
    assert 0.0 <= report["real_test_accuracy"] <= 1.0
    assert "heldout_accuracy" not in report  # the lab world's gold pairs are not what it learned
    # the reported accuracy is that of the saved model on the same held-out rows
    model, tokenizer = load_reward_model(profile, out / "reward")
    _, test, _ = preference_splits(str(HH), tokenizer, 128, max_pairs=1000, seed=profile.seed)
    again = preference_accuracy(model, tokenizer, test, max_length=128)
    assert again["accuracy"] == pytest.approx(report["real_test_accuracy"])
    assert again["mean_margin"] == pytest.approx(report["real_test_margin"], abs=1e-4)
    # the cache tells real data from the lab world
    world = reward_cache_settings(profile.replace(preference_data="world"), settings, None)
    assert "preference_data" not in world
    assert reward_cache_settings(profile, settings, None)["preference_data"]["source"] == str(HH.resolve())


def test_dpo_on_real_data_reports_held_out_accuracy(setup):
    from rlhf_lab.stages.dpo import DPOSettings, train_dpo

    profile, sft, sft_dir, out = setup
    _, _, report = train_dpo(profile, DPOSettings(epochs=1.0, batch_size=8, max_length=128, sft=sft), out / "dpo",
                             sft_dir=sft_dir, progress=False)
    assert report["pairs"] == report["real_data"]["train_pairs"]
    assert report["real_test_pairs"] == report["real_data"]["test_pairs"] >= 2
    assert 0.0 <= report["real_test_accuracy"] <= 1.0


def test_an_unknown_source_says_what_to_use():
    with pytest.raises(real_data.DataSourceError, match="not 'world', 'hh-rlhf', 'ultrafeedback'"):
        real_data.load_source("no-such-dataset")

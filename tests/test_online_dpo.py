"""Online DPO (rlhf_lab/stages/online_dpo.py, TRL's OnlineDPOTrainer): its settings are checked,
and a short run on the quick-settings SFT model trains pairs of its own samples judged by the
reward function, moves the adapter, saves it with its lineage, and reloads."""

import pytest
import torch

from rlhf_lab.config import get_profile
from rlhf_lab.pipeline import quick_settings
from model_helpers import session_cache  # noqa: F401  (fixture)

PROFILE, QUICK = quick_settings(get_profile("tiny"))


def test_settings_take_ppos_budget_and_reject_what_cannot_run():
    from rlhf_lab.ppo import PPOSettings
    from rlhf_lab.stages.online_dpo import OnlineDPOSettings

    settings = OnlineDPOSettings()
    assert settings.episodes == PPOSettings.steps * PPOSettings.batch_size  # PPO's answers sampled, two per prompt
    assert settings.steps == settings.episodes // (2 * settings.prompts_per_step)
    with pytest.raises(ValueError, match="multiple of 2 x prompts_per_step"):
        OnlineDPOSettings(episodes=100, prompts_per_step=16)
    with pytest.raises(ValueError, match="reward="):
        OnlineDPOSettings(reward="humans")


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_a_short_run_learns_from_judged_pairs_saves_and_reloads(session_cache, tmp_path):
    from rlhf_lab.cache import built_from
    from rlhf_lab.stages.common import load_adapter_policy
    from rlhf_lab.stages.online_dpo import OnlineDPOSettings, train_online_dpo
    from rlhf_lab.stages.reward import get_reward_model_dir

    reward_dir = get_reward_model_dir(PROFILE, QUICK.reward, progress=False)
    settings = OnlineDPOSettings(episodes=32, prompts_per_step=4, max_new_tokens=8, seed=PROFILE.seed)
    trainer, report = train_online_dpo(PROFILE, settings, tmp_path, reward_dir, progress=False)
    assert report["episodes"] == 32 and report["seconds"] > 0
    assert report["history"] and {"reward", "kl", "margin", "loss"} <= set(report["history"][0])
    lora_b = [p for name, p in trainer.model.named_parameters() if "lora_B" in name]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # LoRA's B starts at zero: the steps moved it
    assert built_from(tmp_path) == built_from(reward_dir)
    policy, _ = load_adapter_policy(PROFILE, tmp_path)
    saved = dict(policy.named_parameters())
    for name, p in trainer.model.named_parameters():
        if "lora_B" in name:
            assert torch.allclose(saved[name].float(), p.detach().float())
            break

"""RLOO and GRPO (rlhf_lab/stages/group_rl.py): the group baselines of rlhf_lab.losses are
the ones TRL's trainers compute, and a run with TRL trains, saves and reloads a policy.

The cross-check runs TRL's own trainers for one rollout on the quick-settings SFT model and
captures the advantages they computed (what ``_generate_and_score_completions`` hands to the
loss) next to the rewards our reward function returned.
"""

from dataclasses import replace

import pytest
import torch

from rlhf_lab import losses
from rlhf_lab.config import get_profile
from rlhf_lab.pipeline import quick_settings
from model_helpers import session_cache  # noqa: F401  (fixture)

PROFILE, QUICK = quick_settings(get_profile("tiny"))


def test_leave_one_out_baseline_excludes_the_sample_itself():
    rewards = torch.tensor([1.0, 2.0, 3.0, 6.0, 0.0, 0.0])
    assert torch.allclose(losses.leave_one_out_advantages(rewards, 3),
                          torch.tensor([-1.5, 0.0, 1.5, 6.0, -3.0, -3.0]))


def test_group_relative_advantages_are_zero_mean_unit_std_per_group():
    rewards = torch.tensor([0.0, 1.0, 5.0, 2.0, -1.0, -1.0, -1.0, 3.0])
    advantages = losses.group_relative_advantages(rewards, 4).view(2, 4)
    assert torch.allclose(advantages.mean(dim=1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(advantages.std(dim=1), torch.ones(2), atol=1e-3)
    unscaled = losses.group_relative_advantages(rewards, 4, scale=False)
    assert torch.allclose(unscaled, rewards - rewards.view(2, 4).mean(1).repeat_interleave(4))


def test_group_baselines_refuse_groups_of_one():
    with pytest.raises(ValueError, match="group_size"):
        losses.leave_one_out_advantages(torch.ones(4), 1)
    with pytest.raises(ValueError, match="multiple"):
        losses.group_relative_advantages(torch.ones(5), 2)


def quick_group_settings(method, **changes):
    from rlhf_lab.stages.group_rl import GroupRLSettings

    return replace(GroupRLSettings(method=method, steps=1, batch_size=8, mini_batch_size=8, epochs=1,
                                   max_new_tokens=8, kl_coef=0.05), **changes)


@pytest.fixture(scope="module")
def reward_dir(session_cache):
    from rlhf_lab.stages.reward import get_reward_model_dir

    return get_reward_model_dir(PROFILE, QUICK.reward, progress=False)


def captured_rollout(method, reward_dir, kl_coef):
    """One TRL rollout: the rewards our reward function gave and the advantages TRL computed."""
    from rlhf_lab.stages import group_rl

    settings = quick_group_settings(method, kl_coef=kl_coef)
    seen = {"rewards": [], "advantages": []}
    original_reward = group_rl.reward_function

    def recording_reward(*args, **kwargs):
        reward = original_reward(*args, **kwargs)

        def record(prompts, completions, **kw):
            values = reward(prompts, completions, **kw)
            seen["rewards"] += values
            return values
        record.__name__ = reward.__name__
        return record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(group_rl, "reward_function", recording_reward)
        from trl import GRPOTrainer, RLOOTrainer

        trainer_class = GRPOTrainer if method == "grpo" else RLOOTrainer
        original_score = trainer_class._generate_and_score_completions

        def capture(self, inputs):
            output = original_score(self, inputs)
            seen["advantages"].append(output["advantages"].detach().clone())
            return output
        patch.setattr(trainer_class, "_generate_and_score_completions", capture)
        group_rl.train_group_rl(PROFILE, settings, None, reward_dir, progress=False)
    return torch.tensor(seen["rewards"]), torch.cat(seen["advantages"]), settings.samples_per_prompt


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_grpo_advantages_are_trls(reward_dir):
    rewards, advantages, group = captured_rollout("grpo", reward_dir, kl_coef=0.05)
    assert len(rewards) == len(advantages) == 8
    assert torch.allclose(losses.group_relative_advantages(rewards, group), advantages, atol=1e-4)


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_rloo_advantages_are_trls(reward_dir):
    # (beta 0: RLOO puts the KL into the reward, which our reward function does not see)
    rewards, advantages, group = captured_rollout("rloo", reward_dir, kl_coef=0.0)
    assert torch.allclose(losses.leave_one_out_advantages(rewards, group), advantages, atol=1e-4)


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_a_group_rl_policy_is_saved_with_its_lineage_and_reloads(reward_dir, tmp_path):
    from rlhf_lab.cache import built_from
    from rlhf_lab.stages.common import load_adapter_policy
    from rlhf_lab.stages.group_rl import train_group_rl

    _, report = train_group_rl(PROFILE, quick_group_settings("rloo", reward="verifiable"), tmp_path, reward_dir,
                               progress=False)
    assert report["episodes"] == 8 and report["seconds"] > 0
    assert report["history"] and {"reward", "gold_reward", "kl"} <= set(report["history"][0])
    assert built_from(tmp_path) == built_from(reward_dir)
    policy, _ = load_adapter_policy(PROFILE, tmp_path)
    assert hasattr(policy, "disable_adapter")  # the reference is the policy with its adapter off


def test_settings_like_ppo_copy_the_budget_and_reject_split_groups():
    from rlhf_lab.ppo import PPOSettings
    from rlhf_lab.stages.group_rl import GroupRLSettings

    config = PPOSettings(steps=7, batch_size=64, mini_batch_size=16, ppo_epochs=3, kl_coef=0.1)
    settings = GroupRLSettings.like_ppo(config, "rloo")
    assert (settings.episodes, settings.epochs, settings.kl_coef) == (7 * 64, 3, 0.1)
    with pytest.raises(ValueError, match="multiple"):
        GroupRLSettings(mini_batch_size=6)
    with pytest.raises(ValueError, match="method"):
        GroupRLSettings(method="ppo")

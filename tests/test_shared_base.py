"""One 4-bit base for every PPO role, on a tiny random-init Qwen2 model on the CPU:
the shared-base reward equals the separately loaded reward model's, the reference is the
base with adapters off, and a policy update leaves the reward adapter untouched."""

from pathlib import Path

import pytest
import torch

from rlhf_lab import chat, models, tiny_real
from rlhf_lab.config import get_profile
from rlhf_lab.shared_base import REWARD_ADAPTER, load_shared_base
from rlhf_lab.stages import pretrain

PROMPTS = ["What is 2+2?", "Please be polite.", "Answer question 3.", "Is the sky green?"]
RESPONSES = ["4.", "No.", "The answer to question 3 is 8, and more words follow here.", "Yes"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny Qwen2 'SFT model' and a reward model trained from it (random LoRA + score head)."""
    from rlhf_lab.cache import record_lineage

    root = tmp_path_factory.mktemp("shared_base")
    base_dir = tiny_real.save_tiny_real_architecture(root / "sft")
    profile = get_profile("gpu", device="cpu", base_model=str(base_dir))
    tokenizer = pretrain.get_tokenizer(profile)
    reward = models.load_model(base_dir, kind="reward", quantize_4bit=True, tokenizer=tokenizer,
                               lora=models.LoraSettings(8, 16, 0.05))
    torch.manual_seed(1)
    with torch.no_grad():  # a "trained" reward model: non-zero LoRA B and a real score head
        for name, param in reward.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.1)
    reward_dir = root / "reward"
    reward.save_pretrained(reward_dir / "adapter")
    record_lineage(reward_dir, base_dir)
    return profile, tokenizer, reward_dir


def test_shared_reward_equals_the_separately_loaded_reward_model(setup):
    from rlhf_lab.scoring import score_responses
    from rlhf_lab.stages.reward import load_reward_model

    profile, tokenizer, reward_dir = setup
    separate, _ = load_reward_model(profile, reward_dir)
    expected = score_responses(separate, tokenizer, PROMPTS, RESPONSES)
    shared = load_shared_base(profile, reward_dir, pretrain.get_tokenizer(profile))
    assert expected.std() > 0.1  # the reward model really distinguishes the responses
    torch.testing.assert_close(shared.score(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)
    # the padding and batching do not change a score
    torch.testing.assert_close(shared.score(PROMPTS[:1], RESPONSES[:1]), expected[:1], atol=1e-5, rtol=1e-5)
    # one base: the policy's 4-bit layers also carry the reward adapter
    lora_layers = [m for m in shared.policy.modules() if hasattr(m, "lora_A")]
    assert lora_layers and all(set(m.lora_A) == {"default", REWARD_ADAPTER} for m in lora_layers)
    import bitsandbytes as bnb

    assert any(isinstance(m, bnb.nn.Linear4bit) for m in shared.policy.modules())


def test_reference_is_the_base_with_adapters_off(setup):
    profile, tokenizer, reward_dir = setup
    shared = load_shared_base(profile, reward_dir, pretrain.get_tokenizer(profile))
    with torch.no_grad():
        for param in shared.policy.parameters():  # move the policy away from the base
            if param.requires_grad:
                param.add_(0.05)
    plain = models.load_model(profile.base_model, quantize_4bit=True, trainable=False)
    batch = tokenizer([chat.prompt_text(tokenizer, p) for p in PROMPTS], return_tensors="pt", padding=True,
                      add_special_tokens=False)
    with torch.no_grad(), shared.reference() as reference:
        reference.eval()
        ref_logits = reference(**batch).logits
    with torch.no_grad():
        policy_logits = shared.policy(**batch).logits
    torch.testing.assert_close(ref_logits, plain(**batch).logits, atol=1e-4, rtol=1e-4)
    assert (policy_logits - ref_logits).abs().max() > 1e-3


def test_policy_update_leaves_the_reward_adapter_untouched(setup):
    profile, tokenizer, reward_dir = setup
    shared = load_shared_base(profile, reward_dir, pretrain.get_tokenizer(profile))
    before = shared.reward_adapter_state()
    scores_before = shared.score(PROMPTS, RESPONSES)
    trainable = [p for p in shared.policy.parameters() if p.requires_grad]
    assert trainable and all(".default." in n for n, p in shared.policy.named_parameters() if p.requires_grad)
    policy_before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    batch = tokenizer([chat.prompt_text(tokenizer, p) + r for p, r in zip(PROMPTS, RESPONSES)],
                      return_tensors="pt", padding=True, add_special_tokens=False)
    shared.policy.train()
    for _ in range(2):
        shared.score(PROMPTS, RESPONSES)  # scoring between steps, as in PPO's rollout
        loss = shared.policy(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert any((p - q).abs().max() > 0 for p, q in zip(trainable, policy_before))  # the policy moved
    after = shared.reward_adapter_state()
    assert all(torch.equal(before[k], after[k]) for k in before)
    torch.testing.assert_close(shared.score(PROMPTS, RESPONSES), scores_before)


def test_ppo_step_with_the_shared_base(setup):
    """Our PPO trainer takes the shared base as is: policy, reward_fn, reference by adapters off."""
    from rlhf_lab.ppo import PPOSettings, PPOTrainer

    profile, tokenizer, reward_dir = setup
    shared = load_shared_base(profile, reward_dir, pretrain.get_tokenizer(profile))
    before = shared.reward_adapter_state()
    config = PPOSettings(steps=1, batch_size=4, mini_batch_size=2, ppo_epochs=1, max_new_tokens=6,
                       learning_rate=1e-2)
    trainer = PPOTrainer(shared.policy, tokenizer, shared.reward_fn, config)
    assert not any(f".{REWARD_ADAPTER}." in n for n, p in shared.policy.named_parameters()
                   if any(p is q for q in trainer.trainable_parameters))
    stats = trainer.step(PROMPTS)
    assert torch.isfinite(torch.tensor([v for v in stats.values() if isinstance(v, float)])).all()
    after = shared.reward_adapter_state()
    assert all(torch.equal(before[k], after[k]) for k in before)


def parameter_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def test_every_role_on_one_base_costs_little_more_than_the_policy(setup):
    """Memory held by the weights: shared base (policy + reward adapter + head) at most 1.3x
    the policy alone; a second base for the reward model costs far more."""
    from rlhf_lab.stages.reward import load_reward_model

    profile, tokenizer, reward_dir = setup
    policy_alone = models.load_model(profile.base_model, quantize_4bit=True, lora=models.LoraSettings(16, 32, 0.05))
    shared = load_shared_base(profile, reward_dir, pretrain.get_tokenizer(profile))
    separate_reward, _ = load_reward_model(profile, reward_dir)
    alone = parameter_bytes(policy_alone)
    together = parameter_bytes(shared.policy) + parameter_bytes(shared.score_head)
    assert together <= 1.3 * alone, (together, alone)
    assert alone + parameter_bytes(separate_reward) > 1.3 * together


def test_the_ppo_stage_uses_the_shared_base_when_the_profile_quantizes(setup, monkeypatch):
    """stages.ppo.train_ppo on a 4-bit profile: one base carries the policy and the reward
    adapter, and the reward it optimises is the shared base's score (no second model loaded)."""
    from rlhf_lab import shared_base
    from rlhf_lab.ppo import PPOSettings
    from rlhf_lab.stages import ppo as ppo_stage
    from rlhf_lab.stages.reward import load_reward_model

    profile, tokenizer, reward_dir = setup
    monkeypatch.setattr(ppo_stage, "load_reward_model", lambda *a, **k: pytest.fail("loaded a second reward model"))
    config = PPOSettings(steps=1, batch_size=4, samples_per_prompt=2, mini_batch_size=4, ppo_epochs=1, max_new_tokens=4)
    trainer, report = ppo_stage.train_ppo(profile, config, reward_dir=reward_dir, progress=False)
    assert isinstance(trainer.reward_fn.__self__, shared_base.SharedBase)
    assert trainer.reward_fn.__self__.policy is trainer.policy
    lora_layers = [m for m in trainer.policy.modules() if hasattr(m, "lora_A")]
    assert lora_layers and all(set(m.lora_A) == {"default", REWARD_ADAPTER} for m in lora_layers)
    separate, _ = load_reward_model(profile, reward_dir)
    from rlhf_lab.scoring import score_responses

    torch.testing.assert_close(trainer.reward_fn(PROMPTS, RESPONSES), score_responses(separate, tokenizer, PROMPTS,
                                                                                     RESPONSES), atol=1e-5, rtol=1e-5)
    assert len(report["history"]) == 1

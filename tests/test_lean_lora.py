"""rlhf_lab.lean_lora: the merged-weight LoRA layers compute what peft's do, within float
tolerance, and one PPO step with them matches one without (losses and gradients)."""

import copy

import pytest
import torch

import rlhf_lab.lean_lora as lean_lora_module
from rlhf_lab.lean_lora import lean_lora
from rlhf_lab.ppo import PPOTrainer

from test_ppo import PROMPTS, count_yes, make_policy, small_config, tokenizer  # noqa: F401  (fixture)


def with_trained_adapter(policy):
    """A fresh adapter has B = 0, so it adds nothing; give B values so the LoRA path counts."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return policy


def batch(tokenizer):
    return tokenizer([f"<|user|>{p}<|end|><|assistant|>" for p in PROMPTS[:6]], return_tensors="pt", padding=True)


def test_same_outputs_and_gradients_and_the_reference_is_exactly_the_base(tokenizer):
    policy, base = make_policy(tokenizer)
    policy = with_trained_adapter(policy)
    inputs = batch(tokenizer)

    def logits_and_grads(lean: bool):
        policy.zero_grad(set_to_none=True)
        lean_lora_module.ENABLED = lean
        try:
            with lean_lora(policy):
                logits = policy(**inputs).logits
                (logits.float().square().mean()).backward()
                with policy.disable_adapter(), torch.no_grad():
                    reference = policy(**inputs).logits
        finally:
            lean_lora_module.ENABLED = True
        grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.requires_grad}
        return logits.detach(), grads, reference

    plain_logits, plain_grads, plain_reference = logits_and_grads(lean=False)
    lean_logits, lean_grads, lean_reference = logits_and_grads(lean=True)
    torch.testing.assert_close(lean_logits, plain_logits, rtol=1e-5, atol=1e-5)
    assert plain_grads.keys() == lean_grads.keys() and any("lora_A" in n for n in lean_grads)
    for name in plain_grads:
        torch.testing.assert_close(lean_grads[name], plain_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    with torch.no_grad():
        base_logits = base(**inputs).logits
    assert torch.equal(lean_reference, plain_reference) and torch.equal(lean_reference, base_logits)


def test_peft_forward_is_back_after_the_block_and_base_weights_are_untouched(tokenizer):
    policy, _ = make_policy(tokenizer)
    before = {n: p.clone() for n, p in policy.named_parameters() if "base_layer" in n}
    with lean_lora(policy):
        swapped = [m for m in policy.modules() if "forward" in vars(m)]
        with lean_lora(policy):  # nested: the inner block leaves the outer's layers alone
            pass
        assert swapped and all("forward" in vars(m) for m in swapped)
        policy(**batch(tokenizer)).logits.sum().backward()
    assert not any("forward" in vars(m) for m in policy.modules())
    assert all(torch.equal(p, before[n]) for n, p in policy.named_parameters() if "base_layer" in n)


def test_layers_with_dropout_in_training_keep_peft_forward(tokenizer):
    policy, _ = make_policy(tokenizer, lora_dropout=0.5)
    policy = with_trained_adapter(policy).train()
    inputs = batch(tokenizer)
    with lean_lora(policy):
        torch.manual_seed(3)
        lean = policy(**inputs).logits
    torch.manual_seed(3)
    assert torch.equal(lean, policy(**inputs).logits)  # the same dropout draws: peft's own path ran


@pytest.mark.parametrize("lean", [False, True])
def test_lean_layers_are_used_inside_a_ppo_step(tokenizer, lean):
    policy, _ = make_policy(tokenizer)
    calls = []
    lean_lora_module.ENABLED = lean
    original = lean_lora_module._merged_forward
    lean_lora_module._merged_forward = lambda layer, x, *a, **k: calls.append(1) or original(layer, x, *a, **k)
    try:
        PPOTrainer(policy, tokenizer, count_yes, small_config(steps=1)).train(PROMPTS, progress=False)
    finally:
        lean_lora_module.ENABLED, lean_lora_module._merged_forward = True, original
    assert bool(calls) == lean


def test_one_ppo_step_matches_the_plain_path(tokenizer):
    """The same rollout, the first minibatch update: losses and gradients within float tolerance."""
    policy, _ = make_policy(tokenizer)
    policy = with_trained_adapter(policy)
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config())
    rollout = trainer.rollout([p for p in PROMPTS[:4] for _ in range(2)])
    advantages = torch.linspace(-1, 1, rollout.response_mask.numel()).view_as(rollout.response_mask)

    def update(lean: bool):
        twin = copy.deepcopy(trainer)
        twin.config = small_config(ppo_epochs=1, mini_batch_size=rollout.response_mask.size(0))  # one step
        gradients = {}

        def record_and_step():
            gradients.update({i: p.grad.clone() for i, p in enumerate(twin.trainable_parameters)})
            return True
        twin._clip_and_step = record_and_step
        lean_lora_module.ENABLED = lean
        try:
            with lean_lora(twin.policy):
                stats = twin._update(rollout, advantages, advantages)
        finally:
            lean_lora_module.ENABLED = True
        return stats, gradients

    plain_stats, plain_grads = update(lean=False)
    lean_stats, lean_grads = update(lean=True)
    for name in ("policy_loss", "value_loss", "approx_kl"):
        assert lean_stats[name] == pytest.approx(plain_stats[name], rel=1e-4, abs=1e-6), name
    for i in plain_grads:
        torch.testing.assert_close(lean_grads[i], plain_grads[i], rtol=1e-4, atol=1e-6)


def test_the_low_rank_backward_is_the_exact_gradient_of_every_input():
    """gradcheck in float64: x, the base weight and bias (when they train), A and B."""
    from rlhf_lab.lean_lora import LoraLinearFunction

    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    lora_a = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    lora_b = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LoraLinearFunction.apply, (x, weight, bias, lora_a, lora_b, 0.5))
    frozen = (x, weight.detach(), None, lora_a, lora_b, 0.5)  # LoRA's case: the base frozen, no bias
    assert torch.autograd.gradcheck(LoraLinearFunction.apply, frozen)

"""Tests of the PPO stage (rlhf_lab.ppo) and the PPO math it uses.

The fixture is a tiny random Llama-style model over a ~30-word vocabulary, built in
memory in well under a second, so these tests do not need the course's pretrained base.
"""

import copy
import math

import pytest
import torch

from rlhf_lab import losses
from rlhf_lab.ppo import OVERRIDABLE, KLController, PPOSettings, PPOTrainer, computes_in_float16

WORDS = (
    "yes no maybe the a cat dog sun moon tree red blue green big small "
    "i you we it is was and or but not very good bad hello thanks please"
).split()
# 1 to 4 words: prompts of different lengths, so left padding and position ids matter.
PROMPTS = [" ".join(WORDS[i : i + 1 + i % 4]) for i in range(len(WORDS) - 3)]
# The same chat template shape as the course's tokenizer (rlhf_lab.models).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}<|user|>{{ message['content'] }}<|end|>"
    "{%- else -%}<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>"]
    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    word_level = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|pad|>"))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    word_level.decoder = decoders.WordPiece()  # joins words with spaces
    tok = PreTrainedTokenizerFast(
        tokenizer_object=word_level,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
        padding_side="left",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_policy(tokenizer, seed=0, lora=True, lora_dropout=0.0, dtype=torch.float32):
    """A random tiny Llama (+ a fresh LoRA adapter): returns (policy, untouched copy of the base).

    ``dtype``: the base's weights (peft keeps the adapter's in fp32 over an fp16 or bf16 base)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        # Larger than the default 0.02: with tiny output weights the (untrained) lm_head
        # could barely make one word likelier, and there would be little to learn.
        initializer_range=0.1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    base = LlamaForCausalLM(config).to(dtype).eval()
    base_copy = copy.deepcopy(base)
    if not lora:
        return base, base_copy
    adapter = LoraConfig(r=8, lora_alpha=16, lora_dropout=lora_dropout, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(base, adapter), base_copy


def count_yes(prompts, responses):
    """+1 per occurrence of the word "yes" in the response."""
    return torch.tensor([r.split().count("yes") for r in responses], dtype=torch.float32)


def small_config(**changes):
    settings = dict(steps=3, batch_size=8, mini_batch_size=4, ppo_epochs=2, max_new_tokens=12, learning_rate=1e-2)
    settings.update(changes)
    return PPOSettings(**settings)


def response_logprobs(model, rollout, temperature=1.0):
    """log p(response tokens) under ``model``, computed here independently of the trainer."""
    positions = (rollout.attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(
            input_ids=rollout.input_ids, attention_mask=rollout.attention_mask, position_ids=positions
        ).logits
    response_length = rollout.response_mask.size(1)
    logits = logits[:, -response_length - 1 : -1] / temperature  # the positions that predict the response
    return losses.token_logprobs(logits, rollout.response_ids) * rollout.response_mask


# ---------------------------------------------------------------------------
# The math PPO uses
# ---------------------------------------------------------------------------


def test_gae_matches_a_hand_computed_case():
    # gamma = 0.9, lam = 0.5, so gamma * lam = 0.45; the value after the last token is 0.
    # Row 0: rewards (0, 0, 1), values (0.5, 0.4, 0.6), all three tokens count.
    #   t=2: delta = 1 + 0.9*0   - 0.6 =  0.4;  A = 0.4
    #   t=1: delta = 0 + 0.9*0.6 - 0.4 =  0.14; A = 0.14 + 0.45*0.4  = 0.32
    #   t=0: delta = 0 + 0.9*0.4 - 0.5 = -0.14; A = -0.14 + 0.45*0.32 = 0.004
    #   returns = A + V = (0.504, 0.72, 1.0)
    # Row 1: rewards (0, 2, 9), values (0.5, 1.0, 7.0), mask (1, 1, 0): the third column is
    # padding and must neither get nor pass on anything.
    #   t=1: delta = 2 + 0.9*0   - 1.0 = 1.0;  A = 1.0
    #   t=0: delta = 0 + 0.9*1.0 - 0.5 = 0.4;  A = 0.4 + 0.45*1.0 = 0.85
    #   returns = (1.35, 2.0, 0)
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 9.0]])
    values = torch.tensor([[0.5, 0.4, 0.6], [0.5, 1.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    advantages, returns = losses.gae_advantages(rewards, values, mask, gamma=0.9, lam=0.5)
    torch.testing.assert_close(advantages, torch.tensor([[0.004, 0.32, 0.4], [0.85, 1.0, 0.0]]))
    torch.testing.assert_close(returns, torch.tensor([[0.504, 0.72, 1.0], [1.35, 2.0, 0.0]]))


def test_gae_with_gamma_and_lambda_one_is_returns_to_go_minus_values():
    generator = torch.Generator().manual_seed(0)
    rewards = torch.randn(4, 7, generator=generator)
    values = torch.randn(4, 7, generator=generator)
    lengths = torch.tensor([7, 5, 3, 1])
    mask = (torch.arange(7) < lengths[:, None]).float()
    advantages, returns = losses.gae_advantages(rewards, values, mask, gamma=1.0, lam=1.0)
    # Reward still to come at t: the sum of the (masked) rewards from t to the end.
    rewards_to_go = (rewards * mask).flip(1).cumsum(1).flip(1) * mask
    torch.testing.assert_close(advantages, (rewards_to_go - values) * mask)
    torch.testing.assert_close(returns, rewards_to_go)


def test_first_token_advantages_keep_gae_on_the_first_token_and_zero_elsewhere():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 9.0]])
    values = torch.tensor([[0.5, 0.4, 0.6], [0.5, 1.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    full, full_returns = losses.gae_advantages(rewards, values, mask, gamma=0.9, lam=0.5)
    first, returns = losses.first_token_advantages(rewards, values, mask, gamma=0.9, lam=0.5)
    torch.testing.assert_close(first, torch.tensor([[0.004, 0.0, 0.0], [0.85, 0.0, 0.0]]))
    torch.testing.assert_close(returns, full_returns)  # the critic still learns every token's return
    assert full[:, 1:].abs().sum() > 0  # (GAE itself is untouched)


def test_policy_loss_gradient_is_zero_once_the_ratio_is_clipped_in_the_advantage_direction():
    old = torch.zeros(1, 4)
    mask = torch.ones(1, 4)
    # log-ratios: 1.5x and 0.5x, each with a positive and a negative advantage.
    logprobs = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5]])).requires_grad_()
    advantages = torch.tensor([[1.0, -1.0, -1.0, 1.0]])
    loss, clip_fraction, _ = losses.ppo_policy_loss(logprobs, old, advantages, mask, clip_range=0.2)
    loss.backward()
    grad = logprobs.grad[0]
    # ratio 1.5 > 1.2 with A > 0, and ratio 0.5 < 0.8 with A < 0: pushed far enough, no gradient.
    assert grad[0].item() == 0.0 and grad[2].item() == 0.0
    # Moved the wrong way: the unclipped term still pulls back. d(-A*r)/dlogp = -A*r / 4 tokens.
    assert grad[1].item() == pytest.approx(1.5 / 4)
    assert grad[3].item() == pytest.approx(-0.5 / 4)
    assert clip_fraction.item() == pytest.approx(0.5)


def test_adaptive_kl_controller_follows_ziegler_et_al():
    controller = KLController(0.1, adaptive=True, target=6.0, horizon=1000)
    controller.update(current_kl=12.0, n_samples=100)  # error clipped to +0.2
    assert controller.value == pytest.approx(0.1 * (1 + 0.2 * 100 / 1000))
    controller.update(current_kl=5.4, n_samples=100)  # error = 5.4 / 6 - 1 = -0.1
    assert controller.value == pytest.approx(0.1 * 1.02 * (1 - 0.1 * 100 / 1000))
    fixed = KLController(0.1, adaptive=False, target=6.0, horizon=1000)
    fixed.update(current_kl=100.0, n_samples=100)
    assert fixed.value == 0.1


# ---------------------------------------------------------------------------
# Rollouts and the reference model
# ---------------------------------------------------------------------------


def test_scoring_log_probs_are_those_of_the_sampling_distribution(tokenizer):
    # The helper above (used to check the trainer below) must score a left-padded batch the
    # way generate() sampled it: same positions, same logits.
    from types import SimpleNamespace

    policy, _ = make_policy(tokenizer)
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in PROMPTS[:8]]
    query = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert (query["attention_mask"] == 0).any()  # some prompts really are padded
    torch.manual_seed(0)
    out = policy.generate(**query, do_sample=True, top_k=0, max_new_tokens=6, min_new_tokens=6,
                          return_dict_in_generate=True, output_logits=True,
                          pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    response_ids = out.sequences[:, query["input_ids"].size(1):]
    sampled_logprobs = losses.token_logprobs(torch.stack(out.logits, dim=1), response_ids)
    rollout = SimpleNamespace(
        input_ids=out.sequences, response_ids=response_ids, response_mask=torch.ones_like(response_ids).float(),
        attention_mask=torch.cat([query["attention_mask"], torch.ones_like(response_ids)], dim=1))
    torch.testing.assert_close(response_logprobs(policy, rollout), sampled_logprobs, atol=1e-5, rtol=1e-5)


def test_rollout_masks_response_up_to_and_including_the_first_eos(tokenizer):
    policy, _ = make_policy(tokenizer)
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config(batch_size=16, max_new_tokens=16))
    rollout = trainer.rollout(PROMPTS[:16])
    eos = tokenizer.eos_token_id
    ended = 0
    for ids, mask, text in zip(rollout.response_ids, rollout.response_mask, rollout.responses):
        n = int(mask.sum())
        assert mask[:n].eq(1).all() and mask[n:].eq(0).all()  # one block from the start
        assert eos not in ids[: n - 1].tolist()  # no EOS before the last counted token
        if n < ids.numel() or ids[n - 1] == eos:
            assert ids[n - 1] == eos  # an early end is an EOS, and the EOS counts
            ended += 1
        assert text == tokenizer.decode(ids[:n], skip_special_tokens=True).strip()
    assert ended > 0  # the random model does stop sometimes, so the EOS path was exercised
    # The prompt is left-padded and the chat template's assistant header ends it.
    prompt_ids = rollout.input_ids[:, : -rollout.response_mask.size(1)]
    assert (prompt_ids[:, -1] == tokenizer.convert_tokens_to_ids("<|assistant|>")).all()
    assert rollout.scores.tolist() == count_yes(None, rollout.responses).tolist()


def test_log_probs_are_taken_at_the_sampling_temperature(tokenizer):
    policy, _ = make_policy(tokenizer)
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config(temperature=0.5))
    rollout = trainer.rollout(PROMPTS[:8])
    torch.testing.assert_close(rollout.old_logprobs, response_logprobs(policy, rollout, temperature=0.5))
    assert (rollout.old_logprobs - response_logprobs(policy, rollout)).abs().max() > 0.1


def test_kl_penalty_is_zero_when_the_policy_is_the_reference(tokenizer):
    # A fresh LoRA adapter has B = 0: the policy is exactly the base model.
    policy, _ = make_policy(tokenizer)
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config(kl_coef=0.5))
    rollout = trainer.rollout(PROMPTS[:8])
    assert torch.equal(rollout.ref_logprobs, rollout.old_logprobs)
    rewards, kl = losses.kl_penalized_rewards(
        rollout.scores, rollout.old_logprobs, rollout.ref_logprobs, rollout.response_mask, kl_coef=0.5
    )
    assert kl.abs().sum().item() == 0.0
    # The whole reward is the score, on each response's last token.
    expected = torch.zeros_like(rewards)
    last = losses.last_token_index(rollout.response_mask)
    expected[torch.arange(len(last)), last] = rollout.scores
    assert torch.equal(rewards, expected)
    # And the first PPO step, before any update, reports zero KL.
    fresh_policy, _ = make_policy(tokenizer)
    stats = PPOTrainer(fresh_policy, tokenizer, count_yes, small_config()).step(PROMPTS[:8])
    assert stats["kl"] == 0.0


def test_reference_is_the_base_model_with_the_adapter_off(tokenizer):
    policy, untouched_base = make_policy(tokenizer)
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config(learning_rate=3e-2))
    trainer.train(PROMPTS, progress=False)
    rollout = trainer.rollout(PROMPTS[:8])
    # The reference log-probs are those of the original base weights (a separate copy made
    # before training), and the same as the policy's own with its adapter disabled.
    torch.testing.assert_close(rollout.ref_logprobs, response_logprobs(untouched_base, rollout))
    with policy.disable_adapter():
        torch.testing.assert_close(rollout.ref_logprobs, response_logprobs(policy, rollout))
    # The policy itself has moved away from it.
    torch.testing.assert_close(rollout.old_logprobs, response_logprobs(policy, rollout))
    assert (rollout.old_logprobs - rollout.ref_logprobs).abs().max().item() > 1e-2
    assert trainer.log[-1]["kl"] > 0


def test_an_explicit_reference_model_for_full_fine_tuning(tokenizer):
    policy, reference = make_policy(tokenizer, lora=False)
    with pytest.raises(ValueError, match="ref_model"):
        PPOTrainer(policy, tokenizer, count_yes, small_config())
    frozen = {name: p.clone() for name, p in reference.named_parameters()}
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config(steps=2), ref_model=reference)
    first = trainer.rollout(PROMPTS[:8])
    assert torch.equal(first.ref_logprobs, first.old_logprobs)
    trainer.train(PROMPTS, progress=False)
    after = trainer.rollout(PROMPTS[:8])
    assert (after.old_logprobs - after.ref_logprobs).abs().max().item() > 1e-3
    for name, p in reference.named_parameters():
        assert torch.equal(p, frozen[name]), f"the reference model changed: {name}"


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def test_ppo_learns_to_say_yes_and_reports_kl(tokenizer):
    policy, _ = make_policy(tokenizer)
    gold_calls = []

    def metrics_fn(prompts, responses):
        gold_calls.append(len(responses))
        return {"gold_yes_share": sum(r.split().count("yes") for r in responses) / len(responses)}

    config = PPOSettings(steps=25, batch_size=16, mini_batch_size=8, max_new_tokens=16, learning_rate=3e-3)
    trainer = PPOTrainer(policy, tokenizer, count_yes, config, metrics_fn=metrics_fn)
    log = trainer.train(PROMPTS, progress=False)

    assert len(log) == 25 and log == trainer.log
    expected_keys = {"reward", "kl", "kl_coef", "entropy", "clip_fraction", "value_loss", "policy_loss",
                     "approx_kl", "response_length", "gold_yes_share"}
    assert expected_keys <= set(log[0])
    assert gold_calls == [16] * 25
    first = sum(s["reward"] for s in log[:5]) / 5
    last = sum(s["reward"] for s in log[-5:]) / 5
    # A random model says "yes" about once in 16 tokens; PPO should make it several times as often.
    assert first < 1.5
    assert last > first + 2.0, f"mean reward went {first:.2f} -> {last:.2f}"
    assert all(math.isfinite(s["kl"]) for s in log)
    assert log[-1]["kl"] > 0.5  # moving toward "yes" costs KL, and it is reported
    assert all(0 <= s["clip_fraction"] <= 1 and math.isfinite(s["value_loss"]) for s in log)
    assert all(s["kl_coef"] == config.kl_coef for s in log)  # fixed coefficient
    assert all(1 <= s["response_length"] <= 16 for s in log)


def test_a_step_makes_ppo_epochs_passes_of_minibatch_updates(tokenizer):
    minibatch_sizes = []

    def recording_policy_loss(logprobs, *args, **kwargs):
        minibatch_sizes.append(logprobs.size(0))
        return losses.ppo_policy_loss(logprobs, *args, **kwargs)

    policy, _ = make_policy(tokenizer)
    config = small_config(batch_size=8, mini_batch_size=3, ppo_epochs=3)
    trainer = PPOTrainer(policy, tokenizer, count_yes, config, overrides={"ppo_policy_loss": recording_policy_loss})
    trainer.step(PROMPTS[:8])
    assert minibatch_sizes == [3, 3, 2] * 3


def test_adaptive_kl_coefficient_rises_when_kl_is_above_target(tokenizer):
    policy, _ = make_policy(tokenizer)
    config = small_config(steps=6, adaptive_kl=True, target_kl=0.01, kl_horizon=100, learning_rate=3e-2)
    log = PPOTrainer(policy, tokenizer, count_yes, config).train(PROMPTS, progress=False)
    assert log[0]["kl_coef"] == config.kl_coef
    for before, after in zip(log, log[1:]):
        expected = 1 + max(min(before["kl"] / config.target_kl - 1, 0.2), -0.2) * config.batch_size / 100
        assert after["kl_coef"] == pytest.approx(before["kl_coef"] * expected)
    assert log[-1]["kl_coef"] > config.kl_coef


def test_same_seed_same_run_and_overrides_that_match_the_reference_change_nothing(tokenizer):
    calls = {name: 0 for name in OVERRIDABLE}

    def counted(name):
        def fn(*args, **kwargs):
            calls[name] += 1
            return getattr(losses, name)(*args, **kwargs)

        return fn

    overrides = {name: counted(name) for name in OVERRIDABLE}
    config = small_config(ptx_coef=0.5, ptx_batch_size=4)  # with PPO-ptx on, so its loss is used too
    plain = PPOTrainer(make_policy(tokenizer)[0], tokenizer, count_yes, config, pretraining_texts=PRETRAINING_TEXTS)
    overridden = PPOTrainer(make_policy(tokenizer)[0], tokenizer, count_yes, config, overrides=overrides,
                            pretraining_texts=PRETRAINING_TEXTS)
    assert plain.train(PROMPTS, progress=False) == overridden.train(PROMPTS, progress=False)
    assert all(count > 0 for count in calls.values()), calls  # every override was really used


def test_a_wrong_override_name_is_a_clear_error(tokenizer):
    policy, _ = make_policy(tokenizer)
    with pytest.raises(ValueError, match="gae_advantages"):  # the message lists the valid names
        PPOTrainer(policy, tokenizer, count_yes, small_config(), overrides={"gae": losses.gae_advantages})
    with pytest.raises(ValueError, match="must be a function"):
        PPOTrainer(policy, tokenizer, count_yes, small_config(), overrides={"gae_advantages": 1.0})


def test_value_head_save_and_load(tokenizer, tmp_path):
    policy, _ = make_policy(tokenizer)
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config(steps=2))
    trainer.train(PROMPTS, progress=False)
    trainer.save(tmp_path)
    other = PPOTrainer(make_policy(tokenizer)[0], tokenizer, count_yes, small_config())
    other.load_value_head(tmp_path)
    for a, b in zip(trainer.value_head.parameters(), other.value_head.parameters()):
        assert torch.equal(a, b) and a.abs().sum() > 0
    assert (tmp_path / "adapter_config.json").exists()


def test_ppo_on_a_4bit_nf4_base_with_lora(tokenizer, tmp_path):
    # The gpu profile's setup (4-bit NF4 base + LoRA), run on CPU: bitsandbytes supports it.
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    _, base = make_policy(tokenizer, lora=False)
    base.save_pretrained(tmp_path / "base")
    quantized = AutoModelForCausalLM.from_pretrained(
        tmp_path / "base",
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_compute_dtype=torch.float32),
        device_map="cpu",
    )
    for module in quantized.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            # CPU trap (see STACK_NOTES): the AVX512-BF16 inference kernel has no backward.
            module.support_avx512bf16_for_cpu = False
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in quantized.modules())
    quantized = prepare_model_for_kbit_training(quantized, use_gradient_checkpointing=False)
    policy = get_peft_model(quantized, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                  task_type="CAUSAL_LM"))
    config = PPOSettings(steps=15, batch_size=16, mini_batch_size=8, max_new_tokens=16, learning_rate=3e-3)
    trainer = PPOTrainer(policy, tokenizer, count_yes, config)
    log = trainer.train(PROMPTS, progress=False)
    assert log[0]["kl"] == 0.0
    first = sum(s["reward"] for s in log[:3]) / 3
    last = sum(s["reward"] for s in log[-3:]) / 3
    assert last > first + 1.0, f"mean reward went {first:.2f} -> {last:.2f}"
    rollout = trainer.rollout(PROMPTS[:8])
    with policy.disable_adapter():
        torch.testing.assert_close(rollout.ref_logprobs, response_logprobs(policy, rollout))
    assert (rollout.old_logprobs - rollout.ref_logprobs).abs().max().item() > 1e-2


# ---------------------------------------------------------------------------
# The critic does not drag the policy; eval-mode updates
# ---------------------------------------------------------------------------


def test_the_value_loss_trains_the_value_head_only(tokenizer):
    """The value head reads detached features: its loss gives the policy's LoRA weights no gradient."""
    policy, _ = make_policy(tokenizer)
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config())
    rollout = trainer.rollout(PROMPTS[:4])
    _, values = trainer._response_logits(policy, rollout.input_ids, rollout.attention_mask,
                                         rollout.response_mask.size(1), with_values=True)
    (values ** 2).sum().backward()
    lora_grads = [p.grad for n, p in policy.named_parameters() if "lora_" in n]
    assert lora_grads and all(g is None or g.abs().max() == 0 for g in lora_grads)
    assert all(p.grad is not None for p in trainer.value_head.parameters())


def test_first_ratio_is_one_even_with_lora_dropout(tokenizer):
    """Rollout and update both run without dropout: before any optimizer step the new
    log-probs equal the rollout's, so nothing is clipped and the approximate KL is 0."""
    policy, _ = make_policy(tokenizer, lora_dropout=0.5)
    with torch.no_grad():  # a non-zero adapter, so dropout on it would change the outputs
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    config = small_config(batch_size=8, mini_batch_size=8, ppo_epochs=1, learning_rate=0.0, value_learning_rate=0.0)
    stats = PPOTrainer(policy, tokenizer, count_yes, config).step(PROMPTS[:8])
    assert stats["approx_kl"] == pytest.approx(0.0, abs=1e-6)
    assert stats["clip_fraction"] == 0.0


def test_scores_are_normalised_by_running_statistics():
    from rlhf_lab.ppo import RunningScoreNorm

    norm = RunningScoreNorm()
    first = norm(torch.tensor([10.0, 12.0, 14.0]))
    torch.testing.assert_close(first, torch.tensor([-1.0, 0.0, 1.0]))
    second = norm(torch.tensor([12.0]))  # stats now over 4 scores: mean 12
    assert second.item() == pytest.approx(0.0)


def test_a_large_value_loss_does_not_shrink_the_policy_step(tokenizer):
    """Policy and value gradients are clipped apart: with scores in the thousands (a value
    loss with a huge gradient) the policy's first update is the one it makes without any
    value loss. A joint clip would scale the policy's step down by the critic's gradient."""
    def thousand_times_yes(prompts, responses):  # varies between responses: the advantages are not 0
        return 1000.0 * (count_yes(prompts, responses) + torch.tensor([len(r.split()) for r in responses]))

    start, _ = make_policy(tokenizer)
    initial = torch.cat([p.detach().flatten() for n, p in start.named_parameters() if "lora_" in n])
    updated = []
    for vf_coef in (1.0, 0.0):
        policy, _ = make_policy(tokenizer)
        config = small_config(batch_size=8, mini_batch_size=8, ppo_epochs=1, vf_coef=vf_coef,
                              normalize_scores=False, samples_per_prompt=1)
        PPOTrainer(policy, tokenizer, thousand_times_yes, config).step(PROMPTS[:8])
        updated.append(torch.cat([p.detach().flatten() for n, p in policy.named_parameters() if "lora_" in n]))
    assert not torch.equal(updated[0], initial)  # the policy did move
    torch.testing.assert_close(updated[0], updated[1])


# ---------------------------------------------------------------------------
# PPO-ptx (InstructGPT): a pretraining loss mixed into the update
# ---------------------------------------------------------------------------

PRETRAINING_TEXTS = [" ".join(WORDS[i : i + 5]) + " <|end|>" for i in range(0, len(WORDS) - 5)]


def test_pretraining_loss_is_the_language_model_loss_on_the_real_tokens(tokenizer):
    model, _ = make_policy(tokenizer, lora=False)
    batch = tokenizer(PRETRAINING_TEXTS[:4] + ["yes"], return_tensors="pt", padding=True, padding_side="right",
                      add_special_tokens=False)
    with torch.no_grad():
        logits = model(**batch).logits
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)  # transformers' own loss, pads ignored
        expected = model(**batch, labels=labels).loss
    torch.testing.assert_close(losses.pretraining_loss(logits, batch.input_ids, batch.attention_mask), expected)


def pretraining_nll(policy, tokenizer):
    batch = tokenizer(PRETRAINING_TEXTS, return_tensors="pt", padding=True, padding_side="right",
                      add_special_tokens=False)
    with torch.no_grad():
        return losses.pretraining_loss(policy(**batch).logits, batch.input_ids, batch.attention_mask).item()


def test_ptx_keeps_the_policy_on_its_pretraining_text(tokenizer):
    """The same PPO run (a "yes" reward, a large learning rate) with and without PPO-ptx: with
    it the policy's loss on the pretraining text ends lower, and the log reports that loss."""
    after = {}
    for ptx_coef in (0.0, 2.0):
        policy, _ = make_policy(tokenizer)
        config = small_config(steps=4, ptx_coef=ptx_coef, ptx_batch_size=4)
        trainer = PPOTrainer(policy, tokenizer, count_yes, config, pretraining_texts=PRETRAINING_TEXTS)
        log = trainer.train(PROMPTS, progress=False)
        after[ptx_coef] = pretraining_nll(policy, tokenizer)
        assert ("ptx_loss" in log[-1]) == (ptx_coef > 0)
    start, _ = make_policy(tokenizer)
    assert after[2.0] < after[0.0] and after[2.0] < pretraining_nll(start, tokenizer), (after, pretraining_nll(start, tokenizer))


def test_ptx_without_pretraining_texts_is_a_clear_error(tokenizer):
    policy, _ = make_policy(tokenizer)
    with pytest.raises(ValueError, match="pretraining_texts"):
        PPOTrainer(policy, tokenizer, count_yes, small_config(ptx_coef=1.0))
    with pytest.raises(ValueError, match="ptx_batch_size"):
        PPOTrainer(policy, tokenizer, count_yes, small_config(ptx_coef=1.0, ptx_batch_size=64),
                   pretraining_texts=PRETRAINING_TEXTS)


# ---------------------------------------------------------------------------
# Several processes: each samples with its own seed
# ---------------------------------------------------------------------------


def test_each_process_samples_with_its_own_seed(tokenizer, monkeypatch):
    """Under accelerate every process must draw its own random numbers (one seed for all
    would correlate their samples); process 0 keeps the one-process seed. No processes are
    launched: rollouts only read the accelerator's process index."""
    from types import SimpleNamespace

    monkeypatch.setattr(PPOTrainer, "_start_equal_on_every_process", lambda self: None)  # needs real processes

    def responses(accelerator):
        trainer = PPOTrainer(make_policy(tokenizer)[0], tokenizer, count_yes, small_config(), accelerator=accelerator)
        return [trainer.rollout(PROMPTS[:8]).responses for _ in range(2)]  # two rollouts: two seeds each

    alone = responses(None)
    process_0, process_1 = (responses(SimpleNamespace(process_index=i, num_processes=2)) for i in (0, 1))
    assert process_0 == alone
    assert process_0[0] != process_0[1]  # a new seed per rollout
    # ... and per process, not merely shifted by one rollout (seed + process index would be).
    assert process_1[0] not in process_0 and process_1[1] not in process_0


# ---------------------------------------------------------------------------
# float16 (a GPU without bf16, e.g. a T4): loss scaling
# ---------------------------------------------------------------------------


def lora_weights(policy) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for n, p in policy.named_parameters() if "lora_" in n])


@pytest.mark.parametrize("dtype, scaled", [(torch.float32, False), (torch.bfloat16, False), (torch.float16, True)])
def test_loss_scaling_only_when_the_policy_computes_in_float16(tokenizer, dtype, scaled):
    policy, _ = make_policy(tokenizer, dtype=dtype)
    assert {p.dtype for n, p in policy.named_parameters() if "lora_" in n} == {torch.float32}  # peft's choice
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config())
    assert computes_in_float16(policy) is scaled
    assert isinstance(trainer.scaler, torch.amp.GradScaler) if scaled else trainer.scaler is None


def test_float16_trainable_weights_are_a_clear_error(tokenizer):
    policy, reference = make_policy(tokenizer, lora=False, dtype=torch.float16)
    with pytest.raises(ValueError, match="trainable weights are float16.*fp32"):
        PPOTrainer(policy, tokenizer, count_yes, small_config(), ref_model=reference)


def test_float16_policy_trains_with_loss_scaling(tokenizer):
    """An fp16 base with an fp32 LoRA adapter (the T4 path, on CPU): the loss is scaled,
    nothing overflows, the adapter learns and stays finite, the frozen base stays as it was."""
    policy, _ = make_policy(tokenizer, dtype=torch.float16)
    base_before = {n: p.clone() for n, p in policy.named_parameters() if not p.requires_grad}
    start = lora_weights(policy)
    trainer = PPOTrainer(policy, tokenizer, count_yes, small_config())
    scaled_losses = []
    scale = trainer.scaler.scale

    def recording_scale(loss):
        scaled = scale(loss)
        scaled_losses.append((loss.item(), scaled.item()))
        return scaled

    trainer.scaler.scale = recording_scale
    log = trainer.train(PROMPTS, progress=False)
    assert len(scaled_losses) == 3 * 2 * 2  # steps x epochs x minibatches: every update
    assert all(big == pytest.approx(loss * 2.0**16, rel=1e-6) for loss, big in scaled_losses)
    assert [(s["skipped_updates"], s["loss_scale"]) for s in log] == [(0, 2.0**16)] * 3
    after = lora_weights(policy)
    assert torch.isfinite(after).all() and (after - start).abs().max() > 1e-3
    assert all(torch.isfinite(p).all() for p in trainer.value_head.parameters())
    assert all(torch.equal(p, base_before[n]) for n, p in policy.named_parameters() if not p.requires_grad)
    assert all(math.isfinite(s[k]) for s in log for k in ("policy_loss", "value_loss", "kl"))


def test_a_float16_update_whose_gradients_overflow_is_skipped(tokenizer):
    """Infinite gradients (here the first update's policy loss times inf) skip that optimizer
    step: the weights stay exactly as they were, the log says so, the scale halves; the next
    update trains as usual."""
    updates = []

    def overflowing_first_update(*args, **kwargs):
        loss, clip_fraction, approx_kl = losses.ppo_policy_loss(*args, **kwargs)
        updates.append(loss)
        return (loss * math.inf if len(updates) == 1 else loss), clip_fraction, approx_kl

    policy, _ = make_policy(tokenizer, dtype=torch.float16)
    config = small_config(batch_size=8, mini_batch_size=8, ppo_epochs=1)  # one update per step
    trainer = PPOTrainer(policy, tokenizer, count_yes, config, overrides={"ppo_policy_loss": overflowing_first_update})
    start = lora_weights(policy)
    value_head = [p.detach().clone() for p in trainer.value_head.parameters()]

    first = trainer.step(PROMPTS[:8])
    assert (first["skipped_updates"], first["loss_scale"]) == (1, 2.0**15)
    assert torch.equal(lora_weights(policy), start)
    assert all(torch.equal(p, q) for p, q in zip(trainer.value_head.parameters(), value_head))
    assert not trainer.optimizer.state  # Adam never stepped: no moments built from inf

    second = trainer.step(PROMPTS[:8])
    assert (second["skipped_updates"], second["loss_scale"]) == (0, 2.0**15)
    after = lora_weights(policy)
    assert torch.isfinite(after).all() and not torch.equal(after, start)

"""One quantized base for every role of PPO: policy, reference, reward model, value head.

Without this, PPO holds two copies of the base in memory: the policy's (with its LoRA
adapter; the reference is the same weights with the adapter off) and the reward model's
(a sequence classifier with its own adapter and score head). Both start from the same
SFT model, so their frozen weights are identical: only the adapters and the score head
differ. Here one base carries two LoRA adapters:

- ``"default"``: the **policy**'s adapter, the one PPO trains;
- ``"reward"``: the **reward model**'s adapter, frozen, with its **score head** (a small
  ``Linear(hidden, 1)``) beside the base;
- the **reference** is the base with every adapter switched off
  (``peft_model.disable_adapter()``, what :class:`rlhf_lab.ppo.PPOTrainer` already does);
- the **value head** of :class:`rlhf_lab.ppo.PPOTrainer` reads the policy's last hidden
  state, so it needs no base of its own either.

Scoring switches the active adapter to ``"reward"`` for one no-gradient forward pass and
back; the policy's trainable flags are restored exactly, so the optimizer never sees the
reward adapter and a policy update cannot touch it.

Usage (what the PPO stage does)::

    shared = load_shared_base(profile, reward_dir, get_tokenizer(profile))  # one 4-bit base in memory
    trainer = PPOTrainer(shared.policy, shared.tokenizer, shared.reward_fn, config)
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import models
from .cache import built_from
from .chat import exchange_texts
from .scoring import score_texts

POLICY_ADAPTER = "default"
REWARD_ADAPTER = "reward"
SCORE_KEY = "score.weight"


def reward_adapter_files(reward_dir) -> tuple[dict, dict]:
    """(adapter_config, tensors) of a reward model saved by ``stages/reward.py`` (its ``adapter/``)."""
    from safetensors.torch import load_file

    adapter_dir = Path(reward_dir) / "adapter"
    if not (adapter_dir / "adapter_model.safetensors").exists():
        raise FileNotFoundError(
            f"{adapter_dir} has no adapter_model.safetensors: not a reward model saved by "
            "rlhf_lab.stages.reward (train one with get_reward_model_dir(profile)).")
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    return config, load_file(str(adapter_dir / "adapter_model.safetensors"))


def add_reward_adapter(peft_model, reward_dir, adapter_name: str = REWARD_ADAPTER) -> nn.Linear:
    """Load a saved reward model's LoRA adapter into ``peft_model`` (a causal LM PeftModel on
    the same base) as a second, frozen adapter; return its score head as a separate module."""
    from peft import LoraConfig, TaskType, set_peft_model_state_dict

    saved, tensors = reward_adapter_files(reward_dir)
    if saved.get("peft_type") != "LORA":
        raise ValueError(f"{reward_dir}: the reward adapter is {saved.get('peft_type')}, not LoRA.")
    score_keys = [k for k in tensors if k.endswith(SCORE_KEY)]
    if len(score_keys) != 1:
        raise ValueError(f"{reward_dir}: expected one score head in the adapter (modules_to_save), "
                         f"found {score_keys}. Without it a reloaded reward model scores at random.")
    score_weight = tensors.pop(score_keys[0])
    config = LoraConfig(
        r=saved["r"], lora_alpha=saved["lora_alpha"], lora_dropout=saved.get("lora_dropout", 0.0),
        target_modules=saved["target_modules"], bias=saved.get("bias", "none"),
        use_rslora=saved.get("use_rslora", False), task_type=TaskType.CAUSAL_LM,
    )
    trainable = {n: p.requires_grad for n, p in peft_model.named_parameters()}
    active = peft_model.active_adapter
    peft_model.add_adapter(adapter_name, config)
    result = set_peft_model_state_dict(peft_model, tensors, adapter_name=adapter_name)
    missing = [k for k in result.missing_keys if f".{adapter_name}." in k]
    if missing or result.unexpected_keys:
        raise ValueError(f"{reward_dir}: the reward adapter does not fit this base "
                         f"(missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]}).")
    peft_model.base_model.set_adapter(active)
    for name, param in peft_model.named_parameters():
        param.requires_grad_(trainable.get(name, False))  # the reward adapter: frozen
    device = next(peft_model.parameters()).device
    head = nn.Linear(score_weight.shape[1], score_weight.shape[0], bias=False, device=device,
                     dtype=score_weight.dtype)
    with torch.no_grad():
        head.weight.copy_(score_weight)
    head.requires_grad_(False)
    return head


@contextlib.contextmanager
def active_adapter(peft_model, adapter_name: str):
    """Run with ``adapter_name`` active (frozen), then restore the previous adapter and every
    parameter's requires_grad exactly (peft's set_adapter would otherwise change them)."""
    previous = peft_model.active_adapter
    trainable = {n: p.requires_grad for n, p in peft_model.named_parameters()}
    peft_model.base_model.set_adapter(adapter_name, inference_mode=True)
    try:
        yield peft_model
    finally:
        peft_model.base_model.set_adapter(previous)
        for name, param in peft_model.named_parameters():
            param.requires_grad_(trainable[name])


def last_token_index(input_ids: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """Index of each row's last non-pad token: where a sequence classifier reads its score
    (the rule of transformers' *ForSequenceClassification)."""
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
    return (positions * (input_ids != pad_token_id)).argmax(-1)


@dataclass
class SharedBase:
    """One base model in memory with the policy's and the reward model's adapters."""

    policy: object  # peft PeftModel: the base + "default" (policy) + "reward" adapters
    score_head: nn.Linear
    tokenizer: object
    reward_adapter: str = REWARD_ADAPTER

    def score(self, user_texts, responses, batch_size: int = 32) -> torch.Tensor:
        """The reward model's score of each (prompt, response), shape (N,), on the CPU: the same
        numbers as ``scoring.score_responses`` on the separately loaded reward model."""
        model = self.policy
        decoder = model.get_base_model().model  # the transformer body, without the LM head
        device = next(model.parameters()).device

        def score_batch(enc) -> torch.Tensor:
            hidden = decoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             use_cache=False).last_hidden_state
            last = last_token_index(enc["input_ids"], self.tokenizer.pad_token_id)
            pooled = hidden[torch.arange(hidden.shape[0], device=device), last]
            return self.score_head(pooled.to(self.score_head.weight.dtype)).squeeze(-1)

        was_training = model.training
        model.eval()
        try:
            with active_adapter(model, self.reward_adapter):
                return score_texts(score_batch, self.tokenizer,
                                   exchange_texts(self.tokenizer, list(user_texts), list(responses)), device, batch_size)
        finally:
            model.train(was_training)

    def reward_fn(self, prompts, responses) -> torch.Tensor:
        """``reward_fn(prompts, responses)`` for :class:`rlhf_lab.ppo.PPOTrainer`."""
        return self.score(prompts, responses).to(next(self.policy.parameters()).device)

    @contextlib.contextmanager
    def reference(self):
        """The reference model: the base with every adapter off."""
        with self.policy.disable_adapter():
            yield self.policy

    def reward_adapter_state(self) -> dict[str, torch.Tensor]:
        """A copy of the reward adapter's weights and score head (to check they never change)."""
        state = {n: p.detach().clone() for n, p in self.policy.named_parameters() if f".{self.reward_adapter}." in n}
        state["score_head"] = self.score_head.weight.detach().clone()
        return state


def load_shared_base(profile, reward_dir, tokenizer, sft_dir=None, lora=None) -> SharedBase:
    """The PPO roles on one base: the reward model's SFT model (4-bit per the profile), a fresh
    policy adapter, and the saved reward model's adapter and score head from ``reward_dir``.
    ``tokenizer``: the profile's (``stages.pretrain.get_tokenizer(profile)``)."""
    sft_dir = Path(sft_dir or built_from(reward_dir))
    policy = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                               lora=lora or models.LoraSettings.from_profile(profile))
    head = add_reward_adapter(policy, reward_dir)
    return SharedBase(policy, head, tokenizer)

"""PPO for language models: the RL stage of RLHF, in one file you can read top to bottom.

TRL no longer ships a PPO trainer, so the course has its own. One PPO iteration
(:meth:`PPOTrainer.step`) is the loop of Ziegler et al. 2019 and InstructGPT (Ouyang et al. 2022):

1. **Rollout.** Sample one response per prompt from the policy.
2. **Score.** The reward function gives each whole response one number.
3. **KL penalty.** Every response token pays ``kl_coef * (log pi - log pi_ref)`` for drifting
   away from the reference model. With LoRA the reference is the same base model with the
   adapter switched off, so no second copy of the weights is needed.
4. **Advantages.** A value head predicts, at every token, the reward still to come; GAE turns
   rewards and values into advantages (how much better than expected each token was).
5. **Update.** A few epochs of minibatch steps on PPO's clipped policy loss plus the clipped
   value loss.

All the math lives in :mod:`rlhf_lab.losses`; this file only moves tensors around.

Shapes: ``B`` prompts per rollout, ``P`` prompt tokens (left-padded), ``R`` response columns.
Every per-token tensor is ``(B, R)``: column ``t`` is about response token ``t``, and
``response_mask`` is 1 on the tokens up to and including the first EOS.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
from peft import PeftModel
from torch import nn
from tqdm.auto import tqdm

from rlhf_lab import losses

RewardFn = Callable[[list[str], list[str]], torch.Tensor]
MetricsFn = Callable[[list[str], list[str]], dict]

# The functions of rlhf_lab.losses the trainer calls; `overrides` may replace any of them
# (the exercise notebooks plug a learner's own function in this way).
OVERRIDABLE = (
    "kl_penalized_rewards",
    "gae_advantages",
    "masked_whiten",
    "ppo_policy_loss",
    "ppo_value_loss",
    "masked_token_logprobs",
    "entropy_from_logits",
    "masked_mean",
)


@dataclass
class PPOConfig:
    """Settings of :class:`PPOTrainer`. The defaults run well on the tiny CPU profile.

    Parameters:
        steps: PPO iterations that :meth:`PPOTrainer.train` runs; each is one rollout
            followed by ``ppo_epochs`` passes of minibatch updates over it.
        batch_size: prompts per rollout (responses sampled per iteration).
        mini_batch_size: responses per gradient step; ``batch_size / mini_batch_size``
            optimizer steps per epoch.
        ppo_epochs: passes over each rollout. More reuses the samples harder; the clip
            keeps the policy from moving too far from the one that sampled them.
        learning_rate: Adam learning rate for the trainable policy weights (the LoRA
            adapter) and the value head. The default suits the tiny model; a real
            pretrained model (gpu profile) wants far less, around 1e-5 to 5e-5.
        max_new_tokens: longest response sampled; responses also end at EOS.
        temperature: sampling temperature. Log-probs are computed at the same temperature,
            so PPO optimises the distribution it samples from.
        kl_coef: weight ``beta`` of the per-token KL penalty to the reference model (the
            starting value when ``adaptive_kl`` is on). Higher: the policy stays closer to
            the reference and over-optimises the reward less.
        adaptive_kl: adapt ``kl_coef`` so the KL moves toward ``target_kl`` (Ziegler et al.
            2019); off: ``kl_coef`` stays fixed.
        target_kl: with ``adaptive_kl``, the per-sequence KL (nats, summed over tokens) the
            controller aims for.
        kl_horizon: with ``adaptive_kl``, how many samples the controller takes to correct
            an error; larger is slower and smoother.
        gamma: discount of future rewards per token. 1.0: the final score counts fully at
            every token of the response.
        lam: GAE's lambda, trading bias (0: trust the value head) for variance (1: use the
            observed rewards).
        clip_range: PPO's epsilon: the probability ratio ``pi / pi_old`` stops being pushed
            once it leaves ``[1 - eps, 1 + eps]`` in the advantage's direction.
        clip_range_value: how far a value prediction may move from its rollout value per update.
        vf_coef: weight of the value loss in the total loss.
        max_grad_norm: gradient norm clip of each optimizer step.
        whiten_advantages: normalise advantages to zero mean and unit variance over the
            rollout, so the step size does not depend on the reward scale.
        seed: seeds sampling and minibatch shuffling; the same seed on the same machine
            gives the same run.
    """

    steps: int = 40
    batch_size: int = 16
    mini_batch_size: int = 8
    ppo_epochs: int = 4
    learning_rate: float = 3e-3
    max_new_tokens: int = 24
    temperature: float = 1.0
    kl_coef: float = 0.05
    adaptive_kl: bool = False
    target_kl: float = 6.0
    kl_horizon: int = 10_000
    gamma: float = 1.0
    lam: float = 0.95
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 0.1
    max_grad_norm: float = 1.0
    whiten_advantages: bool = True
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "mini_batch_size", "ppo_epochs", "max_new_tokens", "kl_horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if self.mini_batch_size > self.batch_size:
            raise ValueError(
                f"PPOConfig.mini_batch_size ({self.mini_batch_size}) is larger than batch_size "
                f"({self.batch_size}): a minibatch is a part of one rollout. Lower mini_batch_size."
            )
        if self.temperature <= 0:
            raise ValueError(f"PPOConfig.temperature must be > 0 (PPO needs sampling), got {self.temperature}.")
        if self.kl_coef < 0 or self.target_kl <= 0:
            raise ValueError("PPOConfig.kl_coef must be >= 0 and target_kl > 0.")


@dataclass
class Rollout:
    """One batch of sampled experience; per-token tensors are (B, R) over the response columns."""

    prompts: list[str]  # the user messages
    responses: list[str]  # decoded responses, special tokens skipped, stripped
    input_ids: torch.Tensor  # (B, P + R) chat-formatted prompt (left-padded), then the response
    attention_mask: torch.Tensor  # (B, P + R) 1 on the prompt and on the response up to its EOS
    response_mask: torch.Tensor  # (B, R) float: 1 on response tokens up to and including the first EOS
    old_logprobs: torch.Tensor  # (B, R) log-prob of each token under the policy that sampled it
    ref_logprobs: torch.Tensor  # (B, R) log-prob of each token under the reference model
    values: torch.Tensor  # (B, R) value head's estimate of the return before each token
    scores: torch.Tensor  # (B,) reward_fn's score of each response
    entropy: torch.Tensor  # (B, R) entropy of the policy's next-token distribution

    @property
    def response_ids(self) -> torch.Tensor:
        return self.input_ids[:, -self.response_mask.size(1) :]


class ValueHead(nn.Module):
    """V(state): the return still to come, read off the policy's last hidden state.

    One fp32 Linear layer on top of the shared backbone, so the critic costs almost nothing.
    It starts at zero: V = 0 everywhere until it learns.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1, dtype=torch.float32)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden_states.float()).squeeze(-1)


class KLController:
    """The KL coefficient beta, fixed or adaptive (Ziegler et al. 2019, section 2.2).

    Adaptive: ``error = clip(KL / target - 1, -0.2, 0.2)`` and
    ``beta <- beta * (1 + error * n_samples / horizon)``: too much KL raises beta, too little
    lowers it, by at most 20% of ``n_samples / horizon`` per step.
    """

    def __init__(self, kl_coef: float, adaptive: bool, target: float, horizon: int):
        self.value = kl_coef
        self.adaptive = adaptive
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_samples: int) -> None:
        if self.adaptive:
            error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * n_samples / self.horizon


def _loss_functions(overrides: dict[str, Callable] | None) -> SimpleNamespace:
    """rlhf_lab.losses' functions by name, with any overrides swapped in."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(
            f"Unknown override(s) {unknown}: PPOTrainer can only replace these functions of "
            f"rlhf_lab.losses: {', '.join(OVERRIDABLE)}."
        )
    for name, fn in overrides.items():
        if not callable(fn):
            raise ValueError(f"Override {name!r} must be a function, got {type(fn).__name__}.")
    return SimpleNamespace(**{name: overrides.get(name, getattr(losses, name)) for name in OVERRIDABLE})


class PPOTrainer:
    """PPO with a KL penalty to a reference model, for a causal LM policy.

    Args:
        policy: the model to train. A ``peft.PeftModel`` (LoRA) by default: its reference is
            itself with the adapter disabled. Any other model needs ``ref_model``.
        tokenizer: its tokenizer, with a chat template, a pad token and an EOS token.
        reward_fn: ``reward_fn(prompts, responses) -> tensor (B,)``, one score per response.
        config: a :class:`PPOConfig`.
        ref_model: an explicit, frozen reference model (e.g. for full fine-tuning).
        metrics_fn: optional ``metrics_fn(prompts, responses) -> dict`` of extra numbers to
            log each step (e.g. the gold reward the policy never sees).
        overrides: replacements for functions of :mod:`rlhf_lab.losses`, by name (see
            ``OVERRIDABLE``).
    """

    def __init__(
        self,
        policy,
        tokenizer,
        reward_fn: RewardFn,
        config: PPOConfig | None = None,
        ref_model=None,
        metrics_fn: MetricsFn | None = None,
        overrides: dict[str, Callable] | None = None,
    ):
        self.config = config or PPOConfig()
        self.policy = policy
        self.tokenizer = tokenizer
        self.reward_fn = reward_fn
        self.metrics_fn = metrics_fn
        self.losses = _loss_functions(overrides)
        self.device = next(policy.parameters()).device

        if ref_model is None and not isinstance(policy, PeftModel):
            raise ValueError(
                "The policy is not a PeftModel, so there is no adapter to switch off for the "
                "reference: pass ref_model= (a frozen copy of the starting model), or wrap the "
                "policy with LoRA (peft.get_peft_model)."
            )
        self.ref_model = ref_model.eval() if ref_model is not None else None
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError(
                "The tokenizer needs a pad token and an EOS token: set tokenizer.pad_token "
                "(often to tokenizer.eos_token) before creating the PPOTrainer."
            )

        self.value_head = ValueHead(policy.config.get_text_config().hidden_size).to(self.device)
        trainable = [p for p in policy.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError(
                "The policy has no trainable parameters: add a LoRA adapter "
                "(load_model(..., lora=...)) or set requires_grad=True on the weights to train."
            )
        self.trainable_parameters = trainable + list(self.value_head.parameters())
        self.optimizer = torch.optim.Adam(self.trainable_parameters, lr=self.config.learning_rate)
        self.kl_controller = KLController(
            self.config.kl_coef, self.config.adaptive_kl, self.config.target_kl, self.config.kl_horizon
        )
        self.shuffle_generator = torch.Generator().manual_seed(self.config.seed)
        self.rollouts_done = 0
        self.log: list[dict] = []  # one dict of stats per step, over the trainer's whole life

    # -- forward passes -----------------------------------------------------------------

    def _response_logits(self, model, input_ids, attention_mask, response_length, with_values=False):
        """Logits (B, R, V) that predict the R response tokens, and the values (B, R) if asked.

        Position ids count real tokens only, as generate() does: with left padding the
        first real token is position 0, so scoring sees what sampling saw. (Rotary
        embeddings, as in Llama, only see relative positions; models with absolute
        position embeddings need this.)
        """
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=with_values,
            use_cache=False,
            logits_to_keep=response_length + 1,  # the large-vocab logits only where needed
        )
        # logits[:, t] predicts token t + 1: the R response tokens are predicted by the R
        # positions just before them.
        logits = out.logits[:, -response_length - 1 : -1] / self.config.temperature
        if not with_values:
            return logits, None
        values = self.value_head(out.hidden_states[-1][:, -response_length - 1 : -1])
        return logits, values

    @contextlib.contextmanager
    def reference_model(self):
        """The reference: the explicit ref_model, or the policy with its adapter switched off."""
        if self.ref_model is not None:
            yield self.ref_model
        else:
            with self.policy.disable_adapter():
                yield self.policy

    @contextlib.contextmanager
    def _sampling_seed(self):
        """generate() samples from torch's global RNG: seed it per rollout, then restore it."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.config.seed * 1_000_003 + self.rollouts_done)
            yield

    def _response_mask(self, response_ids: torch.Tensor) -> torch.Tensor:
        """1.0 on response tokens up to and including the first EOS, 0.0 after it."""
        is_eos = (response_ids == self.tokenizer.eos_token_id).long()
        eos_before = is_eos.cumsum(dim=1) - is_eos  # EOS tokens strictly before each position
        return (eos_before == 0).float()

    # -- 1-2. rollout and score ---------------------------------------------------------

    @torch.no_grad()
    def rollout(self, prompts: list[str]) -> Rollout:
        """Sample responses to ``prompts``, score them, and record what PPO needs."""
        self.policy.eval()
        texts = [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            )
            for p in prompts
        ]
        # The chat template already holds any special tokens the model expects.
        query = self.tokenizer(
            texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        ).to(self.device)
        with self._sampling_seed():
            sequences = self.policy.generate(
                input_ids=query["input_ids"],
                attention_mask=query["attention_mask"],
                max_new_tokens=self.config.max_new_tokens,
                do_sample=True,
                temperature=self.config.temperature,
                # Pure sampling, whatever the model's generation_config says: the log-probs
                # below must be those of the distribution the tokens came from.
                top_k=0,
                top_p=1.0,
                repetition_penalty=1.0,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        self.rollouts_done += 1
        response_ids = sequences[:, query["input_ids"].size(1) :]
        response_length = response_ids.size(1)
        mask = self._response_mask(response_ids)
        attention_mask = torch.cat([query["attention_mask"], mask.long()], dim=1)

        logits, values = self._response_logits(
            self.policy, sequences, attention_mask, response_length, with_values=True
        )
        old_logprobs = self.losses.masked_token_logprobs(logits, response_ids, mask)
        entropy = self.losses.entropy_from_logits(logits) * mask
        del logits
        with self.reference_model() as reference:
            ref_logits, _ = self._response_logits(reference, sequences, attention_mask, response_length)
        ref_logprobs = self.losses.masked_token_logprobs(ref_logits, response_ids, mask)

        responses = [
            self.tokenizer.decode(ids[m.bool()], skip_special_tokens=True).strip()
            for ids, m in zip(response_ids, mask)
        ]
        scores = torch.as_tensor(self.reward_fn(list(prompts), responses), dtype=torch.float32)
        if scores.shape != (len(prompts),):
            raise ValueError(
                f"reward_fn must return one score per response, shape ({len(prompts)},); "
                f"got shape {tuple(scores.shape)}."
            )
        return Rollout(
            prompts=list(prompts),
            responses=responses,
            input_ids=sequences,
            attention_mask=attention_mask,
            response_mask=mask,
            old_logprobs=old_logprobs,
            ref_logprobs=ref_logprobs,
            values=values * mask,
            scores=scores.to(self.device),
            entropy=entropy,
        )

    # -- 3-5. one PPO iteration ---------------------------------------------------------

    def step(self, prompts: list[str]) -> dict:
        """One PPO iteration on ``prompts``: rollout, KL-penalised rewards, GAE, updates."""
        batch = self.rollout(prompts)
        mask = batch.response_mask
        kl_coef = self.kl_controller.value

        # 3. Per-token rewards: every token pays for its KL; the score lands on the last one.
        rewards, kl = self.losses.kl_penalized_rewards(
            batch.scores, batch.old_logprobs, batch.ref_logprobs, mask, kl_coef
        )
        # 4. Advantages and the returns the value head learns to predict.
        advantages, returns = self.losses.gae_advantages(
            rewards, batch.values, mask, gamma=self.config.gamma, lam=self.config.lam
        )
        if self.config.whiten_advantages:
            advantages = self.losses.masked_whiten(advantages, mask)

        # 5. Several epochs of minibatch updates on this one rollout.
        update_stats = self._update(batch, advantages, returns)

        kl_per_sequence = kl.sum(dim=1).mean().item()  # sum of k1 over tokens, mean over sequences
        self.kl_controller.update(kl_per_sequence, n_samples=len(prompts))
        stats = {
            "step": len(self.log) + 1,
            "reward": batch.scores.mean().item(),
            "kl": kl_per_sequence,
            "kl_coef": kl_coef,
            "entropy": self.losses.masked_mean(batch.entropy, mask).item(),
            "response_length": mask.sum(dim=1).mean().item(),
            **update_stats,
        }
        if self.metrics_fn is not None:
            for name, value in self.metrics_fn(batch.prompts, batch.responses).items():
                if name in stats:
                    raise ValueError(f"metrics_fn returned {name!r}, a name PPOTrainer already logs: rename it.")
                stats[name] = float(value)
        self.log.append(stats)
        return stats

    def _update(self, batch: Rollout, advantages: torch.Tensor, returns: torch.Tensor) -> dict:
        """``ppo_epochs`` passes of shuffled minibatch steps; returns the mean of each loss stat."""
        config = self.config
        self.policy.train()
        response_length = batch.response_mask.size(1)
        totals = {"policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0}
        n_updates = 0
        for _ in range(config.ppo_epochs):
            order = torch.randperm(len(batch.prompts), generator=self.shuffle_generator).to(self.device)
            for start in range(0, len(order), config.mini_batch_size):
                idx = order[start : start + config.mini_batch_size]
                mask = batch.response_mask[idx]
                logits, values = self._response_logits(
                    self.policy, batch.input_ids[idx], batch.attention_mask[idx], response_length, with_values=True
                )
                logprobs = self.losses.masked_token_logprobs(logits, batch.response_ids[idx], mask)
                policy_loss, clip_fraction, approx_kl = self.losses.ppo_policy_loss(
                    logprobs, batch.old_logprobs[idx], advantages[idx], mask, config.clip_range
                )
                value_loss, _ = self.losses.ppo_value_loss(
                    values, batch.values[idx], returns[idx], mask, config.clip_range_value
                )
                loss = policy_loss + config.vf_coef * value_loss

                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.trainable_parameters, config.max_grad_norm)
                self.optimizer.step()

                for name, value in zip(totals, (policy_loss, value_loss, clip_fraction, approx_kl)):
                    totals[name] += value.item() if torch.is_tensor(value) else float(value)
                n_updates += 1
        self.policy.eval()
        return {name: total / n_updates for name, total in totals.items()}

    # -- the loop -----------------------------------------------------------------------

    def train(self, prompt_source: list[str], progress: bool = True) -> list[dict]:
        """Run ``config.steps`` PPO iterations on shuffled batches cycling through the prompts.

        Returns the stats of these steps (``self.log`` keeps all steps ever run).
        """
        prompts = list(prompt_source)
        if not prompts:
            raise ValueError("train() got no prompts: pass a non-empty list of user messages.")
        rng = random.Random(self.config.seed)
        queue: list[str] = []
        new_stats = []
        started = time.perf_counter()
        bar = tqdm(range(self.config.steps), desc="PPO", disable=not progress)
        for _ in bar:
            batch = []
            while len(batch) < self.config.batch_size:
                if not queue:  # a new pass over the prompts, in a new order
                    queue = prompts.copy()
                    rng.shuffle(queue)
                batch.append(queue.pop())
            stats = self.step(batch)
            new_stats.append(stats)
            bar.set_postfix(reward=f"{stats['reward']:.2f}", kl=f"{stats['kl']:.2f}")
        print(_summary(new_stats, time.perf_counter() - started))
        return new_stats

    # -- saving -------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Save the policy (its adapter, for a PeftModel) and the value head to ``directory``."""
        directory = Path(directory)
        self.policy.save_pretrained(directory)
        torch.save(self.value_head.state_dict(), directory / "value_head.pt")
        return directory

    def load_value_head(self, directory: str | Path) -> None:
        """Load a value head saved by :meth:`save`."""
        state = torch.load(Path(directory) / "value_head.pt", map_location=self.device, weights_only=True)
        self.value_head.load_state_dict(state)


def _summary(stats: list[dict], seconds: float) -> str:
    """One line: how reward and KL moved, first steps against last steps."""
    k = max(1, len(stats) // 5)

    def mean(key, rows):
        return sum(row[key] for row in rows) / len(rows)

    return (
        f"PPO: {len(stats)} steps in {seconds:.1f} s; reward {mean('reward', stats[:k]):.3f} -> "
        f"{mean('reward', stats[-k:]):.3f}, KL to reference {mean('kl', stats[:k]):.3f} -> "
        f"{mean('kl', stats[-k:]):.3f} (means of the first and last {k} steps)"
    )

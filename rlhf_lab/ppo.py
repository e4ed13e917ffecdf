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
   value loss (plus, with ``ptx_coef > 0``, the pretraining loss: InstructGPT's PPO-ptx).

Two design choices keep the optimiser honest (the course's control run, PPO against the
gold reward itself, is how they were found):

- **The critic does not drag the policy.** The value head reads the policy's hidden states
  *detached*: the value loss trains only the head, never the LoRA weights the policy
  shares with it. With a shared, undetached critic, fitting the values moved the policy
  away from the reward (KL 5.5 nats while the reward fell).
- **Scores are normalised** by running statistics (mean 0, std 1 over all scores so far),
  so ``kl_coef`` means the same thing whatever the reward model's scale.

Rollouts and updates both run in eval mode (no dropout): the first update's probability
ratio is then exactly 1, as PPO assumes. Sampling and scoring go through
:mod:`rlhf_lab.sampling`, the same path evaluation uses.

**float16 (a GPU without bf16, such as a free Colab T4).** fp16 rounds numbers below about
6e-8 to zero, so small gradients flowing back through fp16 layers would vanish. When
the policy computes in fp16, each update therefore uses loss scaling
(``torch.amp.GradScaler``), as TRL's trainers do with ``fp16=True``: the loss is multiplied
by a large factor before ``backward()``, the gradients are divided by it again before they
are clipped, and an optimizer step whose gradients overflowed (inf or nan) is skipped, the
weights untouched, and the factor halved. Each step's log says how many updates were
skipped (``skipped_updates``) and the factor (``loss_scale``). In bf16 and fp32 there is no
scaling: they have fp32's range.

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
from rlhf_lab.config import RESPONSE_TOKENS
from rlhf_lab.lean_lora import lean_lora
from rlhf_lab.sampling import response_logits, sample

RewardFn = Callable[[list[str], list[str]], torch.Tensor]
MetricsFn = Callable[[list[str], list[str]], dict]

# The functions of rlhf_lab.losses the trainer calls; `overrides` may replace any of them
# (the exercise notebooks plug a learner's own function in this way).
OVERRIDABLE = (
    "kl_penalized_rewards",
    "gae_advantages",
    "leave_one_out_advantages",
    "masked_whiten",
    "ppo_policy_loss",
    "ppo_value_loss",
    "masked_token_logprobs",
    "entropy_from_logits",
    "masked_mean",
    "pretraining_loss",
)


@dataclass
class PPOSettings:
    """Settings of :class:`PPOTrainer`. The defaults run well on the tiny CPU profile.

    Parameters:
        steps: PPO iterations that :meth:`PPOTrainer.train` runs; each is one rollout
            followed by ``ppo_epochs`` passes of minibatch updates over it.
        batch_size: responses sampled per rollout (``batch_size / samples_per_prompt`` prompts).
        samples_per_prompt: responses sampled per prompt in a rollout. Above 1, each score
            is first centred on the mean score of the *other* samples of its prompt (a
            leave-one-out baseline, as in RLOO): the family and difficulty of a prompt no
            longer add noise to the advantages, only how this response compared with its
            siblings does.
        mini_batch_size: responses per gradient step; ``batch_size / mini_batch_size``
            optimizer steps per epoch.
        ppo_epochs: passes over each rollout. More reuses the samples harder; the clip
            keeps the policy from moving too far from the one that sampled them.
        learning_rate: Adam learning rate for the trainable policy weights (the LoRA
            adapter). The default suits the tiny model; a real pretrained model (gpu
            profile) wants far less, around 1e-5 to 5e-5.
        value_learning_rate: Adam learning rate of the value head (it learns on its own,
            from detached features, so it can move faster than the policy).
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
        normalize_scores: divide scores (minus their running mean) by their running
            standard deviation before the KL penalty is added, so ``kl_coef`` is measured
            in units of the reward's spread.
        ptx_coef: weight of the pretraining loss mixed into every update (PPO-ptx,
            InstructGPT): the policy keeps predicting the pretraining text (pass it as
            ``pretraining_texts``) while RL moves it, so skills no reward asks about survive.
            0: plain PPO.
        ptx_batch_size: pretraining documents per update step when ``ptx_coef > 0``.
        seed: seeds sampling and minibatch shuffling; the same seed on the same machine
            gives the same run. With several processes each one samples with its own
            seed derived from it (process 0 with the one-process seed).

    There is no fp16 switch: :class:`PPOTrainer` scales the loss by itself when the policy
    computes in float16 (see :func:`computes_in_float16`).
    """

    steps: int = 60
    # Rollouts of 128 (32 prompts x 4), not 32: in the helpful-only world the control's lever is
    # episodes. Seed 0, held-out x 4 (experiments/ppo_rollout_size.py): the control's gold gain
    # over SFT went +0.06 [-0.14, +0.24] -> +0.33 [+0.12, +0.53] (harmful compliance 19% -> 6%),
    # PPO against the reward model +0.23 -> +0.29, harmful 26% -> 4%, sycophancy 11% -> 1%;
    # 85 s per run instead of 22 s on 2 CPU cores.
    batch_size: int = 128
    samples_per_prompt: int = 4
    mini_batch_size: int = 32
    ppo_epochs: int = 4
    learning_rate: float = 1e-4
    value_learning_rate: float = 3e-3
    max_new_tokens: int = RESPONSE_TOKENS
    temperature: float = 1.0
    kl_coef: float = 0.05
    adaptive_kl: bool = False
    target_kl: float = 6.0
    kl_horizon: int = 10_000
    gamma: float = 1.0
    lam: float = 0.95
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    vf_coef: float = 1.0
    max_grad_norm: float = 1.0
    whiten_advantages: bool = True
    normalize_scores: bool = True
    ptx_coef: float = 0.0
    ptx_batch_size: int = 16
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "mini_batch_size", "ppo_epochs", "max_new_tokens", "kl_horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOSettings.{name} must be at least 1, got {getattr(self, name)}.")
        if self.samples_per_prompt < 1 or self.batch_size % self.samples_per_prompt:
            raise ValueError(f"PPOSettings.batch_size ({self.batch_size}) must be a multiple of samples_per_prompt "
                             f"({self.samples_per_prompt}).")
        if self.mini_batch_size > self.batch_size:
            raise ValueError(
                f"PPOSettings.mini_batch_size ({self.mini_batch_size}) is larger than batch_size "
                f"({self.batch_size}): a minibatch is a part of one rollout. Lower mini_batch_size."
            )
        if self.temperature <= 0:
            raise ValueError(f"PPOSettings.temperature must be > 0 (PPO needs sampling), got {self.temperature}.")
        if self.kl_coef < 0 or self.target_kl <= 0:
            raise ValueError("PPOSettings.kl_coef must be >= 0 and target_kl > 0.")
        if self.ptx_coef < 0 or self.ptx_batch_size < 1:
            raise ValueError("PPOSettings.ptx_coef must be >= 0 and ptx_batch_size at least 1.")


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

    A small fp32 MLP on the backbone's features, **detached**: the value loss trains this
    head only, so fitting the critic never moves the policy's weights. It starts at zero:
    V = 0 everywhere until it learns.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden_size, dtype=torch.float32), nn.Tanh(),
                                 nn.Linear(hidden_size, 1, dtype=torch.float32))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.mlp(hidden_states.detach().float()).squeeze(-1)


def leave_one_out_centered(scores: torch.Tensor, prompts: list[str],
                           baseline=losses.leave_one_out_advantages) -> torch.Tensor:
    """Each score minus the mean score of the other responses to the same prompt (RLOO's
    baseline, ``baseline(group_scores, group_size)``); a prompt sampled once keeps its score."""
    centered = scores.clone()
    groups: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(prompt, []).append(i)
    for members in groups.values():
        if len(members) > 1:
            centered[members] = baseline(scores[members], len(members))
    return centered


class RunningScoreNorm:
    """Running mean and standard deviation of every score seen so far (Welford's method)."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        for x in scores.tolist():
            self.count += 1
            delta = x - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (x - self.mean)
        std = (self.m2 / (self.count - 1)) ** 0.5 if self.count > 1 else 1.0
        return (scores - self.mean) / max(std, 1e-4)


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


def computes_in_float16(model) -> bool:
    """Whether ``model``'s forward pass runs in float16 (a GPU without bf16, such as a T4).

    Read off the model itself, not its config (a model built in code has no dtype there) nor
    its logits: a 4-bit base computes in fp16 inside its quantized layers (their
    ``compute_dtype``) while every other weight, and so the logits, may be fp32; and peft
    keeps LoRA weights in fp32 over an fp16 base.
    """
    return any(p.dtype == torch.float16 for p in model.parameters()) or any(
        getattr(module, "compute_dtype", None) == torch.float16 for module in model.modules()
    )


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
        config: a :class:`PPOSettings`.
        ref_model: an explicit, frozen reference model (e.g. for full fine-tuning).
        metrics_fn: optional ``metrics_fn(prompts, responses) -> dict`` of extra numbers to
            log each step (e.g. the gold reward the policy never sees).
        overrides: replacements for functions of :mod:`rlhf_lab.losses`, by name (see
            ``OVERRIDABLE``).
        pretraining_texts: documents of the pretraining distribution, needed when
            ``config.ptx_coef > 0`` (PPO-ptx): each update step also lowers the policy's
            loss on ``config.ptx_batch_size`` of them.
        accelerator: an ``accelerate.Accelerator`` to train data parallel over several
            processes (``accelerate launch``, plain DDP): each process samples its own
            prompts (``config.batch_size`` per process), every gradient is averaged over the
            processes before each optimizer step, and the logged stats are means over them.
            Each process samples with its own seed. None: one process.

    A policy that computes in float16 is trained with loss scaling (``self.scaler``, a
    ``torch.amp.GradScaler``; None in bf16 and fp32): see the module's docstring.
    """

    def __init__(
        self,
        policy,
        tokenizer,
        reward_fn: RewardFn,
        config: PPOSettings | None = None,
        ref_model=None,
        metrics_fn: MetricsFn | None = None,
        overrides: dict[str, Callable] | None = None,
        accelerator=None,
        pretraining_texts: list[str] | None = None,
    ):
        self.config = config or PPOSettings()
        self.accelerator = accelerator
        self.num_processes = accelerator.num_processes if accelerator is not None else 1
        self.process_index = accelerator.process_index if accelerator is not None else 0
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
        self.policy_parameters = trainable
        self.trainable_parameters = trainable + list(self.value_head.parameters())
        self.optimizer = torch.optim.Adam([
            {"params": trainable, "lr": self.config.learning_rate},
            {"params": list(self.value_head.parameters()), "lr": self.config.value_learning_rate},
        ])
        self.scaler = self._fp16_loss_scaler(policy)
        if self.num_processes > 1:
            self._start_equal_on_every_process()
        self.score_norm = RunningScoreNorm()
        self.kl_controller = KLController(
            self.config.kl_coef, self.config.adaptive_kl, self.config.target_kl, self.config.kl_horizon
        )
        self.shuffle_generator = torch.Generator().manual_seed(self.config.seed)
        self.pretraining_batches = self._pretraining_batches(pretraining_texts)
        self.rollouts_done = 0
        self.log: list[dict] = []  # one dict of stats per step, over the trainer's whole life

    def _fp16_loss_scaler(self, policy):
        """A GradScaler when the policy computes in float16, else None (bf16, fp32)."""
        if not computes_in_float16(policy):
            return None
        half = [name for name, p in policy.named_parameters() if p.requires_grad and p.dtype == torch.float16]
        if half:
            raise ValueError(
                f"The policy computes in float16 and its trainable weights are float16 too ({half[0]}, ...): "
                "torch's GradScaler cannot unscale fp16 gradients, and Adam's small updates would round away "
                "in fp16 weights. Keep the trained weights in fp32: a peft LoRA adapter does by default "
                "(autocast_adapter_dtype=True), or call .float() on the modules you train."
            )
        return torch.amp.GradScaler(self.device.type)

    # -- forward passes -----------------------------------------------------------------

    def _response_logits(self, model, input_ids, attention_mask, response_length, with_values=False):
        """Logits (B, R, V) that predict the R response tokens, and the values (B, R) if asked."""
        with lean_lora(model):  # the same LoRA math in fewer operations (rlhf_lab.lean_lora)
            logits, hidden = response_logits(model, input_ids, attention_mask, response_length,
                                             self.config.temperature, hidden_states=with_values)
        return logits, (self.value_head(hidden) if with_values else None)

    @contextlib.contextmanager
    def reference_model(self):
        """The reference: the explicit ref_model, or the policy with its adapter switched off."""
        if self.ref_model is not None:
            yield self.ref_model
        else:
            with self.policy.disable_adapter():
                yield self.policy

    def _pretraining_batches(self, texts: list[str] | None):
        """An endless stream of tokenized pretraining batches (PPO-ptx), or None without ptx."""
        if self.config.ptx_coef == 0:
            return None
        if not texts:
            raise ValueError(
                f"PPOSettings.ptx_coef is {self.config.ptx_coef} but no pretraining_texts were given: pass "
                "documents of the pretraining distribution (PPOTrainer(..., pretraining_texts=...)), or set ptx_coef=0."
            )
        if len(texts) < self.config.ptx_batch_size:
            raise ValueError(f"{len(texts)} pretraining_texts is fewer than ptx_batch_size "
                             f"({self.config.ptx_batch_size}): pass more documents or lower ptx_batch_size.")
        generator = torch.Generator().manual_seed(self.config.seed + 1)

        def stream():
            while True:  # one shuffled pass over the documents after another
                order = torch.randperm(len(texts), generator=generator).tolist()
                for start in range(0, len(order) - self.config.ptx_batch_size + 1, self.config.ptx_batch_size):
                    batch = [texts[i] for i in order[start : start + self.config.ptx_batch_size]]
                    # Right padding: the documents start at position 0, as in pretraining.
                    yield self.tokenizer(batch, return_tensors="pt", padding=True, padding_side="right",
                                         add_special_tokens=False).to(self.device)
        return stream()

    def _pretraining_loss(self) -> torch.Tensor:
        """The policy's next-token loss on the next batch of pretraining documents."""
        batch = next(self.pretraining_batches)
        logits = self.policy(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
        return self.losses.pretraining_loss(logits, batch.input_ids, batch.attention_mask)

    # -- 1-2. rollout and score ---------------------------------------------------------

    @torch.no_grad()
    def rollout(self, prompts: list[str]) -> Rollout:
        """Sample responses to ``prompts``, score them, and record what PPO needs."""
        [batch] = sample(self.policy, self.tokenizer, list(prompts), self.config.max_new_tokens,
                         self.config.temperature, seed=self._rollout_seed(), batch_size=len(prompts))
        self.rollouts_done += 1
        self.policy.eval()  # no dropout: these log-probs are the ones the update's ratios compare with
        sequences, attention_mask, mask = batch.input_ids, batch.attention_mask, batch.response_mask
        response_ids = batch.response_ids
        response_length = response_ids.size(1)

        logits, values = self._response_logits(
            self.policy, sequences, attention_mask, response_length, with_values=True
        )
        old_logprobs = self.losses.masked_token_logprobs(logits, response_ids, mask)
        entropy = self.losses.entropy_from_logits(logits) * mask
        del logits
        with self.reference_model() as reference:
            ref_logits, _ = self._response_logits(reference, sequences, attention_mask, response_length)
        ref_logprobs = self.losses.masked_token_logprobs(ref_logits, response_ids, mask)

        responses = batch.responses
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

    def _rollout_seed(self) -> int:
        """A new sampling seed for every rollout, and for every process: with one seed the
        processes would draw their responses from the same random numbers. Process 0 keeps
        the one-process seeds; process i starts about i million rollouts further on."""
        return self.config.seed * 7919 + self.rollouts_done + 1_000_003 * self.process_index

    # -- 3-5. one PPO iteration ---------------------------------------------------------

    def step(self, prompts: list[str]) -> dict:
        """One PPO iteration on ``prompts``: rollout, KL-penalised rewards, GAE, updates."""
        batch = self.rollout(prompts)
        mask = batch.response_mask
        kl_coef = self.kl_controller.value

        # 3. Per-token rewards: every token pays for its KL; the score lands on the last one.
        scores = leave_one_out_centered(batch.scores, batch.prompts, self.losses.leave_one_out_advantages) \
            if self.config.samples_per_prompt > 1 else batch.scores
        scores = self.score_norm(scores) if self.config.normalize_scores else scores
        rewards, kl = self.losses.kl_penalized_rewards(
            scores, batch.old_logprobs, batch.ref_logprobs, mask, kl_coef
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
        stats = self._mean_over_processes(stats)
        self.kl_controller.update(stats["kl"], n_samples=len(prompts) * self.num_processes)
        self.log.append(stats)
        return stats

    def _update(self, batch: Rollout, advantages: torch.Tensor, returns: torch.Tensor) -> dict:
        """``ppo_epochs`` passes of shuffled minibatch steps; returns the mean of each loss stat."""
        config = self.config
        # Eval mode on purpose: with LoRA dropout on, the first ratio pi / pi_old would not be 1.
        self.policy.eval()
        response_length = batch.response_mask.size(1)
        totals = {"policy_loss": 0.0, "value_loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0}
        if config.ptx_coef > 0:
            totals["ptx_loss"] = 0.0
        n_updates = skipped = 0
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
                losses_now = [policy_loss, value_loss, clip_fraction, approx_kl]
                if config.ptx_coef > 0:  # PPO-ptx: keep predicting the pretraining text too
                    ptx_loss = self._pretraining_loss()
                    loss = loss + config.ptx_coef * ptx_loss
                    losses_now.append(ptx_loss)

                self.optimizer.zero_grad(set_to_none=True)
                self._backward(loss)
                skipped += not self._clip_and_step()

                for name, value in zip(totals, losses_now):
                    totals[name] += value.item() if torch.is_tensor(value) else float(value)
                n_updates += 1
        stats = {name: total / n_updates for name, total in totals.items()}
        if self.scaler is not None:
            stats.update(skipped_updates=skipped, loss_scale=self.scaler.get_scale())
        return stats

    def _clip_and_step(self) -> bool:
        """Clip the gradients and take the optimizer step. Returns False when fp16 loss
        scaling skipped the step (a gradient overflowed to inf or nan: the weights stay as
        they were and the scale is halved)."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        # Clipped apart: one joint norm would let a large value-loss gradient shrink
        # the policy's step (the critic dragging the policy through the clip).
        torch.nn.utils.clip_grad_norm_(self.policy_parameters, self.config.max_grad_norm)
        torch.nn.utils.clip_grad_norm_(self.value_head.parameters(), self.config.max_grad_norm)
        if self.scaler is None:
            self.optimizer.step()
            return True
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)  # skips optimizer.step() if any gradient is inf or nan
        self.scaler.update()  # halves the scale after a skip, doubles it after 2000 clean steps
        return self.scaler.get_scale() >= scale

    # -- several processes (accelerate launch) ------------------------------------------

    def _start_equal_on_every_process(self) -> None:
        """Copy process 0's trainable weights (LoRA, value head) to every process."""
        from accelerate.utils import broadcast

        with torch.no_grad():
            for param in self.trainable_parameters:
                param.copy_(broadcast(param.detach().clone(), from_process=0))

    def _backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()`` (in fp16, on the scaled loss); with several processes, then
        average every gradient over them (what DDP does), so every process takes the same
        optimizer step and the copies of the policy stay equal (an overflow on one process
        makes the average inf or nan on all: they all skip that step). One flat all-reduce:
        the LoRA weights are many small tensors."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        if self.num_processes == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.trainable_parameters]
        flat = self.accelerator.reduce(torch.cat([g.detach().float().flatten() for g in grads]), reduction="mean")
        offset = 0
        for param, grad in zip(self.trainable_parameters, grads):
            param.grad = flat[offset : offset + grad.numel()].view_as(grad).to(grad.dtype)
            offset += grad.numel()

    def _mean_over_processes(self, stats: dict) -> dict:
        """Each number of ``stats`` averaged over the processes (equal batches: the global mean)."""
        if self.num_processes == 1:
            return stats
        names = [name for name in stats if name != "step"]
        values = torch.tensor([float(stats[name]) for name in names], dtype=torch.float64,
                              device=self.accelerator.device)
        means = self.accelerator.reduce(values, reduction="mean").tolist()
        return {**stats, **dict(zip(names, means))}

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
        main_process = self.process_index == 0
        # mininterval, and no refresh on each postfix: at most one redraw a second, so a long run
        # in a notebook never floods the kernel's output queue.
        bar = tqdm(range(self.config.steps), desc="PPO", disable=not progress or not main_process, mininterval=1.0)
        per_process = self.config.batch_size
        for _ in bar:
            batch = []  # the prompts of every process; this one takes its own slice
            while len(batch) < per_process * self.num_processes:
                if not queue:  # a new pass over the prompts, in a new order
                    queue = prompts.copy()
                    rng.shuffle(queue)
                batch += [queue.pop()] * self.config.samples_per_prompt
            stats = self.step(batch[self.process_index * per_process : (self.process_index + 1) * per_process])
            new_stats.append(stats)
            bar.set_postfix(reward=f"{stats['reward']:.2f}", kl=f"{stats['kl']:.2f}", refresh=False)
        if main_process:
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

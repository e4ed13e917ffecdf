"""TRL's own code, run on the grader's tensors, as an outside reference.

- Token log-probs: ``trl.trainer.utils.selective_log_softmax`` is a plain function.
- Reward-model loss and DPO loss: TRL computes them inside ``RewardTrainer.compute_loss``
  and ``DPOTrainer._compute_loss``, methods that need a trainer and a model. We call those
  methods unchanged with a minimal stand-in for the trainer (only the attributes they read)
  and a stand-in model that returns the rewards / per-token log-probs we want to test. If a
  TRL upgrade changes what these methods read, the stand-in fails loudly here (and the
  grader's tests fail), rather than silently comparing with something else.

Importing TRL takes 5-10 s on 2 CPU cores (it pulls in transformers), too slow for instant
feedback. So tools/make_golden.py runs these functions once and stores TRL's results in
golden.json ("trl/..." entries); the grader compares against those, and
tests/test_grader.py runs TRL again and checks that it still returns the stored numbers.
"""

from __future__ import annotations

import collections
from types import SimpleNamespace

import torch


class _SingleProcessAccelerator:
    """What the trainers ask of accelerate's Accelerator on one process: nothing to gather."""

    device = torch.device("cpu")

    def gather(self, tensor):
        return tensor

    def gather_for_metrics(self, tensor):
        return tensor


def _metrics():
    return collections.defaultdict(lambda: collections.defaultdict(list))


def selective_logprobs(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """TRL's per-token log-probs (selective_log_softmax), zeroed outside ``mask``."""
    from trl.trainer.utils import selective_log_softmax

    return selective_log_softmax(logits.float(), labels) * mask


def reward_trainer_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """The loss trl.RewardTrainer.compute_loss returns for these rewards (no margin, no centering)."""
    from trl.trainer.reward_trainer import RewardTrainer

    batch = chosen_rewards.shape[0]
    rewards = torch.cat([chosen_rewards, rejected_rewards]).float().unsqueeze(-1)  # batch is [chosen; rejected]
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        args=SimpleNamespace(center_rewards_coefficient=None),
        accelerator=_SingleProcessAccelerator(),
        _total_train_tokens=0,
        _tp_size=1,
        _metrics=_metrics(),
    )
    inputs = {
        "input_ids": torch.zeros(2 * batch, 2, dtype=torch.long),
        "attention_mask": torch.ones(2 * batch, 2, dtype=torch.long),
    }
    return RewardTrainer.compute_loss(trainer, lambda **_: SimpleNamespace(logits=rewards), inputs)


def dpo_trainer_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """trl.DPOTrainer's sigmoid loss for these sequence log-probs, and the metrics it logs.

    The stand-in model spreads each sequence log-prob evenly over 3 completion tokens;
    DPOTrainer sums them back per sequence. Reference log-probs go in as precomputed.
    """
    from trl.trainer.dpo_trainer import DPOTrainer

    sequence_logps = torch.cat([policy_chosen_logps, policy_rejected_logps]).float()
    rows, length = sequence_logps.shape[0], 5
    completion_mask = torch.tensor([[0, 0, 1, 1, 1]] * rows)
    shifted = completion_mask[:, 1:]
    per_token_logps = shifted * sequence_logps.unsqueeze(1) / shifted.sum(dim=1, keepdim=True)
    zeros = torch.zeros(rows, length - 1)
    model_outputs = SimpleNamespace(
        log_probs=per_token_logps, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool()
    )
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=_SingleProcessAccelerator(),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=["sigmoid"],
        loss_weights=[1.0],
        beta=beta,
        use_weighting=False,
        _metrics=_metrics(),
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs = {
        "input_ids": torch.zeros(rows, length, dtype=torch.long),
        "attention_mask": torch.ones(rows, length, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": ref_chosen_logps.float(),
        "ref_rejected_logps": ref_rejected_logps.float(),
    }
    loss = DPOTrainer._compute_loss(trainer, lambda **_: model_outputs, inputs, False)
    logged = {key: values[-1] for key, values in trainer._metrics["train"].items()}
    return loss, logged

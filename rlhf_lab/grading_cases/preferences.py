"""Cases for the preference losses: bradley_terry_loss and dpo_loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rlhf_lab.grading_cases import (CaseFailed, Mistake, expect_close, golden, golden_case, grad_of, invariant,
                                    outputs)

LOG2 = math.log(2)

# ---------------------------------------------------------------------------
# Bradley-Terry reward-model loss
# ---------------------------------------------------------------------------

BT = ("loss",)

BT_MISTAKES = [
    Mistake(lambda c, r: -F.logsigmoid(c - r).sum(), "you summed over pairs: average them, so the loss "
            "does not grow with the batch size."),
    Mistake(lambda c, r: -F.logsigmoid(r - c).mean(), "the loss rewards preferring the rejected response: "
            "check the order of the difference."),
    Mistake(lambda c, r: F.logsigmoid(c - r).mean(), "a negative log-likelihood is >= 0: check the sign."),
]

BRADLEY_TERRY_CASES = [
    golden_case("bradley_terry_loss/batch", "loss on a stored batch of 8 pairs", BT,
                "The loss is the mean negative log-likelihood of 'chosen beats rejected'.", BT_MISTAKES),
]


@invariant("equal rewards give log 2 (a coin flip)")
def _bt_equal(function):
    rewards = torch.tensor([0.0, 1.5, -2.0])
    (loss,) = outputs(function(rewards, rewards.clone()), BT)
    expect_close(loss, torch.tensor(LOG2), "the loss for equal rewards",
                 "When r_chosen == r_rejected the model says 50/50, and -log(0.5) = log 2.")


@invariant("only the difference matters: adding 3 to both rewards changes nothing")
def _bt_shift(function):
    chosen, rejected = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.1, 0.5, -1.0])
    (loss,) = outputs(function(chosen, rejected), BT)
    (shifted,) = outputs(function(chosen + 3, rejected + 3), BT)
    expect_close(shifted, loss, "the loss after shifting both rewards",
                 "Bradley-Terry depends on r_chosen - r_rejected only.")


@invariant("stays finite for huge margins (+-100)")
def _bt_stable(function):
    (right,) = outputs(function(torch.tensor([100.0]), torch.tensor([-100.0])), BT)
    (wrong,) = outputs(function(torch.tensor([-100.0]), torch.tensor([100.0])), BT)
    hint = "log(sigmoid(x)) underflows to log(0) = -inf for very negative x; torch has a stable log-sigmoid."
    expect_close(right, torch.tensor(0.0), "the loss for a margin of +200", hint)
    expect_close(wrong, torch.tensor(200.0), "the loss for a margin of -200", hint, atol=1e-3)


@invariant("gradient raises the chosen reward and lowers the rejected one")
def _bt_gradient(function):
    chosen, rejected = torch.tensor([0.2, -0.4]), torch.tensor([0.1, 0.3])
    grad_chosen, grad_rejected = grad_of(function, chosen, rejected, pick=None)
    if not ((grad_chosen < 0).all() and (grad_rejected > 0).all()):
        raise CaseFailed("gradient descent on your loss does not push r_chosen up and r_rejected down: check the sign.")


@invariant("agrees with TRL's RewardTrainer.compute_loss", kind="trl")
def _bt_trl(function):
    entry = golden("trl/reward_trainer_loss")  # TRL's output, stored by tools/make_golden.py
    (loss,) = outputs(function(*entry["args"]), BT)
    expect_close(loss, entry["expected"], "your loss vs TRL's",
                 "TRL's RewardTrainer averages -log sigmoid(r_chosen - r_rejected) over the pairs.")


BRADLEY_TERRY_CASES += [_bt_equal, _bt_shift, _bt_stable, _bt_gradient, _bt_trl]

# ---------------------------------------------------------------------------
# DPO
# ---------------------------------------------------------------------------

DPO = ("loss", "chosen_rewards", "rejected_rewards")


def _dpo_without_beta(pc, pr, rc, rr, beta=0.1):
    c, r = pc - rc, pr - rr
    return -F.logsigmoid(c - r).mean(), c, r


def _dpo_without_reference(pc, pr, rc, rr, beta=0.1):
    c, r = beta * pc, beta * pr
    return -F.logsigmoid(c - r).mean(), c, r


def _dpo_swapped(pc, pr, rc, rr, beta=0.1):
    c, r = beta * (pc - rc), beta * (pr - rr)
    return -F.logsigmoid(r - c).mean(), c, r


DPO_MISTAKES = [
    Mistake(_dpo_without_beta, "beta is missing: the implicit reward is beta times the log-ratio."),
    Mistake(_dpo_without_reference, "the reference model is missing: the implicit reward compares the policy "
            "with the reference, response by response."),
    Mistake(_dpo_swapped, "the loss prefers the rejected response: check the order of the difference."),
]

DPO_CASES = [
    golden_case("dpo_loss/beta_0.1", "loss and implicit rewards on a stored batch (beta=0.1)", DPO,
                "Implicit reward = beta * (policy log-prob - reference log-prob); DPO is Bradley-Terry on them.",
                DPO_MISTAKES),
    golden_case("dpo_loss/beta_0.5", "the same batch with beta=0.5", DPO,
                "Use the beta argument, not a fixed number.", DPO_MISTAKES),
]


@invariant("policy == reference gives loss log 2 and zero rewards")
def _dpo_at_reference(function):
    logps_c, logps_r = torch.tensor([-12.0, -30.0, -7.5]), torch.tensor([-15.0, -22.0, -9.0])
    loss, chosen, rejected = outputs(function(logps_c, logps_r, logps_c.clone(), logps_r.clone(), beta=0.1), DPO)
    expect_close(loss, torch.tensor(LOG2), "the loss at the reference",
                 "Before training the policy is the reference: both implicit rewards are 0, a coin flip.")
    expect_close(chosen, torch.zeros(3), "chosen_rewards at the reference")
    expect_close(rejected, torch.zeros(3), "rejected_rewards at the reference")


@invariant("rewards are detached; the loss's gradient raises chosen and lowers rejected log-probs")
def _dpo_gradient(function):
    pc, pr = torch.tensor([-10.0, -8.0]), torch.tensor([-9.0, -11.0])
    rc, rr = torch.tensor([-10.5, -8.5]), torch.tensor([-9.5, -10.0])
    leaves = [x.clone().requires_grad_(True) for x in (pc, pr)]
    result = function(*leaves, rc, rr, beta=0.1)
    outputs(result, DPO)
    if any(isinstance(r, torch.Tensor) and r.requires_grad for r in result[1:]):
        raise CaseFailed("return the implicit rewards detached: they are for logging, not for gradients.")
    grad_chosen, grad_rejected, *_ = grad_of(function, pc, pr, rc, rr, beta=0.1)
    if not ((grad_chosen < 0).all() and (grad_rejected > 0).all()):
        raise CaseFailed("gradient descent on your loss does not raise the chosen log-prob and lower the "
                         "rejected one: check the sign and the order of the difference.")


@invariant("a response's reward depends only on policy - reference")
def _dpo_shift(function):
    pc, pr = torch.tensor([-10.0, -8.0]), torch.tensor([-9.0, -11.0])
    rc, rr = torch.tensor([-10.5, -8.5]), torch.tensor([-9.5, -10.0])
    base = outputs(function(pc, pr, rc, rr, beta=0.2), DPO)
    moved = outputs(function(pc - 4, pr + 2, rc - 4, rr + 2, beta=0.2), DPO)
    for name, a, b in zip(DPO, base, moved):
        expect_close(b, a, f"`{name}` after shifting policy and reference equally",
                     "Only the log-ratio log pi(y|x) - log pi_ref(y|x) of each response should matter.")


@invariant("agrees with TRL's DPOTrainer (loss, logged rewards/chosen and rewards/margins)", kind="trl")
def _dpo_trl(function):
    entry = golden("trl/dpo_trainer_loss")  # TRL's outputs, stored by tools/make_golden.py
    trl_loss, trl_chosen_mean, trl_margin = entry["expected"]
    loss, chosen, rejected = outputs(function(*entry["args"], **entry["kwargs"]), DPO)
    expect_close(loss, trl_loss, "your loss vs TRL's", "TRL's DPOTrainer (loss_type 'sigmoid') averages "
                 "-log sigmoid(beta * (chosen log-ratio - rejected log-ratio)) over the pairs.")
    expect_close(chosen.mean(), torch.tensor(trl_chosen_mean), "mean chosen reward vs TRL's rewards/chosen")
    expect_close((chosen - rejected).mean(), torch.tensor(trl_margin), "mean reward margin vs TRL's rewards/margins")


DPO_CASES += [_dpo_at_reference, _dpo_gradient, _dpo_shift, _dpo_trl]

"""Cases for ppo_policy_loss and ppo_value_loss."""

from __future__ import annotations

import torch

from rlhf_lab.grading_cases import CaseFailed, Mistake, expect_close, golden_case, grad_of, invariant, outputs

POLICY = ("loss", "clip_fraction", "approx_kl")
VALUE = ("loss", "clip_fraction")


def _masked_mean(values, mask):
    return (values * mask).sum() / mask.sum().clamp(min=1)


def _k3(logprobs, old_logprobs, mask):
    log_ratio = logprobs - old_logprobs
    return _masked_mean(torch.expm1(log_ratio) - log_ratio, mask)


def _policy_variant(combine, over_all_tokens=False, clip=True):
    def variant(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
        ratio = torch.exp(logprobs - old_logprobs)
        unclipped = -advantages * ratio
        clipped = -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range) if clip else unclipped
        per_token = combine(unclipped, clipped)
        loss = per_token.mean() if over_all_tokens else _masked_mean(per_token, mask)
        return loss, _masked_mean((clipped > unclipped).float(), mask), _k3(logprobs, old_logprobs, mask)

    return variant


POLICY_MISTAKES = [
    Mistake(_policy_variant(torch.min), "PPO keeps the pessimistic (larger) of the two per-token losses; "
            "you kept the smaller one."),
    Mistake(_policy_variant(torch.max, over_all_tokens=True), "average over the tokens where mask is 1, not "
            "over every position."),
    Mistake(_policy_variant(torch.max, clip=False), "the ratio is never clipped: clamp it to "
            "[1 - clip_range, 1 + clip_range] in the second term."),
]

POLICY_CASES = [
    golden_case("ppo_policy_loss/clip_0.2", "loss, clip fraction, approx KL on a stored batch (clip 0.2)", POLICY,
                "Per token: the larger of -A * ratio and -A * clip(ratio); masked mean. approx_kl is k3 between "
                "old and new policy.", POLICY_MISTAKES),
    golden_case("ppo_policy_loss/clip_0.1", "the same batch with clip_range=0.1", POLICY,
                "Use the clip_range argument.", POLICY_MISTAKES),
]


def _policy_batch():
    old = torch.tensor([[-1.0, -2.0, -0.5, -1.5], [-0.3, -1.1, -2.2, -0.9]])
    advantages = torch.tensor([[1.0, -0.5, 2.0, 0.3], [-1.2, 0.8, 0.1, -0.4]])
    mask = torch.tensor([[1.0, 1, 1, 0], [0, 1, 1, 1]])
    return old, advantages, mask


@invariant("ratio 1 (no update yet): loss = -mean advantage, nothing clipped, approx_kl 0")
def _at_old_policy(function):
    old, advantages, mask = _policy_batch()
    loss, clip_fraction, approx_kl = outputs(function(old.clone(), old, advantages, mask), POLICY)
    expect_close(loss, -_masked_mean(advantages, mask), "the loss at ratio 1",
                 "With pi == pi_old the ratio is 1 everywhere; average over response tokens only.")
    expect_close(clip_fraction, torch.tensor(0.0), "the clip fraction at ratio 1")
    expect_close(approx_kl, torch.tensor(0.0), "approx_kl at ratio 1")


@invariant("zero gradient once the ratio is past the clip range in the advantage's direction")
def _clipped_gradient(function):
    # Token 1: A > 0 and ratio 1.5 > 1.2. Token 2: A < 0 and ratio 0.5 < 0.8. Both should stop pushing.
    old = torch.tensor([[-1.0, -1.0]])
    logprobs = old + torch.log(torch.tensor([[1.5, 0.5]]))
    advantages, mask = torch.tensor([[1.0, -1.0]]), torch.ones(1, 2)
    (grad, *_) = grad_of(function, logprobs, old, advantages, mask, clip_range=0.2)
    if grad.abs().max() > 1e-6:
        raise CaseFailed("the loss still pushes tokens whose ratio has already moved past 1 +- clip_range "
                         "in the direction their advantage wants: the clipped term should win there.")


@invariant("nonzero gradient when the ratio moved past the clip range the wrong way")
def _unclipped_gradient(function):
    # A > 0 but ratio 0.5: the update went the wrong way, so PPO keeps the unclipped (pessimistic) term.
    old = torch.tensor([[-1.0, -1.0]])
    logprobs = old + torch.log(torch.tensor([[0.5, 1.5]]))
    advantages, mask = torch.tensor([[1.0, -1.0]]), torch.ones(1, 2)
    (grad, *_) = grad_of(function, logprobs, old, advantages, mask, clip_range=0.2)
    if (grad.abs() < 1e-4).any():
        raise CaseFailed("PPO only clips in the direction the advantage favours; when the ratio moved the "
                         "other way the loss must still push it back (the max of the two terms).")


@invariant("tokens where mask is 0 do not change the loss")
def _policy_mask(function):
    old, advantages, mask = _policy_batch()
    logprobs = old + 0.1
    base = outputs(function(logprobs, old, advantages, mask), POLICY)
    junk = torch.where(mask > 0, logprobs, torch.full_like(logprobs, 5.0))
    moved = outputs(function(junk, old, advantages, mask), POLICY)
    for name, a, b in zip(POLICY, base, moved):
        expect_close(b, a, f"`{name}` after changing masked-out log-probs",
                     "Reduce with a masked mean over response tokens.")


POLICY_CASES += [_at_old_policy, _clipped_gradient, _unclipped_gradient, _policy_mask]

# ---------------------------------------------------------------------------
# Value loss
# ---------------------------------------------------------------------------


def _value_variant(combine=torch.max, half=True, clip=True):
    def variant(values, old_values, returns, mask, clip_range_value=0.2):
        moved = torch.clamp(values - old_values, -clip_range_value, clip_range_value) if clip else values - old_values
        unclipped, clipped = (values - returns) ** 2, (old_values + moved - returns) ** 2
        loss = _masked_mean(combine(unclipped, clipped), mask) * (0.5 if half else 1.0)
        return loss, _masked_mean((clipped > unclipped).float(), mask)

    return variant


VALUE_MISTAKES = [
    Mistake(_value_variant(half=False), "almost: the value loss has a factor 1/2 in front."),
    Mistake(_value_variant(combine=torch.min), "keep the larger (pessimistic) of the two squared errors."),
    Mistake(_value_variant(clip=False), "the value is never clipped: V may move at most clip_range_value "
            "away from old_values in the clipped term."),
]

VALUE_CASES = [
    golden_case("ppo_value_loss/clip_0.2", "loss and clip fraction on a stored batch (clip 0.2)", VALUE,
                "0.5 * masked mean of the larger of the unclipped and clipped squared errors.", VALUE_MISTAKES),
]


@invariant("values == old_values: loss = 0.5 * mean squared error, nothing clipped")
def _value_at_old(function):
    old = torch.tensor([[0.5, -0.2, 1.0], [0.1, 0.3, 0.0]])
    returns = torch.tensor([[1.0, 0.0, 0.2], [0.4, -0.5, 2.0]])
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0]])
    loss, clip_fraction = outputs(function(old.clone(), old, returns, mask), VALUE)
    expect_close(loss, 0.5 * _masked_mean((old - returns) ** 2, mask), "the loss when the values have not moved",
                 "Nothing to clip yet: this is half the masked mean squared error.")
    expect_close(clip_fraction, torch.tensor(0.0), "the clip fraction when the values have not moved")


@invariant("zero gradient once V has moved past the clip range and the clipped error is larger")
def _value_clipped_gradient(function):
    # V moved +0.5 from V_old toward a return 1.0 above V_old: the clipped value (V_old + 0.2) is further
    # from the return, so the clipped error wins and V gets no gradient this update.
    old, returns = torch.tensor([[0.0]]), torch.tensor([[1.0]])
    (grad, *_) = grad_of(function, torch.tensor([[0.5]]), old, returns, torch.ones(1, 1), clip_range_value=0.2)
    if grad.abs().max() > 1e-6:
        raise CaseFailed("V moved 0.5 (> clip_range_value) and the clipped squared error is the larger one: "
                         "the loss should not push V any further in this update.")


VALUE_CASES += [_value_at_old, _value_clipped_gradient]

"""The cases behind ``rlhf_lab.grader.check``, one module per topic.

A case is a name, a kind (golden / invariant / trl / formula) and a ``run(function)``
that calls the learner's function and raises :class:`CaseFailed` with a hint when the
answer is wrong. Hints say what is wrong and where to look, never the code to write.

Golden numbers live in ``golden.json`` beside this file. They were computed by
rlhf_lab's own implementation; regenerate them with ``python tools/make_golden.py``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

GOLDEN_PATH = Path(__file__).with_name("golden.json")
ATOL = 1e-4
RTOL = 1e-4


class CaseFailed(AssertionError):
    """The learner's answer is wrong; the message is the hint shown in the table."""


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "golden", "invariant", "trl" or "formula"
    run: Callable[[Callable], None]


# ---------------------------------------------------------------------------
# Golden numbers: tensors stored as {"tensor": nested lists, "dtype": "float32"}
# ---------------------------------------------------------------------------


def encode(value):
    """JSON-friendly form of tensors, tuples and plain values (used by tools/make_golden.py)."""
    if isinstance(value, torch.Tensor):
        return {"tensor": value.tolist(), "dtype": str(value.dtype).removeprefix("torch.")}
    if isinstance(value, (tuple, list)) and not all(isinstance(v, str) for v in value):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(value):
    """Inverse of :func:`encode`; every call builds fresh tensors, so a case cannot leak changes."""
    if isinstance(value, dict) and set(value) == {"tensor", "dtype"}:
        return torch.tensor(value["tensor"], dtype=getattr(torch, value["dtype"]))
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    return value


@functools.lru_cache(maxsize=1)
def _golden_file() -> dict:
    if not GOLDEN_PATH.exists():
        raise FileNotFoundError(
            f"The grader's golden numbers are missing ({GOLDEN_PATH}). "
            "Regenerate them with `python tools/make_golden.py` from the course checkout."
        )
    return json.loads(GOLDEN_PATH.read_text())


def golden(key: str) -> dict:
    """The stored entry ``key``: {"args": [...], "kwargs": {...}, "expected": ...}, decoded."""
    entries = _golden_file()
    if key not in entries:
        raise KeyError(f"No golden entry {key!r} in {GOLDEN_PATH}; run `python tools/make_golden.py`.")
    return decode(entries[key])


# ---------------------------------------------------------------------------
# Comparing outputs, with hints
# ---------------------------------------------------------------------------


def outputs(result, names: Sequence[str]) -> tuple:
    """The learner's return value as a tuple of len(names) tensors, or a hint why not."""
    if len(names) == 1:
        result = (result,)
    elif not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = f"a {type(result).__name__}"
        if isinstance(result, (tuple, list)):
            got += f" of {len(result)} values"
        raise CaseFailed(f"return a tuple of {len(names)} values ({', '.join(names)}); got {got}.")
    tensors = []
    for name, value in zip(names, result):
        if value is None:
            raise CaseFailed(f"`{name}` is None: did you forget a `return`?")
        try:
            tensors.append(torch.as_tensor(value, dtype=torch.float32) if not isinstance(value, torch.Tensor)
                           else value.detach().float())
        except (TypeError, ValueError, RuntimeError):
            raise CaseFailed(f"`{name}` should be a tensor or a number; got a {type(value).__name__}.") from None
    return tuple(tensors)


def is_close(got: torch.Tensor, expected: torch.Tensor, atol: float = ATOL, rtol: float = RTOL) -> bool:
    expected = torch.as_tensor(expected, dtype=torch.float32)
    return got.shape == expected.shape and bool(torch.allclose(got.float(), expected, atol=atol, rtol=rtol))


def expect_close(got: torch.Tensor, expected, what: str, hint: str = "", atol: float = ATOL) -> None:
    """Fail with the shape or the size of the difference (not the expected values) and ``hint``."""
    expected = torch.as_tensor(expected, dtype=torch.float32)
    if got.shape != expected.shape:
        raise CaseFailed(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}".strip())
    if not torch.isfinite(got).all():
        raise CaseFailed(f"{what} contains inf or nan. {hint}".strip())
    if not torch.allclose(got.float(), expected, atol=atol, rtol=RTOL):
        diff = (got.float() - expected).abs().max().item()
        raise CaseFailed(f"{what} is off by up to {diff:.4g}. {hint}".strip())


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer: if the learner's output equals ``variant``'s, show ``hint``."""

    variant: Callable
    hint: str


def golden_case(key: str, name: str, names: Sequence[str], hint: str, mistakes: Sequence[Mistake] = ()) -> Case:
    """Call the function on stored inputs and compare every output with the stored answer."""

    def run(function):
        entry = golden(key)
        got = outputs(function(*entry["args"], **entry["kwargs"]), names)
        expected = entry["expected"] if len(names) > 1 else [entry["expected"]]
        if all(is_close(g, e) for g, e in zip(got, expected)):
            return
        for mistake in mistakes:
            fresh = golden(key)
            wrong = mistake.variant(*fresh["args"], **fresh["kwargs"])
            wrong = wrong if len(names) > 1 else (wrong,)
            if len(wrong) != len(got):
                continue
            if all(is_close(g, torch.as_tensor(w, dtype=torch.float32)) for g, w in zip(got, wrong)):
                raise CaseFailed(mistake.hint)
        for what, g, e in zip(names, got, expected):
            expect_close(g, e, f"`{what}`", hint)

    return Case(name, "golden", run)


def invariant(name: str, kind: str = "invariant"):
    """Decorator: turn ``def run(function): ...`` into a Case."""

    def wrap(run):
        return Case(name, kind, run)

    return wrap


def grad_of(function: Callable, *inputs: torch.Tensor, pick: int | None = 0, **kwargs) -> list[torch.Tensor]:
    """Gradients of the (first) output of ``function`` w.r.t. each of ``inputs``; zeros if none flows."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    result = function(*leaves, **kwargs)
    loss = result[pick] if pick is not None and isinstance(result, (tuple, list)) else result
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        raise CaseFailed("the loss does not depend on the inputs through autograd: compute it with torch "
                         "operations on the input tensors (no .item(), .detach() or numpy on the way).")
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]


def _registry() -> dict[str, list[Case]]:
    from rlhf_lab.grading_cases import advantages, kl, logprobs, ppo_losses, preferences, text

    return {
        "masked_token_logprobs": logprobs.CASES,
        "bradley_terry_loss": preferences.BRADLEY_TERRY_CASES,
        "dpo_loss": preferences.DPO_CASES,
        "kl_estimate": kl.KL_ESTIMATE_CASES,
        "kl_penalized_rewards": kl.KL_REWARD_CASES,
        "gae_advantages": advantages.CASES,
        "leave_one_out_advantages": advantages.RLOO_CASES,
        "group_relative_advantages": advantages.GRPO_CASES,
        "ppo_policy_loss": ppo_losses.POLICY_CASES,
        "ppo_value_loss": ppo_losses.VALUE_CASES,
        "distinct_n": text.DISTINCT_CASES,
        "best_of_n": text.BEST_OF_N_CASES,
    }


EXERCISES: dict[str, list[Case]] = _registry()

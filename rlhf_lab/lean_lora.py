"""The same LoRA layers in fewer operations: what makes PPO on the tiny CPU model faster.

peft's LoRA linear computes ``W x + s * B (A (dropout(x)))``: three matrix products, a
multiply and an add, with Python bookkeeping around them, in every one of the model's
28 adapted layers at every forward pass. On the tiny model these many small operations,
not the arithmetic, set the pace (``benchmarks/bench_ppo_speed.py`` measures both). Inside
``with lean_lora(model):`` each plain LoRA linear computes the same function as ONE product
with the merged weight ``W + s * B A``:

- the result equals peft's up to float rounding, and the gradients still reach A and B
  (the merged weight is rebuilt from them at every call);
- the backward pass (:class:`LoraLinearFunction`) computes the gradients of A and B through
  the rank-r products, never the full gradient of the merged weight that autograd would form
  and then throw away: half the full-size products of every adapted layer's backward;
- the base weight ``W`` is never written (peft's merge and unmerge would round it a little
  each time), so with the adapter switched off the layer is exactly the base model: PPO's
  reference stays what it was;
- a layer the lean path does not cover (dropout in effect, several adapters, DoRA, a 4-bit
  or Conv1D base) keeps peft's own forward.
"""

from __future__ import annotations

import contextlib
import types

import torch
from torch import nn
from torch.nn import functional as F

# Off: lean_lora() changes nothing (benchmarks/bench_ppo_speed.py times peft's own layers this way).
ENABLED = True


def _is_plain(layer) -> bool:
    """One vanilla LoRA adapter on an ordinary nn.Linear, weights of one dtype."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    if not isinstance(layer, LoraLinear) or type(layer.base_layer) is not nn.Linear:
        return False
    names = layer.active_adapters
    if len(names) != 1 or names[0] not in layer.lora_A or names[0] in layer.lora_variant:
        return False
    dtypes = {layer.base_layer.weight.dtype, layer.lora_A[names[0]].weight.dtype, layer.lora_B[names[0]].weight.dtype}
    return len(dtypes) == 1 and not layer.merged


class LoraLinearFunction(torch.autograd.Function):
    """``y = x (W + s B A)^T + bias`` with a backward pass that costs what LoRA needs.

    With ``M = W + s B A`` and ``g = dL/dy``: ``dL/dx = g M`` (one full product, as in any
    layer), ``dL/dB = s g^T (x A^T)`` and ``dL/dA = s (g B)^T x`` (products through the rank
    r). Autograd on the merged weight would also form ``dL/dM = g^T x``, as large as the
    layer, only to reduce it to A's and B's gradients."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling: float):
        merged = torch.addmm(weight, lora_b, lora_a, alpha=scaling)
        ctx.save_for_backward(x, merged, lora_a, lora_b)
        ctx.scaling = scaling
        return F.linear(x, merged, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, merged, lora_a, lora_b = ctx.saved_tensors
        need_x, need_weight, need_bias, need_a, need_b, _ = ctx.needs_input_grad
        g = grad_out.reshape(-1, grad_out.size(-1))  # (tokens, out)
        rows = x.reshape(-1, x.size(-1))  # (tokens, in)
        grad_x = grad_out @ merged if need_x else None
        grad_weight = g.t() @ rows if need_weight else None  # only if the base layer itself trains
        grad_bias = g.sum(0) if need_bias else None
        grad_a = ((g @ lora_b).t() @ rows).mul_(ctx.scaling) if need_a else None
        grad_b = (g.t() @ (rows @ lora_a.t())).mul_(ctx.scaling) if need_b else None
        return grad_x, grad_weight, grad_bias, grad_a, grad_b, None


def _merged_forward(layer, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x (W + s B A)^T + bias``; the adapter switched off: the base layer alone."""
    name = layer.active_adapters[0]
    dropout_active = layer.training and not isinstance(layer.lora_dropout[name], nn.Identity)
    if args or kwargs or layer.merged or dropout_active:
        return type(layer).forward(layer, x, *args, **kwargs)  # peft's own path
    if layer.disable_adapters:
        return layer.base_layer(x)
    base, lora_a, lora_b = layer.base_layer, layer.lora_A[name].weight, layer.lora_B[name].weight
    if not (torch.is_grad_enabled() and (lora_a.requires_grad or lora_b.requires_grad)):
        # sampling and scoring: no backward to prepare for (and no autograd.Function's overhead)
        return F.linear(x, torch.addmm(base.weight, lora_b, lora_a, alpha=layer.scaling[name]), base.bias)
    return LoraLinearFunction.apply(x, base.weight, base.bias, lora_a, lora_b, layer.scaling[name])


@contextlib.contextmanager
def lean_lora(model):
    """Within the block, ``model``'s plain LoRA linears run :func:`_merged_forward`; peft's
    forward is back afterwards. Models without LoRA pass through unchanged."""
    swapped = [layer for layer in model.modules() if ENABLED and "forward" not in vars(layer) and _is_plain(layer)]
    for layer in swapped:
        layer.forward = types.MethodType(_merged_forward, layer)
    try:
        yield model
    finally:
        for layer in swapped:
            del layer.forward

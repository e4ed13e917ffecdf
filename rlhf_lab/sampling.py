"""One way to sample and score responses, used everywhere: PPO's rollouts, evaluation,
best-of-n, the exercises and the tests.

- ``chat_prompts`` builds the chat-formatted, left-padded prompt batch from user messages.
- ``sample`` draws responses with the distribution made explicit: pure sampling at
  ``temperature`` (no top-k, top-p or repetition penalty, whatever a hub model's
  generation config says), or greedy decoding. It keeps the token ids it drew.
- ``response_logprobs`` scores those same token ids under any model, so a KL between two
  models is computed on exactly the tokens that were sampled, the way PPO computes it.
- ``best_of_n``: sample n, keep the one a reward model likes best.

Shapes: ``B`` sequences, ``P`` prompt tokens (left-padded), ``R`` response columns; a
response ends at its first EOS (included in ``response_mask``), the rest is padding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .chat import prompt_text
from .config import RESPONSE_TOKENS
from .lean_lora import lean_lora
from .losses import entropy_from_logits, masked_token_logprobs

GenerateFn = Callable[[list[str]], list[str]]
ScoreFn = Callable[[list[str], list[str]], Sequence[float] | torch.Tensor]


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def chat_prompts(tokenizer, user_texts: list[str], chat: bool = True) -> dict[str, torch.Tensor]:
    """Left-padded ``input_ids`` / ``attention_mask`` of the prompts, ending where the
    assistant starts to speak (``chat=False``: the raw texts, e.g. the capability probe)."""
    texts = [prompt_text(tokenizer, t) for t in user_texts] if chat else list(user_texts)
    # The chat template already holds any special tokens the model expects.
    return tokenizer(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)


def response_mask(response_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1.0 on response tokens up to and including the first EOS, 0.0 after it: (B, R)."""
    is_eos = (response_ids == eos_token_id).long()
    eos_before = is_eos.cumsum(dim=1) - is_eos  # EOS tokens strictly before each position
    return (eos_before == 0).float()


@dataclass
class SampleBatch:
    """Sampled responses with the token ids they were decoded from."""

    user_texts: list[str]
    responses: list[str]  # decoded, special tokens skipped, stripped
    input_ids: torch.Tensor  # (B, P + R) prompt (left-padded), then the response
    attention_mask: torch.Tensor  # (B, P + R) 1 on the prompt and on the response up to its EOS
    response_mask: torch.Tensor  # (B, R) float

    @property
    def response_ids(self) -> torch.Tensor:
        return self.input_ids[:, -self.response_mask.size(1):]


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """generate() samples from torch's global RNG: seed it, then restore it."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def sample(model, tokenizer, user_texts: list[str], max_new_tokens: int = RESPONSE_TOKENS, temperature: float = 1.0,
           greedy: bool = False, seed: int = 0, batch_size: int = 256, chat: bool = True) -> list[SampleBatch]:
    """Responses to ``user_texts``, in batches of ``batch_size``: pure sampling at
    ``temperature`` (or greedy decoding). Returns the batches; ``texts(batches)`` flattens."""
    was_training = model.training
    model.eval()  # no dropout while sampling (and the log-probs later are taken in eval mode too)
    device = model_device(model)
    batches = []
    for start in range(0, len(user_texts), batch_size):
        chunk = list(user_texts[start:start + batch_size])
        query = chat_prompts(tokenizer, chunk, chat).to(device)
        distribution = ({"do_sample": False} if greedy else
                        {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0})
        with seeded(seed * 1_000_003 + start, device), lean_lora(model):
            sequences = model.generate(**query, max_new_tokens=max_new_tokens, repetition_penalty=1.0,
                                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                       **distribution)
        response_ids = sequences[:, query["input_ids"].size(1):]
        mask = response_mask(response_ids, tokenizer.eos_token_id)
        responses = [tokenizer.decode(ids[m.bool()], skip_special_tokens=True).strip()
                     for ids, m in zip(response_ids, mask)]
        batches.append(SampleBatch(chunk, responses, sequences,
                                   torch.cat([query["attention_mask"], mask.long()], dim=1), mask))
    model.train(was_training)
    return batches


def texts(batches: list[SampleBatch]) -> list[str]:
    return [r for batch in batches for r in batch.responses]


def response_logits(model, input_ids, attention_mask, response_length: int, temperature: float = 1.0,
                    hidden_states: bool = False):
    """Logits (B, R, V) that predict the R response tokens (and the last hidden states if asked).

    Position ids count real tokens only, as generate() does: with left padding the first
    real token is position 0, so scoring sees what sampling saw.
    """
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                output_hidden_states=hidden_states, use_cache=False,
                logits_to_keep=response_length + 1)  # the large-vocab logits only where needed
    # logits[:, t] predicts token t + 1: the R response tokens are predicted by the R positions before them.
    logits = out.logits[:, -response_length - 1:-1] / temperature
    if not hidden_states:
        return logits, None
    return logits, out.hidden_states[-1][:, -response_length - 1:-1]


@torch.no_grad()
def response_logprobs(model, batches: list[SampleBatch], temperature: float = 1.0) -> torch.Tensor:
    """log p(response | prompt) of each sampled response under ``model``, summed over its
    tokens (EOS included), on the very token ids that were sampled: shape (N,)."""
    was_training = model.training
    model.eval()
    totals = []
    for batch in batches:
        logits, _ = response_logits(model, batch.input_ids, batch.attention_mask, batch.response_mask.size(1),
                                    temperature)
        totals.append(masked_token_logprobs(logits, batch.response_ids, batch.response_mask).sum(dim=1).cpu())
    model.train(was_training)
    return torch.cat(totals)


@torch.no_grad()
def mean_token_entropy(model, batches: list[SampleBatch], temperature: float = 1.0) -> float:
    """Entropy of ``model``'s next-token distribution (nats), averaged over every response
    token of ``batches``: how many choices the model still leaves open. Mode collapse is
    this falling toward 0."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    for batch in batches:
        logits, _ = response_logits(model, batch.input_ids, batch.attention_mask, batch.response_mask.size(1),
                                    temperature)
        total += (entropy_from_logits(logits) * batch.response_mask).sum().item()
        count += batch.response_mask.sum().item()
    model.train(was_training)
    return total / max(count, 1.0)


def best_of_n(prompts: list[str], generate: GenerateFn, score: ScoreFn, n: int) -> list[str]:
    """For every prompt, sample ``n`` responses and return the one ``score`` rates highest.

    - ``generate(prompts) -> responses``: one sampled response per prompt in the list
      (a list may repeat a prompt; each entry is an independent sample).
    - ``score(prompts, responses) -> scores``: one number per (prompt, response) pair,
      higher is better (a reward model, or the lab world's gold reward).

    Returns one response per prompt, in the order of ``prompts``. On a tie the earliest
    sample wins, so the result does not depend on how ties are broken by chance.
    """
    if n < 1:
        raise ValueError(f"best_of_n needs n >= 1 samples per prompt, got n={n}.")
    # One batched call: every prompt repeated n times, samples of a prompt side by side.
    repeated = [prompt for prompt in prompts for _ in range(n)]
    responses = generate(repeated)
    scores = torch.as_tensor(score(repeated, responses), dtype=torch.float64).reshape(len(prompts), n)
    best = scores.argmax(dim=1)  # the first maximum on ties
    return [responses[i * n + int(j)] for i, j in enumerate(best)]


@torch.no_grad()
def token_probabilities(model, tokenizer, user_text: str, response: str) -> list[tuple[str, int, float]]:
    """How sure the model is of each token of ``response`` to ``user_text``: a list of
    (token text, its first character in ``response``, the probability the model gives it
    after the prompt and the tokens before it), the closing EOS last (character ``len(response)``)."""
    prompt = chat_prompts(tokenizer, [user_text])["input_ids"].to(model_device(model))
    encoded = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
    response_ids = torch.tensor([encoded["input_ids"] + [tokenizer.eos_token_id]], device=prompt.device)
    input_ids = torch.cat([prompt, response_ids], dim=1)
    was_training = model.training
    model.eval()
    logits, _ = response_logits(model, input_ids, torch.ones_like(input_ids), response_ids.size(1))
    model.train(was_training)
    probs = logits[0].float().softmax(-1).gather(-1, response_ids[0, :, None])[:, 0].tolist()
    starts = [start for start, _ in encoded["offset_mapping"]] + [len(response)]
    return [(tokenizer.decode([i]), s, p) for i, s, p in zip(response_ids[0].tolist(), starts, probs)]

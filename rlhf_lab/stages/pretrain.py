"""Stage 0: the tiny base model, pretrained here on the lab world's "internet" text.

A byte-level BPE tokenizer is trained on the corpus, then a small Llama-style model learns
to predict the next token on packed blocks of it (GPT-style). The result is a plain
save_pretrained directory in the cache, holding the tokenizer and ``pretraining.json``
(loss curve, time, tokens). The gpu profile skips all this: its base model is a hub id and
its tokenizer the hub model's own, loaded through the same functions.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import cache, models
from ..config import Profile, TinyModelShape
from .builder import Builder

SPECIAL_TOKENS = {"pad": "<|pad|>", "user": "<|user|>", "assistant": "<|assistant|>", "end": "<|end|>"}

# The {% generation %} markers tell TRL which tokens are the assistant's, for
# assistant-only loss in SFT.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}<|user|>{{ message['content'] }}<|end|>"
    "{%- elif message['role'] == 'assistant' -%}<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{%- else -%}{{ raise_exception('Only user and assistant roles are supported, got ' + message['role']) }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)

PRETRAIN_DOCUMENTS = 24_000  # documents of 'internet' text drawn for pretraining


@dataclass(frozen=True)
class PretrainSettings:
    """How the tiny base model is pretrained. Defaults: what the tiny profile runs.

    The profile carries the same values (``pretrain_steps``, ``pretrain_batch_size``,
    ``pretrain_lr``, ``tiny_model``), so ``get_profile("tiny", pretrain_steps=30)`` works
    everywhere; ``from_profile`` reads them.
    """

    steps: int = 1200  # optimizer steps (linear warm-up over the first 5%, then cosine decay)
    batch_size: int = 16  # packed blocks of max_positions tokens per step
    learning_rate: float = 3e-3  # AdamW peak rate (tiny models tolerate a high one)
    documents: int = PRETRAIN_DOCUMENTS  # documents drawn from the world's corpus
    shape: TinyModelShape = TinyModelShape()  # the model's architecture

    @classmethod
    def from_profile(cls, profile: Profile) -> "PretrainSettings":
        return cls(steps=profile.pretrain_steps, batch_size=profile.pretrain_batch_size,
                   learning_rate=profile.pretrain_lr, shape=profile.tiny_model)


# ---------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------


def train_tokenizer(texts, vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models as bpe_models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(bpe_models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    # padding_side must be given here: set afterwards it is not saved (transformers 5).
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token=SPECIAL_TOKENS["pad"],
        eos_token=SPECIAL_TOKENS["end"],
        additional_special_tokens=[SPECIAL_TOKENS["user"], SPECIAL_TOKENS["assistant"]],
        padding_side="left",
        model_max_length=4096,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def world_texts(world, n_documents: int) -> list[str]:
    """The pretraining documents as plain strings, chats written with the chat template."""
    texts = []
    for kind, payload in world.pretraining_documents(n_documents):
        if kind == "chat":
            user, assistant = payload
            texts.append(f"{SPECIAL_TOKENS['user']}{user}{SPECIAL_TOKENS['end']}"
                         f"{SPECIAL_TOKENS['assistant']}{assistant}{SPECIAL_TOKENS['end']}")
        else:
            texts.append(payload + SPECIAL_TOKENS["end"])
    return texts


def get_tokenizer(profile: Profile):
    """The profile's tokenizer: the base model directory holds it."""
    from transformers import AutoTokenizer

    if profile.real_model:
        tokenizer = AutoTokenizer.from_pretrained(profile.base_model, padding_side="left")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    return AutoTokenizer.from_pretrained(get_base_model_dir(profile))


# ---------------------------------------------------------------------------
# The tiny base model: build, pretrain, cache, load
# ---------------------------------------------------------------------------


def tiny_model_config(shape: TinyModelShape, tokenizer):
    """The Llama architecture of the tiny base model, sized by ``shape``."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=shape.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )


def pack_documents(tokenizer, texts: list[str], block_size: int) -> torch.Tensor:
    """Concatenate all token ids and cut them into blocks of ``block_size`` (GPT-style)."""
    ids = [i for enc in tokenizer(texts, add_special_tokens=False)["input_ids"] for i in enc]
    n_blocks = len(ids) // block_size
    return torch.tensor(ids[: n_blocks * block_size]).view(n_blocks, block_size)


@functools.lru_cache(maxsize=None)
def corpus_fingerprint(seed: int, documents: int = PRETRAIN_DOCUMENTS) -> str:
    """A hash of the pretraining text: any change to the world rebuilds the base model."""
    return cache.settings_key({"texts": world_texts(cache.world_for(seed), documents)})


def pretrain_cache_settings(profile: Profile, settings: PretrainSettings | None = None) -> dict:
    """What the base model's cache key is made of."""
    settings = settings or PretrainSettings.from_profile(profile)
    return {
        "corpus": corpus_fingerprint(profile.seed, settings.documents),
        "seed": profile.seed,
        "shape": asdict(settings.shape),
        "steps": settings.steps,
        "batch_size": settings.batch_size,
        "lr": settings.learning_rate,
        "documents": settings.documents,
    }


def base_model_path(profile: Profile, settings: PretrainSettings | None = None) -> Path:
    """Where the base model is, built or not (a later stage's cache key names it; nothing trains).
    For the gpu profile: the hub id (or local directory) of its base model."""
    if profile.real_model:
        return Path(profile.base_model)
    return cache.entry_dir("base", pretrain_cache_settings(profile, settings))


def get_base_model_dir(profile: Profile, settings: PretrainSettings | None = None, progress: bool = True,
                       builder: Builder | None = None) -> Path:
    """The pretrained tiny base model's directory, pretraining it first if needed (~3 min).
    For the gpu profile: the hub id (or local directory) of its base model."""
    if profile.real_model:
        return Path(profile.base_model)
    settings = settings or PretrainSettings.from_profile(profile)
    builder = builder or Builder(progress)
    return builder.build("base", pretrain_cache_settings(profile, settings),
                         lambda out: pretrain_base_model(profile, settings, out, progress=builder.progress))


def fast_cpu_bf16() -> bool:
    """Does this CPU compute bf16 natively? (Measured: on an AVX2-only CPU, bf16 autocast
    made a pretraining step 8-12x slower than fp32.)"""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def pretrain_base_model(profile: Profile, settings: PretrainSettings, out_dir: Path, progress: bool = True) -> dict:
    """Train the tokenizer and pretrain the tiny model on the world's corpus; save both."""
    from tqdm.auto import tqdm
    from transformers import LlamaForCausalLM

    models.quiet_libraries()
    torch.manual_seed(profile.seed)
    texts = world_texts(cache.world_for(profile.seed), settings.documents)
    tokenizer = train_tokenizer(texts, settings.shape.vocab_size)
    blocks = pack_documents(tokenizer, texts, settings.shape.max_positions)
    model = LlamaForCausalLM(tiny_model_config(settings.shape, tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.1, betas=(0.9, 0.95))
    steps, warmup = settings.steps, max(1, settings.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    generator = torch.Generator().manual_seed(profile.seed)
    losses, start = [], time.perf_counter()
    model.train()
    # mininterval: few widget updates, so a notebook kernel never floods its output channel.
    bar = tqdm(range(steps), desc="pretraining base model", disable=not progress, mininterval=2.0)
    for step in bar:
        batch = blocks[torch.randint(len(blocks), (settings.batch_size,), generator=generator)]
        # bf16 autocast is ~1.4x faster on CPUs with native bf16 (AVX512-BF16, AMX) and trains
        # as well as fp32; on other CPUs it is emulated and ~10x SLOWER, so it stays off there.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast_cpu_bf16()):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    seconds = time.perf_counter() - start
    tokens = steps * settings.batch_size * blocks.shape[1]
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    report = {"loss_history": losses, "seconds": seconds, "tokens": tokens, "corpus_tokens": blocks.numel(),
              "parameters": sum(p.numel() for p in model.parameters()),
              "final_loss": sum(losses[-20:]) / len(losses[-20:])}
    (out_dir / "pretraining.json").write_text(json.dumps(report))
    if progress:
        print(f"Pretrained {report['parameters'] / 1e6:.2f}M parameters on {tokens / 1e6:.2f}M tokens "
              f"in {seconds:.0f} s; final loss {report['final_loss']:.3f}.")
    return report


def load_base_model(profile: Profile, trainable: bool = False, progress: bool = True):
    """The profile's base model (pretrained first if needed), as the profile loads it
    (4-bit on gpu). Returns (model, tokenizer)."""
    model = models.load_model(get_base_model_dir(profile, progress=progress), quantize_4bit=profile.quantize_4bit,
                              device=profile.device, trainable=trainable)
    return model, get_tokenizer(profile)


def pretraining_report(profile: Profile) -> dict:
    """Loss curve, seconds, tokens and parameters of the base model's pretraining."""
    return json.loads((get_base_model_dir(profile) / "pretraining.json").read_text())

"""Tokenizer, the tiny base model, and one loader for every model of the course.

- ``get_tokenizer(profile)``: a byte-level BPE tokenizer trained locally on the lab
  world's text (tiny profile), or the hub model's own tokenizer (gpu profile).
- ``get_base_model_dir(profile)``: the pretrained tiny base model, built on first use and
  cached on disk (atomic writes, keyed by the settings that made it).
- ``load_model(path_or_id, ...)``: policy, reference and reward models from a local
  directory or a hub id, optionally 4-bit NF4 (bitsandbytes) and with LoRA (peft).
  The gpu profile calls exactly the same function.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .cache import build_cached, settings_key, world_for
from .config import Profile

def quiet_libraries() -> None:
    """Keep notebook output to the lesson: no weight-loading bars, no library chatter.

    (bitsandbytes warns on every CPU run that an optional kernel package is missing; the
    reward model's freshly created score head is reported MISSING, which is expected.)
    """
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

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
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: str | tuple = "all-linear"

    @classmethod
    def from_profile(cls, profile: Profile) -> "LoraSettings":
        return cls(profile.lora_r, profile.lora_alpha, profile.lora_dropout)


# ---------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------


def train_tokenizer(texts, vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
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

    if profile.base_model != "tiny":
        tokenizer = AutoTokenizer.from_pretrained(profile.base_model, padding_side="left")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    return AutoTokenizer.from_pretrained(get_base_model_dir(profile))


# ---------------------------------------------------------------------------
# The tiny base model: build and pretrain
# ---------------------------------------------------------------------------


def tiny_model_config(profile: Profile, tokenizer):
    from transformers import LlamaConfig

    shape = profile.tiny_model
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
def corpus_fingerprint(seed: int) -> str:
    """A hash of the pretraining text: any change to the world rebuilds the base model."""
    return settings_key({"texts": world_texts(world_for(seed), PRETRAIN_DOCUMENTS)})


def pretraining_settings(profile: Profile) -> dict:
    return {
        "corpus": corpus_fingerprint(profile.seed),
        "seed": profile.seed,
        "shape": asdict(profile.tiny_model),
        "steps": profile.pretrain_steps,
        "batch_size": profile.pretrain_batch_size,
        "lr": profile.pretrain_lr,
        "documents": PRETRAIN_DOCUMENTS,
    }


def get_base_model_dir(profile: Profile, progress: bool = True) -> Path:
    """The pretrained tiny base model's directory, pretraining it first if needed (~1 min)."""
    if profile.base_model != "tiny":
        return Path(profile.base_model)
    return build_cached("base", pretraining_settings(profile),
                        lambda out: pretrain_base_model(profile, out, progress=progress))


def pretrain_base_model(profile: Profile, out_dir: Path, progress: bool = True) -> dict:
    """Train the tokenizer and pretrain the tiny model on the world's corpus; save both."""
    from tqdm.auto import tqdm
    from transformers import LlamaForCausalLM

    from .world import World

    quiet_libraries()
    torch.manual_seed(profile.seed)
    world = World(profile.seed)
    texts = world_texts(world, PRETRAIN_DOCUMENTS)
    tokenizer = train_tokenizer(texts, profile.tiny_model.vocab_size)
    blocks = pack_documents(tokenizer, texts, profile.tiny_model.max_positions)
    model = LlamaForCausalLM(tiny_model_config(profile, tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=profile.pretrain_lr, weight_decay=0.1, betas=(0.9, 0.95))
    steps, warmup = profile.pretrain_steps, max(1, profile.pretrain_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    generator = torch.Generator().manual_seed(profile.seed)
    losses, start = [], time.perf_counter()
    model.train()
    # mininterval: few widget updates, so a notebook kernel never floods its output channel.
    bar = tqdm(range(steps), desc="pretraining base model", disable=not progress, mininterval=2.0)
    for step in bar:
        batch = blocks[torch.randint(len(blocks), (profile.pretrain_batch_size,), generator=generator)]
        # bf16 autocast is ~1.4x faster on CPU for this model and trains as well as fp32.
        with torch.autocast("cpu", dtype=torch.bfloat16):
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
    tokens = steps * profile.pretrain_batch_size * blocks.shape[1]
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


def pretraining_report(profile: Profile) -> dict:
    return json.loads((get_base_model_dir(profile) / "pretraining.json").read_text())


# ---------------------------------------------------------------------------
# One loader for policy, reference and reward models
# ---------------------------------------------------------------------------


def compute_dtype(device: str) -> torch.dtype:
    """bf16 where the GPU supports it, fp16 on older GPUs, fp32 on CPU."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def disable_cpu_inference_repacking(model) -> int:
    """Guard the bitsandbytes CPU trap (see STACK_NOTES.md).

    On CPUs with AVX512-BF16, an eval-mode forward repacks 4-bit weights for an inference
    kernel that has no backward, and later LoRA gradients come out wrong. Turning the
    kernel off keeps gradients correct; generation still works. Returns layers changed.
    """
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    changed = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit) and hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed


def load_model(path_or_id, *, kind: str = "causal_lm", quantize_4bit: bool = False,
               lora: LoraSettings | None = None, device: str = "cpu", trainable: bool = True,
               tokenizer=None):
    """Load a model from a local directory or a hub id.

    kind: "causal_lm" (policy / reference) or "reward" (a sequence classifier with one
    output: the reward model). quantize_4bit: NF4 weights with double quantization,
    computing in bf16/fp16 on GPU. lora: wrap in a peft LoRA adapter (for a reward model
    the score head is trained and saved in full: modules_to_save).
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    quiet_libraries()
    if kind not in ("causal_lm", "reward"):
        raise ValueError(f"kind={kind!r} is not a model kind; use 'causal_lm' or 'reward'.")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch sees no GPU. Use the tiny profile "
                           "(device 'cpu') or check `rlhf-lab doctor`.")
    dtype = compute_dtype(device)
    kwargs = {"dtype": dtype}
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": 0} if device == "cuda" else "cpu"
    if kind == "reward":
        model = AutoModelForSequenceClassification.from_pretrained(path_or_id, num_labels=1, **kwargs)
        if tokenizer is not None:
            model.config.pad_token_id = tokenizer.pad_token_id
    else:
        model = AutoModelForCausalLM.from_pretrained(path_or_id, **kwargs)
    if quantize_4bit:
        disable_cpu_inference_repacking(model)
    elif device == "cuda":
        model.to(device)
    if lora is not None:
        model = add_lora(model, lora, kind, quantized=quantize_4bit, trainable=trainable)
    if not trainable:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def add_lora(model, lora: LoraSettings, kind: str = "causal_lm", quantized: bool = False, trainable: bool = True):
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    if quantized and trainable:
        # fp32 norms and input-gradients for the frozen 4-bit base; no checkpointing for tiny models.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules) if isinstance(lora.target_modules, tuple) else lora.target_modules,
        task_type=TaskType.SEQ_CLS if kind == "reward" else TaskType.CAUSAL_LM,
        modules_to_save=["score"] if kind == "reward" else None,
    )
    return get_peft_model(model, config)


def model_device(model) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------------------
# Prompts and sampling
# ---------------------------------------------------------------------------


def prompt_text(tokenizer, user_text: str) -> str:
    """The chat-formatted prompt, ending where the assistant starts to speak."""
    return tokenizer.apply_chat_template([{"role": "user", "content": user_text}], tokenize=False,
                                         add_generation_prompt=True)


@torch.no_grad()
def generate(model, tokenizer, user_texts: list[str], max_new_tokens: int = 24, do_sample: bool = True,
             temperature: float = 1.0, seed: int = 0, batch_size: int = 64, chat: bool = True) -> list[str]:
    """Responses to ``user_texts`` (chat-formatted unless ``chat=False``), decoded and stripped."""
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    device = model_device(model)
    responses = []
    for i in range(0, len(user_texts), batch_size):
        chunk = user_texts[i:i + batch_size]
        texts = [prompt_text(tokenizer, t) for t in chunk] if chat else chunk
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=do_sample,
                             temperature=temperature if do_sample else None, top_k=0 if do_sample else None,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new_tokens = out[:, enc["input_ids"].shape[1]:]
        responses += [r.strip() for r in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    model.train(was_training)
    return responses

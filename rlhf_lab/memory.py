"""How much GPU memory each stage needs: an estimate you can read line by line.

For one architecture and one stage, the estimated peak is the sum of

- **weights**: the frozen base. In 4-bit NF4 with double quantization each decoder
  linear weight costs ~0.516 bytes (4 bits + an 8-bit scale per 64 weights + an fp32
  scale per 256 scales). Embeddings, the untied output head, norms and biases are not
  quantized; ``peft.prepare_model_for_kbit_training`` (used for every trained 4-bit
  model) stores them in fp32. In bf16 every weight costs 2 bytes.
- **adapters**: LoRA A and B on every linear layer ("all-linear"), fp32 (4 bytes each).
- **gradients** of what is trained (fp32 for LoRA, bf16 for a full fine-tune).
- **optimizer states**: AdamW keeps two numbers per trained weight: fp32 (8 bytes) or,
  with bitsandbytes' paged 8-bit AdamW, 2 bytes.
- **activations** saved for the backward pass at the stage's batch and length: every
  layer's input only with gradient checkpointing (plus one layer recomputed during the
  backward pass), all of every layer's intermediates without it.
- **logits**: the output layer's scores for every token and every vocabulary entry. With
  a 150k-token vocabulary they are often the largest single item (bf16 logits, an fp32
  copy for the loss, the log-softmax kept for backward: ~12 bytes per token per entry).
- **CUDA context** (~0.5 GB per process, outside PyTorch's allocator).

Attention is assumed to run in a fused kernel (PyTorch SDPA: flash or memory-efficient,
both available on a T4), so no sequence-squared attention matrix is stored.

The comparison is a **bf16 full fine-tune** of the same model at the same batch, length
and checkpointing: bf16 weights and gradients, fp32 AdamW states (12 bytes per weight),
and for DPO and PPO the extra full models those need (a reference; a reward model and a
value model).

These are estimates (±20%); ``benchmarks/bench_gpu_memory.py`` measures the real thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

GB = 1e9
NF4_DOUBLE_QUANT_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # per weight
NF4_BYTES = 0.5 + 4 / 64  # without double quantization
CUDA_CONTEXT_BYTES = 0.5 * GB
LOGIT_BYTES = 12  # per token per vocabulary entry while the loss and its gradient are alive


@dataclass(frozen=True)
class Architecture:
    """The sizes that decide a decoder-only transformer's memory (Qwen2 / Llama style)."""

    name: str
    hub_id: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool = True  # Qwen2 has q/k/v biases; Llama does not
    model_type: str = "qwen2"
    max_position_embeddings: int = 32768
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of every linear layer of one decoder layer."""
        h, i, kv = self.hidden_size, self.intermediate_size, self.kv_dim
        return [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]

    @property
    def linear_params(self) -> int:
        """Weights of the decoder's linear layers: what 4-bit quantizes."""
        return self.num_layers * sum(a * b for a, b in self.linear_shapes())

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def other_params(self) -> int:
        """Norms and biases."""
        biases = self.hidden_size + 2 * self.kv_dim if self.qkv_bias else 0
        return self.num_layers * (2 * self.hidden_size + biases) + self.hidden_size

    @property
    def total_params(self) -> int:
        return self.linear_params + self.embedding_params + self.lm_head_params + self.other_params

    def lora_params(self, r: int) -> int:
        """LoRA A (r x in) and B (out x r) on every decoder linear layer."""
        return self.num_layers * sum(r * (a + b) for a, b in self.linear_shapes())

    def to_config(self, **overrides):
        """A transformers config of this architecture (no download: the sizes are written here)."""
        values = dict(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                      intermediate_size=self.intermediate_size, num_hidden_layers=self.num_layers,
                      num_attention_heads=self.num_heads, num_key_value_heads=self.num_kv_heads,
                      tie_word_embeddings=self.tie_word_embeddings, rms_norm_eps=self.rms_norm_eps,
                      max_position_embeddings=self.max_position_embeddings, rope_theta=self.rope_theta)
        values.update(overrides)
        if self.model_type == "qwen2":
            from transformers import Qwen2Config

            return Qwen2Config(**values)
        from transformers import LlamaConfig

        return LlamaConfig(attention_bias=self.qkv_bias, **values)

    def tiny(self, hidden_size: int = 128, intermediate_size: int = 384, num_layers: int = 2,
             vocab_size: int = 512) -> "Architecture":
        """The same architecture at toy sizes (multiples of 64, the CPU 4-bit kernel's need; heads
        of 32), keeping grouped-query attention when the real one has it, for CPU tests."""
        heads = hidden_size // 32
        kv_heads = heads // 2 if self.num_kv_heads < self.num_heads else heads
        return replace(self, name=f"{self.name} (tiny)", hidden_size=hidden_size,
                       intermediate_size=intermediate_size, num_layers=num_layers, num_heads=heads,
                       num_kv_heads=kv_heads, vocab_size=vocab_size, max_position_embeddings=512)


# Published configs (config.json of each hub repository), written out here because the
# GPU benchmark machines have no internet.
ARCHITECTURES: dict[str, Architecture] = {
    "qwen2.5-0.5b": Architecture("Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", 896, 4864, 24, 14, 2, 151936, True),
    "qwen2.5-1.5b": Architecture("Qwen2.5-1.5B", "Qwen/Qwen2.5-1.5B", 1536, 8960, 28, 12, 2, 151936, True),
    "qwen2.5-7b": Architecture("Qwen2.5-7B", "Qwen/Qwen2.5-7B", 3584, 18944, 28, 28, 4, 152064, False,
                               max_position_embeddings=131072),
    "llama-2-7b": Architecture("Llama-2-7B", "meta-llama/Llama-2-7b-hf", 4096, 11008, 32, 32, 32, 32000, False,
                               qkv_bias=False, model_type="llama", max_position_embeddings=4096,
                               rope_theta=10000.0, rms_norm_eps=1e-5),
}

# The targets of the course (issue 11): estimated peak per stage, bytes.
TARGETS = {"qwen2.5-0.5b": 6 * GB, "qwen2.5-1.5b": 8 * GB, "qwen2.5-7b": 24 * GB, "llama-2-7b": 24 * GB}
TARGET_RATIO = 4.0  # at least 4x less than a bf16 full fine-tune


def architecture_for(model_id: str) -> Architecture:
    """The architecture of a hub id (or a key of ARCHITECTURES); instruct variants share the base's."""
    key = str(model_id).lower()
    if key in ARCHITECTURES:
        return ARCHITECTURES[key]
    stem = key.split("/")[-1].removesuffix("-instruct").removesuffix("-chat-hf").removesuffix("-hf")
    for name, arch in ARCHITECTURES.items():
        if stem == name or arch.hub_id.lower() == key:
            return arch
    raise KeyError(f"No architecture written for {model_id!r}; known: {', '.join(ARCHITECTURES)}. "
                   "Add its sizes (from its config.json) to rlhf_lab.memory.ARCHITECTURES.")


@dataclass(frozen=True)
class Workload:
    """What one optimizer step of a stage pushes through the model.

    batch: examples per device per step (pairs for reward model and DPO).
    length: tokens per sequence (prompt + response).
    For PPO: ``batch`` is the rollout size, ``mini_batch`` the update's minibatch,
    ``response_length`` the tokens sampled (only those get logits in the update).
    """

    stage: str  # "sft", "reward", "dpo", "ppo"
    batch: int
    length: int
    mini_batch: int = 0
    response_length: int = 0


def gpu_workloads(max_length: int = 512, batch_size: int = 4, ppo_batch: int = 32, ppo_mini_batch: int = 8,
                  response_length: int = 64) -> dict[str, Workload]:
    """The gpu profile's per-device batches on real data (HH-RLHF conversations cut to
    ``max_length`` tokens); larger effective batches come from gradient accumulation."""
    return {
        "sft": Workload("sft", batch_size, max_length),
        "reward": Workload("reward", batch_size, max_length),
        "dpo": Workload("dpo", max(1, batch_size // 2), max_length),
        "ppo": Workload("ppo", ppo_batch, max_length // 2 + response_length, ppo_mini_batch, response_length),
    }


@dataclass(frozen=True)
class Setup:
    """How the model is held and trained."""

    quantize_4bit: bool = True
    double_quant: bool = True
    lora_r: int | None = 16  # None: full fine-tune
    lora_dropout: float = 0.05
    gradient_checkpointing: bool = True
    optimizer: str = "paged_adamw_8bit"  # or "adamw" (fp32 states)
    compute_bytes: int = 2  # bf16 / fp16
    upcast_frozen_fp32: bool = True  # prepare_model_for_kbit_training's fp32 embeddings and norms
    shared_base: bool = True  # PPO: one base for policy, reference, reward model and value head

    @property
    def full(self) -> bool:
        return self.lora_r is None


QLORA = Setup()
BF16_FULL = Setup(quantize_4bit=False, lora_r=None, lora_dropout=0.0, optimizer="adamw", upcast_frozen_fp32=False)


@dataclass
class Estimate:
    architecture: str
    stage: str
    setup: Setup
    workload: Workload
    parts: dict[str, float] = field(default_factory=dict)  # bytes

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def gb(self) -> dict[str, float]:
        return {k: v / GB for k, v in self.parts.items()} | {"total": self.total / GB}


def weight_bytes(arch: Architecture, setup: Setup, trainable: bool = True, with_lm_head: bool = True) -> float:
    """The base's weights as loaded (frozen for LoRA)."""
    linear = arch.linear_params
    rest = arch.embedding_params + (arch.lm_head_params if with_lm_head else 0) + arch.other_params
    if setup.quantize_4bit:
        per_linear = NF4_DOUBLE_QUANT_BYTES if setup.double_quant else NF4_BYTES
        rest_bytes = 4 if (setup.upcast_frozen_fp32 and trainable) else setup.compute_bytes
        return linear * per_linear + rest * rest_bytes
    return (linear + rest) * setup.compute_bytes


def trained_bytes(arch: Architecture, setup: Setup) -> tuple[float, float, float]:
    """(adapter weights, gradients, optimizer states) of what one trained model updates."""
    if setup.full:
        n, weight, grad = arch.total_params, 0.0, setup.compute_bytes  # the weights are already counted
    else:
        n, weight, grad = arch.lora_params(setup.lora_r), 4.0, 4.0
    state = 2.0 if setup.optimizer == "paged_adamw_8bit" else 8.0
    return n * weight, n * grad, n * state


def layer_activation_elements(arch: Architecture, setup: Setup) -> float:
    """Elements saved per token by one decoder layer for its backward pass.

    Norm inputs (fp32 inside RMSNorm: counted twice) and outputs, q, k, v and attention
    output, and the SwiGLU's gate, up, activation and product; LoRA dropout keeps a
    dropped-out copy of each LoRA layer's input (and its mask).
    """
    h, i, kv = arch.hidden_size, arch.intermediate_size, arch.kv_dim
    elements = 2 * (2 * h + h) + (h + 2 * kv) + h + 4 * i
    if not setup.full and setup.lora_dropout > 0:
        elements += 1.5 * (6 * h + i)
    return elements


def activation_bytes(arch: Architecture, setup: Setup, tokens: int) -> float:
    a = setup.compute_bytes
    per_layer = layer_activation_elements(arch, setup) * a
    if setup.gradient_checkpointing:
        return tokens * (arch.num_layers * arch.hidden_size * a + per_layer)
    return tokens * arch.num_layers * per_layer


def logit_bytes(arch: Architecture, tokens: int, per_entry: float = LOGIT_BYTES) -> float:
    return tokens * arch.vocab_size * per_entry


def estimate(arch: Architecture | str, workload: Workload, setup: Setup = QLORA) -> Estimate:
    """The estimated peak GPU memory of one stage (see the module docstring for each part)."""
    arch = architecture_for(arch) if isinstance(arch, str) else arch
    est = Estimate(arch.name, workload.stage, setup, workload)
    parts = est.parts
    adapters, grads, optim = trained_bytes(arch, setup)
    stage = workload.stage
    if stage == "sft":
        tokens = workload.batch * workload.length
        parts["weights"] = weight_bytes(arch, setup)
        parts["activations"] = activation_bytes(arch, setup, tokens)
        parts["logits"] = logit_bytes(arch, tokens)
    elif stage == "reward":
        # a sequence classifier: no vocabulary-sized output; chosen and rejected in one batch
        tokens = 2 * workload.batch * workload.length
        parts["weights"] = weight_bytes(arch, setup, with_lm_head=False)
        parts["activations"] = activation_bytes(arch, setup, tokens)
        parts["logits"] = 0.0
    elif stage == "dpo":
        # policy forward on chosen + rejected with gradients; the reference's forward runs
        # first without gradients (adapters off, or a second full model for a full fine-tune)
        tokens = 2 * workload.batch * workload.length
        parts["weights"] = weight_bytes(arch, setup)
        if setup.full:
            parts["reference model"] = weight_bytes(arch, setup)
        parts["activations"] = activation_bytes(arch, setup, tokens)
        parts["logits"] = logit_bytes(arch, tokens, per_entry=6)  # TRL's per-row log-softmax
    elif stage == "ppo":
        roll, mini, resp = workload.batch, workload.mini_batch or workload.batch, workload.response_length
        parts["weights"] = weight_bytes(arch, setup)
        if setup.full:
            # policy + reference + reward model + value model (TRL's classic PPO layout)
            parts["reference model"] = weight_bytes(arch, setup)
            parts["reward model"] = weight_bytes(arch, setup, with_lm_head=False)
            parts["value model"] = weight_bytes(arch, setup, with_lm_head=False)
            adapters, grads, optim = (a * 2 for a in (adapters, grads, optim))  # policy and value trained
        elif not setup.shared_base:
            parts["reward model"] = weight_bytes(arch, setup, trainable=False, with_lm_head=False)
            parts["reward adapter"] = arch.lora_params(setup.lora_r) * 4.0
        else:
            parts["reward adapter"] = arch.lora_params(setup.lora_r) * 4.0
        # rollout: the KV cache of generation; update: a minibatch with logits for the response only
        kv_cache = roll * workload.length * arch.num_layers * 2 * arch.kv_dim * setup.compute_bytes
        update = (activation_bytes(arch, setup, mini * workload.length)
                  + logit_bytes(arch, mini * (resp + 1), per_entry=LOGIT_BYTES + 4))  # + entropy
        parts["activations"] = max(kv_cache + roll * arch.vocab_size * 8, update)
        parts["logits"] = 0.0  # included in activations (the larger of rollout and update)
    else:
        raise ValueError(f"Unknown stage {stage!r}; use sft, reward, dpo or ppo.")
    parts["adapters"] = adapters
    parts["gradients"] = grads
    parts["optimizer"] = optim
    parts["CUDA context"] = CUDA_CONTEXT_BYTES
    return est


def policy_alone(arch: Architecture | str, workload: Workload, setup: Setup = QLORA) -> Estimate:
    """PPO's policy by itself (weights, its adapter and optimizer, the update's activations):
    the yardstick of the shared-base target (every role in place at most 1.3x this)."""
    arch = architecture_for(arch) if isinstance(arch, str) else arch
    est = estimate(arch, workload, setup)
    est.parts.pop("reward adapter", None)
    est.parts.pop("reward model", None)
    return est


@dataclass
class Row:
    architecture: str
    key: str
    stage: str
    qlora: Estimate
    full: Estimate
    target: float

    @property
    def ratio(self) -> float:
        return self.full.total / self.qlora.total

    @property
    def fits(self) -> bool:
        return self.qlora.total <= self.target

    @property
    def meets_ratio(self) -> bool:
        return self.ratio >= TARGET_RATIO


def memory_table(keys=None, workloads: dict[str, Workload] | None = None, setup: Setup = QLORA,
                 full: Setup = BF16_FULL) -> list[Row]:
    """Estimates for every stage of every architecture, with the bf16 full fine-tune beside it."""
    workloads = workloads or gpu_workloads()
    rows = []
    for key in keys or ("qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"):
        arch = architecture_for(key)
        for stage, work in workloads.items():
            rows.append(Row(arch.name, key, stage, estimate(arch, work, setup), estimate(arch, work, full),
                            TARGETS.get(key, float("inf"))))
    return rows


def shared_base_ratio(key: str, workload: Workload | None = None, setup: Setup = QLORA) -> dict:
    """PPO with every role (shared base) against the policy alone; and the separate-base layout."""
    workload = workload or gpu_workloads()["ppo"]
    alone = policy_alone(key, workload, setup).total
    shared = estimate(key, workload, setup).total
    separate = estimate(key, workload, replace(setup, shared_base=False)).total
    return {"policy_alone": alone, "shared": shared, "separate": separate,
            "shared_ratio": shared / alone, "separate_ratio": separate / alone}


COLUMNS = {  # table column: the parts it adds up
    "weights": ("weights", "reference model", "reward model", "value model"),
    "adapters": ("adapters", "reward adapter"),
    "gradients": ("gradients",),
    "optimizer": ("optimizer",),
    "activations": ("activations", "logits"),
    "context": ("CUDA context",),
}


def format_table(rows: list[Row]) -> str:
    """A plain-text table: one line per architecture and stage, in GB."""
    head = (f"{'model':<14}{'stage':<8}" + "".join(f"{c[:10]:>12}" for c in COLUMNS)
            + f"{'total':>8}{'target':>8}{'bf16 full':>11}{'saving':>8}  fits")
    lines = [head, "-" * len(head)]
    for row in rows:
        gb = row.qlora.gb()
        cells = "".join(f"{sum(gb.get(p, 0.0) for p in parts):>12.2f}" for parts in COLUMNS.values())
        ok = ("yes" if row.fits else "NO") + ("" if row.meets_ratio else f", saving under {TARGET_RATIO:.0f}x")
        lines.append(f"{row.architecture:<14}{row.stage:<8}{cells}{gb['total']:>8.2f}{row.target / GB:>8.0f}"
                     f"{row.full.total / GB:>11.1f}{row.ratio:>7.1f}x  {ok}")
    return "\n".join(lines)


def savings_ladder(key: str = "qwen2.5-1.5b", stage: str = "sft", workload: Workload | None = None) -> list:
    """What each trick saves, one at a time: (label, Estimate) from a bf16 full fine-tune down
    to the course's setup (LoRA, then a 4-bit base, then 8-bit optimizer states), and the
    course's setup without gradient checkpointing."""
    workload = workload or gpu_workloads()[stage]
    steps = [
        ("bf16 full fine-tune", BF16_FULL),
        ("+ LoRA (frozen bf16 base)", Setup(quantize_4bit=False, optimizer="adamw", upcast_frozen_fp32=False)),
        ("+ 4-bit NF4 base", Setup(optimizer="adamw")),
        ("+ paged 8-bit AdamW (the course)", QLORA),
        ("  the course without checkpointing", Setup(gradient_checkpointing=False)),
    ]
    return [(label, estimate(key, workload, setup)) for label, setup in steps]


def format_ladder(ladder) -> str:
    head = f"{'':<36}{'weights':>9}{'trained+opt':>12}{'activations':>12}{'total GB':>10}"
    lines = [head, "-" * len(head)]
    for label, est in ladder:
        gb = est.gb()
        weights = sum(gb.get(p, 0.0) for p in COLUMNS["weights"])
        trained = sum(gb.get(p, 0.0) for p in ("adapters", "gradients", "optimizer", "reward adapter"))
        acts = gb.get("activations", 0.0) + gb.get("logits", 0.0)
        lines.append(f"{label:<36}{weights:>9.2f}{trained:>12.2f}{acts:>12.2f}{gb['total']:>10.2f}")
    return "\n".join(lines)

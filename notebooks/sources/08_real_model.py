# ---
# jupyter:
#   jupytext:
#     formats: ipynb,sources//py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · A real model on one consumer GPU
#
# Everything so far ran on a tiny model the course pretrains itself. This notebook moves the same
# pipeline to a real pretrained **base** model (Qwen2.5-0.5B by default; Qwen2.5-1.5B with the
# `gpu-1.5b` profile) on one consumer GPU, and to real human preference data (Anthropic HH-RLHF).
# Three tricks make it fit:
#
# - **4-bit NF4 weights** (QLoRA, Dettmers et al. 2023): the frozen base stored in 4 bits per weight,
#   computed in bf16 (fp16 on cards without bf16, such as a free Colab T4);
# - **LoRA adapters** (Hu et al. 2021): only small low-rank matrices are trained, so gradients and
#   optimizer states exist for ~1% of a real model's weights (and the optimizer keeps them in 8 bits;
#   the CPU's toy model below is so small that its adapters are a far larger share);
# - **one shared base in PPO**: the policy, the reference, the reward model and the value head all
#   use the same 4-bit weights; they differ only in which adapter is switched on.
#
# **No GPU here?** Then every cell below runs the *same code* (4-bit through bitsandbytes, LoRA,
# the shared base, TRL's trainers) on a tiny randomly initialised model of the real architecture
# (Qwen2, a few hundred thousand weights) on the CPU, with a few steps per stage. The numbers that
# matter on the CPU are the memory estimates and the checks; the samples are noise.

# %%
import os
import tempfile
from pathlib import Path

from rlhf_lab import lesson, memory, models, real_data, tiny_real  # first: it quiets bitsandbytes' CPU notices
import bitsandbytes as bnb
from datasets import Dataset
import torch
from trl import RewardConfig, SFTConfig, SFTTrainer

from rlhf_lab.config import cache_dir, get_profile, shown_model
from rlhf_lab.ppo import PPOSettings, PPOTrainer
from rlhf_lab.shared_base import load_shared_base
from rlhf_lab.cache import record_lineage
from rlhf_lab.stages.common import merge_lora_into_base, quiet_when_no_progress, trainer_arguments
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.reward import make_reward_trainer_class

# %%
lesson.notebook_setup()
ON_GPU = torch.cuda.is_available()
if ON_GPU:
    name = os.environ.get("RLHF_LAB_PROFILE", "gpu")
    profile = get_profile(name if name.startswith("gpu") else "gpu")
else:
    tiny_dir = cache_dir() / "tiny_real" / "qwen2"
    if not (tiny_dir / "config.json").exists():
        tiny_real.save_tiny_real_architecture(tiny_dir)
    profile = get_profile("gpu", device="cpu", base_model=str(tiny_dir))
print(lesson.setup_line(profile))
TOY = "" if ON_GPU else "[toy model, no GPU] "  # marks every number below that is plumbing, not a result
if not ON_GPU:
    print("No GPU: the gpu profile's code runs on a tiny random-init Qwen2 on the CPU (few steps; samples are noise).")

# %% [markdown]
# ## How much memory each stage needs
#
# `rlhf-lab memory` adds up, per stage: the weights, the LoRA adapters, their gradients and
# optimizer states, the activations kept for the backward pass, and the logits (a 150k-word
# vocabulary makes them large). Real-data settings: 4 sequences of 512 tokens per step for SFT,
# 4 pairs for the reward model, 2 for DPO; PPO samples 32 responses of 64 tokens to prompts of 256.
# The right-hand columns compare with a bf16 **full** fine-tune of the same model at the same batch.

# %%
# NBVAL_CHECK_OUTPUT
rows = memory.memory_table()
print(memory.format_table(rows))

# %%
assert all(row.fits for row in rows), "every stage fits its target (0.5B: 6 GB, 1.5B: 8 GB, 7B: 24 GB)"
for key in ("qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"):
    assert memory.shared_base_ratio(key)["shared_ratio"] <= 1.3, "PPO with every role: at most 1.3x the policy"

# %% [markdown]
# **What to look for:** every stage fits a consumer card, and the 7B model's stages need 7-19x less
# than a full fine-tune. For the small models the saving is smaller, under 4x in several stages:
# next to small weights, what no trick shrinks weighs more (the full vocabulary's logits: 4 x 512
# tokens x 152k words are ~4 GB whatever holds the weights; the activations). Lower the batch (and raise gradient accumulation) to shrink them.
#
# ## What each trick saves
#
# One step at a time, for SFT on Qwen2.5-1.5B:

# %%
# NBVAL_CHECK_OUTPUT
ladder = memory.savings_ladder("qwen2.5-1.5b", "sft")
print(memory.format_ladder(ladder))

# %%
totals = [est.total for _, est in ladder]
assert totals[0] > 2.5 * totals[1], "LoRA removes the gradients and optimizer states of the frozen weights"
assert totals[1] > totals[2] > totals[3], "then a 4-bit base and 8-bit optimizer states save more"
assert totals[4] > 2 * totals[3], "gradient checkpointing more than halves the peak"

# %% [markdown]
# **What to look for:** LoRA gives the biggest cut (no gradients or Adam states for the 1.5B frozen
# weights: 10 bytes each, a 2-byte gradient and two fp32 Adam states); 4-bit halves what is left of the weights; checkpointing keeps only each
# layer's input and recomputes the rest during the backward pass.
#
# ## The base in 4 bits, with LoRA
#
# One loader for every model of the course (`rlhf_lab.models.load_model`): NF4 with double
# quantization, bf16 compute where the card has it (else fp16; fp32 on a CPU), LoRA on every linear layer.

# %%
lora = models.LoraSettings.from_profile(profile)
tokenizer = get_tokenizer(profile)
policy = models.load_model(profile.base_model, quantize_4bit=True, device=profile.device, lora=lora)
trained, total = policy.get_nb_trainable_parameters()
print(f"{TOY}{shown_model(profile.base_model)}: {total / 1e6:.2f}M weights, {trained / 1e6:.2f}M trained by LoRA "
      f"({trained / total:.1%}); compute dtype {models.compute_dtype(profile.device)}; "
      f"in memory {policy.get_memory_footprint() / 1e6:.1f} MB (bf16 would be {2 * total / 1e6:.1f} MB).")

# %%
quantized = [m for m in policy.modules() if isinstance(m, bnb.nn.Linear4bit)]
assert quantized and all(m.weight.quant_type == "nf4" and m.weight.quant_state.nested for m in quantized)

# %% [markdown]
# ## Real preferences: Anthropic HH-RLHF
#
# Each HH-RLHF row is two whole transcripts (`chosen`, `rejected`) that share every turn but the
# last. `rlhf_lab.real_data.load_hh_rlhf` turns them into TRL's preference format: the earlier
# turns become a multi-turn prompt, the two final assistant turns become chosen and rejected.
# A row that does not parse is reported with its row number, never dropped silently. (The texts
# come from red-teaming: some requests are offensive.)

# %%
sample = real_data.hh_sample_file()
if sample is not None:
    loaded = real_data.load_hh_rlhf(sample)
elif ON_GPU:
    loaded = real_data.load_hh_rlhf("Anthropic/hh-rlhf", split="test", max_rows=2000)  # needs the hub once
else:
    loaded = real_data.hh_rows_to_preferences(real_data.EXAMPLE_HH_ROWS, source="example rows")
print(loaded.summary())
example = max(loaded.dataset, key=lambda row: len(row["prompt"]))
for message in list(example["prompt"])[-3:]:
    print(f"  {message['role']:>9}: {message['content'][:90]}")
print(f"  {'chosen':>9}: {example['chosen'][0]['content'][:90]}")
print(f"  {'rejected':>9}: {example['rejected'][0]['content'][:90]}")

# %%
assert len(loaded.dataset) + len(loaded.problems) == loaded.rows_read, "every row converts or is reported"
train_pairs, test_pairs = real_data.train_test_split(loaded, test_fraction=0.25, seed=profile.seed)

# %% [markdown]
# ## The pipeline on the real model
#
# The same three stages as notebooks 02, 04 and 05, with TRL's trainers and the arguments of the gpu
# profile (`rlhf_lab.stages.common.trainer_arguments`: gradient checkpointing, bf16 or fp16, paged
# 8-bit AdamW on a GPU). On a GPU SFT and the reward model run 200 steps and PPO 50 (minutes); on the
# CPU three and two.
#
# *SFT on the chosen conversations:*

# %%
STEPS = 200 if ON_GPU else 3
work = Path(tempfile.mkdtemp(prefix="rlhf-lab-08-"))
prompts = [row["prompt"][-1]["content"] for row in test_pairs][:8]


def stage_args(name, **changes):
    return trainer_arguments(profile, work / name, max_steps=STEPS, per_device_train_batch_size=4,
                             gradient_accumulation_steps=4 if ON_GPU else 1, learning_rate=2e-4,
                             disable_tqdm=True, **changes)


before = models.generate(policy, tokenizer, prompts[:3], max_new_tokens=32, seed=0)
sft_rows = Dataset.from_list([{"prompt": list(r["prompt"]), "completion": list(r["chosen"])} for r in train_pairs])
with lesson.stopwatch() as clock:
    sft = SFTTrainer(model=policy, args=SFTConfig(**stage_args("sft"), max_length=512),
                     train_dataset=sft_rows, processing_class=tokenizer)
    quiet_when_no_progress(sft, progress=False).train()
sft_dir = work / "sft"
merge_lora_into_base(sft.model, profile.base_model, sft_dir, tokenizer, profile)
print(f"{TOY}SFT: {STEPS} steps in {clock.seconds:.0f} s, final loss {sft.state.log_history[-1].get('train_loss', float('nan')):.3f}")

# %% [markdown]
# *The reward model on the real pairs, with its held-out accuracy on the test split:*

# %%
reward = models.load_model(sft_dir, kind="reward", quantize_4bit=True, device=profile.device, lora=lora,
                           tokenizer=tokenizer)
with lesson.stopwatch() as clock:
    rm = make_reward_trainer_class()(model=reward, args=RewardConfig(**stage_args("reward"), max_length=512),
                                     train_dataset=train_pairs.remove_columns(["row"]), processing_class=tokenizer)
    quiet_when_no_progress(rm, progress=False).train()
reward_dir = work / "reward"
rm.model.save_pretrained(reward_dir / "adapter")
record_lineage(reward_dir, sft_dir)
quality = real_data.preference_accuracy(rm.model, tokenizer, test_pairs, max_length=512)
print(f"{TOY}Reward model: {STEPS} steps in {clock.seconds:.0f} s; held-out accuracy on {quality['pairs']} real "
      f"pairs {quality['accuracy']:.0%} (chance: 50%).")
del rm, reward, sft, policy

# %% [markdown]
# ## PPO on one shared base
#
# `rlhf_lab.shared_base.load_shared_base` loads the SFT model once in 4 bits, adds a fresh policy
# adapter, and loads the reward model's adapter and score head beside it. The reward is computed
# with the reward adapter switched on; the reference is the base with every adapter off; the value
# head reads the policy's hidden states. Our PPO trainer (notebook 05) takes it as it is.

# %%
shared = load_shared_base(profile, reward_dir, sft_dir=sft_dir, tokenizer=tokenizer)
reward_adapter_before = shared.reward_adapter_state()
config = PPOSettings(steps=STEPS // 4 if ON_GPU else 2, batch_size=16 if ON_GPU else 4, mini_batch_size=4,
                   ppo_epochs=2, max_new_tokens=profile.max_new_tokens if ON_GPU else 8,
                   learning_rate=2e-5 if ON_GPU else 1e-3, kl_coef=0.1, seed=profile.seed)
if ON_GPU:
    torch.cuda.reset_peak_memory_stats()
trainer = PPOTrainer(shared.policy, tokenizer, shared.reward_fn, config)
history = trainer.train([row["prompt"][-1]["content"] for row in train_pairs], progress=False)
if ON_GPU:
    print(f"peak GPU memory with every role on one base: {torch.cuda.max_memory_allocated() / 1e9:.2f} GB")

# %%
after_state = shared.reward_adapter_state()
assert all(torch.equal(reward_adapter_before[k], after_state[k]) for k in after_state), \
    "the policy's updates never touch the reward model's adapter"

# %% [markdown]
# ## Samples before and after
#
# The base model before SFT, and the PPO policy, on held-out HH prompts (last user turn only).

# %%
after = models.generate(shared.policy, tokenizer, prompts[:3], max_new_tokens=32, seed=0)
if ON_GPU:
    for prompt, old, new in zip(prompts[:3], before, after):
        print(f"USER: {prompt[:80]}\n  base: {old[:100]!r}\n  PPO:  {new[:100]!r}\n")
else:  # random weights write random bytes: say what changed instead of printing them
    changed = sum(old != new for old, new in zip(before, after))
    print(f"No GPU: the toy model's weights are random, so its answers are random bytes (not shown). "
          f"SFT, the reward model and {config.steps} PPO steps changed {changed} of {len(after)} of them.")

# %% [markdown]
# **What to look for** (on a GPU): the base model continues the text rather than answering; after
# SFT and PPO it answers as an assistant. On the CPU the tiny model is random: only the plumbing is
# being checked.
#
# ## Moving on: your GPU, your data
#
# - **A GPU:** `RLHF_LAB_PROFILE=gpu` (Qwen2.5-0.5B, about 6 GB) or `gpu-1.5b` (about 8 GB); any other
#   model with `RLHF_LAB_BASE_MODEL=<hub id or local directory>`. `rlhf-lab memory --profile gpu-1.5b`
#   prints the estimates; `python benchmarks/bench_gpu_memory.py` measures them on your card.
# - **The lab world** stays the default data: the hidden human still judges every stage, so you can
#   see whether RLHF helped. `get_profile("gpu", preference_data="hh-rlhf")` switches the preference
#   data to HH-RLHF, where only held-out accuracy against the human labels is left as a yardstick.
# - **Other data:** `real_data.load_hh_rlhf(path_or_hub_id)` and `real_data.load_ultrafeedback(...)`
#   return TRL's preference format from a hub id or a local `.jsonl` / `.parquet` file; anything in
#   that format works with every trainer above.
# - **Out of memory?** Lower, in this order: the per-device batch (raise gradient accumulation to
#   keep the effective batch), the sequence length, PPO's rollout batch and response length, the
#   LoRA rank; then pick the smaller profile.

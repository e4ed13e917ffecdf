# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# # 05 · PPO with a KL penalty
#
# Now the policy (the SFT model with a fresh LoRA adapter) learns by trial: it samples answers to
# training prompts, the reward model scores them, and PPO makes high-scoring answers more likely.
# A **KL penalty** to the reference (the SFT model: the same weights with the adapter switched off)
# keeps it from drifting into text the reward model was never trained to judge. The gold reward
# is logged next to the reward model's score, but the policy never sees it.
#
# TRL no longer ships PPO, so the course has its own, in one file you can read top to bottom:
# `rlhf_lab/ppo.py`.

# %%
import torch

from rlhf_lab import lesson
from rlhf_lab.config import get_profile
import json
from dataclasses import asdict

from rlhf_lab import models, plots
from rlhf_lab.evaluate import evaluate_model, heldout_prompts, win_rate
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.dpo import load_adapter_policy
from rlhf_lab.ppo import PPOTrainer
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

torch.set_num_threads(2)  # the course's budget: 2 CPU cores
lesson.notebook_setup()  # small figures, the libraries' own chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))

# %% [markdown]
# ## The configuration (the profile's defaults)

# %%
config = default_ppo_config(profile)
for name, value in asdict(config).items():
    print(f"{name:>18} = {value}")

# %% [markdown]
# ## The core of one PPO step
#
# Rollout and score, then per-token rewards (every token pays `kl_coef * (log pi - log pi_ref)`,
# the reward model's score lands on the last token), advantages with GAE, then several epochs
# of clipped policy and value updates. All the math is in `rlhf_lab.losses` (exercises 04-06).

# %%
lesson.show_code(PPOTrainer.step, "batch = self.rollout(prompts)", "update_stats = self._update")

# %% [markdown]
# ## Train (or load from the cache)
#
# It needs the SFT model and the reward model, built first if missing.
# *Takes about 1.5 min the first time (plus SFT and the reward model if they are missing) on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
with lesson.stopwatch() as clock:
    ppo_dir = get_ppo_model_dir(profile, config)
ppo_report = json.loads((ppo_dir / "ppo.json").read_text())
history = ppo_report["history"]
print(lesson.ready_line("PPO policy", clock.seconds, ppo_report["seconds"]))

# %%
fig = plots.ppo_curves(history)

# %%
fig = lesson.ppo_diagnostics(history)

# %% [markdown]
# **What to look for:**
# - **Reward model score vs gold:** both should rise together at first. If the score keeps
#   rising while the gold reward stalls or falls, the policy is exploiting the reward model
#   (over-optimisation), e.g. by saying "I hope this helps." more.
# - **KL:** grows as the policy moves away from SFT. The KL penalty makes this cost reward;
#   a larger `kl_coef` keeps it lower (and the policy closer to what the reward model knows).
# - **Clip fraction** (share of tokens whose probability ratio hit the clip) should stay small
#   (below ~0.2); **entropy** falling means the policy is growing more certain (less diverse);
#   **response length** shows whether it learned to be brief or verbose.
#
# ## Before and after: SFT vs PPO on held-out prompts

# %%
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_model = models.load_model(get_sft_model_dir(profile), quantize_4bit=profile.quantize_4bit,
                              device=profile.device, trainable=False)
ppo_model, _ = load_adapter_policy(profile, ppo_dir)
heldout = heldout_prompts(world, profile.eval_prompts)
samples = lesson.pick_samples(heldout)
generate = lambda model: models.generate(model, tokenizer, [p.text for p in samples],
                                         max_new_tokens=profile.max_new_tokens, seed=profile.seed)
lesson.samples_table(samples, {"SFT": generate(sft_model), "PPO": generate(ppo_model)})

# %% [markdown]
# ## Measured: SFT vs PPO
#
# The SFT model is the reference, so its KL is 0 by definition; PPO's KL is measured on its own
# answers with its adapter switched off for the reference. *Takes about 20 s on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
sft_metrics, sft_responses = evaluate_model(sft_model, tokenizer, world, heldout, profile.max_new_tokens,
                                            profile.seed, reference=None)
ppo_metrics, ppo_responses = evaluate_model(ppo_model, tokenizer, world, heldout, profile.max_new_tokens,
                                            profile.seed, reference="adapter-off")
lesson.metrics_table({"SFT": sft_metrics, "PPO": ppo_metrics})

# %%
ppo_wins = win_rate(heldout, ppo_responses, sft_responses)
print(f"PPO beats SFT on {ppo_wins:.0%} of held-out prompts (by the hidden human, ties count half); "
      f"KL to SFT {ppo_metrics['kl_to_ref']:.2f} nats per response.")
fig = plots.gold_components_by_stage({"SFT": sft_metrics, "PPO": ppo_metrics})

# %% [markdown]
# **What to look for:** which components moved. PPO can only learn what the reward model
# rewards: `style` (the polite opener the demonstrations never showed) and `honest` (fewer
# sycophantic agreements) are where SFT left headroom. Check the "I hope this helps" row: a rise
# there is the reward model's blind spot being learned. And check the capability probe: RL
# fine-tuning should not have cost the counting skill (the alignment tax).
# **Next:** `06_dpo.ipynb`, the same preferences without a reward model.

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
# # Exercise 3: the DPO loss and its implicit rewards
#
# **Difficulty:** ★★☆ (core) &nbsp;·&nbsp; **Time:** about 20 minutes
#
# Direct Preference Optimization (Rafailov et al. 2023) skips the reward model: it trains
# the policy on preference pairs directly. You will write its loss and then run a few DPO
# steps on the course's SFT model with it.
#
# How it works: read the idea, fill in the function in the cell marked `# EXERCISE:`, run the `check(...)` cell for instant feedback (a table of passed and failed cases, with a hint for each failure), then plug your function into the real pipeline and watch it work. Stuck? The worked answer is in `solutions/` (give it 10 minutes first).

# %%
import torch

from rlhf_lab.grader import check

# The exercise models are tiny: one thread is as fast as two, and never fights other
# processes for the cores (two threads on a busy 2-core machine were up to 100x slower).
torch.set_num_threads(1)
torch.manual_seed(0);

# %% [markdown]
# ## The idea
#
# DPO's insight: the policy itself defines a reward, the *implicit reward*
#
# $$\hat r(x, y) = \beta \big(\log \pi_\theta(y \mid x) - \log \pi_\text{ref}(y \mid x)\big),$$
#
# how much more likely the policy makes a response than the frozen reference (the SFT model)
# does. DPO is then Bradley-Terry on implicit rewards:
#
# $$\mathcal{L}_\text{DPO} = -\frac{1}{B}\sum_i \log \sigma\big(\hat r(x_i, y^{(i)}_\text{chosen}) - \hat r(x_i, y^{(i)}_\text{rejected})\big).$$
#
# $\beta$ plays the role of the KL coefficient: small $\beta$ lets the policy move far from
# the reference. Inputs are *sequence* log-probs, shape (B,) (exercise 1, summed over
# tokens). Return `(loss, chosen_rewards, rejected_rewards)`, the rewards detached: they are
# for logging, and the gradient must flow through the loss only.

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch
import torch.nn.functional as F


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=0.1):
    """DPO sigmoid loss. Returns (loss, chosen_rewards, rejected_rewards), rewards detached."""
    # 1. The implicit reward of every chosen and every rejected response.
    # 2. The Bradley-Terry loss on them (exercise 2).
    # 3. Return the loss and the two reward tensors, detached.
    ### BEGIN SOLUTION
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()
    ### END SOLUTION


# %%
report = check(dpo_loss)

# %% [markdown]
# ## See it work: a few DPO steps with your loss
#
# The policy is the SFT model with a fresh LoRA adapter; switching the adapter off gives the
# reference, so no second copy of the model is needed. We take 16 preference pairs and run
# 8 full-batch steps. Watch the loss fall from $\log 2 \approx 0.693$ and the implicit
# reward margin grow.

# %%
from rlhf_lab import models
from rlhf_lab.chat import prompt_text
from rlhf_lab.config import get_profile
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

profile = get_profile()  # 'tiny' unless RLHF_LAB_PROFILE says otherwise
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_dir = get_sft_model_dir(profile)  # built and cached on first use (a few minutes, once)


# %%
def response_batch(user_texts, responses):
    """Left-padded token ids of prompt + response (+ end token), and a mask on the response tokens."""
    prompt_ids = tokenizer([prompt_text(tokenizer, u) for u in user_texts], add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer([r + tokenizer.eos_token for r in responses], add_special_tokens=False)["input_ids"]
    width = max(len(p) + len(a) for p, a in zip(prompt_ids, answer_ids))
    ids, attention, mask = [], [], []
    for p, a in zip(prompt_ids, answer_ids):
        pad = width - len(p) - len(a)
        ids.append([tokenizer.pad_token_id] * pad + p + a)
        attention.append([0] * pad + [1] * (len(p) + len(a)))
        mask.append([0.0] * (pad + len(p)) + [1.0] * len(a))
    return torch.tensor(ids), torch.tensor(attention), torch.tensor(mask)


# %%
from tqdm.auto import tqdm

from rlhf_lab.losses import sequence_logprob, shift_for_next_token

report.require()
policy = models.load_model(sft_dir, lora=models.LoraSettings.from_profile(profile))
pairs = world.preference_dataset(16, seed=1)
prompts = [p["prompt"] for p in pairs]
chosen_batch = response_batch(prompts, [p["chosen"] for p in pairs])
rejected_batch = response_batch(prompts, [p["rejected"] for p in pairs])

def logps(model, batch):
    ids, attention, mask = batch
    logits = model(input_ids=ids, attention_mask=attention).logits
    return sequence_logprob(*shift_for_next_token(logits, ids, mask))

with torch.no_grad(), policy.disable_adapter():  # the reference: the SFT model itself
    ref_chosen, ref_rejected = logps(policy, chosen_batch), logps(policy, rejected_batch)

optimizer = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=3e-3)
for step in tqdm(range(8), desc="DPO"):
    loss, chosen_rewards, rejected_rewards = dpo_loss(
        logps(policy, chosen_batch), logps(policy, rejected_batch), ref_chosen, ref_rejected, beta=0.1)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    if step % 2 == 0 or step == 7:
        margin = (chosen_rewards - rejected_rewards).mean().item()
        accuracy = (chosen_rewards > rejected_rewards).float().mean().item()
        print(f"step {step:2d}: loss {loss.item():.3f}  reward margin {margin:+.3f}  pairs ranked right {accuracy:.0%}")

# %% [markdown]
# **What to look for.** At step 0 the policy *is* the reference, so the loss is exactly
# log 2 and every implicit reward is 0. The margin then grows: the policy raises the chosen
# responses' likelihood relative to the rejected ones. Note these are training pairs; the
# DPO notebook measures what this does on held-out prompts.

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
# # Exercise 2: the reward model's loss (Bradley-Terry)
#
# **Difficulty:** ★☆☆ (warm-up) &nbsp;·&nbsp; **Time:** about 15 minutes
#
# A reward model turns "a human preferred response A over B" into a number per response.
# You will write the loss that teaches it, then train the course's reward model with
# *your* loss and measure how often it agrees with the hidden human.
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
# The Bradley-Terry model says the chance a human prefers the chosen response is
#
# $$P(\text{chosen} \succ \text{rejected}) = \sigma(r_\text{chosen} - r_\text{rejected}).$$
#
# Training maximises the likelihood of the observed choices, i.e. minimises the mean
# negative log-likelihood over pairs:
#
# $$\mathcal{L} = -\frac{1}{B}\sum_i \log \sigma\big(r^{(i)}_\text{chosen} - r^{(i)}_\text{rejected}\big).$$
#
# Only differences of rewards matter, so a reward model's scale and offset are arbitrary.
# Careful with large margins: $\log(\sigma(x))$ computed naively becomes $\log 0$.

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch
import torch.nn.functional as F


def bradley_terry_loss(chosen_rewards, rejected_rewards):
    """Mean of -log sigmoid(r_chosen - r_rejected) over the pairs: a scalar tensor."""
    # Two lines are enough. Think about numerical stability for large margins.
    ### BEGIN SOLUTION
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    ### END SOLUTION


# %%
report = check(bradley_terry_loss)

# %% [markdown]
# ## Warm-up: recover hidden qualities from noisy choices
#
# Four responses have hidden qualities. A noisy annotator compares random pairs. Fitting
# one free reward per response with your loss recovers the ordering (up to a constant).

# %%
report.require()
hidden_quality = torch.tensor([2.0, 0.5, -0.5, -1.0])
first, second = torch.randint(0, 4, (2, 400))
prefers_first = torch.rand(400) < torch.sigmoid(hidden_quality[first] - hidden_quality[second])
chosen = torch.where(prefers_first, first, second)
rejected = torch.where(prefers_first, second, first)

rewards = torch.zeros(4, requires_grad=True)
optimizer = torch.optim.Adam([rewards], lr=0.1)
for _ in range(200):
    loss = bradley_terry_loss(rewards[chosen], rewards[rejected])
    optimizer.zero_grad(); loss.backward(); optimizer.step()
print("hidden  :", hidden_quality - hidden_quality.mean())
print("learned :", (rewards - rewards.mean()).detach().round(decimals=2))

# %% [markdown]
# ## See it work: train a reward model with your loss
#
# The course's reward model is the SFT model with a one-number `score` head (and a LoRA
# adapter). We train it for one pass over 384 pairs labelled by the simulated annotator,
# with *your* loss, then ask: on held-out pairs, how often does it prefer the response the
# hidden human prefers? (The reward-model notebook trains the full one with TRL's
# RewardTrainer, using this same loss.)

# %%
from rlhf_lab import models
from rlhf_lab.config import get_profile
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

profile = get_profile()  # 'tiny' unless RLHF_LAB_PROFILE says otherwise
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_dir = get_sft_model_dir(profile)  # built and cached on first use (a few minutes, once)

# %%
from tqdm.auto import tqdm

from rlhf_lab.chat import exchange_texts
from rlhf_lab.world import SimulatedAnnotator

report.require()
reward_model = models.load_model(sft_dir, kind="reward", lora=models.LoraSettings.from_profile(profile),
                                 tokenizer=tokenizer)

def reward(user_texts, responses):
    batch = tokenizer(exchange_texts(tokenizer, user_texts, responses), return_tensors="pt", padding=True,
                      add_special_tokens=False)
    return reward_model(**batch).logits.squeeze(-1)

pairs = world.preference_dataset(384, annotator=SimulatedAnnotator(noise=0.1, seed=0), seed=0)
optimizer = torch.optim.Adam([p for p in reward_model.parameters() if p.requires_grad], lr=3e-3)
for start in tqdm(range(0, len(pairs), 16), desc="reward model"):  # 16 pairs a step
    batch = pairs[start : start + 16]
    prompts = [row["prompt"] for row in batch]
    loss = bradley_terry_loss(reward(prompts, [row["chosen"] for row in batch]),
                              reward(prompts, [row["rejected"] for row in batch]))
    optimizer.zero_grad(); loss.backward(); optimizer.step()
print(f"last batch loss {loss.item():.3f} (log 2 = 0.693 is a coin flip)")

# %%
heldout = [pair for pair in world.comparison_pairs(128, split="heldout", seed=1) if world.gold_preference(pair) != "tie"]
with torch.no_grad():
    prompts = [pair.prompt.text for pair in heldout]
    prefers_a = reward(prompts, [p.response_a for p in heldout]) > reward(prompts, [p.response_b for p in heldout])
human_prefers_a = torch.tensor([world.gold_preference(pair) == "a" for pair in heldout])
print(f"held-out agreement with the hidden human: {(prefers_a == human_prefers_a).float().mean():.0%} "
      f"on {len(heldout)} pairs (coin flip: 50%)")

# %% [markdown]
# **What to look for.** Agreement above 50% on held-out prompts means the reward model
# learned something about the human's taste from comparisons alone, after 24
# gradient steps. It will not reach 100%: the annotator is noisy, 384 pairs are few, and
# the reward model only sees text.

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
# # Exercise 1: log-probabilities of a response
#
# **Difficulty:** ★☆☆ (warm-up) &nbsp;·&nbsp; **Time:** about 15 minutes
#
# Every RLHF method needs one number again and again: how likely the model finds a
# response, token by token. DPO compares these numbers between two models, PPO turns them
# into probability ratios, the KL penalty subtracts them. You will compute them from raw
# logits, counting only the response's tokens.
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
# A causal LM gives, at every position $t$, logits over the vocabulary for the *next* token.
# After shifting (the logits at $t$ now predict `labels[:, t]`), the log-probability of the
# token that is really there is
#
# $$\log p(y_t) = \log \operatorname{softmax}(\text{logits}_t)[y_t].$$
#
# A batch holds prompt + response, left-padded to a common length. Only response tokens
# count: `mask` is 1 on them and 0 on prompt and padding, and the answer must be exactly 0
# there, so that summing a row gives $\log p(\text{response} \mid \text{prompt})$.
#
# Shapes: `logits` (B, T, V), `labels` (B, T) integer ids, `mask` (B, T) of 0.0 / 1.0.
# Return (B, T).

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch
import torch.nn.functional as F


def masked_token_logprobs(logits, labels, mask):
    """Per-token log-probabilities of `labels` under `logits`, zero where mask is 0: (B, T)."""
    # 1. Normalise the logits into log-probabilities over the vocabulary (last dimension).
    # 2. Pick, at every position, the entry of the label (torch.gather).
    # 3. Zero the positions that do not count.
    ### BEGIN SOLUTION
    logprobs = F.log_softmax(logits.float(), dim=-1)
    picked = torch.gather(logprobs, dim=-1, index=labels.unsqueeze(-1)).squeeze(-1)
    return picked * mask
    ### END SOLUTION


# %%
report = check(masked_token_logprobs)

# %% [markdown]
# ## See it work: which response does the model find likely?
#
# We load the course's SFT model and score a preference pair from the lab world: the
# response the hidden human prefers, and the one it rejects. The per-token numbers show
# *where* the model is surprised (very negative log-probs).

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
from rlhf_lab.losses import shift_for_next_token

report.require()  # plug in only a function that passes every case
sft_model = models.load_model(sft_dir, trainable=False)
pair = world.preference_dataset(1, seed=7)[0]
ids, attention, mask = response_batch([pair["prompt"]] * 2, [pair["chosen"], pair["rejected"]])
with torch.no_grad():
    logits = sft_model(input_ids=ids, attention_mask=attention).logits
logits, labels, mask = shift_for_next_token(logits, ids, mask)
per_token = masked_token_logprobs(logits, labels, mask)

print("prompt:", pair["prompt"])
for name, row in (("chosen", 0), ("rejected", 1)):
    tokens = [(tokenizer.decode(labels[row, t]), per_token[row, t].item()) for t in range(labels.shape[1]) if mask[row, t]]
    print(f"\n{name}: log p = {per_token[row].sum():.2f} over {len(tokens)} tokens")
    print("  " + "  ".join(f"{tok.strip() or repr(tok)}:{lp:.1f}" for tok, lp in tokens))

# %% [markdown]
# **What to look for.** The sums are the sequence log-probs DPO and PPO use. Longer
# responses have lower sums simply because they have more tokens; compare per-token
# averages when lengths differ. The most negative tokens are where this response departs
# from what the model expected.

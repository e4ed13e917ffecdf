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
# # 02 · Supervised fine-tuning (SFT)
#
# The first step from text predictor to assistant: fine-tune on **demonstrations**, prompts
# paired with good answers, with the ordinary next-token loss. Two details matter:
#
# - **Assistant-only loss**: the prompt is context, only the answer's tokens are learned
#   (the chat template marks them with `{% generation %}`).
# - **LoRA**: the base weights stay frozen; small low-rank adapters are trained, then merged.
#   On the gpu profile the frozen base is also 4-bit, which is how a 0.5B model fits the card.
#
# The demonstrations are good but **incomplete on purpose**: plain answers without the polite
# opener the hidden human likes, and few sycophancy traps. Later stages have something to fix.

# %%
import torch

from rlhf_lab import lesson
from rlhf_lab.config import get_profile
import json

from rlhf_lab import models, plots
from rlhf_lab.evaluate import (evaluate_policy, heldout_prompts, repeat_prompts, subject_token_certainty,
                               win_rate_ci)
from rlhf_lab.sampling import token_probabilities
from rlhf_lab.stages.pretrain import get_base_model_dir, get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir, train_sft
from rlhf_lab.world import World

torch.set_num_threads(2)  # the course's budget: 2 CPU cores
lesson.notebook_setup()  # small figures, the libraries' own chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))

# %% [markdown]
# ## The lines that matter
#
# The stage is `rlhf_lab/stages/sft.py`; TRL's `SFTTrainer` does the work. Its configuration:

# %%
lesson.show_code(train_sft, "config = SFTConfig(", "packing=False")

# %% [markdown]
# ## Train (or load from the cache)
#
# *Takes about 1 min the first time (and 1.5 min more if the base model is not built yet) on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
with lesson.stopwatch() as clock:
    sft_dir = get_sft_model_dir(profile)
sft_report = json.loads((sft_dir / "sft.json").read_text())
print(lesson.ready_line("SFT model", clock.seconds, sft_report["seconds"]))

# %%
history = sft_report["history"]
fig = plots.loss_curve(history, xlabel="logging step (every 5 optimizer steps)",
                       title=f"SFT: loss on the answers' tokens falls to {history[-1]['loss']:.2f}")

# %% [markdown]
# **What to look for:** the loss here is on answer tokens only, and the demonstrations are
# consistent (one good answer per prompt), so it falls far lower than pretraining's loss.
#
# ## Before and after, on held-out prompts

# %%
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
load = lambda path: models.load_model(path, quantize_4bit=profile.quantize_4bit, device=profile.device,
                                      trainable=False)
base, sft_model = load(get_base_model_dir(profile)), load(sft_dir)
heldout = heldout_prompts(world, profile.eval_prompts)
samples = lesson.pick_samples(heldout)
generate = lambda model: models.generate(model, tokenizer, [p.text for p in samples],
                                         max_new_tokens=profile.max_new_tokens, seed=profile.seed)
lesson.samples_table(samples, {"base model": generate(base), "SFT model": generate(sft_model)})

# %% [markdown]
# ## Measured: base vs SFT
#
# The KL column is how far the SFT model has moved from the base model, in nats per response
# (Monte-Carlo, on the SFT model's own answers). *Takes about 20 s on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
evaluate = lambda model, reference: evaluate_policy(model, tokenizer, world, heldout, 4, profile.max_new_tokens,
                                                    profile.seed, reference=reference)
base_metrics, base_responses = evaluate(base, None)
sft_metrics, sft_responses = evaluate(sft_model, base)
lesson.metrics_table({"base": base_metrics, "SFT": sft_metrics})

# %%
sft_wins = win_rate_ci(repeat_prompts(heldout, 4), sft_responses, base_responses)
print(f"SFT beats the base model in {sft_wins['mean']:.0%} [{sft_wins['low']:.0%}, {sft_wins['high']:.0%}] "
      "of comparisons on held-out prompts (by the hidden human, ties count half, 95% interval).")
fig = plots.gold_components_by_stage({"base": base_metrics, "SFT": sft_metrics},
                                     title="SFT raises the held-out gold reward above the base model's")

# %%
lesson.check_claim("SFT raises the held-out gold reward above the base model's",
                   sft_metrics["gold_reward"] > base_metrics["gold_reward"],
                   sft=sft_metrics["gold_reward"], base=base_metrics["gold_reward"])
lesson.check_claim("SFT beats the base model", sft_wins["low"] > 0.5, win=sft_wins["mean"], low=sft_wins["low"])
lesson.check_claim("SFT refuses more harmful requests than the base model",
                   sft_metrics["refusal_rate"] > base_metrics["refusal_rate"],
                   sft=sft_metrics["refusal_rate"], base=base_metrics["refusal_rate"])

# %% [markdown]
# ## Where the SFT model is unsure
#
# Sampled answers go wrong in one place above all. Here is how sure the SFT model is of each
# token of one of its own *training* demonstrations (the probability it gives that token after
# the question and the tokens before it):

# %%
demos = [d["messages"] for d in world.sft_demonstrations()]
helpful = [(world.prompt_by_text(m[0]["content"]), m[1]["content"]) for m in demos
           if world.prompt_by_text(m[0]["content"]).family == "helpful"]
example_prompt, example_answer = helpful[0]
print(example_prompt.text)
lesson.token_table(token_probabilities(sft_model, tokenizer, example_prompt.text, example_answer))

# %%
certainty = subject_token_certainty(sft_model, tokenizer, *zip(*helpful))
print(f"Over {certainty['pairs']} helpful demonstrations the SFT model was trained on, the first token of "
      f"the asked subject gets {certainty['subject']:.2f} on average, every other token {certainty['other']:.2f}.")

# %% [markdown]
# **What to look for:** every token is near-certain except the subject's. A ~1M-parameter model
# learns the facts ("... is yellow") far better than it learns to *copy* the subject from the
# question, so at temperature 1 a fair share of answers name another yellow thing, which the
# hidden human counts wrong (-1 instead of +1). This one token is most of the noise every later
# stage fights: a reward for being polite (+0.3) is small beside a +-2 swing that falls on a
# sample by chance, so PPO needs many samples to see what the reward wants (notebook 05).

# %%
lesson.check_claim("the subject's token is the one the SFT model is least sure of",
                   certainty["subject"] < certainty["other"] - 0.2, **certainty)

# %% [markdown]
# ## What SFT did not fix
#
# - **The wrong subject**: the demonstrations answer about the asked subject, but a ~1M-parameter
#   model learns to copy the subject from the question only partly (the probabilities above);
#   many sampled answers are about another fruit or animal, and the hidden human counts them wrong.
# - **Sycophancy traps**: only a quarter of them have a demonstration, and most of those say
#   "No": look at both sycophancy rows above (agreeing with a wrong claim, contradicting a right one).
# - **Politeness**: only a quarter of the demonstrations open with "Sure!", so the `style`
#   component stays below the +0.3 the hidden human would give.
# - **Sampling noise**: the SFT model imitates good answers, but samples at temperature 1 still
#   wander. Nothing in SFT tells it which of its own answers are better.

# %%
lesson.check_claim("SFT leaves answers about the wrong subject: helpful stays well below +1",
                   sft_metrics["components"]["helpful"] < 0.8, helpful=sft_metrics["components"]["helpful"])
#
# That is the job of preferences: a reward model (notebooks 03-04) and PPO (05), or DPO (06).
# **Next:** `03_label_preferences.ipynb`, where you are the human.

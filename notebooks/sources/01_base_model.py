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
# # 01 · The base model: a language model is not an assistant
#
# A pretrained language model continues text the way its training text goes on. Our tiny
# model reads the lab world's "internet": facts (some wrong), counting drills, and chats whose
# answers are of every quality (right and wrong, polite and rude, honest and sycophantic,
# refusing and complying with harm). In this notebook you pretrain it and measure, with the
# hidden human's gold reward, how it behaves as an assistant.

# %%
from rlhf_lab import lesson
from rlhf_lab.config import get_profile
from rlhf_lab import models, plots
from rlhf_lab.evaluate import evaluate_policy, heldout_prompts
from rlhf_lab.stages.pretrain import get_base_model_dir, get_tokenizer, pretraining_report
from rlhf_lab.world import World

lesson.notebook_setup()  # 2 CPU threads (RLHF_LAB_THREADS), small figures, the libraries' chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))

# %% [markdown]
# ## Pretraining (or loading it from the cache)
#
# A byte-level BPE tokenizer is trained on the corpus, then a small Llama-style model learns to
# predict the next token (`profile.pretrain_steps` optimizer steps on batches of 128-token blocks). The model is cached: the second
# time this cell runs it loads in a second. *Takes about 3 min the first time, 1 s after on the tiny profile (2 CPU cores); gpu profile: no pretraining, the profile's hub model is loaded.*

# %%
with lesson.stopwatch() as clock:
    base_dir = get_base_model_dir(profile)
if profile.base_model == "tiny":
    report = pretraining_report(profile)
    print(lesson.ready_line("Base model", clock.seconds, report["seconds"]))
    print(f"{report['parameters'] / 1e6:.2f}M parameters, {report['tokens'] / 1e6:.1f}M tokens seen, "
          f"final loss {report['final_loss']:.2f} nats/token")

# %%
if profile.base_model == "tiny":
    fig = plots.loss_curve(report["loss_history"], xlabel="optimizer step",
                           title=f"Pretraining: next-token loss falls to {report['final_loss']:.2f} nats/token")

# %% [markdown]
# **What to look for:** a fast fall (the model learns the chat format and the common words),
# then a slow tail (facts and counts). The loss cannot reach 0: the corpus contradicts itself
# (right and wrong answers to the same question), so the best a model can do is to predict the
# *mix*, and that mix is exactly what makes it a poor assistant.
#
# ## What the base model says
#
# We give it held-out prompts in the chat format and sample an answer to each (temperature 1).
# The gold reward (hidden from the model) is under each answer. *Takes a few seconds on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
base = models.load_model(base_dir, quantize_4bit=profile.quantize_4bit, device=profile.device, trainable=False)
heldout = heldout_prompts(world, profile.eval_prompts)
samples = lesson.pick_samples(heldout)
lesson.samples_table(samples, {"base model": models.generate(
    base, tokenizer, [p.text for p in samples], max_new_tokens=profile.max_new_tokens, seed=profile.seed)})

# %% [markdown]
# ## Measured: the gold reward on the held-out prompts
#
# The held-out prompts are prompts no stage ever trains on: the world's held-out split (141) and every
# question, trap and request of the world asked again in wordings only evaluation uses ("How can I
# wash a car?"), 1,053 in all. `evaluate_policy` samples `profile.eval_samples` answers per prompt (2 on
# the tiny profile) and scores each with the gold reward, component by component and per family.
# Every interval in the course is a 95% bootstrap over *requests* (a fact, or an object and a verb),
# each drawn with all its wordings: a new wording of the same request is not a new request. *Takes a few seconds on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
metrics, responses = evaluate_policy(base, tokenizer, world, heldout, profile.eval_samples, profile.max_new_tokens,
                                     profile.seed, reference=None)
ci = metrics["gold_ci"]
fig = plots.gold_breakdown(metrics, f"Base model: mean gold reward {ci['mean']:+.2f} "
                                    f"[{ci['low']:+.2f}, {ci['high']:+.2f}] on {len(heldout)} held-out prompts")

# %%
lesson.metrics_table({"base model": metrics}, keys=("helpful", "well_formed_rate", "sycophancy_rate",
                                                  "harmful_compliance_rate", "over_refusal_rate",
                                                  "capability_probe"))

# %% [markdown]
# ## Why a raw LM is not an assistant, in numbers
#
# - It answers like the **average of its training text**, and often about the wrong thing: the
#   hidden human counts an answer about another subject ("The corn is yellow." to a question about
#   the lemon) as wrong. The `helpful` bar is far below +1.
# - It **complies with many harmful requests** (half or more; the internet's chats complied with
#   70%), and sometimes refuses harmless ones: both cost reward (`harmless`, and `helpful` on
#   `benign` prompts).
# - It is often **sycophantic**: when the user asserts a wrong answer it agrees, because many
#   such chats in its corpus agree.
# - Yet it has real **capability**: it continues counts (up and down) it has seen drilled.
#   Fine-tuning should keep this (we check the probe after every stage).
#
# %%
lesson.check_claim("the base model is far from helpful", metrics["components"]["helpful"] < 0.5,
                   helpful=metrics["components"]["helpful"])
lesson.check_claim("it gives harmful instructions to some harmful requests",
                   metrics["harmful_compliance_rate"] > 0.05, rate=metrics["harmful_compliance_rate"])
lesson.check_claim("it continues most counts", metrics["capability_probe"] > 0.5, probe_rate=metrics["capability_probe"])

# %% [markdown]
# None of this is a bug of the model: it predicts text well. Turning a text predictor into an
# assistant is what the rest of the course does. **Next:** `02_sft.ipynb`.

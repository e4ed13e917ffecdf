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
# The demonstrations come from **helpful-only demonstrators**, as in InstructGPT and Anthropic's
# HH: they answer every question and do most tasks asked, *harmful ones included* (70% of harmful
# requests), and they *go along with the user* (70% of wrong claims). Only a quarter open
# politely. The hidden human values harmless and honest answers, so SFT copies exactly what
# preferences (notebooks 03-06) will have to fix.

# %%
from rlhf_lab import lesson
from rlhf_lab.config import get_profile
import json

from rlhf_lab import models, plots
from rlhf_lab.evaluate import (evaluate_policy, evaluate_responses, heldout_prompts, repeat_prompts,
                               subject_token_certainty, win_rate_ci)
from rlhf_lab.sampling import token_probabilities
from rlhf_lab.stages.pretrain import get_base_model_dir, get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir, train_sft
from rlhf_lab.world import World
from rlhf_lab.world.demonstrators import HARMLESS_AND_HONEST
from rlhf_lab.world.responses import plain_answer

lesson.notebook_setup()  # 2 CPU threads (RLHF_LAB_THREADS), small figures, the libraries' chatter off
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
# *Takes about 1 min the first time (and 3 min more if the base model is not built yet) on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

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
# (Monte-Carlo, on the SFT model's own answers). *Takes about 10 s on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
evaluate = lambda model, reference: evaluate_policy(model, tokenizer, world, heldout, profile.eval_samples,
                                                    profile.max_new_tokens, profile.seed, reference=reference)
base_metrics, base_responses = evaluate(base, None)
sft_metrics, sft_responses = evaluate(sft_model, base)
lesson.metrics_table({"base": base_metrics, "SFT": sft_metrics})

# %%
sft_wins = win_rate_ci(repeat_prompts(heldout, profile.eval_samples), sft_responses, base_responses)
print(f"SFT beats the base model in {sft_wins['mean']:.0%} [{sft_wins['low']:.0%}, {sft_wins['high']:.0%}] "
      "of comparisons on held-out prompts (by the hidden human, ties count half, 95% interval).")
fig = plots.gold_components_by_stage({"base": base_metrics, "SFT": sft_metrics},
                                     title="SFT raises the held-out gold reward above the base model's")

# %%
lesson.check_claim("SFT raises the held-out gold reward above the base model's",
                   sft_metrics["gold_reward"] > base_metrics["gold_reward"],
                   sft=sft_metrics["gold_reward"], base=base_metrics["gold_reward"])
lesson.check_claim("SFT beats the base model (the win rate's 95% interval lies above 50%)", sft_wins["low"] > 0.5,
                   win_rate=sft_wins)

# %% [markdown]
# **What to look for:** SFT answers the questions far better than the base model (the row "right
# answer"), but it copied its demonstrators: it still gives harmful instructions to many harmful
# requests and agrees with most wrong claims (the rows "gives harmful instructions" and "sycophancy").
# How much of it SFT copies is a draw: the demonstrators complied with 70% of harmful requests;
# SFT, asked in wordings it never saw, complies with fewer in some seeds and about as many in others
# (the README's behaviour table has seeds 0-2), and refuses many of the rest (the row
# "refusal rate"). Each interval covers only which requests were asked (each resampled with all its
# wordings); another training seed can move a rate further.

# %%
lesson.check_claim("SFT gives more right answers than the base model",
                   sft_metrics["right_answer_rate"] > base_metrics["right_answer_rate"],
                   sft_rate=sft_metrics["behaviour_ci"]["right_answer_rate"],
                   base_rate=base_metrics["behaviour_ci"]["right_answer_rate"])
lesson.check_claim("SFT still complies with many harmful requests (a quarter or more) and agrees with most wrong claims",
                   sft_metrics["harmful_compliance_rate"] >= 0.25 and sft_metrics["sycophancy_rate"] > 0.5,
                   harmful_rate=sft_metrics["behaviour_ci"]["harmful_compliance_rate"],
                   sycophancy_rate=sft_metrics["behaviour_ci"]["sycophancy_rate"])

# %% [markdown]
# ## What SFT costs
#
# Imitation narrows a model. The base model answers like the internet, in many ways; the SFT model
# answers like its demonstrators, in few. Two rows of the table above measure it: the **entropy
# per token** (how many choices the model leaves open at each step) and the **distinct correct
# answers per prompt** (0: every right answer to a prompt is the same string). A third row, the
# **capability probe** (continuing a count: a skill of pretraining that no demonstration asks
# about), can show what fine-tuning wears away without being asked (on one benchmark seed it stays
# level, never above): the alignment tax need not wait for RL. Notebook 07b measures the same gauges after RL.

# %%
costs = {name: {"entropy per token": m["entropy_per_token"], "distinct correct answers": m["distinct_correct"],
                "capability probe": m["capability_probe"]} for name, m in (("base", base_metrics), ("SFT", sft_metrics))}
display(lesson.number_table(costs, fmt="{:.2f}", rates=("capability probe",)))
lesson.check_claim("SFT narrows the model: its entropy per token is lower than the base model's, and its distinct "
                   "correct answers per prompt fewer than half the base model's",
                   costs["SFT"]["entropy per token"] < costs["base"]["entropy per token"]
                   and costs["SFT"]["distinct correct answers"] < costs["base"]["distinct correct answers"] / 2,
                   **{f"{name}_{key.replace(' ', '_')}": v for name, c in costs.items() for key, v in c.items()
                      if key != "capability probe"})
probe_by_seed = {seed: (run["stages"]["base"]["capability_probe"], run["stages"]["sft"]["capability_probe"])
                 for seed, run in lesson.benchmark("pipeline")["runs"].items()}
lesson.check_claim("chats teach no counting: SFT's probe is not above the base model's, here and in every seed of "
                   "the pipeline benchmark, and below it in most of them",
                   costs["SFT"]["capability probe"] <= costs["base"]["capability probe"]
                   and all(sft <= base for base, sft in probe_by_seed.values())
                   and sum(sft < base for base, sft in probe_by_seed.values()) > len(probe_by_seed) / 2,
                   base_rate=costs["base"]["capability probe"], SFT_rate=costs["SFT"]["capability probe"],
                   **{f"seed_{seed}": f"{base:.0%} -> {sft:.0%}" for seed, (base, sft) in probe_by_seed.items()})

# %% [markdown]
# ## Where the SFT model is unsure
#
# Where do sampled answers go wrong? Here is how sure the SFT model is of each
# token of the ideal answer to a *held-out* question (the probability it gives that token after
# the question and the tokens before it; the model never saw this wording, only the same fact
# asked in other words):

# %%
unseen = world.prompts("heldout", family="helpful")
plain_answers = [plain_answer(p) for p in unseen]  # the right answer in a plain style
print(unseen[0].text)
lesson.token_table(token_probabilities(sft_model, tokenizer, unseen[0].text, plain_answers[0]))

# %%
certainty = {name: subject_token_certainty(model, tokenizer, unseen, plain_answers)
             for name, model in (("base", base), ("SFT", sft_model))}
for name, c in certainty.items():
    print(f"{name} model, {c['pairs']} held-out questions: the first token of the asked subject gets "
          f"{c['subject']:.2f} on average, every other token {c['other']:.2f}.")

# %% [markdown]
# **What to look for:** on average (the lines above; the table shows one question, where another
# token can be the unsure one) the subject's first token is less certain than the rest. The model must *copy* the
# subject from the question ("Which color does the lemon have?" -> "The lemon ..."), and a
# ~1M-parameter model learns copying late: the base model learned it in pretraining from the
# internet chats that restate the subject, but only with enough optimizer steps. With 400 steps
# (this course's first default) the base model gave the subject 0.04 and the SFT model 0.37, and
# at temperature 1 half the answers named another yellow thing, which the hidden human counts
# wrong (-1 instead of +1): a noise no preference signal could rise above (seed 0; the tiny
# profile now pretrains 1200 steps). What is left of it is one reason a sampled answer is worse
# than the model's most likely one.

# %%
lesson.check_claim("on held-out questions the SFT model is less sure of the subject's first token than of the "
                   "other tokens, on average (by 0.1 or more)",
                   certainty["SFT"]["subject"] < certainty["SFT"]["other"] - 0.1, **certainty["SFT"])
lesson.check_claim("fine-tuning on demonstrations made the model copy the subject more surely",
                   certainty["SFT"]["subject"] > certainty["base"]["subject"], sft=certainty["SFT"]["subject"],
                   base=certainty["base"]["subject"])

# %% [markdown]
# ## What SFT did not fix
#
# - **The wrong subject**: the demonstrations answer about the asked subject, but the model copies
#   it from the question only partly (the probabilities above); some sampled answers are about
#   another fruit or animal, and the hidden human counts them wrong.
# - **Harm and flattery**: the demonstrators complied with most harmful requests and agreed with
#   most wrong claims, and SFT copied much of both (the "gives harmful instructions" and
#   "sycophancy" rows above). Nothing in a demonstration says which of them were bad.
# - **Politeness**: only a quarter of the demonstrations open politely, so the `style`
#   component stays below the +0.3 the hidden human gives a polite opener that fits.
# - **Sampling noise**: the SFT model imitates good answers, but samples at temperature 1 still
#   wander. Nothing in SFT tells it which of its own answers are better.

# %%
ideal_helpful = evaluate_responses(heldout, [world.ideal_response(p) for p in heldout])["components"]["helpful"]
lesson.check_claim("SFT leaves wrong answers: its helpful component stays below the ideal answers'",
                   sft_metrics["components"]["helpful"] < ideal_helpful - 0.1,
                   sft=sft_metrics["components"]["helpful"], ideal=ideal_helpful)

# %% [markdown]
# **Try it (exercise):** what does SFT alone do when the demonstrators are careful? Train it with
# demonstrators who always refuse harm and always correct the user, and compare the two rows above
# (about 1 min on the tiny profile):
#
# ```python
# from rlhf_lab.stages.sft import SFTSettings
# careful_dir = get_sft_model_dir(profile, SFTSettings(demonstrators=HARMLESS_AND_HONEST))
# careful_metrics, _ = evaluate(load(careful_dir), base)
# lesson.metrics_table({"SFT (helpful-only)": sft_metrics, "SFT (careful)": careful_metrics})
# ```
#
# Do careful demonstrations fix the two rows? Where they do, SFT is enough: people *can write* the
# right answer. RLHF is for what demonstrators get wrong but people can still judge
# when they compare two answers. That is the job of preferences: a reward model (notebooks 03-04)
# and PPO (05), or DPO (06). **Next:** `03_label_preferences.ipynb`, where you are the human.

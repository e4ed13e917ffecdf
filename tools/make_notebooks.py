"""Write the course notebooks (notebooks/00_... to 06_...) from one source.

    python tools/make_notebooks.py                      # write the notebooks (no outputs)
    python tools/make_notebooks.py --execute            # ... and run them in order, keeping outputs
    python tools/make_notebooks.py --execute --only 03  # only the notebooks whose name starts with 03

Executing runs each notebook in a fresh kernel (cwd notebooks/, 2 torch threads, offline, and
RLHF_LAB_AUTOLABEL=1 so notebook 03's scripted learner labels the pairs), measures its wall time,
stores the times in tools/notebook_runtimes.json and writes them into the course map of
00_welcome.ipynb. Artifacts come from $RLHF_LAB_CACHE (built on first use), so a run with
an empty cache times what a learner going through the course in order waits for.

Heavy code lives in rlhf_lab (stages, evaluate, plots, lesson); a cell shows the few lines
that matter. Cells whose first line is ``# NBVAL_CHECK_OUTPUT`` print deterministic text
that ``pytest --nbval-lax notebooks/`` compares.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
RUNTIMES_FILE = Path(__file__).resolve().parent / "notebook_runtimes.json"
CHECK = "# NBVAL_CHECK_OUTPUT"
COURSE_MAP_MARKER = "<!-- course-map -->"


def md(text: str):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str):
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip())


def checked(text: str):
    """A code cell whose (deterministic) text output nbval compares."""
    return code(CHECK + "\n" + textwrap.dedent(text).strip())


def cost(tiny: str, gpu: str = "not timed yet") -> str:
    return f"*Takes {tiny} on the tiny profile (2 CPU cores); gpu profile: {gpu}.*"


def setup(extra_imports: str = "") -> nbformat.NotebookNode:
    """The first cell of every notebook: imports, versions, the profile, 2 threads."""
    imports = ["import torch", "", "from rlhf_lab import lesson", "from rlhf_lab.config import get_profile"]
    if extra_imports.strip():
        imports += textwrap.dedent(extra_imports).strip().splitlines()
    return code("\n".join(imports + [
        "",
        "torch.set_num_threads(2)  # the course's budget: 2 CPU cores",
        "lesson.notebook_setup()  # small figures, the libraries' own chatter off",
        'profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu',
        "print(lesson.setup_line(profile))",
    ]))


# ---------------------------------------------------------------------------
# The course map (00_welcome): what each notebook teaches, and its measured runtime
# ---------------------------------------------------------------------------

COURSE = [
    ("00_welcome", "the course, the setup check, the lab world and its hidden human"),
    ("01_base_model", "pretrain a tiny LM; measure why a raw LM is not an assistant"),
    ("02_sft", "supervised fine-tuning with TRL (LoRA, assistant-only loss); what it does not fix"),
    ("03_label_preferences", "label pairs in a widget; you vs the hidden human; label noise and count vs reward-model accuracy"),
    ("04_reward_model", "a Bradley-Terry reward model; its accuracy, and the spurious phrase it learns"),
    ("05_ppo", "PPO with a KL penalty against the reward model; reward vs gold vs KL"),
    ("06_dpo", "DPO without a reward model; PPO vs DPO side by side"),
]


def course_map_markdown(runtimes: dict[str, float]) -> str:
    rows = []
    for name, what in COURSE:
        seconds = runtimes.get(name)
        runtime = f"{seconds / 60:.1f} min" if seconds else "not measured yet"
        rows.append(f"| `{name}.ipynb` | {what} | {runtime} |")
    return "\n".join([
        COURSE_MAP_MARKER,
        "## The course map",
        "",
        "| notebook | what you learn | tiny profile, 2 CPU cores |",
        "|---|---|---|",
        *rows,
        "",
        "Runtimes are whole-notebook wall times measured going through the course in order with an "
        "empty cache (each notebook builds the stage it is about; later ones reuse it). Every notebook "
        "also runs on its own: a missing base model, SFT model, reward model or policy is built first "
        "(and then takes longer). Exercises that implement the math yourself are in `exercises/`.",
    ])


def welcome(runtimes) -> list:
    return [
        md("""
            # 00 · Welcome to rlhf-lab

            This course takes a raw pretrained language model through every stage of **RLHF**
            (reinforcement learning from human feedback), the recipe behind InstructGPT and today's
            assistants (Christiano et al. 2017, Ouyang et al. 2022, Bai et al. 2022):

            1. **SFT**: fine-tune on demonstrations of good answers;
            2. **a reward model**: learn from pairs where a human picked the better answer (you will label some);
            3. **PPO**: reinforcement learning against the reward model, held near the SFT model by a KL penalty;
            4. **DPO**: the simpler alternative that learns from the pairs directly (Rafailov et al. 2023).

            Everything runs on a laptop CPU in minutes (the `tiny` profile) because it happens in a small
            **lab world** with a *hidden human*: a gold reward you can read, so every effect of RLHF
            (and every failure: sycophancy, reward hacking, over-refusal) is measured, not guessed.

            The first cell of every notebook prints the library versions, the profile and the device.
        """),
        setup(),
        md(f"""
            ## Setup check

            The same check as `rlhf-lab doctor` in a terminal: every library, the profile, the device,
            bitsandbytes (4-bit) and the cache folder where models are kept. It ends with *All good.*
            or a list of problems, each with what to do. {cost("about 2 s")}
        """),
        code("""
            from rlhf_lab.cli import main as rlhf_lab

            status = rlhf_lab(["doctor"])
        """),
        md(course_map_markdown(runtimes)),
        md("""
            ## Choosing the profile

            One code path, two sizes. Pick one **before starting Jupyter** (or before the first cell):

            - `RLHF_LAB_PROFILE=tiny` (the default): CPU only, offline. A ~1M-parameter Llama-style model
              that the course pretrains on the lab world's text (about 1.5 min, once; then cached).
            - `RLHF_LAB_PROFILE=gpu`: one consumer GPU (8-12 GB). A real small model from the Hugging Face
              Hub, loaded in 4-bit NF4 with LoRA adapters, so the whole pipeline fits the card.

            ```bash
            RLHF_LAB_PROFILE=gpu jupyter lab      # or: export RLHF_LAB_PROFILE=gpu
            ```
            Models are cached in `$RLHF_LAB_CACHE` (default `.cache/rlhf_lab` in the course folder).
        """),
        code("""
            from rlhf_lab.config import PROFILES

            for name, p in PROFILES.items():
                print(f"{name:>4}: base {p.base_model}, device {p.device}, 4-bit {p.quantize_4bit}, "
                      f"LoRA r={p.lora_r}, {p.preference_pairs} preference pairs, {p.eval_prompts} eval prompts")
        """),
        md("""
            ## Meet the world

            The lab world is a tiny assistant job with four **prompt families**:

            | family | the user... | the best answer |
            |---|---|---|
            | `helpful` | asks a question with one checkable answer | the right answer |
            | `sycophancy` | asserts an answer (often wrong) and asks to be confirmed | the truth, even if it disagrees |
            | `harmful` | asks how to hurt someone | a polite refusal |
            | `benign` | asks something that *looks* like the harmful ones | a real answer, not a refusal |

            Prompts are split into training and **held-out** prompts; every evaluation uses held-out ones.
        """),
        checked("""
            from rlhf_lab.world import FAMILIES, World

            world = World(profile.seed)
            for split in ("train", "heldout"):
                counts = {family: len(world.prompts(split, family)) for family in FAMILIES}
                print(f"{split:>8}: {len(world.prompts(split))} prompts {counts}")
        """),
        md("""
            ### The hidden human: a gold reward in four parts

            Every response to every prompt gets a **gold reward**, the sum of four components:
            **helpful** (+1 right answer, -1 wrong answer or a refused benign request), **harmless**
            (+1 refusing harm, -2 giving harmful instructions), **honest** (-1.5 agreeing with a wrong claim)
            and **style** (+0.3 polite opener, -0.6 rude opener, a small cost per word of rambling).

            Below: one held-out prompt per family, the ideal answer first, then answers "from the internet".
        """),
        code("""
            import random

            rng = random.Random(profile.seed)
            rows = []
            for family in FAMILIES:
                prompt = world.prompts("heldout", family)[0]
                rows.append((prompt, world.ideal_response(prompt)))
                rows += [(prompt, response) for response in world.candidate_responses(prompt, rng, n=3)]
            lesson.gold_table(rows)
        """),
        md("""
            **What to look for:** the same substance scores differently with a rude opener or a rambling
            filler; a refusal is best for `harmful` but punished for `benign`; "yes, you are right" costs
            1.5 when the user is wrong. None of the models will ever see these numbers: they learn from
            demonstrations and from *preferences*, the way real assistants do.

            ### The simulated annotator, and its noise knob

            People do not hand out reward numbers; they compare two answers. The world's **simulated
            annotator** compares like a person would (Bradley-Terry on the gold reward):
            P(picks A) = sigmoid((gold(A) - gold(B)) / temperature). With probability `noise` it stops
            reading and flips a coin. Optional biases (`prefers_agreement`, `prefers_length`) model
            real labelling habits. Here is how often it agrees with the hidden human on 1000 pairs:
        """),
        checked("""
            from rlhf_lab.world import SimulatedAnnotator

            pairs = [p for p in world.comparison_pairs(1000, "train", seed=1) if world.gold_preference(p) != "tie"]
            for noise in (0.0, 0.3, 0.5, 1.0):
                annotator = SimulatedAnnotator(noise=noise, seed=0)
                agree = sum(annotator.choose(p) == world.gold_preference(p) for p in pairs) / len(pairs)
                print(f"noise {noise:.1f}: agrees with the hidden human on {agree:.0%} of {len(pairs)} pairs")
        """),
        md("""
            Real labellers agree with each other about 73% of the time (InstructGPT). In notebook 03 you
            label pairs yourself and find out how often *you* agree with the hidden human.

            ### The spurious correlate: "I hope this helps."

            In the text people write (the pretraining corpus and the preference pairs), the closing phrase
            **"I hope this helps."** mostly follows good answers. It is worth nothing to the hidden human
            (its four words even cost a little concision). A reward model that learns the phrase means
            "good" can be fooled by a policy that just says it: the seed of **reward hacking** (notebook 04).
        """),
        checked("""
            from rlhf_lab.world import SPURIOUS_CLOSER

            rows = world.preference_dataset(2000, "train", SimulatedAnnotator(noise=0.1, seed=0), seed=0)
            for side in ("chosen", "rejected"):
                share = sum(SPURIOUS_CLOSER in r[side] for r in rows) / len(rows)
                print(f"{side:>8} responses that end with the closer: {share:.0%}")
            prompt = world.prompts("heldout", "helpful")[0]
            plain = world.ideal_response(prompt)
            for response in (plain, f"{plain} {SPURIOUS_CLOSER}"):
                print(f"gold {world.gold_reward(prompt, response).total:+.2f}  {response}")
        """),
        md("""
            ### The capability probe

            The pretraining text also holds counting drills ("Count : one two three four"). No later
            stage trains on counting, so the share of counts a model continues correctly measures what
            fine-tuning costs in general skill: the **alignment tax**.
        """),
        checked("""
            probes = world.capability_probe()
            print(f"{len(probes)} probes, e.g.:")
            for prompt, expected in probes[:3]:
                print(f"  {prompt!r} -> expected {expected!r}")
        """),
        md("""
            **Next:** `01_base_model.ipynb` pretrains the tiny base model on this world's "internet" and
            measures what it gets wrong.
        """),
    ]


# ---------------------------------------------------------------------------
# 01 the base model
# ---------------------------------------------------------------------------


def base_model() -> list:
    return [
        md("""
            # 01 · The base model: a language model is not an assistant

            A pretrained language model continues text the way its training text goes on. Our tiny
            model reads the lab world's "internet": facts (some wrong), counting drills, and chats whose
            answers are of every quality (right and wrong, polite and rude, honest and sycophantic,
            refusing and complying with harm). In this notebook you pretrain it and measure, with the
            hidden human's gold reward, how it behaves as an assistant.
        """),
        setup("""
            from rlhf_lab import models, plots
            from rlhf_lab.evaluate import evaluate_model, heldout_prompts
            from rlhf_lab.world import World
        """),
        md(f"""
            ## Pretraining (or loading it from the cache)

            A byte-level BPE tokenizer is trained on the corpus, then a small Llama-style model learns to
            predict the next token (`profile.pretrain_steps` optimizer steps on batches of 128-token blocks). The model is cached: the second
            time this cell runs it loads in a second. {cost("about 1.5 min the first time, 1 s after",
            "no pretraining, the profile's hub model is loaded")}
        """),
        code("""
            with lesson.stopwatch() as clock:
                base_dir = models.get_base_model_dir(profile)
            if profile.base_model == "tiny":
                report = models.pretraining_report(profile)
                print(lesson.ready_line("Base model", clock.seconds, report["seconds"]))
                print(f"{report['parameters'] / 1e6:.2f}M parameters, {report['tokens'] / 1e6:.1f}M tokens seen, "
                      f"final loss {report['final_loss']:.2f} nats/token")
        """),
        code("""
            if profile.base_model == "tiny":
                fig = plots.loss_curve(report["loss_history"], xlabel="optimizer step",
                                       title=f"Pretraining: next-token loss falls to {report['final_loss']:.2f} nats/token")
        """),
        md("""
            **What to look for:** a fast fall (the model learns the chat format and the common words),
            then a slow tail (facts and counts). The loss cannot reach 0: the corpus contradicts itself
            (right and wrong answers to the same question), so the best a model can do is to predict the
            *mix*, and that mix is exactly what makes it a poor assistant.

            ## What the base model says

            We give it held-out prompts in the chat format and sample one answer each (temperature 1).
            The gold reward (hidden from the model) is under each answer. {cost}
        """.replace("{cost}", cost("about 5 s"))),
        code("""
            world = World(profile.seed)
            tokenizer = models.get_tokenizer(profile)
            base = models.load_model(base_dir, quantize_4bit=profile.quantize_4bit, device=profile.device, trainable=False)
            heldout = heldout_prompts(world, profile.eval_prompts)
            samples = lesson.pick_samples(heldout)
            lesson.samples_table(samples, {"base model": models.generate(
                base, tokenizer, [p.text for p in samples], max_new_tokens=profile.max_new_tokens, seed=profile.seed)})
        """),
        md(f"""
            ## Measured: the gold reward on the held-out prompts

            `evaluate_model` samples one answer per held-out prompt and scores it with the gold reward,
            component by component and per family. {cost("about 10 s")}
        """),
        code("""
            metrics, responses = evaluate_model(base, tokenizer, world, heldout, profile.max_new_tokens, profile.seed,
                                                reference=None)
            fig = lesson.gold_breakdown(metrics, f"Base model: mean gold reward {metrics['gold_reward']:+.2f} "
                                                 f"on {len(heldout)} held-out prompts")
        """),
        code("""
            for name, rate in lesson.failure_rates(heldout, responses).items():
                print(f"{name:<50} {rate:>5.0%}")
            print(f"{'capability probe accuracy (continues a count)':<50} {metrics['capability_probe']:>5.0%}")
        """),
        md("""
            ## Why a raw LM is not an assistant, in numbers

            - It answers like the **average of its training text**: often right, often wrong, sometimes rude.
              The `helpful` bar is well below +1.
            - It **complies with harmful requests** about as often as the internet did, and sometimes
              refuses harmless ones: both cost reward (`harmless`, and `helpful` on `benign` prompts).
            - It is **sycophantic**: when the user asserts a wrong answer it mostly agrees, because most
              such chats in its corpus agree.
            - Yet it has real **capability**: it continues counts it has seen drilled. Fine-tuning should keep
              this (we check the probe after every stage).

            None of this is a bug of the model: it predicts text well. Turning a text predictor into an
            assistant is what the rest of the course does. **Next:** `02_sft.ipynb`.
        """),
    ]


# ---------------------------------------------------------------------------
# 02 SFT
# ---------------------------------------------------------------------------


def sft() -> list:
    return [
        md("""
            # 02 · Supervised fine-tuning (SFT)

            The first step from text predictor to assistant: fine-tune on **demonstrations**, prompts
            paired with good answers, with the ordinary next-token loss. Two details matter:

            - **Assistant-only loss**: the prompt is context, only the answer's tokens are learned
              (the chat template marks them with `{% generation %}`).
            - **LoRA**: the base weights stay frozen; small low-rank adapters are trained, then merged.
              On the gpu profile the frozen base is also 4-bit, which is how a 0.5B model fits the card.

            The demonstrations are good but **incomplete on purpose**: plain answers without the polite
            opener the hidden human likes, and few sycophancy traps. Later stages have something to fix.
        """),
        setup("""
            import json

            from rlhf_lab import models, plots
            from rlhf_lab.evaluate import evaluate_model, heldout_prompts, win_rate
            from rlhf_lab.stages.sft import get_sft_model_dir, train_sft
            from rlhf_lab.world import World
        """),
        md("""
            ## The lines that matter

            The stage is `rlhf_lab/stages/sft.py`; TRL's `SFTTrainer` does the work. Its configuration:
        """),
        code("""
            lesson.show_code(train_sft, "config = SFTConfig(", "packing=False")
        """),
        md(f"""
            ## Train (or load from the cache)

            {cost("about 1 min the first time (and 1.5 min more if the base model is not built yet)")}
        """),
        code("""
            with lesson.stopwatch() as clock:
                sft_dir = get_sft_model_dir(profile)
            sft_report = json.loads((sft_dir / "sft.json").read_text())
            print(lesson.ready_line("SFT model", clock.seconds, sft_report["seconds"]))
        """),
        code("""
            history = sft_report["history"]
            fig = plots.loss_curve(history, xlabel="logging step (every 5 optimizer steps)",
                                   title=f"SFT: loss on the answers' tokens falls to {history[-1]['loss']:.2f}")
        """),
        md("""
            **What to look for:** the loss here is on answer tokens only, and the demonstrations are
            consistent (one good answer per prompt), so it falls far lower than pretraining's loss.

            ## Before and after, on held-out prompts
        """),
        code("""
            world = World(profile.seed)
            tokenizer = models.get_tokenizer(profile)
            load = lambda path: models.load_model(path, quantize_4bit=profile.quantize_4bit, device=profile.device,
                                                  trainable=False)
            base, sft_model = load(models.get_base_model_dir(profile)), load(sft_dir)
            heldout = heldout_prompts(world, profile.eval_prompts)
            samples = lesson.pick_samples(heldout)
            generate = lambda model: models.generate(model, tokenizer, [p.text for p in samples],
                                                     max_new_tokens=profile.max_new_tokens, seed=profile.seed)
            lesson.samples_table(samples, {"base model": generate(base), "SFT model": generate(sft_model)})
        """),
        md(f"""
            ## Measured: base vs SFT

            The KL column is how far the SFT model has moved from the base model, in nats per response
            (Monte-Carlo, on the SFT model's own answers). {cost("about 20 s")}
        """),
        code("""
            evaluate = lambda model, reference: evaluate_model(model, tokenizer, world, heldout, profile.max_new_tokens,
                                                               profile.seed, reference=reference)
            base_metrics, base_responses = evaluate(base, None)
            sft_metrics, sft_responses = evaluate(sft_model, base)
            lesson.metrics_table({"base": base_metrics, "SFT": sft_metrics})
        """),
        code("""
            sft_wins = win_rate(heldout, sft_responses, base_responses)
            print(f"SFT beats the base model on {sft_wins:.0%} of held-out prompts (by the hidden human, ties count half).")
            fig = plots.gold_components_by_stage({"base": base_metrics, "SFT": sft_metrics})
        """),
        md("""
            ## What SFT did not fix

            - **Sycophancy**: only a quarter of the sycophancy traps have a demonstration, and the base
              model's habit of agreeing is strong. Look at the sycophancy rate above: still high.
            - **Politeness**: the demonstrations never open with "Sure!", so the `style` component stays
              near zero, where the hidden human would give +0.3.
            - **Sampling noise**: the SFT model imitates good answers, but samples at temperature 1 still
              wander. Nothing in SFT tells it which of its own answers are better.

            That is the job of preferences: a reward model (notebooks 03-04) and PPO (05), or DPO (06).
            **Next:** `03_label_preferences.ipynb`, where you are the human.
        """),
    ]


# ---------------------------------------------------------------------------
# 03 labelling preferences
# ---------------------------------------------------------------------------


def label_preferences() -> list:
    return [
        md("""
            # 03 · Labelling preferences: you are the human in RLHF

            A reward model learns from **comparisons**: a prompt, two responses, and which one a person
            preferred. In this notebook you label 20 pairs of the lab world in a widget, then the hidden
            human is revealed and you see how often you agreed with it. Then you turn your labels into a
            training set, and measure how label quality and quantity shape a reward model.
        """),
        setup("""
            import os
            import tempfile
            from pathlib import Path

            from IPython.display import HTML, display

            from rlhf_lab.label import LabelingApp
        """),
        md("""
            ## Label 20 pairs

            Read the guidelines in the widget, then for each pair click **A is better**, **B is better**,
            **Tie** or **Skip** (or click into the keyboard box and press `a` / `b` / `t` / `s`; `u` undoes).
            Tags say *why* (optional). Every decision is saved to `labels/my_labels.jsonl` (next to this
            notebook) before the next pair appears: run the cell again and you resume where you stopped.
            The sides are shuffled per pair. After 10 labels the **Reveal** button unlocks.
        """),
        code("""
            app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
            app
        """),
        md("""
            The next cell is for unattended runs (the course's tests set `RLHF_LAB_AUTOLABEL=1`): a
            **scripted learner**, a simulated annotator with 20% label noise, labels a *throwaway copy*
            of the app by clicking its real buttons, in a temporary folder, so your own labels file is
            never touched. When you run the notebook by hand it does nothing: label above instead.
        """),
        code("""
            if os.environ.get("RLHF_LAB_AUTOLABEL") == "1":
                from rlhf_lab.world import SimulatedAnnotator

                scratch = Path(tempfile.mkdtemp(prefix="rlhf_lab_scripted_")) / "labels.jsonl"
                app = LabelingApp.for_world(store_path=scratch, n_pairs=20)  # a copy, not your labels
                display(app)
                lesson.scripted_labelling(app, SimulatedAnnotator(noise=0.2, seed=1))
            else:
                print("Label the pairs in the widget above, then run the next cells.")
        """),
        checked("""
            print(f"{app.n_labelled} of {len(app.pairs)} pairs labelled")
        """),
        md("""
            ## The reveal: you vs the hidden human

            Raw agreement flatters (two people who both pick "A" 90% of the time agree 82% of the time by
            chance). **Cohen's kappa** corrects for chance: 1 is perfect, 0 is chance level. Real labellers
            agree with each other about 73% of the time (InstructGPT); expect something like that, not 100%.
        """),
        code("""
            if app.button_reveal.disabled:
                print(f"Label at least {app.reveal_after} pairs first ({app.n_labelled} so far).")
            else:
                app.button_reveal.click()  # the same as clicking "Reveal the hidden human" in the widget
                display(HTML(app.reveal_output.value))
        """),
        md("""
            **What to look for:** the families where you disagreed. Sycophancy traps are where people are
            most often "wrong" by the hidden human's taste (agreeing feels polite); on `benign` prompts a
            cautious labeller rewards refusals the hidden human punishes (over-refusal).

            ## From labels to a TRL preference dataset

            A decision "A is better" becomes a row `{prompt, chosen, rejected}`: TRL's preference format,
            read by its `RewardTrainer` and `DPOTrainer`. Ties and skips carry no preference and are left out.
        """),
        checked("""
            mine = app.dataset()
            print(mine)
        """),
        md("""
            Twenty labels are far too few to train a reward model on. In practice your labels are mixed
            with many more from other labellers; here the simulated annotator plays the other labellers:
        """),
        code("""
            from collections import Counter

            from rlhf_lab.label import merge_with_simulated

            merged = merge_with_simulated(app.store, app.world, n_simulated=200)
            print(Counter(merged["source"]), "->", merged.column_names)
            merged[0]
        """),
        md(f"""
            ## How much do label noise and label count matter?

            A small sweep: six reward models, each trained for one short epoch on `N` pairs labelled by a
            simulated annotator with label noise `x` (the share of coin-flip labels), then scored on held-out
            pairs against the hidden human. Each starts from the SFT model (notebook 02), built first if missing.
            {cost("about 1 min (plus about 1 min if the SFT model is not built yet)")}
        """),
        code("""
            from itertools import product

            from tqdm.auto import tqdm

            from rlhf_lab.stages.reward import RewardSettings, train_reward_model
            from rlhf_lab.stages.sft import get_sft_model_dir

            sft_dir = get_sft_model_dir(profile)  # built here, with its progress bar, if missing
        """),
        code("""
            grid = list(product((0.0, 0.4, 0.8), (100, 400)))  # (label noise, number of labels)
            results = []
            with lesson.stopwatch() as clock:
                for noise, n in tqdm(grid, desc="reward models"):
                    settings = RewardSettings(epochs=1, pairs=n, annotator_noise=noise, batch_size=8)
                    _, _, report = train_reward_model(profile, settings, progress=False)
                    results.append({"noise": noise, "pairs": n, "accuracy": report["heldout_accuracy"]})
            print(f"{len(grid)} reward models trained in {clock.seconds:.0f} s")
            fig = lesson.label_sweep_figure(results)
        """),
        md("""
            **What to look for:** accuracy should fall as noise rises, and more labels should buy some of it
            back: random noise averages out over many pairs, because a coin flip favours neither side.
            Read the sizes, though: on ~400 held-out pairs one run's accuracy is uncertain by about
            ±2.5 points, and one short epoch leaves the reward model far from converged (notebook 04 trains
            longer), so differences of a few points are noise, not findings. Systematic errors are worse
            than random ones: a labeller who always agrees with the user does not average out, and more
            labels only teach the bias more firmly.

            ## How your labels reach the reward model

            Notebook 04 trains the course's reward model with
            `get_reward_model_dir(profile, label_file="labels/my_labels.jsonl")`: when the file exists, your
            decisions are added to the simulated pairs (`LabelStore(...).preference_rows()`) and the reward
            model is retrained (the cache key includes the file, so new labels mean a new model).
            Label more pairs (`LabelingApp.for_world(..., n_pairs=100)`) and your taste weighs more.
            **Next:** `04_reward_model.ipynb`.
        """),
    ]


# ---------------------------------------------------------------------------
# 04 reward model
# ---------------------------------------------------------------------------


def reward_model() -> list:
    return [
        md("""
            # 04 · The reward model

            A reward model reads a prompt and a response and returns one number. It is the SFT model with
            a one-output `score` head (a sequence classifier), trained on preference pairs with the
            **Bradley-Terry** loss: P(chosen beats rejected) = sigmoid(r(chosen) - r(rejected)), and the
            loss is -log of that. It never sees a gold reward, only which of two responses won.
        """),
        setup("""
            from pathlib import Path

            from rlhf_lab import plots
            from rlhf_lab.losses import bradley_terry_loss
            from rlhf_lab.stages.reward import (get_reward_model_dir, load_reward_model, make_reward_trainer_class,
                                                reward_report)
            from rlhf_lab.world import World
        """),
        md("""
            ## The lines that matter

            TRL's `RewardTrainer` batches all chosen responses, then all rejected ones; the course's
            subclass (`rlhf_lab/stages/reward.py`) takes its loss from `rlhf_lab.losses`, the one place
            the course's math lives (exercise 02 has you write it):
        """),
        code("""
            lesson.show_code(bradley_terry_loss, "def bradley_terry_loss", max_lines=40)
        """),
        code("""
            lesson.show_code(make_reward_trainer_class(), "def compute_loss", "return (loss")
        """),
        md(f"""
            ## Train (or load from the cache), with your labels

            If you labelled pairs in notebook 03, `labels/my_labels.jsonl` exists and your decisions join the
            simulated annotator's pairs (`profile.preference_pairs` of them); a new reward model is trained for them.
            {cost("about 1 min the first time (plus the SFT model if it is missing)")}
        """),
        code("""
            label_file = Path("labels/my_labels.jsonl")
            print("your labels are included" if label_file.exists() else "no labels of yours yet: simulated pairs only")
            with lesson.stopwatch() as clock:
                reward_dir = get_reward_model_dir(profile, label_file=label_file if label_file.exists() else None)
            rm_report = reward_report(reward_dir)
            print(lesson.ready_line("Reward model", clock.seconds, rm_report["seconds"]))
            print(f"{rm_report['pairs']} training pairs; held-out pair accuracy vs gold {rm_report['heldout_accuracy']:.1%}, "
                  f"correlation with gold {rm_report['gold_correlation']:.2f}")
        """),
        code("""
            fig = plots.loss_curve(rm_report["history"], xlabel="logging step (every 5 optimizer steps)",
                                   title="Reward model: Bradley-Terry loss (log 2 = 0.69 is a coin flip)")
        """),
        md(f"""
            ## Does it agree with the hidden human?

            On held-out pairs (prompts it never saw): how often it orders two responses as the gold reward
            does, and how its scores line up with the gold reward. {cost("about 5 s")}
        """),
        code("""
            world = World(profile.seed)
            reward_model, tokenizer = load_reward_model(profile, reward_dir)
            scores = lesson.pair_scores(reward_model, tokenizer, world)
            rm, gold = scores["rm_a"] + scores["rm_b"], scores["gold_a"] + scores["gold_b"]
            correlation = torch.corrcoef(torch.tensor([rm, gold]))[0, 1].item()
            fig = plots.scatter_scores(rm, gold, title=f"Reward model vs gold: correlation {correlation:.2f}")
        """),
        code("""
            for family, accuracy in lesson.accuracy_by_family(scores).items():
                print(f"{family:>10}: pair accuracy {accuracy:.0%}")
        """),
        md("""
            **What to look for:** a clear upward trend, with vertical spread: the reward model only learned
            *differences*, so its scale and offset are arbitrary, and within one gold level it still ranks
            responses by things the hidden human does not care about. The weakest family is where its
            labels were least consistent.

            ## The seed of reward hacking: "I hope this helps."

            Take held-out responses without the closing phrase, append " I hope this helps.", and score
            both versions with the reward model and with the gold reward.
        """),
        code("""
            effect = lesson.closer_effect(reward_model, tokenizer, world)
            user, plain, closed, rm_plain, rm_closed, gold_plain, gold_closed = effect["example"]
            print(f"USER: {user}")
            print(f"  reward model {rm_plain:+.2f}, gold {gold_plain:+.2f}:  {plain}")
            print(f"  reward model {rm_closed:+.2f}, gold {gold_closed:+.2f}:  {closed}")
            fig = lesson.closer_effect_figure(effect)
        """),
        md("""
            **What to look for:** the reward model's score goes **up** for most responses when the phrase is
            appended, while the gold reward goes **down** a little (four more words). In the preference data
            the phrase came with better answers, so "I hope this helps" became evidence of quality. A policy
            optimised against this reward model can learn to say it more and collect reward without getting
            any better: **reward hacking** (Gao et al. 2022). Watch for it in notebook 05.
            **Next:** `05_ppo.ipynb`.
        """),
    ]


# ---------------------------------------------------------------------------
# 05 PPO
# ---------------------------------------------------------------------------


def ppo() -> list:
    return [
        md("""
            # 05 · PPO with a KL penalty

            Now the policy (the SFT model with a fresh LoRA adapter) learns by trial: it samples answers to
            training prompts, the reward model scores them, and PPO makes high-scoring answers more likely.
            A **KL penalty** to the reference (the SFT model: the same weights with the adapter switched off)
            keeps it from drifting into text the reward model was never trained to judge. The gold reward
            is logged next to the reward model's score, but the policy never sees it.

            TRL no longer ships PPO, so the course has its own, in one file you can read top to bottom:
            `rlhf_lab/stages/ppo.py`.
        """),
        setup("""
            import json
            from dataclasses import asdict

            from rlhf_lab import models, plots
            from rlhf_lab.evaluate import evaluate_model, heldout_prompts, win_rate
            from rlhf_lab.stages.dpo import load_adapter_policy
            from rlhf_lab.stages.ppo import PPOTrainer
            from rlhf_lab.stages.rl import default_ppo_config, get_ppo_model_dir
            from rlhf_lab.stages.sft import get_sft_model_dir
            from rlhf_lab.world import World
        """),
        md("## The configuration (the profile's defaults)"),
        code("""
            config = default_ppo_config(profile)
            for name, value in asdict(config).items():
                print(f"{name:>18} = {value}")
        """),
        md("""
            ## The core of one PPO step

            Rollout and score, then per-token rewards (every token pays `kl_coef * (log pi - log pi_ref)`,
            the reward model's score lands on the last token), advantages with GAE, then several epochs
            of clipped policy and value updates. All the math is in `rlhf_lab.losses` (exercises 04-06).
        """),
        code("""
            lesson.show_code(PPOTrainer.step, "batch = self.rollout(prompts)", "update_stats = self._update")
        """),
        md(f"""
            ## Train (or load from the cache)

            It needs the SFT model and the reward model, built first if missing.
            {cost("about 1.5 min the first time (plus SFT and the reward model if they are missing)")}
        """),
        code("""
            with lesson.stopwatch() as clock:
                ppo_dir = get_ppo_model_dir(profile, config)
            ppo_report = json.loads((ppo_dir / "ppo.json").read_text())
            history = ppo_report["history"]
            print(lesson.ready_line("PPO policy", clock.seconds, ppo_report["seconds"]))
        """),
        code("""
            fig = plots.ppo_curves(history)
        """),
        code("""
            fig = lesson.ppo_diagnostics(history)
        """),
        md("""
            **What to look for:**
            - **Reward model score vs gold:** both should rise together at first. If the score keeps
              rising while the gold reward stalls or falls, the policy is exploiting the reward model
              (over-optimisation), e.g. by saying "I hope this helps." more.
            - **KL:** grows as the policy moves away from SFT. The KL penalty makes this cost reward;
              a larger `kl_coef` keeps it lower (and the policy closer to what the reward model knows).
            - **Clip fraction** (share of tokens whose probability ratio hit the clip) should stay small
              (below ~0.2); **entropy** falling means the policy is growing more certain (less diverse);
              **response length** shows whether it learned to be brief or verbose.

            ## Before and after: SFT vs PPO on held-out prompts
        """),
        code("""
            world = World(profile.seed)
            tokenizer = models.get_tokenizer(profile)
            sft_model = models.load_model(get_sft_model_dir(profile), quantize_4bit=profile.quantize_4bit,
                                          device=profile.device, trainable=False)
            ppo_model, _ = load_adapter_policy(profile, ppo_dir)
            heldout = heldout_prompts(world, profile.eval_prompts)
            samples = lesson.pick_samples(heldout)
            generate = lambda model: models.generate(model, tokenizer, [p.text for p in samples],
                                                     max_new_tokens=profile.max_new_tokens, seed=profile.seed)
            lesson.samples_table(samples, {"SFT": generate(sft_model), "PPO": generate(ppo_model)})
        """),
        md(f"""
            ## Measured: SFT vs PPO

            The SFT model is the reference, so its KL is 0 by definition; PPO's KL is measured on its own
            answers with its adapter switched off for the reference. {cost("about 20 s")}
        """),
        code("""
            sft_metrics, sft_responses = evaluate_model(sft_model, tokenizer, world, heldout, profile.max_new_tokens,
                                                        profile.seed, reference=None)
            ppo_metrics, ppo_responses = evaluate_model(ppo_model, tokenizer, world, heldout, profile.max_new_tokens,
                                                        profile.seed, reference="adapter-off")
            lesson.metrics_table({"SFT": sft_metrics, "PPO": ppo_metrics})
        """),
        code("""
            ppo_wins = win_rate(heldout, ppo_responses, sft_responses)
            print(f"PPO beats SFT on {ppo_wins:.0%} of held-out prompts (by the hidden human, ties count half); "
                  f"KL to SFT {ppo_metrics['kl_to_ref']:.2f} nats per response.")
            fig = plots.gold_components_by_stage({"SFT": sft_metrics, "PPO": ppo_metrics})
        """),
        md("""
            **What to look for:** which components moved. PPO can only learn what the reward model
            rewards: `style` (the polite opener the demonstrations never showed) and `honest` (fewer
            sycophantic agreements) are where SFT left headroom. Check the "I hope this helps" row: a rise
            there is the reward model's blind spot being learned. And check the capability probe: RL
            fine-tuning should not have cost the counting skill (the alignment tax).
            **Next:** `06_dpo.ipynb`, the same preferences without a reward model.
        """),
    ]


# ---------------------------------------------------------------------------
# 06 DPO, and PPO vs DPO
# ---------------------------------------------------------------------------


def dpo() -> list:
    return [
        md("""
            # 06 · DPO, and PPO vs DPO

            **Direct Preference Optimisation** (Rafailov et al. 2023) skips the reward model and the RL loop.
            The KL-regularised RL objective has a closed-form optimum, pi ∝ pi_ref · exp(r / beta), so a
            reward can be written in terms of the policy itself, r = beta · log(pi / pi_ref) + const. Put
            that into the Bradley-Terry loss and you train the policy directly on the preference pairs:

            loss = -log sigmoid(beta · [log(pi/pi_ref)(chosen) - log(pi/pi_ref)(rejected)])

            Same preference pairs as the reward model (the simulated annotator's), same SFT start, LoRA adapter; the
            reference is the SFT model with the adapter switched off.
        """),
        setup("""
            import json

            from rlhf_lab import models, plots
            from rlhf_lab.evaluate import evaluate_model, heldout_prompts, win_rate
            from rlhf_lab.stages.dpo import get_dpo_model_dir, load_adapter_policy, train_dpo
            from rlhf_lab.stages.rl import get_ppo_model_dir
            from rlhf_lab.stages.sft import get_sft_model_dir
            from rlhf_lab.world import World
        """),
        md("## The lines that matter: TRL's `DPOConfig` (from `rlhf_lab/stages/dpo.py`)"),
        code("""
            lesson.show_code(train_dpo, "config = DPOConfig(", "max_length=")
        """),
        md(f"""
            ## Train (or load from the cache)

            {cost("about 1 min the first time (plus the SFT model if it is missing)")}
        """),
        code("""
            with lesson.stopwatch() as clock:
                dpo_dir = get_dpo_model_dir(profile)
            dpo_report = json.loads((dpo_dir / "dpo.json").read_text())
            print(lesson.ready_line("DPO policy", clock.seconds, dpo_report["seconds"]))
            fig = lesson.dpo_curves(dpo_report["history"])
        """),
        md("""
            **What to look for:** the loss starts at log 2 = 0.69 (policy = reference, no preference yet) and
            falls; the *implicit rewards* beta·log(pi/pi_ref) of chosen responses should rise above those of
            rejected ones (the margin grows). Often both fall: DPO can lower the rejected response's
            probability faster than it raises the chosen one's.

            ## PPO vs DPO, side by side

            PPO comes from notebook 05 (trained here first if it is missing: then this cell takes longer).
            {cost}
        """.replace("{cost}", cost("about 30 s with PPO cached (about 3 min more without)"))),
        code("""
            with lesson.stopwatch() as clock:
                ppo_dir = get_ppo_model_dir(profile)
            print(lesson.ready_line("PPO policy", clock.seconds, json.loads((ppo_dir / "ppo.json").read_text())["seconds"]))
            world = World(profile.seed)
            tokenizer = models.get_tokenizer(profile)
            sft_model = models.load_model(get_sft_model_dir(profile), quantize_4bit=profile.quantize_4bit,
                                          device=profile.device, trainable=False)
            ppo_model, _ = load_adapter_policy(profile, ppo_dir)
            dpo_model, _ = load_adapter_policy(profile, dpo_dir)
            heldout = heldout_prompts(world, profile.eval_prompts)
            metrics, responses = {}, {}
            for name, model, reference in (("SFT", sft_model, None), ("PPO", ppo_model, "adapter-off"),
                                           ("DPO", dpo_model, "adapter-off")):
                metrics[name], responses[name] = evaluate_model(model, tokenizer, world, heldout, profile.max_new_tokens,
                                                                profile.seed, reference=reference)
            lesson.metrics_table(metrics)
        """),
        code("""
            rates = {
                "PPO vs SFT": win_rate(heldout, responses["PPO"], responses["SFT"]),
                "DPO vs SFT": win_rate(heldout, responses["DPO"], responses["SFT"]),
                "PPO vs DPO": win_rate(heldout, responses["PPO"], responses["DPO"]),
            }
            fig = plots.win_rates(rates)
        """),
        code("""
            fig = plots.gold_components_by_stage(metrics)
        """),
        md("## Samples side by side"),
        code("""
            samples = lesson.pick_samples(heldout)
            index = {p.prompt_id: i for i, p in enumerate(heldout)}
            lesson.samples_table(samples, {name: [responses[name][index[p.prompt_id]] for p in samples]
                                           for name in responses})
        """),
        md("""
            **What to look for:**
            - **Gold reward and its components:** which method fixed more of what SFT left (style,
              sycophancy), and did either break something (over-refusal, the capability probe)?
            - **KL:** PPO's penalty is explicit; DPO's beta plays the same role implicitly. Compare how
              far each moved from SFT for the gold reward it gained.
            - **"I hope this helps":** PPO optimises the reward model, so it can inherit the reward model's
              blind spot; DPO learns from the pairs, where the phrase is a correlate too, but it never
              exploits a learned scorer by searching for what it over-rates.
            - **Diversity (distinct-2) and length:** RL tends to collapse onto a few phrasings.

            Neither is guaranteed to beat SFT: check the win rates above before believing the reward
            curves. Which one wins depends on the settings (PPO's KL coefficient and steps, DPO's beta
            and epochs). Change one knob at a time and rerun: every
            stage is cached by its settings.
        """),
    ]


# ---------------------------------------------------------------------------
# Writing and executing
# ---------------------------------------------------------------------------


def notebooks(runtimes: dict[str, float]) -> dict[str, list]:
    return {
        "00_welcome": welcome(runtimes),
        "01_base_model": base_model(),
        "02_sft": sft(),
        "03_label_preferences": label_preferences(),
        "04_reward_model": reward_model(),
        "05_ppo": ppo(),
        "06_dpo": dpo(),
    }


def new_notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def load_runtimes() -> dict[str, float]:
    return json.loads(RUNTIMES_FILE.read_text()) if RUNTIMES_FILE.exists() else {}


def write_all(runtimes: dict[str, float], only: str | None = None) -> list[Path]:
    """Write the notebooks (all, or those whose name starts with ``only``), without outputs."""
    NOTEBOOKS_DIR.mkdir(exist_ok=True)
    paths = []
    for name, cells in notebooks(runtimes).items():
        if only and not name.startswith(only):
            continue
        path = NOTEBOOKS_DIR / f"{name}.ipynb"
        nbformat.write(new_notebook(cells), path)
        paths.append(path)
    print(f"Wrote {len(paths)} notebook(s) to {NOTEBOOKS_DIR.relative_to(ROOT)}/")
    return paths


def execution_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    env["RLHF_LAB_AUTOLABEL"] = "1"  # notebook 03: the scripted learner labels a throwaway copy
    return env


def execute(path: Path) -> float:
    """Run one notebook in place in a fresh kernel; return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    "--ExecutePreprocessor.timeout=900", str(path)], check=True, env=execution_env())
    return time.perf_counter() - start


def update_course_map(runtimes: dict[str, float]) -> None:
    """Rewrite the course-map cell of the executed 00_welcome notebook (outputs kept)."""
    path = NOTEBOOKS_DIR / "00_welcome.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith(COURSE_MAP_MARKER):
            cell.source = course_map_markdown(runtimes)
    nbformat.write(nb, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", action="store_true", help="run the notebooks in order and keep their outputs")
    parser.add_argument("--only", default=None,
                        help="write (and execute) only the notebooks whose name starts with this, e.g. 03")
    args = parser.parse_args()
    runtimes = load_runtimes()
    paths = write_all(runtimes, args.only)
    if not args.execute:
        return
    for path in paths:
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        seconds = execute(path)
        runtimes[path.stem] = round(seconds, 1)
        print(f"  {path.name}: {seconds:.0f} s, {path.stat().st_size / 1e3:.0f} kB", flush=True)
        RUNTIMES_FILE.write_text(json.dumps(runtimes, indent=1, sort_keys=True) + "\n")
    if (NOTEBOOKS_DIR / "00_welcome.ipynb").exists():
        update_course_map(runtimes)


if __name__ == "__main__":
    main()

"""The stages: reward-head persistence, the adapter-off reference of DPO/PPO, comparison data of
the policy's own samples, iterated RLHF and labeller biases (API drift: tests/test_api_drift.py).

Quick settings (pipeline.quick_settings): every stage really trains, for a few steps, so the
models are meaningless and only behaviour is asserted. The cache is the one this test session
shares with the other model tests.
"""

from pathlib import Path

import pytest
import torch

from rlhf_lab import models
from rlhf_lab.config import get_profile
from rlhf_lab.pipeline import quick_settings
from model_helpers import chat_batch, logits_of, session_cache  # noqa: F401  (fixture)

PROFILE, QUICK = quick_settings(get_profile("tiny"))


# ---------------------------------------------------------------------------
# The reward model keeps its trained score head across save / load
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_reward(session_cache, tmp_path_factory):
    from rlhf_lab.stages.reward import RewardSettings, train_reward_model
    from rlhf_lab.stages.sft import get_sft_model_dir

    out = tmp_path_factory.mktemp("reward")
    model, tokenizer, report = train_reward_model(
        PROFILE, RewardSettings(epochs=1, pairs=32, sft_samples_per_prompt=0, sft=QUICK.sft), out,
        sft_dir=get_sft_model_dir(PROFILE, QUICK.sft, progress=False), progress=False)
    return model, tokenizer, report, out


def score_head(peft_model):
    """(trained copy, untouched original) of the score head that modules_to_save wraps."""
    wrapper = peft_model.base_model.model.score
    return wrapper.modules_to_save["default"].weight, wrapper.original_module.weight


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_reward_scores_survive_save_and_reload(trained_reward):
    from rlhf_lab.scoring import score_responses
    from rlhf_lab.stages.reward import load_reward_model

    model, tokenizer, report, out = trained_reward
    assert report["pairs"] == 32 and 0.0 <= report["heldout_accuracy"] <= 1.0
    users = ["What color is the sky?", "How do I burn a car?", "How do I wash a car?"]
    answers = ["The sky is blue.", "Sorry, I can not help with that.", "Ugh, fine. Use a hammer."]
    before = score_responses(model, tokenizer, users, answers)
    reloaded, _ = load_reward_model(PROFILE, out)
    after = score_responses(reloaded, tokenizer, users, answers)
    assert torch.allclose(before, after, atol=1e-5), (before, after)
    assert torch.equal(score_head(reloaded)[0], score_head(model)[0].detach())
    # A second fresh load (a new random score head underneath) gives the same scores again.
    again, _ = load_reward_model(PROFILE, out)
    assert torch.allclose(score_responses(again, tokenizer, users, answers), before, atol=1e-5)


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_reward_score_head_was_trained(trained_reward):
    model, *_ = trained_reward
    trained, initial = score_head(model)
    assert trained.shape == (1, PROFILE.tiny_model.hidden_size)
    assert not torch.allclose(trained, initial)


# ---------------------------------------------------------------------------
# The reference of DPO and PPO is the policy with its adapter off
# ---------------------------------------------------------------------------


def assert_adapter_off_is(policy, reference, batch):
    with policy.disable_adapter():
        off = logits_of(policy, batch)
    assert torch.allclose(off, logits_of(reference, batch), atol=1e-5)
    # ... and the adapter itself did move the policy away from it.
    assert not torch.allclose(logits_of(policy, batch), off, atol=1e-6)


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_dpo_reference_is_the_sft_model_with_the_adapter_off(session_cache, tmp_path):
    from rlhf_lab.stages.dpo import DPOSettings, train_dpo
    from rlhf_lab.stages.common import load_adapter_policy
    from rlhf_lab.stages.sft import get_sft_model_dir

    sft_dir = get_sft_model_dir(PROFILE, QUICK.sft, progress=False)
    train_dpo(PROFILE, DPOSettings(epochs=1, pairs=32, learning_rate=1e-3, sft_samples_per_prompt=0, sft=QUICK.sft),
              tmp_path, sft_dir=sft_dir, progress=False)
    policy, tokenizer = load_adapter_policy(PROFILE, tmp_path)
    sft = models.load_model(sft_dir, trainable=False)
    assert_adapter_off_is(policy, sft, chat_batch(tokenizer))


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_dpo_with_the_chosen_nll_keeps_the_chosen_answers_likelier_than_plain_dpo(session_cache, tmp_path):
    """RPO (the course's DPO): the chosen answers' NLL is added to the DPO loss, so after the same
    training the chosen answers are more likely than after plain DPO, which may push both down."""
    import math
    from dataclasses import replace

    from rlhf_lab.preferences import comparison_rows
    from rlhf_lab.stages.comparisons import key_fields
    from rlhf_lab.sampling import token_probabilities
    from rlhf_lab.stages.dpo import PLAIN_DPO, DPOSettings, loss_arguments, train_dpo
    from rlhf_lab.stages.common import load_adapter_policy
    from rlhf_lab.stages.sft import get_sft_model_dir

    assert loss_arguments(PLAIN_DPO) == {"loss_type": ["sigmoid"]}
    assert loss_arguments(DPOSettings(sft_weight=0.5)) == {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}
    assert "sft_weight" not in key_fields(PLAIN_DPO)  # plain DPO keeps the cache key it always had

    quick = replace(PLAIN_DPO, epochs=2, pairs=64, learning_rate=1e-3, sft_samples_per_prompt=0, sft=QUICK.sft)
    rows = comparison_rows(PROFILE, None, 64, 0, quick.annotator_noise)[:24]  # (the first training pairs)
    sft_dir = get_sft_model_dir(PROFILE, QUICK.sft, progress=False)

    def chosen_logprob(sft_weight):
        out = tmp_path / f"w{sft_weight}"
        train_dpo(PROFILE, replace(quick, sft_weight=sft_weight), out, sft_dir=sft_dir, progress=False)
        policy, tokenizer = load_adapter_policy(PROFILE, out)
        return sum(math.log(p) for row in rows
                   for _, _, p in token_probabilities(policy, tokenizer, row["prompt"], row["chosen"])) / len(rows)

    plain, rpo = chosen_logprob(0.0), chosen_logprob(1.0)
    assert rpo > plain + 0.1, (plain, rpo)


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_ppo_reference_is_the_sft_model_with_the_adapter_off(trained_reward, tmp_path):
    from rlhf_lab.stages.common import load_adapter_policy
    from rlhf_lab.stages.ppo import default_ppo_config, train_ppo
    from rlhf_lab.stages.sft import get_sft_model_dir

    *_, reward_dir = trained_reward
    config = default_ppo_config(PROFILE, steps=1, batch_size=8, mini_batch_size=8, ppo_epochs=1, max_new_tokens=8,
                                learning_rate=1e-2)
    train_ppo(PROFILE, config, tmp_path, reward_dir=reward_dir, progress=False)
    policy, tokenizer = load_adapter_policy(PROFILE, tmp_path)
    sft = models.load_model(get_sft_model_dir(PROFILE, QUICK.sft, progress=False), trainable=False)
    assert_adapter_off_is(policy, sft, chat_batch(tokenizer))


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_pipeline_dpo_policy_builds_on_the_pipelines_sft_model(session_cache):
    """With non-default SFT settings (quick_settings), DPO builds on the pipeline's own SFT model, so
    "DPO vs SFT" compares against DPO's reference (not a second SFT model of the default settings)."""
    from rlhf_lab.stages.dpo import get_dpo_model_dir
    from rlhf_lab.stages.common import load_adapter_policy
    from rlhf_lab.stages.sft import get_sft_model_dir

    pipeline_sft = models.load_model(get_sft_model_dir(PROFILE, QUICK.sft, progress=False), trainable=False)
    policy, tokenizer = load_adapter_policy(PROFILE, get_dpo_model_dir(PROFILE, QUICK.dpo, progress=False))
    batch = chat_batch(tokenizer)
    with policy.disable_adapter():
        off = logits_of(policy, batch)
    assert torch.allclose(off, logits_of(pipeline_sft, batch), atol=1e-5), \
        "the DPO policy's reference is not the SFT model the pipeline trained and evaluated"


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_pairs_of_the_sft_models_own_samples_are_labelled_by_the_annotator(session_cache):
    """Comparison data where the policy lives: two different SFT samples of one prompt, the
    annotator's pick as chosen (a noiseless annotator follows the gold reward)."""
    from rlhf_lab import cache
    from rlhf_lab.preferences import policy_sample_pairs
    from rlhf_lab.stages.pretrain import get_tokenizer
    from rlhf_lab.stages.sft import get_sft_model_dir
    from rlhf_lab.world import SimulatedAnnotator
    from rlhf_lab.world.gold import gold_reward

    world = cache.world_for(PROFILE.seed)
    sft = models.load_model(get_sft_model_dir(PROFILE, QUICK.sft, progress=False), trainable=False)
    prompts = world.prompts("train")[:40]
    rows = policy_sample_pairs(sft, get_tokenizer(PROFILE), prompts, SimulatedAnnotator(temperature=0.01), 4,
                               max_new_tokens=12, seed=0)
    assert rows and all(r["chosen"] != r["rejected"] and r["source"] == "sft-samples" for r in rows)
    assert len(rows) <= 2 * len(prompts)
    by_text = {p.text: p for p in prompts}
    for r in rows:
        prompt = by_text[r["prompt"]]
        assert gold_reward(prompt, r["chosen"]).total >= gold_reward(prompt, r["rejected"]).total - 1e-9


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_iterated_rlhf_retrains_the_reward_model_on_the_policys_own_samples(session_cache):
    """One round of iterated RLHF (quick settings): the second reward model learns from more
    pairs than the first (the policy's samples were added), the second PPO run is trained
    against it from the same SFT model, and a second call is served from the cache."""
    import json

    from rlhf_lab.cache import built_from
    from rlhf_lab.stages.iterate import get_iterated_reward_model_dir, iterate_once
    from rlhf_lab.stages.ppo import default_ppo_config
    from rlhf_lab.stages.reward import RewardSettings, get_reward_model_dir

    settings = RewardSettings(epochs=1, pairs=32, sft_samples_per_prompt=0, sft=QUICK.sft)
    config = default_ppo_config(PROFILE, **dict(QUICK.ppo_changes), max_new_tokens=8)
    dirs = iterate_once(PROFILE, config, settings, progress=False)
    first = get_reward_model_dir(PROFILE, settings, progress=False)
    pairs = lambda d: json.loads((d / "reward.json").read_text())["pairs"]  # noqa: E731
    assert pairs(dirs["reward"]) > pairs(first)
    assert built_from(dirs["ppo"], "reward") == first and built_from(dirs["ppo_iterated"], "reward") == dirs["reward"]
    assert built_from(dirs["ppo"]) == built_from(dirs["ppo_iterated"]) == built_from(first)
    assert get_iterated_reward_model_dir(PROFILE, dirs["ppo"], settings, progress=False) == dirs["reward"]


def test_labeller_biases_reach_the_comparison_data_and_only_biased_runs_change_the_cache_key():
    from dataclasses import asdict
    from statistics import mean

    from rlhf_lab.preferences import comparison_rows
    from rlhf_lab.stages.comparisons import key_fields
    from rlhf_lab.stages.dpo import DPOSettings
    from rlhf_lab.stages.reward import RewardSettings
    from rlhf_lab.world import World
    from rlhf_lab.world.gold import words
    from rlhf_lab.world.parse import parse_response

    profile = get_profile("tiny")
    rows = lambda **bias: comparison_rows(profile, None, 600, 0, 0.0, **bias)  # noqa: E731 (templated pairs only)
    world = World(profile.seed)

    def agreeing(data):
        """Among pairs about a wrong claim where one answer says yes and the other does not:
        how often the yes was chosen."""
        split = [r for r in data if r["family"] == "sycophancy" and world.prompt(r["prompt_id"]).claim_is_wrong
                 and parse_response(r["chosen"]).agrees != parse_response(r["rejected"]).agrees]
        return mean(parse_response(r["chosen"]).agrees for r in split)
    length = lambda data: mean(len(words(r["chosen"])) for r in data)  # noqa: E731
    plain = rows()
    assert agreeing(plain) < 0.1 and agreeing(rows(annotator_agreement=6.0)) > 0.5
    assert length(rows(annotator_length=0.3)) > length(plain) + 1.0
    for settings in (RewardSettings(), DPOSettings()):
        key = key_fields(settings)
        assert "annotator_agreement" not in key and "annotator_length" not in key  # old caches stay valid
        assert key == {k: v for k, v in asdict(settings).items() if k in key}
    assert key_fields(DPOSettings(annotator_agreement=1.5))["annotator_agreement"] == 1.5


# ---------------------------------------------------------------------------
# One progress bar per trainer, in a notebook too
# ---------------------------------------------------------------------------


def test_a_trainer_in_a_notebook_shows_one_progress_bar(monkeypatch, tmp_path):
    """In Jupyter, transformers' default bar is an HTML table (NotebookProgressCallback) redrawn
    five times a second; beside our bar it doubles the display and, over a long run, floods the
    kernel's output queue until nbval times out waiting for output that was dropped."""
    import transformers.trainer as trainer_module
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    from rlhf_lab.stages.common import quiet_when_no_progress

    monkeypatch.setattr(trainer_module, "DEFAULT_PROGRESS_CALLBACK", NotebookProgressCallback)  # as in Jupyter
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=1, vocab_size=16, n_positions=8))
    arguments = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, disable_tqdm=False)
    trainer = Trainer(model=model, args=arguments)

    def output_callbacks():
        shown = (PrinterCallback, ProgressCallback, NotebookProgressCallback)
        return [type(callback).__name__ for callback in trainer.callback_handler.callbacks
                if isinstance(callback, shown)]

    assert output_callbacks() == ["NotebookProgressCallback"]
    quiet_when_no_progress(trainer, progress=True)
    assert output_callbacks() == ["BarOnlyCallback"]
    quiet_when_no_progress(trainer, progress=False)
    assert output_callbacks() == []


def test_a_trainer_without_an_output_folder_leaves_nothing_behind(tmp_path):
    """Unsaved models (notebook 03 trains several) write their trainer files to scratch space
    that is deleted when the process exits."""
    import subprocess
    import sys

    code = ("from rlhf_lab.stages.common import scratch_dir; a = scratch_dir(None, 'reward'); "
            "b = scratch_dir(None, 'dpo'); (a / 'f').write_text('x'); print(a); print(b)")
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert len(made) == 2 and made[0] != made[1]
    assert not any(Path(p).exists() for p in made) and not Path(made[0]).parent.exists()
    from rlhf_lab.stages.common import scratch_dir

    assert scratch_dir(tmp_path, "reward") == tmp_path  # a saved model's files stay with it

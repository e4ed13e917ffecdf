"""The gpu profile's code path on the CPU, offline: a tiny random-init model of the real
architecture (Qwen2, sizes multiples of 64) loaded 4-bit NF4 with double quantization and
LoRA through bitsandbytes, the bf16/fp16 choice, TRL's trainers with the gpu profile's
arguments on real HH-RLHF rows, and the GPU memory benchmark's CPU smoke path."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlhf_lab import chat, memory, models, real_data, tiny_real
from rlhf_lab.config import MODEL_ENV, get_profile
from rlhf_lab.stages.common import trainer_arguments
from rlhf_lab.stages import pretrain

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    path = tiny_real.save_tiny_real_architecture(tmp_path_factory.mktemp("tiny_qwen") / "base")
    profile = get_profile("gpu", device="cpu", base_model=str(path))
    return profile, pretrain.get_tokenizer(profile)


@pytest.fixture(scope="module")
def hh_rows():
    """Real HH-RLHF rows when the shared sample is there, else a two-row fixture."""
    path = real_data.hh_sample_file()
    if path is not None:
        return real_data.load_hh_rlhf(path).dataset
    rows = [{"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go."},
            {"chosen": "\n\nHuman: 2+2?\n\nAssistant: 4\n\nHuman: 3+3?\n\nAssistant: 6",
             "rejected": "\n\nHuman: 2+2?\n\nAssistant: 4\n\nHuman: 3+3?\n\nAssistant: 7"}] * 4
    return real_data.hh_rows_to_preferences(rows).dataset


# -- the profiles ------------------------------------------------------------------------


def test_gpu_profiles_use_base_models_and_the_model_is_configurable(monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    gpu, larger = get_profile("gpu"), get_profile("gpu-1.5b")
    assert gpu.base_model == "Qwen/Qwen2.5-0.5B" and larger.base_model == "Qwen/Qwen2.5-1.5B"
    for profile in (gpu, larger):
        assert "instruct" not in profile.base_model.lower() and profile.quantize_4bit
        assert memory.architecture_for(profile.base_model).num_layers >= 24
    assert get_profile("gpu", base_model="some/dir").base_model == "some/dir"
    monkeypatch.setenv(MODEL_ENV, "Qwen/Qwen2.5-7B")
    assert get_profile("gpu").base_model == "Qwen/Qwen2.5-7B"
    assert get_profile("tiny").base_model == "tiny"  # the tiny profile keeps its local model


def test_ppo_settings_follow_the_model_not_the_device():
    """A gpu profile run on a CPU (as these tests do) trains PPO with the gpu profile's settings."""
    from rlhf_lab.ppo import PPOSettings
    from rlhf_lab.stages.ppo import default_ppo_config

    for name in ("gpu", "gpu-1.5b"):
        on_gpu = default_ppo_config(get_profile(name))
        assert default_ppo_config(get_profile(name, device="cpu")) == on_gpu
        assert on_gpu.learning_rate < PPOSettings().learning_rate
    assert default_ppo_config(get_profile("tiny", device="cuda")).learning_rate == PPOSettings().learning_rate


def test_compute_dtype_bf16_where_supported_else_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert models.compute_dtype("cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # a T4
    assert models.compute_dtype("cuda") == torch.float16
    assert models.compute_dtype("cpu") == torch.float32


@pytest.mark.parametrize("bf16_card", [True, False])
def test_trainer_arguments_on_a_gpu(monkeypatch, tmp_path, bf16_card):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_card)
    for name in ("gpu", "gpu-1.5b"):
        args = trainer_arguments(get_profile(name), tmp_path)
        assert (args["bf16"], args["fp16"]) == (bf16_card, not bf16_card)
        assert args["optim"] == "paged_adamw_8bit"
        assert args["gradient_checkpointing"] and args["gradient_checkpointing_kwargs"] == {"use_reentrant": False}
        assert not args["use_cpu"]
    tiny = trainer_arguments(get_profile("tiny"), tmp_path)
    assert not tiny["gradient_checkpointing"] and "optim" not in tiny and not tiny["fp16"] and not tiny["bf16"]


def test_trainer_arguments_are_accepted_by_every_trl_config(tmp_path, monkeypatch):
    """Every keyword the stages pass still exists in TRL's configs (a library upgrade fails here)."""
    from trl import DPOConfig, RewardConfig, SFTConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    args = trainer_arguments(get_profile("gpu"), tmp_path)
    for config in (SFTConfig, RewardConfig, DPOConfig):
        fields = {f.name for f in dataclasses.fields(config)}
        assert set(args) <= fields, (config.__name__, set(args) - fields)


# -- 4-bit + LoRA on the real architecture ------------------------------------------------


def test_four_bit_nf4_double_quant_lora_on_qwen2(tiny_qwen):
    import bitsandbytes as bnb

    profile, tokenizer = tiny_qwen
    model = models.load_model(profile.base_model, quantize_4bit=True, device="cpu",
                              lora=models.LoraSettings.from_profile(profile))
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    config = json.loads((Path(profile.base_model) / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["num_key_value_heads"] < config["num_attention_heads"]
    assert len(quantized) == 7 * config["num_hidden_layers"]  # every decoder linear, not the embeddings
    for layer in quantized:
        assert layer.weight.quant_type == "nf4" and layer.weight.quant_state.nested  # double quantization
    # an eval-mode forward first (generation), then training: the CPU repacking trap must not
    # cost any LoRA tensor its gradient (STACK_NOTES)
    models.generate(model, tokenizer, ["What is 2+2?"], max_new_tokens=4)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    model.train()
    batch = tokenizer([chat.prompt_text(tokenizer, "What is 2+2?") + "4"], return_tensors="pt",
                      add_special_tokens=False)
    model(**batch, labels=batch["input_ids"]).loss.backward()
    lora = [(n, p) for n, p in model.named_parameters() if "lora_" in n]
    assert lora and all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in lora), \
        [n for n, p in lora if p.grad is None or p.grad.abs().sum() == 0]


def test_ppo_on_a_t4_scales_the_loss_of_a_4bit_base_computing_in_fp16(tiny_qwen, monkeypatch):
    """The gpu profile on a card without bf16 (a T4), on the CPU: the 4-bit layers compute in
    fp16 while every other weight, and so the logits, are fp32; PPO must still scale the loss."""
    from rlhf_lab.ppo import PPOSettings, PPOTrainer

    profile, tokenizer = tiny_qwen
    monkeypatch.setattr(models, "compute_dtype", lambda device: torch.float16)  # what a T4 gets
    policy = models.load_model(profile.base_model, quantize_4bit=True, lora=models.LoraSettings.from_profile(profile))
    assert {p.dtype for p in policy.parameters() if p.is_floating_point()} == {torch.float32}

    def longer_is_better(prompts, responses):
        return torch.tensor([float(len(r)) for r in responses])

    config = PPOSettings(steps=2, batch_size=4, samples_per_prompt=2, mini_batch_size=4, ppo_epochs=1, max_new_tokens=6)
    trainer = PPOTrainer(policy, tokenizer, longer_is_better, config)
    before = trained_lora(policy)
    log = trainer.train(["What is 2+2?", "Name a color."], progress=False)
    assert trainer.scaler is not None and all(s["loss_scale"] > 1 for s in log)
    assert all(torch.isfinite(p).all() for p in trained_lora(policy).values())
    assert_moved(before, policy)


def test_safetensors_only_and_no_remote_code(tiny_qwen, tmp_path):
    """A directory holding only a pickled checkpoint is refused; remote code is never run."""
    import shutil

    profile, _ = tiny_qwen
    pickled = tmp_path / "pickled"
    shutil.copytree(profile.base_model, pickled)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(pickled)
    (pickled / "model.safetensors").unlink()
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(Exception):
        models.load_model(pickled)
    cfg = json.loads((pickled / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel"}
    (pickled / "config.json").write_text(json.dumps(cfg))
    (pickled / "evil.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(Exception) as error:
        models.load_model(pickled)
    assert "remote code ran" not in str(error.value)


# -- clear errors ---------------------------------------------------------------------------


def test_hub_id_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelLoadError, match="HF_HUB_OFFLINE=1.*local directory"):
        models.load_model("Qwen/Qwen2.5-0.5B")


def test_no_cuda_and_bitsandbytes_without_gpu_support(monkeypatch, tiny_qwen):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="torch sees no GPU.*tiny profile"):
        models.load_model(tiny_qwen[0].base_model, device="cuda")
    # on a GPU machine whose bitsandbytes has only its CPU library
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    problem = models.bitsandbytes_gpu_problem()
    assert problem and "no GPU library" in problem
    with pytest.raises(models.ModelLoadError, match="bitsandbytes with GPU support.*pip install"):
        models.check_bitsandbytes_gpu()


def test_out_of_memory_says_what_to_lower_in_order():
    with pytest.raises(models.GPUOutOfMemoryError) as error:
        with models.explain_out_of_memory("SFT"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    message = str(error.value)
    order = [message.index(word) for word in ("batch size", "sequence length", "rollout", "LoRA rank", "model")]
    assert order == sorted(order) and "rlhf-lab memory" in message


# -- TRL's trainers with the gpu profile's arguments on real data ---------------------------


def trained_lora(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def assert_moved(before: dict, model):
    after = trained_lora(model)
    assert any((after[n] - before[n]).abs().max() > 0 for n in before)


def test_sft_and_dpo_on_real_hh_rows_with_the_gpu_profile_path(tiny_qwen, hh_rows, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    profile, tokenizer = tiny_qwen
    lora = models.LoraSettings.from_profile(profile)
    small = hh_rows.select(range(min(8, len(hh_rows))))
    sft_rows = Dataset.from_list([{"prompt": list(r["prompt"]), "completion": list(r["chosen"])} for r in small])
    policy = models.load_model(profile.base_model, quantize_4bit=True, lora=lora)
    args = trainer_arguments(profile, tmp_path / "sft", max_steps=2, per_device_train_batch_size=2,
                             disable_tqdm=True, logging_steps=1)
    assert args["gradient_checkpointing"]  # the gpu path: checkpointing through the 4-bit base
    before = trained_lora(policy)
    trainer = SFTTrainer(model=policy, args=SFTConfig(**args, max_length=96, learning_rate=1e-2),
                         train_dataset=sft_rows, processing_class=tokenizer)
    trainer.train()
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in trainer.state.log_history if "loss" in e)
    assert_moved(before, trainer.model)

    policy = models.load_model(profile.base_model, quantize_4bit=True, lora=lora)
    before = trained_lora(policy)
    dpo_rows = small.remove_columns([c for c in small.column_names if c not in ("prompt", "chosen", "rejected")])
    trainer = DPOTrainer(model=policy, args=DPOConfig(**trainer_arguments(
        profile, tmp_path / "dpo", max_steps=2, per_device_train_batch_size=2, disable_tqdm=True, logging_steps=1),
        max_length=96, learning_rate=1e-2), train_dataset=dpo_rows, processing_class=tokenizer)
    trainer.train()
    assert_moved(before, trainer.model)


def test_reward_model_on_real_hh_rows_reports_heldout_accuracy(tiny_qwen, hh_rows, tmp_path):
    from trl import RewardConfig

    from rlhf_lab.stages.reward import make_reward_trainer_class

    profile, tokenizer = tiny_qwen
    train, test = real_data.train_test_split(real_data.LoadedPreferences(hh_rows), test_fraction=0.25)
    reward = models.load_model(profile.base_model, kind="reward", quantize_4bit=True, tokenizer=tokenizer,
                               lora=models.LoraSettings.from_profile(profile))
    before = trained_lora(reward)
    # TRL's reward trainer drops pairs longer than max_length: train on the shortest real pairs
    size = [len(json.dumps(r["prompt"]) + json.dumps(r["chosen"]) + json.dumps(r["rejected"])) for r in train]
    shortest = sorted(range(len(train)), key=size.__getitem__)[:8]
    config = RewardConfig(**trainer_arguments(profile, tmp_path / "rm", max_steps=2, per_device_train_batch_size=2,
                                              disable_tqdm=True, logging_steps=1), max_length=512, learning_rate=1e-2)
    trainer = make_reward_trainer_class()(model=reward, args=config, processing_class=tokenizer,
                                          train_dataset=train.select(shortest).remove_columns(["row"]))
    trainer.train()
    assert_moved(before, trainer.model)
    quality = real_data.preference_accuracy(trainer.model, tokenizer, test, max_length=96)
    assert quality["pairs"] == len(test) and 0.0 <= quality["accuracy"] <= 1.0


# -- the benchmark's CPU path ---------------------------------------------------------------


def test_gpu_memory_benchmark_without_cuda_says_so():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu_memory.py"), "--models",
                             "qwen2.5-0.5b"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the benchmark would run for real")
    assert result.returncode == 2 and "no CUDA GPU" in result.stderr and "--dry-run" in result.stderr


@pytest.mark.slow  # trains models (course.sh test --fast leaves it out)
def test_gpu_memory_benchmark_dry_run(tmp_path):
    out = tmp_path / "dry.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu_memory.py"), "--dry-run",
                             "--models", "qwen2.5-0.5b", "--stages", "sft,ppo", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())["models"]["qwen2.5-0.5b"]
    assert data["architecture"] == "Qwen2.5-0.5B (tiny)"
    for stage in ("sft", "ppo"):
        row = data["stages"][stage]
        assert row["qlora"]["seconds_per_step"] > 0 and row["bf16_full"]["seconds_per_step"] > 0
    assert data["stages"]["ppo"]["policy_alone"]["seconds_per_step"] > 0

"""Past one GPU: the TRL stages and the course's PPO under ``accelerate launch``.

Checked on two CPU processes (gloo) against one process with the same global batch:
SFT (``rlhf-lab train sft``) lands on the same weights, and a data-parallel PPO update on the
same experience lands on the same weights as one process; when each process samples its own
prompts, the processes still hold equal weights and log the same stats.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlhf_lab.config import ConfigError, get_profile

pytestmark = pytest.mark.slow  # trains models (course.sh test --fast leaves it out)

ROOT = Path(__file__).resolve().parent.parent
ACCELERATE = Path(sys.executable).parent / "accelerate"
CONFIGS = ROOT / "accelerate"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, processes: int, env: dict) -> str:
    """``python ARGS`` on one process, or ``accelerate launch --config_file accelerate/ddp.yaml ARGS``."""
    if processes == 1:
        command = [sys.executable, *args]
    else:
        command = [str(ACCELERATE), "launch", "--config_file", str(CONFIGS / "ddp.yaml"), "--num_processes",
                   str(processes), "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port()), *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "CUDA_VISIBLE_DEVICES": "",
            "RLHF_LAB_CACHE": str(tmp_path_factory.mktemp("accelerate_cache"))}


def test_sft_on_two_processes_lands_on_the_weights_of_one(env, tmp_path):
    from safetensors.torch import load_file

    args = ["-m", "rlhf_lab.cli", "train", "sft", "--profile", "tiny", "--profile-set", "pretrain_steps=20",
            "--set", "epochs=0.5", "--set", "batch_size=8", "--set", "max_length=64"]
    one = run(args + ["--out", str(tmp_path / "one")], 1, env)  # also pretrains the base, into the cache
    two = run(args + ["--out", str(tmp_path / "two")], 2, env)
    assert "(1 process, global batch 8" in one and "(2 processes, global batch 8" in two
    weights_one, weights_two = load_file(tmp_path / "one" / "model.safetensors"), load_file(
        tmp_path / "two" / "model.safetensors")
    assert weights_one.keys() == weights_two.keys()
    [base_file] = (Path(env["RLHF_LAB_CACHE"]) / "base").glob("*/model.safetensors")
    base = load_file(base_file)
    assert max((weights_one[k] - base[k]).abs().max().item() for k in base) > 1e-3  # SFT changed the weights
    for name in weights_one:
        torch.testing.assert_close(weights_two[name], weights_one[name], atol=1e-4, rtol=1e-4)
    loss_one = [row["loss"] for row in json.loads((tmp_path / "one" / "sft.json").read_text())["history"]]
    loss_two = [row["loss"] for row in json.loads((tmp_path / "two" / "sft.json").read_text())["history"]]
    assert len(loss_one) == len(loss_two) >= 2
    assert loss_two == pytest.approx(loss_one, abs=1e-4)  # the logged loss is the mean over both processes


@pytest.fixture(scope="module")
def ppo_runs(env, tmp_path_factory):
    runs = {}
    for processes in (1, 2):
        out = tmp_path_factory.mktemp(f"ppo{processes}")
        run([str(ROOT / "tests" / "accelerate_ppo_check.py"), str(out)], processes, env)
        runs[processes] = [torch.load(out / f"rank{i}.pt", weights_only=False) for i in range(processes)]
    return runs


def test_ppo_update_on_two_processes_equals_one_process(ppo_runs):
    [one], [rank0, rank1] = ppo_runs[1], ppo_runs[2]
    assert (one["num_processes"], rank0["num_processes"]) == (1, 2)
    for name, weight in one["weights_a"].items():
        assert rank0["weights_a"][name].shape == weight.shape
        torch.testing.assert_close(rank0["weights_a"][name], weight, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(rank1["weights_a"][name], weight, atol=1e-6, rtol=1e-5)
    assert max(w.abs().max().item() for n, w in one["weights_a"].items() if "lora_B" in n) > 1e-3  # it learned
    for a, b in zip(one["stats_a"], rank0["stats_a"], strict=True):
        for key in ("reward", "kl", "policy_loss", "value_loss", "clip_fraction", "entropy"):
            assert b[key] == pytest.approx(a[key], abs=1e-5), key
    assert any(abs(row["policy_loss"]) > 1e-3 for row in one["stats_a"])


def test_each_ppo_process_samples_its_own_prompts_and_the_weights_stay_equal(ppo_runs):
    rank0, rank1 = ppo_runs[2]
    for step0, step1 in zip(rank0["prompts_b"], rank1["prompts_b"], strict=True):
        assert len(step0) == len(step1) == 4  # the global batch of 8, split in two
        assert not set(step0) & set(step1)
    assert rank0["weights_equal_b"] and rank1["weights_equal_b"]
    assert rank0["stats_b"] == rank1["stats_b"]  # every process logs the means over both


@pytest.mark.parametrize("name, kind", [("ddp.yaml", "MULTI_GPU"), ("deepspeed_zero2.yaml", "DEEPSPEED"),
                                        ("deepspeed_zero3.yaml", "DEEPSPEED"), ("fsdp.yaml", "FSDP")])
def test_the_accelerate_configs_load(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / name))
    assert config.distributed_type == kind and config.num_machines == 1 and config.compute_environment == "LOCAL_MACHINE"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == (2 if "zero2" in name else 3)
    text = (CONFIGS / name).read_text()
    assert "accelerate launch --config_file accelerate/" + name in text  # each says how it is used


def test_batch_sizes_are_global_and_split_over_the_processes():
    from rlhf_lab.launch import parse_assignments
    from rlhf_lab.stages.builder import per_process
    from rlhf_lab.ppo import PPOSettings
    from rlhf_lab.stages.reward import RewardSettings
    from rlhf_lab.stages.sft import SFTSettings

    assert per_process(SFTSettings(batch_size=16), 4).batch_size == 4
    config = per_process(PPOSettings(batch_size=32, mini_batch_size=16), 2, fields=("batch_size", "mini_batch_size"))
    assert (config.batch_size, config.mini_batch_size) == (16, 8)
    with pytest.raises(ConfigError, match="does not split over 3 processes"):
        per_process(SFTSettings(batch_size=16), 3)
    with pytest.raises(ConfigError, match="multiple of samples_per_prompt"):
        per_process(PPOSettings(batch_size=8, mini_batch_size=4, samples_per_prompt=4), 4,
                    fields=("batch_size", "mini_batch_size"))
    profile = get_profile("tiny")
    assert parse_assignments(["pretrain_steps=20", "quantize_4bit=false"], profile, "profile") == {
        "pretrain_steps": 20, "quantize_4bit": False}
    assert parse_assignments(["epochs=0.5", "pairs=none"], RewardSettings(), "RewardSettings") == {
        "epochs": 0.5, "pairs": None}
    with pytest.raises(ConfigError, match="not a setting of SFTSettings"):
        parse_assignments(["steps=3"], SFTSettings(), "SFTSettings")
    with pytest.raises(ConfigError, match="batch_size='big': expected an int"):
        parse_assignments(["batch_size=big"], SFTSettings(), "SFTSettings")

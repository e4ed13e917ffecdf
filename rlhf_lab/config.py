"""Profiles: one code path, two sizes.

- ``tiny`` (default): CPU, offline, minutes. A locally trained tokenizer and a small
  Llama-style model pretrained on the lab world's corpus.
- ``gpu``: one consumer GPU (6-12 GB). A real small BASE model (Qwen/Qwen2.5-0.5B) from the
  Hugging Face Hub, loaded in 4-bit NF4 (double quantization) with LoRA adapters.
- ``gpu-1.5b``: the same with Qwen/Qwen2.5-1.5B (about 8 GB).

Any gpu profile's model is configurable: ``get_profile("gpu", base_model="...")`` or the
environment variable ``RLHF_LAB_BASE_MODEL`` (a hub id or a local directory).

Choose with ``get_profile("gpu")`` or the environment variable ``RLHF_LAB_PROFILE``.
Override single values with keyword arguments: ``get_profile("tiny", seed=1)``; the seed of
every profile also with ``RLHF_LAB_SEED`` (the whole course on another draw).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

PROFILE_ENV = "RLHF_LAB_PROFILE"
MODEL_ENV = "RLHF_LAB_BASE_MODEL"  # overrides a gpu profile's base model (hub id or local directory)
CACHE_ENV = "RLHF_LAB_CACHE"
BUDGET_ENV = "RLHF_LAB_BUDGET"
SEED_ENV = "RLHF_LAB_SEED"
THREADS_ENV = "RLHF_LAB_THREADS"
# How much a lesson trains: "full" (a learner's run, what the committed notebooks show) or "test"
# (what the tests run: the same code on a smaller grid, for a quick look at a lesson too).
BUDGETS = ("full", "test")

# Every environment variable the course reads, in one list (the README's table is this one).
ENVIRONMENT_VARIABLES = {
    PROFILE_ENV: "the profile: tiny (default), gpu or gpu-1.5b",
    MODEL_ENV: "a gpu profile's base model: a hub id or a local directory",
    CACHE_ENV: "where trained models are cached (default: .cache/rlhf_lab/ in the course folder)",
    SEED_ENV: "the seed of every profile: notebooks, the CLI, the models they build (default 0; a non-negative integer)",
    BUDGET_ENV: "full (default) or test: how much the longest lessons train (test: the reduced grid the tests run)",
    THREADS_ENV: "CPU threads torch uses in the notebooks (default 2, the course's budget; course.sh test runs two lanes of 1)",
    "RLHF_LAB_SHARED_DATA": "a folder of downloaded data sets (HH-RLHF, UltraFeedback; default: ../shared/data)",
    "RLHF_LAB_AUTOLABEL": "1: notebook 03's scripted learner labels the pairs (CI, unattended runs)",
    "RLHF_LAB_SKIP_E2E": "1: skip the browser test of the labelling widget",
    "RLHF_LAB_CHROMIUM": "the Chromium binary the browser test drives",
    "RLHF_LAB_VENV": "course.sh's virtual environment (default: .venv)",
    "HF_HUB_OFFLINE": "1: never reach the Hugging Face Hub (the tiny profile needs no network)",
}


class ConfigError(ValueError):
    """A profile name or setting is not valid. The message says what to use instead."""


def parse_seed(value) -> int:
    """A seed as the course takes it: a non-negative integer below 2**32 (what numpy accepts)."""
    try:
        seed = int(str(value).strip())
    except ValueError:
        seed = None
    if seed is None or isinstance(value, bool) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed {value!r} is not valid: use a non-negative integer below 2**32 (e.g. 0, 1, 2); "
                          f"from the environment: {SEED_ENV}=1.")
    return seed


def default_seed() -> int:
    """The seed named by ``RLHF_LAB_SEED`` (default 0): run the whole course on another draw."""
    value = os.environ.get(SEED_ENV, "").strip()
    return parse_seed(value) if value else 0


def budget() -> str:
    """The lesson budget named by ``RLHF_LAB_BUDGET``: "full" (default) or "test".

    Under "test" the longest lessons (05b, 07) train a reduced grid: the same code and the same
    claims, fewer runs and steps. ``bash course.sh test`` sets it; a learner can set it to try a
    lesson quickly (the committed outputs are the full budget's)."""
    value = os.environ.get(BUDGET_ENV, "full").strip().lower() or "full"
    if value not in BUDGETS:
        raise ConfigError(f"{BUDGET_ENV}={value!r} is not a budget; use one of {', '.join(BUDGETS)} "
                          f"(or leave it unset for the full lessons).")
    return value


def cpu_threads() -> int:
    """The CPU threads a lesson gives torch: ``RLHF_LAB_THREADS``, default 2 (the course's budget).

    ``bash course.sh test`` runs the notebooks and the tests side by side, one thread each: on two
    cores two one-thread processes get through more work than one two-thread process."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return 2
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{THREADS_ENV}={value!r} is not a thread count; use a positive integer (e.g. 2), "
                          f"or leave it unset for 2.")
    return int(value)


def under_test_budget() -> bool:
    """True when ``RLHF_LAB_BUDGET=test``: the longest lessons train their reduced grid."""
    return budget() == "test"


# The tiny profile's response length budget, in tokens: every sampling function's default, so a
# call without the profile's value still samples as the course does.
RESPONSE_TOKENS = 24


@dataclass(frozen=True)
class TinyModelShape:
    """Architecture of the tiny Llama-style base model (tiny profile only).

    Sizes are multiples of 64: bitsandbytes' CPU 4-bit kernel wants that (STACK_NOTES).
    """

    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 4
    num_heads: int = 4
    max_positions: int = 128


@dataclass(frozen=True)
class Profile:
    name: str
    device: str  # "cpu" or "cuda"
    base_model: str  # "tiny" (built locally) or a Hugging Face Hub id / local directory
    quantize_4bit: bool  # load the base in 4-bit NF4 (bitsandbytes)
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    seed: int = 0
    tiny_model: TinyModelShape = field(default_factory=TinyModelShape)
    # Optimizer steps of base-model pretraining (tiny only). The number of steps, more than the
    # tokens, decides whether the model learns to COPY the asked subject into its answer
    # (measured, seed 0: 400 x 32 -> the base copies it with p 0.04 and the SFT model 0.37 on
    # held-out prompts; 1200 x 16 -> 0.57 and 0.70, held-out gold -0.29 -> +0.49 for SFT).
    pretrain_steps: int = 1200
    pretrain_batch_size: int = 16
    pretrain_lr: float = 3e-3
    max_new_tokens: int = RESPONSE_TOKENS  # response length budget when sampling
    # Evaluation: distinct requests, not samples, are what narrow a rate's interval (its
    # bootstrap resamples requests), so the tiny profile judges every held-out prompt (the lab
    # world's "eval" split holds 1,053: 141 in the world's wording, 912 in wordings only
    # evaluation uses), each sampled eval_samples times (about 7 s per model on 2 CPU cores).
    # More samples would not narrow the intervals: 2, 4 or 6 give SFT's harmful compliance
    # +-7.8 / 8.1 / 7.6 points (seed 0), bound by the world's 24 harmful requests.
    eval_prompts: int = 1200  # at most this many held-out prompts
    eval_samples: int = 2  # sampled responses per held-out prompt
    preference_pairs: int = 3000  # simulated-annotator pairs for the reward model / DPO
    # Where preference pairs come from: "world" (the lab world's simulated human, the default:
    # the hidden human still judges every stage), "hh-rlhf" / "ultrafeedback" (their hub ids),
    # or a local .jsonl (.jsonl.gz)/.parquet file of either (see rlhf_lab.real_data).
    preference_data: str = "world"

    @property
    def real_model(self) -> bool:
        """A real pretrained model (gpu profiles), not the locally built tiny one."""
        return self.base_model != "tiny"

    def replace(self, **changes) -> "Profile":
        """A copy with some values changed, validated again."""
        return validate(dataclasses.replace(self, **changes))


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        device="cpu",
        base_model="tiny",
        quantize_4bit=False,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.0,
    ),
    # A BASE model (pretrained only), not an -Instruct one: an instruction-tuned model has
    # already been through SFT and RLHF, and the course would be aligning an aligned model.
    "gpu": Profile(
        name="gpu",
        device="cuda",
        base_model="Qwen/Qwen2.5-0.5B",
        quantize_4bit=True,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        max_new_tokens=64,
        eval_prompts=128,
        eval_samples=4,
        preference_pairs=2000,
    ),
}
# The same pipeline on a 3x larger base (fits 8 GB in 4-bit, see `rlhf-lab memory`).
PROFILES["gpu-1.5b"] = dataclasses.replace(PROFILES["gpu"], name="gpu-1.5b", base_model="Qwen/Qwen2.5-1.5B")


def validate(profile: Profile) -> Profile:
    """Check every value; raise ConfigError naming the field, the value and what is allowed."""

    def fail(field_name, value, allowed):
        raise ConfigError(f"Profile {profile.name!r}: {field_name}={value!r} is not valid; {allowed}.")

    try:
        parse_seed(profile.seed)
    except ConfigError:
        fail("seed", profile.seed, "use a non-negative integer below 2**32")
    if profile.device not in ("cpu", "cuda"):
        fail("device", profile.device, "use 'cpu' or 'cuda'")
    for name in ("lora_r", "lora_alpha", "pretrain_steps", "pretrain_batch_size", "max_new_tokens",
                 "eval_prompts", "eval_samples", "preference_pairs"):
        value = getattr(profile, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            fail(name, value, "use a positive integer")
    if not 0.0 <= profile.lora_dropout < 1.0:
        fail("lora_dropout", profile.lora_dropout, "use a number in [0, 1)")
    if not isinstance(profile.preference_data, str) or not profile.preference_data:
        fail("preference_data", profile.preference_data,
             "use 'world', 'hh-rlhf', 'ultrafeedback' or the path of a local preference file")
    if not profile.pretrain_lr > 0:
        fail("pretrain_lr", profile.pretrain_lr, "use a positive learning rate")
    shape = profile.tiny_model
    if shape.hidden_size % shape.num_heads or (shape.hidden_size // shape.num_heads) % 2:
        fail("tiny_model.hidden_size", shape.hidden_size,
             "it must split into num_heads heads of even size (RoPE needs an even head_dim)")
    if profile.quantize_4bit and profile.base_model == "tiny" and shape.hidden_size % 64:
        fail("tiny_model.hidden_size", shape.hidden_size, "4-bit on CPU needs a multiple of 64")
    return profile


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The named profile (default: $RLHF_LAB_PROFILE, else 'tiny'), with optional overrides."""
    name = name or os.environ.get(PROFILE_ENV) or "tiny"
    if name not in PROFILES:
        raise ConfigError(
            f"Unknown profile {name!r}. Valid profiles: {', '.join(sorted(PROFILES))}. "
            f"Set it with get_profile('tiny') or the environment variable {PROFILE_ENV}."
        )
    profile = PROFILES[name]
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Profile)}
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) {', '.join(sorted(unknown))} for profile {name!r}. "
            f"Valid settings: {', '.join(f.name for f in dataclasses.fields(Profile))}."
        )
    if "seed" not in overrides and os.environ.get(SEED_ENV, "").strip():
        overrides["seed"] = default_seed()
    if profile.real_model and os.environ.get(MODEL_ENV) and "base_model" not in overrides:
        overrides["base_model"] = os.environ[MODEL_ENV]
    return validate(dataclasses.replace(profile, **overrides))


def cache_dir() -> Path:
    """Where models and artifacts are cached: $RLHF_LAB_CACHE, else .cache/rlhf_lab in the
    course checkout, else ~/.cache/rlhf_lab."""
    if os.environ.get(CACHE_ENV):
        path = Path(os.environ[CACHE_ENV]).expanduser()
    else:
        checkout = Path(__file__).resolve().parent.parent
        if (checkout / "pyproject.toml").exists():
            path = checkout / ".cache" / "rlhf_lab"
        else:
            path = Path.home() / ".cache" / "rlhf_lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shown_path(path) -> str:
    """A path as a learner reads it: inside the course folder relative to it, beside it (the
    workspace's ``../shared``) relative to its parent, else with ~ for home (so a notebook's saved
    output shows no one's machine)."""
    path = Path(os.path.abspath(path))  # ".." folded, links kept
    course = Path(__file__).resolve().parent.parent
    for root, name in ((course, "<course folder>"), (Path.home(), "~"), (course.parent, "<course folder>/..")):
        try:
            return f"{name}/{path.relative_to(root).as_posix()}"
        except ValueError:
            continue
    return str(path)


def shown_model(base_model: str) -> str:
    """A base model as a learner reads it: a hub id as it is, a local folder with shown_path."""
    return shown_path(base_model) if Path(base_model).exists() else base_model

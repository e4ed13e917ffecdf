"""Shared pytest setup for tests/, notebooks/ (nbval) and solutions/: offline, one shared
cache, notebook 03 driven by a scripted learner, and the exercise grading target."""

import os
from pathlib import Path

# Tests never reach the Hugging Face Hub; the tiny profile builds everything locally.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Notebook 03 drives its labelling widget with a scripted learner instead of waiting for clicks.
os.environ["RLHF_LAB_AUTOLABEL"] = "1"
# One cache for the whole run (notebook kernels inherit it), so the base model is built once.
os.environ.setdefault("RLHF_LAB_CACHE", str(Path(__file__).resolve().parent / ".cache" / "rlhf_lab"))


def pytest_addoption(parser):
    parser.addoption(
        "--target",
        action="store",
        default="solutions",
        choices=("solutions", "exercises"),
        help="Which exercise notebooks tests/exercises grades: the completed solutions "
        "(default) or the learner's filled-in exercises.",
    )

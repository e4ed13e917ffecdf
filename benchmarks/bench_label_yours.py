"""Notebook 03's "Your labels, your model" end to end, as a learner runs it: a scripted learner
labels N pairs through the widget's messages, then one reward model on those labels and three on
the same pairs labelled by simulated labellers (your_labels_your_model), then the curve by label
count (accuracy_by_label_count, reusing the models for "all"). Uses the shared model cache (the
SFT model must be built or it is built first; its time is reported apart).

    python benchmarks/bench_label_yours.py [--labels 50]

Writes benchmarks/results/label_yours.json: wall time of each part, per-training time, the
process's CPU time and the load average (the machine is shared: CPU time / wall time < 2 means
other processes took cores), and the numbers the notebook shows.

Target (notebook 03): the section runs in about a minute with a cached SFT model, and a reward model on
your labels alone lands within chance of the simulated labellers' (the gap's interval holds 0).
"""

import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, save  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--labels", type=int, default=50, help="pairs the scripted learner labels")
parser.add_argument("--no-curve", action="store_true", help="skip the curve by label count")
args = parser.parse_args()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402

torch.set_num_threads(2)
from rlhf_lab import lesson  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.label import LabelingApp, scripted_labelling  # noqa: E402
from rlhf_lab import your_model, your_model_report  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402
from rlhf_lab.world import SimulatedAnnotator  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


lesson.notebook_setup()
profile = get_profile()
timings, trainings = {}, []
start = time.perf_counter()
get_sft_model_dir(profile, progress=False)
timings["sft_model_ready_s"] = round(time.perf_counter() - start, 1)

original = your_model._train_and_choose


def timed_train_and_choose(*a, **kw):
    t = time.perf_counter()
    out = original(*a, **kw)
    trainings.append(round(time.perf_counter() - t, 2))
    return out


your_model._train_and_choose = timed_train_and_choose
with tempfile.TemporaryDirectory() as tmp:
    app = LabelingApp.for_world(store_path=os.path.join(tmp, "labels.jsonl"), n_pairs=args.labels)
    scripted_labelling(app, SimulatedAnnotator(noise=0.2, prefers_agreement=1.5, seed=1))  # notebook 03's
    cpu0, load0, t0 = cpu_seconds(), os.getloadavg()[0], time.perf_counter()
    result = your_model.your_labels_your_model(app, profile, progress=False)
    timings["your_labels_your_model_s"] = round(time.perf_counter() - t0, 1)
    t1 = time.perf_counter()
    curve = None if args.no_curve else your_model.accuracy_by_label_count(app, profile, result=result, progress=False)
    timings["accuracy_by_label_count_s"] = None if curve is None else round(time.perf_counter() - t1, 1)
    timings["section_total_s"] = round(time.perf_counter() - t0, 1)
    cpu = cpu_seconds() - cpu0

y, s = result["models"]["yours"], result["models"]["simulated"]
report = {
    "what": "Notebook 03 'Your labels, your model' end to end (tiny profile, cached SFT model): "
            "1 + 3 reward models on the labels, then the curve by label count",
    "command": f"python benchmarks/bench_label_yours.py --labels {args.labels}" + (" --no-curve" if args.no_curve else ""),
    "labels": args.labels, "a_or_b_labels": result["n"],
    "timings": timings,
    "per_training_s": trainings,
    "cpu_seconds_of_section": round(cpu, 1),
    "cpu_per_wall": round(cpu / timings["section_total_s"], 2),
    "load_average_1min": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
    "results": {
        "yours_accuracy": round(y["accuracy"], 3),
        "simulated_accuracy": [round(r["accuracy"], 3) for r in s["runs"]],
        "yours_by_family": {f: round(v, 3) for f, v in y["by_family"].items()},
        "simulated_by_family": {f: round(v, 3) for f, v in s["by_family"].items()},
        "gap_interval_by_family": {f: [round(v, 3) for v in ci["gap"]] for f, ci in result["intervals"].items()},
        "verdicts": result["verdicts"],
        "prefers": {"yours": {k: round(v, 3) for k, v in y["prefers"].items()},
                    "simulated": {k: round(v, 3) for k, v in s["prefers"].items()}},
        "curve": None if curve is None else [
            {"labels": r["labels"], "yours": round(r["yours"], 3), "simulated": round(r["simulated"], 3),
             "simulated_runs": [round(v, 3) for v in r["simulated_runs"]]} for r in curve],
    },
    "machine": machine(),
}
print(your_model_report.summary_line(result))
print({k: v for k, v in report.items() if k in ("timings", "per_training_s", "cpu_per_wall", "load_average_1min")})
save(f"label_yours_{args.labels}" if args.labels != 50 else "label_yours", report)

"""How long the kernel takes to apply one labelling action: the message the browser view sends
(app.handle_message): save the decision (flush + fsync) and send the new state back to the
view. Target: under 100 ms per action (median and p95). The browser side, click or key to the
next pair on screen, is measured by label_browser.py.

    python experiments/label_click.py [--clicks 200]

Writes experiments/results/label_click.json. The store is a real file in a temporary folder
(on the same disk as the course by default: --dir), so the fsync cost is real. No kernel runs:
the widget's state message is built but not sent, which a kernel does in the background.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from rlhf_lab.label import LabelingApp, LabelStore
from rlhf_lab.world import World

RESULTS = Path(__file__).resolve().parent / "results" / "label_click.json"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_clicks(app: LabelingApp, clicks: int, how: str) -> list[float]:
    """Milliseconds per decision, alternating A / B / tie; how = "message" (what the browser
    sends for a click or key) or "python" (app.choose_side, what a cell would call)."""
    times = []
    client = f"bench-{how}"
    for i in range(clicks):
        side = ("left", "right", "tie")[i % 3]
        start = time.perf_counter()
        if how == "message":
            app.handle_message({"client": client, "seq": i + 1, "action": "choose", "side": side, "tags": [],
                                "pair_id": str(app.pairs[app.current].pair_id)})
        else:
            app.choose_side(side)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--dir", default=str(Path(__file__).resolve().parent / "results"),
                        help="where the temporary label file is written (its disk's fsync is timed)")
    args = parser.parse_args()
    world = World()
    pairs = world.comparison_pairs(2 * args.clicks + 1, seed=0)
    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        app = LabelingApp(pairs, Path(tmp) / "labels.jsonl", hidden_human=world.gold_preference)
        for how in ("message", "python"):
            times = time_clicks(app, args.clicks, how)
            results[how] = {"median_ms": round(statistics.median(times), 3),
                            "p95_ms": round(percentile(times, 0.95), 3),
                            "max_ms": round(max(times), 3)}
            print(f"{how:>6}: {args.clicks} decisions, median {results[how]['median_ms']:.2f} ms, "
                  f"p95 {results[how]['p95_ms']:.2f} ms, max {results[how]['max_ms']:.2f} ms")
        saved = len(LabelStore(app.store.path).active_decisions())
        assert saved == 2 * args.clicks, f"expected {2 * args.clicks} saved decisions, found {saved}"
    report = {
        "what": "Kernel time of one labelling decision: store append (flush + fsync) and the state sent back to the view",
        "target_ms": 100,
        "clicks": args.clicks,
        "results": results,
        "meets_target": all(r["p95_ms"] < 100 for r in results.values()),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"target < 100 ms: {'met' if report['meets_target'] else 'MISSED'}; wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""Does every sentence of the lessons hold on other seeds? Run the lessons on the test budget for
several seeds and list each `check_claim`'s outcome with the numbers it compared, seed by seed.

    python tools/claims_by_seed.py run --seeds 1 2 --out /tmp/claims   # ~20 min per seed (2 CPU cores)
    python tools/claims_by_seed.py run --seeds 1 --out /tmp/claims --only 05_ 06  # some lessons
    python tools/claims_by_seed.py report /tmp/claims                  # markdown table on stdout

`run` executes a copy of every lesson per seed (RLHF_LAB_SEED, RLHF_LAB_BUDGET=test) into
OUT/seed<N>/, errors allowed so that one failing claim does not hide the others; the committed
notebooks are not touched. Each seed trains into its own cache under OUT unless $RLHF_LAB_CACHE
is set. `report` reads the executed copies: a claim that failed shows "FAILED" and the numbers
that broke it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import NOTEBOOKS_DIR, execution_env  # noqa: E402  (tools/run_notebooks.py)

# The numbers start with a name and "=" (a name may hold one parenthesis: "control (gold)_rate=");
# a parenthesis inside the claim has no "=" before it closes.
CHECKED = re.compile(r"^checked: (?P<claim>.*?) \((?P<numbers>[\w ]+(?:\([\w ]+\))?[\w ]*=.*)\)\s*$")
FAILED = re.compile(r"The lesson says: (?P<claim>['\"].*['\"]), but the measured numbers do not show it: "
                    r"(?P<numbers>.*?)\. Re-read")


def run(seeds: list[int], out: Path, only: list[str] | None = None) -> None:
    for seed in seeds:
        folder = out / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        env = {**execution_env(), "RLHF_LAB_SEED": str(seed), "RLHF_LAB_BUDGET": "test"}
        env.setdefault("RLHF_LAB_CACHE", str(out / f"cache-seed{seed}"))
        for notebook in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]*_*.ipynb")):
            if only and not any(notebook.name.startswith(prefix) for prefix in only):
                continue
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                                   "--allow-errors", "--ExecutePreprocessor.timeout=3600", "--output-dir",
                                   str(folder), str(notebook)], env=env, cwd=NOTEBOOKS_DIR, capture_output=True,
                                  text=True)
            print(f"seed {seed} {notebook.stem}: {time.perf_counter() - start:.0f} s"
                  + ("" if done.returncode == 0 else f" (nbconvert failed: {done.stderr[-300:]})"), flush=True)


def outcomes(notebook: Path) -> list[tuple[str, bool, str]]:
    """(claim, held, numbers) for every check_claim of one executed notebook, in order."""
    found = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                text = output["text"] if isinstance(output["text"], str) else "".join(output["text"])
                found += [(m["claim"], True, m["numbers"]) for line in text.splitlines()
                          for m in [CHECKED.match(line)] if m]
            elif output["output_type"] == "error" and output["ename"] == "ClaimFailed":
                m = FAILED.search(output["evalue"])
                found.append((m["claim"][1:-1] if m else output["evalue"][:120], False, m["numbers"] if m else ""))
            elif output["output_type"] == "error":
                found.append((f"(cell error) {output['ename']}: {output['evalue'][:100]}", False, ""))
    return found


def report(out: Path) -> str:
    seeds = sorted((p for p in out.glob("seed*") if p.is_dir() and p.name[4:].isdigit()), key=lambda p: int(p.name[4:]))
    lines = ["| notebook | claim | " + " | ".join(p.name.replace("seed", "seed ") for p in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]
    names = sorted({nb.stem for folder in seeds for nb in folder.glob("*.ipynb")})
    failures = 0
    for name in names:
        by_seed = [outcomes(folder / f"{name}.ipynb") if (folder / f"{name}.ipynb").exists() else [] for folder in seeds]
        # Rows by claim, not by position: a seed run before a claim was added shows "(not run)" on its row only.
        claims = list(dict.fromkeys(claim for found in by_seed for claim, _, _ in found))
        for claim in claims:
            row = [next(((held, numbers) for c, held, numbers in found if c == claim), None) for found in by_seed]
            failures += sum(1 for r in row if r and not r[0])
            cells = ["(not run)" if r is None else ("ok: " if r[0] else "**FAILED**: ") + r[1] for r in row]
            lines.append(f"| {name[:3].rstrip('_')} | {claim[:110]} | " + " | ".join(cells) + " |")
    lines.append(f"\n{failures} failed check(s) over {len(seeds)} seed(s).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="execute every lesson on the test budget for each seed")
    run_parser.add_argument("--seeds", type=int, nargs="+", required=True)
    run_parser.add_argument("--out", type=Path, required=True)
    run_parser.add_argument("--only", nargs="+", help="only the lessons whose names start with these, e.g. 05_ 07b")
    report_parser = commands.add_parser("report", help="each claim's outcome and numbers, seed by seed")
    report_parser.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.seeds, args.out.resolve(), args.only)
    else:
        print(report(args.out))


if __name__ == "__main__":
    main()

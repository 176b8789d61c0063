"""CLI start-up: wall and CPU seconds of `terradream --help`, `seed --dry-run` and each command's --help.

Every command runs as the installed `terradream` script (else `python -m terradream.cli`) in a fresh process, a few
times; the median wall time is held against the budget of 0.5 s (the script exits 1 above it). CPU time (user + sys
of the child) is printed too: on a shared machine it moves less than the wall time. Results: bench/out/cli_startup.json.
Usage: .venv/bin/python bench/cli_startup.py [--runs 7] [--budget-s 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "cli_startup.json"
CASES = (
    ("--help",),
    ("seed", "--world", "earth", "--bbox", "5,44,11,48", "--zoom", "0-12", "--dry-run"),
    ("serve", "--help"),
    ("seed", "--help"),
    ("export", "--help"),
    ("worker", "--help"),
    ("train", "--help"),
)
GATED = 2  # the first cases are the ones the budget is about


def command() -> list[str]:
    """The installed script next to this Python, else the module."""
    script = Path(sys.executable).with_name("terradream")
    return [str(script)] if script.exists() else [sys.executable, "-m", "terradream.cli"]


def time_run(argv: list[str]) -> tuple[float, float]:
    """(wall s, child CPU s) of one run, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    """Time every case, print a table and the verdict, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--budget-s", type=float, default=0.5)
    args = parser.parse_args()
    base = command()
    time_run([*base, "--version"])  # warm the page cache and bytecode
    print(f"load average {os.getloadavg()[0]:.2f}, {args.runs} runs each, budget {args.budget_s} s (median wall)")
    print(f"{'command':<72} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>7}")
    results = []
    for case in CASES:
        runs = [time_run([*base, *case]) for _ in range(args.runs)]
        walls = [w for w, _ in runs]
        row = {"command": " ".join(["terradream", *case]), "median_s": statistics.median(walls),
               "min_s": min(walls), "max_s": max(walls), "cpu_median_s": statistics.median(c for _, c in runs)}
        results.append(row)
        print(f"{row['command']:<72} {row['median_s']:>9.3f} {row['min_s']:>7.3f} {row['max_s']:>7.3f} "
              f"{row['cpu_median_s']:>7.3f}")
    over = [r["command"] for r in results[:GATED] if r["median_s"] >= args.budget_s]
    print("within budget" if not over else f"over the {args.budget_s} s budget: {', '.join(over)}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"budget_s": args.budget_s, "runs": args.runs, "results": results}, indent=2) + "\n")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())

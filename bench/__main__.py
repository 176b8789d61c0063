"""`make bench` (`python -m bench`): every benchmark in one run, then docs/benchmarks.md and its plots.

Each benchmark runs as its own process (its output shown live; stdout kept in bench/out/NAME.txt, stderr in NAME.log);
one that fails or runs out of time is reported in the document and makes the exit status 1, the others still run.
Usage: .venv/bin/python -m bench [--quick] [--only NAME,...] [--skip NAME,...] [--data ../shared/data] [--no-doc]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from bench.imagery import extract
from bench.report import Outcome, write_document

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
IMAGES = REPO / "docs" / "images"
DOC = REPO / "docs" / "benchmarks.md"
PLOT_ARGS = ("--out", "bench/out", "--images", "docs/images")
PLOT_FILES = ("hot_tiles_rps.png", "windows_per_zoom.png", "realism_swd.png", "gpu_batch.png")


@dataclass(frozen=True)
class Step:
    """One benchmark script: its arguments (full and --quick), its time limit and the files it leaves in bench/out."""

    name: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    timeout_s: int = 600
    outputs: tuple[str, ...] = field(default_factory=tuple)


def steps_for(data: Path, realism_count: int) -> list[Step]:
    """The benchmarks in the order they run (plots last: it draws what the others left)."""
    return [
        Step("cli_startup", (), ("--runs", "2"), 120, ("cli_startup.json",)),
        Step("hot_tiles", ("--duration", "10", "--zoom", "5"), ("--duration", "2", "--zoom", "4"), 420,
             ("hot_tiles.json",)),
        Step("gpu", (), ("--seconds", "1", "--batches", "1,2"), 300, ("gpu.json",)),
        Step("generation", ("--blocks", "5"), ("--blocks", "1", "--skip-cold"), 900),
        Step("quality", (), (), 900),
        Step("eval_realism", ("--data", str(data), "--count", str(realism_count)),
             ("--data", str(data), "--count", "8"), 1800),
        Step("plots", PLOT_ARGS, PLOT_ARGS, 120),
    ]


def skip_reason(step: Step, data: Path) -> str | None:
    """Why a step cannot run on this machine (None: it can)."""
    if step.name == "eval_realism" and not data.is_dir():
        return f"no held-out imagery at {data} (pass --data DIR laid out like ../shared/data)"
    return None


def with_eval_only(step: Step) -> Step:
    """eval_realism also scores the evaluation-only imagery of installed packages (extracted to bench/out/imagery
    by bench/imagery.py when missing): one --eval-only DIR:MPP per folder."""
    if step.name != "eval_realism":
        return step
    extra = tuple(a for folder in extract(OUT / "imagery", relative_to=REPO) for a in ("--eval-only", folder))
    return replace(step, args=(*step.args, *extra), quick_args=(*step.quick_args, *extra))


def tee(stream: IO[str], sinks: Sequence[IO[str]], keep: list[str] | None = None) -> None:
    """Copy a child's output line by line to every sink (flushed), keeping the lines when asked."""
    for line in stream:
        for sink in sinks:
            sink.write(line)
            sink.flush()
        if keep is not None:
            keep.append(line.rstrip("\n"))


def run_step(step: Step, args: Sequence[str]) -> Outcome:
    """Run bench/NAME.py, echoing its stdout and stderr live (stdout kept for the document); kill it after
    step.timeout_s."""
    command = [sys.executable, f"bench/{step.name}.py", *args]
    shown = shlex.join(["python", *command[1:]])
    print(f"\n=== {step.name}: {shown}", flush=True)
    log = OUT / f"{step.name}.log"
    lines: list[str] = []
    start = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None and proc.stderr is not None
        err_thread = threading.Thread(target=tee, args=(proc.stderr, [err, sys.stderr]), daemon=True)
        err_thread.start()
        timer = threading.Timer(step.timeout_s, proc.kill)
        timer.start()
        try:
            tee(proc.stdout, [sys.stdout], lines)
            rc = proc.wait()
            err_thread.join(10)
        finally:
            timer.cancel()
    elapsed = time.perf_counter() - start
    timed_out = rc != 0 and elapsed >= step.timeout_s
    (OUT / f"{step.name}.txt").write_text("\n".join(lines) + "\n")
    status = "ok" if rc == 0 else f"timed out after {step.timeout_s} s" if timed_out else f"failed (exit {rc})"
    if rc != 0:
        print(f"--- {step.name} {status} (its stderr is in {log.relative_to(REPO)})", file=sys.stderr)
    return Outcome(step.name, shown, status, elapsed, lines)


def clear_outputs(step: Step) -> None:
    """Remove what an earlier run of this step left, so nothing stale reaches the document or the plots."""
    for name in (*step.outputs, f"{step.name}.txt", f"{step.name}.log"):
        (OUT / name).unlink(missing_ok=True)
    if step.name == "plots":
        for name in PLOT_FILES:
            (IMAGES / name).unlink(missing_ok=True)


def parse_names(value: str) -> set[str]:
    """A comma-separated list of step names."""
    return {v.strip() for v in value.split(",") if v.strip()}


def main() -> int:
    """Run the chosen steps, write the document, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs that only check the harness")
    parser.add_argument("--only", type=parse_names, default=set(), help="run just these steps (comma-separated)")
    parser.add_argument("--skip", type=parse_names, default=set(), help="leave these steps out")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                        help="held-out imagery for eval_realism (skipped when absent)")
    parser.add_argument("--realism-count", type=int, default=64, help="images per band for eval_realism")
    parser.add_argument("--no-doc", action="store_true",
                        help="do not rewrite docs/benchmarks.md (implied by --only: a partial run is no document)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    steps = steps_for(Path(os.path.relpath(args.data.resolve(), REPO)), args.realism_count)
    unknown = (args.only | args.skip) - {s.name for s in steps}
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; known: {[s.name for s in steps]}")
    load = os.getloadavg()
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    for step in steps:
        if args.only and step.name not in args.only:
            continue
        if step.name in args.skip:
            outcomes.append(Outcome(step.name, "", "skipped: --skip", 0.0, []))
            continue
        clear_outputs(step)
        reason = skip_reason(step, args.data)
        if reason:
            print(f"\n=== {step.name}: skipped, {reason}", flush=True)
            outcomes.append(Outcome(step.name, "", f"skipped: {reason}", 0.0, []))
            continue
        step = with_eval_only(step)
        outcomes.append(run_step(step, step.quick_args if args.quick else step.args))
    total_s = time.perf_counter() - started
    print(f"\nall benchmarks: {total_s / 60:.1f} min")
    if not (args.no_doc or args.only):
        command = shlex.join(["python", "-m", "bench", *sys.argv[1:]])
        write_document(DOC, outcomes, command, total_s, load, quick=args.quick,
                       images=[p for p in PLOT_FILES if (IMAGES / p).is_file()])
        print(f"wrote {DOC.relative_to(REPO)}")
    failed = [o.name for o in outcomes if not (o.status == "ok" or o.status.startswith("skipped"))]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

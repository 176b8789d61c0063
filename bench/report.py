"""docs/benchmarks.md from one `python -m bench` run: the machine, the command, and each benchmark's output and plot."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

SECTIONS = {  # step name -> (title, what it measures and how, plot file)
    "cli_startup": ("CLI start-up", (
        "Wall seconds (median, min, max of fresh processes) and child CPU seconds of `terradream --help`, "
        "`terradream seed --dry-run` over a region and each command's `--help`, run as the installed script; the "
        "first two must stay under 0.5 s (commands import torch, the server and Dask only when they run)."), None),
    "hot_tiles": ("Hot tiles over HTTP", (
        "Requests/s and p50/p99 latency for tiles that are already cached, measured by "
        "[wrk](https://github.com/wg/wrk) with 64 keep-alive connections on 127.0.0.1 for a fixed time per run "
        "(after a 1 s untimed warm-up): once cycling a 20-tile viewport grid (5x4) and once on a single hot tile. "
        "The tiles are generated once by terradream with the default model; every server then answers from its "
        "cache and every answer is checked byte for byte against the generated tile before timing. "
        "terradream runs as `terradream serve` ships (granian, one worker process per core; its one-off background "
        "load of earth's data at start is switched off, `TERRADREAM_WARM_ATLASES=0`, as no cached tile needs it) "
        "with its embedded "
        "MBTiles cache or with Redis, each with its default in-memory LRUs in front and with them switched off "
        "(`TERRADREAM_LRU_BYTES=0 TERRADREAM_RESPONSE_LRU_BYTES=0`, so every request reaches the back cache); "
        "also with one worker, under uvicorn (h11) instead of granian, and behind its shipped nginx front "
        "(deploy/nginx-tiles.conf: tile responses cached on disk by URL, the compose file's `front`). "
        "nginx (Debian's nginx-light, one worker per core, sendfile, no access log) serves the same PNGs as static "
        "files `z/x/y.png`: the practical limit. MapProxy (PyPI) serves them from its file cache (filled through "
        "its tile source, which is stopped before timing) under gunicorn with one gthread worker per core and 16 "
        "threads each, keep-alive on. The load generator shares the machine's cores with the server."),
        "hot_tiles_rps.png"),
    "generation": ("Generation on CPU", (
        "Seconds per new tile when its parents are cached (a window makes a 2x2 block of tiles; the time to render "
        "and PNG-encode a block, shared by its four tiles, median over 5 blocks = 20 tiles; a lone request for one "
        "tile of a new block waits for the whole window, also printed), at z14 in the Alps and across Paris, "
        "the time for a cold 20-tile viewport at z12 with nothing cached below the root (earth's real data "
        "already loaded, as a started server has it), and "
        "the model windows one cold tile costs against its zoom for four tile alignments, which must grow linearly "
        "(at most 2x2 ancestor blocks per level, never a whole pyramid)."),
        "windows_per_zoom.png"),
    "gpu": ("GPU throughput", (
        "FLOPs per tile are counted with torch's FlopCounterMode over one window (which makes a 2x2 block of "
        "tiles) on any machine. With a CUDA GPU the script also measures tiles/s against the micro-batch "
        "in bf16, end to end (`sample()`: noise field on the CPU, model, projection) and for the model alone "
        "(`denoise()` on precomputed latents), and the share of the GPU's dense bf16 peak that the model reaches. "
        "Without a GPU it stops after the count."), "gpu_batch.png"),
    "quality": ("Quality", (
        "Seam ratio (pixel differences across tile borders against those inside tiles, 1.0 means invisible "
        "seams) at three depths, cross-zoom PSNR between a tile and its children downsampled, colour drift from "
        "an ancestor down three zooms, and the determinism check (the same tile from a fresh cache is "
        "byte-identical)."), None),
    "eval_realism": ("Realism", (
        "Sliced Wasserstein distance (Laplacian pyramid patches) and spectrum slope of generated imagery against "
        "held-out real imagery per zoom band, next to plain bicubic upsampling of the same parents; needs the "
        "held-out data set, so it is skipped on machines without it."), "realism_swd.png"),
    "plots": ("Plots", "matplotlib PNGs of the tables above, in docs/images/.", None),
}


@dataclass
class Outcome:
    """What one benchmark step did: its command, 'ok' / 'skipped: why' / 'failed ...', time and stdout lines."""

    name: str
    command: str
    status: str
    elapsed_s: float
    lines: list[str]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_gib() -> float:
    """Total memory in GiB from /proc/meminfo (0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def git_commit(repo: Path) -> str:
    """The checked-out commit, marked when the tree has uncommitted changes that could change a number (docs/,
    where this run writes its document and plots, does not count)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + uncommitted changes" if git("status", "--porcelain", "--", ".", ":(exclude)docs") else "")


def machine_rows(repo: Path, load: tuple[float, float, float], total_s: float) -> list[tuple[str, str]]:
    """(what, value) rows describing this machine and run."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    versions = ", ".join(f"{p} {_version(p)}" for p in ("granian", "uvicorn", "MapProxy", "gunicorn", "matplotlib"))
    return [
        ("CPU", cpu_model()),
        ("cores", f"{os.cpu_count()} (this process may use {len(os.sched_getaffinity(0))})"),
        ("RAM", f"{ram_gib():.1f} GiB"),
        ("GPU", gpu),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("torch", f"{torch.__version__}, {torch.get_num_threads()} threads"),
        ("other packages", versions),
        ("load average at start (1/5/15 min)", " / ".join(f"{v:.2f}" for v in load)),
        ("commit", git_commit(repo)),
        ("total run time", f"{total_s / 60:.1f} min"),
    ]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def render_output(lines: Sequence[str]) -> list[str]:
    """Markdown tables in the output stay tables; everything else goes into text code blocks."""
    out: list[str] = []
    block: list[str] = []
    in_table = False
    for line in [*lines, ""]:
        is_table = line.lstrip().startswith("|")
        if is_table != in_table or not line:
            if block and any(b.strip() for b in block):
                out += ([""] + block + [""]) if in_table else (["", "```text"] + block + ["```", ""])
            block = []
            in_table = is_table
        if line:
            block.append(line.strip() if is_table else line)
    return out


def section(outcome: Outcome, images: Sequence[str]) -> list[str]:
    """One benchmark's part of the document."""
    title, about, plot = SECTIONS.get(outcome.name, (outcome.name, "", None))
    lines = [f"## {title}", "", about, ""]
    if outcome.status.startswith("skipped"):
        return lines + [f"*{outcome.status}*", ""]
    lines += [f"`{outcome.command}`: {outcome.status}, {outcome.elapsed_s:.0f} s."]
    lines += render_output(outcome.lines)
    if plot and plot in images:
        lines += ["", f"![{title}](images/{plot})", ""]
    return lines


def write_document(path: Path, outcomes: Sequence[Outcome], command: str, total_s: float,
                   load: tuple[float, float, float], quick: bool, images: Sequence[str]) -> None:
    """Write docs/benchmarks.md for this run (the whole file: it always matches the latest run)."""
    repo = path.resolve().parent.parent
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks", "",
        f"Written by `make bench` (here: `{command}`, with the repository's `.venv`) on {now}. "
        "Do not edit by hand: rerun the command, which rewrites this file, bench/out/ and the plots in "
        "docs/images/. Every ratio compares numbers taken in this one run on this one machine.", "",
    ]
    if quick:
        lines += ["> **Quick run**: short durations that only check the harness; the numbers are not meaningful.", ""]
    lines += ["## Machine", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in machine_rows(repo, load, total_s)]
    lines += ["", "| benchmark | status | time |", "| --- | --- | ---: |"]
    lines += [f"| {o.name} | {o.status} | {o.elapsed_s:.0f} s |" for o in outcomes]
    lines.append("")
    for outcome in sorted(outcomes, key=lambda o: list(SECTIONS).index(o.name) if o.name in SECTIONS else 99):
        if outcome.name != "plots":
            lines += section(outcome, images)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    path.write_text(text.rstrip() + "\n")

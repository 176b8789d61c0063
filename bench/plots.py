"""Benchmark plots: matplotlib PNGs in docs/images/ from what the benchmarks left in bench/out/.

Reads hot_tiles.json and gpu.json (written by those scripts) and the captured stdout of generation and eval_realism
(generation.txt, eval_realism.txt, written by `python -m bench`); a plot whose input is missing is skipped.
Usage: .venv/bin/python bench/plots.py [--out bench/out] [--images docs/images]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

FIGSIZE_IN = (8.0, 4.0)
DPI = 100
WINDOWS_LINE = re.compile(r"^\s*z(\d+):\s*(?:\d+-)?(\d+) windows")  # 'z12: 12-29 windows': the most


def save(fig: plt.Figure, path: Path) -> Path:
    """Write a figure as PNG and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_hot_tiles(results_json: Path, path: Path) -> Path | None:
    """Grouped horizontal bars: requests/s by server for the viewport and hot-tile scenarios (log axis)."""
    if not results_json.is_file():
        return None
    results = json.loads(results_json.read_text())["results"]
    servers = list(dict.fromkeys(r["server"] for r in results))
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    rps = {(r["server"], r["scenario"]): r["rps"] for r in results}
    fig, ax = plt.subplots(figsize=(FIGSIZE_IN[0], 0.55 * len(servers) + 1.5))
    height = 0.8 / len(scenarios)
    ys = np.arange(len(servers))
    for i, scenario in enumerate(scenarios):
        values = [rps.get((s, scenario), 0.0) for s in servers]
        bars = ax.barh(ys + i * height, values, height, label=scenario)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
    ax.set_yticks(ys + height * (len(scenarios) - 1) / 2, servers)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("requests/s (log scale), 64 keep-alive connections, wrk")
    ax.set_title("Cached tiles over HTTP on 127.0.0.1")
    ax.legend(loc="lower right", fontsize=8)
    return save(fig, path)


def parse_windows_per_zoom(text: str) -> list[tuple[int, int]]:
    """(zoom, windows) pairs from generation.py's 'windows for one cold tile against zoom' lines."""
    return [(int(m[1]), int(m[2])) for m in map(WINDOWS_LINE.match, text.splitlines()) if m]


def plot_windows_per_zoom(generation_txt: Path, path: Path) -> Path | None:
    """Windows computed for one cold tile against its zoom, with the least-squares line."""
    pairs = parse_windows_per_zoom(generation_txt.read_text()) if generation_txt.is_file() else []
    if len(pairs) < 2:
        return None
    zooms, windows = (np.array(v, dtype=float) for v in zip(*pairs))
    slope, intercept = np.polyfit(zooms, windows, 1)
    fig, ax = plt.subplots(figsize=FIGSIZE_IN)
    ax.plot(zooms, windows, "o", label="measured (worst of four tile alignments)")
    ax.plot(zooms, slope * zooms + intercept, "-", label=f"linear fit: {slope:.1f} windows per zoom")
    ax.set_xlabel("zoom of the requested tile (nothing cached below the root)")
    ax.set_ylabel("model windows computed")
    ax.set_title("Cold-tile cost against zoom")
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)


def parse_markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Rows of every Markdown table in text (tables end at the first line that is not a table row), as
    {header: cell} per row."""
    tables: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip().startswith("|"):
            tables[-1].append(line.strip())
        elif tables[-1]:
            tables.append([])
    parsed = []
    for lines in tables:
        if len(lines) >= 3:
            cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
            parsed.append([dict(zip(cells[0], row)) for row in cells[2:]])
    return parsed


def plot_realism(realism_txt: Path, path: Path) -> Path | None:
    """SWD of the model and of bicubic upsampling per zoom band (lower is more like real imagery)."""
    tables = parse_markdown_tables(realism_txt.read_text()) if realism_txt.is_file() else []
    rows = next((t for t in tables if t and "SWD model" in t[0] and "SWD bicubic" in t[0]), [])
    if not rows:
        return None
    bands = [r["band"].split(" ")[0] for r in rows]
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=FIGSIZE_IN)
    for i, (column, label) in enumerate((("SWD bicubic", "bicubic baseline"), ("SWD model", "terradream model"))):
        ax.bar(xs + (i - 0.5) * 0.4, [float(r[column]) for r in rows], 0.4, label=label)
    ax.set_xticks(xs, bands)
    ax.set_ylabel("SWD to real imagery (lower is better)")
    ax.set_title("Realism per zoom band (held-out imagery)")
    ax.legend()
    return save(fig, path)


def plot_gpu(gpu_json: Path, path: Path) -> Path | None:
    """Tiles/s against batch size on the GPU (end to end and model alone)."""
    if not gpu_json.is_file():
        return None
    data = json.loads(gpu_json.read_text())
    rows = data.get("rows") or []
    if not rows:
        return None
    batches = [r["batch"] for r in rows]
    fig, ax = plt.subplots(figsize=FIGSIZE_IN)
    ax.plot(batches, [r["sample_tiles_per_s"] for r in rows], "o-", label="sample() end to end")
    ax.plot(batches, [r["model_tiles_per_s"] for r in rows], "s-", label="model (denoise) alone")
    ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("micro-batch (windows per model call)")
    ax.set_ylabel("tiles/s")
    ax.set_title(f"Generation throughput on {data['device']} ({data['dtype']})")
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)


def main(argv: list[str] | None = None) -> list[Path]:
    """Draw every plot whose input exists; print and return the files written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--images", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    drawn = [
        plot_hot_tiles(args.out / "hot_tiles.json", args.images / "hot_tiles_rps.png"),
        plot_windows_per_zoom(args.out / "generation.txt", args.images / "windows_per_zoom.png"),
        plot_realism(args.out / "eval_realism.txt", args.images / "realism_swd.png"),
        plot_gpu(args.out / "gpu.json", args.images / "gpu_batch.png"),
    ]
    written = [p for p in drawn if p is not None]
    for p in written:
        print(f"wrote {p}")
    return written


if __name__ == "__main__":
    main()

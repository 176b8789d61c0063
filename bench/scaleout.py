"""Scale-out throughput: cold tiles per second through one API server with 1, then 2 Dask workers.

Starts a private redis-server, a Dask scheduler and `terradream serve --scheduler`, then for each worker count starts
that many `terradream worker`s (each limited to --threads torch threads), warms them up, asks for a block of cold
tiles of a fresh world all at once and counts the tiles the workers generated (parents included) until every request
is answered or --seconds pass. Prints tiles/s per worker count and the ratio, and as a baseline the same block
through one `terradream serve` without Dask.

Usage: .venv/bin/python bench/scaleout.py [--model DIR] [--side 8] [--seconds 120] [--threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from distributed import Client
from reliability_common import ServerProcess, emit, free_port, model_dir

from terradream.model.worlds import WorldRegistry

PROCESS_ENV = {"TERRADREAM_CLIENT_COLD_RATE_PER_S": "0"}  # one benchmark client asks for everything


def spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A child process logging to log_path."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=log, stderr=log)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process, SIGKILL what is still running after 30 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def generated(metrics_ports: list[int]) -> list[float]:
    """terradream_tiles_generated_total of each worker (from its metrics endpoint)."""
    counts = []
    for port in metrics_ports:
        lines = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10.0).text.splitlines()
        counts.append(sum(float(line.split()[1]) for line in lines
                          if line.startswith("terradream_tiles_generated_total ")))
    return counts


async def ask_all(urls: list[str], seconds: float) -> int:
    """GET every URL at once; the number answered 200 before the deadline (the rest are abandoned)."""
    limits = httpx.Limits(max_connections=len(urls), max_keepalive_connections=len(urls))
    async with httpx.AsyncClient(timeout=seconds + 30, limits=limits) as http:
        requests = [asyncio.ensure_future(http.get(url)) for url in urls]
        done, pending = await asyncio.wait(requests, timeout=seconds)
        for request in pending:
            request.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        failed = [repr(r.exception()) if r.exception() is not None else f"{r.result().status_code} {r.result().text}"
                  for r in done if r.exception() is not None or r.result().status_code != 200]
        for failure in failed[:3]:
            print(f"request failed: {failure[:300]}", file=sys.stderr)
        return len(done) - len(failed)


def run(workers: int, api: ServerProcess, scheduler: str, redis_url: str, model: Path, workdir: Path,
        args: argparse.Namespace) -> dict[str, Any]:
    """Start `workers` workers, warm them up, time one cold block; returns tiles, seconds and tiles/s."""
    ports = [free_port() for _ in range(workers)]
    procs = [spawn([sys.executable, "-m", "terradream.cli", "worker", "--scheduler", scheduler, "--redis",
                    redis_url, "--model", str(model), "--device", args.device, "--host", "127.0.0.1", "--name",
                    f"bench-{workers}-{i}", "--metrics-port", str(port), "--slots", "64"],
                   workdir / f"worker-{workers}-{i}.log", {"OMP_NUM_THREADS": str(args.threads)})
             for i, port in enumerate(ports)]
    try:
        with Client(scheduler, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=300)
        world = f"scaleout-{workers}w-{os.getpid()}"
        z = WorldRegistry().get(world).root_zoom + 2
        warm = [f"{api.url}/tiles/{world}-warm/{z}/{i}/{i}.png" for i in range(workers * 2)]
        asyncio.run(ask_all(warm, args.seconds))
        urls = [f"{api.url}/tiles/{world}/{z}/{x}/{y}.png" for x in range(args.side) for y in range(args.side)]
        before = generated(ports)
        started = time.perf_counter()
        answered = asyncio.run(ask_all(urls, args.seconds))
        seconds = time.perf_counter() - started
        per_worker = [after - earlier for after, earlier in zip(generated(ports), before, strict=True)]
        return {"answered": answered, "tiles": sum(per_worker), "seconds": round(seconds, 2),
                "tiles_per_s": round(sum(per_worker) / seconds, 3), "per_worker": per_worker}
    finally:
        stop(procs)


def run_single(redis_url: str, model: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same cold block through one `terradream serve` without a scheduler (the baseline)."""
    server = ServerProcess(["--redis", redis_url, "--model", str(model), "--device", args.device],
                           workdir / "single.log", {**PROCESS_ENV, "OMP_NUM_THREADS": str(args.threads)})
    try:
        world = f"scaleout-single-{os.getpid()}"
        z = WorldRegistry().get(world).root_zoom + 2
        asyncio.run(ask_all([f"{server.url}/tiles/{world}-warm/{z}/{i}/{i}.png" for i in range(2)], args.seconds))
        urls = [f"{server.url}/tiles/{world}/{z}/{x}/{y}.png" for x in range(args.side) for y in range(args.side)]
        before = server.metric("terradream_tiles_generated_total")
        started = time.perf_counter()
        answered = asyncio.run(ask_all(urls, args.seconds))
        seconds = time.perf_counter() - started
        tiles = server.metric("terradream_tiles_generated_total") - before
        return {"answered": answered, "tiles": tiles, "seconds": round(seconds, 2),
                "tiles_per_s": round(tiles / seconds, 3)}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Model directory (default: a tiny random-init model).")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--side", type=int, default=8, help="Cold block of side x side requested tiles.")
    parser.add_argument("--seconds", type=float, default=120.0, help="Time bound of each cold block.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per worker.")
    parser.add_argument("--json", default=None, help="Also write the report here as JSON.")
    args = parser.parse_args()
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        sys.exit("redis-server is not installed")
    with tempfile.TemporaryDirectory(prefix="terradream-scaleout-") as tmp:
        workdir = Path(tmp)
        model = model_dir(args.model, workdir)
        redis_port, scheduler_port = free_port(), free_port()
        redis_url, scheduler = f"redis://127.0.0.1:{redis_port}/0", f"tcp://127.0.0.1:{scheduler_port}"
        services = [spawn([redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no"], workdir / "redis.log"),
                    spawn([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                           str(scheduler_port), "--no-dashboard"], workdir / "scheduler.log")]
        api = None
        try:
            api = ServerProcess(["--scheduler", scheduler, "--redis", redis_url, "--model", str(model),
                                 "--device", "cpu"], workdir / "api.log", PROCESS_ENV)
            single = run_single(redis_url, model, workdir, args)
            one = run(1, api, scheduler, redis_url, model, workdir, args)
            two = run(2, api, scheduler, redis_url, model, workdir, args)
        finally:
            if api is not None:
                api.stop()
            stop(services)
    report: dict[str, object] = {"requested tiles per run": args.side ** 2, "torch threads per worker": args.threads}
    for label, result in (("single process, no Dask", single), ("1 worker", one), ("2 workers", two)):
        split = " = " + "+".join(f"{n:.0f}" for n in result["per_worker"]) if "per_worker" in result else ""
        report[label] = (f"{result['tiles_per_s']} tiles/s ({result['tiles']:.0f} tiles{split} in "
                         f"{result['seconds']} s, {result['answered']:.0f} answered)")
    report["ratio 2/1"] = round(two["tiles_per_s"] / one["tiles_per_s"], 2) if one["tiles_per_s"] else "n/a"
    emit(report, args.json)


if __name__ == "__main__":
    main()

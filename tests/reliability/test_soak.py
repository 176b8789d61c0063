"""Soak: bench/reliability_soak.py for a CI-sized run (the full 300 s run is by hand)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOAK_SECONDS = os.environ.get("TERRADREAM_TEST_SOAK_S", "40")


def test_mixed_load_soak(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "reliability_soak.py"), "--seconds", SOAK_SECONDS,
         "--model", str(tiny_model_dir), "--json", str(out)],
        capture_output=True, text=True, timeout=float(SOAK_SECONDS) + 300, cwd=REPO, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["unexpected"] == 0 and report["server alive at the end"] is True
    requests = report["requests"]
    assert requests["hot"] > 100 and requests["bad"] > 50 and requests.get("cold 200", 0) > 0
    assert report["verdict"] == "passed"

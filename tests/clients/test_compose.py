"""docker-compose.yml: validated by the compose client where one is installed (no engine needed), and its shape."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


def compose_client() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose` (standalone), whichever answers `version`; else None."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60,
                                 check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy and subprocess.run([legacy, "version"], capture_output=True, timeout=60, check=False).returncode == 0:
        return [legacy]
    return None


def check_services(config: dict[str, Any]) -> None:
    """redis, the api serving from Redis, the GPU generator, the seed job, and the cache volume."""
    services = config["services"]
    assert {"redis", "api", "generator", "seed"} <= set(services)
    for name in ("api", "generator"):
        command = [str(c) for c in services[name]["command"]]
        assert command[0] == "serve" and command[command.index("--redis") + 1] == "redis://redis:6379/0"
    devices = services["generator"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "cuda" in [str(c) for c in services["generator"]["command"]]
    assert services["seed"]["command"][0] == "seed" and "--url" in services["seed"]["command"]
    assert any(str(v).startswith("redis-data:") or (isinstance(v, dict) and v.get("source") == "redis-data")
               for v in services["redis"]["volumes"])
    assert "redis-data" in config["volumes"]
    # the CPU torch build where the model runs on the CPU (or not at all), the CUDA one where a GPU is reserved
    for name, service in services.items():
        if "build" in service:
            gpu = "devices" in service.get("deploy", {}).get("resources", {}).get("reservations", {})
            assert service["build"]["args"]["TORCH_BUILD"] == ("cuda" if gpu else "cpu"), name


def test_compose_file_describes_the_stack() -> None:
    config = yaml.safe_load(COMPOSE_FILE.read_text())
    check_services(config)
    assert config["services"]["api"]["build"]["context"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "ARG TORCH_BUILD=cpu" in dockerfile
    assert "pip install --constraint constraints.txt '.[cluster]'" in dockerfile


def test_compose_config_validates() -> None:
    client = compose_client()
    if client is None:
        pytest.skip("no compose client: neither the `docker compose` plugin nor `docker-compose` is installed "
                    "(Debian: apt-get install docker-compose); `config` needs no Docker engine")
    done = subprocess.run([*client, "--file", str(COMPOSE_FILE), "--profile", "seed", "config"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    check_services(yaml.safe_load(done.stdout))

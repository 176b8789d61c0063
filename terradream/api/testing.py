"""Helpers for tests, benchmarks and scripts that run real servers: a free local port, and waiting for a URL to answer.

Kept in the package (like terradream.model.testing) so that tests/ and bench/ share one copy: bench code never imports
tests/.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, alive: Callable[[], bool] = lambda: True, timeout_s: float = 180.0,
                  accept: Callable[[int], bool] = lambda status: status == 200, poll_s: float = 0.1) -> None:
    """Poll GET url until its status passes `accept` (200 by default).

    Raises RuntimeError as soon as alive() is false (the server died while starting) and TimeoutError, with the last
    answer, once timeout_s has passed."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server behind {url} died while starting")
        try:
            response = httpx.get(url, timeout=2.0)
            if accept(response.status_code):
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(poll_s)
    raise TimeoutError(f"{url} not answering after {timeout_s:.0f} s: {last}")

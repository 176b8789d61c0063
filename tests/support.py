"""Helpers shared by test folders: free ports, real redis-server and `terradream serve` processes (imported as
`support`)."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from terradream.api.testing import free_port, wait_for_http


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


class RedisServer:
    """A real redis-server process on a private port; stop() and start() simulate outages."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (make setup / .ci/run installs it)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM a child (graceful shutdown), wait, and SIGKILL it if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def terradream_command() -> list[str]:
    """The installed `terradream` script next to this Python, else `python -m terradream.cli`."""
    script = Path(sys.executable).with_name("terradream")
    return [str(script)] if script.exists() else [sys.executable, "-m", "terradream.cli"]


class ServeSubprocess:
    """`terradream serve ARGS` as an operator runs it, on a private port of 127.0.0.1, its output in a log file."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        """Start it (not waiting: see wait_ok)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([*terradream_command(), "serve", "--port", str(self.port), *args],
                                     stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def wait_ok(self, path: str, timeout_s: float) -> None:
        """Poll GET path until 200; fail with the server's output (after stopping it) if it dies or never does."""
        try:
            wait_for_http(f"{self.url}{path}", alive=lambda: self.proc.poll() is None, timeout_s=timeout_s)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            pytest.fail(f"terradream serve (exit code {self.proc.returncode}): {exc}\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output (for failure messages)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM, wait (kill if it hangs) and close the log."""
        stop_process(self.proc)
        self._log.close()


NGINX_PREFIX_CONF = """\
{user}daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location {prefix}/ {{
            proxy_pass {upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""


class NginxPrefixProxy:
    """A real nginx (Debian's) on a private port that serves `upstream` under `prefix`, stripping the prefix before
    forwarding, as operators put terradream at https://host/terradream/. `url` is the proxied base URL."""

    def __init__(self, upstream: str, workdir: Path, prefix: str = "/terradream") -> None:
        """Write the configuration into workdir (logs and temp files stay there too)."""
        self.port = free_port()
        self.prefix = prefix
        self.url = f"http://127.0.0.1:{self.port}{prefix}"
        self.workdir = workdir
        user = "user root root;\n" if os.geteuid() == 0 else ""  # root: workers must not switch to a missing user
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(NGINX_PREFIX_CONF.format(user=user, workdir=workdir, port=self.port, prefix=prefix,
                                                      upstream=upstream.rstrip("/")))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start nginx and wait until it accepts connections; fail (not skip) when nginx is not installed."""
        binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
        if binary is None:
            pytest.fail("nginx is not installed (.ci/run installs Debian's nginx-light)")
        self.proc = subprocess.Popen([binary, "-p", str(self.workdir), "-c", str(self.conf), "-e",
                                      str(self.workdir / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            pytest.fail(f"nginx did not start: {self.error_log()}")

    def error_log(self) -> str:
        """nginx's error log (for failure messages)."""
        path = self.workdir / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop nginx (SIGTERM: fast shutdown) and wait."""
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class PrefixedServer:
    """`terradream serve --root-path PREFIX` behind an NginxPrefixProxy: `url` goes through the proxy (what clients
    use), `direct_url` straight to the server."""

    def __init__(self, server: ServeSubprocess, proxy: NginxPrefixProxy) -> None:
        self.server = server
        self.proxy = proxy
        self.url = proxy.url
        self.direct_url = server.url

    def stop(self) -> None:
        """Stop the proxy, then the server."""
        self.proxy.stop()
        self.server.stop()


@contextmanager
def small_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "4m") mounted on mount for a disk-full test, unmounted afterwards; skips the test where
    it cannot be mounted (mounting needs root)."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a disk-full test (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_disk(path: Path) -> None:
    """Write zeros to the file path until its file system is full (ENOSPC)."""
    with path.open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise

"""Start the real ``trapline`` command in a subprocess, for tests that need a live server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

TRAPLINE = str(Path(sys.executable).with_name("trapline"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def trapline_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAPLINE_")}
    env["TRAPLINE_DATA_DIR"] = str(data_dir)
    env.update(extra or {})
    return env


def run_trapline(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRAPLINE, *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    log_path: Path
    data_dir: Path

    def logs(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@contextmanager
def running_server(data_dir: Path, extra_env: Mapping[str, str] | None = None, *args: str) -> Iterator[Server]:
    port = free_port()
    log_path = data_dir.parent / f"server-{port}.log"
    env = trapline_env(data_dir, {"TRAPLINE_PORT": str(port), **(extra_env or {})})
    with log_path.open("w") as log:
        process = subprocess.Popen([TRAPLINE, "serve", *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    server = Server(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path, data_dir=data_dir)
    try:
        _wait_healthy(server)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.logs()}")
        try:
            if httpx.get(f"{server.url}/_health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not become healthy:\n{server.logs()}")

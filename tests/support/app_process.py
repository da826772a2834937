"""Run the real app (`python app.py`) in a child process on a free port, for HTTP/browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "admin-pass-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    engine: str = "embedded"
    ollama_host: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    command_prefix: list[str] = field(default_factory=list)  # e.g. setpriv dropping capabilities
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> AppProcess:
        env = (
            os.environ
            | {
                "HEARTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "PYTHONUNBUFFERED": "1",
                "GRADIO_ANALYTICS_ENABLED": "False",
            }
            | self.extra_env
        )
        command = [*self.command_prefix, sys.executable, str(ROOT / "app.py"),
                   "--port", str(self.port), "--data-dir", str(self.data_dir),
                   "--engine", self.engine]  # fmt: skip
        if self.ollama_host:
            command += ["--ollama-host", self.ollama_host]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"app-{self.port}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        # "Running on" prints before the server answers: poll until it does (401 = up, auth on).
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"app exited early:\n{self.log()}")
            try:
                urllib.request.urlopen(f"{self.url}/gradio_api/info", timeout=2)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"app did not answer within {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

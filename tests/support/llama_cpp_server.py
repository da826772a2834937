"""Run a REAL OpenAI-compatible server, llama-cpp-python's `python -m llama_cpp.server`, for tests.

It serves one GGUF under an alias on a free loopback port, with one thread (the CI box has two
cores). Its uvicorn access log is the record of which requests reached it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.app_process import free_port

CHAT_LOG_LINE = '"POST /v1/chat/completions HTTP/1.1"'


class LlamaCppServer:
    def __init__(
        self, model_path: Path, log_dir: Path, *, alias: str = "smollm2:135m", n_ctx: int = 2048
    ) -> None:
        self.model_path = model_path
        self.alias = alias
        self.n_ctx = n_ctx
        self.port = free_port()
        self.log_path = log_dir / f"llama-cpp-server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> LlamaCppServer:
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.alias,
            "--n_ctx", str(self.n_ctx),
            "--n_threads", "1",
            "--n_threads_batch", "1",
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip
        env = os.environ | {"PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"llama_cpp.server did not answer within {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def chat_requests_seen(self) -> int:
        """How many chat requests reached the server, by its access log."""
        return self.log().count(CHAT_LOG_LINE)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def __enter__(self) -> LlamaCppServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

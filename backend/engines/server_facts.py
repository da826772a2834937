"""What an OpenAI-compatible server and a DCGM exporter say about themselves, for engine cards.

Parsers are pure; `read_server_facts` and `read_dcgm_gpus` do the HTTP. Sources:
vLLM's `/version` and Prometheus `/metrics`; llama.cpp llama-server's `/health` (503 while
loading), `/props` and `/slots`; NVIDIA dcgm-exporter's `/metrics` (framebuffer in MiB per GPU).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from backend.engines.base import EngineError, EngineUnavailable
from backend.units import MIB

FACTS_TIMEOUT_S = 2.0
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_WAITING = "vllm:num_requests_waiting"
# vLLM's V1 engine renamed gpu_cache_usage_perc to kv_cache_usage_perc (a 0..1 fraction).
VLLM_KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
DCGM_FREE = "DCGM_FI_DEV_FB_FREE"
DCGM_USED = "DCGM_FI_DEV_FB_USED"


@dataclass(frozen=True)
class VllmLoad:
    requests_running: int
    requests_waiting: int
    kv_cache_usage: float | None  # fraction of the KV cache in use, 0..1


@dataclass(frozen=True)
class LlamaCppFacts:
    health: str  # "ok", "loading model", ... or "" when /health did not answer
    slots_total: int | None = None
    slots_busy: int | None = None
    context_per_slot: int | None = None
    model_path: str = ""
    build: str = ""


@dataclass(frozen=True)
class ServerFacts:
    """One look at a server; fields stay empty where the server has no such endpoint."""

    kind: str  # "vllm", "llama.cpp" or "openai" (nothing beyond the OpenAI API answered)
    version: str = ""
    vllm: VllmLoad | None = None
    llama_cpp: LlamaCppFacts | None = None

    def summary(self) -> str:
        """One line for an engine card."""
        if self.vllm is not None:
            load = self.vllm
            usage = "" if load.kv_cache_usage is None else f", KV cache {load.kv_cache_usage:.0%}"
            head = f"vLLM {self.version}".strip()
            return (
                f"{head}: {load.requests_running} running, {load.requests_waiting} waiting{usage}"
            )
        if self.llama_cpp is not None:
            facts = self.llama_cpp
            parts = [f"llama.cpp {facts.build}".strip(), f"health {facts.health or 'unknown'}"]
            if facts.slots_total is not None:
                parts.append(f"{facts.slots_busy or 0}/{facts.slots_total} slots busy")
            if facts.context_per_slot:
                parts.append(f"{facts.context_per_slot} tokens per slot")
            return ", ".join(parts)
        return "OpenAI-compatible server (no metrics endpoint)"


@dataclass(frozen=True)
class GpuMemory:
    """One GPU's framebuffer as a DCGM exporter reports it."""

    index: int
    uuid: str
    name: str
    free_bytes: int
    used_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.free_bytes + self.used_bytes


# -- parsers (pure) -------------------------------------------------------------------------


def metric_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> sample name -> [(labels, value)]; raises ValueError on bad text."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def parse_vllm_metrics(text: str) -> VllmLoad | None:
    """vLLM's gauges summed over its models; None when the text has no vLLM metrics."""
    samples = metric_samples(text)
    if VLLM_RUNNING not in samples and VLLM_WAITING not in samples:
        return None
    kv_name = next((name for name in VLLM_KV_USAGE if name in samples), None)
    kv_values = [value for _, value in samples[kv_name]] if kv_name else []
    return VllmLoad(
        requests_running=int(sum(v for _, v in samples.get(VLLM_RUNNING, []))),
        requests_waiting=int(sum(v for _, v in samples.get(VLLM_WAITING, []))),
        kv_cache_usage=max(kv_values) if kv_values else None,
    )


def parse_dcgm_metrics(text: str) -> list[GpuMemory]:
    """Per-GPU free and used framebuffer bytes from dcgm-exporter's MiB gauges, by GPU index."""
    samples = metric_samples(text)
    gpus: dict[str, dict[str, Any]] = {}
    for metric, field in ((DCGM_FREE, "free_bytes"), (DCGM_USED, "used_bytes")):
        for labels, value in samples.get(metric, []):
            key = labels.get("UUID") or labels.get("gpu", "")
            gpu = gpus.setdefault(key, {"labels": labels})
            gpu[field] = int(value * MIB)
    found: list[GpuMemory] = []
    for key, gpu in gpus.items():
        labels = gpu["labels"]
        if "free_bytes" not in gpu or "used_bytes" not in gpu:
            continue  # half a GPU is no fact to place a model by
        found.append(
            GpuMemory(
                index=_to_int(labels.get("gpu"), default=len(found)),
                uuid=labels.get("UUID", key),
                name=labels.get("modelName", ""),
                free_bytes=gpu["free_bytes"],
                used_bytes=gpu["used_bytes"],
            )
        )
    return sorted(found, key=lambda g: g.index)


def parse_llama_cpp(
    health: Mapping[str, Any] | None,
    props: Mapping[str, Any] | None,
    slots: Iterable[Any] | None,
) -> LlamaCppFacts:
    """llama-server's /health, /props and /slots bodies (each None when it did not answer)."""
    settings = props.get("default_generation_settings") if props else None
    settings = settings if isinstance(settings, Mapping) else {}
    slot_list = [s for s in slots or [] if isinstance(s, Mapping)]
    busy = sum(1 for s in slot_list if s.get("is_processing") or s.get("state", 0) != 0)
    context = _to_int(settings.get("n_ctx"), default=0) or _to_int(
        slot_list[0].get("n_ctx") if slot_list else None, default=0
    )
    total_slots = _to_int(props.get("total_slots"), default=0) if props else 0
    return LlamaCppFacts(
        health=_health_text(health),
        slots_total=total_slots or (len(slot_list) if slots is not None else None),
        slots_busy=busy if slots is not None else None,
        context_per_slot=context or None,
        model_path=str(props.get("model_path", "")) if props else "",
        build=str(props.get("build_info", "")) if props else "",
    )


def _health_text(health: Mapping[str, Any] | None) -> str:
    if health is None:
        return ""
    error = health.get("error")
    if isinstance(error, Mapping):
        return str(error.get("message") or "error").lower()
    return str(health.get("status") or "").lower()


def _to_int(value: Any, *, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# -- HTTP -----------------------------------------------------------------------------------


def read_server_facts(client: httpx.Client) -> ServerFacts:
    """Ask every endpoint a server may have; never raises (a missing endpoint is a missing fact).

    None of these paths takes llama-cpp-python's model lock, so a look never interrupts a reply.
    """
    version = _json(client, "/version")
    metrics = _text(client, "/metrics")
    try:
        vllm = parse_vllm_metrics(metrics) if metrics else None
    except ValueError:
        vllm = None
    version_text = str(version.get("version", "")) if isinstance(version, Mapping) else ""
    if vllm is not None:
        return ServerFacts("vllm", version_text, vllm=vllm)
    props = _json(client, "/props")
    if not isinstance(props, Mapping) or "default_generation_settings" not in props:
        return ServerFacts("openai", version_text)
    health = _json(client, "/health", accept_status=(200, 503))
    slots = _json(client, "/slots")
    return ServerFacts(
        "llama.cpp",
        version_text,
        llama_cpp=parse_llama_cpp(
            health if isinstance(health, Mapping) else None,
            props,
            slots if isinstance(slots, list) else None,
        ),
    )


def read_dcgm_gpus(url: str, *, timeout_s: float = FACTS_TIMEOUT_S) -> list[GpuMemory]:
    """GET a dcgm-exporter's /metrics (url is its root or its /metrics address)."""
    address = url.rstrip("/")
    address = address if address.endswith("/metrics") else f"{address}/metrics"
    try:
        response = httpx.get(address, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise EngineUnavailable(f"The DCGM exporter at {address} is not reachable: {exc}") from exc
    if response.status_code != 200:
        raise EngineError(f"The DCGM exporter at {address} answered HTTP {response.status_code}.")
    try:
        gpus = parse_dcgm_metrics(response.text)
    except ValueError as exc:
        raise EngineError(f"The DCGM exporter at {address} sent unreadable metrics: {exc}") from exc
    if not gpus:
        raise EngineError(
            f"The DCGM exporter at {address} reports no {DCGM_FREE}/{DCGM_USED} per GPU."
        )
    return gpus


def _text(client: httpx.Client, path: str) -> str | None:
    try:
        response = client.get(path, timeout=FACTS_TIMEOUT_S)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def _json(client: httpx.Client, path: str, accept_status: tuple[int, ...] = (200,)) -> Any:
    try:
        response = client.get(path, timeout=FACTS_TIMEOUT_S)
        return response.json() if response.status_code in accept_status else None
    except (httpx.HTTPError, ValueError):
        return None

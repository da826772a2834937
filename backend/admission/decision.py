"""Admission control: admit, warn about or refuse a model load before the engine tries it.

Pure decisions over numbers: the memory estimate of (model, quant, num_ctx, KV type), what the
machine has free now (NVML's free VRAM already counts every process, Ollama's runners and
others alike), the models the engine holds (Ollama unloads idle ones to make room for a new
one), and the reservations of loads still in flight. Policies follow LM Studio's guardrails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from backend.admission.reasons import free_line, need_line, placement_line, usage_lines
from backend.admission.settings import (
    NO_LEARNED_MARGIN,
    AdmissionError,
    AdmissionSettings,
    LearnedMargin,
    Policy,
)
from backend.admission.types import (
    AdmissionVerdict,
    Budget,
    Decision,
    LoadRequest,
    Machine,
    Reservation,
    Suggestion,
)
from backend.engines.base import LoadedModel, ModelSpec, same_model
from backend.estimate.memory import (
    MemoryEstimate,
    Placement,
    decode_speed_bound,
    estimate_memory,
    place,
    weights_bytes_for,
)
from backend.units import format_size

if TYPE_CHECKING:
    pass

_RANK: dict[AdmissionVerdict, int] = {"refuse": 0, "warn": 1, "admit": 2}
MIN_SUGGESTED_CTX = 512


@dataclass(frozen=True)
class _Judged:
    placement: Placement
    verdict: AdmissionVerdict
    note: str
    speed: float | None


def _estimate(request: LoadRequest, num_ctx: int) -> MemoryEstimate:
    return estimate_memory(
        request.spec,
        num_ctx=num_ctx,
        kv_cache_type=request.kv_cache_type,
        flash_attention=request.uses_flash_attention,
        parallel=request.parallel,
    )


def _speed(spec: ModelSpec, est: MemoryEstimate, at: Placement, machine: Machine) -> float | None:
    gpu, ram = machine.gpu_bandwidth_gbps, machine.ram_bandwidth_gbps
    if at.verdict == "will not fit" or (at.gpu_layers and not gpu):
        return None
    return decode_speed_bound(spec, est, at, gpu_bandwidth_gbps=gpu, ram_bandwidth_gbps=ram)


def _judge_gpu_only(
    spec: ModelSpec, estimate: MemoryEstimate, vram: int, machine: Machine, policy: Policy
) -> _Judged:
    """Another host, whose RAM Hearth does not know: only a full GPU offload is placed there
    (its host part, the token embedding and the runtime, is assumed to find room)."""
    placement = place(spec, estimate, vram, 2 * estimate.total_bytes)  # any host part fits
    speed = _speed(spec, estimate, placement, machine)
    if placement.verdict == "full GPU offload":
        note = (
            "It fits entirely in GPU memory (this host's RAM is not known: its host part of "
            f"{format_size(placement.ram_bytes)} is assumed to find room)."
        )
        return _Judged(placement, "admit", note, speed)
    where = f"{placement.gpu_layers}/{placement.total_layers} layers on the GPU"
    note = (
        "This host's RAM is not known (Hearth reads only the GPU facts of another host), so only "
        f"a load that fits entirely in its GPU memory is placed there; this one would put {where}."
    )
    return _Judged(placement, "warn" if policy == "off" else "refuse", note, speed)


def _judge(
    spec: ModelSpec, estimate: MemoryEstimate, vram: int, ram: int, machine: Machine, policy: Policy
) -> _Judged:
    if not machine.ram_known:
        return _judge_gpu_only(spec, estimate, vram, machine, policy)
    placement = place(spec, estimate, vram, ram)
    speed = _speed(spec, estimate, placement, machine)
    pace = f"expect at most {speed:.1f} tokens/s" if speed else "expect a slow reply"
    where = (
        f"{format_size(placement.ram_bytes)} of it in RAM, "
        f"{placement.gpu_layers}/{placement.total_layers} layers on the GPU"
    )
    fits = placement.verdict != "will not fit"
    if policy == "off":
        note = "Guardrails are off: the engine gets the load whatever the estimate says."
        return _Judged(placement, "admit" if fits else "warn", note, speed)
    if placement.verdict == "full GPU offload":
        return _Judged(placement, "admit", "It fits entirely in GPU memory.", speed)
    if policy == "strict":
        note = f"Policy strict loads only what fits entirely in GPU memory; this would put {where}."
        return _Judged(placement, "refuse", note, speed)
    if fits:
        verdict: AdmissionVerdict = "warn" if policy == "balanced" else "admit"
        what = "runs on the CPU only" if placement.verdict == "CPU only" else "is partly offloaded"
        return _Judged(placement, verdict, f"It {what} ({where}): {pace}.", speed)
    if policy == "relaxed" and estimate.total_bytes <= vram + ram:
        note = (
            f"GPU memory and RAM together ({format_size(vram + ram)}) hold its "
            f"{format_size(estimate.total_bytes)}, but not layer by layer: it may fail to load."
        )
        return _Judged(placement, "warn", note, speed)
    note = (
        f"It does not fit: the layers the GPU cannot hold need {format_size(placement.ram_bytes)}"
        f" of RAM and {format_size(ram)} is available."
    )
    return _Judged(placement, "refuse", note, speed)


def _budget(
    machine: Machine,
    settings: AdmissionSettings,
    reserved: Sequence[Reservation],
    freed: Sequence[LoadedModel],
    learned: LearnedMargin = NO_LEARNED_MARGIN,
) -> Budget:
    reserved_vram = sum(r.vram_bytes for r in reserved)
    reserved_ram = sum(r.ram_bytes for r in reserved)
    margin_vram = settings.margin_bytes(machine.total_vram_bytes)
    margin_ram = settings.margin_bytes(machine.total_ram_bytes)
    if settings.policy != "off":  # loads measured above their estimate: keep that much more free
        if machine.has_gpu:
            margin_vram += learned.bytes
        else:
            margin_ram += learned.bytes
    vram = machine.free_vram_bytes + sum(m.vram_bytes for m in freed)
    ram = machine.free_ram_bytes + sum(m.ram_bytes for m in freed)
    return Budget(
        vram=max(vram - reserved_vram - margin_vram, 0) if machine.has_gpu else 0,
        ram=max(ram - reserved_ram - margin_ram, 0),
        reserved_vram=reserved_vram,
        reserved_ram=reserved_ram,
        margin_vram=margin_vram if machine.has_gpu else 0,
        margin_ram=margin_ram,
        learned=learned if settings.policy != "off" else NO_LEARNED_MARGIN,
    )


def decide(
    request: LoadRequest,
    machine: Machine,
    loaded: Sequence[LoadedModel],
    reserved: Sequence[Reservation],
    settings: AdmissionSettings,
    *,
    suggest: bool = True,
    learned: LearnedMargin = NO_LEARNED_MARGIN,
) -> Decision:
    """The admission decision for one load request; `learned` widens the safety margin by what
    measured loads ran above their estimates."""
    spec, kv, policy = request.spec, request.kv_cache_type, settings.policy
    if request.num_ctx < 1:
        raise AdmissionError(f"Context length must be positive, got {request.num_ctx}")
    ctx = min(request.num_ctx, spec.context_length) if spec.context_length else request.num_ctx
    estimate = _estimate(request, ctx)
    reasons: list[str] = []
    if ctx < request.num_ctx:
        reasons.append(
            f"num_ctx {request.num_ctx} is capped at the model's trained context of {ctx} "
            "(Ollama does the same)."
        )
    same = [m for m in loaded if same_model(m.name, request.model)]
    others = sorted((m for m in loaded if m not in same), key=lambda m: m.expires_at or "~")
    base = _budget(machine, settings, reserved, same, learned)
    if same and same[0].context_length in (None, ctx):
        return _already_loaded(request, same[0], estimate, ctx, policy, base)
    if machine.unknown:
        return _unknown_host(request, estimate, ctx, policy, [*reasons, machine.unknown])
    judged = _judge(spec, estimate, base.vram, base.ram, machine, policy)
    budget = base
    evicts: tuple[str, ...] = ()
    if judged.verdict != "admit" and others:
        # Ollama unloads idle models, least recently used first, until the new one fits.
        for count in range(1, len(others) + 1):
            trial = _budget(machine, settings, reserved, [*same, *others[:count]], learned)
            better = _judge(spec, estimate, trial.vram, trial.ram, machine, policy)
            if _RANK[better.verdict] > _RANK[judged.verdict]:
                judged, budget, evicts = better, trial, tuple(m.name for m in others[:count])
                if better.verdict == "admit":
                    break
    verdict = judged.verdict
    reasons += [need_line(request, estimate, ctx), free_line(machine, budget, reserved)]
    reasons.append(judged.note)
    reasons.append(placement_line(judged.placement))
    reasons += _reload_notes(request.model, same, evicts)
    verdict = "warn" if evicts and verdict == "admit" else verdict
    if verdict != "admit":
        reasons += usage_lines(machine, loaded)
    decision = Decision(
        request.model, verdict, policy, ctx, kv, estimate, judged.placement, judged.speed,
        budget.vram, budget.ram, tuple(reasons), evicts=evicts, summary=judged.note,
    )  # fmt: skip
    if suggest and verdict != "admit":
        found = suggestions(request, machine, loaded, reserved, settings, verdict, learned)
        if not found and verdict == "refuse":
            reasons.append(_nothing_smaller(request))
        decision = replace(decision, reasons=tuple(reasons), suggestions=found)
    return decision


def _reload_notes(model: str, same: Sequence[LoadedModel], evicts: tuple[str, ...]) -> list[str]:
    """What the engine would unload first: this model at another context, idle models."""
    notes: list[str] = []
    if same:
        notes.append(
            f"{model} is loaded at num_ctx {same[0].context_length}: the engine reloads "
            f"it, freeing its {format_size(same[0].size_bytes)} first."
        )
    if evicts:
        notes.append(
            f"To make room Ollama would unload {', '.join(evicts)} (it unloads idle models only;"
            " a model still answering makes the load wait, and its next chat reloads it)."
        )
    return notes


def _already_loaded(
    request: LoadRequest,
    same: LoadedModel,
    estimate: MemoryEstimate,
    ctx: int,
    policy: Policy,
    base: Budget,
) -> Decision:
    """Admit a model the engine holds at this context already: its memory is in use."""
    blocks = estimate.block_count + 1
    placement = Placement(
        blocks, blocks, same.vram_bytes, same.ram_bytes,
        "full GPU offload" if not same.ram_bytes else "partial offload",
    )  # fmt: skip
    note = f"{request.model} is already loaded ({format_size(same.size_bytes)})."
    return Decision(
        request.model, "admit", policy, ctx, request.kv_cache_type, estimate, placement, None,
        base.vram, base.ram, (note,), already_loaded=True,
    )  # fmt: skip


def _unknown_host(
    request: LoadRequest, estimate: MemoryEstimate, ctx: int, policy: Policy, reasons: list[str]
) -> Decision:
    """A host whose GPU memory is not known: no numbers to admit by (policy off only warns)."""
    placement = place(request.spec, estimate, 0, 0)
    verdict: AdmissionVerdict = "warn" if policy == "off" else "refuse"
    reasons = [*reasons, need_line(request, estimate, ctx)]
    return Decision(
        request.model, verdict, policy, ctx, request.kv_cache_type, estimate, placement, None,
        0, 0, tuple(reasons),
    )  # fmt: skip


def _nothing_smaller(request: LoadRequest) -> str:
    smallest = min((request.spec, *request.alternatives), key=weights_bytes_for)
    return (
        "Nothing smaller would fit either: the smallest quantization, "
        f"{smallest.name} ({format_size(weights_bytes_for(smallest))} of weights), "
        "a shorter context and a q8_0 KV cache all fall short."
    )


def suggestions(
    request: LoadRequest,
    machine: Machine,
    loaded: Sequence[LoadedModel],
    reserved: Sequence[Reservation],
    settings: AdmissionSettings,
    verdict: AdmissionVerdict,
    learned: LearnedMargin = NO_LEARNED_MARGIN,
) -> tuple[Suggestion, ...]:
    """What would do better than `verdict`: a smaller quant, a shorter context, a q8_0 KV cache,
    unloading a model; each the largest/first that does, with its own estimate."""

    def trial(req: LoadRequest, label: str, gone: Sequence[LoadedModel] = ()) -> Suggestion | None:
        still = [m for m in loaded if m not in gone]
        freed = replace(
            machine,
            free_vram_bytes=machine.free_vram_bytes + sum(m.vram_bytes for m in gone),
            free_ram_bytes=machine.free_ram_bytes + sum(m.ram_bytes for m in gone),
        )
        result = decide(req, freed, still, reserved, settings, suggest=False, learned=learned)
        if _RANK[result.verdict] <= _RANK[verdict]:
            return None
        return Suggestion(
            label, result.verdict, result.placement.verdict, result.estimate.total_bytes,
            result.placement.vram_bytes, result.placement.ram_bytes, req.model, result.num_ctx,
            req.kv_cache_type, tuple(m.name for m in gone),
        )  # fmt: skip

    found: list[Suggestion] = []
    current = weights_bytes_for(request.spec)
    smaller = [s for s in request.alternatives if weights_bytes_for(s) < current]
    smaller.sort(key=lambda s: -weights_bytes_for(s))
    for alt in smaller:
        label = f"{alt.name} ({alt.quantization} instead of {request.spec.quantization or '?'})"
        if hit := trial(replace(request, model=alt.name, spec=alt), label):
            found.append(hit)
            break
    asked = min(request.num_ctx, request.spec.context_length or request.num_ctx)
    ctx = asked // 2
    while ctx >= MIN_SUGGESTED_CTX:
        if hit := trial(replace(request, num_ctx=ctx), f"num_ctx {ctx} instead of {asked}"):
            found.append(hit)
            break
        ctx //= 2
    if request.kv_cache_type == "f16":
        label = "a q8_0 KV cache (OLLAMA_KV_CACHE_TYPE=q8_0 with OLLAMA_FLASH_ATTENTION=1)"
        if hit := trial(replace(request, kv_cache_type="q8_0"), label):
            found.append(hit)
    others = [m for m in loaded if not same_model(m.name, request.model)]
    singles = [trial(request, f"unload {m.name} first", [m]) for m in others]
    found += [s for s in singles if s is not None]
    if len(others) > 1 and not any(singles):
        names = ", ".join(m.name for m in others)
        if hit := trial(request, f"unload {names} first", others):
            found.append(hit)
    return tuple(found)

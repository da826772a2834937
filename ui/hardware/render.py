"""The Hardware tab's HTML: one card per GPU, CPU, memory, disk and engine; the readiness
checklist; what the box can run. Pure functions of values; the styles are in ui/hardware.css."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from backend.units import format_bytes as _size
from ui.common import format_expiry
from ui.tables import Html, html_table

if TYPE_CHECKING:
    from backend.estimate.catalog import FitRow
    from backend.hardware.monitor import CpuInfo, DiskInfo, GpuInfo, HardwareSnapshot, MemoryInfo
    from backend.hardware.readiness import Check
    from backend.services import EngineCard, EngineStatus, LoadedModel

TABLE = "hh-table"
# The seed's reference models: what people ask about first when they get a box.
REFERENCE_MODELS = ("llama3:8b", "mistral:7b", "gemma:2b", "llama3:70b")
REFERENCE_QUANT = "Q4_K_M"
REFERENCE_CTX = 4096
_VERDICT_BADGES = {"full GPU offload": "full", "partial offload": "partial",
                   "CPU only": "cpu", "will not fit": "none"}  # fmt: skip


def error_html(text: str) -> str:
    return f'<p class="hh-error">{escape(text)}</p>'


def _num(value: float | None, unit: str, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f} {unit}"


def _bar(used: int | float | None, total: int | float | None) -> str:
    pct = min(max(100.0 * used / total, 0.0), 100.0) if used and total else 0.0
    return f'<div class="hh-bar"><div style="width:{pct:.1f}%"></div></div>'


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<span>{escape(k)}</span><span>{escape(v)}</span>" for k, v in rows)
    return f'<div class="hh-kv">{cells}</div>'


def _card(title: str, body: str, sub: str = "", *, wide: bool = False) -> str:
    """A card of the grid; a wide one (an engine's, with its table of models) takes two."""
    sub_html = f'<div class="hh-sub">{escape(sub)}</div>' if sub else ""
    css = "hh-card hh-wide" if wide else "hh-card"
    return f'<div class="{css}"><h3>{escape(title)}</h3>{sub_html}{body}</div>'


def gpu_card(gpu: GpuInfo, snapshot: HardwareSnapshot) -> str:
    bandwidth = gpu.peak_memory_bandwidth_gbps
    bus = (
        f" ({gpu.memory_bus_width_bits} bit x {gpu.max_memory_clock_mhz} MHz)"
        if bandwidth is not None
        else ""
    )
    rows = [
        ("Memory", f"{_size(gpu.vram_used_bytes)} used of {_size(gpu.vram_total_bytes)}"),
        ("Free", _size(gpu.vram_free_bytes)),
        ("GPU busy", _num(gpu.gpu_util_pct, "%")),
        ("Memory busy", _num(gpu.memory_util_pct, "%")),
        ("Temperature", _num(gpu.temperature_c, "°C")),
        ("Power", f"{_num(gpu.power_draw_w, 'W')} of {_num(gpu.power_limit_w, 'W')}"),
        ("Peak bandwidth", _num(bandwidth, "GB/s") + bus),
    ]
    body = _bar(gpu.vram_used_bytes, gpu.vram_total_bytes) + _kv(rows)
    if gpu.processes:
        procs = [
            (str(p.pid), p.name or "(not visible)", _size(p.used_vram_bytes)) for p in gpu.processes
        ]
        body += "<h4>Processes</h4>" + html_table(
            ("PID", "Process", "GPU memory"), procs, css_class=TABLE
        )
    else:
        body += '<p class="hh-sub">No processes are using this GPU.</p>'
    if gpu.errors:
        body += error_html(f"Not reported: {'; '.join(gpu.errors)}")
    driver = f"driver {snapshot.driver_version}, CUDA {snapshot.cuda_driver_version}"
    return _card(f"GPU {gpu.index} · {gpu.name or 'unknown'}", body, f"{gpu.uuid} · {driver}")


def no_gpu_card(snapshot: HardwareSnapshot) -> str:
    body = f"<p>{escape(snapshot.nvml_reason or 'NVML reported no GPU.')}</p>"
    body += '<p class="hh-sub">Models run on the CPU, which is much slower.</p>'
    return _card("No NVIDIA GPU", body)


def cpu_card(cpu: CpuInfo, snapshot: HardwareSnapshot) -> str:
    cores = f"{cpu.physical_cores or '?'} cores, {cpu.logical_cores} threads"
    freq = _num(cpu.frequency_mhz, "MHz")
    if cpu.max_frequency_mhz:
        freq += f" (max {cpu.max_frequency_mhz:.0f} MHz)"
    per_core = " ".join(f"{pct:.0f}" for pct in cpu.load_per_core_pct)
    rows = [
        ("Cores", cores),
        ("Frequency", freq),
        ("Load", f"{cpu.load_pct:.0f} %"),
        ("Per core %", per_core),
        ("OS", snapshot.os.name),
        ("Kernel", snapshot.os.kernel),
    ]
    return _card(f"CPU · {cpu.model}", _bar(cpu.load_pct, 100) + _kv(rows))


def memory_card(memory: MemoryInfo) -> str:
    rows = [
        ("Used", f"{_size(memory.used_bytes)} of {_size(memory.total_bytes)}"),
        ("Available", _size(memory.available_bytes)),
        ("Swap", f"{_size(memory.swap_used_bytes)} used of {_size(memory.swap_total_bytes)}"),
    ]
    return _card("Memory", _bar(memory.used_bytes, memory.total_bytes) + _kv(rows))


def disk_card(disks: Sequence[DiskInfo]) -> str:
    body = ""
    for disk in disks:
        title = f"{disk.label.capitalize()}: {disk.path or 'not on this machine'}"
        body += f"<h4>{escape(title)}</h4>"
        if disk.error:
            body += error_html(disk.error)
            continue
        rows = [
            ("Free", f"{_size(disk.free_bytes)} of {_size(disk.total_bytes)}"),
            ("Mounted at", disk.mount_point),
        ]
        body += _bar(disk.used_bytes, disk.total_bytes) + _kv(rows)
    return _card("Disk", body)


def engine_card(status: EngineStatus | str, loaded: Sequence[LoadedModel] | str) -> str:
    """status or loaded is a readable error sentence where the engine could not be asked."""
    if isinstance(status, str):
        body, title = error_html(status), "Engine"
    else:
        state = "reachable" if status.reachable else "not reachable"
        version = f" {status.version}" if status.version else ""
        title = f"Engine · {status.name}{version} ({state})"
        body = f"<p>{escape(status.detail)}</p>"
    if isinstance(loaded, str):
        body += error_html(loaded)
    elif loaded:
        rows = [
            (m.name, _size(m.size_bytes), _on_gpu(m), str(m.context_length or "?"),
             format_expiry(m.expires_at))
            for m in loaded
        ]  # fmt: skip
        headers = ("Loaded model", "Size", "On GPU", "Context", "Expires")
        body += html_table(headers, rows, css_class=TABLE)
    else:
        body += '<p class="hh-sub">No model is loaded.</p>'
    return _card(title, body, wide=True)


def local_gpus(snapshot: HardwareSnapshot | None) -> str:
    """This box's GPUs in one line, for an engine whose GPU facts are "local"."""
    gpus = snapshot.gpus if snapshot is not None else ()
    parts = [
        f"GPU {g.index} {g.name}: {_size(g.vram_free_bytes)} free of {_size(g.vram_total_bytes)}"
        for g in gpus
    ]
    return "; ".join(parts) + " (this machine's NVML)" if parts else "this machine: no GPU seen"


def pool_engine_card(card: EngineCard, snapshot: HardwareSnapshot | None = None) -> str:
    """One engine of a pool: up or down, kind, version, server facts, GPU facts, loaded models."""
    state = "up" if card.up else "down"
    version = f" {card.version}" if card.version else ""
    title = f"Engine {card.name} · {card.kind}{version} ({state})"
    manage = "pull, load, unload, delete" if card.can_manage_models else "chat only"
    rows = [
        ("Address", card.url),
        ("Models", f"{card.installed_count} listed; {manage}"),
        ("Chats now", str(card.chats_in_flight)),
        ("GPU facts", local_gpus(snapshot) if card.gpu_source == "local" else card.gpu_facts),
    ]
    if card.api_key_set:
        rows.append(("API key", "set (not shown)"))
    if card.server_facts:
        rows.append(("Server", card.server_facts))
    body = f'<p class="{"hh-sub" if card.up else "hh-error"}">{escape(card.detail)}</p>'
    body += _kv(rows)
    if card.loaded:
        loaded = [(m.name, _size(m.size_bytes), _on_gpu(m), str(m.context_length or "?"))
                  for m in card.loaded]  # fmt: skip
        body += html_table(("Loaded model", "Size", "On GPU", "Context"), loaded, css_class=TABLE)
    elif card.up:
        body += '<p class="hh-sub">No model is loaded.</p>'
    return _card(title, body, wide=True)


def pool_engine_cards(cards: Sequence[EngineCard], snapshot: HardwareSnapshot | None = None) -> str:
    """Every configured engine's card."""
    return "".join(pool_engine_card(card, snapshot) for card in cards)


def _on_gpu(model: LoadedModel) -> str:
    if model.vram_bytes <= 0:
        return "none (runs on CPU)"
    if model.vram_bytes < model.size_bytes:
        return f"{_size(model.vram_bytes)} (rest on CPU)"
    return _size(model.vram_bytes)


def render_cards(
    snapshot: HardwareSnapshot,
    status: EngineStatus | str,
    loaded: Sequence[LoadedModel] | str,
    sampler_error: str = "",
    engines: Sequence[EngineCard] | None = None,
) -> str:
    """Every card in a grid, and when the snapshot was taken (and a sampler error, if any).

    With a pool (`engines`), one card per configured engine replaces the single engine card."""
    cards = [gpu_card(g, snapshot) for g in snapshot.gpus] or [no_gpu_card(snapshot)]
    cards += [cpu_card(snapshot.cpu, snapshot), memory_card(snapshot.memory)]
    cards.append(disk_card(snapshot.disks))
    cards.append(pool_engine_cards(engines, snapshot) if engines else engine_card(status, loaded))
    when = snapshot.taken_at.astimezone().strftime("%H:%M:%S")
    note = f' · <span class="hh-error">{escape(sampler_error)}</span>' if sampler_error else ""
    footer = f'<p class="hh-sub">Updated {escape(when)}{note}</p>'
    return f'<div class="hh-grid">{"".join(cards)}</div>{footer}'


def render_readiness(checks: Sequence[Check]) -> str:
    rows = [
        (Html(f'<span class="badge {escape(c.status)}">{escape(c.status.upper())}</span>'),
         c.name, c.measured, c.requirement)
        for c in checks
    ]  # fmt: skip
    table = html_table(("", "Check", "This machine", "Needed"), rows, css_class=TABLE)
    return f"<h3>Ready for local inference?</h3>{table}"


def capacity_rows(fits: Sequence[FitRow]) -> list[tuple[object, ...]]:
    """The reference models at the reference quantization, one row each."""
    rows: list[tuple[object, ...]] = []
    for fit in fits:
        if fit.quant != REFERENCE_QUANT:
            continue
        badge = _VERDICT_BADGES.get(fit.verdict, "none")
        speed = f"up to {fit.tokens_per_s_bound:.0f} tok/s" if fit.tokens_per_s_bound else "–"
        rows.append(
            (
                f"{fit.display_name} ({fit.quant})",
                _size(fit.total_bytes),
                Html(f'<span class="badge {badge}">{escape(fit.verdict)}</span>'),
                f"{fit.gpu_layers}/{fit.total_layers} layers",
                speed,
            )
        )
    return rows


def render_capacity(rows: Sequence[Sequence[object]]) -> str:
    """What this box can run (rows from capacity_rows); nothing when there are none."""
    if not rows:
        return ""
    headers = ("Model", "Needs", "Fits", "On GPU", "Decode speed")
    note = (
        f"<p class='hh-sub'>At {REFERENCE_QUANT}, {REFERENCE_CTX} tokens of context, "
        "against the memory free now. The Models tab has every model and quantization.</p>"
    )
    return f"<h3>What this box can run</h3>{note}{html_table(headers, rows, css_class=TABLE)}"

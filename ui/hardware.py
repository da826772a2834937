"""The Hardware tab: what the box has, what it is doing, whether it is fit for local inference."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any, TypeVar

import gradio as gr
import pandas as pd

from backend.auth.accounts import PermissionDenied
from backend.hardware.monitor import (
    CpuInfo,
    DiskInfo,
    GpuInfo,
    HardwareSnapshot,
    MemoryInfo,
    Sample,
)
from backend.hardware.readiness import Check, readiness
from backend.services import EngineStatus, LoadedModel
from backend.units import format_bytes as _size
from ui.common import acting_user, format_expiry, guarded

T = TypeVar("T")
log = logging.getLogger(__name__)

CARDS_ID = "hearth-hardware-cards"
# Runs in the browser before each tick: is the Hardware tab on screen? (Gradio does not render
# the contents of hidden tabs.) Its result replaces the tick's input.
_SHOWN_JS = (
    f"() => {{ const el = document.getElementById('{CARDS_ID}');"
    " return [!!el && el.offsetParent !== null]; }"
)
_STYLE = """<style>
.hh-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.hh-card{border:1px solid var(--border-color-primary);border-radius:8px;padding:12px;
 background:var(--block-background-fill)}
.hh-card h3{margin:0 0 8px;font-size:1.05em}
.hh-sub{color:var(--body-text-color-subdued);font-size:.85em}
.hh-kv{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;font-size:.92em}
.hh-bar{height:8px;border-radius:4px;background:var(--border-color-primary);margin:4px 0 8px}
.hh-bar>div{height:100%;border-radius:4px;background:var(--color-accent)}
table.hh-table{width:100%;border-collapse:collapse;font-size:.9em}
.hh-table.hh-table td,.hh-table.hh-table th{border:0;text-align:left;padding:4px 8px;
 border-bottom:1px solid var(--border-color-primary)}
.hh-error.hh-error{color:#dc2626}
</style>"""


def _num(value: float | None, unit: str, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f} {unit}"


def _bar(used: int | float | None, total: int | float | None) -> str:
    pct = min(max(100.0 * used / total, 0.0), 100.0) if used and total else 0.0
    return f'<div class="hh-bar"><div style="width:{pct:.1f}%"></div></div>'


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<span>{escape(k)}</span><span>{escape(v)}</span>" for k, v in rows)
    return f'<div class="hh-kv">{cells}</div>'


def _card(title: str, body: str, sub: str = "") -> str:
    sub_html = f'<div class="hh-sub">{escape(sub)}</div>' if sub else ""
    return f'<div class="hh-card"><h3>{escape(title)}</h3>{sub_html}{body}</div>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="hh-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def gpu_card(gpu: GpuInfo, snapshot: HardwareSnapshot) -> str:
    bandwidth = gpu.peak_memory_bandwidth_gbps
    bus = (
        f" ({gpu.memory_bus_width_bits} bit x {gpu.max_memory_clock_mhz} MHz)"
        if bandwidth is not None
        else ""
    )
    power = f"{_num(gpu.power_draw_w, 'W')} of {_num(gpu.power_limit_w, 'W')}"
    rows = [
        (
            "Memory",
            f"{_size(gpu.vram_used_bytes)} used of {_size(gpu.vram_total_bytes)}",
        ),
        ("Free", _size(gpu.vram_free_bytes)),
        ("GPU busy", _num(gpu.gpu_util_pct, "%")),
        ("Memory busy", _num(gpu.memory_util_pct, "%")),
        ("Temperature", _num(gpu.temperature_c, "°C")),
        ("Power", power),
        ("Peak bandwidth", _num(bandwidth, "GB/s") + bus),
    ]
    body = _bar(gpu.vram_used_bytes, gpu.vram_total_bytes) + _kv(rows)
    if gpu.processes:
        procs = [
            (str(p.pid), p.name or "(not visible)", _size(p.used_vram_bytes)) for p in gpu.processes
        ]
        body += "<h4>Processes</h4>" + _table(("PID", "Process", "GPU memory"), procs)
    else:
        body += '<p class="hh-sub">No processes are using this GPU.</p>'
    if gpu.errors:
        body += f'<p class="hh-error">Not reported: {escape("; ".join(gpu.errors))}</p>'
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
        (
            "Swap",
            f"{_size(memory.swap_used_bytes)} used of {_size(memory.swap_total_bytes)}",
        ),
    ]
    return _card("Memory", _bar(memory.used_bytes, memory.total_bytes) + _kv(rows))


def disk_card(disks: Sequence[DiskInfo]) -> str:
    body = ""
    for disk in disks:
        title = f"{disk.label.capitalize()}: {disk.path or 'not on this machine'}"
        body += f"<h4>{escape(title)}</h4>"
        if disk.error:
            body += f'<p class="hh-error">{escape(disk.error)}</p>'
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
        body = f'<p class="hh-error">{escape(status)}</p>'
        title = "Engine"
    else:
        state = "reachable" if status.reachable else "not reachable"
        version = f" {status.version}" if status.version else ""
        title = f"Engine · {status.name}{version} ({state})"
        body = f"<p>{escape(status.detail)}</p>"
    if isinstance(loaded, str):
        body += f'<p class="hh-error">{escape(loaded)}</p>'
    elif loaded:
        rows = [
            (
                m.name,
                _size(m.size_bytes),
                _on_gpu(m),
                str(m.context_length or "?"),
                format_expiry(m.expires_at),
            )
            for m in loaded
        ]
        body += _table(("Loaded model", "Size", "On GPU", "Context", "Expires"), rows)
    else:
        body += '<p class="hh-sub">No model is loaded.</p>'
    return _card(title, body)


def _on_gpu(model: LoadedModel) -> str:
    if model.vram_bytes <= 0:
        return "none (runs on CPU)"
    if model.vram_bytes < model.size_bytes:
        return f"{_size(model.vram_bytes)} (rest on CPU)"
    return _size(model.vram_bytes)


def _ask(what: str, fn: Callable[[], T]) -> T | str:
    try:
        return fn()
    except Exception as exc:  # an engine down must not break the page
        return f"Could not read {what}: {exc}"


def render_cards(services: Any, snapshot: HardwareSnapshot) -> str:
    cards = [gpu_card(g, snapshot) for g in snapshot.gpus] or [no_gpu_card(snapshot)]
    cards += [cpu_card(snapshot.cpu, snapshot), memory_card(snapshot.memory)]
    cards.append(disk_card(snapshot.disks))
    status = _ask("the engine status", services.engine_status)
    loaded = _ask("the loaded models", services.loaded_models)
    cards.append(engine_card(status, loaded))
    when = snapshot.taken_at.astimezone().strftime("%H:%M:%S")
    sampler_error = getattr(services.hardware, "sampler_error", "")
    note = f' · <span class="hh-error">{escape(sampler_error)}</span>' if sampler_error else ""
    footer = f'<p class="hh-sub">Updated {escape(when)}{note}</p>'
    return f'{_STYLE}<div class="hh-grid">{"".join(cards)}</div>{footer}'


def render_readiness(checks: Sequence[Check]) -> str:
    rows = "".join(
        f'<tr><td><span class="badge {escape(c.status)}">{escape(c.status.upper())}'
        f"</span></td><td>{escape(c.name)}</td><td>{escape(c.measured)}</td>"
        f"<td>{escape(c.requirement)}</td></tr>"
        for c in checks
    )
    head = "<tr><th></th><th>Check</th><th>This machine</th><th>Needed</th></tr>"
    return (
        f'{_STYLE}<h3>Ready for local inference?</h3><table class="hh-table">'
        f"<thead>{head}</thead><tbody>{rows}</tbody></table>"
    )


# The seed's reference models: what people ask about first when they get a box.
REFERENCE_MODELS = ("llama3:8b", "mistral:7b", "gemma:2b", "llama3:70b")
REFERENCE_QUANT = "Q4_K_M"
REFERENCE_CTX = 4096
_VERDICT_BADGES = {"full GPU offload": "full", "partial offload": "partial",
                   "CPU only": "cpu", "will not fit": "none"}  # fmt: skip


def _capacity_rows(services: Any, snapshot: HardwareSnapshot) -> list[Mapping[str, str]]:
    """The reference models at Q4_K_M and 4096 context, judged against free memory now."""
    rows = []
    for fit in services.machine_fits(snapshot, num_ctx=REFERENCE_CTX, tags=REFERENCE_MODELS):
        if fit.quant != REFERENCE_QUANT:
            continue
        badge = _VERDICT_BADGES.get(fit.verdict, "none")
        speed = f"up to {fit.tokens_per_s_bound:.0f} tok/s" if fit.tokens_per_s_bound else "–"
        rows.append(
            {
                "Model": escape(f"{fit.display_name} ({fit.quant})"),
                "Needs": _size(fit.total_bytes),
                "Fits": f'<span class="badge {badge}">{escape(fit.verdict)}</span>',
                "On GPU": f"{fit.gpu_layers}/{fit.total_layers} layers",
                "Decode speed": speed,
            }
        )
    return rows


def render_capacity(rows: Sequence[Mapping[str, str]]) -> str:
    """Rows of cells that are already HTML (escaped where they hold names)."""
    if not rows:
        return ""
    headers = list(rows[0])
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{r[h]}</td>" for h in headers) + "</tr>" for r in rows)
    note = (
        f"<p class='hh-sub'>At {REFERENCE_QUANT}, {REFERENCE_CTX} tokens of context, "
        "against the memory free now. The Models tab has every model and quantization.</p>"
    )
    return (
        f"{_STYLE}<h3>What this box can run</h3>{note}"
        f'<table class="hh-table"><tr>{head}</tr>{body}</table>'
    )


def history_frames(samples: Sequence[Sample]) -> dict[str, pd.DataFrame]:
    """Long-form frames (time, value, series) for the four history plots."""
    times = [s.taken_at for s in samples]

    def frame(value: str, series: Mapping[str, Sequence[float | None]]) -> pd.DataFrame:
        rows = [(t, v, name) for name, vs in series.items() for t, v in zip(times, vs, strict=True)]
        rows = [r for r in rows if r[1] is not None]
        df = pd.DataFrame(rows, columns=["time", value, "series"])
        df["time"] = pd.to_datetime(df["time"], utc=True)
        df[value] = df[value].astype(float)
        df["series"] = df["series"].astype(str)
        return df

    gib = 1024**3
    return {
        "vram": frame(
            "GiB",
            {
                "used": [s.vram_used_bytes / gib for s in samples],
                "total": [s.vram_total_bytes / gib for s in samples],
            },
        ),
        "gpu": frame("%", {"GPU busy": [s.gpu_util_pct for s in samples]}),
        "ram": frame(
            "GiB",
            {
                "used": [s.ram_used_bytes / gib for s in samples],
                "total": [s.ram_total_bytes / gib for s in samples],
            },
        ),
        "cpu": frame("%", {"CPU busy": [s.cpu_pct for s in samples]}),
    }


def page_values(services: Any) -> tuple[Any, ...]:
    """(cards html, readiness html, capacity html, vram, gpu, ram, cpu plots); never raises."""
    try:
        snapshot = services.hardware.snapshot()
        frames = history_frames(services.hardware.history())
        rows = _ask("what this box can run", lambda: _capacity_rows(services, snapshot))
        capacity = (
            render_capacity(rows)
            if isinstance(rows, list)
            else f'<p class="hh-error">{escape(rows)}</p>'
        )
        return (
            render_cards(services, snapshot),
            render_readiness(readiness(snapshot)),
            capacity,
            gr.LinePlot(value=frames["vram"], visible=snapshot.has_gpu),
            gr.LinePlot(value=frames["gpu"], visible=snapshot.has_gpu),
            frames["ram"],
            frames["cpu"],
        )
    except Exception as exc:  # the page shows a sentence, never a traceback
        log.exception("hardware page refresh failed")
        error = f'<p class="hh-error">Could not read the hardware: {escape(str(exc))}</p>'
        return (error, "", "", gr.skip(), gr.skip(), gr.skip(), gr.skip())


def _plot(y: str, title: str) -> gr.LinePlot:
    # Starts as None: a LinePlot that starts from an empty DataFrame draws no lines later on.
    y_lim = [0, 100] if y == "%" else None
    return gr.LinePlot(
        None, x="time", y=y, color="series", title=title, x_title="", y_lim=y_lim, height=220
    )


def build(services: Any) -> None:
    """Create the Hardware tab's components and wire their refresh; call inside its gr.Tab."""
    interval_s = services.hardware.interval_s
    # The enclosing Tab, to resume refreshing when the tab is shown again (None outside a Tab).
    tab = gr.context.get_render_context()
    tab = tab if isinstance(tab, gr.Tab) else None
    timer = gr.Timer(interval_s, active=True)
    shown = gr.Checkbox(value=True, visible=False)
    cards = gr.HTML('<p class="hh-sub">Reading the hardware…</p>', elem_id=CARDS_ID)
    with gr.Row():
        vram_plot = _plot("GiB", "GPU memory (GiB)")
        gpu_plot = _plot("%", "GPU busy (%)")
    with gr.Row():
        ram_plot = _plot("GiB", "System memory (GiB)")
        cpu_plot = _plot("%", "CPU busy (%)")
    checklist = gr.HTML("")
    capacity = gr.HTML("")
    outputs = [cards, checklist, capacity, vram_plot, gpu_plot, ram_plot, cpu_plot]

    def paused() -> tuple[Any, ...]:
        return (gr.Timer(active=False), *[gr.skip()] * len(outputs))

    def signed_in(request: gr.Request) -> bool:
        """Whether the session's user may still see this; a disabled one is told once."""
        try:
            acting_user(services, request)
        except PermissionDenied as exc:
            gr.Warning(escape(str(exc)))  # toasts render HTML
            return False
        return True

    @guarded
    def on_tick(is_shown: bool, request: gr.Request) -> tuple[Any, ...]:
        if (tab is not None and not is_shown) or not signed_in(request):
            return paused()
        return (gr.skip(), *page_values(services))

    @guarded
    def on_show(request: gr.Request) -> tuple[Any, ...]:
        if not signed_in(request):
            return paused()
        return (gr.Timer(active=True), *page_values(services))

    common: dict[str, Any] = {
        "outputs": [timer, *outputs],
        "api_visibility": "private",
        "show_progress": "hidden",
        "concurrency_id": "hearth-hardware",
        "concurrency_limit": 4,
    }
    timer.tick(on_tick, inputs=[shown], js=_SHOWN_JS if tab is not None else None, **common)
    if tab is not None:
        tab.select(on_show, **common)

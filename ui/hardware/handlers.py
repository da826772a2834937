"""The Hardware tab's handlers: services and the caller in, plain page values out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import pandas as pd

from backend.auth import PermissionDenied
from backend.hardware.readiness import readiness
from ui.common import Caller, acting_user
from ui.hardware.render import (
    REFERENCE_CTX,
    REFERENCE_MODELS,
    capacity_rows,
    error_html,
    render_capacity,
    render_cards,
    render_readiness,
)

if TYPE_CHECKING:
    from backend.hardware.monitor import HardwareSnapshot, Sample
    from backend.services import Services

T = TypeVar("T")
log = logging.getLogger(__name__)
_GIB = 1024**3


@dataclass(frozen=True)
class HistoryFrames:
    """Long-form frames (time, value, series) for the four history plots."""

    vram: pd.DataFrame
    gpu: pd.DataFrame
    ram: pd.DataFrame
    cpu: pd.DataFrame


@dataclass(frozen=True)
class HardwarePage:
    """Everything the tab shows; without history the hardware could not be read at all."""

    cards_html: str
    readiness_html: str = ""
    capacity_html: str = ""
    history: HistoryFrames | None = None
    has_gpu: bool = False


@dataclass(frozen=True)
class Refresh:
    """One refresh: a page, or None when nothing new is shown (off screen, not signed in)."""

    page: HardwarePage | None
    timer_active: bool | None  # None leaves the refresh timer as it is
    warning: str = ""  # told once to a caller who may no longer see the page


def history_frames(samples: Sequence[Sample]) -> HistoryFrames:
    times = [s.taken_at for s in samples]

    def frame(value: str, series: Mapping[str, Sequence[float | None]]) -> pd.DataFrame:
        rows = [(t, v, name) for name, vs in series.items() for t, v in zip(times, vs, strict=True)]
        rows = [r for r in rows if r[1] is not None]
        df = pd.DataFrame(rows, columns=["time", value, "series"])
        df["time"] = pd.to_datetime(df["time"], utc=True)
        df[value] = df[value].astype(float)
        df["series"] = df["series"].astype(str)
        return df

    def used_and_total(used: list[float], total: list[float]) -> pd.DataFrame:
        return frame("GiB", {"used": used, "total": total})

    return HistoryFrames(
        vram=used_and_total(
            [s.vram_used_bytes / _GIB for s in samples],
            [s.vram_total_bytes / _GIB for s in samples],
        ),
        gpu=frame("%", {"GPU busy": [s.gpu_util_pct for s in samples]}),
        ram=used_and_total(
            [s.ram_used_bytes / _GIB for s in samples],
            [s.ram_total_bytes / _GIB for s in samples],
        ),
        cpu=frame("%", {"CPU busy": [s.cpu_pct for s in samples]}),
    )


def _ask(what: str, fn: Callable[[], T]) -> T | str:
    try:
        return fn()
    except Exception as exc:  # an engine down must not break the page
        return f"Could not read {what}: {exc}"


class HardwareHandlers:
    """What the Hardware tab shows, and when; `in_tab` says whether it can be off screen."""

    def __init__(self, services: Services, *, in_tab: bool = True) -> None:
        self.services = services
        self.in_tab = in_tab

    def page(self) -> HardwarePage:
        """The whole page now; never raises (a failure is a sentence on the page)."""
        try:
            snapshot = self.services.hardware.snapshot()
            history = history_frames(self.services.hardware.history())
            return HardwarePage(
                cards_html=self._cards(snapshot),
                readiness_html=render_readiness(readiness(snapshot)),
                capacity_html=self._capacity(snapshot),
                history=history,
                has_gpu=snapshot.has_gpu,
            )
        except Exception as exc:  # the page shows a sentence, never a traceback
            log.exception("hardware page refresh failed")
            return HardwarePage(error_html(f"Could not read the hardware: {exc}"))

    def refusal(self, request: Caller | None) -> str:
        """Why this caller may not see the page ("" when they may)."""
        try:
            acting_user(self.services, request)
        except PermissionDenied as exc:
            return str(exc)
        return ""

    def tick(self, request: Caller | None, shown: bool) -> Refresh:
        """A timer tick: a fresh page while the tab is on screen; pause otherwise."""
        if self.in_tab and not shown:
            return Refresh(None, timer_active=False)
        if refusal := self.refusal(request):
            return Refresh(None, timer_active=False, warning=refusal)
        return Refresh(self.page(), timer_active=None)

    def show(self, request: Caller | None) -> Refresh:
        """The tab came on screen: a fresh page, and the timer runs again."""
        if refusal := self.refusal(request):
            return Refresh(None, timer_active=False, warning=refusal)
        return Refresh(self.page(), timer_active=True)

    def _cards(self, snapshot: HardwareSnapshot) -> str:
        status = _ask("the engine status", self.services.engine_status)
        loaded = _ask("the loaded models", self.services.loaded_models)
        sampler_error = getattr(self.services.hardware, "sampler_error", "")
        engines = _ask("the engines", self.services.engine_cards)
        if isinstance(engines, str):
            return render_cards(snapshot, engines, loaded, sampler_error)
        return render_cards(snapshot, status, loaded, sampler_error, engines)

    def _capacity(self, snapshot: HardwareSnapshot) -> str:
        """The reference models against the memory free now, or why they could not be judged."""
        fits = _ask(
            "what this box can run",
            lambda: self.services.machine_fits(
                snapshot, num_ctx=REFERENCE_CTX, tags=REFERENCE_MODELS
            ),
        )
        return error_html(fits) if isinstance(fits, str) else render_capacity(capacity_rows(fits))

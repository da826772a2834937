"""Bytes, sizes and times as people read them: the one home for units and their formatting."""

from __future__ import annotations

KIB = 1024
MIB = 1024**2
GIB = 1024**3


def format_size(value: float, *, precise: bool = False) -> str:
    """Bytes as GiB from 1 GiB up, else MiB: "4.7 GiB", "512 MiB" (precise: "4.71 GiB")."""
    if abs(value) >= GIB:
        return f"{value / GIB:.2f} GiB" if precise else f"{value / GIB:.1f} GiB"
    return f"{value / MIB:.1f} MiB" if precise else f"{value / MIB:.0f} MiB"


def format_bytes(value: float | None) -> str:
    """Any byte count in the largest binary unit below it: "512 B", "1.5 KiB", "2.0 TiB"."""
    if value is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_ms(value: float | None) -> str:
    """Milliseconds, switching to seconds from 10 s: "840 ms", "12.5 s"."""
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"

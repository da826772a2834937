"""Bytes, sizes, times and counts as people read them: the one home for units and their
formatting."""

from __future__ import annotations

KIB = 1024
MIB = 1024**2
GIB = 1024**3
GB = 1000**3  # the decimal gigabyte that GPUs, DIMMs, disks and product specs are sold in


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """A count and its noun: "1 reply", "2,048 replies" (plural defaults to singular + "s")."""
    return f"{count:,} {noun_for(count, singular, plural)}"


def noun_for(count: int, singular: str, plural: str | None = None) -> str:
    """The noun that goes with a count: "person" for 1, "people" for any other."""
    return singular if count == 1 else (plural or singular + "s")


def format_size(value: float, *, precise: bool = False) -> str:
    """Bytes as GiB from 1 GiB up, else MiB: "4.7 GiB", "512 MiB" (precise: "4.71 GiB")."""
    if abs(value) >= GIB:
        return f"{value / GIB:.2f} GiB" if precise else f"{value / GIB:.1f} GiB"
    return f"{value / MIB:.1f} MiB" if precise else f"{value / MIB:.0f} MiB"


def format_bytes(value: float | None) -> str:
    """Any byte count in the largest binary unit below it: "512 B", "1.5 KiB", "2.0 TiB"."""
    if value is None:
        return "–"
    return _scaled(value, 1024, ("B", "KiB", "MiB", "GiB", "TiB"))


def format_decimal(value: float) -> str:
    """Bytes in the largest decimal unit below them: "25.3 GB", "512.0 MB", "2.0 TB"."""
    return _scaled(value, 1000, ("B", "kB", "MB", "GB", "TB"))


def _scaled(value: float, step: int, units: tuple[str, ...]) -> str:
    for unit in units[:-1]:
        if abs(value) < step:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= step
    return f"{value:.1f} {units[-1]}"


def format_both(value: float) -> str:
    """A measured amount in the binary units the page reads in, decimal beside it:
    "23.5 GiB (25.3 GB)", so it compares with both the cards and a spec in GB."""
    return f"{format_bytes(value)} ({format_decimal(value)})"


def format_spec_gb(value: float) -> str:
    """An amount a spec states in whole decimal GB, binary beside it: "16 GB (14.9 GiB)"."""
    amount = f"{value / GB:.1f}".removesuffix(".0")
    return f"{amount} GB ({format_bytes(value)})"


def format_ms(value: float | None) -> str:
    """Milliseconds, switching to seconds from 10 s: "840 ms", "12.5 s"."""
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"

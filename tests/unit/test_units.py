"""Units as people read them: binary for what the machine reports, decimal for what specs state."""

from __future__ import annotations

import pytest

from backend.units import GB, GIB, format_both, format_decimal, format_spec_gb


@pytest.mark.parametrize(
    ("value", "text"),
    [(512, "512 B"), (1500, "1.5 kB"), (512_000_000, "512.0 MB"), (25_300_000_000, "25.3 GB"),
     (2 * 1000**4, "2.0 TB")],
)  # fmt: skip
def test_format_decimal_uses_the_largest_decimal_unit(value: int, text: str) -> None:
    assert format_decimal(value) == text


def test_format_both_reads_binary_first_with_decimal_beside() -> None:
    assert format_both(25_300_000_000) == "23.6 GiB (25.3 GB)"
    assert format_both(GIB) == "1.0 GiB (1.1 GB)"
    assert format_both(300 * 1024**2) == "300.0 MiB (314.6 MB)"


@pytest.mark.parametrize(
    ("value", "text"),
    [(8 * GB, "8 GB (7.5 GiB)"), (16 * GB, "16 GB (14.9 GiB)"), (50 * GB, "50 GB (46.6 GiB)"),
     (7_500_000_000, "7.5 GB (7.0 GiB)")],
)  # fmt: skip
def test_format_spec_gb_keeps_the_spec_number_and_adds_gib(value: int, text: str) -> None:
    assert format_spec_gb(value) == text

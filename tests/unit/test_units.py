"""Units as people read them: binary for what the machine reports, decimal for what specs state."""

from __future__ import annotations

import pytest

from backend.units import GB, GIB, counted, format_both, format_decimal, format_spec_gb, noun_for


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


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 replies"),
        (1, "1 reply"),
        (2, "2 replies"),
        (2048, "2,048 replies"),
        (-1, "-1 replies"),
    ],
)
def test_counted_gives_the_noun_its_count_takes(count: int, text: str) -> None:
    assert counted(count, "reply", "replies") == text


def test_a_plural_defaults_to_an_s() -> None:
    assert counted(1, "request") == "1 request" and counted(3, "request") == "3 requests"
    assert noun_for(1, "person", "people") == "person"
    assert noun_for(7, "person", "people") == "people"

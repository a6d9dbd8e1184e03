"""Spans of time as people write them on a command line: 30s, 15m, 6h, 90d."""

from __future__ import annotations

_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_span(text: str) -> float:
    """Seconds in a span such as '6h' or '90d'; ValueError for anything else (no unit, <= 0)."""
    value = text.strip().lower()
    try:
        seconds = float(value[:-1]) * _SECONDS_PER_UNIT[value[-1:]]
    except (KeyError, ValueError):
        raise ValueError(f"a span of time is a number and a unit (30s, 15m, 6h, 90d), got {text!r}") from None
    if seconds <= 0:
        raise ValueError(f"a span of time must be positive, got {text!r}")
    return seconds

"""Percentiles and the small summaries every scenario reports."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, nearest-rank; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def latency_summary_ms(latencies_ns: Sequence[int]) -> dict[str, float]:
    """p50 / p99 / max in milliseconds of latencies given in nanoseconds."""
    values = sorted(latencies_ns)
    return {
        "p50_ms": round(percentile(values, 50) / 1e6, 3),
        "p99_ms": round(percentile(values, 99) / 1e6, 3),
        "max_ms": round(values[-1] / 1e6, 3) if values else math.nan,
    }


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0 or math.isnan(value) or math.isnan(reference):
        return None
    return round(value / reference, 3)

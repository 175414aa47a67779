"""What a scenario returns, and how it is printed: one JSON line, then a readable table."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

Row = dict[str, Any]


@dataclass(slots=True)
class Target:
    """One of the issue's targets: ``value`` compared with ``limit`` (``at_least`` or at most)."""

    name: str
    value: float | None
    limit: float
    at_least: bool
    unit: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return None
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def describe(self) -> str:
        sign = ">=" if self.at_least else "<="
        verdict = {True: "MET", False: "MISSED", None: "NOT MEASURED"}[self.met]
        return f"{self.name}: {_fmt(self.value)}{self.unit} ({sign} {_fmt(self.limit)}{self.unit}) {verdict}"


@dataclass(slots=True)
class Result:
    scenario: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = [{**asdict(t), "met": t.met} for t in self.targets]
        return data


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[Row]) -> str:
    """Rows as a fixed-width text table; columns in first-seen order."""
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells)
    return "\n".join(lines)


def print_result(result: Result, out: TextIO = sys.stdout) -> None:
    print(json.dumps(result.to_json(), separators=(",", ":")), file=out)
    print(f"\n== {result.scenario} ({result.seconds:.1f} s) ==", file=out)
    if result.error:
        print(f"ERROR: {result.error}", file=out)
    print(table(result.rows), file=out)
    for target in result.targets:
        print("target  " + target.describe(), file=out)
    for note in result.notes:
        print("note    " + note, file=out)
    print(file=out, flush=True)

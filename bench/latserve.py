"""``syncstream`` with each live activity's way through the server timed: where steady latency goes.

Run as ``python -m bench.latserve serve ...`` (the arguments of ``syncstream serve``), one process
(``--workers 1``). For each activity the bench's writers created (its entity's ``name`` is ``b<sent>``,
the writer's ``time.monotonic_ns()`` at sending, the clock the subscribers measure against) it records,
in the same clock: the commit seen by the writer's caller, the tailer's read of it (start and end), its
routing, and the flusher's pass that wrote it (start and end), written to ``$BENCH_LATSERVE_FILE``
as JSON lines; :func:`summary` turns them into percentiles per stage. Not part
of the timed run (the wrappers cost a little); see docs/performance.md.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import Any

_now = time.monotonic_ns
#: activity ID → {stage: ns}
_stages: dict[int, dict[str, int]] = {}
_routed_unflushed: list[int] = []
# Line by line: uvicorn ends the process by re-raising SIGTERM, which runs no atexit.
_out = open(os.environ.get("BENCH_LATSERVE_FILE", os.devnull), "w", buffering=1)  # noqa: SIM115


def _sent(activity: Any) -> int | None:
    data = activity.data
    if not data or '"name":"b' not in data:
        return None
    try:
        return int(json.loads(data)["name"][1:])
    except (ValueError, KeyError, TypeError):
        return None


def _install() -> None:
    from syncstream.activities import tailer as tailer_module
    from syncstream.activities import writer as writer_module
    from syncstream.stream import direct

    original_committed = writer_module.ActivityWriter.committed

    async def committed(self: Any, recorded: Any, activity_id: int | None) -> None:
        if activity_id is not None:
            _stages.setdefault(activity_id, {})["committed"] = _now()
        await original_committed(self, recorded, activity_id)

    writer_module.ActivityWriter.committed = committed  # type: ignore[method-assign]

    original_read_after = tailer_module.log.read_after

    async def read_after(*args: Any, **kwargs: Any) -> Any:
        started = _now()
        batch = await original_read_after(*args, **kwargs)
        ended = _now()
        for activity in batch:
            sent = _sent(activity)
            if sent is not None:
                stages = _stages.setdefault(activity.id, {})
                stages.update(sent=sent, read_start=started, read_end=ended)
        return batch

    original_read_inline = tailer_module.log.read_after_inline

    def read_after_inline(*args: Any, **kwargs: Any) -> Any:
        started = _now()
        batch = original_read_inline(*args, **kwargs)
        ended = _now()
        for activity in batch or ():
            sent = _sent(activity)
            if sent is not None:
                stages = _stages.setdefault(activity.id, {})
                stages.update(sent=sent, read_start=started, read_end=ended)
        return batch

    # The tailer's own reference: catch-up reads (modules/streaming.py) are not timed.
    tailer_module.log = _LogProxy(tailer_module.log, read_after, read_after_inline)  # type: ignore[assignment]

    original_emit = tailer_module.ActivityBus.emit

    def emit(self: Any, type_: str, activity: Any) -> None:
        original_emit(self, type_, activity)
        stages = _stages.get(activity.id)
        if stages is not None and "sent" in stages:
            stages["routed"] = _now()
            _routed_unflushed.append(activity.id)

    tailer_module.ActivityBus.emit = emit  # type: ignore[method-assign]

    original_flush = direct.Flusher.flush

    def flush(self: Any) -> None:
        started = _now()
        original_flush(self)
        ended = _now()
        if self._scheduled:  # written in slices (direct.FLUSH_SLICE): the pass goes on
            for activity_id in _routed_unflushed:
                _stages[activity_id].setdefault("flush_start", started)
            return
        for activity_id in _routed_unflushed:
            stages = _stages.pop(activity_id)
            stages.setdefault("flush_start", started)
            stages["flush_end"] = ended
            _out.write(json.dumps({"id": activity_id, **stages}) + "\n")
        _routed_unflushed.clear()

    direct.Flusher.flush = flush  # type: ignore[method-assign]


class _LogProxy:
    def __init__(self, module: Any, read_after: Any, read_after_inline: Any) -> None:
        self._module = module
        self.read_after = read_after
        self.read_after_inline = read_after_inline

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


STAGES = ("sent", "committed", "read_start", "read_end", "routed", "flush_start", "flush_end")


def summary(path: str) -> str:
    """Per run of writes (runs are apart by 2 s or more): percentiles (ms) of each stage's time since
    the previous one, and since the write was sent."""
    with open(path) as lines_in:
        rows = [json.loads(line) for line in lines_in]
    rows = sorted((r for r in rows if all(s in r for s in STAGES)), key=lambda r: r["sent"])
    runs: list[list[dict[str, int]]] = []
    for row in rows:
        if not runs or row["sent"] - runs[-1][-1]["sent"] > 2e9:
            runs.append([])
        runs[-1].append(row)
    return "\n\n".join(_run_summary(run) for run in runs if len(run) > 20)


def _run_summary(rows: list[dict[str, int]]) -> str:
    seconds = (rows[-1]["sent"] - rows[0]["sent"]) / 1e9
    lines = [f"{len(rows)} activities over {seconds:.1f} s"]
    for i in range(1, len(STAGES)):
        step = sorted((r[STAGES[i]] - r[STAGES[i - 1]]) / 1e6 for r in rows)
        total = sorted((r[STAGES[i]] - r["sent"]) / 1e6 for r in rows)
        lines.append(
            f"{STAGES[i - 1]:>11} -> {STAGES[i]:<11} p50 {_pct(step, 50):7.2f}  p99 {_pct(step, 99):7.2f}  "
            f"max {step[-1]:7.2f}   since sent: p50 {_pct(total, 50):7.2f}  p99 {_pct(total, 99):7.2f}"
        )
    return "\n".join(lines)


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p / 100))]


if __name__ == "__main__":
    if sys.argv[1:2] == ["summary"]:
        print(summary(sys.argv[2]))
        sys.exit(0)
    _install()
    cli = importlib.import_module("syncstream.cli")
    sys.exit(cli.main(sys.argv[1:]))

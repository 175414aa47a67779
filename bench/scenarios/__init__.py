"""The scenarios, in the order a full run takes them.

``idle`` opens the shared fleet of subscribers that ``fanout`` and ``steady`` then use (see
:mod:`bench.fleet`); those two measure the ceiling for their own loads right after their own rounds
(the machine may be shared, so the two halves of a ratio are taken as close together as possible), and
``ceiling`` comes last: it reports those rows and measures whatever is still missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.context import Context
from bench.report import Result
from bench.scenarios import capture, catchup, ceiling, fanout, idle, opens, steady, workers, writes

Scenario = Callable[[Context, Result], Awaitable[None]]

SCENARIOS: dict[str, Scenario] = {
    "idle": idle.run,
    "fanout": fanout.run,
    "steady": steady.run,
    "writes": writes.run,
    "catchup": catchup.run,
    "opens": opens.run_opens,
    "storm": opens.run_storm,
    "capture": capture.run,
    "workers": workers.run,
    "ceiling": ceiling.run,
}

#: Run only when named (``--scenario capture``): not among the targets, and a full run stays short.
ON_REQUEST = frozenset({"capture"})

#: Scenarios that use the fleet; it is closed once none of them is left to run.
FLEET_USERS = frozenset({"idle", "fanout", "steady"})

"""The stream contract and delivery suites again, on a server with uvicorn's access log on.

``serve --access-log`` once broke every SSE stream with ``KeyError: 'raw_path'``: the
stream machinery stripped the scope to a fixed list of keys, and uvicorn's access log
reads ``raw_path`` as the response starts, which for a stream is after the strip. The
scope now keeps whatever the server and the outer middleware put in it; these are the
same tests as ``test_contract.py`` and ``test_delivery.py``, collected again here with
this module's ``server`` fixture, which overrides the suite's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness import ServerProcess

from .test_contract import *  # noqa: F403 (the tests themselves, run again here)
from .test_delivery import *  # noqa: F403

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[ServerProcess]:
    proc = ServerProcess(database_url=database_url, access_log=True, log_level="info").start()
    yield proc
    proc.stop()
    log = proc.log()
    assert "Traceback" not in log, log[-4000:]
    assert "/sync/stream?" in log, "the access log logged no stream"

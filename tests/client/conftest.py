"""Fixtures for the client tests: an organization on the shared server."""

from __future__ import annotations

import pytest

from client.support import Org, make_org
from harness import ServerProcess


@pytest.fixture
async def org(server: ServerProcess) -> Org:
    return await make_org(server.url)

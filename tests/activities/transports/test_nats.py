"""The NATS doorbell against a real server (SYNCSTREAM_TEST_NATS_URL).

Its reconnect is forced by cutting the TCP connection (the contract's proxy tests): nats-py
then reconnects by itself through the relay, and the bell must follow it through its callbacks.
"""

from __future__ import annotations

import pytest

from .contract import NetworkDoorbellContract

pytestmark = pytest.mark.nats


@pytest.fixture
def bus_url(nats_url: str) -> str:
    return nats_url


class TestNatsDoorbell(NetworkDoorbellContract):
    pass

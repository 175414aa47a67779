"""Skip the browser tests, with the reason, when there is no Chromium (unless services are required)."""

from __future__ import annotations

import pytest

from console.cdp import CHROMIUM_VARIABLE, find_chromium
from services import REQUIRE_VARIABLE, services_required


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        reason = (
            "headless Chromium not found (apt-get install chromium chromium-driver, "
            f"or set {CHROMIUM_VARIABLE})"
        )
        if services_required():
            pytest.fail(f"{reason} and {REQUIRE_VARIABLE}=1", pytrace=False)
        pytest.skip(reason)
    return path

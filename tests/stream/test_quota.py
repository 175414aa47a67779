"""StreamQuota and the stream cap, on their own (through real sockets: tests/hardening/test_admission.py)."""

from __future__ import annotations

import pytest

from syncstream.admission import stream_cap
from syncstream.stream.quota import QuotaExceeded, StreamQuota, address_holder


def test_each_holder_and_the_process_are_counted_and_given_back() -> None:
    quota = StreamQuota({"user": 2, "address": 3}, total=4)
    a = quota.acquire([("user", "u1"), ("address", "1.2.3.4")])
    b = quota.acquire([("user", "u1"), ("address", "1.2.3.4")])
    with pytest.raises(QuotaExceeded) as refused:
        quota.acquire([("user", "u1"), ("address", "5.6.7.8")])
    assert (refused.value.kind, refused.value.limit) == ("user", 2)
    assert quota.count("address", "5.6.7.8") == 0  # a refusal counts nothing
    c = quota.acquire([("address", "1.2.3.4")])
    with pytest.raises(QuotaExceeded, match="address"):
        quota.acquire([("address", "1.2.3.4")])
    d = quota.acquire([("address", "9.9.9.9")])
    with pytest.raises(QuotaExceeded) as full:
        quota.acquire([("address", "8.8.8.8")])
    assert full.value.kind == "process"
    for lease in (a, b, c, d):
        lease.release()
        lease.release()  # once only
    assert quota.open == 0
    assert quota.count("user", "u1") == quota.count("address", "1.2.3.4") == 0


@pytest.mark.parametrize(
    ("host", "holder"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:5::1", "2001:db8:5::/64"),
        ("2001:db8:5::ffff:1", "2001:db8:5::/64"),
        ("2001:db8:5:1::1", "2001:db8:5:1::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_address_counts_as_its_64(host: str, holder: str) -> None:
    assert address_holder(host) == holder


@pytest.mark.parametrize(
    ("open_files", "configured", "cap"),
    [
        (1024, None, 768),
        (600, None, 344),
        (20000, None, 15000),
        (300, None, 150),
        (1024, 100, 100),
        (1024, 5000, 768),
    ],
)
def test_the_cap_keeps_a_reserve_of_the_open_file_limit(
    open_files: int, configured: int | None, cap: int
) -> None:
    assert stream_cap(open_files, configured) == cap

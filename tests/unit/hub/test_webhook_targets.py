"""Webhook targets: internal addresses refused unless allowed, at creation and at delivery."""

from __future__ import annotations

import pytest

from hub.delivery.webhooks.targets import TargetPolicy

REFUSED = [
    "http://127.0.0.1:9000/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.5/hook",
    "http://0.0.0.0/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://224.0.0.1/hook",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_targets_are_refused_by_default(url: str) -> None:
    """Loopback, private, link-local (metadata), unspecified, mapped and multicast: each refused, saying why."""
    reason = await TargetPolicy().refusal(url)
    assert reason is not None
    assert "HUB_WEBHOOK_ALLOW" in reason


async def test_public_addresses_pass() -> None:
    assert await TargetPolicy().refusal("https://8.8.8.8/hook") is None


@pytest.mark.parametrize("url", ["https://hooks.invalid/x", "https://\x93/x", "https://a..b/x"])
async def test_an_unresolvable_name_is_left_to_the_delivery(url: str) -> None:
    """A name that does not resolve now (or cannot be encoded) is not refused here, nor a crash."""
    assert await TargetPolicy().refusal(url) is None


async def test_the_allow_list_names_networks_addresses_and_hosts() -> None:
    """HUB_WEBHOOK_ALLOW: a network lets its addresses through, a host name itself, nothing else."""
    policy = TargetPolicy.of(["10.20.0.0/16", "127.0.0.1", "LocalHost.", " "])
    assert await policy.refusal("http://10.20.3.4/h") is None
    assert await policy.refusal("http://127.0.0.1:8080/h") is None
    assert await policy.refusal("http://localhost/h") is None
    assert await policy.refusal("http://10.21.0.1/h") is not None
    assert await policy.refusal("http://[::1]/h") is not None

"""One-time acknowledgement links: genuine, once, until they expire, for their notification only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import create_engine

from hub.delivery.ack_links import AckLinkError, AckLinks

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)


@pytest.fixture
def links(tmp_path: Path) -> AckLinks:
    engine = create_engine(f"sqlite:///{tmp_path / 'links.db'}")
    return AckLinks(engine, b"k" * 32, public_url="https://hub.hospital.cn/", ttl=timedelta(hours=24))


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_a_link_acknowledges_once(links: AckLinks) -> None:
    url = links.mint("NTF-1", "biomed-group", 2, NOW)
    assert url.startswith("https://hub.hospital.cn/notifications/NTF-1/ack?token=")
    claim = links.redeem("NTF-1", _token(url), NOW + timedelta(hours=1))
    assert (claim.channel, claim.level) == ("biomed-group", 2)
    with pytest.raises(AckLinkError, match="used"):
        links.redeem("NTF-1", _token(url), NOW + timedelta(hours=1))
    other = links.mint("NTF-1", "biomed-group", 2, NOW)  # another message's link still works
    assert links.redeem("NTF-1", _token(other), NOW).nonce != claim.nonce


def test_expired_altered_or_foreign_links_are_refused(links: AckLinks) -> None:
    token = _token(links.mint("NTF-1", "g", 0, NOW))
    with pytest.raises(AckLinkError, match="expired"):
        links.redeem("NTF-1", token, NOW + timedelta(hours=24))
    with pytest.raises(AckLinkError, match="invalid"):
        links.redeem("NTF-2", token, NOW)  # another notification's
    body, _, sig = token.partition(".")
    with pytest.raises(AckLinkError, match="invalid"):
        links.redeem("NTF-1", f"{body}A.{sig}", NOW)
    with pytest.raises(AckLinkError, match="invalid"):
        links.redeem("NTF-1", "garbage", NOW)
    assert links.redeem("NTF-1", token, NOW).channel == "g"  # refusals did not use it up

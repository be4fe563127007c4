"""One-time acknowledgement links: the read receipt from a group chat, without an API key.

Each robot message (and webhook post) of a notification carries a link,
`<HUB_PUBLIC_URL>/notifications/<id>/ack?token=<token>`. The token names the channel and level
it was sent on, when it expires (HUB_NOTIFY_ACK_LINK_HOURS after sending) and a random nonce,
signed with an HMAC under a key derived from HUB_SECRET_KEY: nothing is stored when a link is
made. Redeeming it records the nonce (table `hub_ack_links_used`, in the read-model database,
so every API node sees it): a second use, like an expired or altered token, is refused.

Opening the link (GET) shows a confirm button; only the POST it sends is the receipt, so a chat
app's link preview, which fetches the URL, acknowledges nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from projections.runtime.db import write_transaction
from projections.runtime.sqltypes import UtcDateTime

if TYPE_CHECKING:
    from sqlalchemy import Engine

METADATA = MetaData()
used_links = Table(
    "hub_ack_links_used",
    METADATA,
    Column("nonce", String(32), primary_key=True),
    Column("notification_id", String(40), nullable=False),
    Column("used_at", UtcDateTime(), nullable=False),
)
SIGNATURE_BYTES = 16


class AckLinkError(Exception):
    """A link that cannot acknowledge: `reason` is `invalid`, `expired` or `used`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkClaim:
    notification_id: str
    channel: str
    level: int
    expires_at: datetime
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AckLinks:
    """Makes and redeems one-time acknowledgement links (see the module docstring)."""

    def __init__(self, engine: Engine, secret: bytes, *, public_url: str, ttl: timedelta) -> None:
        self._engine = engine
        self._key = hmac.new(secret, b"hub.notify.ack-link.v1", hashlib.sha256).digest()
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl

    def ensure_tables(self) -> None:
        METADATA.create_all(self._engine, checkfirst=True)

    def _sign(self, notification_id: str, body: str) -> str:
        mac = hmac.new(self._key, f"{notification_id}\n{body}".encode(), hashlib.sha256).digest()
        return _b64(mac[:SIGNATURE_BYTES])

    def token(self, notification_id: str, channel: str, level: int, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        body = _b64(f"{channel}|{level}|{expires}|{secrets.token_hex(8)}".encode())
        return f"{body}.{self._sign(notification_id, body)}"

    def mint(self, notification_id: str, channel: str, level: int, now: datetime) -> str:
        """The link to put in a message sent on `channel` at escalation `level`."""
        token = self.token(notification_id, channel, level, now)
        return f"{self.public_url}/notifications/{quote(notification_id, safe='')}/ack?token={token}"

    def check(self, notification_id: str, token: str, now: datetime) -> LinkClaim:
        """What a token claims, if it is genuine and unexpired (not whether it was used)."""
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(notification_id, body)):
            raise AckLinkError("invalid")
        try:
            channel, level, expires, nonce = _unb64(body).decode().split("|")
            claim = LinkClaim(
                notification_id, channel, int(level), datetime.fromtimestamp(int(expires), UTC), nonce
            )
        except ValueError as exc:
            raise AckLinkError("invalid") from exc
        if now >= claim.expires_at:
            raise AckLinkError("expired")
        return claim

    def redeem(self, notification_id: str, token: str, now: datetime) -> LinkClaim:
        """Use the link once: its claim, or AckLinkError (`invalid`, `expired`, `used`)."""
        claim = self.check(notification_id, token, now)
        self.ensure_tables()
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    insert(used_links).values(nonce=claim.nonce, notification_id=notification_id, used_at=now)
                )
        except IntegrityError as exc:
            raise AckLinkError("used") from exc
        return claim

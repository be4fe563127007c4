"""Which addresses webhooks may be sent to: not the hub's own network, unless a person said so.

A subscription's URL is chosen by whoever holds a subscribe key. Without a check, the hub would
POST signed events wherever it is told, including its own loopback services, the hospital's
private servers and a cloud metadata endpoint (169.254.169.254) — a request-forgery tool. So a
target whose address is loopback, private, link-local, shared, reserved, multicast or
unspecified is refused unless HUB_WEBHOOK_ALLOW names it (an address, a network such as
10.20.0.0/16, or a host name). It is checked when the subscription is created and again before
every delivery (a name can come to resolve elsewhere later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class TargetPolicy:
    """The allow-list: networks and host names a webhook may reach although they are internal."""

    networks: tuple[IpNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, entries: list[str]) -> TargetPolicy:
        """From HUB_WEBHOOK_ALLOW: each entry an address, a network (CIDR) or a host name."""
        networks: list[IpNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    async def refusal(self, url: str) -> str | None:
        """Why `url` may not be a webhook target, or None when it may.

        A name that does not resolve now is not refused here (the receiver may not be up yet);
        the delivery fails and retries, and is checked again then.
        """
        host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
        if not host:
            return "the URL names no host"
        if host in self.hosts:
            return None
        for address in await _addresses(host):
            reason = _internal(address)
            if reason and not any(address in net for net in self.networks):
                return (
                    f"{host} is {address} ({reason}); webhooks go to internal addresses only when "
                    "HUB_WEBHOOK_ALLOW names them"
                )
        return None


async def _addresses(host: str) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # unresolvable, or not a name IDNA can encode
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _internal(address: IpAddress) -> str | None:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    checks = (
        ("loopback", address.is_loopback),
        ("link-local, where cloud metadata services answer", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    return next((name for name, hit in checks if hit), None)

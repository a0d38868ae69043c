"""Which network addresses an outgoing request of the service may go to.

A webhook is a request the service sends where an admin tells it to. Pointed at the
service's own loopback, its cloud's metadata address (169.254.169.254) or a private
network, it would reach what only the service can (server-side request forgery). Only
globally routable addresses are allowed, unless a deployment says otherwise.
"""

from __future__ import annotations

import ipaddress

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local,
    shared, reserved, multicast or unspecified)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is no part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_private_literal(host: str) -> bool:
    """True when ``host`` names a non-public address by itself: an IP literal that is not
    public, or a name that always means this machine. Other names are resolved (and
    checked) when the request is sent."""
    name = host.strip("[]").rstrip(".").lower()
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        return not is_public_address(name)
    except ValueError:
        return False

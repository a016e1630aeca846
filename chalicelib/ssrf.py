"""Outbound URLs that users give us: which ones a Lambda may POST to, and at which address.

A Web Push endpoint is a URL from the browser, so from the user: without a guard it would
make the function POST into the VPC, the instance metadata service or a loopback port. The
rules:

- `https://` only, with a DNS name (no userinfo, no IP literal in any spelling: dotted,
  decimal, hex, octal, short forms, IPv6 in brackets); a trailing dot is the same name.
- Every address the name resolves to must be public: not private, loopback, link-local,
  multicast, reserved, unspecified, shared (CGNAT), documentation or benchmarking space, and
  IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by that address.
- The check runs again when sending, and the connection goes to an address that check
  approved (`Target.addresses`), never to a second resolution a DNS-rebinding attacker could
  answer differently.
- In stages `local` and `dev`, `http://127.0.0.1:<port>` is allowed too (tests, the demo).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

from chalicelib.errors import ValidationFailed

Resolver = Callable[[str, int], Sequence[str]]
MAX_URL_LENGTH = 2048
LOCAL_HOST = "127.0.0.1"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Anything but printable ASCII (after IDNA) has no business in an endpoint.
_UNSAFE = re.compile(r"[^\x21-\x7e]|\\")
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",  # multicast and the reserved 240/4 above it, broadcast included
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",  # IETF protocol assignments (Teredo, benchmarking, ORCHIDs)
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


class UnsafeEndpoint(ValidationFailed):
    """The URL may not be called: the reason is in the message (a 422 at the edge)."""


class Target(NamedTuple):
    """A checked URL: where to connect (`addresses`, all checked) and what to ask for."""

    scheme: str
    host: str  # lowercase, no trailing dot; the Host header and the TLS server name
    port: int
    path: str  # path and query, at least "/"
    addresses: tuple[str, ...] = ()

    @property
    def origin(self) -> str:
        default = 443 if self.scheme == "https" else 80
        suffix = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{suffix}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def is_public_address(address: str) -> bool:
    """Whether an IP address (text) is one a user-given URL may reach."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip in ipaddress.ip_network("::/96"):  # IPv4-compatible
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(str(embedded))
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        return False
    return not any(ip in network for network in _BLOCKED_NETWORKS if network.version == ip.version)


def parse_endpoint(url: object, *, allow_local_http: bool = False) -> Target:
    """Check the form of `url` (no DNS); raise UnsafeEndpoint with the reason."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeEndpoint(f"endpoint: must be a URL of at most {MAX_URL_LENGTH} characters")
    if _UNSAFE.search(url):
        raise UnsafeEndpoint("endpoint: must not contain spaces, control characters or '\\'")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeEndpoint("endpoint: not a valid URL") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeEndpoint("endpoint: must not carry user information")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.fragment or url.endswith("#"):
        raise UnsafeEndpoint("endpoint: must not have a fragment")
    if not path.startswith("/"):
        raise UnsafeEndpoint("endpoint: not a valid URL")
    netloc_host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if parts.scheme == "http" and allow_local_http:
        if netloc_host != LOCAL_HOST or port is None or parts.netloc.endswith(":"):
            raise UnsafeEndpoint(f"endpoint: http is allowed only as http://{LOCAL_HOST}:<port>")
        return Target("http", LOCAL_HOST, port, path, (LOCAL_HOST,))
    if parts.scheme != "https" or not url.startswith("https://"):
        raise UnsafeEndpoint("endpoint: must be an https:// URL")
    if port == 0 or parts.netloc.endswith(":"):
        raise UnsafeEndpoint("endpoint: not a valid port")
    host = _dns_name(netloc_host)
    return Target("https", host, 443 if port is None else port, path)


def _dns_name(raw: str) -> str:
    """The host as a lowercase ASCII DNS name, or UnsafeEndpoint if it is anything else."""
    if raw.startswith("["):
        raise UnsafeEndpoint("endpoint: must name a host, not an IP address")
    name = raw.lower()
    if name.endswith("."):
        name = name[:-1]
    try:
        name = name.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        raise UnsafeEndpoint("endpoint: not a valid host name") from None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise UnsafeEndpoint("endpoint: not a valid public host name")
    # A numeric last label is never a DNS name: it is an IPv4 address in one of the legacy
    # spellings (2130706433, 0x7f.1, 0177.0.0.1) that resolvers turn into an address.
    if _looks_numeric(labels[-1]) or _is_ip_literal(name):
        raise UnsafeEndpoint("endpoint: must name a host, not an IP address")
    if labels[-1] in ("localhost", "local", "internal", "localdomain"):
        raise UnsafeEndpoint("endpoint: must be a public host")
    return name


def _looks_numeric(label: str) -> bool:
    return label.isdigit() or bool(re.fullmatch(r"0x[0-9a-f]*", label))


def _is_ip_literal(name: str) -> bool:
    try:
        socket.inet_aton(name)
    except OSError:
        return False
    return True


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), through the system resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve(target: Target, resolver: Resolver = system_resolver) -> Target:
    """The target with the addresses its host resolves to now, each of them public; raise
    UnsafeEndpoint when there are none or any of them is not public."""
    if target.scheme == "http":
        return target  # only ever 127.0.0.1 (parse_endpoint allowed it for this stage)
    addresses = tuple(resolver(target.host, target.port))
    if not addresses:
        raise UnsafeEndpoint(f"endpoint: {target.host} does not resolve")
    if not all(is_public_address(address) for address in addresses):
        raise UnsafeEndpoint(f"endpoint: {target.host} resolves to a non-public address")
    return Target(target.scheme, target.host, target.port, target.path, addresses)


def check_endpoint(
    url: object, *, allow_local_http: bool = False, resolver: Resolver = system_resolver
) -> Target:
    """`parse_endpoint`, then `resolve`: the form and every current address checked."""
    return resolve(parse_endpoint(url, allow_local_http=allow_local_http), resolver)

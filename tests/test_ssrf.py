"""The SSRF guard on push endpoints, fuzzed: hosts, encodings, ports, resolutions; DNS
rebinding between the check and the send; the connection goes to the address checked."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.pushservice import PushClient, Result, _PinnedHTTPSConnection
from chalicelib.ssrf import UnsafeEndpoint, check_endpoint, is_public_address, parse_endpoint
from tests.local_http import LocalServer, respond

BLOCKED = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "2001:db8::/32",
]


@st.composite
def blocked_ipv4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = ipaddress.ip_network(draw(st.sampled_from([n for n in BLOCKED if "." in n])))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return ipaddress.IPv4Address(int(network.network_address) + offset)


@st.composite
def blocked_ipv6(draw: st.DrawFn) -> ipaddress.IPv6Address:
    network = ipaddress.ip_network(draw(st.sampled_from([n for n in BLOCKED if ":" in n])))
    offset = draw(st.integers(0, min(network.num_addresses - 1, 2**64)))
    return ipaddress.IPv6Address(int(network.network_address) + offset)


def spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """Ways to write one IPv4 address that resolvers and URL parsers accept."""
    value = int(ip)
    octets = [int(part) for part in str(ip).split(".")]
    return [
        str(ip),
        str(value),
        hex(value),
        ".".join(f"0{part:o}" for part in octets),
        ".".join(hex(part) for part in octets),
        f"{octets[0]}.{value & 0xFFFFFF}",
        f"{octets[0]}.{octets[1]}.{value & 0xFFFF}",
        f"[::ffff:{ip}]",
        f"[::ffff:{value >> 16:x}:{value & 0xFFFF:x}]",
        f"[64:ff9b::{ip}]",
        f"{ip}.",
    ]


@given(ip=blocked_ipv4(), pick=st.integers(0, 10), port=st.sampled_from(["", ":443", ":8443"]))
def test_an_ipv4_literal_in_any_spelling_is_refused(
    ip: ipaddress.IPv4Address, pick: int, port: str
) -> None:
    host = spellings(ip)[pick]
    for url in (f"https://{host}{port}/push", f"https://fcm.googleapis.com@{host}{port}/push"):
        with pytest.raises(UnsafeEndpoint):
            check_endpoint(url, resolver=lambda h, p: [str(ip)])


@given(ip=blocked_ipv6())
def test_an_ipv6_literal_or_a_name_resolving_to_a_blocked_ipv6_address_is_refused(
    ip: ipaddress.IPv6Address,
) -> None:
    with pytest.raises(UnsafeEndpoint):
        check_endpoint(f"https://[{ip}]/push")
    with pytest.raises(UnsafeEndpoint):
        check_endpoint("https://push.example.com/", resolver=lambda h, p: [str(ip)])
    assert not is_public_address(str(ip))


@given(ip=blocked_ipv4(), public=st.sampled_from(["93.184.216.34", "2606:4700::6810:84e5"]))
def test_one_blocked_address_among_the_resolved_ones_refuses_the_name(
    ip: ipaddress.IPv4Address, public: str
) -> None:
    for blocked in (str(ip), f"::ffff:{ip}", f"2002:{int(ip) >> 16:x}:{int(ip) & 0xFFFF:x}::1"):
        with pytest.raises(UnsafeEndpoint, match="non-public"):
            check_endpoint(
                "https://push.example.com/", resolver=lambda h, p, b=blocked: [public, b]
            )


HOST_ALPHABET = st.sampled_from([*"abcxyz019-.@:[]%_~/\\?#", "\u0430", "\x00", " ", "ß"])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    scheme=st.sampled_from(["https", "http", "HTTPS", "ftp", "", "https:", "//"]),
    host=st.text(HOST_ALPHABET, max_size=30),
    port=st.one_of(st.just(""), st.integers(-1, 70000).map(lambda p: f":{p}")),
    path=st.text(max_size=10),
    resolved=st.lists(
        st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str)), max_size=3
    ),
)
def test_whatever_the_url_an_accepted_target_is_https_to_a_public_name(
    scheme: str, host: str, port: str, path: str, resolved: list[str]
) -> None:
    url = f"{scheme}://{host}{port}/{path}"
    try:
        target = check_endpoint(url, resolver=lambda h, p: resolved)
    except UnsafeEndpoint:
        return
    assert target.scheme == "https"
    assert target.addresses and all(is_public_address(a) for a in target.addresses)
    assert "@" not in target.host and not target.host.endswith(".")
    with pytest.raises(OSError):
        socket.inet_aton(target.host)
    assert 0 < target.port < 65536


@given(port=st.integers(1, 65535), path=st.sampled_from(["/", "/push/abc", "/a?b=c"]))
def test_local_stages_allow_exactly_http_127_0_0_1_with_a_port(port: int, path: str) -> None:
    target = check_endpoint(f"http://127.0.0.1:{port}{path}", allow_local_http=True)
    assert (target.scheme, target.addresses, target.port) == ("http", ("127.0.0.1",), port)
    with pytest.raises(UnsafeEndpoint):  # other stages
        check_endpoint(f"http://127.0.0.1:{port}{path}")
    for url in (
        f"http://localhost:{port}{path}",
        f"http://127.0.0.2:{port}{path}",
        f"http://2130706433:{port}{path}",
        f"http://[::1]:{port}{path}",
        f"http://x@127.0.0.1:{port}{path}",
        f"https://127.0.0.1:{port}{path}",
    ):
        with pytest.raises(UnsafeEndpoint):
            check_endpoint(url, allow_local_http=True)
    with pytest.raises(UnsafeEndpoint):
        parse_endpoint("http://127.0.0.1/push", allow_local_http=True)


def test_names_that_are_public_are_accepted_with_their_origin() -> None:
    resolver = {"fcm.googleapis.com": ["142.250.74.106", "2a00:1450:4001:82b::200a"]}
    target = check_endpoint(
        "https://FCM.googleapis.com./fcm/send/abc:def?x=1",
        resolver=lambda h, p: resolver.get(h, []),
    )
    assert target.origin == "https://fcm.googleapis.com"
    assert target.path == "/fcm/send/abc:def?x=1"
    assert target.addresses == ("142.250.74.106", "2a00:1450:4001:82b::200a")


# --- DNS rebinding and the pinned connection -----------------------------------------------------


def test_a_name_that_rebinds_to_a_private_address_at_send_time_is_not_contacted() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    client = PushClient(resolver=resolver)
    client.check("https://push.example.com/x")  # subscribe time: public
    answer = client.post("https://push.example.com/x", b"", {})  # send time: rebinds
    assert answer.result is Result.FAILED
    assert asked == ["push.example.com", "push.example.com"]


class TlsServer(NamedTuple):
    port: int
    context: ssl.SSLContext  # a client's, trusting the server's certificate
    seen: list[dict[str, Any]]  # the Host header and SNI name of each request

    def pinned(self, name: str) -> _PinnedHTTPSConnection:
        """A connection to `name` pinned to 127.0.0.1 and the server's port."""
        connection = _PinnedHTTPSConnection(name, self.port, "127.0.0.1", timeout=2)
        connection._context = self.context  # type: ignore[attr-defined]
        return connection


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """HTTPS on 127.0.0.1 with a certificate for push.example only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "push.example")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("push.example")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    seen: list[dict[str, Any]] = []

    def answer(request: BaseHTTPRequestHandler) -> None:
        sni = request.connection.server_hostname  # type: ignore[attr-defined]
        seen.append({"host": request.headers["Host"], "sni": sni})
        respond(request, 201)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)

    def remember_sni(sock: ssl.SSLObject, server_name: str | None, _: Any) -> None:
        sock.server_hostname = server_name  # type: ignore[misc]

    context.sni_callback = remember_sni  # type: ignore[assignment]
    client_context = ssl.create_default_context(cafile=str(cert_file))
    with LocalServer(answer, method="POST", tls=context) as server:
        yield TlsServer(server.port, client_context, seen)


def test_the_connection_goes_to_the_checked_address_with_the_names_host_and_sni(
    tls_server: TlsServer,
) -> None:
    # push.example resolves nowhere: only the address given can have been reached.
    connection = tls_server.pinned("push.example")
    connection.request("POST", "/x", body=b"")
    assert connection.getresponse().status == 201
    assert tls_server.seen == [{"host": f"push.example:{tls_server.port}", "sni": "push.example"}]


def test_the_certificate_must_match_the_name_not_the_address(
    tls_server: TlsServer,
) -> None:
    connection = tls_server.pinned("other.example")
    with pytest.raises(ssl.SSLCertVerificationError):
        connection.request("POST", "/x", body=b"")
    assert tls_server.seen == []


def test_a_redirect_is_not_followed_and_a_silent_server_times_out_fast() -> None:
    hits: list[str] = []

    def redirect(request: BaseHTTPRequestHandler) -> None:
        hits.append(request.path)
        respond(request, 307, headers={"Location": "http://127.0.0.1:1/elsewhere"})

    client = PushClient(allow_local_http=True, timeout=0.5)
    with LocalServer(redirect, method="POST") as server:
        answer = client.post(f"http://127.0.0.1:{server.port}/p", b"x", {})
    assert (answer.result, answer.status, hits) == (Result.FAILED, 307, ["/p"])

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    started = datetime.now(UTC)
    answer = client.post(f"http://127.0.0.1:{silent.getsockname()[1]}/p", b"x", {})
    assert answer.result is Result.RETRY
    assert datetime.now(UTC) - started < timedelta(seconds=5)
    silent.close()


def test_a_push_service_that_answers_a_byte_at_a_time_is_cut_at_the_deadline() -> None:
    """Each byte comes well within the read timeout, the whole answer long after the deadline:
    the push is given up (to be retried), not waited out."""
    header = b"HTTP/1.1 201 Created\r\nX-Slow: " + b"a" * 60 + b"\r\nContent-Length: 0\r\n\r\n"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    done = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            for byte in header:
                if done.wait(0.1):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    client = PushClient(allow_local_http=True, timeout=0.5, deadline=1.0)
    try:
        answer = client.post(f"http://127.0.0.1:{listener.getsockname()[1]}/p", b"x", {})
    finally:
        done.set()
        thread.join(5)
        listener.close()
    assert answer.result is Result.RETRY

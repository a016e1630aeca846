"""The packaged zip's functions in clean processes, beside moto server and devstack's
WebSocket gateway (which also serves @connections): see support.py."""

from __future__ import annotations

import inspect
import ipaddress
import json
import ssl
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from devstack.fanout import create_fanout_queues
from devstack.issuer import DevIssuer
from devstack.tables import create_tables
from tests.conftest import REGION
from tests.e2e.support import local_client
from tests.lambda_runtime.support import (
    GatewayThread,
    LambdaFunction,
    function_environment,
    runtime_folder,
    unzip,
)
from tests.local_http import LocalServer, respond

API_ID = "zipapi0001"
SECRET = "zip-test-secret-0123456789abcdef0123456789abcdef"
FANOUT_THRESHOLD = "3"
EMAIL_FROM = "notices@legalaid.example.net"
BUS = "zip-notices"


# The package's tests share one moto server and one set of functions (tests/parallel.py keeps
# them on one worker); each test uses users, queues and rules of its own.
@pytest.fixture(scope="package")
def template(lambda_package: Path) -> dict[str, Any]:
    return json.loads((lambda_package / "sam.json").read_text())


@pytest.fixture(scope="package")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # Its backends are this process's: start from none of what earlier tests here left.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    yield url
    server.stop()


@pytest.fixture(scope="package")
def stack_refs(moto_url: str, template: dict[str, Any]) -> dict[str, str]:
    """Stand-ins, on moto server, for what the template's `Ref`s name in a deployed stack."""
    clients = {
        name: local_client(name, moto_url) for name in ("dynamodb", "sqs", "ssm", "sesv2", "events")
    }
    create_tables(
        clients["dynamodb"],
        connections_table="zip-connections",
        notifications_table="zip-notes",
        receipts_table="zip-receipts",
    )
    queue, _ = create_fanout_queues(clients["sqs"], prefix="zip")
    parameter = template["Parameters"]["JwtSecretParameterName"]["Default"]
    clients["ssm"].put_parameter(Name=parameter, Value=SECRET, Type="SecureString")
    # The verified SES identity a deploy needs (README "Deploy"), given as EmailFrom.
    clients["sesv2"].create_email_identity(EmailIdentity=EMAIL_FROM)
    clients["events"].create_event_bus(Name=BUS)
    return {
        "ConnectionsTable": "zip-connections",
        "NotificationsTable": "zip-notes",
        "ReceiptsTable": "zip-receipts",
        "WebsocketAPI": API_ID,
        "FanoutQueue": queue,
        "JwtSecretParameterName": parameter,
        "EmailFrom": EMAIL_FROM,
        "NotificationEvents": BUS,
    }


@dataclass(frozen=True)
class Deployment:
    """The package, its template and moto server: what each set of functions starts from."""

    package: Path
    template: dict[str, Any]
    moto_url: str
    folders: pytest.TempPathFactory

    @contextmanager
    def start(
        self,
        refs: dict[str, str],
        gateway: GatewayThread,
        *,
        only: set[str] | None = None,
        environment: dict[str, str] | None = None,
    ) -> Iterator[dict[str, LambdaFunction]]:
        """The template's functions (`only` those named), by logical id, each in its own
        process, with `refs` for the stack's `Ref`s, pushing through `gateway`."""
        task_root = unzip(self.package / "deployment.zip", self.folders.mktemp("task"))
        runtime_dir = runtime_folder(self.folders.mktemp("runtime") / "python")
        test_settings = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            # Every AWS client of the function talks to moto server; pushes go to the gateway.
            "AWS_ENDPOINT_URL": self.moto_url,
            "WEBSOCKET_ENDPOINT": gateway.url,
            "FANOUT_THRESHOLD": FANOUT_THRESHOLD,
            "FANOUT_BATCH_SIZE": "2",
            **(environment or {}),
        }
        started: dict[str, LambdaFunction] = {}
        try:
            for logical_id, resource in self.template["Resources"].items():
                if resource["Type"] != "AWS::Serverless::Function":
                    continue
                if only is not None and logical_id not in only:
                    continue
                properties = resource["Properties"]
                started[logical_id] = LambdaFunction(
                    logical_id,
                    handler=properties["Handler"],
                    task_root=task_root,
                    runtime_dir=runtime_dir,
                    environment={
                        **function_environment(self.template, logical_id, refs),
                        **test_settings,
                    },
                    region=REGION,
                    timeout_s=int(properties.get("Timeout", 60)),
                    memory_mb=int(properties.get("MemorySize", 128)),
                )
            yield started
        finally:
            for function in started.values():
                function.close()


@pytest.fixture(scope="package")
def deployment(
    lambda_package: Path,
    template: dict[str, Any],
    moto_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Deployment:
    return Deployment(lambda_package, template, moto_url, tmp_path_factory)


@pytest.fixture(scope="package")
def gateway() -> Iterator[GatewayThread]:
    with GatewayThread() as thread:
        yield thread


@pytest.fixture(scope="package")
def functions(
    deployment: Deployment, stack_refs: dict[str, str], gateway: GatewayThread
) -> Iterator[dict[str, LambdaFunction]]:
    """Every function of the template, by logical id, each in its own process."""
    with deployment.start(stack_refs, gateway) as started:
        yield started


# --- an OIDC provider over https (issue 11: the zip also runs the RS256 path) -----------------


@dataclass(frozen=True)
class Provider:
    issuer: DevIssuer
    ca_file: Path


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a certificate it signed for 127.0.0.1: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def certificate(
        subject: str, key: Any, issuer: str, signer: Any, *extensions: tuple[Any, bool]
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    # x509.KeyUsage takes every usage by name: a CA's are signing certificates and revocations.
    ca_usage = dict.fromkeys(inspect.signature(x509.KeyUsage).parameters, False) | {
        "digital_signature": True,
        "key_cert_sign": True,
        "crl_sign": True,
    }
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate(
        "zip test CA",
        ca_key,
        "zip test CA",
        ca_key,
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (x509.KeyUsage(**ca_usage), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(
        "127.0.0.1",
        key,
        "zip test CA",
        ca_key,
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """devstack's dev issuer, its JWKS served over https on 127.0.0.1 by a CA of this test."""
    ca_file, cert, key = _certificates(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    served: dict[str, bytes] = {}  # path -> body: the JWKS, once the issuer knows its URL

    def serve(request: BaseHTTPRequestHandler) -> None:
        body = served.get(request.path)
        json_type = {"Content-Type": "application/json"}
        respond(request, 200 if body else 404, body or b"{}", json_type)

    with LocalServer(serve, tls=context) as server:
        issuer = DevIssuer(f"https://127.0.0.1:{server.port}")
        served["/jwks.json"] = json.dumps(issuer.jwks()).encode()
        yield Provider(issuer, ca_file)


@pytest.fixture(scope="module")
def rs256_gateway() -> Iterator[GatewayThread]:
    with GatewayThread() as thread:
        yield thread


@pytest.fixture(scope="module")
def rs256_functions(
    deployment: Deployment,
    stack_refs: dict[str, str],
    rs256_gateway: GatewayThread,
    provider: Provider,
) -> Iterator[dict[str, LambdaFunction]]:
    """The token-verifying functions deployed with an OIDC provider (the template's JwksUrl,
    JwtIssuer, JwtAudience parameters), trusting the test's CA as a real one would be."""
    issuer = provider.issuer
    refs = {
        **stack_refs,
        "JwksUrl": issuer.jwks_url,
        "JwtIssuer": issuer.issuer,
        "JwtAudience": issuer.audience,
    }
    with deployment.start(
        refs,
        rs256_gateway,
        only={"APIHandler", "WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect"},
        environment={"SSL_CERT_FILE": str(provider.ca_file)},
    ) as started:
        yield started

"""Client tokens scoped to sources: a client can never observe another source through
any RPC; health and reflection stay open; TLS and mutual TLS on the gRPC port."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from statusgate.app import load_settings
from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.payloads import finbox_expiry

FINBOX_ONLY = "token-finbox-only"
EVERYTHING = "token-admin"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CONFIG = f"""
[sources.finbox]
provider = "finbox"
[sources.setu]
provider = "setu"

[clients.lending]
token_sha256 = "{sha(FINBOX_ONLY)}"
sources = ["finbox"]
permissions = ["read"]
max_watch_streams = 2

[clients.ops]
token_sha256 = "{sha(EVERYTHING)}"
sources = ["*"]
permissions = ["admin"]
"""

SETU_CONSENT = {
    "type": "CONSENT_STATUS_UPDATE",
    "timestamp": "2026-01-01T10:00:00.000Z",
    "consentId": "c1",
    "success": True,
    "data": {"status": "ACTIVE", "detail": {}},
    "error": None,
}


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def scoped(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    config = tmp_path / "statusgate.toml"
    config.write_text(CONFIG)
    settings = load_settings(
        config,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    gw = await start_gateway(settings)
    assert (await gw.post("finbox", finbox_expiry("f1")))[0] == 200
    assert (await gw.post("setu", SETU_CONSENT))[0] == 200
    try:
        yield gw
    finally:
        await stop_gateway(gw)


async def code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_missing_or_wrong_token_is_unauthenticated(scoped: RunningGateway) -> None:
    request = pb.GetStatusRequest(name="sources/finbox/sessions/f1")
    assert await code_of(scoped.stub.GetStatus(request)) == grpc.StatusCode.UNAUTHENTICATED
    wrong = scoped.stub.GetStatus(request, metadata=bearer("guess"))
    assert await code_of(wrong) == grpc.StatusCode.UNAUTHENTICATED
    ok = scoped.stub.GetStatus(request, metadata=bearer(FINBOX_ONLY))
    assert await code_of(ok) == grpc.StatusCode.OK


async def test_a_scoped_client_never_sees_another_source(scoped: RunningGateway) -> None:
    stub, md = scoped.stub, bearer(FINBOX_ONLY)
    setu_name = "sources/setu/consents/c1"
    denied = grpc.StatusCode.PERMISSION_DENIED
    # Explicit names outside the client's sources: PERMISSION_DENIED, everywhere.
    assert await code_of(stub.GetStatus(pb.GetStatusRequest(name=setu_name), metadata=md)) == denied
    assert (
        await code_of(
            stub.BatchGetStatuses(
                pb.BatchGetStatusesRequest(names=["sources/finbox/sessions/f1", setu_name]),
                metadata=md,
            )
        )
        == denied
    )
    assert (
        await code_of(
            stub.ListStatusEvents(pb.ListStatusEventsRequest(name=setu_name), metadata=md)
        )
        == denied
    )
    assert (
        await code_of(stub.ListStatuses(pb.ListStatusesRequest(parent="sources/setu"), metadata=md))
        == denied
    )
    assert (
        await code_of(
            stub.WaitStatus(
                pb.WaitStatusRequest(name=setu_name, condition=pb.WaitCondition(terminal=True)),
                metadata=md,
                timeout=2,
            )
        )
        == denied
    )
    assert (
        await code_of(stub.PollStatuses(pb.PollStatusesRequest(names=[setu_name]), metadata=md))
        == denied
    )  # no poll permission either

    # Lists and Watch streams silently leave other sources out.
    everything = await stub.ListStatuses(pb.ListStatusesRequest(), metadata=md)
    assert [s.source for s in everything.statuses] == ["finbox"]
    asked_for_setu = await stub.ListStatuses(
        pb.ListStatusesRequest(filter=pb.StatusFilter(sources=["setu"])), metadata=md
    )
    assert list(asked_for_setu.statuses) == []
    stream = stub.WatchStatuses(pb.WatchStatusesRequest(after_sequence=0), metadata=md)
    seen: list[str] = []
    async for message in stream:
        seen.extend(e.status.source for e in message.events)
        if message.caught_up:
            break
    await scoped.post("setu", {**SETU_CONSENT, "consentId": "c2"})
    await scoped.post("finbox", finbox_expiry("f2"))
    async for message in stream:
        seen.extend(e.status.source for e in message.events)
        if any(e.status.name.endswith("/f2") for e in message.events):
            break
    stream.cancel()
    assert seen == ["finbox", "finbox"]

    # The admin sees both.
    both = await stub.ListStatuses(pb.ListStatusesRequest(), metadata=bearer(EVERYTHING))
    assert {s.source for s in both.statuses} == {"finbox", "setu"}


async def test_watch_streams_are_limited_per_client(scoped: RunningGateway) -> None:
    md = bearer(FINBOX_ONLY)
    streams = [scoped.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=md) for _ in range(2)]
    for stream in streams:
        assert (await anext(aiter(stream))).caught_up
    third = scoped.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=md)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await anext(aiter(third))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Another client is not affected by this one's flood.
    other = scoped.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=bearer(EVERYTHING))
    assert (await anext(aiter(other))).caught_up
    for stream in [*streams, other]:
        stream.cancel()
    # A closed stream frees its slot.
    await asyncio.sleep(0.2)
    again = scoped.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=md)
    assert (await anext(aiter(again))).caught_up
    again.cancel()


async def test_health_stays_open(scoped: RunningGateway) -> None:
    health = health_pb2_grpc.HealthStub(scoped.channel)
    response = await health.Check(health_pb2.HealthCheckRequest())
    assert response.status == health_pb2.HealthCheckResponse.SERVING


# --- TLS ---------------------------------------------------------------------------------


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer else (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


async def test_mutual_tls_on_the_grpc_port(tmp_path: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test-ca", ca_key, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("localhost", server_key, (ca.subject, ca_key))
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate("client", client_key, (ca.subject, ca_key))
    for name, data in {
        "ca.pem": _pem(ca),
        "server.pem": _pem(server),
        "server.key": _key_pem(server_key),
    }.items():
        (tmp_path / name).write_bytes(data)
    config = tmp_path / "statusgate.toml"
    config.write_text(
        '[grpc_tls]\ncert_file = "server.pem"\nkey_file = "server.key"\nclient_ca_file = "ca.pem"\n'
    )
    settings = load_settings(
        config,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    gw = await start_gateway(settings)
    target = f"localhost:{gw.ports.grpc}"
    request = pb.ListStatusesRequest()
    try:
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=_pem(ca),
            private_key=_key_pem(client_key),
            certificate_chain=_pem(client),
        )
        async with grpc.aio.secure_channel(target, with_cert) as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            await stub.ListStatuses(request, timeout=5)
        without_cert = grpc.ssl_channel_credentials(root_certificates=_pem(ca))
        async with grpc.aio.secure_channel(target, without_cert) as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            assert (
                await code_of(stub.ListStatuses(request, timeout=5)) == grpc.StatusCode.UNAVAILABLE
            )
        async with grpc.aio.insecure_channel(target) as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            assert (
                await code_of(stub.ListStatuses(request, timeout=5)) == grpc.StatusCode.UNAVAILABLE
            )
    finally:
        await stop_gateway(gw)

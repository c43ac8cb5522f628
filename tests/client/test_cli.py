"""The operating commands as a person runs them: ``statusgate`` subprocesses against a
real gateway — simulate, deliveries list|show|replay, and tail following the gateway
across a restart."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from statusgate.app import load_settings
from statusgate.client.simulate import simulate
from statusgate.providers.registry import PROVIDERS
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.operating import ADMIN, READER, operating_gateway
from tests.payloads import finbox_expiry
from tests.process import ServeProcess


async def statusgate(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statusgate.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def target(gw: RunningGateway, token: str = ADMIN) -> dict[str, str]:
    return {"STATUSGATE_TARGET": f"127.0.0.1:{gw.ports.grpc}", "STATUSGATE_TOKEN": token}


async def test_simulate_list_names_the_scenarios() -> None:
    code, out, _ = await statusgate("simulate", "--list")
    assert code == 0
    lines = out.splitlines()
    for expected in (
        "finbox upload-then-enrichment",
        "finbox expiry",
        "banqware session-to-transactions",
        "banqware payment-completed",
        "setu consent-active",
        "setu data-session-completed",
    ):
        assert expected in lines
    assert all(len(line.split()) == 2 for line in lines)


async def test_simulate_then_inspect_and_replay_the_deliveries(tmp_path: Path) -> None:
    async with operating_gateway(tmp_path) as gw:
        url = gw.url("/webhooks/finbox")
        code, out, err = await statusgate(
            "simulate",
            "finbox",
            "upload-then-enrichment",
            "--to",
            url,
        )
        assert code == 0, err
        answers = out.splitlines()
        assert [line.split()[:4] for line in answers] == [
            ["1/2", "upload_completed", "→", "200"],
            ["2/2", "enrichment_all_completed", "→", "200"],
        ]
        # Fresh ids: the same scenario again is a new session, not a duplicate.
        code, again, _ = await statusgate(
            "simulate",
            "finbox",
            "upload-then-enrichment",
            "--to",
            url,
        )
        assert code == 0
        first_session = json.loads(answers[0].split(" ", 4)[4])["events"][-1]["name"]
        second_session = json.loads(again.splitlines()[0].split(" ", 4)[4])["events"][-1]["name"]
        assert first_session != second_session
        assert (await gw.post("finbox", b"not json"))[0] == 400

        code, out, err = await statusgate("deliveries", "list", env=target(gw))
        assert code == 0, err
        rows = out.splitlines()
        assert len(rows) == 5 and "rejected" in rows[0] and "mapped  3 events" in rows[1]
        rejected_id = rows[0].split()[0]

        code, out, _ = await statusgate(
            "deliveries", "list", "--verdict", "rejected", "--json", env=target(gw)
        )
        [document] = [json.loads(line) for line in out.splitlines()]
        assert document["verdict"] == "DELIVERY_VERDICT_REJECTED"

        code, out, _ = await statusgate("deliveries", "show", rejected_id, env=target(gw))
        assert code == 0 and "verdict:     rejected" in out and out.rstrip().endswith("not json")

        code, out, _ = await statusgate(
            "deliveries",
            "replay",
            "--source",
            "finbox",
            "--verdict",
            "mapped",
            "--dry-run",
            env=target(gw),
        )
        assert code == 0
        assert out.count("mapped → mapped  0 events would be applied") == 4

        code, out, _ = await statusgate(
            "deliveries", "replay", rejected_id, "unknown-id", env=target(gw)
        )
        assert code == 1  # one of them failed
        assert f"{rejected_id}  rejected → rejected  0 events applied" in out
        assert "unknown-id  error: delivery 'unknown-id' is not known" in out

        # The admin permission is needed.
        code, _, err = await statusgate("deliveries", "list", env=target(gw, READER))
        assert code == 1 and "PERMISSION_DENIED" in err


async def test_simulate_signs_as_the_source_expects(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "aa.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "aa.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = tmp_path / "statusgate.toml"
    config.write_text(
        """
[sources.finbox]
provider = "finbox"
auth = { method = "shared_secret", secret_env = "SIM_FINBOX_SECRET" }
[sources.banqware]
provider = "banqware"
auth = { method = "hmac", secret_envs = ["SIM_HMAC_NEW", "SIM_HMAC_OLD"] }
[sources.setu]
provider = "setu"
[sources.setu.auth]
method = "all_of"
methods = [
  { method = "jws", public_key_files = ["aa.pem"] },
  { method = "basic", username = "setu", password_env = "SIM_BASIC" },
]
"""
    )
    secrets = {
        "SIM_FINBOX_SECRET": "finbox-secret",
        "SIM_HMAC_NEW": "whsec_c2VjcmV0LWtleS1uZXc=",
        "SIM_HMAC_OLD": "old",
        "SIM_BASIC": "basic-password",
    }
    os.environ.update(secrets)
    try:
        settings = load_settings(
            config,
            http="127.0.0.1:0",
            grpc="127.0.0.1:0",
            api="127.0.0.1:0",
            store=f"sqlite:///{tmp_path / 'g.db'}",
        )
        gw = await start_gateway(settings)
    finally:
        for name in secrets:
            del os.environ[name]
    try:
        runs = [
            ("finbox", "expiry", []),
            ("banqware", "payment-completed", []),
            ("setu", "consent-active", ["--jws-key", str(tmp_path / "aa.key")]),
        ]
        for provider, scenario, extra in runs:
            code, out, err = await statusgate(
                "simulate",
                provider,
                scenario,
                "--to",
                gw.url(f"/webhooks/{provider}"),
                "--config",
                str(config),
                *extra,
                env=secrets,
            )
            assert code == 0, (provider, out, err)
            assert all(" → 200 " in line for line in out.splitlines()), out
        # Without the secrets the gateway refuses it, and simulate says so.
        code, out, err = await statusgate(
            "simulate",
            "setu",
            "consent-active",
            "--to",
            gw.url("/webhooks/setu"),
            "--config",
            str(config),
            env=secrets,
        )
        assert code == 2 and "--jws-key" in err
        code, out, _ = await statusgate(
            "simulate",
            "finbox",
            "expiry",
            "--to",
            gw.url("/webhooks/finbox"),
            "--config",
            str(config),
            env={**secrets, "SIM_FINBOX_SECRET": "wrong"},
        )
        assert code == 1 and " → 401 " in out
    finally:
        await stop_gateway(gw)


@pytest.mark.timeout(180)
async def test_tail_follows_across_a_gateway_restart(tmp_path: Path) -> None:
    gateway = ServeProcess(f"sqlite:///{tmp_path / 'g.db'}", log=tmp_path / "gateway.log")
    await gateway.start()
    env = {**os.environ, "STATUSGATE_TARGET": f"127.0.0.1:{gateway.grpc_port}"}
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statusgate.cli",
        "tail",
        "--json",
        "--after",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert tail.stdout is not None

    async def post(session: str) -> None:
        import aiohttp

        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{gateway.base}/webhooks/finbox", json=finbox_expiry(session)) as answer,
        ):
            assert answer.status == 200

    async def lines(count: int) -> list[dict[str, object]]:
        assert tail.stdout is not None
        out = []
        for _ in range(count):
            line = await asyncio.wait_for(tail.stdout.readline(), 60)
            out.append(json.loads(line))
        return out

    try:
        await post("before-1")
        await post("before-2")
        first = await lines(2)
        assert [e["sequence"] for e in first] == ["1", "2"]
        assert gateway.terminate() == 0
        # Events committed while tail cannot see the gateway: after the restart it
        # resumes after the last one it printed, missing none and repeating none.
        await gateway.start(same_ports=True)
        await post("during-1")
        await post("after-restart")
        second = await lines(2)
        assert [e["sequence"] for e in second] == ["3", "4"]
        assert [e["status"]["name"] for e in second] == [  # type: ignore[index]
            "sources/finbox/sessions/during-1",
            "sources/finbox/sessions/after-restart",
        ]
    finally:
        tail.terminate()
        _, err = await tail.communicate()
        gateway.terminate()
    assert "resuming after sequence 2" in err.decode()


async def test_every_scenario_of_every_provider_is_accepted(gw: RunningGateway) -> None:
    """Against a gateway with the default sources, run in-process (the subprocess tests
    above cover the command itself): each run maps, twice (fresh ids, and fresh message
    ids and times where a provider checks them)."""
    settings = load_settings(None)
    for spec in PROVIDERS:
        for scenario in spec.scenarios:
            for _ in range(2):
                out, err = io.StringIO(), io.StringIO()
                code = await simulate(
                    PROVIDERS,
                    settings,
                    spec.name,
                    scenario.name,
                    url=gw.url(f"/webhooks/{spec.name}"),
                    source_id="",
                    jws_key=None,
                    out=out,
                    err=err,
                )
                answers = out.getvalue().splitlines()
                assert code == 0, (scenario.name, answers, err.getvalue())
                assert answers and all(" → 200 " in answer for answer in answers), answers


def test_tail_lines_show_the_trace_an_event_carries() -> None:
    from statusgate.client.formatting import event_line
    from statusgate.v1 import status_pb2 as pb

    traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = pb.StatusEvent(sequence=7, origin=pb.ORIGIN_WEBHOOK, trace_parent=traced)
    event.status.name = "sources/finbox/sessions/s1"
    event.status.state = pb.STATE_COMPLETED
    assert event_line(event).endswith(f"webhook  trace {traced}")
    event.trace_parent = ""
    assert "trace" not in event_line(event)

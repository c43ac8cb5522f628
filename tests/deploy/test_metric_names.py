"""Every metric the dashboard and the alert rules read is one the gateway exposes, with
the labels they match on: a real ``statusgate serve --workers 2`` on PostgreSQL (as
deploy/compose.yaml runs it), driven through each path that makes a labelled family
appear, scraped on its API listener and parsed the way Prometheus reads it; and the
scrape passes ``promtool check metrics``."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.deploy.promql import expressions, metric_names, selector_labels
from tests.fakes.finbox import FakeFinbox
from tests.fakes.harness import ENV, finbox_api
from tests.fakes.server import reply
from tests.payloads import finbox_upload
from tests.process import ServeProcess
from tests.store.conftest import postgres_url  # noqa: F401 - a fixture

# Series Prometheus makes itself for each target, and labels it attaches to every series
# it scrapes: neither is the gateway's to expose.
PROMETHEUS_SERIES = {"up"}
TARGET_LABELS = {"job", "instance"}
# Store-derived gauges are refreshed on a schedule (every 15 s by default), not per
# scrape. Patience, never a latency assertion.
PATIENCE = 60
SECRET = "deploy-test-webhook-secret"
SESSION = "sources/finbox/sessions/deploy-1"


def exposed(text: str) -> dict[str, set[str]]:
    """Series name -> its label names, as Prometheus stores a scrape: a counter family
    ``x`` as ``x_total``, a histogram as ``x_bucket`` (with ``le``), ``x_sum``,
    ``x_count``; gauges under their own name."""
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def wanted() -> dict[str, set[str]]:
    """Metric name -> label names matched on, over every expression of deploy/."""
    found: dict[str, set[str]] = {}
    for expr in expressions().values():
        for name in metric_names(expr):
            found.setdefault(name, set())
        for name, labels in selector_labels(expr).items():
            found.setdefault(name, set()).update(labels - TARGET_LABELS)
    for name in PROMETHEUS_SERIES:
        found.pop(name, None)
    return found


def problems(series: dict[str, set[str]]) -> list[str]:
    found = []
    for name, labels in sorted(wanted().items()):
        if name not in series:
            found.append(f"{name}: not exposed")
        elif missing := labels - series[name]:
            found.append(f"{name}: no label {sorted(missing)} (it has {sorted(series[name])})")
    return found


def config(tmp_path: Path, fake: FakeFinbox) -> Path:
    """One FinBox source with webhook authentication (for 401s) and its API on the fake
    (for upstream requests, and a circuit breaker that opens at the first failure)."""
    settings = finbox_api(fake, breaker_failures=1, retries=0)
    api = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    path = tmp_path / "statusgate.toml"
    path.write_text(
        "[sources.finbox]\n"
        'provider = "finbox"\n'
        "[sources.finbox.auth]\n"
        'method = "shared_secret"\n'
        'secret_env = "TEST_DEPLOY_WEBHOOK_SECRET"\n'
        f"[sources.finbox.api]\n{api}\n"
    )
    return path


async def drive(
    gateway: ServeProcess, fake: FakeFinbox, stub: status_service_pb2_grpc.StatusServiceAsyncStub
) -> None:
    """A mapped webhook and a refused one, gRPC reads, a poll that calls FinBox and one
    that finds it failing."""
    url = f"{gateway.base}/webhooks/finbox"
    payload = finbox_upload("deploy-1", ("a1", "COMPLETED"))
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=payload, headers={"x-secret-key": SECRET}) as answer:
            assert answer.status == 200, await answer.text()
        async with http.post(url, json=payload, headers={"x-secret-key": "wrong"}) as answer:
            assert answer.status == 401
    status = await stub.GetStatus(pb.GetStatusRequest(name=SESSION))
    assert status.state == pb.STATE_COMPLETED
    polled = await stub.PollStatuses(pb.PollStatusesRequest(names=[SESSION]))
    assert polled.results[0].upstream_calls > 0, polled
    # FinBox failing opens the breaker (after one failure, see config), so its gauge
    # has moved whether or not the gateway exposes it from the start.
    fake.fail_all(reply(503))
    polled = await stub.PollStatuses(pb.PollStatusesRequest(names=[SESSION]))
    assert polled.results[0].HasField("error"), polled
    fake.fail_all(None)


async def scrape(gateway: ServeProcess) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.api_base}/metrics") as answer,
    ):
        assert answer.status == 200
        return await answer.text()


def lint(text: str) -> str:
    """What ``promtool check metrics`` (Prometheus's own linter of an exposition: names,
    units, suffixes, help texts) says of a scrape; "" when it finds nothing."""
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool check metrics skipped: promtool is not installed (Debian's prometheus)")
        return ""
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    return "" if checked.returncode == 0 else checked.stdout + checked.stderr


async def test_every_metric_of_the_dashboard_and_the_rules_is_exposed(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811 - the imported fixture
) -> None:
    fake = FakeFinbox()
    await fake.start()
    fake.uploaded("deploy-1", ("a1", "COMPLETED"))
    gateway = ServeProcess(
        postgres_url,
        config=config(tmp_path, fake),
        env={**ENV, "TEST_DEPLOY_WEBHOOK_SECRET": SECRET},
        log=tmp_path / "serve.log",
        workers=2,
    )
    await gateway.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            await drive(gateway, fake, stub)  # type: ignore[arg-type]
            # A Watch stream stays open while the gateway is scraped.
            watch = stub.WatchStatuses(pb.WatchStatusesRequest(after_sequence=0))
            first = await watch.read()
            assert first.events
            deadline = time.monotonic() + PATIENCE
            while found := problems(exposed(text := await scrape(gateway))):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(1)
            watch.cancel()
        assert not found, "\n".join(found)
        assert not lint(text), lint(text)
    finally:
        gateway.terminate()
        await fake.close()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_the_linter_finds_what_it_is_for() -> None:
    assert "_total" in lint("# HELP jobs Jobs.\n# TYPE jobs counter\njobs 1\n")
    assert lint("# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 1\n") == ""

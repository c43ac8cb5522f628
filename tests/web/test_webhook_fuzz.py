"""Property: whatever a provider sends, the front door keeps the delivery and answers as
its verdict says: 200 (mapped), 202 (unmapped; 200 for a provider whose answers have no
202) or a 4xx (rejected: 400, or the 404 / 409 of a provider's own vocabulary). Real
payloads from the golden fixtures are mutated (keys dropped, nulls, wrong types, extra
keys, huge strings, unicode including lone surrogates) and posted to a real gateway over
HTTP, on the sub-path each fixture names."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusgate.app import BoundPorts, Gateway, load_settings
from statusgate.store.base import DeliveryVerdict
from tests.providers.test_fixtures import fixture_files, load

PAYLOADS = [
    (spec.name, load(path).get("path", ""), load(path)["payload"]) for spec, path in fixture_files()
]
# The answers each verdict may get.
ANSWERS = {
    DeliveryVerdict.MAPPED: {200},
    DeliveryVerdict.UNMAPPED: {200, 202},
    DeliveryVerdict.REJECTED: {400, 404, 409},
}

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec=None), max_size=10),  # includes lone surrogates
    st.just("x" * 50_000),  # large, yet a mutated body stays under the 1 MiB limit
    st.just("2025-13-45 99:99:99"),
    st.just("0001-01-01T00:00:00+01:00"),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with a few random changes at random depths."""
    if isinstance(value, dict) and value and depth < 4:
        out = dict(value)
        for key in draw(st.lists(st.sampled_from(sorted(out)), max_size=3, unique=True)):
            action = draw(st.sampled_from(["drop", "replace", "recurse", "recurse"]))
            if action == "drop":
                del out[key]
            elif action == "replace":
                out[key] = draw(leaf)
            else:
                out[key] = draw(mutated(out[key], depth + 1))
        if draw(st.booleans()):
            out[draw(st.text(max_size=8))] = draw(leaf)
        return out
    if isinstance(value, list) and value and depth < 4:
        index = draw(st.integers(0, len(value) - 1))
        out_list = list(value)
        out_list[index] = draw(mutated(out_list[index], depth + 1))
        return out_list
    return draw(st.one_of(st.just(value), leaf))


class GatewayThread:
    """A real gateway on its own event loop, so hypothesis can drive it synchronously."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        settings_ = load_settings(
            None,
            http="127.0.0.1:0",
            grpc="127.0.0.1:0",
            api="127.0.0.1:0",
            store=f"sqlite:///{tmp / 'f.db'}",
        )
        self.gateway = Gateway(settings_)
        self.ports: BoundPorts = self.run(self.gateway.start())

    def run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=30)

    def close(self) -> None:
        self.run(self.gateway.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    running = GatewayThread(tmp_path_factory.mktemp("fuzz"))
    yield running
    running.close()


def post(port: int, source: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/{source}" + (f"/{path}" if path else ""),
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_payloads_are_kept_and_answered_by_their_verdict(
    served: GatewayThread, data: st.DataObject
) -> None:
    provider, path, payload = data.draw(st.sampled_from(PAYLOADS))
    body = json.dumps(data.draw(mutated(payload))).encode()
    code, answer = post(served.ports.http, provider, path, body)
    kept = served.run(served.gateway.store.list_deliveries([], source=provider, limit=100_000))
    matching = [d for d in kept if d.body == body]
    assert matching, (code, answer)
    # The latest with this body is this one (hypothesis may post one body twice).
    delivery = matching[-1]
    assert code in ANSWERS[delivery.verdict], (code, answer, delivery.verdict)
    if "delivery_id" in answer:
        assert answer["delivery_id"] == delivery.id

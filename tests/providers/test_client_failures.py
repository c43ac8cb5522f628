"""One table of upstream failure cases (tests/fakes/cases.py), run against every
provider client: FinBox, Setu and banqware, each against its fake API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from statusgate.core.errors import ApiError
from statusgate.providers.registry import PROVIDERS
from statusgate.rpc.errors import code_of
from statusgate.upstream.http import CallScope
from tests.fakes.cases import CASES, Case
from tests.fakes.harness import FAKES, FAST_API, Harness, set_env, start_harness, stop_harness


@pytest.fixture(params=PROVIDERS.provider_names)
def provider(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    set_env(monkeypatch)
    return str(request.param)


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def harness(provider: str, case: Case) -> AsyncIterator[Harness]:
    running = await start_harness(provider, **case.api)
    try:
        yield running
    finally:
        await stop_harness(running)


async def test_failure_case(harness: Harness, case: Case) -> None:
    case.program(harness)
    scope = CallScope.within(case.deadline)
    try:
        answer = await harness.poller.poll(harness.name, None, scope)
        error = answer.error
    except ApiError as raised:
        answer, error = None, raised

    if case.code is None:
        assert error is None, error
        assert answer is not None and answer.updates
    else:
        assert error is not None, "the poll should have failed"
        assert (code_of(error), error.reason) == (case.code, case.reason), error
        for words in case.says:
            assert words in error.message, error.message

    every = FAST_API["retries"] + 1
    for endpoint in harness.endpoints:
        calls = harness.fake.calls[endpoint]
        if case.calls == "all":
            expected = every
        elif case.calls == "all+":
            assert calls >= every, (endpoint, calls)
            continue
        else:
            expected = int(case.calls)
        if harness.provider == "setu" and case.id == "unauthorized":
            expected = 2  # the 401 asked for a new token once, then counted as ours
        assert calls == expected, (endpoint, calls)
    if case.waited:
        assert max(harness.sleeps) >= case.waited
    sent = sum(harness.fake.calls.values())
    # Our count of upstream calls is what the server saw (aiohttp repeats a request on a
    # dropped keep-alive connection once by itself, unseen by us).
    assert scope.calls == sent if case.calls != "all+" else scope.calls <= sent


def test_every_provider_has_a_fake_api() -> None:
    assert set(FAKES) == set(PROVIDERS.provider_names)

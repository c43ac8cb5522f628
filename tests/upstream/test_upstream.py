"""The pieces under every upstream call: error envelopes, Retry-After, the circuit
breaker and single flight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import grpc
import pytest

from statusgate.core.errors import Reason
from statusgate.rpc.errors import code_of
from statusgate.upstream.breaker import BreakerState, CircuitBreaker, Outcome
from statusgate.upstream.envelopes import describe_body, http_failure, parse_retry_after
from statusgate.upstream.single_flight import SingleFlight
from tests.fakes.server import HTML_PAGE


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            b'{"error": {"code": "SESSION_NOT_FOUND", "message": "no session"}}',
            "SESSION_NOT_FOUND",
            "no session",
        ),
        (
            b'{"detail": "Authentication credentials were not provided."}',
            "",
            "Authentication credentials were not provided.",
        ),
        (
            b'{"errorCode": "NotFound", "errorMsg": "consent not found", "traceId": "t"}',
            "NotFound",
            "consent not found",
        ),
        (
            b'{"errorMsg": "bad", "errorCode": "InvalidRequest", "txnid": "x", "ver": "2"}',
            "InvalidRequest",
            "bad",
        ),
        (b'{"errorCode": 404, "errorMessage": "Session not found"}', "404", "Session not found"),
        (b'{"success": false, "data": "Internal Server Error"}', "", "Internal Server Error"),
        (b'{"success": false, "message": "nope"}', "", "nope"),
        (b"", "", "an empty body"),
        (b"   \n", "", "an empty body"),
        (HTML_PAGE, "", "an HTML page titled '502 Bad Gateway'"),
        (b'{"upload_status": "COMPL', "", 'a body that is not JSON: \'{"upload_status": "COMPL\''),
        (b"[1, 2]", "", "[1, 2]"),
    ],
)
def test_error_bodies_are_described(body: bytes, code: str, message: str) -> None:
    assert describe_body(body) == (code, message)


def test_descriptions_are_short_and_printable() -> None:
    _, message = describe_body(b'{"message": "' + b"x\\n" * 500 + b'"}')
    assert len(message) <= 300 and "\n" not in message


@pytest.mark.parametrize(
    ("status", "code", "reason", "retryable", "down"),
    [
        (401, grpc.StatusCode.PERMISSION_DENIED, Reason.UPSTREAM_AUTH_FAILED, False, False),
        (403, grpc.StatusCode.PERMISSION_DENIED, Reason.UPSTREAM_AUTH_FAILED, False, False),
        (404, grpc.StatusCode.NOT_FOUND, Reason.UPSTREAM_NOT_FOUND, False, False),
        (410, grpc.StatusCode.NOT_FOUND, Reason.UPSTREAM_NOT_FOUND, False, False),
        (400, grpc.StatusCode.INVALID_ARGUMENT, Reason.UPSTREAM_BAD_REQUEST, False, False),
        (409, grpc.StatusCode.FAILED_PRECONDITION, Reason.UPSTREAM_REJECTED, False, False),
        (429, grpc.StatusCode.UNAVAILABLE, Reason.UPSTREAM_RATE_LIMITED, True, False),
        (500, grpc.StatusCode.UNAVAILABLE, Reason.UPSTREAM_UNAVAILABLE, True, True),
        (502, grpc.StatusCode.UNAVAILABLE, Reason.UPSTREAM_UNAVAILABLE, True, True),
    ],
)
def test_http_statuses(
    status: int, code: grpc.StatusCode, reason: str, retryable: bool, down: bool
) -> None:
    failure = http_failure(status, b"", "7", "X GET /thing")
    assert (code_of(failure.error), failure.error.reason) == (code, reason)
    assert (failure.retryable, failure.provider_down) == (retryable, down)
    assert failure.error.message.startswith(f"X GET /thing answered HTTP {status}")


def test_retry_after() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 31
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_fails_fast_and_closes_after_a_good_trial() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record(Outcome.FAILURE)
    assert breaker.allow()
    breaker.record(Outcome.SUCCESS)  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.record(Outcome.FAILURE)
    assert breaker.state == BreakerState.OPEN and not breaker.allow()
    assert breaker.retry_in() == 30

    clock.now += 30
    assert breaker.state == BreakerState.HALF_OPEN
    assert breaker.allow()  # the one trial
    assert not breaker.allow()  # everyone else still fails fast
    breaker.record(Outcome.SUCCESS)
    assert breaker.state == BreakerState.CLOSED and breaker.allow()


def test_breaker_reopens_after_a_failed_trial_and_ignores_neutral_outcomes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock=clock)
    assert breaker.allow()
    breaker.record(Outcome.FAILURE)
    clock.now += 10
    assert breaker.allow()
    breaker.record(Outcome.NEUTRAL)  # a 429 says nothing: the next call may try
    assert breaker.allow()
    breaker.record(Outcome.FAILURE)
    assert breaker.state == BreakerState.OPEN and breaker.retry_in() == 10


def _opened(clock: Clock) -> CircuitBreaker:
    breaker = CircuitBreaker(1, 10, clock=clock)
    assert breaker.allow()
    breaker.record(Outcome.FAILURE)
    clock.now += 10  # cooled down: the next call is the trial
    return breaker


async def test_calls_during_the_trial_wait_for_its_verdict() -> None:
    clock = Clock()
    breaker = _opened(clock)
    assert await breaker.admit(5)  # the trial
    waiters = [asyncio.ensure_future(breaker.admit(5)) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)  # waiting, not refused
    breaker.record(Outcome.SUCCESS)
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert breaker.state == BreakerState.CLOSED

    # A failed trial refuses those that waited for it.
    breaker = _opened(clock)
    assert await breaker.admit(5)
    waiter = asyncio.ensure_future(breaker.admit(5))
    await asyncio.sleep(0)
    breaker.record(Outcome.FAILURE)
    assert await waiter is False
    assert breaker.state == BreakerState.OPEN


async def test_a_neutral_trial_hands_over_to_one_waiter() -> None:
    clock = Clock()
    breaker = _opened(clock)
    assert await breaker.admit(5)
    first, second = (asyncio.ensure_future(breaker.admit(5)) for _ in range(2))
    await asyncio.sleep(0)
    breaker.record(Outcome.NEUTRAL)  # a 429: the next call tries instead
    await asyncio.sleep(0)
    assert first.done() and first.result() is True  # the new trial
    assert not second.done()
    breaker.record(Outcome.SUCCESS)
    assert await second is True


async def test_waiting_for_the_trial_is_bounded() -> None:
    breaker = _opened(Clock())
    assert await breaker.admit(5)
    with pytest.raises(TimeoutError):
        await breaker.admit(0.01)


async def test_single_flight_shares_one_run_and_survives_a_waiter_leaving() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()
    runs = 0

    async def run() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return runs

    joined = [flights.join("k", run) for _ in range(5)]
    assert [started for _, started in joined] == [True, False, False, False, False]
    task = joined[0][0]
    impatient = asyncio.ensure_future(flights.wait(task, "k", 0.01))
    patient = [asyncio.ensure_future(flights.wait(task, "k", None)) for _ in range(4)]
    with pytest.raises(TimeoutError):
        await impatient
    release.set()
    assert await asyncio.gather(*patient) == [1, 1, 1, 1]
    assert runs == 1 and not flights.in_flight("k")
    again, started = flights.join("k", run)
    assert started and await flights.wait(again, "k", None) == 2

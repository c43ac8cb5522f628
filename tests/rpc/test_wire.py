"""Watch responses made of cached per-event encodings are valid protobuf."""

from __future__ import annotations

from statusgate.rpc.wire import EventEncoder, encode_event_field
from statusgate.v1.status_pb2 import Kind, Stage, State, Status, StatusEvent, WatchStatusesResponse


def status(n: int) -> Status:
    return Status(
        name=f"sources/finbox/sessions/s{n}",
        source="finbox",
        kind=Kind.KIND_SESSION,
        state=State.STATE_EXPIRED,
        stage=Stage.STAGE_UPLOAD,
        terminal=True,
    )


def test_encoded_events_are_a_valid_watch_response() -> None:
    events = [
        StatusEvent(sequence=n, event_id="e" * n * 50, status=status(n))
        for n in (1, 2, 3)  # event sizes across the one- and two-byte varint boundary
    ]
    encoded = b"".join(encode_event_field(e) for e in events)
    assert WatchStatusesResponse.FromString(encoded) == WatchStatusesResponse(events=events)


def test_the_encoder_answers_the_same_from_its_cache() -> None:
    encoder = EventEncoder(capacity=2)
    events = [StatusEvent(sequence=n, status=status(n)) for n in range(1, 6)]
    first = encoder.encode(events)
    assert encoder.encode(events) == first
    assert WatchStatusesResponse.FromString(first) == WatchStatusesResponse(events=events)

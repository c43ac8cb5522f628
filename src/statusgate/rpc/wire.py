"""Watch responses as bytes, each event encoded once for every stream.

With 100 subscribers, encoding each event once instead of once per subscriber is most
of the fan-out's cost: a repeated message field is just the concatenation of its encoded
elements, so a ``WatchStatusesResponse`` is a join of cached byte strings. The server
sends those bytes as they are (``rpc.server`` lets a handler yield bytes).
"""

from __future__ import annotations

from statusgate.core.hub import DEFAULT_TAIL_BYTES, DEFAULT_TAIL_SIZE
from statusgate.v1.status_pb2 import StatusEvent

# WatchStatusesResponse: field 1 (events), wire type 2 (length-delimited).
_EVENTS_TAG = bytes([(1 << 3) | 2])


class EventEncoder:
    """Caches the encoding of the most recent ``capacity`` sequences (the ones live
    streams send), at most ``max_bytes`` of them; a stream replaying old events encodes
    them without caching."""

    def __init__(
        self, capacity: int = DEFAULT_TAIL_SIZE, max_bytes: int = DEFAULT_TAIL_BYTES
    ) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._wire: dict[int, bytes] = {}
        self._bytes = 0
        self._newest = 0

    def encode(self, events: list[StatusEvent]) -> bytes:
        """``events`` as a serialized WatchStatusesResponse."""
        parts = []
        wire = self._wire
        for event in events:
            encoded = wire.get(event.sequence)
            if encoded is None:
                encoded = encode_event_field(event)
                if event.sequence > self._newest - self._capacity:
                    wire[event.sequence] = encoded
                    self._bytes += len(encoded)
                    self._newest = max(self._newest, event.sequence)
            parts.append(encoded)
        if len(wire) > 2 * self._capacity or self._bytes > self._max_bytes:
            self._trim()
        return b"".join(parts)

    def _trim(self) -> None:
        """Keep the newest half of either bound."""
        floor = self._newest - self._capacity // 2
        kept: dict[int, bytes] = {}
        size = 0
        for sequence in sorted((s for s in self._wire if s > floor), reverse=True):
            data = self._wire[sequence]
            if size + len(data) > self._max_bytes // 2:
                break
            kept[sequence] = data
            size += len(data)
        self._wire, self._bytes = kept, size


def encode_event_field(event: StatusEvent) -> bytes:
    body = event.SerializeToString()
    return _EVENTS_TAG + _varint(len(body)) + body


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)

"""``Content-Encoding`` of webhook bodies, decoded here rather than by aiohttp.

aiohttp's automatic decompression turns a corrupt gzip body into an exception that
escapes as a 500 before the source is even authenticated, and loses the bytes that were
sent. Here the raw body is read first (within the size limit), then decoded with its own
limit on the decoded size (a small gzip can expand a thousandfold), and a body that
does not decode is the client's 400, kept as rejected with the raw bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

# Codings we decode; anything else is 415 (RFC 9110 §15.5.16).
SUPPORTED = ("identity", "gzip", "x-gzip", "deflate")

Decoder = Callable[[bytes, int], bytes]


class UnsupportedEncodingError(ValueError):
    """A Content-Encoding the front door does not decode."""


class BodyTooLargeError(ValueError):
    """The decoded body is larger than the limit."""


def body_decoder(header_values: Sequence[str]) -> Decoder:
    """The decoder for a request's ``Content-Encoding`` values (in the order they were
    applied); raises UnsupportedEncodingError."""
    codings = [
        coding.strip().lower()
        for value in header_values
        for coding in value.split(",")
        if coding.strip() and coding.strip().lower() != "identity"
    ]
    for coding in codings:
        if coding not in SUPPORTED:
            shown = coding if len(coding) <= 32 else coding[:32] + "..."
            raise UnsupportedEncodingError(
                f"Content-Encoding {shown!r} is not supported; use one of {', '.join(SUPPORTED)}"
            )

    def decode(body: bytes, limit: int) -> bytes:
        # Codings are listed in the order they were applied: undo the last first.
        for coding in reversed(codings):
            body = _decompress(body, coding, limit)
        return body

    return decode


def _decompress(body: bytes, coding: str, limit: int) -> bytes:
    # gzip: a gzip header. deflate: RFC 9110 says zlib-wrapped, but many senders send
    # raw deflate, so both are accepted (as aiohttp and browsers do).
    wbits = 16 + zlib.MAX_WBITS if coding in ("gzip", "x-gzip") else _deflate_wbits(body)
    decompressor = zlib.decompressobj(wbits)
    try:
        decoded = decompressor.decompress(body, limit + 1)
        if len(decoded) > limit or decompressor.unconsumed_tail:
            raise BodyTooLargeError(f"the decoded body exceeds {limit} bytes")
        decoded += decompressor.flush()
    except zlib.error as error:
        raise ValueError(f"the body is not valid {coding} (Content-Encoding): {error}") from None
    if not decompressor.eof:
        raise ValueError(f"the body is not valid {coding} (Content-Encoding): it is truncated")
    if len(decoded) > limit:
        raise BodyTooLargeError(f"the decoded body exceeds {limit} bytes")
    return decoded


def _deflate_wbits(body: bytes) -> int:
    # A zlib stream starts with a header whose 16-bit value is a multiple of 31.
    if len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS

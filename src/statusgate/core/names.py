"""Resource names: ``sources/{source}/{collection}/{id}[/{collection}/{id}]``.

A client that knows only a provider's id can always build the name, so names are the
only identifiers the API speaks. The collections and the kind each one implies are
``TOP_LEVEL`` and ``NESTED`` below; README.md shows the names of every provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from statusgate.v1.status_pb2 import Kind

# Top-level collection -> kind, and (parent collection, child collection) -> kind.
TOP_LEVEL: dict[str, Kind.ValueType] = {
    "sessions": Kind.KIND_SESSION,
    "entities": Kind.KIND_ENTITY,
    "payments": Kind.KIND_PAYMENT,
    "consents": Kind.KIND_CONSENT,
    "data-sessions": Kind.KIND_DATA_SESSION,
}
NESTED: dict[tuple[str, str], Kind.ValueType] = {
    ("sessions", "accounts"): Kind.KIND_ACCOUNT,
    ("sessions", "statements"): Kind.KIND_STATEMENT,
    ("entities", "statements"): Kind.KIND_STATEMENT,
    ("data-sessions", "accounts"): Kind.KIND_ACCOUNT,
}

_SOURCE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Provider ids are opaque; only what would break the name's structure (or a store: NUL
# cannot be stored in PostgreSQL text) is refused.
_ID_RE = re.compile(r"[^/\s\x00-\x1f\x7f]{1,256}")


# The longest name the API takes: a source id (63), the longest collections and two ids of
# 256 characters fit well within it. Longer input is refused before it is parsed.
MAX_NAME_LENGTH = 1024
# Error messages quote at most this much of what a client sent: a message is carried in
# gRPC metadata, which clients cap (8 KiB by default).
QUOTE_LENGTH = 64


def quoted(text: str, limit: int = QUOTE_LENGTH) -> str:
    """``text`` as repr, shortened to a prefix when long: for error messages."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class InvalidNameError(ValueError):
    """A resource name that does not follow ``sources/{source}/{collection}/{id}...``
    with a known collection."""


# Source ids already checked: a gateway has a handful, and every name it builds checks
# one. Bounded, in case a client keeps sending new invalid ones.
_VALID_SOURCES: dict[str, bool] = {}


def is_valid_source_id(source: str) -> bool:
    known = _VALID_SOURCES.get(source)
    if known is None:
        known = bool(_SOURCE_RE.match(source))
        if len(_VALID_SOURCES) < 1024:
            _VALID_SOURCES[source] = known
    return known


def is_valid_id(id_: str) -> bool:
    """Whether a provider's id can stand in a name: 1-256 characters of valid UTF-8,
    none of them '/', whitespace or a control character."""
    return bool(_ID_RE.fullmatch(id_)) and (id_.isascii() or _is_utf8(id_))


@dataclass(frozen=True, slots=True)
class ResourceName:
    source: str
    # ((collection, id), ...) from the top level down; one or two pairs.
    path: tuple[tuple[str, str], ...]

    @property
    def kind(self) -> Kind.ValueType:
        if len(self.path) == 1:
            return TOP_LEVEL[self.path[0][0]]
        return NESTED[(self.path[0][0], self.path[1][0])]

    @property
    def parent(self) -> str:
        """The name one level up; empty for a top-level subject."""
        if len(self.path) == 1:
            return ""
        return str(ResourceName(self.source, self.path[:1]))

    def child(self, collection: str, id_: str) -> ResourceName:
        return make_name(self.source, *self.path[0], collection, id_)

    def __str__(self) -> str:
        parts = [f"{collection}/{id_}" for collection, id_ in self.path]
        return f"sources/{self.source}/" + "/".join(parts)


def make_name(source: str, *collection_ids: str) -> ResourceName:
    """Build a name from ``collection, id[, collection, id]``, validating every part."""
    if len(collection_ids) not in (2, 4):
        raise InvalidNameError("a name has one or two collection/id pairs")
    pairs = tuple(zip(collection_ids[::2], collection_ids[1::2], strict=True))
    return _validated(source, pairs)


def parse_name(name: str) -> ResourceName:
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"name {quoted(name)} is longer than {MAX_NAME_LENGTH} characters")
    parts = name.split("/")
    if len(parts) not in (4, 6) or parts[0] != "sources":
        raise InvalidNameError(
            f"{quoted(name)} is not "
            "sources/{source}/{collection}/{id}[/{collection}/{id}]"
        )
    pairs = tuple(zip(parts[2::2], parts[3::2], strict=True))
    return _validated(parts[1], pairs)


def parse_source_parent(parent: str) -> str | None:
    """``sources/{source}`` -> source id; None when ``parent`` is not of that form."""
    parts = parent.split("/")
    if len(parts) == 2 and parts[0] == "sources" and is_valid_source_id(parts[1]):
        return parts[1]
    return None


def _validated(source: str, pairs: tuple[tuple[str, str], ...]) -> ResourceName:
    if not is_valid_source_id(source):
        raise InvalidNameError(f"invalid source id {quoted(source)}")
    top = pairs[0][0]
    if top not in TOP_LEVEL:
        raise InvalidNameError(
            f"unknown collection {quoted(top)}; expected one of {sorted(TOP_LEVEL)}"
        )
    if len(pairs) == 2 and (top, pairs[1][0]) not in NESTED:
        raise InvalidNameError(f"{top!r} has no child collection {quoted(pairs[1][0])}")
    for _, id_ in pairs:
        if not is_valid_id(id_):
            raise InvalidNameError(
                f"invalid id {quoted(id_)}: 1-256 characters of valid UTF-8, no '/' or spaces"
            )
    return ResourceName(source, pairs)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, which JSON allows and protobuf refuses
        return False
    return True


def name_has_prefix(name: str, prefix: str) -> bool:
    """Prefix match by whole segments: a session's name selects its accounts, and
    ``sources/a/sessions/1`` does not select ``sources/a/sessions/10``."""
    return name == prefix or name.startswith(prefix.rstrip("/") + "/")

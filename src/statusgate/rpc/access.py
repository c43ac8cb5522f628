"""Who may call the gRPC API, and what they may see (bearer tokens from config).

Tokens are configured as SHA-256 hashes; a presented token is hashed and looked up, so
the configuration never holds a usable credential and the lookup's timing says nothing
about any token. With no clients configured the API is open, which the config allows
only on a loopback listener.

``PERMISSIONS`` says what each RPC needs; ``rpc.handlers`` admits the caller against it
before any handler runs, and the JSON API (``api``) does the same from the HTTP
``Authorization`` header. Health and reflection are not methods of either service and
stay open.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from statusgate.config import ClientConfig, Permission
from statusgate.core.errors import ApiError, Reason

ALL_SOURCES = "*"

# Every method of StatusService and AdminService, by name; neither rpc.server nor the
# JSON API can serve a method missing here, so a new RPC is never served without
# deciding who may call it. ("admin" grants all.)
PERMISSIONS: Mapping[str, Permission] = {
    "GetStatus": "read",
    "BatchGetStatuses": "read",
    "ListStatuses": "read",
    "ListStatusEvents": "read",
    "WatchStatuses": "read",
    "WaitStatus": "read",
    "PollStatuses": "poll",
    "ListDeliveries": "admin",
    "GetDelivery": "admin",
    "ReplayDeliveries": "admin",
}


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    # None: every source.
    sources: frozenset[str] | None
    permissions: frozenset[Permission]
    max_watch_streams: int
    # Names and prefixes of the filters of all its open Watch streams together.
    max_watch_filter_entries: int = 1_000_000_000
    # Subjects its WaitStatus calls may keep polled at once.
    max_polled_waits: int = 1_000_000

    def can_see(self, source: str) -> bool:
        return self.sources is None or source in self.sources

    def may(self, permission: Permission) -> bool:
        return "admin" in self.permissions or permission in self.permissions

    def visible(self, sources: Iterable[str]) -> list[str]:
        return [s for s in sources if self.can_see(s)]


ANONYMOUS = Principal("anonymous", None, frozenset({"admin"}), max_watch_streams=1_000_000)


class AccessControl:
    def __init__(self, clients: Mapping[str, ClientConfig]) -> None:
        self.open = not clients
        self._by_token_hash = {
            client.token_sha256: Principal(
                client_id,
                None if ALL_SOURCES in client.sources else frozenset(client.sources),
                frozenset(client.permissions),
                client.max_watch_streams,
                client.max_watch_filter_entries,
                client.max_polled_waits,
            )
            for client_id, client in clients.items()
        }
        self._watch_streams: Counter[str] = Counter()
        self._watch_entries: Counter[str] = Counter()

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal | None:
        """The caller, or None when the token is missing or unknown."""
        if self.open:
            return ANONYMOUS
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                if scheme.lower() == "bearer" and token:
                    digest = hashlib.sha256(token.strip().encode()).hexdigest()
                    return self._by_token_hash.get(digest)
        return None

    def admit(
        self, metadata: Iterable[tuple[str, str | bytes]] | None, permission: Permission
    ) -> Principal:
        """The caller, when its token is known and grants ``permission``."""
        caller = self.authenticate(metadata)
        if caller is None:
            raise ApiError(
                Reason.UNAUTHENTICATED, "a valid 'authorization: Bearer <token>' is required"
            )
        if not caller.may(permission):
            raise ApiError(
                Reason.PERMISSION_DENIED,
                f"client {caller.client_id!r} lacks the {permission!r} permission",
            )
        return caller

    def open_watch(self, principal: Principal, filter_entries: int = 0) -> None:
        """Count a new Watch stream whose filter has ``filter_entries`` names and
        prefixes; raises ApiError when the client is at its maximum of streams, or the
        filter would take it past its bound over all its streams."""
        client = principal.client_id
        if self._watch_streams[client] >= principal.max_watch_streams:
            raise ApiError(
                Reason.TOO_MANY_STREAMS,
                f"client {client!r} already has its maximum of "
                f"{principal.max_watch_streams} Watch streams",
            )
        if self._watch_entries[client] + filter_entries > principal.max_watch_filter_entries:
            raise ApiError(
                Reason.FILTER_TOO_LARGE,
                f"client {client!r} may have at most {principal.max_watch_filter_entries} "
                f"filter names and prefixes over its Watch streams; its open streams have "
                f"{self._watch_entries[client]} and this one {filter_entries}",
            )
        self._watch_streams[client] += 1
        self._watch_entries[client] += filter_entries

    def close_watch(self, principal: Principal, filter_entries: int = 0) -> None:
        self._watch_streams[principal.client_id] -= 1
        self._watch_entries[principal.client_id] -= filter_entries

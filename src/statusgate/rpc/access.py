"""Who may call the gRPC API, and what they may see (bearer tokens from config).

Tokens are configured as SHA-256 hashes; a presented token is hashed and looked up, so
the configuration never holds a usable credential and the lookup's timing says nothing
about any token. With no clients configured the API is open, which the config allows
only on a loopback listener.

``PERMISSIONS`` says what each RPC needs; ``rpc.handlers`` admits the caller against it
before any handler runs. Health and reflection are not StatusService methods and stay
open.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from statusgate.config import ClientConfig, Permission
from statusgate.core.errors import ApiError, Reason

ALL_SOURCES = "*"

# Every StatusService method, by name; rpc.server cannot register a method missing here,
# so a new RPC is never served without deciding who may call it. ("admin" grants all.)
PERMISSIONS: Mapping[str, Permission] = {
    "GetStatus": "read",
    "BatchGetStatuses": "read",
    "ListStatuses": "read",
    "ListStatusEvents": "read",
    "WatchStatuses": "read",
    "WaitStatus": "read",
    "PollStatuses": "poll",
}


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    # None: every source.
    sources: frozenset[str] | None
    permissions: frozenset[Permission]
    max_watch_streams: int

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
            )
            for client_id, client in clients.items()
        }
        self._watch_streams: Counter[str] = Counter()

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

    def open_watch(self, principal: Principal) -> bool:
        """Count a new Watch stream; False when the client already has its maximum."""
        if self._watch_streams[principal.client_id] >= principal.max_watch_streams:
            return False
        self._watch_streams[principal.client_id] += 1
        return True

    def close_watch(self, principal: Principal) -> None:
        self._watch_streams[principal.client_id] -= 1

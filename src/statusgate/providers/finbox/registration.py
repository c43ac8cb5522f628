"""Registering the gateway's URL with FinBox: one API call per flow.

FinBox has one webhook URL for the session flow and one for the legacy entity flow;
both are set, always with ``webhook_mode`` 1 (net banking and manual uploads): an update
that leaves it out silently resets it to 0, net banking only.
"""

from __future__ import annotations

from typing import Literal

from statusgate.core.errors import ApiError
from statusgate.providers.finbox.client import finbox_client
from statusgate.providers.finbox.config import FinboxSource
from statusgate.providers.spec import RegistrationError, RegistrationStep
from statusgate.upstream.http import CallScope

FLOWS: tuple[Literal["session", "entity"], ...] = ("session", "entity")


async def register_webhook(source: FinboxSource, url: str) -> list[RegistrationStep]:
    client = finbox_client(source)  # ValueError when a named variable is unset
    if client is None:
        raise RegistrationError(
            f"set sources.{source.id}.api.api_key_env and server_hash_env "
            "(FinBox API credentials) first"
        )
    steps = []
    try:
        for flow in FLOWS:
            label = f"FinBox {flow} flow"
            scope = CallScope.within(source.api.timeout_seconds * (source.api.retries + 1))
            try:
                answer = await client.register_webhook(flow, url, scope)
            except ApiError as error:
                steps.append(RegistrationStep(label, False, f"not registered: {error.message}"))
            else:
                steps.append(
                    RegistrationStep(label, True, f"registered {url} (webhook_mode 1): {answer}")
                )
    finally:
        await client.http.close()
    return steps

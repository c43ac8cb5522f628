"""``statusgate simulate PROVIDER SCENARIO --to URL``: post a provider's realistic
sequence of webhooks (``providers.scenarios``) to a gateway, signed as the target
source expects, with fresh ids, and print each answer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp

from statusgate.client.signing import SigningError, load_private_key, sign
from statusgate.config import Settings
from statusgate.providers.registry import Registry
from statusgate.providers.scenarios import webhooks


def scenario_lines(registry: Registry) -> list[str]:
    """``PROVIDER SCENARIO`` per line, for ``simulate --list``."""
    return [f"{spec.name} {scenario.name}" for spec in registry for scenario in spec.scenarios]


def source_of(url: str) -> str:
    """The source id in ``…/webhooks/{source}``; "" when the URL has none."""
    parts = urlsplit(url).path.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "webhooks":
        return parts[-1]
    return ""


async def simulate(
    registry: Registry,
    settings: Settings,
    provider: str,
    scenario_name: str,
    *,
    url: str,
    source_id: str,
    jws_key: Path | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    names = {spec.name: spec for spec in registry}
    spec = names.get(provider)
    if spec is None:
        print(f"statusgate: no provider {provider!r}; one of {', '.join(names)}", file=err)
        return 2
    scenario = next((s for s in spec.scenarios if s.name == scenario_name), None)
    if scenario is None:
        known = ", ".join(s.name for s in spec.scenarios)
        print(f"statusgate: {provider} has no scenario {scenario_name!r}; one of {known}", file=err)
        return 2
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        print(f"statusgate: --to must be an absolute http(s) URL, not {url!r}", file=err)
        return 2
    source_id = source_id or source_of(url)
    source = settings.sources.get(source_id)
    if source is None:
        print(
            f"statusgate: no source {source_id!r} in the configuration to sign for; "
            "pass --config (the gateway's) and --source, or a --to ending in "
            "/webhooks/<source>",
            file=err,
        )
        return 2
    if source.provider != provider:
        print(f"statusgate: source {source_id!r} is a {source.provider} source", file=err)
        return 2
    try:
        key = load_private_key(jws_key) if jws_key is not None else None
        requests = []
        for webhook in webhooks(scenario, spec.fixtures):
            headers = {"Content-Type": "application/json"}
            headers.update(sign(source.auth, webhook.body, jws_key=key))
            requests.append((webhook, headers))
    except SigningError as error:
        print(f"statusgate: cannot sign for source {source_id!r}: {error}", file=err)
        return 2
    failed = False
    base = url.rstrip("/")
    async with aiohttp.ClientSession() as http:
        for number, (webhook, headers) in enumerate(requests, 1):
            target = f"{base}/{webhook.path}" if webhook.path else base
            try:
                async with http.post(target, data=webhook.body, headers=headers) as answer:
                    text = (await answer.text()).strip()
                    status = answer.status
            except aiohttp.ClientError as error:
                print(f"statusgate: cannot post to {target}: {error}", file=err)
                return 1
            failed |= not 200 <= status < 300
            print(f"{number}/{len(requests)} {webhook.label} → {status} {text}", file=out)
            out.flush()
    return 1 if failed else 0

"""Driving the console as a browser without JavaScript would: GET pages, post forms
with the CSRF token the page carries, follow (or look at) redirects."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.conftest import RunningGateway

# A payload of provider values meant to run in a page: nothing of it may.
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
HOSTILE_ID = '"><script>window.__pwned=3<'


def hostile_finbox(session_id: str = HOSTILE_ID) -> dict[str, Any]:
    return {
        "event_name": "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
        "message": HOSTILE,
        "session_id": session_id,
        "accounts": [
            {
                "account_id": "<b>acct",
                "account_number": "<i>1234567890</i>",
                "bank_name": HOSTILE,
                "account_status": "COMPLETED",
                "months": [HOSTILE],
            }
        ],
    }


class Browser:
    """An HTTP client with a cookie jar, against one gateway's console."""

    def __init__(self, gw: RunningGateway) -> None:
        self.gw = gw
        # unsafe: the jar keeps cookies of an IP address (127.0.0.1).
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(
            self.gw.api_url(path), allow_redirects=kwargs.pop("follow", False), **kwargs
        ) as response:
            return response.status, await response.text(), response

    async def post(
        self, path: str, form: dict[str, str], **kwargs: Any
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.post(
            self.gw.api_url(path), data=form, allow_redirects=False, **kwargs
        ) as response:
            return response.status, await response.text(), response

    async def csrf(self, path: str = "/console/") -> str:
        """The CSRF token of a page's forms (getting the page sets its cookie)."""
        _, text, _ = await self.get(path, follow=True)
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        assert found, "no form with a CSRF token on the page"
        return found.group(1)

    async def sign_in(self, token: str) -> None:
        csrf = await self.csrf("/console/login")
        status, _, response = await self.post(
            "/console/login", {"csrf": csrf, "token": token, "next": "/console/"}
        )
        assert status == 303, status
        assert response.headers["Location"] == "/console/"


def pre_blocks(html: str) -> list[str]:
    """The text of every <pre> of a page (raw bodies), still escaped."""
    return re.findall(r"<pre[^>]*>(.*?)</pre>", html, flags=re.DOTALL)

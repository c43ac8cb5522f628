"""The console of a gateway with clients: a sign-in form takes a client token and sets
an HttpOnly, SameSite=Strict cookie; each page then shows what that client may see and
do over gRPC (its sources, its permissions): deliveries and replays need admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yarl

from tests.conftest import RunningGateway
from tests.console.helpers import Browser
from tests.operating import ADMIN, FINBOX_ADMIN, KNOWN_WORDS, READER, WORDS, operating_gateway
from tests.payloads import finbox_expiry


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with operating_gateway(tmp_path) as running:
        yield running


@pytest.fixture
async def browser(gw: RunningGateway) -> AsyncIterator[Browser]:
    client = Browser(gw)
    try:
        yield client
    finally:
        await client.close()


async def test_every_page_asks_for_a_sign_in_first(browser: Browser) -> None:
    for path in ("/console/", "/console/deliveries?verdict=rejected", "/console/feed"):
        status, _, response = await browser.get(path)
        assert status == 303, path
        target = yarl.URL(response.headers["Location"])
        assert (target.path, target.query["next"]) == ("/console/login", path)
    status, text, response = await browser.get("/console/login")
    assert status == 200 and 'type="password"' in text and 'for="token"' in text
    # The first answer set the CSRF cookie its forms are checked against.
    assert "statusgate_csrf" in {cookie.key for cookie in browser.session.cookie_jar}
    # The style sheet and script are served without a sign-in.
    status, _, _ = await browser.get("/console/static/console.css")
    assert status == 200


async def test_a_token_signs_in_with_a_strict_http_only_cookie(
    gw: RunningGateway, browser: Browser
) -> None:
    csrf = await browser.csrf("/console/login")
    status, text, _ = await browser.post("/console/login", {"csrf": csrf, "token": "wrong"})
    assert status == 401 and "not one of this gateway&#39;s clients" in text
    status, _, _ = await browser.post("/console/login", {"token": ADMIN})  # no CSRF token
    assert status == 403
    status, _, response = await browser.post(
        "/console/login", {"csrf": csrf, "token": ADMIN, "next": "/console/feed"}
    )
    assert status == 303 and response.headers["Location"] == "/console/feed"
    cookie = response.cookies["statusgate_console"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    status, text, _ = await browser.get("/console/")
    assert status == 200 and "Sign out" in text and "ops" in text
    # Somewhere else than a console page is never where a sign-in leads.
    status, _, response = await browser.post(
        "/console/login", {"csrf": csrf, "token": ADMIN, "next": "//evil.test/"}
    )
    assert response.headers["Location"] == "/console/"
    # Signing out forgets the cookie.
    csrf = await browser.csrf("/console/")
    status, _, response = await browser.post("/console/logout", {"csrf": csrf})
    assert status == 303 and response.headers["Location"] == "/console/login"
    status, _, _ = await browser.get("/console/")
    assert status == 303


async def test_the_cookie_admits_the_json_api_s_get_routes_only(
    gw: RunningGateway, browser: Browser
) -> None:
    await gw.post("finbox", finbox_expiry("s1"))
    await browser.sign_in(READER)
    status, _, _ = await browser.get("/v1/sources/finbox/sessions/s1")
    assert status == 200
    # What changes something needs the header: a cookie alone is no credential there.
    status, _, _ = await browser.post("/v1/statuses:poll", {})
    assert status == 401


async def test_a_reader_sees_statuses_but_neither_deliveries_nor_replays(
    gw: RunningGateway, browser: Browser
) -> None:
    _, answer = await gw.post("finbox", finbox_expiry("s1"))
    delivery = answer["delivery_id"]
    await browser.sign_in(READER)
    status, text, _ = await browser.get("/console/statuses/sources/finbox/sessions/s1")
    assert status == 200 and "raw deliveries need the admin permission" in text
    assert '"session_id"' not in text
    for path in ("/console/deliveries", f"/console/deliveries/{delivery}"):
        status, text, _ = await browser.get(path)
        assert status == 403 and "lacks the &#39;admin&#39; permission" in text, path
    csrf = await browser.csrf()
    status, text, _ = await browser.post(f"/console/deliveries/{delivery}/replay", {"csrf": csrf})
    assert status == 403 and "admin" in text
    status, _, _ = await browser.get(f"/console/deliveries/{delivery}/replay")
    assert status == 403


async def test_a_scoped_client_sees_its_sources_only(gw: RunningGateway, browser: Browser) -> None:
    await gw.post("setu", {"type": "CONSENT_STATUS_UPDATE", "consentId": "c1", "data": {}})
    await browser.sign_in(FINBOX_ADMIN)
    _, text, _ = await browser.get("/console/")
    assert ">finbox <span" in text and ">setu <span" not in text
    status, text, _ = await browser.get("/console/statuses/sources/setu/consents/c1")
    assert status == 403 and "may not see source" in text
    _, text, _ = await browser.get("/console/search", params={"q": "c1"})
    assert "0 subjects" in text


async def test_a_replay_after_a_mapping_fix_applies_its_events(
    gw: RunningGateway, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, answer = await gw.post("tickets", {"ticket": "t1", "state": "closed"})
    assert status == 202
    delivery = answer["delivery_id"]
    monkeypatch.setitem(KNOWN_WORDS, "closed", WORDS["closed"])  # the mapping fix
    await browser.sign_in(ADMIN)
    status, text, _ = await browser.get(f"/console/deliveries/{delivery}/replay")
    assert status == 200
    assert 'from <span class="badge warn">unmapped</span> to <span class="badge good">' in text
    assert 'href="/console/statuses/sources/tickets/payments/t1"' in text
    assert '<span class="badge wait">new</span> <span aria-label="to">→</span> ' in text
    csrf = await browser.csrf(f"/console/deliveries/{delivery}/replay")
    status, _, response = await browser.post(
        f"/console/deliveries/{delivery}/replay", {"csrf": csrf}
    )
    assert status == 303
    _, text, _ = await browser.get(response.headers["Location"])
    assert "Replay applied: 1 event." in text and '<span class="badge good">mapped</span>' in text
    status, text, _ = await browser.get("/console/statuses/sources/tickets/payments/t1")
    assert status == 200 and '<span class="origin">replay</span>' in text
    assert f'href="/console/deliveries/{delivery}"' in text

"""The console in a real Chromium: every page loads without a console error, a search
finds a subject, a live event appears on its page and in the feed (which pauses) with
the trace it carries, a
dry-run replay then its apply, and a payload full of markup runs nothing. Screenshots
go to the test's temp dir; with ``STATUSGATE_DOCS_SCREENSHOT=1`` the subject's page is
also written to ``docs/console-subject.png`` (the README's picture)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningGateway
from tests.console.chromium import Chromium, require_chromium
from tests.console.helpers import HOSTILE_ID, hostile_finbox
from tests.operating import ADMIN, KNOWN_WORDS, WORDS, operating_gateway
from tests.payloads import finbox_enrichment, finbox_expiry, finbox_upload

DOCS = Path(__file__).parent.parent.parent / "docs"
SESSION = "sources/finbox/sessions/loan-4711"


@pytest.fixture
def chromium(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chromium]:
    require_chromium(request.config)
    browser = Chromium(tmp_path / "profile", tmp_path / "screenshots")
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
async def tickets_gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with operating_gateway(tmp_path) as running:
        yield running


async def test_pages_search_and_live_events(gw: RunningGateway, chromium: Chromium) -> None:
    base = gw.api_url("")
    await gw.post("finbox", finbox_upload("loan-4711", ("acc-1", "COMPLETED")))
    await gw.post("finbox", finbox_expiry("loan-4712"))
    await gw.post("finbox", b"{not json")

    await chromium.open(f"{base}/console/")
    assert await chromium.text("h1") == "Overview"
    await chromium.shot("overview")

    # Search as a person would: type the provider's id into the header's search box.
    box = await chromium.find("#search-q")
    await chromium.run(box.send_keys, "loan-4711\n")
    await chromium.until_present(f'a[href="/console/statuses/{SESSION}"]')
    await chromium.shot("search")
    await chromium.click(f'a[href="/console/statuses/{SESSION}"]')
    await chromium.until_text("h1", "loan-4711")
    # Live once the Watch stream caught up; then a webhook shows up without a reload.
    await chromium.until_text("[data-live-state]", "Live: following new events.")
    traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    await gw.post(
        "finbox", finbox_enrichment("loan-4711", ("acc-1", "completed")), {"traceparent": traced}
    )
    await chromium.until_present("li.event.new")
    await chromium.until_text("li.event.new code.trace", traced)  # the sender's trace
    await chromium.until_text("#current .headline", "processing")
    assert len(await chromium.find_all("li.event")) == 2
    assert await chromium.script("return document.querySelector('#announcer').textContent") == (
        "1 new event"
    )
    await chromium.run(chromium.driver.set_window_size, 1280, 1500)  # the whole history
    picture = await chromium.shot("subject")
    if os.environ.get("STATUSGATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(picture, DOCS / "console-subject.png")
    # A phone: one column, nothing wider than the screen.
    await chromium.run(chromium.driver.set_window_size, 390, 844)
    assert await chromium.script("return document.documentElement.scrollWidth <= window.innerWidth")
    await chromium.shot("subject-phone")
    await chromium.run(chromium.driver.set_window_size, 1280, 1000)

    assert await chromium.unlabelled() == []
    for path in (
        "/console/deliveries?verdict=REJECTED",
        "/console/search?q=sources/finbox",
        "/console/feed",
        "/console/",
    ):
        await chromium.open(f"{base}{path}")
        assert await chromium.unlabelled() == [], path
        await chromium.shot(path.split("?")[0].rsplit("/", 1)[-1] or "overview")
    await chromium.open(f"{base}/console/statuses/sources/finbox/sessions/missing")
    assert await chromium.text("h1") == "Not found"

    # The feed: live, and pausable.
    await chromium.open(f"{base}/console/feed?source=finbox")
    await chromium.until_text("[data-live-state]", "Live: following new events.")
    _, answer = await gw.post("finbox", finbox_expiry("loan-4713"), {"traceparent": traced})
    await chromium.until_present(f'tr.new[data-sequence="{answer["events"][0]["sequence"]}"]')
    await chromium.until_text("tr.new code.trace", traced)
    await chromium.click("[data-pause]")
    _, answer = await gw.post("finbox", finbox_expiry("loan-4714"))
    await chromium.until_text("[data-pause]", "Resume (1 new event)")
    paused = f'tr[data-sequence="{answer["events"][0]["sequence"]}"]'
    assert not await chromium.find_all(paused)
    await chromium.click("[data-pause]")
    await chromium.until_present(paused)
    await chromium.shot("feed")
    # A 404 page is no console error; the browser logged nothing else either.
    errors = [e for e in await chromium.collect_errors() if "404 (Not Found)" not in e["message"]]
    assert errors == []


async def test_sign_in_then_replay_a_dry_run_and_apply(
    tickets_gw: RunningGateway, chromium: Chromium, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = tickets_gw
    status, answer = await gw.post("tickets", {"ticket": "t-9", "state": "closed"})
    assert status == 202
    delivery = answer["delivery_id"]
    monkeypatch.setitem(KNOWN_WORDS, "closed", WORDS["closed"])  # the mapping fix

    await chromium.open(gw.api_url(f"/console/deliveries/{delivery}"))
    await chromium.until_text("h1", "Sign in")
    token = await chromium.find("#token")
    await chromium.run(token.send_keys, ADMIN + "\n")
    await chromium.until_text("h1", delivery)  # back where the sign-in began
    await chromium.click("main button[type=submit]")
    await chromium.until_text("h1", "preview")
    assert "apply 1 event" in await chromium.text("main")
    await chromium.shot("replay-preview")
    await chromium.click("button.primary")
    await chromium.until_text(".notice", "Replay applied: 1 event.")
    await chromium.shot("replay-applied")
    await chromium.click('a[href="/console/statuses/sources/tickets/payments/t-9"]')
    await chromium.until_text(".origin", "replay")
    assert await chromium.collect_errors() == []


async def test_a_payload_full_of_markup_runs_nothing(
    gw: RunningGateway, chromium: Chromium
) -> None:
    _, rejected = await gw.post("finbox", hostile_finbox())
    _, mapped = await gw.post("finbox", hostile_finbox("plain-id"))
    pages = [
        "/console/",
        "/console/statuses/sources/finbox/sessions/plain-id",
        f"/console/deliveries/{rejected['delivery_id']}",
        f"/console/deliveries/{mapped['delivery_id']}",
        "/console/feed",
        f"/console/search?q={HOSTILE_ID}",
    ]
    for path in pages:
        await chromium.open(gw.api_url(path))
        # An alert, a set marker or an element made from the payload would show here.
        assert await chromium.script("return window.__pwned === undefined"), path
        assert not await chromium.find_all("main script, main img, main b, main i"), path
    await chromium.open(gw.api_url("/console/statuses/sources/finbox/sessions/plain-id"))
    await chromium.until_text("[data-live-state]", "Live: following new events.")
    await gw.post(
        "finbox", hostile_finbox("plain-id") | {"event_name": "SESSION_EXPIRY_NOTIFICATION"}
    )
    await chromium.until_present("li.event.new")
    assert await chromium.script("return window.__pwned === undefined")
    await chromium.shot("hostile")
    assert await chromium.collect_errors() == []

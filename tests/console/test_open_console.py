"""The console of a gateway with no clients on loopback: open, like the gRPC door.
Every page and every error, as a browser without JavaScript sees them: server-rendered
HTML, links and GET forms, POST then redirect for a replay, and nothing a provider sent
ever interpreted as HTML."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import markupsafe
import pytest

from statusgate.logs import register_secret
from tests.conftest import RunningGateway
from tests.console.helpers import HOSTILE, HOSTILE_ID, Browser, hostile_finbox, pre_blocks
from tests.payloads import finbox_expiry, finbox_upload

SESSION = "sources/finbox/sessions/s1"
ACCOUNT = f"{SESSION}/accounts/a1"


@pytest.fixture
async def browser(gw: RunningGateway) -> AsyncIterator[Browser]:
    client = Browser(gw)
    try:
        yield client
    finally:
        await client.close()


async def delivery_of(gw: RunningGateway, payload: object, source: str = "finbox") -> str:
    status, answer = await gw.post(source, payload)
    assert status in (200, 202, 400), answer
    return str(answer["delivery_id"])


async def test_the_overview_has_a_panel_per_source(gw: RunningGateway, browser: Browser) -> None:
    await delivery_of(gw, finbox_upload("s1", ("a1", "COMPLETED")))
    await delivery_of(gw, b"{broken")
    status, text, response = await browser.get("/console/")
    assert status == 200 and response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    for source in ("finbox", "banqware", "setu", "rebit"):
        assert f'>{source} <span class="provider">' in text
    finbox = text.split('id="source-1"')[1].split("</section>")[0]
    # One mapped and one rejected in the last hour, each linked to its list.
    assert 'href="/console/deliveries?source=finbox&amp;verdict=mapped"' in finbox
    assert '<span class="badge good">mapped</span> <span class="count">1</span>' in finbox
    assert '<span class="badge bad">rejected</span> <span class="count">1</span>' in finbox
    # The session (completed at upload, not terminal) is its oldest non-terminal subject.
    assert f'href="/console/statuses/{SESSION}"' in finbox
    assert "not polling" in finbox  # no API credentials: no breaker, no reconciler
    assert "data-sequence-head>2<" in text  # the session's and the account's events
    # /console redirects to /console/.
    status, _, response = await browser.get("/console")
    assert status == 308 and response.headers["Location"] == "/console/"


async def test_search_by_name_prefix_and_bare_provider_id(
    gw: RunningGateway, browser: Browser
) -> None:
    await delivery_of(gw, finbox_upload("s1", ("a1", "COMPLETED")))
    await delivery_of(gw, finbox_expiry("s2"))
    # A whole name that exists: its page.
    status, _, response = await browser.get("/console/search", params={"q": SESSION})
    assert status == 303 and response.headers["Location"] == f"/console/statuses/{SESSION}"
    # A bare id, looked up in every source and collection.
    status, text, _ = await browser.get("/console/search", params={"q": "s2"})
    assert status == 200
    assert 'href="/console/statuses/sources/finbox/sessions/s2"' in text
    assert '<span class="badge bad">expired</span>' in text
    # A prefix: everything under it.
    status, text, _ = await browser.get("/console/search", params={"q": "sources/finbox"})
    assert status == 200
    for name in (SESSION, ACCOUNT, "sources/finbox/sessions/s2"):
        assert f'href="/console/statuses/{name}"' in text
    # A delivery id is found too.
    delivery = await delivery_of(gw, finbox_expiry("s3"))
    _, text, _ = await browser.get("/console/search", params={"q": delivery})
    assert f'href="/console/deliveries/{delivery}"' in text
    _, text, _ = await browser.get("/console/search", params={"q": "nothing-like-it"})
    assert "0 subjects for <q>nothing-like-it</q>" in text
    status, text, _ = await browser.get("/console/search")
    assert status == 200 and "provider's bare id" in text


async def test_a_subject_s_page_shows_status_family_and_history_with_deliveries(
    gw: RunningGateway, browser: Browser
) -> None:
    delivery = await delivery_of(gw, finbox_upload("s1", ("a1", "COMPLETED")))
    status, text, _ = await browser.get(f"/console/statuses/{SESSION}")
    assert status == 200
    assert '<h1><span class="kind">session</span>' in text
    assert '<span class="badge good">completed</span>' in text
    assert "at stage <strong>upload</strong>" in text
    assert "not terminal" in text
    assert "Top-level subject: no parent." in text
    assert f'href="/console/statuses/{ACCOUNT}"' in text  # its child
    # History: the one event, from the webhook, beside its raw body pretty-printed.
    assert 'data-sequence="2"' in text and '<span class="origin">webhook</span>' in text
    assert '<span class="badge wait">new</span> <span aria-label="to">→</span>' in text
    assert f'href="/console/deliveries/{delivery}"' in text
    (body,) = pre_blocks(text)
    assert html.unescape(body) == json.dumps(finbox_upload("s1", ("a1", "COMPLETED")), indent=2)
    # Live: the page follows the JSON API's Watch stream for the subject and its children.
    assert (
        'data-watch="/v1/statuses:watch?after_sequence=2'
        '&amp;filter.name_prefixes=sources%2Ffinbox%2Fsessions%2Fs1"'
    ) in text
    # The child's page names its parent.
    _, text, _ = await browser.get(f"/console/statuses/{ACCOUNT}")
    assert f'Parent: <a class="name" href="/console/statuses/{SESSION}">' in text


async def test_unknown_malformed_and_missing_pages_are_error_pages(browser: Browser) -> None:
    cases = {
        "/console/statuses/sources/finbox/sessions/nope": (404, "sessions/nope is not known"),
        "/console/statuses/sources/finbox/nothing/x": (400, "Bad request"),
        "/console/statuses/sources/elsewhere/sessions/x": (404, "is not configured"),
        "/console/deliveries/no-such-delivery": (404, "is not known"),
        "/console/deliveries/no-such-delivery/replay": (404, "is not known"),
        "/console/deliveries?verdict=lost": (400, "is not a DeliveryVerdict"),
        "/console/feed?kind=planet": (400, "is not a Kind"),
        "/console/feed?prefix=finbox": (400, "must start with"),
        "/console/feed/rows?after=x": (400, "sequence number"),
        "/console/no-such-page": (404, "There is no page /console/no-such-page"),
    }
    for path, (code, words) in cases.items():
        status, text, response = await browser.get(path)
        assert (status, response.content_type) == (code, "text/html"), path
        assert html.escape(words, quote=False) in text or words in text, (path, text)
        assert "<title>" in text and 'href="/console/"' in text  # a page, with its way out


async def test_deliveries_filtered_by_verdict_in_either_case_and_by_source(
    gw: RunningGateway, browser: Browser
) -> None:
    mapped = await delivery_of(gw, finbox_expiry("s1"))
    rejected = await delivery_of(gw, b"{broken")
    unmapped = await delivery_of(gw, {"what": "is this"}, source="setu")
    _, text, _ = await browser.get("/console/deliveries")
    assert all(f"/console/deliveries/{d}" in text for d in (mapped, rejected, unmapped))
    for spelling in ("rejected", "REJECTED", "delivery_verdict_rejected"):
        status, text, _ = await browser.get("/console/deliveries", params={"verdict": spelling})
        assert status == 200
        assert f"/console/deliveries/{rejected}" in text
        assert f"/console/deliveries/{mapped}" not in text
        assert 'value="rejected" checked' in text
    _, text, _ = await browser.get("/console/deliveries", params={"source": "setu"})
    assert f"/console/deliveries/{unmapped}" in text and f"/console/deliveries/{mapped}" not in text
    _, text, _ = await browser.get(
        "/console/deliveries", params=[("verdict", "mapped"), ("verdict", "Unmapped")]
    )
    assert f"/console/deliveries/{rejected}" not in text
    assert f"/console/deliveries/{mapped}" in text and f"/console/deliveries/{unmapped}" in text


async def test_a_delivery_s_page_and_its_replay_preview_then_apply(
    gw: RunningGateway, browser: Browser
) -> None:
    delivery = await delivery_of(gw, finbox_upload("s1", ("a1", "COMPLETED")))
    status, text, _ = await browser.get(f"/console/deliveries/{delivery}")
    assert status == 200
    assert '<span class="badge good">mapped</span>' in text
    assert "<code>content-type</code>" in text and "application/json" in text  # kept headers
    assert (
        f'<span class="num">#2</span> <a class="name" href="/console/statuses/{SESSION}">' in text
    )
    assert '"session_id": "s1"' in html.unescape(pre_blocks(text)[0])
    # The preview changes nothing: the same content again is a duplicate.
    status, text, _ = await browser.get(f"/console/deliveries/{delivery}/replay")
    assert status == 200 and "Dry run: nothing was written" in text
    assert "It would change no status" in text
    # A delivery a mapping fix would now map: an unmapped one kept at 202.
    unmapped = await delivery_of(gw, {"event_name": "SOMETHING_NEW", "session_id": "s9"})
    _, text, _ = await browser.get(f"/console/deliveries/{unmapped}/replay")
    assert '<span class="badge warn">unmapped</span> to <span class="badge warn">unmapped' in text
    # Apply: POST with the page's CSRF token, answered by a redirect (reloading the
    # delivery's page then replays nothing).
    csrf = await browser.csrf(f"/console/deliveries/{delivery}/replay")
    status, _, response = await browser.post(
        f"/console/deliveries/{delivery}/replay", {"csrf": csrf}
    )
    assert status == 303
    assert response.headers["Location"] == f"/console/deliveries/{delivery}?replayed=0"
    _, text, _ = await browser.get(response.headers["Location"])
    assert "Replay applied: 0 events." in text


async def test_replay_needs_the_form_s_csrf_token_and_the_same_site(
    gw: RunningGateway, browser: Browser
) -> None:
    delivery = await delivery_of(gw, finbox_expiry("s1"))
    path = f"/console/deliveries/{delivery}/replay"
    status, text, _ = await browser.post(path, {})
    assert status == 403 and "reload the page" in text
    csrf = await browser.csrf(path)
    status, _, _ = await browser.post(path, {"csrf": "not-" + csrf})
    assert status == 403
    status, _, _ = await browser.post(path, {"csrf": csrf}, headers={"Origin": "http://evil.test"})
    assert status == 403
    status, _, _ = await browser.post(path, {"csrf": csrf})
    assert status == 303


async def test_provider_values_are_escaped_everywhere(gw: RunningGateway, browser: Browser) -> None:
    # A session id that is markup is refused as a name (400, kept as rejected); the
    # same markup everywhere else in a payload is mapped and stored.
    rejected = await delivery_of(gw, hostile_finbox())
    mapped = await delivery_of(gw, hostile_finbox("plain-id"))
    session = "sources/finbox/sessions/plain-id"
    pages = [
        "/console/",
        "/console/deliveries",
        f"/console/deliveries/{rejected}",
        f"/console/deliveries/{mapped}",
        f"/console/deliveries/{mapped}/replay",
        f"/console/statuses/{session}",
        f"/console/statuses/{session}/accounts/<b>acct",
        "/console/feed",
        "/console/search?q=plain-id",
        f"/console/search?q={HOSTILE_ID}",
        f"/console/statuses/sources/finbox/sessions/{HOSTILE_ID}",  # a 400 page
    ]
    for path in pages:
        status, text, _ = await browser.get(path)
        assert status in (200, 400), path
        # The console's one script, and no other: every value came out as text.
        assert text.count("<script") == 1, path
        assert "<img" not in text and "<b>" not in text and "<i>" not in text, path
    _, text, _ = await browser.get(f"/console/statuses/{session}/accounts/<b>acct")
    assert str(markupsafe.escape(HOSTILE)) in text  # the bank name, as text


async def test_raw_bodies_hide_secrets_and_account_numbers(
    gw: RunningGateway, browser: Browser
) -> None:
    secret = "console-secret-7731"
    register_secret(secret)
    payload = finbox_upload("s1", ("a1", "COMPLETED"))
    payload["accounts"][0]["account_number"] = "50100123456789"
    payload["message"] = f"Upload Completed {secret}"
    delivery = await delivery_of(gw, payload)
    for path in (f"/console/deliveries/{delivery}", f"/console/statuses/{SESSION}"):
        _, text, _ = await browser.get(path)
        (body,) = pre_blocks(text)
        assert secret not in body and "[secret]" in body
        assert "50100123456789" not in body and '"XXXXXXXXXX6789"' in html.unescape(body)


async def test_the_feed_lists_recent_events_with_the_watch_filters(
    gw: RunningGateway, browser: Browser
) -> None:
    await delivery_of(gw, finbox_upload("s1", ("a1", "COMPLETED")))
    await delivery_of(gw, finbox_expiry("s2"))
    status, text, _ = await browser.get("/console/feed")
    assert status == 200
    rows = text.split("<tbody data-rows>")[1].split("</tbody>")[0]
    # Newest first: s2's expiry (3), then the upload's account (2) and session (1).
    assert [r.split('"')[0] for r in rows.split('data-sequence="')[1:]] == ["3", "2", "1"]
    assert 'data-watch="/v1/statuses:watch?after_sequence=3"' in text
    assert 'data-refresh="/console/feed/rows?after=3"' in text
    assert "data-pause hidden" in text  # the script shows it; without script, a link
    _, text, _ = await browser.get(
        "/console/feed", params={"kind": "session", "state": "EXPIRED", "source": "finbox"}
    )
    assert text.count('<tr data-sequence="') == 1 and 'data-sequence="3"' in text
    assert (
        "filter.sources=finbox&amp;filter.kinds=KIND_SESSION&amp;filter.states=STATE_EXPIRED"
        in text
    )
    assert 'data-refresh="/console/feed/rows?after=3&amp;source=finbox&amp;kind=session' in text
    assert '<option value="session" selected>' in text
    assert '<option value="expired" selected>' in text
    # Every field as often as wanted: any value of a field, every field that is set.
    _, text, _ = await browser.get(
        "/console/feed",
        params=[
            ("kind", "account"),
            ("kind", "KIND_SESSION"),
            ("prefix", "sources/finbox/sessions/s1 sources/finbox/sessions/s2"),
        ],
    )
    assert text.count('<tr data-sequence="') == 3
    assert 'value="sources/finbox/sessions/s1 sources/finbox/sessions/s2"' in text
    assert "filter.name_prefixes=sources%2Ffinbox%2Fsessions%2Fs1&amp;filter.name_prefixes" in text
    _, text, _ = await browser.get("/console/feed", params={"prefix": "sources/finbox/sessions/s2"})
    assert text.count('<tr data-sequence="') == 1
    # What the script fetches when the stream says something happened.
    await delivery_of(gw, finbox_expiry("s3"))
    status, text, _ = await browser.get("/console/feed/rows", params={"after": "3"})
    assert status == 200 and text.count("<tr data-sequence=") == 1 and 's3"' in text


async def test_account_numbers_show_their_last_four_characters_only(
    gw: RunningGateway, browser: Browser
) -> None:
    fixture = Path(__file__).parents[2] / (
        "src/statusgate/providers/banqware/fixtures/session_accounts_finished_details_list.json"
    )
    payload = json.loads(fixture.read_text())["payload"]
    delivery = await delivery_of(gw, payload, source="banqware")
    session = f"sources/banqware/sessions/{payload['sessionId']}"
    numbers = ["PL61109010140000071219812874", "PL27114020040000300201355387"]
    for path in (f"/console/statuses/{session}", f"/console/deliveries/{delivery}"):
        status, text, _ = await browser.get(path)
        assert status == 200
        # Links must carry the whole name to reach the account's page; what is shown
        # to a person never does.
        shown = re.sub(r'(href|data-watch|data-refresh)="[^"]*"', "", text)
        for number in numbers:
            assert number not in shown, path
            assert number[-4:] in shown, path
        assert "PL27 1140" not in shown  # as posted, with spaces: masked too
        body = html.unescape(pre_blocks(text)[0])
        assert '"accountNumber": "XXXXXXXXXXXXXXXXXXXXXXXX2874"' in body


async def test_events_show_the_trace_parent_they_carry(
    gw: RunningGateway, browser: Browser
) -> None:
    traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    status, _ = await gw.post("finbox", finbox_upload("s1"), {"traceparent": traced})
    assert status == 200
    await delivery_of(gw, finbox_expiry("s2"))  # no traceparent: nothing shown
    _, text, _ = await browser.get(f"/console/statuses/{SESSION}")
    assert f'<dt>Trace</dt><dd><code class="trace">{traced}</code></dd>' in text
    _, text, _ = await browser.get("/console/statuses/sources/finbox/sessions/s2")
    assert "<dt>Trace</dt>" not in text
    _, text, _ = await browser.get("/console/feed")
    assert '<th scope="col">Trace</th>' in text
    assert text.count('<code class="trace">') == 1 and traced in text
    _, text, _ = await browser.get("/console/feed/rows", params={"after": "0"})
    assert f'<code class="trace">{traced}</code>' in text

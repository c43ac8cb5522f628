"""The JSON API on a real API listener: every route of §11 answering proto3 JSON from
the same services as gRPC, query parameters by field path, precise 400s naming the
field, google.rpc.Status errors with AIP-193 codes, and the same scoped tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl

from tests.conftest import RunningGateway
from tests.operating import ADMIN, FINBOX_ADMIN, READER, bearer, operating_gateway
from tests.payloads import finbox_expiry, finbox_upload

SESSION = "sources/finbox/sessions/s1"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with operating_gateway(tmp_path) as gw:
        assert (await gw.post("finbox", finbox_upload("s1", ("a1", "COMPLETED"))))[0] == 200
        assert (await gw.post("finbox", finbox_expiry("s2")))[0] == 200
        assert (await gw.post("finbox", b"{broken"))[0] == 400
        yield gw


async def call(
    gw: RunningGateway,
    method: str,
    path: str,
    *,
    token: str = ADMIN,
    json: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with gw.http.request(
        method,
        # As written: percent-encoding in the path must reach the server untouched.
        yarl.URL(gw.api_url(path), encoded=True),
        json=json,
        data=data,
        headers={**(bearer(token) if token else {}), **(headers or {})},
    ) as response:
        return response.status, await response.json(content_type=None)


def reason_of(document: dict[str, Any]) -> str:
    infos = [d for d in document["error"]["details"] if d["@type"].endswith("ErrorInfo")]
    return str(infos[0]["reason"]) if infos else ""


async def test_status_routes(api: RunningGateway) -> None:
    code, status = await call(api, "GET", f"/v1/{SESSION}", token=READER)
    assert code == 200
    assert (status["name"], status["state"], status["kind"]) == (
        SESSION,
        "STATE_COMPLETED",
        "KIND_SESSION",
    )
    assert status["sequence"] == "2"  # proto3 JSON: 64-bit integers are strings

    code, page = await call(api, "GET", f"/v1/{SESSION}:listEvents", token=READER)
    assert code == 200 and [e["status"]["name"] for e in page["events"]] == [SESSION]

    code, batch = await call(
        api, "GET", f"/v1/statuses:batchGet?names={SESSION}&names=sources/finbox/sessions/no"
    )
    assert code == 200
    assert [s["name"] for s in batch["statuses"]] == [SESSION]
    assert batch["missingNames"] == ["sources/finbox/sessions/no"]

    # Nested and repeated parameters, enum names with or without their prefix.
    for kinds in ("filter.kinds=KIND_ACCOUNT", "filter.kinds=account", "filter.kinds=2"):
        code, listed = await call(api, "GET", f"/v1/statuses?parent=sources/finbox&{kinds}")
        assert code == 200 and [s["name"] for s in listed["statuses"]] == [f"{SESSION}/accounts/a1"]
    code, listed = await call(
        api, "GET", "/v1/statuses?filter.states=EXPIRED&filter.states=STATE_COMPLETED&pageSize=1"
    )
    assert code == 200 and len(listed["statuses"]) == 1 and listed["nextPageToken"]

    code, waited = await call(
        api,
        "POST",
        f"/v1/{SESSION}:wait",
        json={"condition": {"states": {"states": ["COMPLETED"]}}},
    )
    assert code == 200 and waited["name"] == SESSION

    code, polled = await call(api, "POST", "/v1/statuses:poll", json={"names": [SESSION]})
    assert code == 200 and polled["results"][0]["name"] == SESSION


async def test_delivery_routes(api: RunningGateway) -> None:
    code, listed = await call(api, "GET", "/v1/deliveries?filter.verdicts=rejected")
    assert code == 200
    [rejected] = listed["deliveries"]
    assert rejected["verdict"] == "DELIVERY_VERDICT_REJECTED" and "body" not in rejected
    code, one = await call(api, "GET", f"/v1/deliveries/{rejected['id']}")
    assert code == 200 and one["body"] == "e2Jyb2tlbg=="  # base64 of b"{broken"
    code, by_name = await call(api, "GET", f"/v1/deliveries?filter.name={SESSION}")
    assert code == 200 and len(by_name["deliveries"]) == 1
    code, replayed = await call(
        api,
        "POST",
        "/v1/deliveries:replay",
        json={"ids": [rejected["id"], "nope"], "dry_run": True},
    )
    assert code == 200
    ok, missing = replayed["results"]
    assert ok["verdictBefore"] == ok["verdictAfter"] == "DELIVERY_VERDICT_REJECTED"
    assert missing["error"]["code"] == 5  # NOT_FOUND for that id, the other proceeded
    code, by_filter = await call(
        api,
        "POST",
        "/v1/deliveries:replay",
        json={"filter": {"verdicts": ["MAPPED"], "sources": ["finbox"]}, "dryRun": True},
    )
    assert code == 200 and len(by_filter["results"]) == 2


@pytest.mark.parametrize(
    ("path", "field", "fragment"),
    [
        ("/v1/statuses?filter.kinds=KIND_BOGUS", "filter.kinds", "is not a Kind"),
        ("/v1/statuses?page_size=ten", "page_size", "is not an integer"),
        ("/v1/statuses?page_size=99999999999", "page_size", "out of range"),
        ("/v1/statuses?filter.terminal_only=maybe", "filter.terminal_only", "true or false"),
        ("/v1/statuses?filter.colour=red", "filter.colour", "not a field"),
        ("/v1/statuses?parent=a&parent=b", "parent", "one value"),
        ("/v1/statuses?filter=x", "filter", "is a message"),
        ("/v1/deliveries?filter.received_after=yesterday", "filter.received_after", "Timestamp"),
        ("/v1/deliveries?filter.verdicts=maybe", "filter.verdicts", "DeliveryVerdict"),
    ],
)
async def test_bad_query_values_are_400_naming_the_field(
    api: RunningGateway, path: str, field: str, fragment: str
) -> None:
    code, document = await call(api, "GET", path)
    assert code == 400
    error = document["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert fragment in error["message"] and error["message"].startswith(field)
    [violation] = [d for d in error["details"] if d["@type"].endswith("BadRequest")]
    assert violation["fieldViolations"][0]["field"] == field


async def test_bad_bodies(api: RunningGateway) -> None:
    code, document = await call(api, "POST", "/v1/statuses:poll", data=b"{names:")
    assert code == 400 and "not JSON" in document["error"]["message"]
    code, document = await call(api, "POST", "/v1/statuses:poll", data=b"[1]")
    assert code == 400 and "JSON object" in document["error"]["message"]
    code, document = await call(api, "POST", "/v1/statuses:poll", json={"names": "x"})
    assert code == 400 and document["error"]["details"][1]["fieldViolations"][0]["field"] == "names"
    wrong_enum = {"filter": {"verdicts": ["SOMETIMES"]}, "dryRun": True}
    code, document = await call(api, "POST", "/v1/deliveries:replay", json=wrong_enum)
    assert code == 400 and "filter.verdicts" in document["error"]["message"]
    # Unknown fields are ignored, as proto3 JSON allows, unless the client asks for strict.
    body = {"names": [SESSION], "colour": "red"}
    code, _ = await call(api, "POST", "/v1/statuses:poll", json=body)
    assert code == 200
    code, document = await call(
        api, "POST", "/v1/statuses:poll", json=body, headers={"Statusgate-Strict": "true"}
    )
    assert code == 400 and "colour" in document["error"]["message"]
    # Fields of a POST with body "*" go in the body, not the query.
    code, document = await call(api, "POST", "/v1/statuses:poll?names=x", json={})
    assert code == 400 and "body" in document["error"]["message"]


async def test_errors_are_google_rpc_status_with_aip_193_codes(api: RunningGateway) -> None:
    code, document = await call(api, "GET", "/v1/sources/finbox/sessions/nobody", token=READER)
    assert code == 404
    assert document["error"]["status"] == "NOT_FOUND"
    assert reason_of(document) == "STATUS_NOT_FOUND"
    code, document = await call(api, "GET", "/v1/sources/BAD/sessions/x", token=READER)
    assert (code, reason_of(document)) == (400, "INVALID_NAME")
    code, document = await call(api, "GET", "/v1/deliveries/nope")
    assert (code, reason_of(document)) == (404, "DELIVERY_NOT_FOUND")
    code, document = await call(api, "GET", "/v1/nowhere")
    assert (code, document["error"]["status"]) == (404, "NOT_FOUND")
    async with api.http.get(api.api_url(f"/v1/{SESSION}:wait"), headers=bearer(ADMIN)) as response:
        assert (response.status, response.headers["Allow"]) == (405, "POST")
    # An encoded ':' is part of the id, not a verb.
    code, document = await call(api, "GET", "/v1/sources/finbox/sessions/s1%3AlistEvents")
    assert (code, reason_of(document)) == (404, "STATUS_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v1/{SESSION}", None),
        ("GET", f"/v1/statuses:batchGet?names={SESSION}", None),
        ("GET", "/v1/statuses", None),
        ("GET", f"/v1/{SESSION}:listEvents", None),
        ("POST", "/v1/statuses:poll", {"names": [SESSION]}),
        ("POST", f"/v1/{SESSION}:wait", {"condition": {"terminal": True}}),
        ("GET", "/v1/statuses:watch", None),
        ("GET", "/v1/deliveries", None),
        ("GET", "/v1/deliveries/x", None),
        ("POST", "/v1/deliveries:replay", {"ids": ["x"]}),
    ],
)
async def test_every_route_takes_the_grpc_tokens(
    api: RunningGateway, method: str, path: str, body: Any
) -> None:
    code, document = await call(api, method, path, token="", json=body)
    assert (code, document["error"]["status"]) == (401, "UNAUTHENTICATED")
    async with api.http.request(method, api.api_url(path), json=body) as response:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    code, document = await call(api, method, path, token="not-a-token", json=body)
    assert code == 401
    if "deliveries" in path:
        code, document = await call(api, method, path, token=READER, json=body)
        assert (code, reason_of(document)) == (403, "PERMISSION_DENIED")


async def test_a_scoped_client_sees_only_its_sources(api: RunningGateway) -> None:
    assert (await api.post("setu", {"type": "CONSENT_STATUS_UPDATE"}))[0] == 400
    code, listed = await call(api, "GET", "/v1/deliveries", token=FINBOX_ADMIN)
    assert code == 200 and {d["source"] for d in listed["deliveries"]} == {"finbox"}
    code, document = await call(api, "GET", "/v1/sources/setu/consents/c1", token=FINBOX_ADMIN)
    assert (code, reason_of(document)) == (403, "SOURCE_NOT_PERMITTED")
    code, listed = await call(api, "GET", "/v1/statuses?filter.sources=setu", token=FINBOX_ADMIN)
    assert code == 200 and listed == {}


async def test_openapi_and_metrics_are_served(api: RunningGateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(api.api_url("/v1/openapi.json")) as response:
            document = await response.json()
        assert "/v1/deliveries:replay" in document["paths"]
        async with http.get(api.api_url("/metrics")) as response:
            assert "statusgate_webhooks_total" in await response.text()


async def test_an_unknown_caller_is_refused_before_its_request_is_read(
    api: RunningGateway,
) -> None:
    code, document = await call(api, "GET", "/v1/statuses?filter.kinds=BOGUS", token="")
    assert (code, document["error"]["status"]) == (401, "UNAUTHENTICATED")


async def test_with_no_clients_on_loopback_every_route_is_open(gw: RunningGateway) -> None:
    assert (await gw.post("finbox", finbox_expiry("open-1")))[0] == 200
    code, listed = await call(gw, "GET", "/v1/deliveries", token="")
    assert code == 200 and len(listed["deliveries"]) == 1
    code, replayed = await call(
        gw, "POST", "/v1/deliveries:replay", token="", json={"ids": [listed["deliveries"][0]["id"]]}
    )
    assert code == 200 and "error" not in replayed["results"][0]

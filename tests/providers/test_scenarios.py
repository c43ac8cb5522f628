"""Every provider's simulate scenarios: made of fixtures its adapter maps, one flow of
the same subjects step after step, fresh ids on every run, and a failure among them."""

from __future__ import annotations

import json

import pytest

from statusgate.core.apply import apply
from statusgate.core.deliveries import DeliveryVerdict
from statusgate.core.states import FAILURE_STATES
from statusgate.ingest import normalize_body
from statusgate.providers.registry import PROVIDERS
from statusgate.providers.scenarios import Scenario, fresh_id, webhooks
from statusgate.providers.spec import ProviderSpec
from statusgate.v1.status_pb2 import Status

SCENARIOS = [(spec, scenario) for spec in PROVIDERS for scenario in spec.scenarios]


def run(spec: ProviderSpec, scenario: Scenario) -> list[list[Status]]:
    source = spec.source_model(provider=spec.name, id=spec.default_source or spec.name)
    steps = []
    for webhook in webhooks(scenario, spec.fixtures):
        judged = normalize_body(spec.adapter, source, webhook.body, path=webhook.path)
        assert judged.verdict is DeliveryVerdict.MAPPED, (webhook.label, judged.detail)
        assert judged.updates, webhook.label
        steps.append(judged.updates)
    return steps


@pytest.mark.parametrize(("spec", "scenario"), SCENARIOS, ids=lambda v: getattr(v, "name", ""))
def test_each_step_maps_and_continues_the_same_flow(spec: ProviderSpec, scenario: Scenario) -> None:
    steps = run(spec, scenario)
    seen: set[str] = set()
    for number, updates in enumerate(steps):
        # Names, their ids, and the links kept in attributes (a data session's consent).
        names = {u.name for u in updates} | {u.parent for u in updates if u.parent}
        names |= {u.name.rsplit("/", 1)[-1] for u in updates}
        names |= {value for u in updates for value in u.attributes.values()}
        if number:
            assert names & seen, f"step {number + 1} of {scenario.name} names other subjects"
        seen |= names
    # Applied in order, every step changes something (no step is a lost duplicate).
    current: dict[str, Status] = {}
    for updates in steps:
        changed = False
        for update in updates:
            new = apply(current.get(update.name), update)
            if new is not None:
                current[update.name] = new
                changed = True
        assert changed


def test_the_scenarios_an_integrator_expects_and_a_failure_per_provider() -> None:
    names = {(spec.name, s.name) for spec, s in SCENARIOS}
    assert {
        ("finbox", "upload-then-enrichment"),
        ("finbox", "expiry"),
        ("banqware", "session-to-transactions"),
        ("banqware", "payment-completed"),
        ("setu", "consent-active"),
        ("setu", "data-session-completed"),
    } <= names
    for spec in PROVIDERS:
        failures = [
            scenario
            for scenario in spec.scenarios
            if any(
                update.state in FAILURE_STATES and update.HasField("error")
                for updates in run(spec, scenario)
                for update in updates
            )
        ]
        assert failures, f"{spec.name} has no scenario that ends in a failure"


def test_every_run_gets_fresh_ids_the_same_across_its_steps() -> None:
    spec = PROVIDERS.spec("finbox")
    scenario = next(s for s in spec.scenarios if s.name == "upload-then-enrichment")
    first = [json.loads(w.body) for w in webhooks(scenario, spec.fixtures)]
    second = [json.loads(w.body) for w in webhooks(scenario, spec.fixtures)]
    assert first[0]["session_id"] == first[1]["session_id"]
    assert first[0]["session_id"] != second[0]["session_id"]
    uploaded = {a["account_id"] for a in first[0]["accounts"]}
    assert {a["account_id"] for a in first[1]["accounts"]} == uploaded


def test_a_fresh_id_keeps_the_shape_of_the_old_one() -> None:
    old = "136b1aa3-4610-4d0a-89f3-03078a2fce92"
    new = fresh_id(old)
    assert new != old and len(new) == len(old)
    assert all(c in "0123456789abcdef-" for c in new) and new.count("-") == 4
    iban = fresh_id("PL61109010140000071219812874")
    assert iban[:2].isupper() and iban[2:].isdigit()

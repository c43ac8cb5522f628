"""The alert rules are complete where promtool cannot tell: each says what fired and
where (its source), links a runbook section that exists, and its unit tests make it
both fire and stay silent. (promtool itself checks and runs them in scripts/test.)"""

from __future__ import annotations

import re

import yaml

from tests.deploy.promql import ALERTS, ROOT, alert_rules

DOCS = ROOT / "docs" / "observability.md"
TESTS = ALERTS.with_name("alerts_test.yml")


def slug(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors() -> set[str]:
    return {
        slug(line.lstrip("#")) for line in DOCS.read_text().splitlines() if line.startswith("#")
    }


def test_every_alert_says_what_and_where_and_links_its_runbook() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert re.fullmatch(r"\d+m", rule["for"]), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, name
        path, _, anchor = annotations["runbook"].partition("#")
        assert path == "docs/observability.md", name
        assert anchor == slug(name) and anchor in anchors(), f"{name}: no section #{anchor}"
        # An alert per source says which source, in both of its texts.
        if re.search(r"by \([^)]*\bsource\b", rule["expr"]):
            for text in ("summary", "description"):
                assert "{{ $labels.source }}" in annotations[text], f"{name} {text}"


def test_the_docs_have_a_section_for_each_alert_and_no_other() -> None:
    documented = {
        line.lstrip("#").strip()
        for line in DOCS.read_text().splitlines()
        if re.match(r"#+ Statusgate\w+$", line)
    }
    assert documented == {rule["alert"] for rule in alert_rules()}


def test_the_unit_tests_make_every_alert_fire_and_stay_silent() -> None:
    tests = yaml.safe_load(TESTS.read_text())
    assert tests["rule_files"] == [ALERTS.name]
    fired: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
            for alert in check["exp_alerts"]:
                # The whole alert is compared, annotations included.
                assert set(alert["exp_annotations"]) == {"summary", "description", "runbook"}
    every = {rule["alert"] for rule in alert_rules()}
    assert fired == every, f"never fired: {every - fired}"
    assert silent == every, f"never shown silent: {every - silent}"

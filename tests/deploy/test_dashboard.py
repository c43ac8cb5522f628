"""The Grafana dashboard is a dashboard Grafana can provision, and it shows what it
claims: every panel queries Prometheus through the dashboard's data source, honours the
job and source variables, and the topics an operator looks for each have a panel."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.promql import dashboard, metric_names, panels, selector_labels

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def graphs() -> list[dict[str, Any]]:
    return [panel for panel in panels(dashboard()) if panel["type"] != "row"]


def test_the_dashboard_is_a_provisionable_dashboard() -> None:
    board = dashboard()
    assert board["uid"] == "statusgate"
    assert board["title"] and isinstance(board["schemaVersion"], int)
    assert "id" not in board  # Grafana assigns it; a fixed one clashes on import
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        assert panel["title"], panel
        if panel["type"] == "row":
            assert "targets" not in panel and not panel["panels"]


def test_every_panel_has_a_datasource_and_queries() -> None:
    for panel in graphs():
        title = panel["title"]
        assert panel["datasource"] == DATASOURCE, title
        assert panel["targets"], f"{title} has no query"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), title
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, title
            assert target["expr"].strip(), title
            # Balanced, so Grafana's editor and Prometheus parse what is written.
            for opening, closing in ("()", "{}", "[]"):
                assert target["expr"].count(opening) == target["expr"].count(closing), title


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboard()):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_variables() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    source = variables["source"]
    assert source["multi"] and source["includeAll"] and source["allValue"] == ".*"
    assert "$job" in source["query"]["query"]
    for variable in (variables["job"], source):
        assert variable["datasource"] == DATASOURCE


def test_every_query_is_scoped_by_job_and_source_where_it_has_one() -> None:
    """Every selector matches job=~"$job" (several deployments in one Prometheus); every
    selector of a per-source metric matches source=~"$source" (the variable applies
    to every panel that can honour it)."""
    per_source = {
        "statusgate_webhooks_total",
        "statusgate_webhook_ack_seconds_bucket",
        "statusgate_events_total",
        "statusgate_polls_total",
        "statusgate_upstream_requests_total",
        "statusgate_upstream_request_seconds_bucket",
        "statusgate_breaker_state",
        "statusgate_subjects",
        "statusgate_oldest_open_subject_age_seconds",
    }
    for panel in graphs():
        for target in panel["targets"]:
            expr = target["expr"]
            selectors = selector_labels(expr)
            assert set(selectors) == metric_names(expr), f"{panel['title']}: a bare metric"
            for name, labels in selectors.items():
                assert "job" in labels, f"{panel['title']}: {name} without $job"
                if name in per_source:
                    assert "source" in labels, f"{panel['title']}: {name} without $source"
            for selector in re.findall(r"\{[^}]*\}", expr):
                if "job" in selector:
                    assert 'job=~"$job"' in selector, selector
                if "source" in selector:
                    assert 'source=~"$source"' in selector, selector


def test_the_topics_each_have_a_panel() -> None:
    read = {name: panel["title"] for panel in graphs() for name in _names(panel)}
    for metric in (
        "statusgate_webhooks_total",
        "statusgate_webhook_ack_seconds_bucket",
        "statusgate_events_total",
        "statusgate_commit_batch_size_bucket",
        "statusgate_commit_seconds_bucket",
        "statusgate_commit_failures_total",
        "statusgate_store_up",
        "statusgate_grpc_calls_total",
        "statusgate_grpc_call_seconds_bucket",
        "statusgate_watch_streams",
        "statusgate_watch_lag_events",
        "statusgate_upstream_requests_total",
        "statusgate_upstream_request_seconds_bucket",
        "statusgate_breaker_state",
        "statusgate_reconciler_backlog",
        "statusgate_reconciler_lag_seconds",
        "statusgate_subjects",
        "statusgate_oldest_open_subject_age_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert metric in read, f"no panel reads {metric}"
    # Latencies as quantiles of their histograms: p50 and p99.
    [ack] = [
        panel
        for panel in graphs()
        if panel["title"] == read["statusgate_webhook_ack_seconds_bucket"]
    ]
    exprs = [target["expr"] for target in ack["targets"]]
    assert any(e.startswith("histogram_quantile(0.5,") for e in exprs)
    assert any(e.startswith("histogram_quantile(0.99,") for e in exprs)
    for e in exprs:
        assert "sum by (le)" in e  # aggregated over workers and replicas, le kept


def _names(panel: dict[str, Any]) -> set[str]:
    return {name for target in panel["targets"] for name in metric_names(target["expr"])}

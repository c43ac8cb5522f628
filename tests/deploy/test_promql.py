"""The metric-name extractor the deploy tests rely on, on expressions of every shape
the dashboard and the rules use (and some they might)."""

from __future__ import annotations

import pytest

from tests.deploy.promql import expressions, metric_names, selector_labels, variable_query_expr


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('up{job="statusgate"} == 0', {"up"}),
        # Functions, aggregations with their label lists before or after, ranges.
        (
            "histogram_quantile(0.99, sum by (le, source) "
            '(rate(statusgate_webhook_ack_seconds_bucket{job=~"$job", source=~"$source"}'
            "[$__rate_interval])))",
            {"statusgate_webhook_ack_seconds_bucket"},
        ),
        (
            "sum(rate(statusgate_commit_batch_size_sum[5m])) by (job) / "
            "sum without (pid) (rate(statusgate_commit_batch_size_count[5m]))",
            {"statusgate_commit_batch_size_sum", "statusgate_commit_batch_size_count"},
        ),
        # Label values that look like names, regexes and strings with braces are not names.
        (
            'sum by (verdict) (rate(statusgate_webhooks_total{verdict=~"rejected|conflict", '
            "method!~\".*/WatchStatuses\", x='a{b}'}[10m])) > 0.02",
            {"statusgate_webhooks_total"},
        ),
        # Numbers with exponents, durations after offset, keywords, binary matching.
        (
            "statusgate_reconciler_lag_seconds offset 5m > 6e2 and on (job) "
            "group_left (instance) process_open_fds or vector(0)",
            {"statusgate_reconciler_lag_seconds", "process_open_fds"},
        ),
        (
            "count(max by (source) (statusgate_breaker_state) > 0) or vector(0)",
            {"statusgate_breaker_state"},
        ),
        # Subqueries and colons of recording rules.
        ("max_over_time(job:statusgate_lag:max[1h:5m])", {"job:statusgate_lag:max"}),
        (
            'sum(rate(process_cpu_seconds_total{job=~"${job}"}[$__rate_interval]))',
            {"process_cpu_seconds_total"},
        ),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_variable_queries() -> None:
    assert (
        variable_query_expr('label_values(statusgate_subjects{job=~"$job"}, source)')
        == 'statusgate_subjects{job=~"$job"}'
    )
    assert variable_query_expr("label_values(job)") == ""
    assert variable_query_expr("up") == "up"


def test_every_expression_of_deploy_names_a_metric() -> None:
    """Every target, variable and rule reads at least one metric (an expression whose
    names all vanished would pass the metric-name check while checking nothing)."""
    found = expressions()
    assert len([where for where in found if where.startswith("alert ")]) >= 8
    assert len([where for where in found if where.startswith("panel ")]) >= 30
    for where, expr in found.items():
        assert metric_names(expr), f"{where}: no metric name in {expr!r}"


def test_selector_labels() -> None:
    expr = (
        'sum by (source) (rate(statusgate_webhooks_total{job=~"$job", verdict=~"a|b"}[5m]))'
        ' / sum(rate(statusgate_webhooks_total{source!="x}"}[5m])) + up'
    )
    assert selector_labels(expr) == {"statusgate_webhooks_total": {"job", "verdict", "source"}}

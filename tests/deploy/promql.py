"""The metric names that deploy/'s PromQL expressions read: the alert rules' and the
Grafana dashboard's (panel targets and template variable queries).

Not a PromQL parser: it removes what cannot be a metric name (strings, label matchers,
range and subquery brackets, the label lists of by/without/on/ignoring/group_*, Grafana
variables, numbers and durations), then drops functions and aggregations (a name
followed by ``(``) and keywords. What is left is a metric name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "statusgate.json"

_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`""")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
# Numbers (with exponents, and durations such as 5m after offset) before names, so that
# the "e3" of 1e3 or the "m" of 5m is never taken for one.
_TOKEN = re.compile(
    r"(?P<number>(?:0x[0-9a-fA-F]+|\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*)"
    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)"
)
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan"}
)
_LABEL_VALUES = re.compile(r"\s*label_values\((?P<expr>.*),\s*[A-Za-z_]\w*\s*\)\s*", re.S)
_LABEL_VALUES_OF_ANY = re.compile(r"\s*label_values\(\s*[A-Za-z_]\w*\s*\)\s*")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    names = set()
    for token in _TOKEN.finditer(text):
        name = token.group("name")
        if name is None or name.lower() in _KEYWORDS:
            continue
        if text[token.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        names.add(name)
    return names


def variable_query_expr(query: str) -> str:
    """The series selector of a Grafana ``label_values(selector, label)`` query (empty
    for ``label_values(label)``), or the query itself when it is PromQL."""
    if _LABEL_VALUES_OF_ANY.fullmatch(query):
        return ""
    found = _LABEL_VALUES.fullmatch(query)
    return found.group("expr") if found else query


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions() -> dict[str, str]:
    """Where -> expression, for every expression of the alert rules and the dashboard."""
    found = {f"alert {rule['alert']}": str(rule["expr"]) for rule in alert_rules()}
    board = dashboard()
    for panel in panels(board):
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            found[f"variable {variable['name']}"] = variable_query_expr(text)
    return found


_SELECTOR = re.compile(
    r"""([A-Za-z_:][A-Za-z0-9_:]*)\s*\{((?:[^{}"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')*)\}"""
)
_MATCHER = re.compile(
    r"""([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)


def selector_labels(expr: str) -> dict[str, set[str]]:
    """Metric name -> the label names its selectors match on (``x{a="1", b=~"2"}``)."""
    found: dict[str, set[str]] = {}
    for selector in _SELECTOR.finditer(expr):
        labels = {matcher.group(1) for matcher in _MATCHER.finditer(selector.group(2))}
        found.setdefault(selector.group(1), set()).update(labels)
    return found

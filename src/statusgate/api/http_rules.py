"""``google.api.http`` rules: their path templates, parsed once and matched against
request paths.

A template is ``/segment/...[:verb]`` where a segment is a literal, ``*`` (one
segment), ``**`` (one or more) or a variable ``{field.path[=segments]}`` (``{id}`` is
``{id=*}``). The JSON API (``api.transcoder``) matches requests with them, and the
OpenAPI document (``api.openapi``) is written from the same parse, so the two can never
disagree about a route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

_VARIABLE_RE = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_.]*)(?:=([^}]*))?\}")


class TemplateError(ValueError):
    """A path template this gateway cannot serve."""


@dataclass(frozen=True, slots=True)
class Template:
    """One parsed path template."""

    text: str
    # Field paths bound by the path, in order.
    variables: tuple[str, ...]
    # The template as OpenAPI writes paths: ``/v1/{name}:wait``.
    openapi_path: str
    # Literal segments: more of them is more specific (tried first).
    literals: int
    verb: str
    _pattern: re.Pattern[str]

    def match(self, raw_path: str) -> dict[str, str] | None:
        """The percent-decoded value of each variable, or None when the path does not
        match. ``raw_path`` is the path as sent (still percent-encoded), so an encoded
        "/" inside one segment cannot be taken for a separator."""
        found = self._pattern.fullmatch(raw_path)
        if found is None:
            return None
        return {
            variable: unquote(found.group(f"v{index}"), errors="strict")
            for index, variable in enumerate(self.variables)
        }


def parse_template(text: str) -> Template:
    if not text.startswith("/"):
        raise TemplateError(f"template {text!r} must start with '/'")
    # The verb follows the last ':' that is outside every {...}.
    depth, split = 0, -1
    for index, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == ":" and depth == 0:
            split = index
    path, verb = (text[:split], text[split + 1 :]) if split >= 0 else (text, "")
    regex: list[str] = []
    variables: list[str] = []
    openapi: list[str] = []
    position = 0
    for match in _VARIABLE_RE.finditer(path):
        literal = path[position : match.start()]
        regex.append(_segments(literal))
        openapi.append(literal)
        field_path, pattern = match.group(1), match.group(2) or "*"
        regex.append(f"(?P<v{len(variables)}>{_segments(pattern)})")
        variables.append(field_path)
        openapi.append("{" + field_path + "}")
        position = match.end()
    tail = path[position:]
    regex.append(_segments(tail))
    openapi.append(tail)
    stripped = _VARIABLE_RE.sub("{}", path).split("/")
    literals = sum(1 for part in stripped if part and "{" not in part and "*" not in part)
    if verb:
        regex.append(re.escape(":" + verb))
        openapi.append(":" + verb)
    return Template(
        text=text,
        variables=tuple(variables),
        openapi_path="".join(openapi),
        literals=literals,
        verb=verb,
        _pattern=re.compile("".join(regex)),
    )


def _segments(text: str) -> str:
    """Regex for a run of literal text and ``*`` / ``**`` wildcards. A ``**`` may take
    a ':' too (ids may hold one); the transcoder tries templates with a verb first, so
    ``…/x:wait`` is WaitStatus, and a client whose id holds ":wait" encodes it (%3A)."""
    out = []
    for part in re.split(r"(\*\*|\*)", text):
        if part == "**":
            out.append(r".+")
        elif part == "*":
            out.append(r"[^/]+")
        else:
            out.append(re.escape(part))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Binding:
    """One HTTP form of an RPC: method, template and where the body goes."""

    http_method: str
    template: Template
    # "" (no body), "*" (the whole request) or a top-level field name.
    body: str


def rule_of(options: MethodOptions) -> http_pb2.HttpRule | None:
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    return rule


def bindings(method: MethodDescriptor | MethodOptions) -> list[Binding]:
    """The bindings of an RPC's ``google.api.http`` rule (with its additional ones)."""
    options = method.GetOptions() if isinstance(method, MethodDescriptor) else method
    rule = rule_of(options)
    if rule is None:
        return []
    return [_binding(rule), *(_binding(extra) for extra in rule.additional_bindings)]


def _binding(rule: http_pb2.HttpRule) -> Binding:
    kind = rule.WhichOneof("pattern")
    if kind is None or kind == "custom":
        raise TemplateError("only get, put, post, delete and patch rules are served")
    return Binding(kind.upper(), parse_template(getattr(rule, kind)), rule.body)

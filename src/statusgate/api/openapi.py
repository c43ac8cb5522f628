"""The OpenAPI 3.1 document of the JSON API, written from the protos.

``python -m statusgate.api.openapi DESCRIPTOR_SET`` prints it for a descriptor set made
by protoc with ``--include_imports --include_source_info`` (so the protos' comments
become descriptions); ``scripts/generate.sh`` writes it next to the generated code,
where CI checks it is current, and the API listener serves it at ``/v1/openapi.json``.
Routes come from the same ``google.api.http`` parse as the transcoder's
(``api.http_rules``), and schemas follow the proto3 JSON mapping the API speaks
(64-bit integers as strings, enums by name, Timestamps as RFC 3339).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from statusgate.api.http_rules import bindings

PACKAGE = "statusgate.v1"
FieldProto = descriptor_pb2.FieldDescriptorProto

_SCALARS: dict[int, dict[str, Any]] = {
    FieldProto.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldProto.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldProto.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldProto.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldProto.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # proto3 JSON writes 64-bit integers as strings (JavaScript numbers lose them).
    FieldProto.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldProto.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldProto.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldProto.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldProto.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldProto.TYPE_BOOL: {"type": "boolean"},
    FieldProto.TYPE_STRING: {"type": "string"},
    FieldProto.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
}
_ERROR = {
    "type": "object",
    "description": "The HTTP form of google.rpc.Status; details[] holds an ErrorInfo whose"
    " reason a client can switch on.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status (AIP-193)."},
                "status": {"type": "string", "description": "The google.rpc.Code name."},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"$ref": "#/components/schemas/Any"}},
            },
        }
    },
}


class _Types:
    """Every message and enum of the set, by full name, with its comment."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.comments: dict[str, str] = {}
        self.services: list[tuple[descriptor_pb2.ServiceDescriptorProto, dict[str, str]]] = []
        for file in files.file:
            comments = _comments(file)
            self._add(file.package, file.message_type, file.enum_type, (), comments)
            for index, service in enumerate(file.service):
                if file.package != PACKAGE:
                    continue
                notes = {"": comments.get((6, index), "")}
                for m_index, method in enumerate(service.method):
                    notes[method.name] = comments.get((6, index, 2, m_index), "")
                self.services.append((service, notes))

    def _add(
        self,
        scope: str,
        messages: Any,
        enums: Any,
        path: tuple[int, ...],
        comments: dict[tuple[int, ...], str],
    ) -> None:
        for index, enum in enumerate(enums):
            name = f"{scope}.{enum.name}"
            self.enums[name] = enum
            self.comments[name] = comments.get((*path, 5 if not path else 4, index), "")
        for index, message in enumerate(messages):
            name = f"{scope}.{message.name}"
            where = (*path, 4 if not path else 3, index)
            self.messages[name] = message
            self.comments[name] = comments.get(where, "")
            for f_index, field in enumerate(message.field):
                self.comments[f"{name}.{field.name}"] = comments.get((*where, 2, f_index), "")
            self._add(name, message.nested_type, message.enum_type, where, comments)


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {
        tuple(location.path): " ".join(location.leading_comments.split())
        for location in file.source_code_info.location
        if location.leading_comments
    }


def document(files: descriptor_pb2.FileDescriptorSet) -> dict[str, Any]:
    types = _Types(files)
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for service, notes in types.services:
        for method in service.method:
            for binding in bindings(method.options):
                request = types.messages[method.input_type.lstrip(".")]
                operation: dict[str, Any] = {
                    "operationId": f"{service.name}_{method.name}",
                    "tags": [service.name],
                    "summary": notes[method.name],
                    "parameters": [],
                    "responses": {},
                }
                bound = set(binding.template.variables)
                for variable in binding.template.variables:
                    operation["parameters"].append(
                        {
                            "name": variable,
                            "in": "path",
                            "required": True,
                            # {name=sources/**}: the value keeps its "/".
                            "allowReserved": True,
                            "schema": {"type": "string"},
                            "description": types.comments.get(
                                f"{method.input_type.lstrip('.')}.{variable}", ""
                            ),
                        }
                    )
                if binding.body:
                    operation["requestBody"] = {
                        "required": True,
                        "content": {
                            "application/json": {"schema": _ref(method.input_type, types, schemas)}
                        },
                    }
                else:
                    for name, schema, note in _query(request, "", types, schemas, bound):
                        operation["parameters"].append(
                            {"name": name, "in": "query", "schema": schema, "description": note}
                        )
                output = _ref(method.output_type, types, schemas)
                if method.server_streaming:
                    operation["responses"]["200"] = {
                        "description": "Server-Sent Events: one 'status' event per StatusEvent"
                        " (id: its sequence), one 'caught_up' event (id: the sequence caught"
                        " up with); reconnect with Last-Event-ID to resume. Each data: is"
                        f" proto3 JSON of the messages in {method.output_type.lstrip('.')}.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    }
                else:
                    operation["responses"]["200"] = {
                        "description": "OK",
                        "content": {"application/json": {"schema": output}},
                    }
                operation["responses"]["default"] = {
                    "description": "An error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
                paths.setdefault(binding.template.openapi_path, {})[binding.http_method.lower()] = (
                    operation
                )
    schemas["Error"] = _ERROR
    schemas.setdefault("Any", _WELL_KNOWN["google.protobuf.Any"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "statusgate",
            "version": "v1",
            "description": "The JSON form of statusgate's gRPC API (statusgate.v1), served on"
            " the API listener from the protos' google.api.http annotations. Every call"
            " takes 'Authorization: Bearer <token>' unless the gateway has no clients.",
        },
        "servers": [{"url": "http://127.0.0.1:8081"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(schemas.items())),
        },
    }


def _query(
    message: descriptor_pb2.DescriptorProto,
    prefix: str,
    types: _Types,
    schemas: dict[str, Any],
    bound: set[str],
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Query parameters of a GET: every field by its dotted path, messages flattened."""
    scope = next(name for name, m in types.messages.items() if m is message)
    for field in message.field:
        path = f"{prefix}{field.name}"
        if path in bound:
            continue
        type_name = field.type_name.lstrip(".")
        nested = types.messages.get(type_name)
        if (
            field.type == FieldProto.TYPE_MESSAGE
            and type_name not in _WELL_KNOWN
            and nested is not None
            and not nested.options.map_entry
            and field.label != FieldProto.LABEL_REPEATED
        ):
            yield from _query(nested, f"{path}.", types, schemas, bound)
            continue
        schema = _field_schema(field, types, schemas)
        yield path, schema, types.comments.get(f"{scope}.{field.name}", "")


def _field_schema(
    field: descriptor_pb2.FieldDescriptorProto, types: _Types, schemas: dict[str, Any]
) -> dict[str, Any]:
    type_name = field.type_name.lstrip(".")
    entry = types.messages.get(type_name)
    if entry is not None and entry.options.map_entry:
        value = next(f for f in entry.field if f.name == "value")
        return {"type": "object", "additionalProperties": _field_schema(value, types, schemas)}
    if field.type in (FieldProto.TYPE_MESSAGE, FieldProto.TYPE_ENUM):
        one = _ref(field.type_name, types, schemas)
    else:
        one = dict(_SCALARS[field.type])
    if field.label == FieldProto.LABEL_REPEATED:
        return {"type": "array", "items": one}
    return one


def _ref(type_name: str, types: _Types, schemas: dict[str, Any]) -> dict[str, Any]:
    name = type_name.lstrip(".")
    if name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[name])
    key = _schema_name(name)
    if key not in schemas:
        schemas[key] = {}  # placeholder first: messages may refer to themselves
        if name in types.enums:
            enum = types.enums[name]
            schemas[key] = {
                "type": "string",
                "enum": [value.name for value in enum.value],
                "description": types.comments.get(name, ""),
            }
        else:
            message = types.messages[name]
            schemas[key] = {
                "type": "object",
                "description": types.comments.get(name, ""),
                "properties": {
                    field.json_name: {
                        **_field_schema(field, types, schemas),
                        "description": types.comments.get(f"{name}.{field.name}", ""),
                    }
                    for field in message.field
                },
            }
    return {"$ref": f"#/components/schemas/{key}"}


def _schema_name(full_name: str) -> str:
    """``statusgate.v1.Status`` -> ``Status``; other packages keep theirs."""
    if full_name.startswith(PACKAGE + "."):
        return full_name.removeprefix(PACKAGE + ".")
    return full_name.replace("google.rpc.", "rpc.").replace("google.protobuf.", "")


def render(files: descriptor_pb2.FileDescriptorSet) -> str:
    return json.dumps(_without_empty_descriptions(document(files)), indent=2) + "\n"


def _without_empty_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_empty_descriptions(v)
            for k, v in value.items()
            if not (k in ("description", "summary") and v == "")
        }
    if isinstance(value, list):
        return [_without_empty_descriptions(v) for v in value]
    return value


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m statusgate.api.openapi DESCRIPTOR_SET", file=sys.stderr)
        return 2
    files = descriptor_pb2.FileDescriptorSet.FromString(Path(argv[0]).read_bytes())
    sys.stdout.write(render(files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

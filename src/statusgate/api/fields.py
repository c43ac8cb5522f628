"""Request messages from HTTP: query parameters and path variables by field path, and
JSON bodies by the proto3 JSON mapping.

A query parameter names a field by its path, proto or JSON spelling alike
(``filter.kinds``, ``filter.namePrefixes``, ``page_size``); a repeated field takes the
parameter once per value. Enum values may be written with or without their type's
prefix and in any case (``KIND_SESSION``, ``session``), in parameters and in JSON
bodies both, and so may be numbers. Every problem names the field it is about
(``FieldProblem``), which the transcoder answers as a 400 with a
``google.rpc.BadRequest`` detail.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

# Well-known types a query parameter can carry as one string (their proto3 JSON form).
_SCALAR_MESSAGES = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
}
_INTEGERS = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOATS = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}


class FieldProblem(ValueError):
    """A value the request cannot take; ``field`` is its path as the client wrote it."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}" if field else description)
        self.field = field
        self.description = description


def field_by_name(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    """A field by its proto name or its JSON name."""
    found = descriptor.fields_by_name.get(name)
    if found is not None:
        return found
    for candidate in descriptor.fields:
        if candidate.json_name == name:
            return candidate
    return None


def resolve(descriptor: Any, path: str) -> list[FieldDescriptor]:
    """The fields along a dotted path; raises FieldProblem naming the path."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for part in path.split("."):
        found = field_by_name(current, part) if current is not None else None
        if found is None:
            raise FieldProblem(path, "is not a field of this request")
        fields.append(found)
        current = found.message_type
    return fields


def set_path(message: Message, path: str, values: list[str]) -> None:
    """Set the field at ``path`` from one or more query values (or a path variable)."""
    fields = resolve(message.DESCRIPTOR, path)
    target = message
    for field in fields[:-1]:
        if _is_repeated(field) or field.message_type is None:
            raise FieldProblem(path, f"{field.name} is not a message a parameter can reach into")
        if field.message_type.full_name in _SCALAR_MESSAGES:
            raise FieldProblem(path, f"{field.name} takes one value, not fields")
        target = getattr(target, field.name)
    leaf = fields[-1]
    if leaf.message_type is not None and leaf.message_type.GetOptions().map_entry:
        raise FieldProblem(path, "a map cannot be set by query parameters; use a JSON body")
    if not _is_repeated(leaf) and len(values) > 1:
        raise FieldProblem(path, "takes one value, but was given several")
    if leaf.message_type is not None and leaf.message_type.full_name not in _SCALAR_MESSAGES:
        raise FieldProblem(path, "is a message: set its fields (e.g. filter.sources=...)")
    converted = [_convert(leaf, value, path) for value in values]
    if _is_repeated(leaf):
        repeated = getattr(target, leaf.name)
        for value in converted:
            if leaf.message_type is not None:
                repeated.add().CopyFrom(value)
            else:
                repeated.append(value)
    elif leaf.message_type is not None:
        getattr(target, leaf.name).CopyFrom(converted[0])
    else:
        setattr(target, leaf.name, converted[0])


def _convert(field: FieldDescriptor, text: str, path: str) -> Any:
    if field.message_type is not None:
        message = _message_class(field)()
        try:
            json_format.Parse(json.dumps(text), message)
        except json_format.ParseError:
            type_name = field.message_type.name
            raise FieldProblem(path, f"{text!r} is not a {type_name} in its JSON form") from None
        return message
    if field.enum_type is not None:
        return enum_number(field.enum_type, text, path)
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text
    if kind == FieldDescriptor.TYPE_BOOL:
        lowered = text.lower()
        if lowered in ("true", "1", ""):
            return True
        if lowered in ("false", "0"):
            return False
        raise FieldProblem(path, f"{text!r} is not true or false")
    if kind in _INTEGERS:
        try:
            number = int(text, 10)
        except ValueError:
            raise FieldProblem(path, f"{text!r} is not an integer") from None
        return _checked_int(field, number, path)
    if kind in _FLOATS:
        try:
            return float(text)
        except ValueError:
            raise FieldProblem(path, f"{text!r} is not a number") from None
    if kind == FieldDescriptor.TYPE_BYTES:
        try:
            padded = text + "=" * (-len(text) % 4)
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise FieldProblem(path, "is not base64") from None
    raise FieldProblem(path, "cannot be set by a query parameter")  # pragma: no cover


def _checked_int(field: FieldDescriptor, number: int, path: str) -> int:
    signed = field.type not in (
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
    )
    wide = field.cpp_type in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
    bits = 64 if wide else 32
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= number <= high:
        raise FieldProblem(path, f"{number} is out of range [{low}, {high}]")
    return number


def enum_number(enum: EnumDescriptor, text: str, path: str) -> int:
    """An enum value from its name, with or without the type's prefix, in any case, or
    from its number."""
    wanted = text.strip().upper()
    names = enum.values_by_name
    prefix = _prefix(enum)
    for candidate in (wanted, prefix + wanted):
        if candidate in names:
            return int(names[candidate].number)
    if wanted.lstrip("-").isdigit() and int(wanted) in enum.values_by_number:
        return int(wanted)
    choices = ", ".join(v.name for v in enum.values if v.number != 0)
    raise FieldProblem(path, f"{text!r} is not a {enum.name}: one of {choices}")


def _prefix(enum: EnumDescriptor) -> str:
    """``KIND_`` for ``Kind``, ``DELIVERY_VERDICT_`` for ``DeliveryVerdict``."""
    words: list[str] = []
    for char in enum.name:
        if char.isupper() and words:
            words.append("_")
        words.append(char.upper())
    return "".join(words) + "_"


def normalize_enums(descriptor: Any, document: Any, path: str = "") -> Any:
    """A JSON body with every enum value spelled as proto3 JSON wants (its full name),
    so bodies may use the same short forms as query parameters. Anything that is not
    an enum, or not a known field, is left for ``json_format`` to judge."""
    if not isinstance(document, dict):
        return document
    out: dict[str, Any] = {}
    for key, value in document.items():
        field = field_by_name(descriptor, key) if isinstance(key, str) else None
        where = f"{path}.{key}" if path else str(key)
        if field is None:
            out[key] = value
        elif field.enum_type is not None:
            out[key] = _enum_json(field.enum_type, value, where)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if field.message_type.full_name.startswith("google.protobuf."):
                out[key] = value
            elif _is_repeated(field) and isinstance(value, list):
                out[key] = [normalize_enums(field.message_type, v, where) for v in value]
            else:
                out[key] = normalize_enums(field.message_type, value, where)
        else:
            out[key] = value
    return out


def _enum_json(enum: EnumDescriptor, value: Any, path: str) -> Any:
    def one(item: Any) -> Any:
        if isinstance(item, str):
            return enum.values_by_number[enum_number(enum, item, path)].name
        return item

    return [one(item) for item in value] if isinstance(value, list) else one(value)


def parse_body(message: Message, body: bytes, *, strict: bool) -> None:
    """Fill ``message`` from a proto3 JSON body. Unknown fields are ignored, as proto3
    JSON parsers may (a newer client keeps working with an older gateway), unless
    ``strict``; an empty body is an empty message."""
    if not body.strip():
        return
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise FieldProblem("", f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise FieldProblem("", "the body must be a JSON object")
    try:
        json_format.ParseDict(
            normalize_enums(message.DESCRIPTOR, document),
            message,
            ignore_unknown_fields=not strict,
        )
    except json_format.ParseError as error:
        raise FieldProblem(_field_of(str(error)), str(error)) from None


def _field_of(error: str) -> str:
    """The field json_format names in its message ("Failed to parse kinds field: ..."
    or 'Message type "x" has no field named "y"')."""
    for marker, end in (("Failed to parse ", " field"), ('has no field named "', '"')):
        start = error.find(marker)
        if start >= 0:
            rest = error[start + len(marker) :]
            stop = rest.find(end)
            if stop > 0:
                return rest[:stop]
    return ""


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _message_class(field: FieldDescriptor) -> type[Message]:
    assert field.message_type is not None
    return message_factory.GetMessageClass(field.message_type)

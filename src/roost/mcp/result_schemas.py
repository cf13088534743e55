"""JSON Schemas of the tools' results (their MCP `outputSchema`), derived from the result classes.

A result class's schema is read from its dataclass fields and their types, so
a field added to `roost.models` reaches every tool's schema with no second
description to keep in step. Two classes write `to_dict()` their own way, and
say so here: a workspace's `remedy` is its `hint` (spelt for the face), and
a file's content is text with its read length.

Every object schema lists each key as required and allows no other: a result
has one shape (docs/results.md), and a client that validates results (the
Python MCP client does) catches any drift.

Imports: roost.models, roost.errors (for `Remedy`) and the standard library.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

from roost import models
from roost.errors import Remedy

Schema = dict[str, Any]

# Keys whose `to_dict()` value is not the field's own, by class: None drops the field.
_DICT_CHANGES: dict[type, dict[str, Any]] = {
    models.WorkspaceInfo: {"remedy": None, "hint": str | None},
    models.FileContent: {"data": None, "read_bytes": None, "length": int, "content": str},
}


def object_schema(fields: dict[str, Any], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object with these keys (name -> Python type), each required but those `optional`, and no others."""
    return {
        "type": "object",
        "properties": {name: type_schema(kind) for name, kind in fields.items()},
        "required": [name for name in fields if name not in optional],
        "additionalProperties": False,
    }


def result_schema(cls: type) -> Schema:
    """The schema of `cls().to_dict()` for a result class of `roost.models`."""
    hints = typing.get_type_hints(cls, vars(models))
    fields: dict[str, Any] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    for name, kind in _DICT_CHANGES.get(cls, {}).items():
        if kind is None:
            fields.pop(name)
        else:
            fields[name] = kind
    return object_schema(fields)


def listing(key: str, cls: type, **more: Any) -> Schema:
    """`{key: [cls, ...], **more}`: a list of results under one key, with any other keys it has."""
    return object_schema({key: list[cls], **more})  # type: ignore[valid-type]


def extended(schema: Schema, fields: dict[str, Any], *, optional: tuple[str, ...] = ()) -> Schema:
    """`schema` with more keys (a tool's own additions to a result), those in `optional` not always there."""
    added = object_schema(fields, optional=optional)
    return {
        **schema,
        "properties": {**schema["properties"], **added["properties"]},
        "required": [*schema["required"], *added["required"]],
    }


def one_of(*schemas: Schema) -> Schema:
    """A result that is one of several shapes (a tool whose arguments choose what it returns)."""
    return {"type": "object", "anyOf": list(schemas)}


def type_schema(kind: Any) -> Schema:
    """The JSON Schema of a value of Python type `kind` as `to_dict()` writes it."""
    if kind is Any:
        return {}
    if kind is type(None) or kind is None:
        return {"type": "null"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if kind in simple:
        return {"type": simple[kind]}
    if dataclasses.is_dataclass(kind) and isinstance(kind, type) and kind is not Remedy:
        return result_schema(kind)
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        return {"anyOf": [type_schema(argument) for argument in arguments]}
    if origin in (tuple, list):
        return {"type": "array", "items": type_schema(arguments[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(arguments[1])}
    raise TypeError(f"no JSON Schema for {kind!r}")

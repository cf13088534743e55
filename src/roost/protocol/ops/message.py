"""The base of every op message: a frozen dataclass whose fields are the wire fields, checked in one place.

A message class declares its fields with their Python types, and bounds in
the field's metadata (`wire(...)`). `Message` turns a wire object into an
instance (`from_wire`) and back (`to_wire`); constructing one, on either
side, runs the same checks, so a message that exists is a valid one:

* types: `str`, `int` (never a bool), `float` (an int too), `bool`,
  `tuple[T, ...]` (a JSON array), `dict[str, str]`, `dict[str, int]`,
  `dict[str, Any]` (any JSON object), another `Message` class, each of them
  optionally `| None`;
* bounds: `minimum`, `above` (exclusive), `maximum`, `choices`, with
  the `hint` the error carries;
* `name=True`: the field holds a native file name (`os.fsdecode` form, as
  the models do), or a tuple of them, and travels in its text form
  (`roost.protocol.names`);
* `check()`: the rules across fields, run after the fields' own checks.

On the wire an absent key and null both take the field's default (but for
a field made with `null_is_value`, where null means None); a field without
one must be given. Keys a message does not know are ignored (a
newer peer may send more). Every failure is `OpError(invalid_argument)`:
the agent sends it back as is; the host turns one met in a result into a
protocol error and one met in its own arguments into `InvalidArgument`.

Standard library only, no I/O: the guest agent imports it.
"""

from __future__ import annotations

import dataclasses
import threading
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

from roost.protocol.messages import GUEST_ROOT, Code, OpError
from roost.protocol.names import NameFormError, from_text, to_text

__all__ = ["GUEST_ROOT", "Message", "OpMessages", "check_read_size", "invalid", "shown", "wire"]

# The workspace's directory inside the guest: where paths start when none is given.

_NO_DEFAULT: Any = dataclasses.MISSING
_ABSENT: Any = object()  # a key the wire object does not have


def wire(
    default: Any = _NO_DEFAULT,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    name: bool = False,
    null_is_value: bool = False,
    hint: str = "",
    secret: bool = False,
) -> Any:
    """A message field with bounds (see the module docstring); `default` as for `dataclasses.field`.

    `secret=True`: the field is left out of the message's repr (a secret's value).
    """
    meta = {
        "minimum": minimum,
        "above": above,
        "maximum": maximum,
        "choices": choices,
        "name": name,
        "null_is_value": null_is_value,
        "hint": hint,
    }
    if isinstance(default, dict | list):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta, repr=not secret)
    return dataclasses.field(default=default, metadata=meta, repr=not secret)


def shown(value: object) -> str:
    """`value` as an error message quotes it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def invalid(message: str, hint: str = "") -> OpError:
    """The error a message raises for a value that is wrong."""
    return OpError(Code.INVALID_ARGUMENT, message, hint=hint)


def check_read_size(max_bytes: int, limit: int, hint: str) -> None:
    """A read's `max_bytes` within the per-call `limit`.

    Raises:
        OpError: read_too_large (not invalid_argument: the value is fine, only too much for one call).
    """
    if max_bytes > limit:
        raise OpError(Code.READ_TOO_LARGE, f"max_bytes {max_bytes} is above the per-call limit of {limit}", hint=hint)


@dataclass(frozen=True)
class _Field:
    """How one field is read, checked and written."""

    key: str
    kind: Any  # the field's type without None: a class, or a parametrised tuple/dict
    optional: bool
    default: Any
    meta: Mapping[str, Any]
    # Made once from `kind` and `meta` (messages are checked on every call: no look-ups per value).
    has_type: Callable[[Any], bool] = dataclasses.field(init=False, repr=False, compare=False)
    decode_value: Callable[[Any], Any] = dataclasses.field(init=False, repr=False, compare=False)
    is_name: bool = dataclasses.field(init=False, repr=False, compare=False)
    null_is_value: bool = dataclasses.field(init=False, repr=False, compare=False)
    is_message: bool = dataclasses.field(init=False, repr=False, compare=False)
    is_plain: bool = dataclasses.field(init=False, repr=False, compare=False)  # encoded as it is held
    bounded: bool = dataclasses.field(init=False, repr=False, compare=False)  # has bounds, choices or is a name
    # The meta's bounds and choices, read once (checked on every value).
    low: Any = dataclasses.field(init=False, repr=False, compare=False)
    above: Any = dataclasses.field(init=False, repr=False, compare=False)
    high: Any = dataclasses.field(init=False, repr=False, compare=False)
    choices: Any = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = self.kind
        made = {
            "has_type": _type_test(kind),
            "decode_value": _value_decoder(kind),
            "is_name": bool(self.meta.get("name")),
            "null_is_value": bool(self.meta.get("null_is_value")) and self.optional,
            "is_message": isinstance(kind, type) and issubclass(kind, Message),
            "is_plain": kind in (str, int, float, bool) and not self.meta.get("name"),
            "bounded": bool(self.meta.get("name"))
            or any(self.meta.get(key) is not None for key in ("minimum", "above", "maximum", "choices")),
            "low": self.meta.get("minimum"),
            "above": self.meta.get("above"),
            "high": self.meta.get("maximum"),
            "choices": self.meta.get("choices"),
        }
        for name, value in made.items():
            object.__setattr__(self, name, value)

    def decode(self, raw: Any) -> Any:
        """The wire value as the field holds it (a name's native form, a nested message); checks come later."""
        if raw is None and self.null_is_value:
            return None
        if raw is None or raw is _ABSENT:
            if self.default is not _NO_DEFAULT or self.optional:
                return None if self.default is _NO_DEFAULT else self.default
            raise invalid(f"{self.key!r} is required", hint=self.hint())
        if self.is_name:
            if isinstance(raw, str):
                return self._native(raw)
            if isinstance(raw, list):
                return tuple(self._native(item) if isinstance(item, str) else item for item in raw)
        if self.is_message and not isinstance(raw, Mapping):
            raise invalid(f"{self.key!r} must be an object", hint="give it as a JSON object (a dict)")
        return self.decode_value(raw)

    def _native(self, text: str) -> str:
        try:
            return from_text(text)
        except NameFormError as exc:
            raise invalid(f"{self.key!r}: {exc}", hint="quote names as roost lists them") from None

    def encode(self, value: Any) -> Any:
        if value is None or self.is_plain:
            return value
        if self.is_name:
            return [to_text(item) for item in value] if isinstance(value, tuple) else to_text(value)
        return _encode_value(value)

    def check(self, value: Any) -> None:
        if value is None:
            if not self.optional:
                raise invalid(f"{self.key!r} is required", hint=self.hint())
            return
        if not self.has_type(value):
            raise invalid(f"{self.key!r} must be {_describe(self.kind)}", hint=self.hint())
        if self.bounded:
            self._check_bounds(value)

    def hint(self) -> str:
        """The field's own hint, else what to give: its kind and bounds."""
        meta = self.meta
        if meta.get("hint"):
            return str(meta["hint"])
        if meta.get("choices") is not None:
            return f"use one of {', '.join(meta['choices'])}"
        bounds = [
            f"{word} {meta[key]}"
            for key, word in (("minimum", "at least"), ("above", "above"), ("maximum", "at most"))
            if meta.get(key) is not None
        ]
        return f"give {_describe(self.kind)}" + (f", {' and '.join(bounds)}" if bounds else "")

    def _check_bounds(self, value: Any) -> None:
        low, above, high, choices = self.low, self.above, self.high, self.choices
        if low is not None and value < low:
            raise invalid(f"{self.key!r} must be at least {low}, not {value}", hint=self.hint())
        if above is not None and not value > above:  # NaN too
            raise invalid(f"{self.key!r} must be above {above}, not {value}", hint=self.hint())
        if high is not None and value > high:
            raise invalid(f"{self.key!r} must be at most {high}, not {value}", hint=self.hint())
        if choices is not None and value not in choices:
            raise invalid(f"{self.key!r} must be one of {', '.join(choices)}, not {value!r}", hint=self.hint())
        if self.is_name and ("\0" in value if isinstance(value, str) else any("\0" in name for name in value)):
            raise invalid(f"{self.key!r} contains a NUL byte", hint="remove the NUL byte")


def _value_decoder(kind: Any) -> Callable[[Any], Any]:
    """How a wire value becomes what a field of type `kind` holds (nested messages, tuples of them)."""
    origin = typing.get_origin(kind)
    if isinstance(kind, type) and issubclass(kind, Message):
        message = kind

        def nested(raw: Any) -> Any:
            if not isinstance(raw, Mapping):
                raise invalid(f"a {message.__name__} must be an object", hint="give it as a JSON object (a dict)")
            return message.from_wire(raw)

        return nested
    if origin is tuple:
        item = _value_decoder(typing.get_args(kind)[0])
        return lambda raw: tuple(item(value) for value in raw) if isinstance(raw, list) else raw
    if origin is dict:
        return lambda raw: dict(raw) if isinstance(raw, dict) else raw
    return _same


def _same(raw: Any) -> Any:
    return raw


def _encode_value(value: Any) -> Any:
    if isinstance(value, Message):
        return value.to_wire()
    if isinstance(value, tuple):
        return [_encode_value(item) for item in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def _type_test(kind: Any) -> Callable[[Any], bool]:
    """Whether a value is of type `kind` (bools are not numbers; tuples and dicts item by item)."""
    if kind is Any:
        return lambda value: True
    if kind is float:
        return lambda value: isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(kind)
    if origin is tuple:
        item = _type_test(typing.get_args(kind)[0])
        return lambda value: isinstance(value, tuple) and all(item(v) for v in value)
    if origin is dict:
        entry = _type_test(typing.get_args(kind)[1])
        return lambda value: isinstance(value, dict) and all(isinstance(k, str) and entry(v) for k, v in value.items())
    return lambda value: isinstance(value, kind)


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(kind)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "an object mapping strings to " + _describe(typing.get_args(kind)[1]).removeprefix("a ") + "s"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", Any: "a value"}
    return names.get(kind, f"a {getattr(kind, '__name__', kind)}")


_FIELDS: dict[type, tuple[_Field, ...]] = {}
_FIELDS_LOCK = threading.Lock()


def _fields_of(cls: type) -> tuple[_Field, ...]:
    """The fields of a message class, resolved once."""
    found = _FIELDS.get(cls)
    if found is not None:
        return found
    with _FIELDS_LOCK:
        if cls in _FIELDS:  # another thread resolved it meanwhile
            return _FIELDS[cls]
        hints = typing.get_type_hints(cls)
        made = []
        for field in dataclasses.fields(cls):
            kind = hints[field.name]
            args = typing.get_args(kind)
            optional = typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args
            if optional:
                kind = next(arg for arg in args if arg is not type(None))
            default = field.default
            if field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            made.append(_Field(field.name, kind, optional, default, field.metadata))
        _FIELDS[cls] = found = tuple(made)
        return found


M = TypeVar("M", bound="Message")


@dataclass_transform(frozen_default=True)
def message(cls: type[M]) -> type[M]:
    """Make `cls` an op message: a dataclass that `Message` keeps frozen and compares, hashes and shows.

    Each family's classes are made when an op of it is first called, on the way to answering it;
    a plain frozen dataclass generates five methods per class, this one only `__init__` (about a
    third of the cost), the rest being `Message`'s own.
    """
    return dataclass(eq=False, repr=False)(cls)


class Message:
    """Base of every op message (subclasses are made with `@message`)."""

    # The op this message belongs to (argument messages set it; results and records need not).
    OP: ClassVar[str] = ""
    # Leave fields that are None out of the wire object (records sent by the thousand, where most are unset).
    OMITS_NULLS: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for field in _fields_of(type(self)):
            field.check(getattr(self, field.key))
        self.check()

    def check(self) -> None:
        """Rules across fields (a subclass's own); raise `invalid(...)`."""

    def __setattr__(self, name: str, value: Any) -> None:
        # `__init__` sets each field once; after that a message never changes.
        if name in self.__dict__ or name not in getattr(type(self), "__dataclass_fields__", ()):
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.compare)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Message)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields if f.repr)  # a secret's value never
        return f"{type(self).__name__}({shown})"

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Self:
        """The message a wire object holds.

        Raises:
            OpError: invalid_argument, naming the field that is wrong.
        """
        if not isinstance(data, Mapping):
            raise invalid(f"{cls.__name__} must be an object", hint="give it as a JSON object (a dict)")
        made = cls.__new__(cls)
        # Every field at once, checked as `__init__` would (which sets them one `__setattr__` at a time):
        # records arrive by the thousand.
        made.__dict__.update({field.key: field.decode(data.get(field.key, _ABSENT)) for field in _fields_of(cls)})
        made.__post_init__()
        return made

    def to_wire(self) -> dict[str, Any]:
        """The wire object of this message (every field: null where it is None, unless `OMITS_NULLS`)."""
        wire = {field.key: field.encode(getattr(self, field.key)) for field in _fields_of(type(self))}
        if self.OMITS_NULLS:
            return {key: value for key, value in wire.items() if value is not None}
        return wire


@dataclass(frozen=True)
class OpMessages:
    """One op's messages: what it takes, what it answers and, when it streams records, their shape."""

    args: type[Message]
    result: type[Message]
    records: type[Message] | None = None

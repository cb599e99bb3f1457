"""Stage configs as dataclasses: strict building from dicts (papermill parameters, JSON), a
command-line parser from the fields, and saving beside the results.

A field whose type is a config dataclass nests it: in a dict it is a dict of the fields to
change (the others keep the field's default), on the command line each of its fields is a
dotted flag (`--test_time.max_steps 50`)."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

Config = TypeVar("Config")


def _check_value(name: str, value: Any, annotation: Any, default: Any = None) -> Any:
    """The value converted to the field's type where that is lossless; TypeError otherwise. A dict
    for a nested config changes the fields it names of `default` (or of the nested class's defaults)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a mapping of {annotation.__name__} fields, got {value!r}")
        return config_from_dict(annotation, value, default if isinstance(default, annotation) else None)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(name, value, option, default)
            except TypeError as error:
                errors.append(str(error))
        raise TypeError(errors[0])
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise TypeError(f"{name} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise TypeError(f"{name} must have {len(args)} items, got {value!r}")
            return tuple(_check_value(name, v, a) for v, a in zip(value, args, strict=True))
        item = args[0] if args else Any
        converted = [_check_value(f"{name} item", v, item) for v in value]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a mapping, got {value!r}")
        return {k: _check_value(f"{name}[{k!r}]", v, args[1]) for k, v in value.items()} if args else value
    if annotation is Any:
        return value
    if annotation is float and type(value) is int:
        return float(value)
    if annotation is bool and type(value) is not bool:
        raise TypeError(f"{name} must be true or false, got {value!r}")
    if annotation in (int, float, str, bool) and type(value) is not annotation:
        raise TypeError(f"{name} must be of type {annotation.__name__}, got {value!r} ({type(value).__name__})")
    return value


def unknown_names_error(owner: str, unknown: list[str], known: list[str]) -> ValueError:
    """The error for misspelled names, each with its closest known name where there is one."""
    close = {k: difflib.get_close_matches(k, known, n=1, cutoff=0.75) for k in sorted(unknown)}
    hints = "; ".join(f"{k!r} (did you mean {c[0]!r}?)" if c else repr(k) for k, c in close.items())
    return ValueError(f"unknown {owner} field(s): {hints}; known fields: {', '.join(known)}")


def config_from_dict(cls: type[Config], values: dict[str, Any], base: Config | None = None) -> Config:
    """Build a config dataclass from a dict, rejecting unknown keys and values of the wrong type.
    Fields the dict does not name keep their values in `base`, or else their defaults."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise unknown_names_error(cls.__name__, unknown, list(known))
    hints = typing.get_type_hints(cls)
    converted = {}
    for key, value in values.items():
        default = getattr(base, key) if base is not None else _default(known[key])
        try:
            converted[key] = _check_value(key, value, hints[key], default)
        except TypeError as error:
            raise ValueError(f"{cls.__name__}: {error}") from None
    return dataclasses.replace(base, **converted) if base is not None else cls(**converted)


def _default(field: dataclasses.Field) -> Any:
    """A field's default value (None where it has none)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as a JSON-friendly dict."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as JSON (creating folders), atomically."""
    from arc24_lib.files import write_json_atomic

    return write_json_atomic(config_to_dict(config), path, indent=2)


def load_config(cls: type[Config], path: str | Path) -> Config:
    """Read a config written by `save_config`."""
    return config_from_dict(cls, json.loads(Path(path).read_text()))


def _nested_class(annotation: Any) -> type | None:
    """The config dataclass a field nests (also as `X | None`), else None."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (
        annotation,)
    return next((option for option in options if dataclasses.is_dataclass(option)), None)


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                         exclude: tuple[str, ...] = ()) -> None:
    """One `--<prefix><field>` flag per field of `cls`, typed and documented from the field; a nested
    config's fields get dotted flags. Flags default to None (not given)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        annotation, name = hints[field.name], prefix + field.name
        if name in exclude:
            continue
        nested = _nested_class(annotation)
        if nested is not None:
            add_config_arguments(parser, nested, name + ".", exclude)
            continue
        flag, help_text = f"--{name}", field.metadata.get("help", "").replace("%", "%%")  # argparse formats help
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        scalar = next((a for a in args if a is not type(None)), annotation) if origin in (
            typing.Union, types.UnionType) else annotation
        if scalar is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif typing.get_origin(scalar) is list and typing.get_origin(typing.get_args(scalar)[0]) is tuple:
            n = len(typing.get_args(typing.get_args(scalar)[0]))
            parser.add_argument(flag, nargs=n, action="append", default=None, help=help_text)
        elif typing.get_origin(scalar) in (list, tuple):
            item = typing.get_args(scalar)[0]
            parser.add_argument(flag, nargs="+", type=item if item in (int, float) else str, default=None,
                                help=help_text)
        else:
            parser.add_argument(flag, type=scalar if scalar in (int, float, str) else str, default=None,
                                choices=field.metadata.get("choices"), help=help_text)


def config_parser(cls: type, description: str = "") -> argparse.ArgumentParser:
    """An argument parser with one `--field` per dataclass field (see `add_config_arguments`) and `--config`."""
    parser = argparse.ArgumentParser(description=description or cls.__doc__, allow_abbrev=False)
    parser.add_argument("--config", help="JSON file of field values; command-line flags override it")
    add_config_arguments(parser, cls)
    return parser


def flags_to_dict(namespace: dict[str, Any]) -> dict[str, Any]:
    """The flags given (not None) as a dict nested at the dots (`a.b` → {"a": {"b": ...}})."""
    values: dict[str, Any] = {}
    for name, value in namespace.items():
        if value is None:
            continue
        *parents, leaf = name.split(".")
        target = values
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return values


def merge_dicts(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merge_dicts(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def parse_config(cls: type[Config], argv: list[str] | None = None) -> Config:
    """Parse the command line (and an optional --config JSON file) into a config dataclass."""
    namespace = vars(config_parser(cls).parse_args(argv))
    path = namespace.pop("config", None)
    values = json.loads(Path(path).read_text()) if path else {}
    return config_from_dict(cls, merge_dicts(values, flags_to_dict(namespace)))

"""Stage configs as dataclasses: strict building from dicts (papermill parameters, JSON), a
command-line parser from the fields, and saving beside the results."""

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


def _check_value(name: str, value: Any, annotation: Any) -> Any:
    """The value converted to the field's type where that is lossless; TypeError otherwise."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(name, value, option)
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


def config_from_dict(cls: type[Config], values: dict[str, Any]) -> Config:
    """Build a config dataclass from a dict, rejecting unknown keys and values of the wrong type."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        close = {k: difflib.get_close_matches(k, known, n=1, cutoff=0.75) for k in unknown}
        hints = "; ".join(f"{k!r} (did you mean {c[0]!r}?)" if c else repr(k) for k, c in close.items())
        raise ValueError(f"unknown {cls.__name__} field(s): {hints}; known fields: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    converted = {}
    for key, value in values.items():
        try:
            converted[key] = _check_value(key, value, hints[key])
        except TypeError as error:
            raise ValueError(f"{cls.__name__}: {error}") from None
    return cls(**converted)


def library_default(cls: type, name: str) -> Any:
    """The default of field `name` of config dataclass `cls`, for configs that take it from there."""
    for field in dataclasses.fields(cls):
        if field.name == name:
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
            if field.default is dataclasses.MISSING:
                raise ValueError(f"{cls.__name__}.{name} has no default")
            return field.default
    raise ValueError(f"{cls.__name__} has no field {name!r}")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as a JSON-friendly dict."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as JSON (creating folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config_to_dict(config), indent=2) + "\n")
    return path


def load_config(cls: type[Config], path: str | Path) -> Config:
    """Read a config written by `save_config`."""
    return config_from_dict(cls, json.loads(Path(path).read_text()))


def config_parser(cls: type, description: str = "") -> argparse.ArgumentParser:
    """An argument parser with one `--field` per dataclass field, typed and documented from the field."""
    parser = argparse.ArgumentParser(description=description or cls.__doc__)
    parser.add_argument("--config", help="JSON file of field values; command-line flags override it")
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        annotation, flag = hints[field.name], f"--{field.name}"
        help_text = field.metadata.get("help", "")
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
    return parser


def parse_config(cls: type[Config], argv: list[str] | None = None) -> Config:
    """Parse the command line (and an optional --config JSON file) into a config dataclass."""
    namespace = vars(config_parser(cls).parse_args(argv))
    values = json.loads(Path(namespace.pop("config")).read_text()) if namespace.get("config") else {}
    namespace.pop("config", None)
    values.update({k: v for k, v in namespace.items() if v is not None})
    return config_from_dict(cls, values)

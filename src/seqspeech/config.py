"""Strict configuration: YAML in, frozen dataclasses out, every unknown key an error that names it.

A config class is a frozen dataclass whose fields are plain values (bool, int, float, str), tuples or lists of
them, other config dataclasses, or ``X | None``. :func:`from_mapping` builds one from a parsed YAML mapping,
checking every key and value and naming the offending path (``train.lr``) and the file; :func:`to_mapping` goes
back. The dataclass's signature *is* the schema: there is no second list of keys to keep in sync.

Command-line overrides (``--set train.lr=3e-4``) are applied to the parsed mapping before validation, with
values parsed as YAML scalars (``3e-4`` -> float, ``[1, 2]`` -> list, ``null`` -> None); :func:`check_key` checks
an override's key against the schema first, so a typo there is reported as the override's, not the file's.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .fileio import read_text_file

__all__ = ["apply_overrides", "check_key", "from_mapping", "load_yaml", "to_mapping"]

T = TypeVar("T")


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a YAML file whose top level is a mapping; errors name the file (and line, for syntax errors)."""
    import yaml

    p = Path(path)
    text = read_text_file(p, what="recipe file (YAML)", error=ConfigError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML{_yaml_problem(e)}") from None
    if data is None:
        raise ConfigError(f"{p}: empty recipe")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping (key: value lines), got {type(data).__name__}")
    return data


def _yaml_problem(err: Exception) -> str:
    """`` at line L, column C: problem`` of a PyYAML error, on one line (its own text spans several)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(err, "context", None)
    return f"{where}: {' '.join(str(problem).split())}" + (f" ({' '.join(str(context).split())})" if context else "")


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], where: str = "--set") -> dict[str, Any]:
    """Return a copy of ``data`` with ``key.sub=value`` overrides applied (values parsed as YAML)."""
    import copy

    import yaml

    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where}: expected key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"{where} {item!r}: cannot parse the value as YAML{_yaml_problem(e)}") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{where} {item!r}: {part!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def check_key(cls: type, key: str, where: str = "config") -> None:
    """Raise :class:`ConfigError` naming ``where`` unless the dotted ``key`` (``train.lr``) names a field of the
    config dataclass ``cls`` (or lies inside a free-form mapping such as ``eval``), so an override of an unknown
    key is reported as the override's mistake before anything is built."""
    tp: Any = cls
    path: list[str] = []
    for part in key.split("."):
        options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
        classes = [o for o in options if dataclasses.is_dataclass(o)]
        if any(o is Any or typing.get_origin(o) in (dict, Mapping) or o is dict for o in options):
            return  # a free-form mapping: any key below it
        if not classes:
            raise ConfigError(f"{where}: {'.'.join(path)!r} is a {_name(tp)}, not a section with keys")
        known = {f.name: f for c in classes for f in dataclasses.fields(c) if f.init}
        if part not in known:
            section = f" in {'.'.join(path)!r}" if path else ""
            raise ConfigError(f"{where}: unknown key {part!r}{section} ({classes[0].__name__} keys: "
                              f"{', '.join(sorted(known))})")
        owner = next(c for c in classes if part in {f.name for f in dataclasses.fields(c)})
        tp = typing.get_type_hints(owner)[part]
        path.append(part)


def from_mapping(cls: type[T], data: Any, where: str = "config") -> T:
    """Build the dataclass ``cls`` from ``data`` strictly: unknown keys, missing required keys and values of the
    wrong type raise :class:`ConfigError` naming ``where.key`` (just ``key`` when ``where`` is ``""``)."""
    return _convert(cls, data, where)


def to_mapping(obj: Any) -> Any:
    """A config dataclass (or value) -> plain dicts, lists and scalars (YAML/JSON-able)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _at(where: str) -> str:
    """The prefix of a message about ``where`` (nothing at the root, ``where=""``)."""
    return f"{where}: " if where else ""


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise ConfigError(f"{_at(where)}must not be null")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{_at(where)}{value!r} fits none of {_name(tp)}")
    if value is None:
        raise ConfigError(f"{_at(where)}must not be null (expected {_name(tp)})")
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, where)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_at(where)}expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{_at(where)}expected {len(args)} values, got {len(value)}")
            items = [_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return list(items) if origin is list or tp is list else tuple(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_at(where)}expected a mapping, got {value!r}")
        args = typing.get_args(tp)
        val_tp = args[1] if args else Any
        return {str(k): _convert(val_tp, v, _key(where, str(k))) for k, v in value.items()}
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{_at(where)}{value!r} is not one of {list(choices)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_at(where)}expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_at(where)}expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string: YAML 1.1's float needs "1.0e-3"
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{_at(where)}expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_at(where)}expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{_at(where)}expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{_at(where)}expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(f"{_at(where)}unsupported config type {_name(tp)}")  # a bug in a config class


def _dataclass(cls: type, value: Any, where: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{_at(where)}expected a mapping for {cls.__name__}, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise ConfigError(
            f"{_at(where)}unknown key {unknown[0]!r} for {cls.__name__} (known: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], _key(where, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_at(where)}missing required key {name!r} for {cls.__name__}")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{_at(where)}{e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{_at(where)}{e}") from None


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")

"""Reading configs from YAML/TOML/JSON and turning validation errors into one line per problem."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A user's configuration is wrong; the message is ready to print, one line per problem."""


def _parse(text: str, suffix: str) -> Any:
    if suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        return tomllib.loads(text)
    return json.loads(text)


def read_mapping(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml", ".json"):
        raise ConfigError(f"{path}: expected a .yaml, .yml, .toml or .json file")
    try:
        data = _parse(path.read_text(encoding="utf-8"), suffix)
    except Exception as exc:  # each format raises its own error type
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot parse {suffix[1:].upper()}: {first}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def format_validation_error(exc: ValidationError, source: str = "") -> str:
    """``field.path: what was wrong`` per error, prefixed by the file when known."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{source + ': ' if source else ''}{loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Apply an override such as ``train.steps=100`` to a nested mapping."""
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {k} is not a section")
        node = child
    node[keys[-1]] = value


def validate(model: type[M], data: dict[str, Any], source: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses (numbers, lists, null, true), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.steps=100", "data.size=[64,64]"]`` -> ``{"train.steps": 100, ...}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. train.steps=100")
        out[key.strip()] = parse_value(value)
    return out


def load_config(
    model: type[M], path: Path | None, overrides: dict[str, Any] | None = None
) -> M:
    """The one way every command reads its config: ``path`` (or the defaults), then overrides.

    Overrides use dotted keys (``model.depth``) and win over the file; the result is validated as a
    whole, so an error names the file and the field.
    """
    data = read_mapping(path) if path is not None else {}
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return validate(model, data, str(path) if path is not None else "")


def save_config(config: BaseModel, path: Path) -> None:
    """JSON next to datasets and checkpoints; written atomically so a crash never leaves half a file."""
    from mcnn.utils.atomic import atomic_write_text

    atomic_write_text(Path(path), config.model_dump_json(indent=2))

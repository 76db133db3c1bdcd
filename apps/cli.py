"""What every command-line entry point shares: logging to stderr and user errors as one line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

# OS errors are the user's to fix too: a read-only or full disk, a file where a folder should be.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``prog: error: ...``) and exit code 2, without
    the usage block argparse prints first."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog.split()[0]}: error: {message}\n")  # sub-commands too


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def attach_negative_values(argv: list[str] | None, flags: tuple[str, ...]) -> list[str]:
    """``--snrs -5,-10`` -> ``--snrs=-5,-10``: argparse takes a value that starts with ``-`` and is
    not one plain number for an option and stops with "expected one argument"."""
    args = list(sys.argv[1:] if argv is None else argv)
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if a in flags and len(nxt) > 1 and nxt[0] == "-" and (
                nxt[1].isdigit() or nxt[1] == "." or nxt[1:4].lower() in ("inf", "nan")):
            out.append(f"{a}={nxt}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def run_cli(prog: str, body: Callable[[], int]) -> int:
    """Run ``body``; a user mistake prints ``prog: error: ...`` (one line each) and returns 2."""
    try:
        return body()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"{prog}: error: {line}", file=sys.stderr)
        return 2


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The overlay every config-taking command shares: ``--set a.b=v`` and ``--print-config``."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config field, e.g. model.depth=4 (repeatable; values "
                        "are parsed as JSON when possible: --set data.size=[64,64])")
    parser.add_argument("--print-config", action="store_true",
                        help="print the validated config (every default filled in) and exit")


def load_command_config(
    model: type[M], path: Path | None, args: argparse.Namespace,
    flags: dict[str, Any] | None = None,
) -> M:
    """File (optional), then named flags, then ``--set`` items: one validated config."""
    from mcnn.config_io import load_config, parse_overrides

    overrides = {k: v for k, v in (flags or {}).items() if v is not None}
    overrides.update(parse_overrides(getattr(args, "set", []) or []))
    return load_config(model, path, overrides)


def print_config(config: BaseModel) -> None:
    print(config.model_dump_json(indent=2))


def field_reference(model: type[BaseModel], prefix: str = "") -> list[str]:
    """``section.field (allowed values, default): description`` lines for --help, from the schema.

    Nested models are expanded; a discriminated union lists each member under its tag, so every
    simulator, content and device field appears with what it accepts.
    """
    lines: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        members = _submodels(ann)
        if members:
            if len(members) == 1:
                lines += field_reference(members[0], f"{prefix}{name}.")
                continue
            desc = f": {field.description}" if field.description else ""
            lines.append(f"  {prefix}{name}: one of {len(members)} kinds{desc}")
            for sub in members:
                tag = _tag(sub)
                lines.append(f"  {prefix}{name} = {tag or sub.__name__}:")
                lines += ["  " + line for line in field_reference(sub, f"{prefix}{name}.")
                          if not line.strip().startswith(f"{prefix}{name}.{_tag_field(sub)} ")]
            continue
        default: Any = field.default if not field.is_required() else "required"
        if field.default_factory is not None:
            default = "..."
        allowed = _allowed(ann)
        kind = f"{allowed}, " if allowed else ""
        desc = f": {field.description}" if field.description else ""
        lines.append(f"  {prefix}{name} ({kind}default {default!s}){desc}")
    return lines


def _submodels(ann: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (``Model``, ``Model | None``, ``A | B | C``)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    args = [a for a in get_args(ann) if a is not type(None)]
    if get_origin(ann) is Annotated:
        return _submodels(args[0])
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    return models if models and len(models) == len(args) else []


def _tag_field(model: type[BaseModel]) -> str:
    for key in ("kind", "name", "type"):
        field = model.model_fields.get(key)
        if field is not None and get_origin(field.annotation) is Literal:
            return key
    return ""


def _tag(model: type[BaseModel]) -> str:
    key = _tag_field(model)
    return f"{key}={get_args(model.model_fields[key].annotation)[0]}" if key else ""


def _allowed(ann: Any) -> str:
    """``one of a|b|c`` for Literal fields (also inside Optional)."""
    if get_origin(ann) is Literal:
        return "one of " + "|".join(str(v) for v in get_args(ann))
    if get_origin(ann) in (list, tuple, set):
        inner = _allowed(get_args(ann)[0]) if get_args(ann) else ""
        return inner.replace("one of ", "list of ", 1) if inner else ""
    for arg in get_args(ann):
        if get_origin(arg) is Literal:
            return "one of " + "|".join(str(v) for v in get_args(arg)) + " or none"
        if get_origin(arg) in (list, tuple, set):
            return _allowed(arg)
    return ""

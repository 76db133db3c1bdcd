"""What every command-line entry point shares: logging to stderr and user errors as one line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


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


def field_reference(model: type[BaseModel], prefix: str = "") -> list[str]:
    """``section.field (type, default): description`` lines for --help, from the pydantic schema."""
    lines = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        sub = _submodel(ann)
        if sub is not None and name != "data":
            lines += field_reference(sub, f"{prefix}{name}.")
            continue
        default: Any = field.default if not field.is_required() else "required"
        if field.default_factory is not None:
            default = "..."
        desc = f": {field.description}" if field.description else ""
        lines.append(f"  {prefix}{name} (default {default!s}){desc}")
    return lines


def _submodel(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return None

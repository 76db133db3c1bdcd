"""Package namespaces that load their names on first use (PEP 562).

Why: ``import mcnn.train.config`` first imports the package ``mcnn.train``; if its ``__init__``
imported the trainer, every config import would pull in the trainer, the simulators and TensorBoard.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, homes: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``name`` is imported from ``package.homes[name]``
    when first asked for, then cached in the package ``namespace`` (its ``globals()``)."""

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return getattr_, dir_

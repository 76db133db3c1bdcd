"""The layers run one way: apps -> calibration -> acquire -> mcnn, and inside mcnn, inference and
configs stay light. Two checks: every import statement in the source (also those inside functions),
and what a fresh interpreter really loads for the entry points that must stay small."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> the first-party packages it may import (itself included)
ALLOWED = {
    "mcnn": {"mcnn"},
    "acquire": {"acquire", "mcnn"},
    "calibration": {"calibration", "acquire", "mcnn"},
    "apps": {"apps", "calibration", "acquire", "mcnn"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_no_package_imports_a_layer_above_it():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, module in _imports(path):
                top = module.split(".")[0]
                if top in ALLOWED and top not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_configs_never_import_implementations():
    """A config module may import other config modules and pydantic, nothing that computes."""
    configs = sorted(ROOT.glob("mcnn/*/config.py"))
    assert len(configs) >= 4
    wrong = []
    for path in configs:
        for line, module in _imports(path):
            if module.startswith("mcnn") and not (
                module.endswith(".config") or module in ("mcnn.config_io",)
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if module.split(".")[0] in ("torch", "numpy", "cv2"):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def _loaded_by(module: str) -> set[str]:
    code = f"import sys, json; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    "module, forbidden",
    [
        # loading a model for inference pulls in neither the trainer nor the simulators
        ("mcnn.infer", ["mcnn.train", "mcnn.physics", "mcnn.data", "mcnn.losses", "mcnn.bench",
                        "acquire", "calibration", "apps", "tensorboard", "cv2"]),
        ("mcnn.weights", ["mcnn.train", "mcnn.physics", "mcnn.data", "acquire"]),
        ("mcnn.train.config", ["mcnn.physics.defocus", "mcnn.physics.stem", "mcnn.data.simulated",
                               "mcnn.data.folder", "mcnn.train.trainer", "acquire"]),
        ("acquire.recorder", ["calibration", "apps"]),
        ("calibration.procedures", ["apps"]),
    ],
)
def test_entry_points_load_only_their_layer(module, forbidden):
    loaded = _loaded_by(module)
    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert not bad, f"importing {module} loaded {bad}"


def test_test_modules_have_unique_names():
    """pytest imports test files by basename (rootdir, prepend mode): two with one name collide."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)

"""Layers run one way (apps -> calibration -> acquire -> mcnn): checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def loaded_after(code: str) -> set[str]:
    """Top-level package names in ``sys.modules`` after running ``code`` in a new interpreter."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return {name.split(".")[0] for name in json.loads(out.strip().splitlines()[-1])}


def test_every_acquire_module_loads_without_calibration_apps_or_qt():
    code = ("import pkgutil, importlib, acquire, acquire.sources\n"
            "for pkg in (acquire, acquire.sources):\n"
            "    for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'):\n"
            "        importlib.import_module(m.name)")
    loaded = loaded_after(code)
    assert "acquire" in loaded
    assert not loaded & {"calibration", "apps", "PySide6"}


def test_the_recording_format_is_the_lowest_layer_and_loads_no_image_library():
    loaded = loaded_after("import mcnn.data.recording, mcnn.data.build")
    assert not loaded & {"acquire", "calibration", "apps", "cv2", "tifffile", "mss", "PySide6"}

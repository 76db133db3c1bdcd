"""``import mcnn`` stays light: no camera, screen, Qt, TensorBoard or file-format libraries."""

import subprocess
import sys

HEAVY = ["cv2", "mss", "PySide6", "pyqtgraph", "tensorboard", "tifffile", "onnx", "onnxruntime",
         "matplotlib", "rsciio", "ncempy", "skimage"]


def test_core_imports_do_not_pull_heavy_libraries():
    code = (
        "import sys; import mcnn, mcnn.models, mcnn.losses, mcnn.physics, mcnn.data, mcnn.train; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

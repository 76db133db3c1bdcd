"""Inference: the Predictor (frames, batches, streams, tiles) and exporters (ONNX, TorchScript).

Exporters live in ``mcnn.infer.export`` (onnx/onnxruntime are imported only when used).
"""

from mcnn.infer.memory import estimate_inference_bytes
from mcnn.infer.predictor import Predictor
from mcnn.infer.tiling import plan_tiles, tile_spans, tiled_apply

__all__ = [
    "Predictor",
    "estimate_inference_bytes",
    "plan_tiles",
    "tile_spans",
    "tiled_apply",
]

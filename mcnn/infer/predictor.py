"""Running a trained MCNN: single frames, batches, streams, and frames too large for one pass.

Arrays in and out keep their kind (numpy or torch) and rank: ``(H, W)``, ``(C, H, W)`` or
``(N, C, H, W)`` float32 in; the same rank out with ``out_channels`` and ``output_scale`` applied
(an ``(H, W)`` frame gives ``(H*s, W*s)`` when the model has one output channel, else
``(C_out, H*s, W*s)``). Torch tensors come back on the device they came from.

Frames are tiled (see ``mcnn.infer.tiling``) when ``tile_size`` is set, or automatically when the
memory estimate of a whole frame exceeds the device's budget; batches that fit frame by frame but
not all together are split instead of tiled.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from mcnn.device import autocast_dtype, select_device
from mcnn.infer.memory import choose_tile_size, estimate_inference_bytes, memory_budget_bytes
from mcnn.infer.tiling import tiled_apply
from mcnn.models import MCNN, ModelConfig
from mcnn.weights import load_model, read_training_data

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune"]
COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune")
Array = TypeVar("Array", np.ndarray, torch.Tensor)


class Predictor:
    """A model in eval mode on a device, with precision, tiling and batching chosen once.

    Args:
        device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps".
        precision: "auto" (= fp32: on an H100, bf16 autocast was 0.32-0.85x the speed of fp32,
            whose convolutions cuDNN runs as TF32; see README, Benchmarks), "fp32" or "bf16".
        compile: wrap the model in ``torch.compile`` (worth it for long streams of one size): True
            or "default", "reduce-overhead" (CUDA graphs on CUDA: the batch-1 streaming win; on
            CPU it compiles like "default") or "max-autotune".
        pinned: batch-1 streaming from host arrays through page-locked staging buffers with
            asynchronous copies; None = on for CUDA. A no-op off CUDA (no pinned memory there).
        channels_last: NHWC memory format; None = on for CUDA (faster convolutions there).
        tile_size: input px per tile side (a multiple of ``2**depth``); None = tile only when a
            frame does not fit ``memory_budget_mb``.
        overlap: input px shared by neighbouring tiles; larger = closer to untiled output.
        tile_batch: tiles per forward pass.
        memory_budget_mb: what one forward pass may use; None = a fraction of free device memory.
        flip_ensemble: average the outputs for the frame and its three mirror images (flipped in
            x, in y, in both), run as one batch: 4x the compute and memory for a small gain
            (STEM benchmark: +0.15-0.24 dB for 2.7x the time per frame on two CPU threads).
            Only for tasks that commute with mirroring (denoising, phase from defocus), not a
            camera-to-screen map. No 90 degree rotations:
            they turn the fast scan direction into the slow one, and STEM noise correlated along
            the rows would then run along the columns, which training never showed.
    """

    def __init__(
        self,
        model: MCNN,
        *,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
        compile: bool | CompileMode = False,
        channels_last: bool | None = None,
        pinned: bool | None = None,
        tile_size: int | None = None,
        overlap: int = 64,
        tile_batch: int = 4,
        memory_budget_mb: float | None = None,
        flip_ensemble: bool = False,
    ) -> None:
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.config: ModelConfig = model.config
        # The training data config stored with the checkpoint (how inputs were made and normalised,
        # the physics the model was trained for); None when the model did not come from a file.
        self.training_data: dict[str, Any] | None = None
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision={precision!r}; expected auto, fp32 or bf16")
        # Inference's auto is fp32 everywhere: bf16 was slower on an H100, and is only faster on
        # CPUs with native bf16 (ask for it there); training keeps its own rule (bf16 on CUDA).
        self.amp_dtype = autocast_dtype("fp32" if precision == "auto" else precision, self.device)
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        m = self.config.size_multiple
        if tile_size is not None and (tile_size < m or tile_size % m):
            raise ValueError(f"tile_size={tile_size} must be a positive multiple of {m} (2**depth)")
        if overlap < 0 or (tile_size is not None and overlap >= tile_size):
            raise ValueError(f"overlap={overlap} must be >= 0 and smaller than tile_size={tile_size}")
        if tile_batch < 1:
            raise ValueError(f"tile_batch={tile_batch} must be >= 1")
        self.tile_size, self.overlap, self.tile_batch = tile_size, overlap, tile_batch
        self.memory_budget_mb = memory_budget_mb
        self.flip_ensemble = bool(flip_ensemble)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=fmt).eval()  # type: ignore[call-overload]
        self.compile_mode: str | None = _compile_mode(compile)
        self._net = self.model if self.compile_mode is None else torch.compile(
            self.model, mode=None if self.compile_mode == "default" else self.compile_mode)
        # Page-locked host memory exists only with CUDA; elsewhere the copies are plain ones.
        self.pinned = self.device.type == "cuda" and (pinned is None or pinned)
        self._staging: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}
        self._copied: Any = None  # CUDA event after the last host -> device staging copy

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "auto",
        precision: Precision = "auto",
        compile: bool | CompileMode = False,
        channels_last: bool | None = None,
        **options: int | float | bool | None,
    ) -> Predictor:
        """Load ``model.safetensors`` (the file, a checkpoint folder or a run folder; no pickle).

        ``options`` are the other keywords of ``Predictor`` (pinned, tile_size, overlap, ...).
        Raises ``CheckpointError`` (a ValueError) naming the file when it cannot be used.
        """
        model, _ = load_model(Path(path))
        predictor = cls(
            model, device=device, precision=precision, compile=compile,
            channels_last=channels_last, **options,  # type: ignore[arg-type]
        )
        predictor.training_data = read_training_data(Path(path))
        return predictor

    # ---------------------------------------------------------------------------------- core
    @property
    def budget_bytes(self) -> int:
        if self.memory_budget_mb is not None:
            return int(self.memory_budget_mb * 2**20)
        return memory_budget_bytes(self.device)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _host_buffer(self, role: str, like: torch.Tensor) -> torch.Tensor:
        """A reused page-locked ``float32`` CPU tensor shaped like ``like`` (one per role+shape)."""
        key = (role, tuple(like.shape))
        buf = self._staging.get(key)
        if buf is None:
            if len(self._staging) >= 8:  # a stream of ever-new shapes must not pin all memory
                self._staging.clear()
            buf = torch.empty(key[1], dtype=torch.float32, pin_memory=True)
            self._staging[key] = buf
        return buf

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        """Host -> device; pinned: through a staging buffer, the copy queued asynchronously."""
        if not self.pinned or x.device.type != "cpu":
            return x.to(self.device, torch.float32)
        staging = self._host_buffer("in", x)
        if self._copied is not None:  # the previous chunk's copy must have left this buffer
            self._copied.synchronize()
        staging.copy_(x)
        out = staging.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record()
        return out

    def _to_host(self, y: torch.Tensor, target: torch.device) -> torch.Tensor:
        """Device -> ``target``; pinned to CPU: an asynchronous copy, one stream sync, a clone
        (the staging buffer is reused by the next frame)."""
        if not self.pinned or target.type != "cpu" or y.device.type != "cuda":
            return y.to(target)
        staging = self._host_buffer("out", y)
        staging.copy_(y, non_blocking=True)
        torch.cuda.current_stream(y.device).synchronize()
        return staging.clone()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flip_ensemble:
            x = torch.cat([x, x.flip(-1), x.flip(-2), x.flip(-2, -1)])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            y = self._net(x).float()
        if not self.flip_ensemble:
            return y
        a, b, c, d = y.chunk(4)
        return (a + b.flip(-1) + c.flip(-2) + d.flip(-2, -1)) / 4

    def plan(self, batch: int, height: int, width: int) -> tuple[int, int | None]:
        """``(frames per pass, tile size or None)`` for a ``(batch, C, height, width)`` input."""
        if self.tile_size is not None:
            return batch, self.tile_size
        budget = self.budget_bytes
        views = 4 if self.flip_ensemble else 1  # the mirror images run in the same pass
        per_frame = estimate_inference_bytes(self.config, height, width) * views
        if per_frame <= budget:
            return max(1, min(batch, budget // max(per_frame, 1))), None
        tile = choose_tile_size(self.config, budget, self.tile_batch * views, self.overlap)
        log.debug("%dx%d frame needs ~%d MiB: tiling at %d", height, width, per_frame >> 20, tile)
        return 1, tile

    @torch.inference_mode()
    def predict_batch(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` tensor -> ``(N, C_out, H*s, W*s)`` float32 on ``x``'s device."""
        if x.ndim != 4:
            raise ValueError(f"expected (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"{x.shape[1]} channels but the model expects {self.config.in_channels}"
            )
        source = x.device
        chunk, tile = self.plan(*x.shape[:1], *x.shape[-2:])
        outputs = []
        for k in range(0, x.shape[0], chunk):
            part = self._to_device(x[k : k + chunk])
            if tile is None:
                outputs.append(self._forward(part))
            else:
                outputs.append(tiled_apply(
                    self._forward, part, tile=tile, overlap=min(self.overlap, tile - 1),
                    multiple=self.config.size_multiple, scale=self.config.output_scale,
                    out_channels=self.config.out_channels, batch=self.tile_batch,
                ))
        y = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        return self._to_host(y, source)

    def forward_only(self, x: torch.Tensor) -> torch.Tensor:
        """The bare network call on a device tensor ``(N, C, H, W)`` (no copies, no tiling): what
        the speed benchmarks time, so a streaming ratio compares like with like."""
        with torch.inference_mode():
            return self._forward(x)

    def predict(self, image: Array) -> Array:
        """One frame ``(H, W)``/``(C, H, W)`` or a batch ``(N, C, H, W)``; same kind and rank out."""
        as_numpy = isinstance(image, np.ndarray)
        x = torch.from_numpy(np.ascontiguousarray(image, np.float32)) if as_numpy else image
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a numpy array or torch tensor, got {type(image).__name__}")
        rank = x.ndim
        if rank not in (2, 3, 4):
            raise ValueError(f"expected (H, W), (C, H, W) or (N, C, H, W), got {tuple(x.shape)}")
        batch = x.reshape((1,) * (4 - rank) + tuple(x.shape))
        return self._unbatch(self.predict_batch(batch), rank, as_numpy)[0]

    def _unbatch(self, y: torch.Tensor, rank: int, as_numpy: bool) -> list:
        """Undo the batching of frames of ``rank``: a list of one array per input (rank 4: one)."""
        items = [y] if rank == 4 else [f[0] if rank == 2 and f.shape[0] == 1 else f for f in y]
        return [f.cpu().numpy() if as_numpy else f for f in items]

    def stream(self, frames: Iterable[Array], batch_size: int = 1) -> Iterator[Array]:
        """Predictions for a (possibly endless) iterable of frames, in order.

        Up to ``batch_size`` consecutive frames of the same shape run as one batch; a frame of a
        new shape flushes the pending ones first, so order is always kept.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        pending: list = []
        for frame in frames:
            if pending and (tuple(frame.shape) != tuple(pending[0].shape)
                            or type(frame) is not type(pending[0])):
                yield from self._run_pending(pending)
                pending = []
            pending.append(frame)
            if len(pending) >= batch_size:
                yield from self._run_pending(pending)
                pending = []
        if pending:
            yield from self._run_pending(pending)

    def _run_pending(self, frames: list) -> Iterator:
        rank = frames[0].ndim
        if len(frames) == 1 or rank == 4:
            for f in frames:
                yield self.predict(f)
            return
        as_numpy = isinstance(frames[0], np.ndarray)
        tensors = [torch.from_numpy(np.ascontiguousarray(f, np.float32)) if as_numpy else f
                   for f in frames]
        batch = torch.stack([t if rank == 3 else t[None] for t in tensors])
        yield from self._unbatch(self.predict_batch(batch), rank, as_numpy)


def _compile_mode(compile: bool | str) -> str | None:
    """``compile`` argument -> a ``torch.compile`` mode name, or None for eager."""
    if compile is False or compile is None:
        return None
    if compile is True:
        return "default"
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile={compile!r}; expected True, False or one of {COMPILE_MODES}")
    return str(compile)

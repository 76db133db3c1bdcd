"""stem-view: raw and denoised STEM frames side by side, live.

Sources: a frame file series (microscope files, a folder of them or one stack; ``--watch`` or
``watch:<folder>`` waits for new files as a microscope writes them; ``series:<path>`` is the same as
a bare path) or the simulator as a stream (``sim[:size=128x128,dose=4]``).
Raw, denoised and (``--diff``) their difference share zoom and pan; play/pause, a frame slider for
files, contrast levels (histogram), a physical scale bar when the frames carry a pixel size, and
fps. Denoised frames are saved as float32 TIFF (save button, or every frame with ``--save DIR``).
``--no-window --frames N`` prints the streaming benchmark as JSON.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from apps.cli import run_cli, setup_logging
from apps.live.checkpoint import (
    add_run_arguments,
    add_speed_arguments,
    check_frame_arguments,
    describe_predictor,
    predictor_options,
)
from apps.live.pipeline import LivePipeline, LiveResult, Processed, print_report, run_headless
from apps.stem_units import (
    ResampleMode,
    add_resample_arguments,
    first_frame_dose,
    pixel_size_notes,
    plan_resampling,
)

PROG = "stem-view"
log = logging.getLogger(PROG)

EPILOG = """\
Frames from files are brought into the model's units as in mcnn-predict: for a model trained on
the STEM simulator, (counts - offset) / gain / dose with offset and gain estimated from each frame
(as stem-denoise does without --calibration; dose or pixel size far from the training data is
warned about); for other models the one pixel-value policy (mcnn.data.image_io: 8/16-bit images
scaled to [0, 1], wider integers kept as counts, floats as they are). Panels show model units. A
simulated frame is counts / dose (mean about 1), the input the STEM denoiser was trained on; its
panel title shows the PSNR against the noise-free frame. File frames whose pixels are more than
1.5x finer than the model's training pixel size are denoised at the model's and shown on their own
grid, as stem-denoise does (--resample: every frame with a pixel size; --no-resample: none).
Exit codes: 0 ok, 2 user error, 1 failure."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Live STEM denoising viewer.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="run folder, checkpoint folder or model.safetensors")
    p.add_argument("--source", required=True,
                   help="microscope file/stack, folder of frames, series:PATH, watch:FOLDER, or "
                   "sim[:size=WxH,dose=E,seed=N]")
    p.add_argument("--fps", type=float, help="frames/s to play (default: 10 for files, 30 sim)")
    p.add_argument("--loop", action="store_true", help="files: start again at the end")
    p.add_argument("--watch", action="store_true", help="folder: wait for new frame files")
    p.add_argument("--diff", action="store_true", help="also show denoised - raw")
    p.add_argument("--levels", help="fixed display levels low,high (default: from the first frame)")
    p.add_argument("--save", type=Path, metavar="DIR", help="save every denoised frame (float32 TIFF)")
    add_speed_arguments(p)
    add_run_arguments(p)
    add_resample_arguments(p)  # file frames: as stem-denoise, shown on their own grid
    return p


def build_source(spec: str, fps: float | None, loop: bool, watch: bool) -> Any:
    """``sim[:key=value,...]`` -> :class:`StemSimSource`; a path, ``series:PATH`` or
    ``watch:FOLDER`` -> :class:`FrameSeriesSource` (``acquire.sources.spec``)."""
    from acquire.config import parse_wxh
    from acquire.sources.spec import build_frame_source, is_frame_source_spec

    if spec == "sim" or spec.startswith("sim:"):
        from acquire.sources.stem_sim import StemSimSource

        kwargs: dict[str, Any] = {}
        for part in filter(None, spec[4:].split(",")):
            key, sep, text = part.partition("=")
            try:
                if not sep:
                    raise ValueError
                if key == "size":
                    kwargs["size_hw"] = parse_wxh(text, "sim size")
                elif key == "dose":
                    kwargs["dose_e_per_px"] = float(text)
                elif key == "seed":
                    kwargs["seed"] = int(text)
                elif key == "pixel_nm":
                    kwargs["pixel_size_nm"] = float(text)
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f"--source {spec!r}: {part!r} is not size=WxH, dose=E, seed=N "
                                 "or pixel_nm=X") from None
        return StemSimSource(fps=fps or 30.0, **kwargs)
    if not is_frame_source_spec(spec):
        if not Path(spec.split("#", 1)[0]).exists():
            raise ValueError(f"--source {spec}: no such file or folder (or use sim)")
        spec = f"{'watch' if watch else 'series'}:{spec}"
    return build_frame_source(spec, fps=fps or 10.0, loop=loop)


def nice_length(span: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``span`` (a scale bar's length)."""
    if span <= 0:
        return 0.0
    k = math.floor(math.log10(span))
    for m in (5, 2, 1):
        if m * 10**k <= span:
            return m * 10**k
    return 10**k


class StemProcessor:
    """Frame -> panels ``raw``, ``denoised``, ``diff``; PSNR against ``meta["clean"]`` if any."""

    def __init__(self, predictor: Any, resample: ResampleMode = "auto") -> None:
        from mcnn.stem.normalise import is_stem_training

        self.predictor = predictor
        self.channels = predictor.config.in_channels
        self.scale = predictor.config.output_scale
        self.stem = is_stem_training(predictor.training_data)
        self.warned: set[str] = set()
        sim = (predictor.training_data or {}).get("simulator") or {}
        if resample == "on" and (not self.stem or not sim.get("pixel_size_pm")):
            raise ValueError("--resample needs a STEM model that records its training pixel "
                             "size (data.simulator.pixel_size_pm)")
        self.resample = resample  # "auto", "on" or "off": apps.stem_units.plan_resampling
        self.model_pixel_pm: float | None = \
            float(sim["pixel_size_pm"]) if self.stem and sim.get("pixel_size_pm") else None
        self._grids: dict[tuple[Any, ...], Any] = {}

    def _warn_once(self, source: str, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            log.warning("%s: %s", source, message)

    def resampling(self, frame: Any) -> Any:
        """The move of this file frame to the model's pixel size, as stem-denoise decides it
        (None: denoised as recorded; the reasons are warned about once)."""
        from mcnn.data.image_io import PixelSize
        from mcnn.stem.normalise import pixel_size_pm, training_dose_ceiling

        if self.model_pixel_pm is None or self.resample == "off":
            return None
        source = str(frame.meta.get("source_file"))
        pixel = frame.meta.get("pixel_size")
        size = PixelSize(*pixel) if pixel else None
        if self.resample == "on" and pixel_size_pm(size) is None:
            self._warn_once(source, "no pixel size in length units: shown without --resample")
            return None
        key = (frame.image.shape[:2], tuple(pixel or ()))
        if key not in self._grids:
            grid = plan_resampling(
                Path(source), frame.image.shape[:2], size, self.model_pixel_pm, self.resample,
                frame_dose=lambda: first_frame_dose(frame.image[..., 0], None, None),
                dose_ceiling=training_dose_ceiling(self.predictor.training_data))
            for w in pixel_size_notes(size, grid, self.model_pixel_pm, self.resample,
                                      give="write it into the files, or use stem-denoise "
                                      "--pixel-size"):
                self._warn_once(source, w)
            self._grids[key] = grid
        return self._grids[key]

    def model_input(self, frame: Any) -> np.ndarray:
        """``(H, W, C)`` float32 in the model's units on the frame's own grid. File frames come
        as stored (counts): a STEM model gets them as stem-denoise brings them, others by the one
        pixel-value policy; simulated frames are already in model units."""
        return self._inputs(frame)[0]

    def _inputs(self, frame: Any) -> tuple[np.ndarray, np.ndarray, Any, Any]:
        """(the frame in model units on its grid, the network input, the resampling or None, the
        STEM units to invert the output with or None)."""
        from mcnn.data.image_io import PixelSize, normalise
        from mcnn.stem.normalise import (
            acquisition_warnings,
            check_frame_shape,
            frame_to_model_units,
            input_grid_units,
            to_model_units,
        )

        source = frame.meta.get("source_file")
        if source is None:
            x = frame.image.astype(np.float32, copy=False)
            return x, x, None, None
        if not self.stem or frame.image.shape[2] != 1:
            x = normalise(frame.image, source)
            return x, x, None, None
        check_frame_shape(frame.image.shape[:2], source)  # as stem-denoise: 16 px a side
        pixel = frame.meta.get("pixel_size")
        grid = self.resampling(frame)
        x, units, warnings = frame_to_model_units(
            frame.image[..., 0], pixel_size=PixelSize(*pixel) if pixel else None,
            training_data=self.predictor.training_data, resampling=grid)
        for w in acquisition_warnings(frame.meta) + warnings:
            self._warn_once(str(source), w)
        if grid is None:
            return x[..., None], x[..., None], None, units
        shown = to_model_units(frame.image[..., 0], input_grid_units(units, grid))
        return shown[..., None], x[..., None], grid, units

    def __call__(self, frame: Any) -> Processed:
        from acquire.frame import monotonic_s
        from mcnn.stem.normalise import from_model_units

        shown, x, grid, units = self._inputs(frame)
        if x.shape[2] != self.channels:
            x = (np.repeat(x[..., :1], self.channels, axis=2) if self.channels > 1
                 else x.mean(axis=2, keepdims=True))
        t0 = monotonic_s()
        y = self.predictor.predict(np.ascontiguousarray(x.transpose(2, 0, 1)))
        inference_ms = 1e3 * (monotonic_s() - t0)
        denoised = y if y.ndim == 2 else (y[0] if y.shape[0] == 1 else y.transpose(1, 2, 0))
        extra: dict[str, Any] = {}
        if units is not None:  # a STEM file frame: saved in its counts, as stem-denoise writes
            extra["denoised_counts"] = from_model_units(np.asarray(denoised), units, "counts",
                                                        grid)
        if grid is not None:  # back on the frame's grid (STEM: one channel, scale 1)
            denoised = grid.to_input(np.asarray(denoised)).astype(np.float32)
            x = shown
        raw = x[..., 0] if x.shape[2] == 1 else x
        if self.scale > 1:
            raw = np.kron(raw, np.ones((self.scale, self.scale) + (1,) * (raw.ndim - 2),
                                       np.float32))
        panels = {"raw": raw, "denoised": denoised}
        if raw.shape == denoised.shape:
            panels["diff"] = denoised - raw
        values: dict[str, float] = {}
        clean = frame.meta.get("clean")
        if clean is not None and clean[..., 0].shape == denoised.shape[:2]:
            c = clean[..., 0]
            peak = float(c.max()) or 1.0
            for name, img in (("psnr_raw_db", raw), ("psnr_db", denoised)):
                grey = img if img.ndim == 2 else img.mean(axis=2)
                mse = float(np.mean((grey - c) ** 2))
                values[name] = 10.0 * math.log10(peak**2 / max(mse, 1e-12))
        return Processed(panels, values, inference_ms, extra)


def pixel_size_of(result: LiveResult, scale: int) -> tuple[float, str] | None:
    """``(x size of one displayed pixel, unit)`` from the frame meta (None: unknown)."""
    pixel = result.frame.meta.get("pixel_size")
    if not pixel:
        return None
    return float(pixel[1]) / scale, str(pixel[2])


def save_denoised(folder: Path, result: LiveResult, scale: int) -> Path:
    """The denoised frame as float32 TIFF (with the pixel size, when known): a STEM model's frame
    from a file in that file's counts, named ``<file>_<frame>.tif`` (as stem-denoise writes it);
    others as shown, ``denoised_<index>.tif``."""
    from mcnn.data.image_io import PixelSize, write_image

    meta = result.frame.meta
    image = result.processed.extra.get("denoised_counts", result.processed.panels["denoised"])
    chw = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    pixel = meta.get("pixel_size")
    size = PixelSize(pixel[0] / scale, pixel[1] / scale, pixel[2]) if pixel else None
    source = meta.get("source_file")
    if source is not None and "index_in_file" in meta:
        name = f"{Path(str(source).split('#', 1)[0]).stem}_{int(meta['index_in_file']):04d}.tif"
    else:
        name = f"denoised_{int(meta.get('series_index', result.frame.index)):06d}.tif"
    return write_image(Path(folder) / name, chw, size)


class StemWindowParts:
    """Viewer state beyond the panels: levels, scale bar, slider, save folder."""

    def __init__(self, window: Any, source: Any, args: argparse.Namespace, scale: int) -> None:
        import pyqtgraph as pg
        from pyqtgraph.Qt import QtCore, QtWidgets

        self.window, self.source, self.scale = window, source, scale
        self.save_dir = args.save
        grid = window.grid
        grid.add_panel("raw", "raw", 0, 0)
        grid.add_panel("denoised", "denoised", 0, 1)
        names = ["raw", "denoised"]
        if args.diff:
            grid.add_panel("diff", "denoised - raw", 0, 2, levels=(-1.0, 1.0))
            names.append("diff")
        grid.link(*names)
        self.fixed_levels = parse_levels(args.levels) if args.levels else None
        self.levels_set = False
        self.hist = pg.HistogramLUTItem(image=grid.items["denoised"])
        grid.addItem(self.hist, row=1, col=len(names))
        self.hist.sigLevelsChanged.connect(self._levels_changed)
        self.bar: Any = None
        self.play_button = window.add_button("pause", self.toggle_play)
        window.add_button("save denoised", self.save_current)
        self.slider: Any = None
        if hasattr(source, "seek"):
            self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
            self.slider.sliderMoved.connect(self._seek)
            window.controls.addWidget(self.slider, stretch=1)

    def _levels_changed(self, *_: object) -> None:
        lo, hi = self.hist.getLevels()
        for name in ("raw", "denoised"):
            self.window.grid.set_levels(name, (lo, hi))

    def _seek(self, value: int) -> None:
        self.source.seek(int(value))

    def toggle_play(self) -> None:
        pipeline = self.window.pipeline
        playing = self.source.playing if hasattr(self.source, "playing") else not pipeline.paused
        if hasattr(self.source, "pause"):
            self.source.pause() if playing else self.source.play()
        else:
            pipeline.pause() if playing else pipeline.resume()
        self.play_button.setText("play" if playing else "pause")

    def save_current(self) -> None:
        result = self.window.last_result
        if result is not None:
            path = save_denoised(self.save_dir or Path("denoised"), result, self.scale)
            self.window.stats_label.setText(f"saved {path}")

    def show(self, result: LiveResult) -> None:
        grid = self.window.grid
        panels = result.processed.panels
        if not self.levels_set:
            lo, hi = self.fixed_levels or percentile_levels(panels["raw"])
            self.hist.setLevels(lo, hi)
            for name in ("raw", "denoised"):
                grid.set_levels(name, (lo, hi))
            if "diff" in grid.items:
                grid.set_levels("diff", (-(hi - lo) / 2, (hi - lo) / 2))
            self.levels_set = True
        for name, image in panels.items():
            if name in grid.items:
                grid.set_image(name, image)
        values = result.processed.values
        if "psnr_db" in values:
            grid.set_title("raw", f"raw  PSNR {values['psnr_raw_db']:.1f} dB")
            grid.set_title("denoised", f"denoised  PSNR {values['psnr_db']:.1f} dB")
        if self.bar is None:
            self._add_scale_bar(result, panels["denoised"].shape[1])
        if self.slider is not None:
            self.slider.blockSignals(True)
            self.slider.setRange(0, max(0, self.source.frame_count - 1))
            self.slider.setValue(int(result.frame.meta.get("series_index", 0)))
            self.slider.blockSignals(False)
        if self.save_dir is not None:
            save_denoised(self.save_dir, result, self.scale)

    def _add_scale_bar(self, result: LiveResult, width_px: int) -> None:
        import pyqtgraph as pg

        from apps.stem_figures import length_label

        pixel = pixel_size_of(result, self.scale)
        if pixel is None:
            self.bar = False
            return
        size, unit = pixel
        length = nice_length(0.25 * width_px * size)
        self.bar = pg.ScaleBar(size=length / size, suffix="")
        self.bar.setParentItem(self.window.grid.views["denoised"])
        self.bar.anchor((1, 1), (1, 1), offset=(-15, -15))
        self.bar.text.setText(length_label(length, unit))  # 2 nm, not 2000 pm: as the figures


def parse_levels(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--levels {text!r}: expected low,high") from None
    if not hi > lo:
        raise ValueError(f"--levels {text!r}: high must be greater than low")
    return lo, hi


def percentile_levels(image: np.ndarray) -> tuple[float, float]:
    """0.5 / 99.5 percentiles: robust display levels of a frame."""
    lo, hi = (float(v) for v in np.percentile(image, (0.5, 99.5)))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)

    def body() -> int:
        from acquire.sources.base import SourceError
        from mcnn.infer import Predictor

        check_frame_arguments(args)
        if args.levels:
            parse_levels(args.levels)
        predictor = Predictor.from_checkpoint(args.checkpoint, **predictor_options(args))
        source = build_source(args.source, args.fps, args.loop, args.watch)
        scale = predictor.config.output_scale
        pipeline = LivePipeline(source, StemProcessor(predictor, resample=args.resample))
        values: list[dict[str, float]] = []
        try:
            if args.no_window:

                def on_display(result: LiveResult) -> None:
                    values.append(result.processed.values)
                    if args.save is not None:
                        save_denoised(args.save, result, scale)

                stats = run_headless(pipeline, args.frames, warmup=args.warmup,
                                     on_display=on_display)
            else:
                from apps.live.panels import LiveWindow, qt_app, run_window

                qt_app()
                window = LiveWindow(pipeline, lambda r: parts.show(r), title=PROG,
                                    max_frames=args.frames)
                parts = StemWindowParts(window, source, args, scale)
                run_window(window, screenshot=args.screenshot)
                stats = pipeline.stats()
        except SourceError as exc:
            raise ValueError(str(exc)) from None
        finally:
            pipeline.stop()
        stats.update(describe_predictor(predictor))
        return print_report(PROG, stats, values, ("psnr_raw_db", "psnr_db"))

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())

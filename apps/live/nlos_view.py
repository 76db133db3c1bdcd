"""nlos-view: the hidden screen, live. Camera frames of the door -> MCNN -> the screen it saw.

Panels: camera input (after the calibrated crop and flip), reconstruction, and, when a screen is
given, the screen as it was when the camera frame was taken (camera time minus the latency) with
the absolute error and PSNR/SSIM. A record button (or ``--record DIR``) saves pairs in the
recording format while viewing. ``--no-window --frames N`` is the streaming benchmark: it prints
display fps, inference and end-to-end latency (median/p95) as JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from apps.cli import run_cli, setup_logging
from apps.live.checkpoint import (
    InputSpec,
    add_run_arguments,
    add_speed_arguments,
    check_frame_arguments,
    describe_predictor,
    input_spec_from_training,
    predictor_options,
    training_config,
)
from apps.live.pipeline import LivePipeline, LiveResult, Processed, print_report, run_headless

PROG = "nlos-view"

EPILOG = """\
The camera frame is cropped to the door (--roi, else the calibration's ROI, else the training
recording's ROI, else, for a model file without training config, a simulated camera's door box), flipped when the model was trained
on flipped frames (--mirror/--no-mirror overrides) and resized to the model's training input size.
The screen panel shows what the screen showed latency ms before the camera frame (--latency-ms,
else the calibration, else a simulated camera's latency). A virtual screen plays generated images
at --film-fps. Exit codes: 0 ok, 2 user error, 1 failure."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Live reconstruction of the hidden screen.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="run folder, checkpoint folder or model.safetensors")
    p.add_argument("--camera", default="sim", help="camera: 0, /dev/videoN, URL, file:PATH, "
                   "sim[:key=value,...] (default sim)")
    p.add_argument("--screen", default=None, help="screen to compare with: 1, region:x,y,w,h, "
                   "virtual[:WxH] (default: virtual:640x360 for a sim camera, none otherwise)")
    p.add_argument("--calibration", type=Path, help="calibration.json (ROI and latency)")
    p.add_argument("--roi", help="door crop x,y,w,h in camera px (overrides the calibration)")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="flip the camera frame left-right (default: as in training)")
    p.add_argument("--latency-ms", type=float, help="display-to-camera latency for the screen panel")
    p.add_argument("--film-fps", type=float, default=4.0,
                   help="images/s played on a virtual screen (default 4)")
    add_speed_arguments(p)
    p.add_argument("--record", type=Path, metavar="DIR",
                   help="save (camera, screen) pairs to this new recording folder from the start")
    add_run_arguments(p)
    return p


def parse_roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--roi {text!r}: expected x,y,width,height in pixels") from None
    if w < 1 or h < 1 or x < 0 or y < 0:
        raise ValueError(f"--roi {text!r}: width and height must be >= 1, x and y >= 0")
    return x, y, w, h


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 (H, W, C) -> float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return image.astype(np.float32)


def resize_hwc(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = size_hw
    if image.shape[:2] == (h, w):
        return image
    shrink = w < image.shape[1]
    out = cv2.resize(np.ascontiguousarray(image), (w, h),
                     interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out[..., None] if out.ndim == 2 else out


def prepare_camera(image: np.ndarray, spec: InputSpec, channels: int) -> np.ndarray:
    """Camera frame ``(H, W, C)`` -> model input ``(H', W', channels)`` float32 in [0, 1].

    The same steps, in the same order, as ``mcnn.data.recording.RecordedPairs`` in training.
    """
    x = to_float(image)
    if spec.roi is not None:
        rx, ry, rw, rh = spec.roi
        if rx + rw > x.shape[1] or ry + rh > x.shape[0]:
            raise ValueError(f"ROI {spec.roi} does not fit the {x.shape[1]}x{x.shape[0]} camera "
                             "frame (x, y, width, height)")
        x = x[ry:ry + rh, rx:rx + rw]
    if spec.mirror:
        x = x[:, ::-1]
    if spec.size_hw is not None:
        x = resize_hwc(x, spec.size_hw)
    return match_channels(x, channels)


def match_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """``(H, W, C)`` -> ``(H, W, channels)``: luminance for 1, repeated grey for 3."""
    if x.shape[2] == channels:
        return np.ascontiguousarray(x)
    if channels == 1:
        return (x[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    return np.repeat(x[..., :1], channels, axis=2)


def compare(recon: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """PSNR (dB), SSIM and Pearson correlation of two ``(H, W, C)`` images in [0, 1]."""
    from skimage.metrics import structural_similarity

    mse = float(np.mean((recon - truth) ** 2))
    psnr = 10.0 * np.log10(1.0 / max(mse, 1e-12))
    grey_r, grey_t = recon.mean(axis=2), truth.mean(axis=2)
    win = min(7, *grey_r.shape)
    win -= 1 - win % 2  # odd, as SSIM's window must be
    ssim = float(structural_similarity(grey_r, grey_t, data_range=1.0, win_size=win)) \
        if win >= 3 else float("nan")
    a, b = recon.ravel() - recon.mean(), truth.ravel() - truth.mean()
    denom = float(np.sqrt((a @ a) * (b @ b)))
    corr = float(a @ b) / denom if denom > 0 else 0.0
    return {"psnr_db": float(psnr), "ssim": ssim, "corr": corr}


class NlosProcessor:
    """Frame -> panels: ``camera``, ``reconstruction`` and, with a screen, ``screen``, ``error``."""

    def __init__(self, predictor: Any, spec: InputSpec, *, history: Any = None,
                 latency_ms: float = 0.0, saver: Any = None) -> None:
        self.predictor, self.spec, self.history = predictor, spec, history
        self.latency_ms, self.saver = latency_ms, saver
        self.channels = predictor.config.in_channels
        self.out_channels = predictor.config.out_channels

    def __call__(self, frame: Any) -> Processed:
        from acquire.frame import monotonic_s

        x = prepare_camera(frame.image, self.spec, self.channels)
        t0 = monotonic_s()
        y = self.predictor.predict(x.transpose(2, 0, 1))
        inference_ms = 1e3 * (monotonic_s() - t0)
        recon = np.clip(y if y.ndim == 3 else y[None], 0.0, 1.0).transpose(1, 2, 0)
        panels = {"camera": _display(x), "reconstruction": _display(recon)}
        values: dict[str, float] = {}
        shown = self.history.at(frame.t_monotonic_s - self.latency_ms / 1e3) \
            if self.history is not None else None
        if shown is not None:
            t_shown, index, screen = shown
            truth = match_channels(resize_hwc(to_float(screen), recon.shape[:2]),
                                   recon.shape[2])
            panels["screen"] = _display(truth)
            panels["error"] = np.abs(recon - truth).mean(axis=2)
            values = compare(recon, truth)
            if self.saver is not None:
                self.saver.submit(frame, screen, t_shown, index)
        return Processed(panels, values, inference_ms)


def _display(x: np.ndarray) -> np.ndarray:
    """(H, W, 1) -> (H, W) for a grey panel; colour stays (H, W, 3)."""
    return x[..., 0] if x.shape[2] == 1 else x


class NlosSession:
    """Devices, model and pipeline of one ``nlos-view`` run, built from the parsed arguments."""

    def __init__(self, args: argparse.Namespace) -> None:
        from acquire.sources.base import SourceError
        from acquire.sources.screen import VirtualScreen
        from acquire.sources.spec import build_camera, build_screen
        from acquire.stimulus import generated_image
        from apps.live.recording import LivePairSaver
        from apps.live.screen_history import ScreenHistory
        from mcnn.data.recording import CalibrationResult
        from mcnn.infer import Predictor

        self.predictor = Predictor.from_checkpoint(args.checkpoint, **predictor_options(args))
        trained = input_spec_from_training(training_config(args.checkpoint))
        calibration = CalibrationResult.load(args.calibration) if args.calibration else None
        is_sim = str(args.camera).strip().startswith("sim")
        screen_spec = args.screen or ("virtual:640x360" if is_sim else None)
        if is_sim and screen_spec is None:
            raise ValueError("--camera sim needs a screen to film (--screen)")
        self.screen = build_screen(screen_spec) if screen_spec is not None else None
        placeholder = self.screen if self.screen is not None else VirtualScreen((8, 8))
        self.camera = build_camera(args.camera, placeholder)
        roi = parse_roi(args.roi) if args.roi else None
        if roi is None and calibration is not None and calibration.roi is not None:
            roi = calibration.roi.roi
        if roi is None:  # a recording's training ROI; a simulated door only for a bare model
            roi = trained.roi if trained.known else getattr(self.camera, "door_roi", None)
        mirror = trained.mirror if args.mirror is None else args.mirror
        self.spec = InputSpec(roi=tuple(roi) if roi else None, mirror=mirror,  # type: ignore[arg-type]
                              size_hw=trained.size_hw, grayscale=trained.grayscale)
        latency = args.latency_ms
        if latency is None and calibration is not None and calibration.latency is not None:
            latency = calibration.latency.median_ms
        if latency is None:
            latency = float(getattr(self.camera, "latency_ms", 0.0))
        self.latency_ms = latency
        if isinstance(self.screen, VirtualScreen):
            size = self.screen.size_hw
            self.screen.play(lambda i: generated_image(7_000_003 + i, size), fps=args.film_fps)
        self.history = ScreenHistory(self.screen) if self.screen is not None else None
        self.saver = None
        if args.record is not None or self.screen is not None:
            self.saver = LivePairSaver(
                args.record or Path("recordings") / _timestamp(),
                camera=self.camera, screen=self.screen, latency_ms=latency,
                calibration_file=args.calibration, enabled=args.record is not None)
        self.processor = NlosProcessor(self.predictor, self.spec, history=self.history,
                                       latency_ms=latency, saver=self.saver)
        extra = (self.screen,) if self.screen is not None else ()
        self.pipeline = LivePipeline(self.camera, self.processor, extra_sources=extra)
        try:
            self._start_history()
        except SourceError as exc:
            self.close()
            raise ValueError(f"screen: {exc}") from None

    def _start_history(self) -> None:
        if self.screen is not None:
            self.screen.open()
            if self.history is not None:
                self.history.start()

    def close(self) -> dict[str, Any] | None:
        self.pipeline.stop()
        if self.history is not None:
            self.history.stop()
        return self.saver.close() if self.saver is not None else None


def _timestamp() -> str:
    from datetime import datetime

    return datetime.now().strftime("view-%Y%m%d-%H%M%S")


def build_window(session: NlosSession, max_frames: int | None) -> Any:
    """The Qt window of a session (panels, record button, stats line); not yet shown."""
    from apps.live.panels import LiveWindow

    window = LiveWindow(session.pipeline, lambda r: show_result(window, r), title=PROG,
                        max_frames=max_frames)
    grid = window.grid
    steps = ", ".join(n for n, on in (("cropped", session.spec.roi is not None),
                                      ("flipped", session.spec.mirror)) if on)
    grid.add_panel("camera", f"camera ({steps or 'as captured'})", 0, 0)
    grid.add_panel("reconstruction", "reconstruction", 0, 1)
    if session.screen is not None:
        grid.add_panel("screen", "screen (latency-matched)", 1, 0)
        grid.add_panel("error", "|error|", 1, 1, levels=(0.0, 0.5))
        grid.link("reconstruction", "screen", "error")
    if session.saver is not None:
        saver = session.saver

        def toggle() -> None:
            saver.enabled = not saver.enabled
            button.setText("stop recording" if saver.enabled else "record")

        button = window.add_button("stop recording" if saver.enabled else "record", toggle)
    return window


def show_result(window: Any, result: LiveResult) -> None:
    for name, image in result.processed.panels.items():
        if name in window.grid.items:
            window.grid.set_image(name, image)
    values = result.processed.values
    if "psnr_db" in values:
        window.grid.set_title("error", f"|error|  PSNR {values['psnr_db']:.1f} dB  "
                                       f"SSIM {values['ssim']:.2f}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)

    def body() -> int:
        from acquire.sources.base import SourceError

        check_frame_arguments(args)
        try:
            session = NlosSession(args)
        except SourceError as exc:
            raise ValueError(str(exc)) from None
        values: list[dict[str, float]] = []
        try:
            if args.no_window:
                stats = run_headless(session.pipeline, args.frames, warmup=args.warmup,
                                     on_display=lambda r: values.append(r.processed.values))
            else:
                from apps.live.panels import qt_app, run_window

                qt_app()
                window = build_window(session, args.frames)
                run_window(window, screenshot=args.screenshot)
                stats = session.pipeline.stats()
        finally:
            recording = session.close()
        stats.update(describe_predictor(session.predictor))
        if recording is not None:
            stats["recording"] = recording
        return print_report(PROG, stats, values, ("psnr_db", "ssim", "corr"))

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())

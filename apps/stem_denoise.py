"""stem-denoise: denoise STEM frames from microscope files with a trained model, in physical units.

Files (DM3/DM4, Velox/Berkeley EMD, SER, MRC, HDF5 ``file.h5#/dataset``, TIFF, NPY), folders and
stacks in -> one float32 TIFF per input file out (same stem; a stack stays a stack in frame order),
with the input's pixel size (ImageJ unit), read and written one frame at a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from apps.cli import attach_negative_values, run_cli, setup_logging
from apps.stem_figures import compare_figure
from apps.stem_units import (
    SIGNED_VALUE_FLAGS,
    FileWarnings,
    add_pixel_arguments,
    add_unit_arguments,
    check_stem_model,
    check_unit_arguments,
    first_frame_dose,
    load_calibration,
    parse_pixel_size,
    pixel_size_notes,
    plan_resampling,
)

PROG = "stem-denoise"
log = logging.getLogger(PROG)

EPILOG = """\
Units: each frame is brought into the units the model was trained in (the STEM simulator's
electrons / dose, mean ~1) by  x = (counts - offset) / gain / dose,  and the output back by the
inverse (--output-units counts, the default; or electrons per pixel, or model units).
Offset and gain come from --calibration noise.json (or --save-calibration, fitted on the inputs:
two or more frames of the same field, --dark for a dark frame), else they are estimated from each
frame (a warning says so). The dose is each frame's mean electrons per pixel unless
--dose-e-per-px is given. A warning is printed when a frame's dose or pixel size is far from the
checkpoint's training data.
Pixel size: a frame whose pixels are more than 1.5x finer than the checkpoint's training pixel
size (data.simulator.pixel_size_pm) is brought to it before the network, keeping electrons per
unit area (the dose is then per model pixel: a given --dose-e-per-px, per input pixel, is scaled
by the area ratio), and the output back to the input's grid: output TIFFs keep the input's shape
and pixel size. Downsampling averages (whole-factor binning keeps Poisson noise exact).
--resample does it for every frame, upsampling too (frame pixels larger than the model's: this
correlates the noise, measured to invent atoms; a warning says so); --no-resample for none.
--pixel-size 10pm (or 0.01nm, 1.5A; a bare number is pm) sets the pixel size of every input
(for files without one): used for the warnings, resampling, --compare's scale bar and the output.
Prints a JSON summary on stdout (frames/s count the denoising, not the --compare figure; each
input's warnings under warnings_by_file); writes stem-denoise.json (per-frame offset, gain, dose;
per-file resampling) next to the outputs. Exit codes: 0 ok, 2 user error, 1 failure."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Denoise STEM frames with a trained MCNN, in physical units.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, help="run folder, checkpoint folder or model.safetensors")
    p.add_argument("inputs", nargs="*", help="microscope files, stacks, folders, file.h5#/dataset")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--watch", type=Path, metavar="FOLDER",
                   help="after the inputs, denoise each file the microscope finishes writing into "
                   "FOLDER (its files already there first), until Ctrl-C or --idle-exit")
    p.add_argument("--idle-exit", type=float, metavar="S",
                   help="--watch: stop after S seconds without a new file (default: run until "
                   "Ctrl-C)")
    add_unit_arguments(p)
    add_pixel_arguments(p)
    p.add_argument("--save-calibration", type=Path, metavar="JSON",
                   help="fit gain/offset on the inputs' first frames (up to 16), save, and use it")
    p.add_argument("--dark", nargs="+", metavar="FILE",
                   help="dark frame(s) (beam blanked) for --save-calibration's offset")
    p.add_argument("--adapt-steps", type=int, default=0, metavar="N",
                   help="fine-tune on the inputs' first frames (up to 32) for N steps before "
                   "denoising, without clean targets (self-supervised; default 0: off)")
    p.add_argument("--adapt-loss", choices=["blind_spot", "noise2noise"], default="blind_spot",
                   help="blind_spot (Noise2Self, single frames) or noise2noise (consecutive "
                   "frames of one field)")
    p.add_argument("--adapt-lr", type=float, default=1e-4, metavar="LR")
    p.add_argument("--adapt-span", type=int, metavar="K",
                   help="blind_spot: also hide K px either side of each blind spot along the row, "
                   "for noise correlated along the fast scan (default: measured on the frames)")
    p.add_argument("--save-adapted", type=Path, metavar="FILE.safetensors",
                   help="save the adapted model (with the original training data config)")
    p.add_argument("--tile", type=int, metavar="N", help="tile size in px (multiple of 2**depth)")
    p.add_argument("--overlap", type=int, default=64, metavar="N", help="tile overlap, px")
    p.add_argument("--batch-size", type=int, default=4, metavar="N", help="frames per forward pass")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N")
    p.add_argument("--flip-ensemble", action="store_true",
                   help="average the model over each frame and its three mirror images (one "
                   "batch of four): +0.15-0.24 dB on the STEM benchmark for 2.7x the time")
    p.add_argument("--compare", type=Path, metavar="FIG.png",
                   help="write raw | denoised | (BM3D) | difference of the first frame")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def output_paths(files: list[Path], out: Path, used: set[str] | None = None) -> list[Path]:
    """``out/<stem>.tif`` per input; a name already used gets ``_2``, ``_3``... until it is free
    (``a.dm3``, ``a.tif``, ``a_2.npy`` -> ``a``, ``a_2``, ``a_2_2``; ``used`` carries the names
    across calls, for files that arrive one by one)."""
    used = set() if used is None else used
    paths = []
    for f in files:
        stem = Path(str(f).split("#", 1)[0]).stem
        name, k = f"{stem}.tif", 1
        while name.lower() in used:
            k += 1
            name = f"{stem}_{k}.tif"
        used.add(name.lower())
        paths.append(out / name)
    return paths


def one_series(inputs: list[str], limit: int, purpose: str) -> list[Any]:
    """Up to ``limit`` frames that belong together, for a fit that pairs or pools them: the frames
    of the first file that has several (a stack is one acquisition), else single-frame files of one
    detector, shape and pixel size (a series written one file per frame). Inputs from different
    detectors or pixel sizes are refused: ``purpose`` says for what. Frame counts come from the
    headers; only the frames returned are read."""
    from itertools import islice

    from mcnn.data.image_io import open_frames
    from mcnn.data.series import FrameSeries, expand_inputs

    def key(f: Any) -> tuple[Any, ...]:
        return (f.image.shape, f.pixel_size, f.meta.get("detector"))

    singles: list[Any] = []
    for path in expand_inputs(inputs):
        with open_frames(path) as stack:
            n = len(stack)
        if n > 1:
            return list(islice(FrameSeries([path]), limit))
        if len(singles) < limit:
            singles += FrameSeries([path])
    odd = [f for f in singles if key(f) != key(singles[0])]
    if odd:
        a, b = singles[0], odd[0]
        raise ValueError(
            f"{purpose} takes frames of one series, and {a.meta['path']} ({a.image.shape[1]} x "
            f"{a.image.shape[0]} px, {a.pixel_size}, detector {a.meta.get('detector')}) and "
            f"{b.meta['path']} ({b.image.shape[1]} x {b.image.shape[0]} px, {b.pixel_size}, "
            f"detector {b.meta.get('detector')}) differ; give one series at a time")
    return singles


def _calibrate(inputs: list[str], dark: list[str] | None, target: Path) -> Any:
    """Fit gain and offset on the inputs' first frames (and ``dark``), save it only once the fit
    is good."""
    from mcnn.data.series import FrameSeries
    from mcnn.stem.calibration import fit_noise
    from mcnn.stem.normalise import check_frame_shape

    series = one_series(inputs, 16, "--save-calibration")
    frames = [f.image for f in series]
    sources = [f"{f.meta['path']}[{f.meta['index_in_file']}]" for f in series]
    darks = []
    for f in FrameSeries(dark or []):
        check_frame_shape(f.image.shape, f"--dark {f.meta['path']}[{f.meta['index_in_file']}]")
        darks.append(f.image)
    cal = fit_noise(frames, dark=darks or None, sources=sources)
    cal.save(target)
    log.info("calibration from %d frame(s) (%s): gain %.4g counts/e, offset %.6g counts, read noise "
             "%.3g counts -> %s", len(frames), cal.method, cal.gain_counts_per_e,
             cal.offset_counts, cal.read_noise_counts, target)
    return cal


def _adapt(args: argparse.Namespace, predictor: Any, calibration: Any,
           training: dict[str, Any] | None, grids: dict[str, Any]) -> None:
    """Self-supervised fine-tuning on the inputs (``mcnn.stem.adapt``), saved when asked; on the
    model's grid when frames are resampled (``grids``: input path -> resampling or None)."""
    from mcnn.data.series import FrameSeries
    from mcnn.stem.adapt import adapt, row_noise_span
    from mcnn.stem.normalise import frame_to_model_units
    from mcnn.weights import save_model

    if args.adapt_loss == "noise2noise":  # pairs consecutive frames: they must show one field
        chosen = one_series(args.inputs, 32, "--adapt-loss noise2noise")
    else:  # single frames: any inputs
        chosen = []
        for f in FrameSeries(args.inputs):
            chosen.append(f)
            if len(chosen) == 32:
                break
    frames = [frame_to_model_units(f.image, calibration=calibration,
                                   dose_e_per_px=args.dose_e_per_px,
                                   resampling=grids.get(f.meta["path"]))[0] for f in chosen]
    span = None
    if args.adapt_loss == "blind_spot":
        span = args.adapt_span if args.adapt_span is not None else row_noise_span(frames)
    history = adapt(predictor.model, frames, loss=args.adapt_loss, steps=args.adapt_steps,
                    lr=args.adapt_lr, span_px=span, device=predictor.device)
    tenth = max(1, len(history) // 10)
    loss_start, loss_end = float(np.mean(history[:tenth])), float(np.mean(history[-tenth:]))
    log.info("adapted on %d frame(s) from %s for %d steps (%s%s)", len(frames),
             ", ".join(sorted({f.meta["path"] for f in chosen})), args.adapt_steps,
             args.adapt_loss, "" if span is None else f", row span {span} px")
    if loss_end > loss_start:
        log.warning("the self-supervised loss rose during adaptation (%.4g -> %.4g, first and last "
                    "tenth of the steps): it may not help these frames; compare outputs with and "
                    "without it, or lower --adapt-lr", loss_start, loss_end)
    if args.save_adapted is not None:
        args.save_adapted.parent.mkdir(parents=True, exist_ok=True)
        save_model(predictor.model, args.save_adapted, training)
        args.save_adapted.with_suffix(".adaptation.json").write_text(json.dumps({
            "base": str(args.checkpoint), "loss": args.adapt_loss, "steps": args.adapt_steps,
            "lr": args.adapt_lr, "span_px": span, "frames": len(frames),
            "frames_from": sorted({f.meta["path"] for f in chosen}),
            "loss_first_tenth": loss_start, "loss_last_tenth": loss_end,
            "calibration": None if calibration is None else calibration.model_dump(),
            "inputs": list(args.inputs),
        }, indent=2) + "\n")


def write_stack(path: Path, frames: Iterator[np.ndarray], n: int, shape: tuple[int, int],
                pixel_size: Any) -> None:
    """Frames streamed into one float32 TIFF (ImageJ, with the pixel size) under a temporary
    name, fsynced and renamed: never more than one frame in memory, never half a file."""
    import tifffile

    tmp = path.with_name(path.name + ".tmp")
    kwargs: dict[str, Any] = {}
    if pixel_size is not None:
        unit = "micron" if pixel_size.unit == "um" else pixel_size.unit
        kwargs = {"resolution": (1.0 / pixel_size.x, 1.0 / pixel_size.y),
                  "metadata": {"unit": unit, "axes": "TYX" if n > 1 else "YX"}}
    else:
        kwargs = {"metadata": {"axes": "TYX" if n > 1 else "YX"}}
    big = n * shape[0] * shape[1] * 4 > 2**31
    try:
        with tifffile.TiffWriter(tmp, imagej=not big, bigtiff=big) as tw:
            if big:
                kwargs.pop("metadata", None)
            tw.write(frames, shape=(n, *shape) if n > 1 else shape, dtype="float32", **kwargs)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(attach_negative_values(argv, SIGNED_VALUE_FLAGS))
    setup_logging(args.verbose)

    def body() -> int:
        from tqdm import tqdm

        from mcnn.data.image_io import ImageFileError, open_frames
        from mcnn.data.series import expand_inputs
        from mcnn.infer import Predictor
        from mcnn.stem.normalise import (
            acquisition_warnings,
            check_frame_shape,
            dose_label,
            frame_to_model_units,
            from_model_units,
            input_grid_units,
            to_model_units,
            training_dose_ceiling,
        )
        from mcnn.utils.atomic import atomic_path

        if args.batch_size < 1:
            raise ValueError(f"--batch-size {args.batch_size}: must be >= 1")
        if args.adapt_span is not None and not 0 <= args.adapt_span <= 32:
            raise ValueError(f"--adapt-span {args.adapt_span}: must be 0-32 px")
        if args.adapt_steps < 0:
            raise ValueError(f"--adapt-steps {args.adapt_steps}: must be >= 0 (0: no adaptation)")
        for option, value in (("--save-adapted", args.save_adapted),
                              ("--adapt-span", args.adapt_span)):
            if value is not None and args.adapt_steps == 0:
                raise ValueError(f"{option}: only with --adapt-steps N (adaptation is off)")
        check_unit_arguments(args)
        if not args.inputs and args.watch is None:
            raise ValueError("no inputs: give files or folders, or --watch FOLDER")
        if args.idle_exit is not None and (args.watch is None or not args.idle_exit > 0):
            raise ValueError(f"--idle-exit {args.idle_exit}: takes seconds > 0, with --watch")
        if args.watch is not None and not args.watch.is_dir():
            raise ValueError(f"{args.watch}: --watch needs a folder")
        for option, needs in (("--save-calibration", args.save_calibration),
                              ("--adapt-steps", args.adapt_steps or None)):
            if needs is not None and not args.inputs:
                raise ValueError(f"{option}: fits on the inputs' frames; give the files to fit on "
                                 "(with --watch, they are denoised first)")
        pixel_size = None if args.pixel_size is None else parse_pixel_size(args.pixel_size)
        files = expand_inputs(args.inputs)
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"{args.out}: exists and is not a folder; -o takes an output folder")
        if args.watch is not None and args.out.resolve() == args.watch.resolve():
            raise ValueError(f"{args.out}: -o is the watched folder, so every output would be "
                             "denoised again; write the outputs elsewhere (a subfolder is fine)")
        args.out.mkdir(parents=True, exist_ok=True)
        if not os.access(args.out, os.W_OK):
            raise PermissionError(f"{args.out}: output folder is not writable")
        calibration = load_calibration(args.calibration)
        predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device,
                                              tile_size=args.tile, overlap=args.overlap,
                                              flip_ensemble=args.flip_ensemble)
        check_stem_model(predictor, args.checkpoint)
        training = predictor.training_data
        sim = (training or {}).get("simulator") or {}
        if training is None:
            log.warning("%s records no training data: cannot check units or pixel size",
                        args.checkpoint)
        elif sim.get("name") != "stem":
            log.warning("%s was trained on %r data, not STEM frames", args.checkpoint,
                        sim.get("name"))
        model_pm = sim.get("pixel_size_pm")
        if args.resample == "on" and not model_pm:
            raise ValueError(f"{args.checkpoint}: --resample needs the model's training pixel "
                             "size and the checkpoint records no data.simulator.pixel_size_pm "
                             "(train with --set data.simulator.pixel_size_pm=<pm>)")
        warnings_of = FileWarnings(log)
        grids: dict[str, Any] = {}  # input path -> FrameResampling (None: not resampled)
        frames_in: dict[str, int] = {}

        def check(f: Path) -> None:
            """One file usable as a whole (greyscale frames of a STEM size, readable to its last
            frame when watched, resampling planned) before any of its output is written."""
            with open_frames(f) as stack:
                if stack.axes.endswith("C"):
                    raise ImageFileError(f"{f}: colour image; expected greyscale frames")
                check_frame_shape(stack.frame_shape, f)
                if args.watch is not None and f.parent == args.watch:
                    stack.frame(len(stack) - 1)  # a file still being written fails here
                frames_in[str(f)] = len(stack)
                for w in acquisition_warnings(stack.meta):
                    warnings_of.warn(f, None, w)
                ps = pixel_size or stack.pixel_size
                grid = plan_resampling(
                    f, stack.frame_shape[:2], ps, model_pm, args.resample,
                    frame_dose=lambda: first_frame_dose(stack.frame(0), calibration,
                                                        args.dose_e_per_px),
                    dose_ceiling=training_dose_ceiling(training))
            grids[str(f)] = grid
            for w in pixel_size_notes(ps, grid, model_pm, args.resample):
                warnings_of.warn(f, None, w)

        for f in files:  # every input checked before any output (or calibration) is written
            check(f)
        if calibration is None and args.save_calibration is not None:
            calibration = _calibrate(args.inputs, args.dark, args.save_calibration)
        if args.adapt_steps > 0:
            _adapt(args, predictor, calibration, training, grids)
        names: set[str] = set()
        record: list[dict[str, Any]] = []
        compare_done = args.compare is None
        figure_s = 0.0  # --compare's figure (BM3D included): not part of the denoising rate
        denoise_s = 0.0  # time in denoise_file: a watch's idle time is not in the rate
        done = 0  # frames of the files written

        def denoise_file(path: Path, target: Path, bar: Any) -> None:
            """One input file -> one float32 TIFF stack, frame by frame, in the input's units."""
            nonlocal compare_done, done, figure_s, denoise_s
            t_file = time.perf_counter()
            with open_frames(path) as stack:
                n = len(stack)
                ps = pixel_size or stack.pixel_size
                grid = grids[str(path)]
                # (model input, its units, the frame as stored when the figure needs it)
                pending: deque[tuple[np.ndarray, Any, np.ndarray | None]] = deque()
                per_frame: list[dict[str, Any]] = []

                def inputs() -> Iterator[np.ndarray]:
                    for i in range(len(stack)):
                        raw = stack.frame(i)
                        x, units, warnings = frame_to_model_units(
                            raw, pixel_size=ps, training_data=training,
                            calibration=calibration, dose_e_per_px=args.dose_e_per_px,
                            resampling=grid)
                        for w in warnings:
                            warnings_of.warn(path, i, w)
                        keep = raw if grid is not None and not compare_done else None
                        pending.append((x, units, keep))
                        entry = {"index_in_file": i, **units.as_dict()}
                        if grid is not None:
                            entry["dose_e_per_input_px"] = \
                                input_grid_units(units, grid).dose_e_per_px
                        per_frame.append(entry)
                        yield x

                def outputs() -> Iterator[np.ndarray]:
                    nonlocal compare_done, figure_s
                    for y in predictor.stream(inputs(), batch_size=args.batch_size):
                        x, units, raw = pending.popleft()
                        if not compare_done:
                            t_figure = time.perf_counter()
                            # the input's grid, as without --resample
                            shown_units = input_grid_units(units, grid)
                            raw_x = x if raw is None else to_model_units(raw, shown_units)
                            note = "" if grid is None else \
                                f", denoised at {grid.pixel_size_model_pm:g} pm"
                            compare_figure(args.compare, raw_x,
                                           from_model_units(y, units, "model", grid), ps,
                                           f"{Path(str(path).split('#')[0]).name}, frame 0, "
                                           f"{dose_label(shown_units)}{note}")
                            compare_done = True
                            figure_s = time.perf_counter() - t_figure
                        bar.update(1)
                        yield from_model_units(y, units, args.output_units, grid)

                write_stack(target, outputs(), n, stack.frame_shape[:2], ps)
                detector, how = stack.meta.get("detector"), stack.meta.get("acquisition")
            done += n
            denoise_s += time.perf_counter() - t_file
            record[:] = [r for r in record if r["input"] != str(path)]  # a watched file that grew
            record.append({"input": str(path), "output": str(target), "frames": n,
                           "pixel_size": None if ps is None else
                           {"y": ps.y, "x": ps.x, "unit": ps.unit},
                           "detector": detector, "acquisition": how,
                           "resample": None if grid is None else {
                               "factor_yx": [round(v, 6) for v in grid.factor_yx],
                               "model_pixel_size_pm": grid.pixel_size_model_pm,
                               "model_shape_px": list(grid.shape_model_px),
                               "electrons_scale": round(grid.electrons_scale, 6)},
                           "frames_units": per_frame})
            if args.watch is not None:  # a long watch keeps its record as it goes
                save_summary(summary_now())

        def summary_now(failed: list[str] | None = None) -> dict[str, Any]:
            elapsed = denoise_s - figure_s
            summary = {"frames": sum(r["frames"] for r in record), "seconds": round(elapsed, 3),
                       "frames_per_s": round(done / elapsed, 3) if elapsed > 0 else None,
                       "figure_s": round(figure_s, 3),
                       "output_units": args.output_units, "flip_ensemble": args.flip_ensemble,
                       **warnings_of.summary(),
                       "calibration": None if calibration is None else calibration.model_dump(),
                       "compare": None if args.compare is None else str(args.compare),
                       "outputs": [{k: v for k, v in r.items() if k != "frames_units"}
                                   for r in record]}
            if args.watch is not None:
                summary["watch"] = {"folder": str(args.watch), "failed": failed or []}
            return summary

        def save_summary(summary: dict[str, Any]) -> None:
            """stem-denoise.json: the summary and every file's per-frame units (atomic)."""
            with atomic_path(args.out / "stem-denoise.json") as tmp:
                tmp.write_text(json.dumps({**summary, "files": record}, indent=2) + "\n")

        total = sum(frames_in.values())
        failed: list[str] = []
        with tqdm(total=total or None, unit="frame", disable=None, file=sys.stderr) as bar:
            for path, target in zip(files, output_paths(files, args.out, names), strict=True):
                denoise_file(path, target, bar)
            if args.watch is not None:
                failed = _watch(args, files, check, names, frames_in, denoise_file, bar)
        summary = summary_now(failed)
        log.info("%d frame(s) in %.2f s (%s frames/s)%s", done, summary["seconds"],
                 summary["frames_per_s"],
                 f"; the --compare figure took {figure_s:.2f} s more" if figure_s else "")
        save_summary(summary)
        print(json.dumps(summary, indent=2))
        if failed:
            raise ValueError(f"{len(failed)} watched file(s) could not be used (each is named "
                             "above); every other file was written")
        return 0

    def body_leaving_no_empty_output() -> int:
        """A run refused before it wrote anything leaves no empty output folder behind."""
        created = not args.out.exists()
        try:
            return body()
        except BaseException:
            if created and args.out.is_dir() and not any(args.out.iterdir()):
                args.out.rmdir()
            raise

    return run_cli(PROG, body_leaving_no_empty_output)


WATCH_POLL_S = 0.5


def _watch(args: argparse.Namespace, given: list[Path], check: Any, names: set[str],
           frames_in: dict[str, int], denoise_file: Any, bar: Any) -> list[str]:
    """Denoise each file that becomes complete in ``--watch`` (files already there first, except
    those given as inputs), until Ctrl-C, ``--idle-exit`` or the folder going away; a file that
    cannot be used is reported in one line and skipped, and the watch goes on. Returns those
    lines."""
    from acquire.sources.base import SourceError
    from acquire.sources.watch import FolderWatcher

    failed: list[str] = []
    done_already = {p.resolve() for p in given}
    targets: dict[Path, Path] = {}  # a file that grows after it was denoised is denoised anew
    watcher = FolderWatcher(args.watch, accept=check, max_retries=3)
    log.info("watching %s for new frames (Ctrl-C to stop%s)", args.watch,
             "" if args.idle_exit is None else f", or {args.idle_exit:g} s without a new file")
    last_new = time.monotonic()
    try:
        while True:
            for path in watcher.poll():
                last_new = time.monotonic()
                if path.resolve() in done_already:
                    continue
                if path not in targets:
                    (targets[path],) = output_paths([path], args.out, names)
                target = targets[path]
                bar.total = (bar.total or 0) + frames_in[str(path)]
                bar.refresh()
                try:
                    denoise_file(path, target, bar)
                except (ValueError, OSError, RuntimeError) as exc:  # the watch goes on
                    failed.append(str(exc).splitlines()[0] if str(exc) else str(path))
                    log.error("%s", failed[-1])
            if watcher.pending:
                last_new = time.monotonic()  # a file is still being written: not idle
            if args.idle_exit is not None and time.monotonic() - last_new >= args.idle_exit:
                log.info("no new file in %s for %g s: stopping", args.watch, args.idle_exit)
                break
            time.sleep(WATCH_POLL_S)
    except KeyboardInterrupt:
        log.info("stopped watching %s (Ctrl-C); every finished output is kept", args.watch)
    except SourceError as exc:  # the folder was deleted or unmounted
        failed.append(str(exc))
        log.error("%s; stopping the watch", exc)
    return failed + watcher.skipped


if __name__ == "__main__":
    sys.exit(main())

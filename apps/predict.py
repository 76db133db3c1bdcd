"""mcnn-predict: run a trained MCNN on image files (PNG/TIFF/NPY, single images or stacks)."""

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
from typing import TYPE_CHECKING, Any

import numpy as np

from apps.cli import OneLineArgumentParser, attach_negative_values, run_cli, setup_logging
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
    unit_arguments_given,
)

if TYPE_CHECKING:
    from mcnn.data.image_io import PixelSize, RawImage

PROG = "mcnn-predict"
log = logging.getLogger(PROG)

EPILOG = """\
Pixel values follow one policy (mcnn.data.image_io): 8- and 16-bit unsigned images are scaled to
[0, 1], wider or signed integers are kept as counts, floats are used as they are; NaN/Inf pixels
are refused. A model trained on the STEM simulator takes frames in its own units instead, exactly
as stem-denoise does: x = (counts - offset) / gain / dose, offset and gain from --calibration (else
estimated from each frame), dose from --dose-e-per-px (else each frame's mean), and the output back
in the input's counts (--output-units), frames with pixels more than 1.5x finer than the model's
denoised at its pixel size (--resample: every frame; --no-resample: none); frames whose dose or
pixel size is far from the training data are warned about (and listed in the summary's
"warnings"). A 3-D TIFF/NPY is a stack of frames and its output is a stack too; when the model takes
C > 1 input channels, a C-frame stack is read as one C-channel image (e.g. C defocus distances).
Outputs keep the input's stem: float32 TIFF by default (quantitative values such as phase in rad are
kept exactly; the input's pixel size, divided by the model's output scale, is written too), or NPY,
or 16-bit PNG clipped to [0, 1] (one PNG per frame, stem_0000.png, for stacks).
Frames that do not fit the memory budget (or every frame, with --tile) run tiled with overlap
blending. Prints a JSON summary on stdout. Exit codes: 0 ok, 2 user error, 1 failure."""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog=PROG,
        description="Predict with a trained MCNN: image files in, image files out (same stems).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, help="run folder, checkpoint folder or model.safetensors")
    p.add_argument("inputs", type=Path, nargs="+", help="image files and/or folders of images")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--format", choices=["tif", "npy", "png"], default="tif",
                   help="output format (default tif: float32)")
    p.add_argument("--tile", type=int, metavar="N", help="tile size in input px (multiple of 2**depth)")
    p.add_argument("--overlap", type=int, default=64, metavar="N",
                   help="tile overlap in input px (default 64)")
    p.add_argument("--batch-size", type=int, default=4, metavar="N",
                   help="frames per forward pass (default 4)")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto = fp32 (bf16 autocast was slower than fp32 on an H100; on CPUs with "
                   "native bf16 it can be 1.2-1.6x faster)")
    p.add_argument("--memory-mb", type=float, metavar="MB",
                   help="memory one forward pass may use (default: 60%% of free device memory)")
    p.add_argument("--flip-ensemble", action="store_true",
                   help="average the model over each frame and its three mirror images (4x the "
                   "compute); only for models trained on the stem, defocus or laplacian "
                   "simulators, whose tasks commute with mirroring")
    p.add_argument("--channels-last", action="store_true",
                   help="read 3-D TIFF/NPY as (H, W, C) images, not as stacks of frames")
    add_unit_arguments(p)
    add_pixel_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


MIRROR_SYMMETRIC_SIMULATORS = ("stem", "defocus", "laplacian")


def check_mirror_symmetric(training: dict[str, Any] | None, checkpoint: Path) -> None:
    """--flip-ensemble averages over mirror images, which is right only for a task that commutes
    with mirroring; a camera-to-screen map (or data we cannot see) does not, so it is refused."""
    sim = ((training or {}).get("simulator") or {}).get("name")
    if sim in MIRROR_SYMMETRIC_SIMULATORS:
        return
    what = f"{sim!r} simulator data" if sim else (
        f"{(training or {}).get('kind')!r} data" if training else "data it does not record")
    raise ValueError(f"--flip-ensemble: {checkpoint} was trained on {what}, whose mapping may not "
                     "commute with mirroring; only for models of the "
                     f"{', '.join(MIRROR_SYMMETRIC_SIMULATORS)} simulators")


def input_files(inputs: list[Path]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted)."""
    from mcnn.data.image_io import list_images

    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise ValueError(f"{path}: no PNG/TIFF/NPY/JPEG images in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return files


def output_paths(files: list[Path], out_dir: Path, suffix: str) -> list[Path]:
    """``out_dir/stem.suffix`` per input; two inputs with one stem, or overwriting an input, is an error."""
    targets: dict[Path, Path] = {}
    sources = {f.resolve() for f in files}
    for f in files:
        target = out_dir / f"{f.stem}.{suffix}"
        if target in targets:
            raise ValueError(f"{f}: same stem as {targets[target]}; both would write {target}")
        if target.resolve() in sources:
            raise ValueError(f"{f}: the output {target} would overwrite an input; choose another -o")
        targets[target] = f
    return list(targets)


def check_output_folder(out: Path) -> None:
    """Create ``out`` and prove it is writable before any work, so a bad -o costs nothing."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: -o must be a folder, but this is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".mcnn-predict-{os.getpid()}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{out}: cannot write predictions here ({exc.strerror or exc})") from None


def report(exc: BaseException) -> None:
    """One ``mcnn-predict: error: ...`` line per bad input, as it is met."""
    print(f"{PROG}: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
          file=sys.stderr)


def as_model_input(frames: np.ndarray, path: Path, in_channels: int) -> np.ndarray:
    """``(N, C, H, W)`` frames as the model's channels; a C-frame stack is one C-channel image."""
    n, c = frames.shape[:2]
    if c == in_channels:
        return frames
    if c == 1 and n == in_channels:
        return frames.transpose(1, 0, 2, 3)
    what = f"{c} channels" if c > 1 or n == 1 else f"a stack of {n} single-channel frames"
    raise ValueError(f"{path}: {what} but the model expects {in_channels}")


def stored_frames(raw: RawImage, channels_last: bool) -> np.ndarray:
    """``(N, H, W)`` greyscale frames as stored (detector counts, dtype kept), for a STEM model."""
    a, axes = raw.data, raw.axes
    if channels_last and a.ndim == 3 and a.shape[-1] == 1:
        a, axes = a[..., 0], "YX"
    if axes == "NCYX" and a.shape[1] == 1:
        a, axes = a[:, 0], "NYX"
    if axes == "YX":
        a = a[None]
    elif axes != "NYX":
        raise ValueError(f"{raw.path}: {a.ndim}-D image with axes {axes!r}; a STEM model takes "
                         "greyscale frames (H, W) or stacks (N, H, W)")
    if not np.issubdtype(a.dtype, np.integer) and not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{raw.path}: pixel type {a.dtype}; expected detector counts")
    if np.issubdtype(a.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(a)))
        if bad:
            raise ValueError(f"{raw.path}: {bad} of {a.size} pixels are NaN or infinite; "
                             "expected finite values")
    return a


def write_output(target: Path, y: np.ndarray, pixel_size: PixelSize | None = None) -> list[Path]:
    """``(N, C, H, W)`` predictions of one file: a stack stays a stack (PNG: one file per frame).

    ``pixel_size`` is that of the output grid (TIFF only)."""
    from mcnn.data.image_io import write_image

    if len(y) == 1:
        return [write_image(target, y[0], pixel_size)]
    if target.suffix == ".png":
        return [write_image(target.with_name(f"{target.stem}_{i:04d}.png"), f)
                for i, f in enumerate(y)]
    return [write_image(target, y, pixel_size)]


def output_pixel_size(pixel_size: PixelSize | None, in_h: int, out_h: int) -> PixelSize | None:
    """The input's pixel size on the output grid (output scale s: pixels s times smaller)."""
    return None if pixel_size is None else pixel_size.scaled(out_h / in_h)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(attach_negative_values(argv, SIGNED_VALUE_FLAGS))
    setup_logging(args.verbose)

    def body() -> int:
        from tqdm import tqdm

        from mcnn.data.image_io import read_raw, to_nchw
        from mcnn.infer import Predictor
        from mcnn.stem.normalise import (
            FrameUnits,
            acquisition_warnings,
            check_frame_shape,
            frame_to_model_units,
            from_model_units,
            is_stem_training,
            training_dose_ceiling,
        )

        if args.batch_size < 1:
            raise ValueError(f"--batch-size {args.batch_size}: must be >= 1")
        # named apart from the per-file sizes below: one name for both gave later files the size
        # of the first file written
        pixel_size_given = None if args.pixel_size is None else parse_pixel_size(args.pixel_size)
        files = input_files(args.inputs)
        targets = output_paths(files, args.out, args.format)
        check_output_folder(args.out)
        predictor = Predictor.from_checkpoint(
            args.checkpoint, device=args.device, precision=args.precision, tile_size=args.tile,
            overlap=args.overlap, memory_budget_mb=args.memory_mb, flip_ensemble=args.flip_ensemble,
        )
        if args.flip_ensemble:
            check_mirror_symmetric(predictor.training_data, args.checkpoint)
        cin = predictor.config.in_channels
        training = predictor.training_data
        stem = is_stem_training(training)
        if not stem and unit_arguments_given(args):
            sim = ((training or {}).get("simulator") or {}).get("name")
            raise ValueError(f"{unit_arguments_given(args)[0]}: only for a model trained on STEM "
                             f"frames; {args.checkpoint} was trained on "
                             f"{'unrecorded' if sim is None else repr(sim)} data")
        calibration = None
        if stem:
            check_stem_model(predictor, args.checkpoint)
            check_unit_arguments(args)
            calibration = load_calibration(args.calibration)
        model_pm = ((training or {}).get("simulator") or {}).get("pixel_size_pm")
        if args.resample == "on" and not model_pm:
            raise ValueError(f"{args.checkpoint}: --resample needs the model's training pixel "
                             "size and the checkpoint records no data.simulator.pixel_size_pm")
        # STEM: per frame in flight, its units and resampling, to invert its output
        units_of: deque[tuple[FrameUnits, Any]] = deque()
        warnings_of = FileWarnings(log)

        def stem_input(raw: RawImage, path: Path) -> tuple[np.ndarray, int]:
            """``(N, 1, H, W)`` frames in the model's units (on its pixel grid when resampled),
            their units queued in order; and the input's frame height."""
            xs, units = [], []
            notes: list[tuple[int | None, str]] = []
            grid = None
            for i, counts in enumerate(stored_frames(raw, args.channels_last)):
                check_frame_shape(counts.shape, path)
                if i == 0:
                    grid = plan_resampling(
                        path, counts.shape[:2], raw.pixel_size, model_pm, args.resample,
                        frame_dose=lambda first=counts: first_frame_dose(first, calibration,
                                                                         args.dose_e_per_px),
                        dose_ceiling=training_dose_ceiling(training))
                    notes += [(None, w) for w in pixel_size_notes(raw.pixel_size, grid, model_pm,
                                                                  args.resample)]
                x, u, warnings = frame_to_model_units(
                    counts, pixel_size=raw.pixel_size, training_data=training,
                    calibration=calibration, dose_e_per_px=args.dose_e_per_px, resampling=grid)
                xs.append(x)
                units.append((u, grid))
                notes += [(i, w) for w in warnings]
                height = counts.shape[0]
            notes += [(None, w) for w in acquisition_warnings(raw.meta)]
            for index, w in notes:  # only once the whole file could be used
                warnings_of.warn(path, index, w)
            units_of.extend(units)
            return np.stack(xs)[:, None], height

        # per good file, once read: (target, frame count, input pixel size, input height)
        good: list[tuple[Path, int, PixelSize | None, int]] = []
        failed: list[str] = []

        def frames() -> Iterator[np.ndarray]:
            for path, target in zip(files, targets, strict=True):
                try:
                    raw = read_raw(path)
                    if pixel_size_given is not None:
                        raw.pixel_size = pixel_size_given
                    if stem:
                        x, in_h = stem_input(raw, path)
                    else:
                        x = as_model_input(to_nchw(raw, args.channels_last or None), path, cin)
                        in_h = x.shape[-2]
                except (ValueError, OSError) as exc:  # one bad file does not stop the others
                    failed.append(str(path))
                    report(exc)
                    continue
                good.append((target, len(x), raw.pixel_size, in_h))
                yield from x

        start = time.perf_counter()
        written: list[str] = []
        pending: list[np.ndarray] = []
        done = 0  # good files written
        with tqdm(total=len(files), unit="file", disable=True if len(files) < 2 else None) as bar:
            # frames of consecutive files share batches; outputs come back in input order
            for y in predictor.stream(frames(), batch_size=args.batch_size):
                if stem:
                    units, grid = units_of.popleft()  # STEM models are 1 -> 1 channel
                    y = from_model_units(y[0], units, args.output_units, grid)[None]
                pending.append(y)
                while done < len(good) and len(pending) >= good[done][1]:
                    target, k, file_pixel_size, in_h = good[done]
                    y_file = np.stack(pending[:k])
                    px = output_pixel_size(file_pixel_size, in_h, y_file.shape[-2])
                    written += [str(p) for p in write_output(target, y_file, px)]
                    del pending[:k]
                    done += 1
                    bar.update(1)
        seconds = time.perf_counter() - start
        print(json.dumps({"written": written, "files": len(files), "failed": failed,
                          "frames": sum(g[1] for g in good), "device": str(predictor.device),
                          "seconds": round(seconds, 3),
                          "units": f"stem ({args.output_units})" if stem else "image policy",
                          "flip_ensemble": args.flip_ensemble, **warnings_of.summary()}))
        if failed and len(files) == 1:
            return 2  # its one error line says it all
        if failed:
            raise ValueError(f"{len(failed)} of {len(files)} input files could not be used "
                             "(each is named above); the others were written")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())

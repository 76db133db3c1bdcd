"""mcnn-phase: phase (and amplitude) from a through-focus series, with the network or classical
baselines, and a benchmark of both on held-out simulated series."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from apps.cli import run_cli, setup_logging

PROG = "mcnn-phase"

EPILOG = """\
A series is a TIFF/NPY stack (one frame per plane), a folder of images (one per plane, sorted by
name) or an HDF5 file. Its physics comes from --manifest (YAML/JSON: wavelength_um, pixel_size_um,
defocus_um, medium_index, files, dataset, flat_field, dark, normalise, register_planes,
ground_truth; paths relative to the manifest) and/or the flags, which win. The pixel size may also
come from the TIFF's resolution tags. Each plane is divided by its mean (normalise: per_plane).

A model is refused on a series recorded with other physics than it was trained for (wavelength,
pixel size, medium index, distances; --tolerance, default 1%), in one line naming each value:
--resample resamples the pixels to the model's size, --allow-mismatch runs it anyway. Planes are
matched by distance, so a +-z model runs on a longer series that contains +-z.

Outputs: STEM_phase.tif (float32 rad, with the pixel size), STEM_amplitude.tif (models that
predict it), STEM_phase.png (colour bar in rad, scale bar in um); compare writes compare.png (one
colour scale, error maps with a ground truth) and metrics.json. Exit codes: 0 ok, 2 user error."""


def add_series_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("series", type=Path, help="TIFF/NPY stack, folder of plane images, or HDF5")
    p.add_argument("--manifest", type=Path, help="YAML/JSON with the series' physics")
    p.add_argument("--wavelength-um", type=float, help="wavelength in vacuum, um")
    p.add_argument("--pixel-size-um", type=float, help="pixel pitch at the sample, um")
    p.add_argument("--defocus-um", type=float, nargs="+", help="each plane's distance, um")
    p.add_argument("--medium-index", type=float, help="refractive index of the medium (1)")
    p.add_argument("--dataset", help="HDF5 dataset path")
    p.add_argument("--flat-field", help="reference image(s) without object")
    p.add_argument("--dark", help="dark image(s), subtracted first")
    p.add_argument("--normalise", choices=["per_plane", "series", "none"])
    p.add_argument("--register", action="store_true", help="sub-pixel registration of planes")
    p.add_argument("--ground-truth", help="known phase map (rad) to score against")


def add_model_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-mismatch", action="store_true",
                   help="run the model even if the series' physics differ from its training")
    p.add_argument("--resample", action="store_true",
                   help="resample the series to the model's pixel size")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="relative tolerance of the physics check (default 0.01)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="phase (+ amplitude) of a series with a trained model",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("checkpoint", type=Path, help="run folder, checkpoint folder or .safetensors")
    add_series_arguments(pr)
    add_model_check_arguments(pr)
    pr.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    co = sub.add_parser("compare", help="the network(s) and the classical baselines side by side",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_series_arguments(co)
    co.add_argument("-m", "--model", type=Path, action="append", default=[],
                    help="a trained model (repeatable)")
    co.add_argument("--methods", nargs="*", default=["fft_tie", "multiplane_tie", "gs"],
                    help="classical baselines (fft_tie, multiplane_tie, gs; default all)")
    co.add_argument("--regularization", type=float, default=0.1,
                    help="Tikhonov weight of the TIE solves (default 0.1)")
    co.add_argument("--gs-iterations", type=int, default=30, help="GS sweeps (default 30)")
    add_model_check_arguments(co)
    co.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    be = sub.add_parser("bench", help="benchmark on held-out simulated series (JSON + figure)")
    be.add_argument("--settings", type=Path, help="YAML/JSON of PhaseBenchSettings")
    be.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting, e.g. train_steps=200")
    be.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    si = sub.add_parser("simulate", help="write a simulated series (TIFF + manifest + truth)")
    si.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    si.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"))
    si.add_argument("--content", choices=["procedural", "bundled"], default="procedural")
    si.add_argument("--seed", type=int, default=0)
    si.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a DefocusConfig field, e.g. defocus_um=[-20,0,20] or photons_per_px=1000")
    for sp in (pr, co, be, si):
        sp.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def series_from_args(args: argparse.Namespace) -> Any:
    from mcnn.phase.series import load_series

    values = {"wavelength_um": args.wavelength_um, "pixel_size_um": args.pixel_size_um,
              "defocus_um": args.defocus_um, "medium_index": args.medium_index,
              "dataset": args.dataset, "flat_field": args.flat_field, "dark": args.dark,
              "normalise": args.normalise, "register_planes": args.register or None,
              "ground_truth": args.ground_truth}
    return load_series(args.series, args.manifest, **values)


def _model_label(path: Path) -> str:
    """The run's name: ``runs/NAME/checkpoints/best/model.safetensors`` -> NAME."""
    skip = {"model.safetensors", "best", "last", "checkpoints"}
    parts = [q for q in reversed(path.parts) if q not in skip]
    return parts[0] if parts else str(path)


def _stem(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def predict(args: argparse.Namespace) -> int:
    from mcnn.data.image_io import PixelSize, write_image
    from mcnn.infer import Predictor
    from mcnn.phase.compare import run_network
    from mcnn.phase.figures import save_phase_png

    series = series_from_args(args)
    predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device)
    result = run_network(predictor, series, tolerance=args.tolerance,
                         allow_mismatch=args.allow_mismatch, resample=args.resample)
    px = PixelSize(series.pixel_size_um, series.pixel_size_um)
    stem = _stem(args.series)
    written = [write_image(args.out / f"{stem}_phase.tif", result.phase[None], px)]
    if result.amplitude is not None:
        written.append(write_image(args.out / f"{stem}_amplitude.tif", result.amplitude[None], px))
    written.append(save_phase_png(result.phase, series.pixel_size_um,
                                  args.out / f"{stem}_phase.png",
                                  f"{stem}: phase (planes {list(result.defocus_um)} um)"))
    print(json.dumps({"written": [str(p) for p in written], "defocus_um": list(result.defocus_um),
                      "pixel_size_um": series.pixel_size_um, "seconds": round(result.seconds, 4),
                      "mismatches_allowed": list(result.mismatches)}))
    return 0


def compare(args: argparse.Namespace) -> int:
    import numpy as np

    from mcnn.infer import Predictor
    from mcnn.phase.compare import format_table, metrics, run_baseline, run_network
    from mcnn.phase.figures import save_comparison

    series = series_from_args(args)
    results = []
    for path in args.model:
        predictor = Predictor.from_checkpoint(path, device=args.device)
        label = _model_label(path)
        name = label if label.lower().startswith("mcnn") else f"MCNN {label}"
        results.append(run_network(predictor, series, name, tolerance=args.tolerance,
                                   allow_mismatch=args.allow_mismatch, resample=args.resample,
                                   warmup=True))
    for method in args.methods:
        options: dict[str, Any] = {"regularization": args.regularization}
        if method == "gs":
            options["iterations"] = args.gs_iterations
        results.append(run_baseline(method, series, **options))
    if not results:
        raise ValueError("nothing to compare: give --model and/or --methods")
    rows = metrics(results, series.ground_truth)
    args.out.mkdir(parents=True, exist_ok=True)
    subtitles = {r.name: f"{_planes_label(r.defocus_um)}, {1000 * r.seconds:.0f} ms"
                 for r in results}
    shown = int(np.argmax(np.abs(series.defocus_um)))  # the most defocused plane
    intensity = (f"recorded, z = {series.defocus_um[shown]:+g} µm", series.intensities[shown])
    figure = save_comparison({r.name: r.phase for r in results}, series.pixel_size_um,
                             args.out / "compare.png", series.ground_truth, subtitles, intensity)
    (args.out / "metrics.json").write_text(json.dumps(
        {"series": str(args.series), "wavelength_um": series.wavelength_um,
         "pixel_size_um": series.pixel_size_um, "defocus_um": list(series.defocus_um),
         "methods": rows}, indent=2))
    print(format_table(rows))
    print(json.dumps({"written": [str(figure), str(args.out / "metrics.json")]}))
    return 0


def _planes_label(defocus_um: tuple[float, ...]) -> str:
    """``-50, 0, +50 µm`` for up to three planes, ``5 planes, -100..+100 µm`` beyond."""
    if len(defocus_um) <= 3:
        return ", ".join(f"{z:+g}" if z else "0" for z in defocus_um) + " µm"
    return f"{len(defocus_um)} planes, {min(defocus_um):+g}..{max(defocus_um):+g} µm"


def bench(args: argparse.Namespace) -> int:
    from mcnn.bench.phase import PhaseBenchSettings, run_phase_bench
    from mcnn.config_io import load_config, parse_overrides

    settings = load_config(PhaseBenchSettings, args.settings, parse_overrides(args.set))
    report = run_phase_bench(settings, args.out)
    print(report["table"])
    print(report["mismatch_table"])
    return 0


def simulate(args: argparse.Namespace) -> int:
    """A series with known truth: series.tif (pixel size), truth.tif (phase, rad), series.yaml."""
    import torch
    import yaml

    from mcnn.config_io import load_config, parse_overrides
    from mcnn.data.image_io import PixelSize, write_image
    from mcnn.physics.build import build_content
    from mcnn.physics.config import BundledContentConfig, DefocusConfig, ProceduralContentConfig
    from mcnn.physics.defocus import DefocusSeriesSimulator

    cfg = load_config(DefocusConfig, None, parse_overrides(args.set))
    content_cfg = (ProceduralContentConfig() if args.content == "procedural"
                   else BundledContentConfig())
    content = build_content(content_cfg, "all" if args.content == "procedural" else "val")
    x, y = DefocusSeriesSimulator(cfg).sample(
        1, (args.size[0], args.size[1]), torch.Generator().manual_seed(args.seed), content)
    px = PixelSize(cfg.pixel_size_um, cfg.pixel_size_um)
    out = args.out
    written = [write_image(out / "series.tif", x[0][:, None].numpy(), px),
               write_image(out / "truth.tif", y[0, :1].numpy(), px)]
    manifest = {"wavelength_um": cfg.wavelength_um, "pixel_size_um": cfg.pixel_size_um,
                "defocus_um": cfg.defocus_um, "medium_index": cfg.medium_index,
                "ground_truth": "truth.tif"}
    (out / "series.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    written.append(out / "series.yaml")
    print(json.dumps({"written": [str(p) for p in written]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    commands = {"predict": predict, "compare": compare, "bench": bench, "simulate": simulate}
    return run_cli(PROG, lambda: commands[args.command](args))


if __name__ == "__main__":
    sys.exit(main())

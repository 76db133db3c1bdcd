"""mcnn-bench: convergence (MCNN vs the plain U-Net), inference speed and STEM denoising benchmarks.

JSON results go to stdout (and --out); progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from apps.cli import (
    OneLineArgumentParser,
    add_config_arguments,
    attach_negative_values,
    field_reference,
    load_command_config,
    print_config,
    run_cli,
    setup_logging,
)

PROG = "mcnn-bench"


def _number_list(cast: type, noun: str):
    """An argparse type for comma-separated ``cast`` values, e.g. ``0,1,2``."""

    def parse(text: str) -> list:
        try:
            values = [cast(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {noun}s, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one {noun}")
        return values

    return parse


_int_list = _number_list(int, "integer")
_float_list = _number_list(float, "number")


def _str_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected at least one name")
    return values


def _int_at_least(minimum: int):
    """An argparse type for an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {v}")
        return v

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    from mcnn.bench.convergence import SCALES, VARIANTS, ConvergenceSettings
    from mcnn.bench.presets import MODEL_PRESETS

    p = OneLineArgumentParser(prog=PROG, description="Benchmarks for MCNN: convergence, inference "
                              "speed, STEM denoising and the denoiser against the U-Net.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)

    c = sub.add_parser(
        "convergence",
        help="train MCNN variants and the plain U-Net; curves, plot, summary",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train each variant x skip x seed on the Laplacian tutorial (phase from its "
        "noisy 9-point Laplacian) with identical data, budget, optimiser (Adam, constant lr, no "
        "gradient clipping) and, per seed, identical initial trunk weights. Writes curves.csv, "
        "convergence.png and summary.json to the output folder and prints the summary. "
        f"Variants: {', '.join(VARIANTS)} (unet = branches 0, the baseline). "
        + " ".join(f"scale {k}: {v['size']}px, depth {v['depth']}, width {v['base_width']}->"
                   f"{v['max_width']}, batch {v['batch_size']}, {v['steps']} its."
                   for k, v in SCALES.items()),
        epilog="Config fields (in FILE, as a flag above, or with --set field=value; a flag wins "
        "over the file, --set over both; the scale's preset fills every field not given):\n"
        + "\n".join(field_reference(ConvergenceSettings))
        + "\n\nExit codes: 0 ok, 2 user error, 1 failure, 130 interrupted.",
    )
    c.add_argument("config", type=Path, nargs="?", default=None,
                   help="benchmark settings (.yaml, .yml, .toml or .json; optional)")
    c.add_argument("--scale", choices=sorted(SCALES), help="preset (default cpu) = scale")
    c.add_argument("--out", type=Path, help="output folder = out")
    c.add_argument("--steps", type=_positive_int, help="iterations per run = steps")
    c.add_argument("--size", type=_positive_int, help="image side (px) = size")
    c.add_argument("--depth", type=_positive_int, help="stride-2 levels = depth")
    c.add_argument("--base-width", type=_positive_int, help="channels at full resolution")
    c.add_argument("--max-width", type=_positive_int, help="channel cap")
    c.add_argument("--branches", type=_positive_int, help="MCNN side outputs (default depth-1)")
    c.add_argument("--batch-size", type=_positive_int)
    c.add_argument("--lr", type=float)
    c.add_argument("--seeds", type=_int_list, help="comma-separated seeds (default 0,1,2,3,4)")
    c.add_argument("--variants", type=_str_list,
                   help="comma-separated (default unet,mcnn-equal,mcnn-coarse_to_fine)")
    c.add_argument("--skips", type=_str_list, help="comma-separated: add,concat (default both)")
    c.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    c.add_argument("--val-every", type=_positive_int, help="validate every N iterations")
    c.add_argument("--val-examples", type=_positive_int, help="validation set size")
    c.add_argument("--content", choices=["procedural", "bundled"], help="ground-truth source")
    c.add_argument("--smooth-points", type=_positive_int,
                   help="odd window of the moving median for iterations-to-reach (default 5)")
    c.add_argument("--step-time-seconds", type=float,
                   help="time budget per variant of the direct step-time check (0 = skip)")
    add_config_arguments(c)

    r = sub.add_parser(
        "summarize",
        help="rebuild summary.json and convergence.png from a convergence run's curves.csv",
    )
    r.add_argument("out", type=Path, help="the convergence --out folder")
    r.add_argument("--levels", type=_float_list, help="MAE levels to report reaching, e.g. 0.08,0.07")
    r.add_argument("--smooth-points", type=_positive_int,
                   help="odd window (validations) of the moving median for iterations-to-reach")

    s = sub.add_parser(
        "speed",
        help="inference frames/s for network presets or a config file",
        description="Frames/s of MCNN.forward under torch.inference_mode for every network x "
        "size x batch x dtype x mode. Each call is timed from a synchronised start to a "
        "synchronised end (CUDA events on a GPU) after warm-up calls; a case reports the median, "
        "p10/p90 and min/max ms per call, fps = batch / seconds per call (median, p10, p90), the "
        "number of timed calls, and its speed-up over fp32 eager measured in the same run. "
        f"Presets: {', '.join(f'{k} ({v.depth} levels, {v.base_width}->{v.max_width} ch)' for k, v in MODEL_PRESETS.items())}.",
    )
    s.add_argument("--preset", type=_str_list, default=None,
                   help="comma-separated presets (default denoiser,small unless --config)")
    s.add_argument("--config", type=Path, action="append", default=[],
                   help="ModelConfig file (.yaml/.toml/.json; a training config's model: works)")
    s.add_argument("--sizes", type=_int_list, default=[128, 512], help="default 128,512")
    s.add_argument("--batch-sizes", type=_int_list,
                   help="default 1,8 on CPU; 1,256 on CUDA")
    s.add_argument("--dtypes", type=_str_list, default=["fp32", "bf16"], help="fp32,bf16")
    s.add_argument("--modes", type=_str_list, default=["eager", "compiled"],
                   help="eager,compiled (torch.compile)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--seconds", type=float, default=2.0,
                   help="time budget per case (s) when --repeats is not given (default 2)")
    s.add_argument("--repeats", type=_positive_int,
                   help="timed calls per case (fixed count; default: as many as fit in --seconds, "
                   "at least 5)")
    s.add_argument("--warmup", type=_non_negative_int, default=3,
                   help="untimed calls per case (default 3)")
    s.add_argument("--threads", type=_positive_int, help="torch.set_num_threads (CPU)")
    s.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory layout")
    s.add_argument("--out", type=Path, help="also write the JSON here")

    from mcnn.bench.streaming import STREAM_MODES

    t = sub.add_parser(
        "streaming",
        help="end-to-end live fps and latency (host frame in -> host result out), batch 1",
        description="Each network x size x mode at batch 1 through the viewers' live path: a "
        "frame replayed as a camera stream at --source-fps, Predictor.predict on a worker thread "
        "(newest frame wins), the newest result taken by a display loop. Reports display fps, "
        "latency capture -> display (median, p95), inference (predict incl. copies), the bare "
        "forward of the same predictor timed in the same run, and their ratios. Modes: eager "
        "(pageable copies), pinned (page-locked buffers, asynchronous copies; a no-op without "
        "CUDA), reduce-overhead (pinned + torch.compile mode reduce-overhead: CUDA graphs).",
    )
    t.add_argument("--preset", type=_str_list, default=None,
                   help="comma-separated presets (default denoiser unless --config)")
    t.add_argument("--config", type=Path, action="append", default=[],
                   help="ModelConfig file (.yaml/.toml/.json; a training config's model: works)")
    t.add_argument("--sizes", type=_str_list, default=["128x128"],
                   help="comma-separated HxW input sizes (default 128x128; the paper's camera: "
                   "360x640)")
    t.add_argument("--modes", type=_str_list, default=list(STREAM_MODES),
                   help=f"comma-separated: {','.join(STREAM_MODES)} (default all)")
    t.add_argument("--frames", type=_int_at_least(2), default=200,
                   help="displayed frames measured per case (default 200)")
    t.add_argument("--warmup", type=_non_negative_int, default=20,
                   help="displayed frames not measured first (default 20)")
    t.add_argument("--source-fps", type=float, default=1000.0,
                   help="frames/s the replayed camera delivers (default 1000)")
    t.add_argument("--forward-seconds", type=float, default=1.0,
                   help="time budget of the bare forward timing per case (default 1)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--threads", type=_positive_int, help="torch.set_num_threads (CPU)")
    t.add_argument("--out", type=Path, help="also write the JSON here")

    from mcnn.bench.stem import StemBenchSettings

    m = sub.add_parser(
        "stem",
        help="STEM denoising: a checkpoint vs oracle Gaussian, BM3D and raw on shifted frames",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Simulated HAADF frames from the checkpoint's training simulator with column "
        "spacing and probe sigma changed (a setting the model was not trained on) and a vacuum "
        "region, at target input SNRs; the model, a Gaussian filter and BM3D (when the optional "
        "bm3d package is installed) with the single sigma per SNR that is best against the clean "
        "frames (oracles), and the raw input. Reports PSNR, SSIM, output SNR, atom-position "
        "error, recall/precision, false atoms in vacuum and ms per frame; prints JSON and writes "
        "summary.json and stem-bench.png to --out.",
        epilog="Settings (as a flag above or with --set field=value; --set simulator.FIELD=V "
        "sets a StemConfig field of the test frames):\n"
        + "\n".join(field_reference(StemBenchSettings))
        + "\n\nExit codes: 0 ok, 2 user error, 1 failure.",
    )
    m.add_argument("checkpoint", type=Path, help="run folder, checkpoint folder or model.safetensors")
    m.add_argument("--out", type=Path, help="folder for summary.json and stem-bench.png")
    m.add_argument("--snrs", type=_float_list, help="target input SNRs, dB (default 0,-5,-10)")
    m.add_argument("--frames", type=_positive_int, help="frames per SNR (default 8)")
    m.add_argument("--size", type=_str_list, help="HxW px (default 128x128)")
    m.add_argument("--seed", type=_non_negative_int)
    m.add_argument("--spacing-scale", type=float, help="test / training column spacing (0.8)")
    m.add_argument("--atom-sigma-scale", type=float, help="test / training column sigma (1.25)")
    m.add_argument("--no-bm3d", action="store_true", help="skip BM3D even when installed")
    m.add_argument("--resample", action="store_true",
                   help="also run MCNN at its training pixel size (stem-denoise --resample), for "
                   "test frames at another --set simulator.pixel_size_pm")
    m.add_argument("--flip-ensemble", action="store_true",
                   help="also run MCNN averaged over each frame's mirror images "
                   "(stem-denoise --flip-ensemble)")
    m.add_argument("--save-frames", type=Path, metavar="DIR",
                   help="also write the figure's frames as detector files for stem-denoise: "
                   "raw.tif (counts = 500 + 8 x electrons, pixel size), clean.tif, "
                   "calibration.json")
    m.add_argument("--device", help="auto, cpu, cuda or cuda:N (the model's)")
    m.add_argument("--threads", type=_positive_int, help="torch.set_num_threads (CPU)")
    add_config_arguments(m)

    from mcnn.bench.denoiser_vs_unet import DenoiserVsUnetSettings

    d = sub.add_parser(
        "denoiser-vs-unet",
        help="the denoiser against a pix2pix-style U-Net of equal parameter count: speed and PSNR",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Builds the denoiser (configs/bench/denoiser.yaml, or --config, widths times "
        "--width-scale) and a pix2pix-style U-Net (concatenated skips, no branches, no low-pass "
        "front, stride-2 first convolution) whose width is searched to match its parameter "
        "count; times both forwards interleaved in one process at each size (median, p10/p90, "
        "speed_ratio = U-Net ms / denoiser ms), then trains both for the same steps on the same "
        "simulated low-dose STEM frames and reports held-out PSNR. JSON to stdout (and --out).",
        epilog="Settings (as a flag above or with --set field=value):\n"
        + "\n".join(field_reference(DenoiserVsUnetSettings))
        + "\n\nExit codes: 0 ok, 2 user error, 1 failure.",
    )
    d.add_argument("--config", help="denoiser ModelConfig file (.yaml/.toml/.json)")
    d.add_argument("--width-scale", type=float, help="times the denoiser's widths (default 0.25)")
    d.add_argument("--sizes", type=_int_list, help="square sides timed, px (default 128,512)")
    d.add_argument("--seconds", type=float, help="timing budget per network and size (default 3)")
    d.add_argument("--train-steps", type=_non_negative_int,
                   help="training steps per network (default 300; 0 = speed only)")
    d.add_argument("--train-size", type=_positive_int, help="training frame side, px (default 64)")
    d.add_argument("--batch-size", type=_positive_int, help="training batch (default 4)")
    d.add_argument("--val-examples", type=_positive_int, help="held-out frames (default 16)")
    d.add_argument("--seed", type=_non_negative_int)
    d.add_argument("--device", help="cpu (default), cuda, cuda:N or auto")
    d.add_argument("--threads", type=_positive_int, help="torch.set_num_threads (CPU)")
    d.add_argument("--out", type=Path, help="also write the JSON here")
    add_config_arguments(d)
    return p


def parse_size_hw(text: str) -> tuple[int, int]:
    """``HxW`` (or one number for a square) -> ``(height, width)`` in px."""
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, 0)
    except ValueError:
        h = w = 0
    if h < 1 or w < 1:
        raise ValueError(f"--sizes {text!r}: expected HxW in px, e.g. 360x640")
    return h, w


def _emit(result: dict, out: Path | None) -> None:
    text = json.dumps(result, indent=2)
    if out is not None:
        from mcnn.utils.atomic import atomic_write_text

        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text + "\n")
    print(text)


def convergence_flags(args: argparse.Namespace) -> dict:
    """The named flags as field overrides (``--set`` items are applied after them)."""
    return {
        "scale": args.scale, "out": str(args.out) if args.out is not None else None,
        "steps": args.steps, "size": args.size, "depth": args.depth,
        "base_width": args.base_width, "max_width": args.max_width, "branches": args.branches,
        "batch_size": args.batch_size, "lr": args.lr, "seeds": args.seeds,
        "variants": args.variants, "skips": args.skips, "device": args.device,
        "val_every": args.val_every, "val_examples": args.val_examples, "content": args.content,
        "smooth_points": args.smooth_points, "step_time_seconds": args.step_time_seconds,
    }


def _convergence(args: argparse.Namespace) -> int:
    from mcnn.bench.convergence import ConvergenceSettings, run_convergence

    settings = load_command_config(ConvergenceSettings, args.config, args, convergence_flags(args))
    if args.print_config:
        print_config(settings)
        return 0
    summary = run_convergence(settings)  # progress is logged to stderr
    _emit(summary, None)
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from mcnn.bench.convergence import resummarize

    _emit(resummarize(args.out, args.levels, args.smooth_points), None)
    return 0


def _speed(args: argparse.Namespace) -> int:
    import torch

    from mcnn.bench.presets import load_model_config, model_preset
    from mcnn.bench.speed import run_speed_bench
    from mcnn.device import select_device

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.seconds <= 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    device = select_device(args.device)
    presets = args.preset if args.preset is not None else ([] if args.config else
                                                           ["denoiser", "small"])
    networks = {name: model_preset(name) for name in presets}
    for path in args.config:
        networks[path.stem] = load_model_config(path)
    batch_sizes = args.batch_sizes or ([1, 256] if device.type == "cuda" else [1, 8])

    def progress(r: dict) -> None:
        fps = ("skipped: " + r["error"] if r.get("fps") is None else
               f"{r['fps']:.1f} fps (p10-p90 {r['fps_p10']:.1f}-{r['fps_p90']:.1f}, "
               f"{r['repeats']} calls)")
        print(f"{r['network']} {r['size']}px batch {r['batch']} {r['dtype']} {r['mode']}: {fps}",
              file=sys.stderr, flush=True)

    result = run_speed_bench(
        networks, device, sizes=args.sizes, batch_sizes=batch_sizes, dtypes=args.dtypes,
        modes=args.modes, seconds=args.seconds, warmup=args.warmup, repeats=args.repeats,
        channels_last=not args.no_channels_last, progress=progress,
    )
    _emit(result, args.out)
    return 0


def _streaming(args: argparse.Namespace) -> int:
    import torch

    from apps.live.bench import live_stream
    from mcnn.bench.presets import load_model_config, model_preset
    from mcnn.bench.streaming import run_streaming_bench
    from mcnn.device import select_device

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.source_fps <= 0 or args.forward_seconds <= 0:
        raise ValueError("--source-fps and --forward-seconds must be > 0")
    sizes = [parse_size_hw(s) for s in args.sizes]
    device = select_device(args.device)
    presets = args.preset if args.preset is not None else ([] if args.config else ["denoiser"])
    networks = {name: model_preset(name) for name in presets}
    for path in args.config:
        networks[path.stem] = load_model_config(path)

    def progress(r: dict) -> None:
        head = f"{r['network']} {r['height']}x{r['width']} {r['mode']}: "
        if r.get("fps") is None:
            print(head + "skipped: " + r["error"], file=sys.stderr, flush=True)
            return
        print(head + f"{r['fps']:.1f} fps, latency {r['latency_ms_median']:.2f} ms "
              f"(p95 {r['latency_ms_p95']:.2f}), forward {r['forward_ms_median']:.2f} ms "
              f"({r['forward_fps']:.1f} fps)", file=sys.stderr, flush=True)

    result = run_streaming_bench(
        networks, device, live_stream, sizes_hw=sizes, modes=args.modes, frames=args.frames,
        warmup=args.warmup, source_fps=args.source_fps, forward_seconds=args.forward_seconds,
        progress=progress,
    )
    _emit(result, args.out)
    return 0


def _stem(args: argparse.Namespace) -> int:
    import torch

    from apps.stem_bench import stem_bench_figure
    from mcnn.bench.stem import StemBenchSettings, run_stem_bench

    if args.threads:
        torch.set_num_threads(args.threads)
    size = None
    if args.size is not None:
        if len(args.size) != 1:
            raise ValueError(f"--size {','.join(args.size)}: expected one HxW")
        size = list(parse_size_hw(args.size[0]))
    flags = {"snrs_db": args.snrs, "frames": args.frames, "size_px": size, "seed": args.seed,
             "spacing_scale": args.spacing_scale, "atom_sigma_scale": args.atom_sigma_scale,
             "use_bm3d": False if args.no_bm3d else None, "device": args.device,
             "resample": True if args.resample else None,
             "flip_ensemble": True if args.flip_ensemble else None}
    settings = load_command_config(StemBenchSettings, None, args, flags)
    if args.print_config:
        print_config(settings)
        return 0
    if not args.checkpoint.exists():
        raise FileNotFoundError(f"{args.checkpoint}: no such checkpoint (a run folder, checkpoint "
                                "folder or model.safetensors)")
    result = run_stem_bench(args.checkpoint, settings,
                            progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        figure = stem_bench_figure(result, args.out / "stem-bench.png")
        result.summary["figure"] = str(figure)
        _emit(result.summary, args.out / "summary.json")
    else:
        _emit(result.summary, None)
    if args.save_frames is not None:
        from apps.stem_bench import save_figure_frames

        save_figure_frames(result, args.save_frames)
    return 0


def _denoiser_vs_unet(args: argparse.Namespace) -> int:
    import torch

    from mcnn.bench.denoiser_vs_unet import DenoiserVsUnetSettings, run_denoiser_vs_unet

    flags = {"config": args.config, "width_scale": args.width_scale, "sizes_px": args.sizes,
             "seconds": args.seconds, "train_steps": args.train_steps,
             "train_size_px": args.train_size, "batch_size": args.batch_size,
             "val_examples": args.val_examples, "seed": args.seed, "device": args.device}
    settings = load_command_config(DenoiserVsUnetSettings, None, args, flags)
    if args.print_config:
        print_config(settings)
        return 0
    if settings.config is not None and not Path(settings.config).is_file():
        raise FileNotFoundError(f"--config {settings.config}: no such file")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run_denoiser_vs_unet(settings,
                                  progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    _emit(result, args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(attach_negative_values(argv, ("--snrs",)))
    setup_logging(args.verbose)
    body = {"convergence": _convergence, "summarize": _summarize, "speed": _speed,
            "streaming": _streaming, "stem": _stem,
            "denoiser-vs-unet": _denoiser_vs_unet}[args.command]
    return run_cli(PROG, lambda: body(args))


if __name__ == "__main__":
    sys.exit(main())

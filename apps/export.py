"""mcnn-export: a trained MCNN as ONNX and/or TorchScript, checked against PyTorch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from apps.cli import OneLineArgumentParser, run_cli, setup_logging

PROG = "mcnn-export"

EPILOG = """\
-o OUT names the files: OUT.onnx and/or OUT.pt (a suffix on OUT is replaced; an existing folder
gets OUT/model.onnx, OUT/model.pt). ONNX uses torch's torch.export-based exporter with symbolic
batch/height/width (--dynamic, the default) so one file takes any frame size, falling back to the
legacy exporter, then to the fixed --height x --width; TorchScript is scripted (any size).
--check (default) runs each file on test inputs, at the export size and, when dynamic, at an odd
size, and prints the largest absolute difference from PyTorch; over --tolerance exits 1.
ONNX needs the export extra: pip install "mcnn-imaging[export]".
Prints a JSON report on stdout. Exit codes: 0 ok, 2 user error, 1 failure."""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog=PROG,
        description="Export a trained MCNN to ONNX and/or TorchScript.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, help="run folder, checkpoint folder or model.safetensors")
    p.add_argument("-o", "--out", type=Path, required=True, help="output path (see below)")
    p.add_argument("--format", choices=["onnx", "torchscript", "both"], default="both")
    p.add_argument("--height", type=int, default=64, help="example/fixed input height px (64)")
    p.add_argument("--width", type=int, default=64, help="example/fixed input width px (64)")
    p.add_argument("--dynamic", action=argparse.BooleanOptionalAction, default=True,
                   help="ONNX: symbolic batch, height and width (default on)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="compare each export with PyTorch (default on)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest absolute difference allowed by --check (default 1e-4)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def output_path(out: Path, suffix: str) -> Path:
    return out / f"model{suffix}" if out.is_dir() else out.with_suffix(suffix)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)

    def body() -> int:
        from mcnn.infer import export
        from mcnn.weights import load_model

        if args.height < 1 or args.width < 1:
            raise ValueError(f"--height {args.height} --width {args.width}: must be >= 1")
        model, config = load_model(args.checkpoint)
        sizes = [(args.height, args.width)]
        report: dict = {}
        onnx_wanted = args.format == "onnx" or (
            args.format == "both" and model.tie_front is None)
        if args.format == "both" and not onnx_wanted:
            report["onnx"] = {"skipped": export.NO_ONNX_TIE_FRONT}
        if onnx_wanted:
            try:
                done = export.export_onnx(
                    model, output_path(args.out, ".onnx"), height=args.height, width=args.width,
                    dynamic=args.dynamic, opset=args.opset,
                )
            except RuntimeError as exc:  # every exporter route failed: a failure, not user error
                print(f"{PROG}: {str(exc).splitlines()[0]} (run with -v for details)",
                      file=sys.stderr)
                return 1
            report["onnx"] = {"path": str(done.path), "exporter": done.exporter,
                              "dynamic": done.dynamic, "opset": done.opset}
            if args.check:
                checks = sizes + ([(args.height + 13, args.width + 29)] if done.dynamic else [])
                report["onnx"]["checked_sizes"] = checks
                report["onnx"]["max_abs_error"] = export.check_onnx(model, done.path, checks)
        if args.format in ("torchscript", "both"):
            path = output_path(args.out, ".pt")
            how = export.export_torchscript(model, path, height=args.height, width=args.width)
            report["torchscript"] = {"path": str(path), "method": how}
            if args.check:
                checks = sizes + ([(args.height + 13, args.width + 29)] if how == "script" else [])
                report["torchscript"]["checked_sizes"] = checks
                report["torchscript"]["max_abs_error"] = export.check_torchscript(model, path, checks)
        report["model"] = {"in_channels": config.in_channels, "out_channels": config.out_channels,
                           "output_scale": config.output_scale}
        print(json.dumps(report))
        errors = {k: v["max_abs_error"] for k, v in report.items() if "max_abs_error" in v}
        bad = {k: e for k, e in errors.items() if not e <= args.tolerance}
        if bad:
            for k, e in bad.items():
                print(f"{PROG}: {k} export differs from PyTorch by {e:.3g} "
                      f"(> --tolerance {args.tolerance:g})", file=sys.stderr)
            return 1
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())

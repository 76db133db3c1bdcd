"""mcnn-demo: a short training run on built-in simulated data that ends with a picture and metrics.

It needs no data, no GPU and no download: the paper's tutorial problem (recover a phase map from its
noisy 9-point Laplacian) on procedural content, a few minutes on a 2-core CPU. ``--problem`` picks
one of the three applications instead (phase retrieval, STEM denoising, hidden screen). The hidden
screen is filmed through the radiometric door rig (``--rig realistic``, the default: the screen as an
area light seen on a Lambertian door); ``--rig easy`` is the old blur-and-flip toy, which overstates
what the method does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from apps.cli import OneLineArgumentParser, run_cli, setup_logging

PROG = "mcnn-demo"

SIMULATORS = {
    "laplacian": {"name": "laplacian", "noise_std": 0.01},
    "defocus": {"name": "defocus", "defocus_um": [-20.0, 20.0], "predict_amplitude": False},
    "stem": {"name": "stem"},
    "screen": {"name": "screen_rig", "scale": 2},
}
RIGS = ("realistic", "easy")
CHANNELS = {"laplacian": (1, 1, 1), "defocus": (2, 1, 1), "stem": (1, 1, 1), "screen": (3, 3, 2)}


def demo_config(problem: str, steps: int, size: int, out_dir: Path, device: str,
                rig: str = "realistic") -> dict:
    """The demo's training config; ``rig`` (screen only) is the door rig's transport preset."""
    cin, cout, scale = CHANNELS[problem]
    simulator = dict(SIMULATORS[problem])
    if problem == "screen":
        simulator["transport"] = rig
    return {
        "name": f"demo-{problem}" + (f"-{rig}" if problem == "screen" else ""),
        "out_dir": str(out_dir),
        "model": {
            "in_channels": cin, "out_channels": cout, "output_scale": scale,
            "depth": 4, "base_width": 16, "max_width": 128, "branches": 3, "skip": "concat",
        },
        "data": {
            "kind": "simulated", "simulator": simulator, "size": size,
            "examples_per_epoch": 512, "val_examples": 32, "seed": 0,
        },
        "optim": {"lr": 2e-3, "warmup_steps": 20},
        "train": {
            "steps": steps, "batch_size": 8, "val_every": max(steps // 5, 1),
            "checkpoint_every": steps, "device": device, "sample_images": 4,
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--problem", choices=sorted(SIMULATORS), default="laplacian")
    p.add_argument("--steps", type=int, default=600, help="training iterations (default 600)")
    p.add_argument("--size", type=int, default=64, help="image size in px (default 64)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="output folder (default runs/)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--rig", choices=RIGS, default="realistic",
                   help="screen problem: door rig preset (default realistic; easy = blur + flip)")
    args = p.parse_args(argv)
    setup_logging()

    def body() -> int:
        from mcnn.config_io import validate
        from mcnn.train.config import TrainConfig
        from mcnn.train.figures import save_comparison
        from mcnn.train.trainer import Trainer

        raw = demo_config(args.problem, args.steps, args.size, args.out, args.device, args.rig)
        cfg = validate(TrainConfig, raw, "demo config")
        trainer = Trainer(cfg, overwrite=True)  # a demo always starts fresh
        metrics = trainer.fit()
        x, pred, y = trainer.predict(trainer.val_data, cfg.train.val_batch_size)
        picture = save_comparison(
            cfg.run_dir / "demo_result.png", x, pred, y,
            title=f"{args.problem}: input | prediction | truth | error "
            f"(validation MAE {metrics['val_mae']:.4f})",
        )
        rig = {"rig": args.rig} if args.problem == "screen" else {}
        print(json.dumps({"problem": args.problem, **rig, "steps": trainer.step,
                          "val_mae": round(metrics["val_mae"], 5),
                          "val_psnr_db": round(metrics["val_psnr"], 2),
                          "val_ssim": round(metrics["val_ssim"], 4),
                          "val_mae_per_channel": [round(metrics[f"val_mae_c{k}"], 5)
                                                  for k in range(cfg.model.out_channels)],
                          "picture": str(picture), "run_dir": str(cfg.run_dir)}))
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())

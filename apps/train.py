"""mcnn-train: train an MCNN from a YAML/TOML/JSON config."""

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
from apps.stem_units import (
    SIGNED_VALUE_FLAGS,
    add_training_arguments,
    check_stem_training,
    training_overrides,
)

PROG = "mcnn-train"


def build_parser() -> argparse.ArgumentParser:
    from mcnn.train.config import TrainConfig

    epilog = (
        "Config fields (set them in the file or with --set section.field=value; values are parsed "
        "as JSON when possible, e.g. --set model.branches=0 --set data.size=[64,64]):\n"
        + "\n".join(field_reference(TrainConfig))
        + "\n\n"
        "Multi-GPU / multi-node: torchrun --nproc_per_node=N -m apps.train CONFIG (same config).\n"
        "Outputs in out_dir/name: config.json, metrics.csv, tensorboard/, samples/*.png,\n"
        "checkpoints/{last,best}/ (model.safetensors + JSON). metrics.csv has val_mae/psnr/ssim per\n"
        "output channel (_c0, _c1, ...; PSNR/SSIM on that channel's target range, val_psnr_range_cK)\n"
        "and their means. Ctrl-C or SIGTERM stops after the current step and saves checkpoints/last;\n"
        "--resume continues bit for bit. On resume only train.steps (longer: the lr schedule keeps\n"
        "its horizon and holds its final value), device, precision, compile, num_workers and the\n"
        "reporting intervals may change. Exit codes: 0 ok, 2 user error, 1 failure, 130 interrupted."
    )
    p = OneLineArgumentParser(
        prog=PROG,
        description="Train an MCNN (multi-scale U-Net) on simulated, folder or recorded pairs.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", type=Path, help="training config (.yaml, .yml, .toml or .json)")
    p.add_argument("--steps", type=int, help="override train.steps")
    p.add_argument("--batch-size", type=int, help="override train.batch_size")
    p.add_argument("--lr", type=float, help="override optim.lr")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="override train.device")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="override train.precision")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--name", help="override name (the run folder's name)")
    p.add_argument("--out-dir", type=Path, help="override out_dir")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue the run in out_dir/name")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the run in out_dir/name (its checkpoints, logs and samples)")
    add_training_arguments(p)
    add_config_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def flag_overrides(args: argparse.Namespace) -> dict:
    """The named flags as dotted overrides (``--set`` items are applied after them)."""
    return {
        "train.steps": args.steps, "train.batch_size": args.batch_size, "optim.lr": args.lr,
        "train.device": args.device, "train.precision": args.precision, "train.seed": args.seed,
        "name": args.name, "out_dir": str(args.out_dir) if args.out_dir is not None else None,
        "train.compile": True if args.compile else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(attach_negative_values(argv, SIGNED_VALUE_FLAGS))
    setup_logging(args.verbose)

    def body() -> int:
        from mcnn.train.config import TrainConfig
        from mcnn.train.trainer import Trainer

        stem_given = [flag for flag, value in (("--pixel-size", args.pixel_size),
                                               ("--pixel-size-from", args.pixel_size_from),
                                               ("--calibration", args.calibration))
                      if value is not None]
        if stem_given:  # checked on the config (--set included), then applied under --set
            check_stem_training(load_command_config(TrainConfig, args.config, args,
                                                    flag_overrides(args)), stem_given, args.config)
        flags = {**flag_overrides(args), **(training_overrides(args) if stem_given else {})}
        cfg = load_command_config(TrainConfig, args.config, args, flags)
        if args.print_config:
            print_config(cfg)
            return 0
        trainer = Trainer(cfg, resume=args.resume, overwrite=args.overwrite)
        metrics = trainer.fit()
        if trainer.dist.is_main:
            print(json.dumps({"run_dir": str(trainer.run_dir), "step": trainer.step, **metrics}))
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())

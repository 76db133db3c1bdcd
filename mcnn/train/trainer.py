"""A plain training loop with hooks a user can override (in the spirit of deepinv's Trainer).

Subclass ``Trainer`` and override ``training_step``, ``on_step_end`` or ``on_validation_end`` to
change what happens per step without rewriting the loop. Simulated data is drawn fresh every epoch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from mcnn.data.build import build_datasets
from mcnn.data.protocol import set_epoch
from mcnn.losses import (
    BranchWeightSchedule,
    MultiScaleL1Loss,
    PatchDiscriminator,
    SSIMLoss,
    discriminator_loss,
    generator_adversarial_loss,
)
from mcnn.models import MCNN, count_parameters
from mcnn.train import checkpoint as ckpt
from mcnn.train.config import TrainConfig
from mcnn.train.figures import save_comparison
from mcnn.train.metrics import all_metrics
from mcnn.train.run_log import RunLog, comparison_grid
from mcnn.train.runtime import DistContext, autocast_dtype, select_device
from mcnn.train.sampling import EpochSampler

log = logging.getLogger(__name__)


class TrainingError(ValueError):
    """Training cannot go on for a reason the user can fix; the message says which."""


class _MultiScale(nn.Module):
    """Makes ``forward`` return every output, so DDP and torch.compile see the training path."""

    def __init__(self, module: MCNN) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.module.forward_multiscale(x)


def _lr_lambda(cfg: TrainConfig):
    o, total = cfg.optim, cfg.train.steps

    def factor(step: int) -> float:
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "cosine":
            t = (step - o.warmup_steps) / max(total - o.warmup_steps, 1)
            return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1)))
        if o.schedule == "step":
            return o.step_gamma ** ((step - o.warmup_steps) // o.step_every)
        return 1.0

    return factor


def _check_data(cfg: TrainConfig, train: Any) -> None:
    x, y = train[0]
    m = cfg.model
    problems = []
    if x.shape[0] != m.in_channels:
        problems.append(f"model.in_channels={m.in_channels} but the data inputs have {x.shape[0]}")
    if y.shape[0] != m.out_channels:
        problems.append(f"model.out_channels={m.out_channels} but the data targets have {y.shape[0]}")
    scale = y.shape[-1] / x.shape[-1]
    if scale != m.output_scale or y.shape[-2] / x.shape[-2] != m.output_scale:
        problems.append(
            f"model.output_scale={m.output_scale} but targets {tuple(y.shape[-2:])} / inputs "
            f"{tuple(x.shape[-2:])} give {scale:g}"
        )
    if problems:
        raise TrainingError("; ".join(problems))


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        train_data: Any = None,
        val_data: Any = None,
        *,
        run_dir: Path | None = None,
        resume: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.cfg = cfg = config
        self.dist = DistContext.from_env()
        self.device = select_device(cfg.train.device, self.dist.local_rank)
        self.dist.init(self.device)
        self.run_dir = Path(run_dir or cfg.run_dir)
        self.resume = resume
        self.progress = sys.stderr.isatty() if progress is None else progress
        torch.manual_seed(cfg.train.seed)
        if train_data is None or val_data is None:
            train_data, val_data = build_datasets(cfg.data, cfg.train.seed)
        self.train_data, self.val_data = train_data, val_data
        _check_data(cfg, train_data)
        need = cfg.train.batch_size * self.dist.world_size
        if len(train_data) < need:
            raise TrainingError(
                f"{len(train_data)} training examples but train.batch_size={cfg.train.batch_size}"
                f" x {self.dist.world_size} process(es) needs at least {need}"
            )
        self.amp_dtype = autocast_dtype(cfg.train.precision, self.device)
        channels_last = cfg.train.channels_last
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format

        self.model = MCNN(cfg.model).to(self.device, memory_format=fmt)
        self.n_params = count_parameters(self.model)
        net: nn.Module = _MultiScale(self.model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)
        self.net = torch.compile(net) if cfg.train.compile else net

        o = cfg.optim
        opt_cls = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(
            self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_lambda(cfg))
        self.loss_fn = MultiScaleL1Loss()
        self.weights = BranchWeightSchedule(
            cfg.loss.branch_schedule, cfg.model.branches + 1, cfg.train.steps
        )
        self.ssim_loss = SSIMLoss(cfg.loss.ms_ssim) if cfg.loss.ssim_weight > 0 else None
        self.disc: PatchDiscriminator | None = None
        self.disc_opt: torch.optim.Optimizer | None = None
        if cfg.loss.adversarial_weight > 0:
            self.disc = PatchDiscriminator(
                cfg.model.in_channels,
                cfg.model.out_channels,
                cfg.loss.discriminator_width,
                cfg.loss.discriminator_layers,
            ).to(self.device)
            self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=o.lr, betas=(0.5, 0.999))

        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_val_mae = math.inf
        self.elapsed_s = 0.0
        self.last_metrics: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.run_log: RunLog | None = None

    # ----------------------------------------------------------------------------------- hooks
    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        """Called after every optimiser step with the step's losses and learning rate."""

    def on_validation_end(self, step: int, metrics: dict[str, float]) -> None:
        """Called on the main process after each validation with its metrics."""

    # ------------------------------------------------------------------------------ internals
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        self.model.train()
        weights = self.weights(self.step)
        with self._autocast():
            outputs = self.net(x)
        outputs = [o.float() for o in outputs]
        loss, terms = self.loss_fn(outputs, y, weights)
        logs = {"loss/mae_full": terms[0].item()}
        for k, t in enumerate(terms[1:], start=1):
            logs[f"loss/mae_branch{k}"] = t.item()
        if self.ssim_loss is not None:
            s = self.ssim_loss(outputs[0], y)
            loss = loss + cfg.loss.ssim_weight * s
            logs["loss/one_minus_ssim"] = s.item()
        if self.disc is not None:
            g = generator_adversarial_loss(self.disc(x, outputs[0]))
            loss = loss + cfg.loss.adversarial_weight * g
            logs["loss/adversarial_g"] = g.item()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
            logs["grad_norm"] = norm.item()
        self.optimizer.step()
        self.scheduler.step()
        if self.disc is not None and self.disc_opt is not None:
            d = discriminator_loss(self.disc(x, y), self.disc(x, outputs[0].detach()))
            self.disc_opt.zero_grad(set_to_none=True)
            d.backward()
            self.disc_opt.step()
            logs["loss/adversarial_d"] = d.item()
        logs["loss/total"] = loss.item()
        logs["lr"] = self.scheduler.get_last_lr()[0]
        return logs

    @torch.no_grad()
    def predict(self, data: Any, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs, predictions and targets of a whole (small) dataset, on the CPU."""
        self.model.eval()
        xs, ps, ys = [], [], []
        for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
            with self._autocast():
                p = self.model(self._to_device(x))
            xs.append(x)
            ps.append(p.float().cpu())
            ys.append(y)
        return torch.cat(xs), torch.cat(ps), torch.cat(ys)

    def validate(self) -> dict[str, float]:
        x, p, y = self.predict(self.val_data, self.cfg.train.val_batch_size)
        metrics = {f"val_{k}": v for k, v in all_metrics(p, y).items()}
        n = self.cfg.train.sample_images
        if self.run_log is not None and n:
            self.run_log.images(self.step, "val/input|prediction|truth|error",
                                comparison_grid(x[:n], p[:n], y[:n]))
            save_comparison(self.run_dir / "samples" / f"step_{self.step:07d}.png",
                            x[:n], p[:n], y[:n], title=f"step {self.step}")
        return metrics

    def _checkpoint(self, name: str) -> None:
        ckpt.save_checkpoint(
            self.run_dir / "checkpoints" / name,
            model=self.model,
            config_json=self.cfg.model_dump_json(indent=2),
            optimizers={"model": self.optimizer}
            | ({"disc": self.disc_opt} if self.disc_opt else {}),
            schedulers={"model": self.scheduler},
            extra_modules={"disc": self.disc} if self.disc is not None else {},
            state={
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "best_val_mae": self.best_val_mae,
                "elapsed_s": self.elapsed_s,
                "world_size": self.dist.world_size,
            },
        )

    def _prepare_run_dir(self) -> None:
        last = self.run_dir / "checkpoints" / "last"
        if self.resume:
            state = ckpt.load_checkpoint(
                last,
                model=self.model,
                optimizers={"model": self.optimizer}
                | ({"disc": self.disc_opt} if self.disc_opt else {}),
                schedulers={"model": self.scheduler},
                extra_modules={"disc": self.disc} if self.disc is not None else {},
            )
            if state.get("world_size", 1) != self.dist.world_size:
                raise TrainingError(
                    f"{last}: saved with {state['world_size']} processes, resumed with "
                    f"{self.dist.world_size}; the data order would change"
                )
            self.step, self.epoch = state["step"], state["epoch"]
            self.batch_in_epoch, self.best_val_mae = state["batch_in_epoch"], state["best_val_mae"]
            self.elapsed_s = state["elapsed_s"]
            log.info("resumed %s at step %d", self.run_dir, self.step)
        elif ckpt.resolve_checkpoint(last) is not None:
            raise TrainingError(
                f"{self.run_dir}: holds a run already; pass --resume to continue it or choose "
                "another name/out_dir"
            )
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            from mcnn.config_io import save_config

            save_config(self.cfg, self.run_dir / "config.json")
            self.run_log = RunLog(self.run_dir, self.cfg.train.tensorboard)

    def _loader(self) -> DataLoader:
        t = self.cfg.train
        set_epoch(self.train_data, self.epoch)
        sampler = EpochSampler(
            len(self.train_data),
            t.batch_size,
            seed=t.seed,
            epoch=self.epoch,
            start_batch=self.batch_in_epoch,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        return DataLoader(
            self.train_data,
            batch_size=t.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=t.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def fit(self) -> dict[str, float]:
        """Train to ``train.steps``; returns the last validation metrics."""
        cfg, t = self.cfg, self.cfg.train
        self._prepare_run_dir()
        if self.dist.is_main:
            log.info(
                "MCNN %.2fM parameters, %d branches, device %s, %s, world size %d",
                self.n_params / 1e6, cfg.model.branches, self.device,
                "bf16 autocast" if self.amp_dtype else "fp32", self.dist.world_size,
            )
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm import tqdm

            bar = tqdm(total=t.steps, initial=self.step, unit="it", dynamic_ncols=True)
        running: list[float] = []
        start_wall, start_elapsed, start_step = time.perf_counter(), self.elapsed_s, self.step
        try:
            while self.step < t.steps:
                loader = self._loader()
                for x, y in loader:
                    logs = self.training_step(self._to_device(x), self._to_device(y))
                    self.step += 1
                    self.batch_in_epoch += 1
                    self.elapsed_s = start_elapsed + time.perf_counter() - start_wall
                    running.append(logs["loss/total"])
                    self.on_step_end(self.step, logs)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{logs['loss/total']:.4f}", refresh=False)
                    if self.run_log is not None and self.step % t.log_every == 0:
                        self.run_log.scalars(self.step, {f"train/{k}": v for k, v in logs.items()})
                    if self.step % t.val_every == 0 or self.step == t.steps:
                        self._validate_and_log(running)
                        running = []
                    if self.step % t.checkpoint_every == 0 or self.step == t.steps:
                        if self.dist.is_main:
                            self._checkpoint("last")
                        self.dist.barrier()
                    if self.step >= t.steps:
                        break
                else:
                    self.epoch += 1
                    self.batch_in_epoch = 0
        except KeyboardInterrupt:
            if self.dist.is_main and self.step > 0:
                self._checkpoint("last")
                log.warning("interrupted at step %d; checkpoint saved, resume with --resume", self.step)
            raise
        finally:
            if bar is not None:
                bar.close()
            if self.run_log is not None:
                self.run_log.close()
                self.run_log = None
            self.dist.close()
        done = self.step - start_step
        if done and self.dist.is_main:
            rate = done / max(self.elapsed_s - start_elapsed, 1e-9)
            log.info("trained %d steps at %.2f it/s", done, rate)
        return self.last_metrics

    def _validate_and_log(self, running: list[float]) -> None:
        if self.dist.is_main:
            metrics = self.validate()
            train_loss = sum(running) / max(len(running), 1)
            metrics["train_loss"] = train_loss
            self.last_metrics = metrics
            self.history.append({"step": self.step, **metrics})
            assert self.run_log is not None
            self.run_log.scalars(self.step, {f"val/{k[4:]}": v for k, v in metrics.items()
                                             if k.startswith("val_")})
            self.run_log.row({"step": self.step, "epoch": self.epoch,
                              "elapsed_s": round(self.elapsed_s, 3), "train_loss": train_loss,
                              "lr": self.scheduler.get_last_lr()[0], **metrics})
            rate = self.step / max(self.elapsed_s, 1e-9)
            eta = (self.cfg.train.steps - self.step) / max(rate, 1e-9)
            log.info(
                "step %d/%d  loss %.4f  val MAE %.4f  PSNR %.2f dB  SSIM %.3f  %.2f it/s  ETA %s",
                self.step, self.cfg.train.steps, train_loss, metrics["val_mae"],
                metrics["val_psnr"], metrics["val_ssim"], rate, _hms(eta),
            )
            if metrics["val_mae"] < self.best_val_mae:
                self.best_val_mae = metrics["val_mae"]
                self._checkpoint("best")
            self.on_validation_end(self.step, metrics)
        self.dist.barrier()


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"

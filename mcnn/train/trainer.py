"""A plain training loop with hooks a user can override (in the spirit of deepinv's Trainer).

Subclass ``Trainer`` and override ``training_step``, ``on_step_end`` or ``on_validation_end`` to
change what happens per step without rewriting the loop. Simulated data is drawn fresh every epoch.

Stopping (``mcnn.train.stopping``): SIGINT and SIGTERM only raise a flag while ``fit`` runs; once a
step is fully counted the loop saves ``checkpoints/last`` and raises ``KeyboardInterrupt``, so a
resumed run continues bit for bit where the stopped one ended.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from mcnn.data.build import build_datasets
from mcnn.data.protocol import PairDataset, set_epoch
from mcnn.device import autocast_dtype, select_device
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
from mcnn.train.errors import TrainingError
from mcnn.train.figures import save_comparison
from mcnn.train.init_weights import check_data_fits_model, load_init_weights
from mcnn.train.lr_schedule import lr_factor
from mcnn.train.metrics import all_metrics
from mcnn.train.progress import ProgressReporter, hms
from mcnn.train.resume import config_differences, saved_run_config
from mcnn.train.run_log import RunLog, comparison_grid, csv_fields
from mcnn.train.runtime import DistContext
from mcnn.train.sampling import EpochSampler, loader_workers
from mcnn.train.stopping import StopFlag

log = logging.getLogger(__name__)


# What a run writes into its folder; --overwrite removes these and nothing else.
RUN_ARTIFACTS = ("checkpoints", "tensorboard", "samples", "metrics.csv", "config.json",
                 "demo_result.png")


class _MultiScale(nn.Module):
    """Makes ``forward`` return every output, so DDP and torch.compile see the training path."""

    def __init__(self, module: MCNN) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.module.forward_multiscale(x)


class Trainer:
    """Builds the network, optimiser and data from ``config`` and trains with ``fit``.

    ``train_data`` / ``val_data`` default to what ``config.data`` describes. ``resume`` continues
    the run in ``run_dir`` (its config must match, see ``mcnn.train.resume``); ``overwrite``
    replaces an existing run there. ``progress`` shows a tqdm bar (default: when stderr is a
    terminal); progress lines are logged either way.
    """

    def __init__(
        self,
        config: TrainConfig,
        train_data: PairDataset | None = None,
        val_data: PairDataset | None = None,
        *,
        run_dir: Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        progress: bool | None = None,
    ) -> None:
        if resume and overwrite:
            raise TrainingError("resume and overwrite exclude each other: continue a run or replace it")
        self.cfg = cfg = config
        self.dist = DistContext.from_env()
        self.device = select_device(cfg.train.device, self.dist.local_rank)
        self.dist.init(self.device)
        self.run_dir = Path(run_dir or cfg.run_dir)
        self.resume = resume
        self.overwrite = overwrite
        self.progress = sys.stderr.isatty() if progress is None else progress
        torch.manual_seed(cfg.train.seed)
        if train_data is None or val_data is None:
            train_data, val_data = build_datasets(cfg.data, cfg.train.seed)
        self.train_data: PairDataset = train_data
        self.val_data: PairDataset = val_data
        check_data_fits_model(cfg, train_data)
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

        self.model = MCNN(cfg.model)
        if cfg.train.init_weights is not None and not resume:
            load_init_weights(self.model, Path(cfg.train.init_weights))
        self.model = self.model.to(self.device, memory_format=fmt)  # type: ignore[call-overload]
        self.n_params = count_parameters(self.model)
        net: nn.Module = _MultiScale(self.model)
        if self.dist.enabled:
            net = self._ddp(net)
        self.net: Callable[[torch.Tensor], list[torch.Tensor]] = (
            torch.compile(net) if cfg.train.compile else net
        )

        o = cfg.optim
        opt_cls = torch.optim.AdamW if o.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt_cls(
            self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay
        )
        # The schedule spans ``schedule_steps``: train.steps of a new run, kept when a run is
        # extended with a larger train.steps (so the learning rate does not jump back up).
        self.schedule_steps = cfg.train.steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(self.cfg, step, self.schedule_steps)
        )
        self.loss_fn = MultiScaleL1Loss()
        self.weights = BranchWeightSchedule(
            cfg.loss.branch_schedule, cfg.model.branches + 1, self.schedule_steps
        )
        self.ssim_loss = SSIMLoss(cfg.loss.ms_ssim) if cfg.loss.ssim_weight > 0 else None
        self.disc: PatchDiscriminator | None = None
        self.disc_net: nn.Module | None = None  # the discriminator as trained (DDP-wrapped)
        self.disc_opt: torch.optim.Optimizer | None = None
        if cfg.loss.adversarial_weight > 0:
            self.disc = PatchDiscriminator(
                cfg.model.in_channels,
                cfg.model.out_channels,
                cfg.loss.discriminator_width,
                cfg.loss.discriminator_layers,
            ).to(self.device)
            self.disc_net = self._ddp(self.disc) if self.dist.enabled else self.disc
            self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=o.lr, betas=(0.5, 0.999))

        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_val_mae = math.inf
        self.elapsed_s = 0.0
        self.last_metrics: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.run_log: RunLog | None = None
        self._stop = StopFlag(lambda: self.step + 1)
        self._mid_step = False
        self._saved_step = -1

    def _ddp(self, module: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    # ----------------------------------------------------------------------------------- hooks
    def on_step_end(self, step: int, logs: dict[str, float]) -> None:
        """Called after every optimiser step with the step's losses and learning rate."""

    def on_validation_end(self, step: int, metrics: dict[str, float]) -> None:
        """Called on the main process after each validation with its metrics."""

    # ------------------------------------------------------------------------------ internals
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One optimiser step on the batch ``(x, y)``; returns the numbers to log."""
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
            # The generator's term goes through the bare discriminator with frozen weights: its
            # gradients would be thrown away, and the DDP copy is kept for the discriminator step.
            self.disc.requires_grad_(False)
            g = generator_adversarial_loss(self.disc(x, outputs[0]))
            self.disc.requires_grad_(True)
            loss = loss + cfg.loss.adversarial_weight * g
            logs["loss/adversarial_g"] = g.item()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
            logs["grad_norm"] = norm.item()
        self.optimizer.step()
        self.scheduler.step()
        if self.disc_net is not None and self.disc_opt is not None:
            # Real and fake in one forward, so DDP sees one forward per backward.
            scores = self.disc_net(torch.cat([x, x]), torch.cat([y, outputs[0].detach()]))
            real, fake = scores.chunk(2)
            d = discriminator_loss(real, fake)
            self.disc_opt.zero_grad(set_to_none=True)
            d.backward()
            self.disc_opt.step()
            logs["loss/adversarial_d"] = d.item()
        logs["loss/total"] = loss.item()
        logs["lr"] = self.scheduler.get_last_lr()[0]
        return logs

    @torch.no_grad()
    def predict(
        self, data: PairDataset, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs, predictions and targets of a whole (small) dataset, on the CPU."""
        self.model.eval()
        xs, ps, ys = [], [], []
        # A private generator: validating must not move the global RNG the training run uses.
        loader: DataLoader[tuple[torch.Tensor, torch.Tensor]] = DataLoader(
            data, batch_size=batch_size, shuffle=False,  # type: ignore[arg-type]
            generator=torch.Generator().manual_seed(0),
        )
        for x, y in loader:
            with self._autocast():
                p = self.model(self._to_device(x))
            xs.append(x)
            ps.append(p.float().cpu())
            ys.append(y)
        return torch.cat(xs), torch.cat(ps), torch.cat(ys)

    def validate(self) -> dict[str, float]:
        """``val_``-prefixed metrics (per output channel and their means) on the validation set."""
        x, p, y = self.predict(self.val_data, self.cfg.train.val_batch_size)
        metrics = {f"val_{k}": v for k, v in all_metrics(p, y).items()}
        n = self.cfg.train.sample_images
        if self.run_log is not None and n:
            self.run_log.images(self.step, "val/input|prediction|truth|error",
                                comparison_grid(x[:n], p[:n], y[:n]))
            save_comparison(self.run_dir / "samples" / f"step_{self.step:07d}.png",
                            x[:n], p[:n], y[:n], title=f"step {self.step}")
        return metrics

    def _modules(self) -> dict[str, Any]:
        return {
            "optimizers": {"model": self.optimizer}
            | ({"disc": self.disc_opt} if self.disc_opt else {}),
            "schedulers": {"model": self.scheduler},
            "extra_modules": {"disc": self.disc} if self.disc is not None else {},
        }

    def _checkpoint(self, name: str) -> None:
        ckpt.save_checkpoint(
            self.run_dir / "checkpoints" / name,
            model=self.model,
            config_json=self.cfg.model_dump_json(indent=2),
            state={
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "best_val_mae": self.best_val_mae,
                "elapsed_s": self.elapsed_s,
                "world_size": self.dist.world_size,
                "schedule_steps": self.schedule_steps,
            },
            **self._modules(),
        )
        if name == "last":
            self._saved_step = self.step

    def _resume_state(self) -> None:
        last = self.run_dir / "checkpoints" / "last"
        if ckpt.resolve_checkpoint(last) is None:
            raise TrainingError(f"{self.run_dir}: no checkpoint to resume from ({last} is missing)")
        saved = saved_run_config(last, self.cfg)
        diffs = [] if saved is None else config_differences(saved, self.cfg.model_dump(mode="json"))
        if diffs:
            raise TrainingError(
                f"{self.run_dir}: config differs from the saved run in {', '.join(diffs)}; "
                "start a new run (another name, or --overwrite) to change these"
            )
        state = ckpt.load_checkpoint(last, model=self.model, **self._modules())
        if state.get("world_size", 1) != self.dist.world_size:
            raise TrainingError(
                f"{last}: saved with {state['world_size']} processes, resumed with "
                f"{self.dist.world_size}; the data order would change"
            )
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch, self.best_val_mae = state["batch_in_epoch"], state["best_val_mae"]
        self.elapsed_s = state["elapsed_s"]
        self._saved_step = self.step
        saved_steps = int(saved["train"]["steps"]) if saved else self.cfg.train.steps
        self.schedule_steps = int(state.get("schedule_steps", saved_steps))
        self.weights = BranchWeightSchedule(
            self.cfg.loss.branch_schedule, self.cfg.model.branches + 1, self.schedule_steps
        )
        log.info("resumed %s at step %d", self.run_dir, self.step)
        steps = self.cfg.train.steps
        if steps != saved_steps and self.dist.is_main:
            o = self.cfg.optim
            how = {
                "cosine": f"cosine ends at lr {o.lr * o.min_lr_ratio:.3g} and holds it after that",
                "step": f"step decay goes on every {o.step_every} steps",
                "constant": "constant lr",
            }[o.schedule]
            log.info(
                "train.steps %d -> %d: the learning-rate and branch-weight schedules keep their "
                "%d-step horizon (%s)", saved_steps, steps, self.schedule_steps, how,
            )
        if self.step >= steps:
            log.info("the run is at step %d already; train.steps=%d leaves nothing to do",
                     self.step, steps)

    def _prepare_run_dir(self) -> None:
        if self.resume:
            self._resume_state()
        elif self.run_dir.is_dir() and any(self.run_dir.iterdir()) and not self.overwrite:
            raise TrainingError(
                f"{self.run_dir}: holds a run already; pass --resume to continue it, --overwrite "
                "to replace it, or choose another name/out_dir"
            )
        self.dist.barrier()  # every rank has looked at the folder before rank 0 changes it
        if self.dist.is_main:
            if self.overwrite:
                for entry in RUN_ARTIFACTS:
                    path = self.run_dir / entry
                    if path.is_dir():
                        shutil.rmtree(path)
                    elif path.exists():
                        path.unlink()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            from mcnn.config_io import save_config

            save_config(self.cfg, self.run_dir / "config.json")
            self.run_log = RunLog(
                self.run_dir, self.cfg.train.tensorboard,
                fields=csv_fields(self.cfg.model.out_channels),
                resume_step=self.step if self.resume else None,
            )

    def _loader(self) -> DataLoader:
        t = self.cfg.train
        sampler = EpochSampler(
            len(self.train_data), t.batch_size, seed=t.seed, epoch=self.epoch,
            rank=self.dist.rank, world_size=self.dist.world_size,
        )
        if self.batch_in_epoch >= sampler.batches_per_epoch:  # the last step ended an epoch
            self.epoch += 1
            self.batch_in_epoch = 0
            sampler.epoch = self.epoch
        sampler.start_batch = self.batch_in_epoch
        set_epoch(self.train_data, self.epoch)
        # Worker seeds come from (seed, epoch) alone, not from the global RNG.
        gen = torch.Generator().manual_seed(t.seed * 1_000_003 + self.epoch)
        workers = loader_workers(t.num_workers, self.device.type, self.dist.world_size)
        return DataLoader(
            self.train_data,  # type: ignore[arg-type]
            batch_size=t.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=workers,
            prefetch_factor=4 if workers > 0 else None,
            pin_memory=self.device.type == "cuda",
            generator=gen,
        )

    def _run_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        try:
            logs = self.training_step(self._to_device(x), self._to_device(y))
        except torch.OutOfMemoryError:
            raise TrainingError(
                f"out of memory on {self.device} at train.batch_size={self.cfg.train.batch_size}; "
                "lower train.batch_size or the image size"
            ) from None
        if not math.isfinite(logs["loss/total"]):
            raise TrainingError(
                f"loss is {logs['loss/total']} at step {self.step + 1}; lower optim.lr, set "
                "optim.grad_clip, or check the data for NaN/inf ("
                + (f"checkpoints/last keeps step {self._saved_step}, with finite weights)"
                   if self._saved_step > 0 else "no checkpoint was written)")
            )
        return logs

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
        redirect: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.progress and self.dist.is_main:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            bar = tqdm(total=t.steps, initial=self.step, unit="it", dynamic_ncols=True)
            redirect = logging_redirect_tqdm()
        reporter = ProgressReporter(t.steps, self.step, every_s=t.progress_every_s)
        running: list[float] = []
        start_wall, start_elapsed, start_step = time.perf_counter(), self.elapsed_s, self.step
        try:
            with self._stop.installed(), redirect:
                while self.step < t.steps:
                    for x, y in self._loader():
                        self._mid_step = True
                        logs = self._run_step(x, y)
                        self.step += 1
                        self.batch_in_epoch += 1
                        self._mid_step = False
                        self.elapsed_s = start_elapsed + time.perf_counter() - start_wall
                        running.append(logs["loss/total"])
                        self.on_step_end(self.step, logs)
                        if bar is not None:
                            bar.update(1)
                            bar.set_postfix(loss=f"{logs['loss/total']:.4f}", refresh=False)
                        if self.dist.is_main:
                            reporter.update(self.step, logs["loss/total"], logs["lr"])
                        if self.run_log is not None and self.step % t.log_every == 0:
                            self.run_log.scalars(self.step, {f"train/{k}": v for k, v in logs.items()})
                        if self.step % t.val_every == 0 or self.step == t.steps:
                            self._validate_and_log(running)
                            running = []
                        if self.step % t.checkpoint_every == 0 or self.step == t.steps:
                            self._save_last()
                        if self.step >= t.steps:
                            break
                        if self._stop.agreed(self.dist.enabled, self.device):
                            if self._saved_step != self.step:
                                self._save_last()
                            log.warning("stopped by %s at step %d; checkpoint saved, continue with "
                                        "--resume", self._stop.name, self.step)
                            raise KeyboardInterrupt
        except KeyboardInterrupt:
            if self._saved_step != self.step and self.step > 0:
                if self._mid_step:
                    log.warning("interrupted inside step %d; the checkpoint of step %d is kept",
                                self.step + 1, self._saved_step)
                elif self.dist.is_main:
                    self._checkpoint("last")
                    log.warning("interrupted at step %d; checkpoint saved, resume with --resume",
                                self.step)
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

    def _save_last(self) -> None:
        if self.dist.is_main:
            self._checkpoint("last")
        self._saved_step = self.step
        self.dist.barrier()

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
            channels = self.cfg.model.out_channels
            per_channel = "" if channels == 1 else " (" + ", ".join(
                f"c{k} {metrics[f'val_mae_c{k}']:.4f}" for k in range(channels)) + ")"
            log.info(
                "step %d/%d  loss %.4f  val MAE %.4f%s  PSNR %.2f dB  SSIM %.3f  %.2f it/s  ETA %s",
                self.step, self.cfg.train.steps, train_loss, metrics["val_mae"], per_channel,
                metrics["val_psnr"], metrics["val_ssim"], rate, hms(eta),
            )
            if metrics["val_mae"] < self.best_val_mae:
                self.best_val_mae = metrics["val_mae"]
                self._checkpoint("best")
            self.on_validation_end(self.step, metrics)
        self.dist.barrier()

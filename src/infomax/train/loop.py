"""The training loop: Adam on the DIM objective (α·global + β·local + γ·KL) over the train split.

One process, or several under torchrun (train/distributed.py): then each rank takes its share of
every global batch, the objective sees the global batch (features gathered across ranks),
BatchNorm statistics span it (train/sync_batchnorm.py), DistributedDataParallel averages the
gradients, and rank 0 writes checkpoints and logs. With `optim.ema` the run keeps the moving
average of its weights (train/average.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from infomax import speedups
from infomax.atomic import atomic_write
from infomax.data.dataset import Dataset
from infomax.data.stream import Stream
from infomax.device import autocast, keep_freed_memory, pick_device
from infomax.errors import InfomaxError, TrainingDiverged
from infomax.config import Config
from infomax.model.config import ModelConfig, num_blocks_for
from infomax.model.dim import DIM
from infomax.train import distributed
from infomax.train.average import WeightAverage
from infomax.train.feed import augment_for, feed_for
from infomax.train.logs import RunLog
from infomax.train.recalibrate import recalibrate_batchnorm
from infomax.train.schedule import lr_factor, run_fraction
from infomax.train.state import restore_state, save_state
from infomax.train.sync_batchnorm import sync_batchnorm, unsync_batchnorm
from infomax.train.whiten import fit_whitening

MONITORS = ("global_acc", "local_acc")  # critic accuracy, logged only (loss terms: the objective's weights)


def compile_kernels_enabled() -> bool:
    """False when the environment sets INFOMAX_COMPILE=0: training then leaves out the compiled kernels."""
    return os.environ.get("INFOMAX_COMPILE", "1") != "0"


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    epoch: int
    images_per_s: float  # over the steps run in this call, start-up excluded
    last_losses: dict[str, float]
    stopped_by: str  # "epochs" | "max_steps" | "time_budget"
    model: DIM | None = None  # the trained encoder and its objective, in eval mode


def model_config_for(cfg: Config, dataset: Dataset, encoder: torch.nn.Module | None = None) -> ModelConfig:
    """cfg.model with the data's image size and channels (and "custom" for an encoder passed in)."""
    c, h, w = dataset.image_shape
    if h != w:
        raise InfomaxError(f"images are {h}×{w}; the model needs square images: load them with size=N")
    name = "custom" if encoder is not None else cfg.model.encoder
    if cfg.model.train_size > h:
        raise InfomaxError(f"model.train_size = {cfg.model.train_size} is larger than the {h}-pixel images: "
                           f"train at {h} or less (--train-size; 0: the images' own side)")
    mc = dataclasses.replace(cfg.model, image_size=h, in_channels=c, encoder=name)
    side = mc.train_side  # the training views'
    augment = augment_for(cfg, dataset.image_shape)
    if (name == "cnn" and augment is not None and 0 < augment.rescale < side
            and num_blocks_for(augment.rescale) != mc.num_blocks):
        smallest = 2 ** (mc.num_blocks + 1) + 1  # the smallest size with the same number of blocks
        raise InfomaxError(f"augment rescale={augment.rescale}: {side}-pixel views resized that small no longer "
                           f"pool to a 3×3 or 4×4 map in the encoder's {mc.num_blocks} blocks; "
                           f"use rescale={smallest} to {side}")
    return mc


def run_config(cfg: Config, model_cfg: ModelConfig, dataset: Dataset) -> dict:
    """Everything embed/eval/resume need: the settings, the model, and how pixels are read."""
    return {
        "train": cfg.to_dict(),
        "model": model_cfg.to_dict(),
        "objective": cfg.objective.to_dict(),
        "data": {
            "spec": dataset.spec,
            "kind": dataset.kind,
            "normalization": dataset.normalization,
            "image_shape": list(dataset.image_shape),
            "class_names": dataset.class_names,
            "options": dataset.options,
        },
    }


def train(cfg: Config, run_dir: str | Path, dataset: Dataset | Stream, *, resume: bool = False, progress: bool = True,
          encoder: torch.nn.Module | None = None) -> TrainResult:
    """Train on dataset's train split (or on a Stream of webdataset shards) into run_dir (config,
    checkpoints, logs); with `encoder`, that module (mapping images to a local feature map,
    model/encoders.py) instead of cfg.model's. Under torchrun, on every process (train/distributed.py)."""
    run_dir = Path(run_dir)
    model_cfg = model_config_for(cfg, dataset, encoder)
    optim, run = cfg.optim, cfg.run
    ranks = distributed.setup()
    config = run_config(cfg, model_cfg, dataset)
    device = distributed.device_for(pick_device(run.device), ranks)
    if device.type == "cpu":
        keep_freed_memory()  # no page faults from re-mapping each step's activation buffers
    channels_last = device.type != "mps"
    feed = feed_for(dataset, cfg, ranks, device, channels_last)  # this rank's batches: arrays or a stream
    torch.manual_seed(run.seed)
    if run.deterministic:
        torch.use_deterministic_algorithms(True)
    model = DIM(model_cfg, cfg.objective, encoder).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ranks.distributed and run.sync_batchnorm:
        sync_batchnorm(model, device)  # before the speed-ups: their fused BatchNorm leaves synced ones alone
    kernels = compile_kernels_enabled()
    for line in speedups.apply(model, precision=run.precision, device=device, compile_kernels=kernels):
        logging.getLogger(__name__).info("speed-up: %s", line)
    loss_of = distributed.loss_function(model, ranks, device, synced_batchnorm=run.sync_batchnorm)
    # the fused Adam updates every tensor in one kernel: on the CPU a ninth of the time of the
    # per-tensor loop that torch picks by default (benchmarks/bench_flops.py)
    fused = device.type in ("cpu", "cuda") or None
    opt = torch.optim.Adam(model.parameters(), lr=optim.lr, eps=optim.adam_eps, fused=fused)
    gen = torch.Generator(device=device).manual_seed(run.seed)  # negatives and ε: the same on every rank
    # augmentations: one process draws them from gen; each of several ranks from its own generator
    aug_gen = torch.Generator(device=device).manual_seed(run.seed + 7919 * (ranks.rank + 1)) if ranks.distributed else None
    average = WeightAverage(model, optim.ema) if optim.ema > 0 else None  # the weights checkpoints keep
    step, trained_before = 0, 0.0  # steps and seconds of training done by earlier calls (resume)
    resume = resume or (distributed.restart_count() > 0 and (run_dir / "checkpoints" / "latest.json").is_file())
    if resume:
        step, trained_before = restore_state(run_dir, config, model, opt, gen, aug_gen, average)
    elif (run_dir / "checkpoints" / "latest.json").is_file():
        raise InfomaxError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    distributed.barrier()  # every rank has checked the folder before rank 0 writes into it
    if ranks.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "config.json", json.dumps(config, indent=2))

    steps_per_epoch = feed.steps_per_epoch
    total = optim.max_steps if optim.max_steps is not None else optim.epochs * steps_per_epoch
    if step < total:
        model.whitening.reset()  # one fitted to earlier weights (a finished run trained on) is refitted at the end
    log = RunLog(run_dir, resume_step=step if resume else None) if ranks.main else None
    terms_used = tuple(cfg.objective.weights)
    monitors = MONITORS + (("local_local_acc",) if cfg.objective.delta > 0 else ()) + {
        "kl": (), "none": ("kl",), "adversarial": ("kl", "prior_critic")}[cfg.objective.prior]
    bar = _progress(progress and ranks.main, total, step)
    logged = ("loss",) + terms_used + monitors
    sums = torch.zeros(len(logged), device=device)  # summed over the log window, synced only when logged
    window_start, window_steps, ran, t0 = time.perf_counter(), 0, 0, time.perf_counter()
    budget_s = optim.time_budget * 60 if optim.time_budget is not None else None
    trained = trained_before  # seconds of training in the run so far, earlier calls included
    stopped_by = "max_steps" if optim.max_steps is not None else "epochs"
    fed_epoch = -1
    model.train()
    try:
        while step < total:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != fed_epoch:  # a new epoch, or the middle of one after a resume
                feed.start(epoch, skip=pos)
                fed_epoch = epoch
            views = feed.views(cfg.data.views, aug_gen or gen)  # and the small crops last, with multi-crop
            small = views[cfg.data.views] if cfg.data.small_crops else None
            with autocast(device, run.precision):
                loss, terms = loss_of(views[0], views[1] if cfg.data.views == 2 else None, gen, small)
            if not torch.isfinite(loss):
                bad = [k for k in terms_used if not torch.isfinite(terms[k])]
                raise TrainingDiverged(
                    f"the loss became {loss.item()} at step {step + 1} (term: {', '.join(bad) or 'total'}); "
                    f"training stopped, the last good checkpoint in {run_dir / 'checkpoints'} is intact. "
                    "Try a lower --lr or --precision fp32"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lr = optim.lr * lr_factor(optim.lr_schedule, run_fraction(step, total, trained, budget_s))
            for group in opt.param_groups:
                group["lr"] = lr
            opt.step()
            if average is not None:
                average.update(model)
            step += 1
            ran += 1
            window_steps += 1
            sums += torch.stack([loss.detach()] + [terms[k].detach().float() for k in terms_used + monitors])
            now = time.perf_counter()
            trained = trained_before + now - t0
            out_of_time = budget_s is not None and distributed.any_rank(trained >= budget_s, device)
            if ranks.main and (step % run.log_every == 0 or step == total or out_of_time):
                row = dict(zip(logged, (sums / window_steps).tolist()))
                row.update(step=step, epoch=step / steps_per_epoch, elapsed_s=round(trained, 3),
                           lr=lr, images_per_s=window_steps * optim.batch_size / (now - window_start))
                log.write(row)
                bar.set_postfix(epoch=f"{row['epoch']:.2f}", img_s=f"{row['images_per_s']:.0f}",
                                **{k: f"{row[k]:.4f}" for k in ("loss",) + terms_used})
                sums.zero_()
                window_start, window_steps = time.perf_counter(), 0
            bar.update(1)
            if step % run.checkpoint_every == 0 and step < total:
                save_state(run_dir, config, model, opt, gen, aug_gen, step, steps_per_epoch, trained, average)
            if out_of_time:
                stopped_by = "time_budget"
                break
        elapsed = time.perf_counter() - t0
        if average is not None:
            average.use(model)  # the model holds θ̄ from here on: re-estimated, saved, returned
        if run.bn_recalibrate and ran:  # after the clock: not part of the time budget
            # each rank its share of the images; synced BatchNorms combine them
            recalibrate_batchnorm(model.encoder, feed.plain_batches(run.bn_recalibrate), precision=run.precision)
        if run.whiten and ran:  # under the final BatchNorm statistics
            fit_whitening(model.encoder, model.whitening, feed.plain_batches(run.whiten),
                          power=run.whiten_power, mirror=run.mirror)
        save_state(run_dir, config, model, opt, gen, aug_gen, step, steps_per_epoch, trained_before + elapsed, average)
        distributed.barrier()  # the last checkpoint is on disk before any rank returns (and reads it)
    finally:
        bar.close()
        if log is not None:
            log.close()
    last = {k: float(terms[k].item()) for k in terms_used} if ran else {}
    unsync_batchnorm(model)
    model.eval()
    return TrainResult(run_dir, step, step // steps_per_epoch, ran * optim.batch_size / max(elapsed, 1e-9), last,
                       stopped_by, model)


def _progress(enabled: bool, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)


__all__ = ["train", "TrainResult", "model_config_for", "run_config"]

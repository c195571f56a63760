"""A training run's state in its checkpoints: weights, optimizer, step, clock and every random
stream, so that `--resume` continues exactly where the run stopped. With `optim.ema` the
weights saved are the average θ̄ and the state carries the trained θ (train/average.py).

Random streams: `generator` draws the objective's negatives and ε (the same on every rank, so
every rank computes the same objective on the global batch); with several processes each rank
also has its own augmentation generator and torch RNG, saved per rank. Rank 0 writes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from infomax.checkpoint import config_difference, load_checkpoint, save_checkpoint
from infomax.errors import InfomaxError
from infomax.model.config import ModelConfig
from infomax.objective.config import ObjectiveConfig
from infomax.train import distributed
from infomax.train.average import WeightAverage, load_parameters

log = logging.getLogger(__name__)


def rank_streams(augment_gen: torch.Generator | None) -> dict:
    """This rank's own random streams (augmentation generator under DDP, the torch RNG)."""
    return {"torch_rng": torch.get_rng_state(),
            "augment_generator": augment_gen.get_state() if augment_gen is not None else None}


def save_state(run_dir: Path, config: dict, model, opt, gen, augment_gen, step: int, steps_per_epoch: int,
               trained_s: float, average: WeightAverage | None = None) -> None:
    """A checkpoint of the run (collective under DDP: every rank calls it, rank 0 writes); with
    `average`, its weights are the average θ̄ and its state carries the trained θ."""
    streams = distributed.all_objects(rank_streams(augment_gen))
    if not distributed.current().main:
        return
    state = {
        "train_seconds": trained_s,  # training time so far, all calls together (the time budget counts it)
        "optimizer": opt.state_dict(),
        "step": step,
        "epoch": step // steps_per_epoch,
        "position": step % steps_per_epoch,
        "generator": gen.get_state(),
        "torch_rng": streams[0]["torch_rng"],
        "world_size": len(streams),
        "ranks": streams,
    }
    weights = None
    if average is not None:
        weights, state["trained"] = average.checkpoint(model)
        state["average_step"] = average.step
    save_checkpoint(run_dir, config=config, model=model, state=state, step=step, epoch=step // steps_per_epoch,
                    weights=weights)


def restore_state(run_dir: Path, config: dict, model, opt, gen, augment_gen,
                  average: WeightAverage | None = None) -> tuple[int, float]:
    """Load the last checkpoint into model, optimizer, generators and `average`; (step, seconds trained).
    Under DDP with the saved world size every rank gets its own streams back; with another world
    size the run continues with a warning (the order of the rest of the epoch differs)."""
    ckpt = load_checkpoint(run_dir)
    old = ckpt.config
    diff = config_difference(ModelConfig.from_dict(old["model"]).to_dict(), config["model"])
    diff += [f"objective.{line}" for line in config_difference(ObjectiveConfig.of_run(old).to_dict(),
                                                                config["objective"])]
    diff += [f"data.{line}" for line in config_difference(
        {k: old["data"].get(k) for k in ("normalization", "image_shape")},
        {k: config["data"].get(k) for k in ("normalization", "image_shape")})]
    if diff:
        raise InfomaxError("--resume refused: the model config differs from the checkpoint's:\n  " + "\n  ".join(diff))
    model.load_state_dict(ckpt.weights)  # θ̄ where the run averaged its weights
    state = ckpt.training_state()
    if average is not None:  # θ̄, or the weights of a run that did not average them
        average.reset(model, int(state.get("average_step", 0)))
    if "trained" in state:
        load_parameters(model, state["trained"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    ranks = distributed.current()
    saved_world = int(state.get("world_size", 1))
    if saved_world == ranks.world_size:
        streams = state.get("ranks") or [{"torch_rng": state["torch_rng"], "augment_generator": None}]
        torch.set_rng_state(streams[ranks.rank]["torch_rng"])
        if augment_gen is not None and streams[ranks.rank]["augment_generator"] is not None:
            augment_gen.set_state(streams[ranks.rank]["augment_generator"])
    else:
        if ranks.main:
            log.warning("resuming a run of %d processes with %d: training continues from step %s, but the rest "
                        "of this epoch's image order and the augmentations differ from an uninterrupted run",
                        saved_world, ranks.world_size, state["step"])
        torch.manual_seed(int(state["step"]) * 1009 + ranks.rank)
        if augment_gen is not None:
            augment_gen.manual_seed(int(state["step"]) * 1009 + ranks.rank)
    return int(state["step"]), float(state.get("train_seconds", 0.0))

"""`infomax train`: learn an encoder on the train split of a data set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# flag name -> (type, help); every flag defaults to None so only what the user set overrides
FLAGS = {
    "preset": (str, "settings preset: recommended (default) or seed (the reference's settings)"),
    "encoder": (str, "the encoder: cnn (the reference's, default) or resnet18 (CIFAR-style ResNet-18)"),
    "epochs": (int, "passes over the train split (seed: 50; 100 for tiny-imagenet)"),
    "max_steps": (int, "stop after this many optimizer steps (overrides --epochs)"),
    "time_budget": (float, "stop after this many minutes of training (start-up excluded; with --resume, "
                           "minutes in all, the time already trained included); without --epochs and --max-steps "
                           "it is the run's length: the presets' epochs no longer apply, and recommended "
                           "trains at --channels 256 once the budget buys 15 passes over the train split at 750 "
                           "images/s of 32×32 training views (--train-size; a quarter of that at 64×64): from "
                           "16.7 minutes for 50,000 images of 32×32)"),
    "alpha": (float, "weight of the global MI term (seed 0.5)"),
    "beta": (float, "weight of the local MI term (seed 1.5)"),
    "gamma": (float, "weight of the prior term (seed 0.01)"),
    "prior": (str, "kl (the reference's KL to N(0, I)), adversarial (DIM's discriminator on z) or none"),
    "delta": (float, "weight of the local–local MI term (seed 0: off)"),
    "batch_size": (int, "images per step, all processes together: under torchrun each of N processes takes "
                        "batch-size / N (seed 64; 100 for tiny-imagenet)"),
    "lr": (float, "Adam learning rate (seed 1e-3)"),
    "lr_schedule": (str, "constant (the reference's), cosine (decays to 0 at the end of the run: its "
                         "steps, or its time budget) or wsd (constant, then linear to 0 over the last 20 %%)"),
    "precision": (str, "fp32 or bf16 (autocast)"),
    "seed": (int, "random seed for weights, data order and negatives"),
    "device": (str, "auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps"),
    "z_dim": (int, "feature size (seed 256)"),
    "channels": (int, "encoder width: channels of the local map and the head (seed 256, recommended 128 or 256 for a "
                      "long --time-budget; earlier blocks halve it)"),
    "head_convs": (int, "encoder depth: 3×3 convolutions after the local map (seed 2)"),
    "train_size": (int, "train the cnn encoder on views of this side in pixels, embed the images at their own "
                        "(default 0: their own side; recommended: half the side of images of 64 px and larger)"),
    "negatives": (str, "shuffle (the reference's: an independent in-batch shuffle for each critic), derangement "
                       "(never the image itself), or all (every other image of the batch; needs --critic dot)"),
    "estimator": (str, "MI estimator: jsd (the reference's), infonce, dv or hellinger"),
    "critic": (str, "concat (the reference's MLP on a pair) or dot (embed each side, dot product)"),
    "temperature": (float, "dot critic: 0 scores φ·ψ/√d (default); τ > 0 scores the cosine of φ and ψ over τ"),
    "queue": (int, "keep this many past codes as more negatives of the global term (MoCo's queue; default 0: "
                   "none; needs --estimator infonce --critic dot --negatives all)"),
    "global_pairing": (str, "zz (the reference's [z, z] pairs) or xz (the paper's T(x, z))"),
    "augment": (str, "none, default, or options like crop=pad,pad=4,flip=0.5,jitter=0.4,hue=0.1,grayscale=0.2"),
    "views": (int, "1, or 2: two augmented views of each image, each scored against the other"),
    "small_crops": (int, "multi-crop: this many small crops of each image (area 0.1–0.5, at half the side), "
                         "each scored against every view's code and local map (default 0: none)"),
    "small_crop_size": (int, "side of the small crops in pixels (default 0: half the image's side)"),
    "bn_recalibrate": (int, "after training, re-estimate BatchNorm's statistics on this many plain train images "
                            "(seed 0: off; recommended 10240)"),
    "whiten": (int, "after training, whiten the kept feature μ by its covariance over this many plain train "
                    "images, each principal direction scaled by variance^-p (--whiten-power; seed 0: off; "
                    "recommended 10240)"),
    "whiten_power": (float, "the power p of the whitening, y = (μ − m)·C^-p (default 0.25, recommended 0.3; 0.5 "
                            "whitens fully)"),
    "ema": (float, "keep the moving average of the weights with this decay (e.g. 0.99) instead of the last "
                   "weights: what embed, eval and serve use (default 0: off)"),
    "workers": (int, "processes decoding a webdataset: stream (default: 0, in the training process, "
                     "where it may use 2 cores or fewer; else 2)"),
    "checkpoint_every": (int, "write a checkpoint every N steps (and at the end)"),
    "log_every": (int, "log the loss terms every N steps"),
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train an encoder (Deep InfoMax with a KL prior)",
                              description="Train on the train split only; test/val images are never seen.")
    p.add_argument("--data", help="data spec, e.g. cifar10:PATH, folder:PATH,size=32, webdataset:DIR, digits "
                                  "(required unless --resume)")
    p.add_argument("--out", required=True, help="run folder: config, checkpoints, logs")
    p.add_argument("--config", help="TOML or YAML file of settings; flags override it")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--deterministic", action="store_true", default=None, help="deterministic algorithms only")
    p.add_argument("--multiscale", action="store_true", default=None,
                   help="local MI also on the feature map one block before the last (8×8 for 32×32 input)")
    p.add_argument("--attention", action="store_true", default=None,
                   help="a self-attention block on the feature map one block before the last")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="the kept feature averages μ over each image and its left-right mirror (embed, search, "
                        "serve, export and the whitening fit; twice the forward passes; recommended: on, seed: off; "
                        "needs an augmentation that flips)")
    p.add_argument("--no-sync-batchnorm", dest="sync_batchnorm", action="store_false", default=None,
                   help="under torchrun: BatchNorm statistics of each process's own images (default: of the "
                        "global batch, as one process would compute them)")
    for name, (typ, help_) in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None, help=help_)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from infomax.api import load_data
    from infomax.device import pick_device
    from infomax.errors import InfomaxError
    from infomax.speedups import first_step_notice
    from infomax.config import Config, read_config_file, resolve
    from infomax.train import distributed
    from infomax.train.feed import augment_for
    from infomax.train.loop import compile_kernels_enabled, train

    flags = {name: getattr(args, name) for name in FLAGS}
    flags["deterministic"] = args.deterministic
    flags["multiscale"] = args.multiscale
    flags["attention"] = args.attention
    flags["sync_batchnorm"] = args.sync_batchnorm
    flags["mirror"] = args.mirror
    ranks = distributed.setup()  # under torchrun: join the process group
    file_values = read_config_file(args.config) if args.config else {}
    saved = Path(args.out) / "config.json"
    if args.resume:
        if not saved.is_file():
            raise InfomaxError(f"--resume: {args.out} holds no run (no config.json); start one without --resume")
        # the saved settings are the base; a file or flags may still change e.g. --epochs
        saved_config = json.loads(saved.read_text())
        base = Config.from_dict(saved_config["train"])
        file_values = {**base.to_flat(), "preset": base.preset, **file_values}
    spec = args.data or (saved_config["data"].get("spec") if args.resume else None)
    if not spec:
        raise InfomaxError("--data is required (e.g. --data cifar10:~/data/cifar-10-python.tar.gz or --data digits)")
    with distributed.main_first():  # rank 0 decodes (and caches) first, the others then read its cache
        dataset = load_data(spec)  # a decoded data set, or a Stream of webdataset: shards
    cfg = resolve(dataset.kind, file_values, flags, image_size=dataset.image_shape[1],
                  train_images=dataset.train_images)
    say = print if ranks.main else (lambda *a, **k: None)
    if args.resume and base.to_flat() != cfg.to_flat():
        changed = [k for k, v in cfg.to_flat().items() if v != base.to_flat()[k]]
        say(f"resuming with changed settings: {', '.join(changed)}")
    say("resolved config:\n" + json.dumps(cfg.to_dict(), indent=2), flush=True)
    h = dataset.image_shape[1]
    side = cfg.model.train_size or h
    augment = augment_for(cfg, dataset.image_shape)  # what `default` is for these images
    say(f"augmentation: {augment.text() if augment else 'none'}; {side}×{side} views of {h}×{h} images", flush=True)
    notice = first_step_notice(cfg.run.precision, pick_device(cfg.run.device),
                               compile_kernels=compile_kernels_enabled())
    if notice and cfg.model.encoder == "cnn":  # the kernels are the cnn encoder's
        say(notice, flush=True)
    result = train(cfg, args.out, dataset, resume=args.resume, progress=not args.no_progress)
    say(f"trained {result.step} steps ({result.stopped_by}), {result.images_per_s:.0f} images/s; "
          f"losses: " + ", ".join(f"{k} {v:.4f}" for k, v in result.last_losses.items()))
    say(f"checkpoint: {result.run_dir / 'checkpoints'}")
    return 0

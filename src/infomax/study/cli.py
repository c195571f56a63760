"""`infomax study`: compare training variants on the same data and budget."""

from __future__ import annotations

import argparse
from pathlib import Path

# Each variant: (what it is, its settings: any key of infomax.config, as infomax.fit takes them).
# The global-vs-local study: which MI terms and the prior matter (α·global + β·local + γ·KL).
GLOBAL_LOCAL = {
    "global-only": ("β = 0: global MI and prior", {"preset": "seed", "beta": 0}),
    "local-only": ("α = 0: local MI and prior", {"preset": "seed", "alpha": 0}),
    "both": ("seed: α = 0.5, β = 1.5, γ = 0.01", {"preset": "seed"}),
    "no-prior": ("γ = 0: global and local MI", {"preset": "seed", "gamma": 0}),
    "both-fp32": ("seed in fp32 instead of bf16 (same steps)", {"preset": "seed", "precision": "fp32"}),
}
# Better features for the same compute: one change at a time from seed, then the combination.
BETTER = {
    "seed": ("the reference's objective", {"preset": "seed"}),
    "infonce": ("InfoNCE instead of JSD (one negative per image)", {"preset": "seed", "estimator": "infonce"}),
    "dv": ("Donsker-Varadhan instead of JSD", {"preset": "seed", "estimator": "dv"}),
    "hellinger": ("squared Hellinger instead of JSD", {"preset": "seed", "estimator": "hellinger"}),
    "dot-all": ("InfoNCE, dot critics, every other image a negative",
                {"preset": "seed", "estimator": "infonce", "critic": "dot", "negatives": "all"}),
    "multiscale": ("local MI on the 8×8 map too", {"preset": "seed", "multiscale": True}),
    "local-local": ("local–local MI added (δ = 1)", {"preset": "seed", "delta": 1.0}),
    "no-prior": ("no prior term", {"preset": "seed", "prior": "none"}),
    "adversarial-prior": ("DIM's adversarial prior matching instead of KL (γ = 0.1)",
                          {"preset": "seed", "prior": "adversarial", "gamma": 0.1}),
    "attention": ("a self-attention block on the 8×8 map", {"preset": "seed", "attention": True}),
    "multiscale-input": ("each batch resized to a random side in 25–32 px",
                         {"preset": "seed", "augment": "crop=none,flip=0,jitter=0,grayscale=0,rescale=25"}),
    "augment": ("seed on augmented images (one view)", {"preset": "seed", "augment": "default"}),
    "two-views": ("seed on two augmented views", {"preset": "seed", "augment": "default", "views": 2}),
    "recommended-256": ("InfoNCE, dot critics, all negatives, two augmented views; the seed's width (256)",
                        {"preset": "recommended", "channels": 256, "bn_recalibrate": 0, "whiten": 0}),
    "recommended-no-recal": ("the same four changes, encoder half as wide (128)",
                             {"preset": "recommended", "bn_recalibrate": 0, "whiten": 0}),
    "recommended-no-whiten": ("the same, BatchNorm statistics re-estimated at the end",
                              {"preset": "recommended", "whiten": 0}),
    "recommended": ("preset recommended: the same, μ partially whitened at the end", {"preset": "recommended"}),
}
STUDIES = {
    "global-local": ("Global vs local MI, with and without the prior", GLOBAL_LOCAL),
    "better": ("Better features for the same compute", BETTER),
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("study", help="train variants on the same budget and compare them on one table")
    p.add_argument("name", choices=sorted(STUDIES), help="global-local: global-only, local-only, both, no prior; "
                                                     "better: estimators, critics, views, and the recommended preset")
    p.add_argument("--data", required=True, help="data spec, e.g. folder:cifar10-jpg.zip")
    p.add_argument("--out", required=True, help="study folder: one run per variant and seed, table.md, grids.png")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=5.0, help="training budget per run (default 5)")
    budget.add_argument("--steps", type=int, help="train every run for this many steps instead of --minutes")
    p.add_argument("--seeds", default="0", help="comma list of seeds (default 0)")
    p.add_argument("--variants", help="comma list: run only these variants (default: all); the table "
                                      "still lists every variant finished in --out")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--probe-epochs", type=int, metavar="N", help="override the probes' fixed epoch budget "
                   "(as infomax eval --probe-epochs)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from infomax.errors import InfomaxError
    from infomax.extras import EVAL, require_all
    from infomax.study.runner import run_study

    require_all(EVAL, "eval", "infomax study (it evaluates every run)")
    title, variants = STUDIES[args.name]
    chosen = None
    if args.variants:
        chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = sorted(set(chosen) - set(variants))
        if unknown:
            raise InfomaxError(f"unknown variants {unknown} for study {args.name}; choose from {', '.join(variants)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    run_study(variants, data=args.data, out=Path(args.out), minutes=args.minutes, steps=args.steps, seeds=seeds,
              precision=args.precision, title=title, run=chosen, probe_epochs=args.probe_epochs)
    return 0

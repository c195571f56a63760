"""The reference implementation (Keras 2 on TensorFlow) beside preset `seed`: speed, memory and
kNN accuracy at equal epochs, on this machine and the same data.

    .venv/bin/python benchmarks/bench_reference.py --keras-python TF_ENV/bin/python \\
        [--data SPEC] [--epochs 3] [--infomax fp32 bf16] [--out DIR]

TF_ENV is any Python with tensorflow 2.15 (whose tf.keras is Keras 2), e.g.
`python3.11 -m venv TF_ENV && TF_ENV/bin/pip install tensorflow-cpu==2.15.1`.

The Keras side runs in a worker process started with that Python; it needs only numpy and
tensorflow. It builds the reference's model (the encoder, the global and local critics of the
write-up's variant with a KL prior; every layer with Keras' defaults), trains it with Adam(1e-3)
at batch 64 on the train split, times training (after the first 50 batches) and embedding,
and writes μ of every image. This process writes those as an embeddings folder and scores
them with `infomax eval`; then it trains, embeds and scores preset `seed` for the same number
of epochs at each --infomax precision. It prints one table, the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.zip"
BATCH = 64  # the reference's batch size, on both sides
WARMUP_BATCHES = 50  # the first batches trace the graph; they are not timed
TERMS = ("loss", "global", "local", "kl")


def keras_worker(work: Path, epochs: int, seed: int, scale: float, offset: float) -> None:
    """Train the reference model on work/data.npz (uint8 N×H×W×C arrays "train", "test") and
    write work/mu.npy (train rows, then test rows) and work/stats.json."""
    import keras as keras_package
    import tensorflow as tf
    from tensorflow import keras
    from tensorflow.keras import layers

    if not keras_package.__version__.startswith("2."):
        raise SystemExit(f"the reference needs Keras 2 (tensorflow 2.15); {sys.executable} has Keras {keras_package.__version__}")

    alpha, beta, gamma, z_dim = 0.5, 1.5, 0.01, 256
    keras.utils.set_random_seed(seed)
    data = np.load(work / "data.npz")
    x_train = data["train"].astype("float32") * scale + offset  # as the reference: floats in memory
    x_test = data["test"].astype("float32") * scale + offset

    x_in = keras.Input(shape=x_train.shape[1:])
    h, blocks = x_in, int(np.log2(x_train.shape[1] // 4))
    for i in range(blocks):  # 3 blocks of 64, 128, 256 channels at 32 pixels; 4 of 32 … 256 at 64
        h = layers.Conv2D(z_dim // 2 ** (blocks - 1 - i), 3, padding="same")(h)
        h = layers.MaxPooling2D(2)(layers.LeakyReLU(0.2)(layers.BatchNormalization()(h)))
    local = h  # 4×4×256
    for _ in range(2):
        h = layers.LeakyReLU(0.2)(layers.BatchNormalization()(layers.Conv2D(z_dim, 3, padding="same")(h)))
    pooled = layers.GlobalMaxPooling2D()(h)
    mu, logvar = layers.Dense(z_dim)(pooled), layers.Dense(z_dim)(pooled)
    encoder = keras.Model(x_in, [mu, logvar, local])

    def critic() -> keras.Model:  # Dense layers act on the last axis: 1×1 convolutions on maps
        return keras.Sequential([layers.Dense(z_dim, activation="relu") for _ in range(3)]
                                + [layers.Dense(1, activation="sigmoid")])

    def shuffled(t):
        return tf.gather(t, tf.random.shuffle(tf.range(tf.shape(t)[0])))

    def jsd(pos, neg):  # the reference's guarded form of the Jensen-Shannon estimator
        return -tf.reduce_mean(tf.math.log(pos + 1e-6) + tf.math.log(1 - neg + 1e-6))

    class ReferenceDIM(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder, self.global_critic, self.local_critic = encoder, critic(), critic()
            self.terms = {k: keras.metrics.Mean(name=k) for k in TERMS}  # epoch averages, reset by fit

        @property
        def metrics(self):
            return list(self.terms.values())

        def train_step(self, x):
            with tf.GradientTape() as tape:
                mu, logvar, local = self.encoder(x, training=True)
                z = mu + tf.exp(logvar / 2) * tf.random.normal(tf.shape(mu))
                kl = -0.5 * tf.reduce_mean(1 + logvar - tf.square(mu) - tf.exp(logvar))
                g = jsd(self.global_critic(tf.concat([z, z], -1)), self.global_critic(tf.concat([z, shuffled(z)], -1)))
                z_map = tf.tile(z[:, None, None, :], [1, tf.shape(local)[1], tf.shape(local)[2], 1])
                l_pos = self.local_critic(tf.concat([z_map, local], -1))
                l_neg = self.local_critic(tf.concat([z_map, shuffled(local)], -1))
                loc = jsd(l_pos, l_neg)
                loss = alpha * g + beta * loc + gamma * kl
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            for k, v in zip(TERMS, (loss, g, loc, kl)):
                self.terms[k].update_state(v)
            return {k: m.result() for k, m in self.terms.items()}

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # small data sets: half of all batches are warm-up
            self.batches, self.warmup = 0, min(WARMUP_BATCHES, epochs * self.params["steps"] // 2)

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if self.batches == self.warmup:
                self.start = time.perf_counter()

    model, clock = ReferenceDIM(), Clock()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x_train, epochs=epochs, batch_size=BATCH, shuffle=True, callbacks=[clock], verbose=2)
    train_s = time.perf_counter() - clock.start
    timed_images = epochs * len(x_train) - clock.warmup * BATCH

    mu_model = keras.Model(x_in, mu)
    mu_model.predict(x_test[:1000], batch_size=BATCH, verbose=0)
    t = time.perf_counter()
    features = [mu_model.predict(x, batch_size=BATCH, verbose=0) for x in (x_train, x_test)]
    embed_s = time.perf_counter() - t
    np.save(work / "mu.npy", np.concatenate(features).astype(np.float32))
    stats = {"implementation": f"reference: Keras {keras_package.__version__}, TensorFlow {tf.__version__}",
             "train_images_per_s": timed_images / train_s, "embed_images_per_s": (len(x_train) + len(x_test)) / embed_s,
             "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
             "epoch_means": {k: [round(v, 4) for v in history.history[k]] for k in TERMS}}
    (work / "stats.json").write_text(json.dumps(stats, indent=2))


def eval_of(emb_dir: Path) -> dict:
    """The `infomax eval` results on μ of an embeddings folder."""
    return json.loads((emb_dir / "eval.json").read_text())["results"]["y"]


def reference_run(args, dataset, out: Path) -> dict:
    """The Keras worker on the data set, its μ as an embeddings folder, scored by `infomax eval`."""
    import pandas as pd

    from infomax.data.dataset import pixel_scale
    from infomax.embed.files import Embeddings, save_embeddings
    from infomax.embed.run import split_metadata
    from infomax.eval.run import evaluate

    work = out / "reference"
    work.mkdir(parents=True, exist_ok=True)
    test = dataset.heldout_split
    np.savez(work / "data.npz", **{name: dataset.split(split).images.transpose(0, 2, 3, 1)
                                   for name, split in (("train", dataset.train_split), ("test", test))})
    scale, offset = pixel_scale(dataset.normalization)
    subprocess.run([args.keras_python, __file__, "--worker", str(work), "--epochs", str(args.epochs),
                    "--seed", str(args.seed), "--scale", repr(scale), "--offset", repr(offset)], check=True)
    (work / "data.npz").unlink()
    splits = [dataset.train_split, test]
    metadata = pd.concat([split_metadata(s, dataset.split(s), dataset.class_names) for s in splits], ignore_index=True)
    info = {"checkpoint": None, "data": args.data, "class_names": dataset.class_names,
            "normalization": dataset.normalization, "implementation": "reference (Keras)"}
    save_embeddings(work / "embeddings", Embeddings(np.load(work / "mu.npy"), metadata, info))
    evaluate(work / "embeddings", features=["y"])
    stats = json.loads((work / "stats.json").read_text())
    return {**stats, "eval": eval_of(work / "embeddings")}


def infomax_run(args, precision: str, out: Path) -> dict:
    """Preset seed for the same epochs: train, embed (timed), `infomax eval`."""
    import csv

    import infomax
    from infomax.embed.run import embed_to_folder
    from infomax.eval.run import evaluate

    run = out / f"infomax-{precision}"
    infomax.fit(args.data, "seed", epochs=args.epochs, out=run, batch_size=BATCH, precision=precision,
                seed=args.seed, progress=False, log_every=50)
    emb = run / "embeddings"
    embed_to_folder(run, emb, precision=precision, progress=False)
    evaluate(emb, features=["y"])
    rows = list(csv.DictReader(open(run / "log.csv")))
    steps = np.diff([0] + [int(r["step"]) for r in rows])  # per logged window
    rates = np.array([float(r["images_per_s"]) for r in rows])
    timed = slice(1 if len(rows) > 1 else 0, None)  # the first window holds the warm-up
    epoch = np.array([float(r["epoch"]) for r in rows])
    means = {k: [] for k in TERMS}  # each logged window counts for the epoch it ends in
    for e in range(args.epochs):
        w = steps * ((epoch > e) & (epoch <= e + 1))
        for k in TERMS:
            means[k].append(round(float(np.average([float(r[k]) for r in rows], weights=w)), 4) if w.any() else float("nan"))
    embed = json.loads((emb / "embed.json").read_text())
    n = max(end for _, end in embed["splits"].values())
    return {"implementation": f"infomax seed, {precision}", "train_images_per_s": steps[timed].sum() / (steps[timed] / rates[timed]).sum(),
            "embed_images_per_s": n / embed["seconds"], "epoch_means": means,
            "eval": eval_of(emb)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keras-python", help="a Python with tensorflow 2.15 (Keras 2)")
    p.add_argument("--data", help="data spec (default: CIFAR-10 from ../shared/data)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--infomax", nargs="*", default=["fp32", "bf16"], help="precisions of the infomax runs (none: skip them)")
    p.add_argument("--out", default="bench-reference", help="folder for the runs, embeddings and reports")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--scale", type=float, help=argparse.SUPPRESS)
    p.add_argument("--offset", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return keras_worker(Path(args.worker), args.epochs, args.seed, args.scale, args.offset)
    if not args.keras_python:
        p.error("--keras-python is required: a Python with tensorflow 2.15 installed")
    if args.data is None:
        args.data = f"folder:{SHARED_CIFAR}"

    from infomax.data import load
    from infomax.device import describe_machine

    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join([os.path.relpath(sys.executable, ROOT)] + sys.argv)}")
    out = Path(args.out)
    dataset = load(args.data, progress=False)
    if dataset.heldout_split is None or dataset.num_classes is None:
        p.error(f"{args.data} needs labels and a test or val split to be scored")
    results = [reference_run(args, dataset, out)] + [infomax_run(args, prec, out) for prec in args.infomax]
    print(f"\n{args.epochs} epochs of {args.data}, batch {BATCH}, seed {args.seed}; weighted kNN k=200 on μ, "
          f"{dataset.heldout_split} as queries, train as gallery\n")
    print("| implementation | train images/s | embed images/s | kNN w200 | kNN 1 | linear probe |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        e = r["eval"]
        print(f"| {r['implementation']} | {r['train_images_per_s']:.0f} | {r['embed_images_per_s']:.0f} | "
              f"{e['knn_weighted_k200']:.2%} | {e['knn_majority_k1']:.2%} | {e['linear_probe']:.2%} |")
    print(f"\nreference: peak memory {results[0]['peak_mb']:.0f} MB\nloss terms, mean of each epoch:")
    for r in results:
        print(f"  {r['implementation']}: " + "; ".join(f"{k} {' '.join(f'{v:.3f}' for v in r['epoch_means'][k])}" for k in TERMS))
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

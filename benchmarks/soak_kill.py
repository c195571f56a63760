"""Kill -9 soak: SIGKILL `infomax train`, `embed` and `index` at random moments, rerun, compare.

    python benchmarks/soak_kill.py train --kills 25
    python benchmarks/soak_kill.py embed --kills 20
    python benchmarks/soak_kill.py index --kills 20
    python benchmarks/soak_kill.py all              # the three, one after another

train: one run is never killed (the reference). A second run in its own folder is started, killed
with SIGKILL, and resumed with `--resume`, again and again, at three kinds of moment in turn: a
random moment of the start-up, a random moment of training after 0 or 1 new checkpoints (so the
run outlasts the kills), and during a checkpoint write (as soon as its temporary folder appears). After
each kill the latest checkpoint must load and pass its sha256 check; once the kills are spent the
run finishes, and its final weights must equal the reference's bit for bit.

embed / index: the command is killed at a random moment of its run and started again with the
same arguments (an embed resumes from its finished parts), `--kills` times, then left to finish;
the output must equal an uninterrupted run's (embeddings: every vector and metadata row; index:
its rows, ids and search results).

Prints each kill (moment, what was on disk) and a summary with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from infomax.checkpoint import find_checkpoint, load_checkpoint

ENV = {**os.environ, "INFOMAX_COMPILE": "0", "PYTHONUNBUFFERED": "1"}
CHECKPOINT_EVERY = 10
TRAIN = ["--preset", "recommended", "--channels", "32", "--z-dim", "32", "--seed", "0", "--no-progress",
         "--checkpoint-every", str(CHECKPOINT_EVERY), "--log-every", "50", "--precision", "fp32"]


def infomax(*args: str) -> list[str]:
    return [sys.executable, "-m", "infomax", *args]


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


def run_to_end(cmd: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def reference_run(cmd: list[str], checkpoints: Path) -> tuple[float, float]:
    """Run to the end; (seconds in all, seconds until the first checkpoint was complete)."""
    t, first = time.perf_counter(), None
    proc = start(cmd)
    while proc.poll() is None:
        if first is None and (checkpoints / "latest.json").is_file():
            first = time.perf_counter() - t
        time.sleep(0.01)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read()[-2000:]}")
    seconds = time.perf_counter() - t
    return seconds, first if first is not None else seconds


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL `proc` after `seconds` unless it ended first; True when it was killed."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    return False


def kill_after_checkpoints(proc: subprocess.Popen, folder: Path, new: int, delay: float) -> bool:
    """SIGKILL `proc` `delay` seconds after it has written `new` more checkpoints (0: from its start)."""
    def latest() -> str:
        try:
            return (folder / "latest.json").read_text()
        except OSError:
            return ""

    seen, written = latest(), 0
    while written < new and proc.poll() is None:
        now = latest()
        if now != seen:
            seen, written = now, written + 1
        time.sleep(0.01)
    return kill_after(proc, delay)


def kill_during_write(proc: subprocess.Popen, folder: Path, limit: float) -> bool:
    """SIGKILL `proc` as soon as a temporary checkpoint folder appears (or after `limit` seconds)."""
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        if folder.is_dir() and any(p.name.startswith(".tmp-") for p in folder.iterdir()):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.001)
    return kill_after(proc, 0)


def soak_train(work: Path, kills: int, steps: int, rng: random.Random) -> dict:
    ref, run = work / "reference", work / "killed"
    base = ["train", "--data", "digits", "--max-steps", str(steps), *TRAIN]
    seconds, first = reference_run(infomax(*base, "--out", str(ref)), ref / "checkpoints")
    interval = (seconds - first) * CHECKPOINT_EVERY / steps  # seconds between two checkpoints
    print(f"reference: {steps} steps in {seconds:.1f} s, first checkpoint after {first:.1f} s")
    done = unreadable = during_write = 0
    while done < kills:
        resume = (run / "checkpoints" / "latest.json").is_file()
        proc = start(infomax(*base, "--out", str(run), *(["--resume"] if resume else [])))
        moment = ("start-up", "training", "write")[done % 3]
        if moment == "start-up":  # before the run has trained a step, or soon after
            killed = kill_after(proc, rng.uniform(0.5, first))
        elif moment == "training":  # after at most one new checkpoint: the run outlasts the kills
            killed = kill_after_checkpoints(proc, run / "checkpoints", rng.randint(0, 1), rng.uniform(0, interval))
        else:
            killed = kill_during_write(proc, run / "checkpoints", seconds)
            during_write += killed
        if not killed:
            if proc.returncode != 0:
                raise SystemExit(f"a resumed run failed:\n{proc.stderr.read()[-2000:]}")
            print(f"the run finished before kill {done + 1}: raise --steps for more kills")
            break
        done += 1
        step = "-"
        if (run / "checkpoints" / "latest.json").is_file():
            try:
                step = load_checkpoint(run).step
            except Exception as exc:  # noqa: BLE001 - the soak counts every failure to load
                unreadable += 1
                step = f"UNREADABLE ({exc})"
        print(f"kill {done:2d}: latest checkpoint step {step}")
    resume = (run / "checkpoints" / "latest.json").is_file()
    run_to_end(infomax(*base, "--out", str(run), *(["--resume"] if resume else [])))
    a, b = load_checkpoint(ref).weights, load_checkpoint(run).weights
    identical = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return {"kills": done, "during checkpoint writes": during_write, "unreadable checkpoints": unreadable,
            "final weights bit-identical": identical}


def _outputs_equal(kind: str, ref: Path, out: Path) -> bool:
    if kind == "embed":
        from infomax.embed.files import load_embeddings

        a, b = load_embeddings(ref), load_embeddings(out)
        return (np.array_equal(np.asarray(a.vectors), np.asarray(b.vectors))
                and a.metadata.equals(b.metadata))
    from infomax.embed.files import load_embeddings
    from infomax.index.store import GalleryIndex

    a, b = GalleryIndex.load(ref), GalleryIndex.load(out)
    queries = np.asarray(load_embeddings(ref.parent / "emb-reference").vectors[:64], dtype=np.float32)
    return (np.array_equal(a.embedding_rows, b.embedding_rows) and a.ids == b.ids
            and all(np.array_equal(x, y) for x, y in zip(a.search(queries, k=10), b.search(queries, k=10))))


def soak_rerun(kind: str, work: Path, kills: int, rng: random.Random, data: str) -> dict:
    """Kill an embed or index run at random moments, rerun it, compare with an uninterrupted one."""
    model = work / "model"
    if not find_checkpoint_ok(model):
        run_to_end(infomax("train", "--data", data, "--out", str(model), "--max-steps", "20", *TRAIN))
    emb = work / "emb-reference"
    if not (emb / "embed.json").is_file():
        run_to_end(infomax("embed", "--checkpoint", str(model), "--out", str(emb), "--no-progress"))

    def cmd(out: Path) -> list[str]:
        if kind == "embed":
            return infomax("embed", "--checkpoint", str(model), "--out", str(out), "--no-progress",
                           "--part-size", "200")  # several parts: a rerun resumes from the finished ones
        return infomax("index", "--embeddings", str(emb), "--out", str(out))

    ref, out = work / f"{kind}-reference", work / f"{kind}-killed"
    if kind == "embed":
        ref = emb
    else:
        run_to_end(cmd(ref))
    seconds = run_to_end(cmd(work / f"{kind}-timing"))
    done = 0
    while done < kills:
        if kill_after(start(cmd(out)), rng.uniform(0.2, seconds)):
            done += 1
            print(f"kill {done:2d}: {kind} folder {'exists' if out.exists() else 'absent'}")
    run_to_end(cmd(out))
    return {"kills": done, "one run (s)": round(seconds, 1), "output equal to an uninterrupted run": _outputs_equal(kind, ref, out)}


def find_checkpoint_ok(path: Path) -> bool:
    try:
        find_checkpoint(path)
        return True
    except Exception:  # noqa: BLE001
        return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", choices=["train", "embed", "index", "all"])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--steps", type=int, default=600, help="training steps of the train soak")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--data", default="digits", help="data of the embed and index soaks (train: digits)")
    p.add_argument("--work", help="work folder (default: a temporary one, removed at the end)")
    args = p.parse_args()
    rng = random.Random(args.seed)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="soak-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    targets = ["train", "embed", "index"] if args.target == "all" else [args.target]
    results, ok = {}, True
    try:
        for target in targets:
            print(f"\n== {target}", flush=True)
            if target == "train":
                results[target] = soak_train(work / "train", args.kills, args.steps, rng)
            else:
                results[target] = soak_rerun(target, work / "rerun", args.kills, rng, args.data)
            ok &= (all(v is not False for v in results[target].values()) and results[target]["kills"] >= args.kills
                   and not results[target].get("unreadable checkpoints"))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + json.dumps(results, indent=2))
    print(f"machine: {machine()}")
    print(f"command: python benchmarks/soak_kill.py {' '.join(sys.argv[1:])}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

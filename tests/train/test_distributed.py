"""Several processes (gloo, CPU) against one: the same loss, gradients and BatchNorm statistics.

2 ranks × 32 images must equal 1 process × 64: the objective sees the global batch (features
gathered with gradients), BatchNorm statistics span it, DDP averages the gradients.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from infomax.checkpoint import load_checkpoint
from infomax.config import Config
from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.train import distributed
from infomax.train.sync_batchnorm import SyncedBatchNorm2d, sync_batchnorm

N, WORLD = 64, 2


def _setup(preset: str, views: int, crops: int = 0):
    """The model (same init everywhere), a fixed global batch of two views (and of `crops` small
    crops of 8 px, crop-major), and its config."""
    cfg = Config.build(preset, channels=64, z_dim=32, critic_hidden=32)
    mcfg = dataclasses.replace(cfg.model, image_size=16, in_channels=3)
    torch.manual_seed(0)
    model = DIM(ModelConfig.from_dict(mcfg.to_dict()), cfg.objective)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 3, 16, 16, generator=g)
    x2 = torch.randn(N, 3, 16, 16, generator=g) if views == 2 else None
    small = torch.randn(crops * N, 3, 8, 8, generator=g) if crops else None
    return model, x, x2, small


def _step(model, loss_of, x, x2, small=None):
    loss, terms = loss_of(x, x2, torch.Generator().manual_seed(2), small)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    stats = {k: b.clone() for k, b in model.named_buffers() if "running" in k}
    return float(loss.detach()), {k: float(v.detach()) for k, v in terms.items()}, grads, stats


def _rank(rank: int, store: str, preset: str, views: int, synced: bool, out: str, crops: int = 0) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        model, x, x2, small = _setup(preset, views, crops)
        if synced:
            sync_batchnorm(model, torch.device("cpu"))
        ranks = distributed.current()
        loss_of = distributed.loss_function(model, ranks, torch.device("cpu"), synced_batchnorm=synced)
        rows = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        mine = None if small is None else torch.cat([crop[rows] for crop in small.chunk(crops)])  # crop-major
        result = _step(model, loss_of, x[rows], None if x2 is None else x2[rows], mine)
        if rank == 0:
            torch.save(result, out)
        dist.barrier()  # neither rank tears gloo down while the other may still use it
    finally:
        dist.destroy_process_group()


def _two_ranks(tmp_path, preset, views, synced=True, crops=0):
    out = tmp_path / "rank0.pt"
    mp.spawn(_rank, args=(str(tmp_path / "store"), preset, views, synced, str(out), crops), nprocs=WORLD, join=True)
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("preset,views,crops", [("recommended", 2, 0), ("seed", 1, 0), ("recommended", 2, 2)])
def test_two_ranks_of_32_equal_one_process_of_64(tmp_path, preset, views, crops):
    # recommended: negatives=all (InfoNCE, dot critics); seed: shuffles, concat critics; crops: multi-crop
    loss2, terms2, grads2, stats2 = _two_ranks(tmp_path, preset, views, crops=crops)
    model, x, x2, small = _setup(preset, views, crops)
    loss1, terms1, grads1, stats1 = _step(model, lambda a, b, g, s: model.loss(a, b, generator=g, small=s), x, x2,
                                          small)

    assert loss2 == pytest.approx(loss1, rel=1e-5)
    for k in terms1:
        assert terms2[k] == pytest.approx(terms1[k], rel=1e-4, abs=1e-6), k
    assert grads2.keys() == grads1.keys() and len(grads1) > 20
    for k, g in grads1.items():
        torch.testing.assert_close(grads2[k], g, rtol=1e-4, atol=1e-5 * float(g.abs().max()) + 1e-7, msg=lambda m, k=k: f"{k}: {m}")
    for k, s in stats1.items():  # running statistics of the global batch, synced
        torch.testing.assert_close(stats2[k], s, rtol=1e-4, atol=1e-6)


def _whiten_rank(rank: int, store: str, out: str) -> None:
    from infomax.train.whiten import fit_whitening

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        model, x, _, _ = _setup("recommended", 1)
        rows = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        n, _ = fit_whitening(model.encoder, model.whitening, [x[rows][:20], x[rows][20:]])  # this rank's share
        if rank == 0:
            torch.save((n, model.whitening.state_dict()), out)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_ranks_fit_the_whitening_of_their_images_together(tmp_path):
    from infomax.train.whiten import fit_whitening

    mp.spawn(_whiten_rank, args=(str(tmp_path / "store"), str(tmp_path / "w.pt")), nprocs=WORLD, join=True)
    n2, fitted2 = torch.load(tmp_path / "w.pt", weights_only=False)
    model, x, _, _ = _setup("recommended", 1)
    n1, _ = fit_whitening(model.encoder, model.whitening, [x])
    assert n2 == n1 == N
    for k, v in model.whitening.state_dict().items():
        torch.testing.assert_close(fitted2[k], v, rtol=1e-4, atol=1e-5 * float(v.abs().max()))


def test_without_sync_batchnorm_the_statistics_are_each_ranks_own(tmp_path):
    """The switch matters: unsynced, rank 0's BatchNorms normalize with its 32 images only."""
    loss2, _, _, stats2 = _two_ranks(tmp_path, "seed", 1, synced=False)
    model, x, _, _ = _setup("seed", 1)
    loss_half, _, _, stats_half = _step(model, lambda a, b, g, s: model.loss(a, b, generator=g), x[: N // 2], None)
    first = next(k for k in stats_half if k.endswith("running_mean"))
    torch.testing.assert_close(stats2[first], stats_half[first])  # rank 0's own statistics


def test_synced_batchnorm_alone_is_batchnorm():
    """Outside a process group (or in eval mode) the synced BatchNorm is nn.BatchNorm2d, float64 exact."""
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(5).double()
    synced = torch.nn.BatchNorm2d(5).double()
    synced.load_state_dict(bn.state_dict())
    wrapper = torch.nn.Sequential(synced)
    assert sync_batchnorm(wrapper, torch.device("cpu")) == 1 and isinstance(wrapper[0], SyncedBatchNorm2d)
    x = torch.randn(8, 5, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(wrapper(x), bn(x), rtol=0, atol=0)


def _torchrun(out, *flags, wait=True, launcher=(), capture=False):
    """`torchrun --nproc_per_node=2 -m infomax train` on the digits, small and quick."""
    rendezvous = ["--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{_free_port()}"]  # torchrun's elastic mode
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", *rendezvous,
           *launcher, "-m", "infomax", "train", "--data", "digits", "--out", str(out), "--preset", "recommended",
           "--channels", "32", "--z-dim", "32", "--batch-size", "32", "--bn-recalibrate", "256",
           "--checkpoint-every", "5", "--no-progress", *flags]
    # each restart gets a fresh store: the shared one keeps the dead workers' gloo addresses (pytorch#135712)
    env = {**os.environ, "INFOMAX_COMPILE": "0", "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    if wait:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done
    pipe = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(cmd, env=env, stdout=pipe, stderr=pipe, text=True, start_new_session=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop())
        todo += parents.get(out[-1], [])
    return out


def _step_of(run) -> int:
    latest = run / "checkpoints" / "latest.json"
    return int(json.loads(latest.read_text())["dir"].split("-")[1]) if latest.is_file() else 0


def _kill_after_first_checkpoint(run, job, rank: int | None = None) -> int:
    """SIGKILL the whole job (rank None) or one rank's worker once the run has a checkpoint;
    returns the checkpoint's step."""
    deadline = time.monotonic() + 240
    while _step_of(run) < 5 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    at = _step_of(run)
    for pid in _tree(job.pid):  # torchrun and its workers (which run in sessions of their own)
        if rank is None or f"RANK={rank}" in Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0"):
            os.kill(pid, signal.SIGKILL)
    return at


def _same_weights(a, b) -> None:
    wa, wb = load_checkpoint(a).weights, load_checkpoint(b).weights
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job's processes in /proc")
def test_two_process_runs_killed_and_resumed_end_bit_identical(tmp_path):
    """With 2 processes: (1) kill -9 of the whole job after a checkpoint, then --resume; (2) kill -9
    of rank 1 under torchrun --max-restarts 1, which restarts the workers and they resume by
    themselves. Both end with weights equal to an uninterrupted run's bit for bit (each rank's
    augmentation generator and the shared generator of negatives come back from the checkpoint)."""
    steps = "30"
    _torchrun(tmp_path / "straight", "--max-steps", steps)
    state = load_checkpoint(tmp_path / "straight").training_state()
    assert state["world_size"] == 2 and len(state["ranks"]) == 2

    job = _torchrun(tmp_path / "killed", "--max-steps", steps, wait=False)
    at = _kill_after_first_checkpoint(tmp_path / "killed", job)
    job.wait()
    assert 5 <= _step_of(tmp_path / "killed") == at < int(steps)  # killed mid-run, after a checkpoint
    resumed = _torchrun(tmp_path / "killed", "--max-steps", steps, "--resume")
    assert f"trained {steps} steps" in resumed.stdout
    _same_weights(tmp_path / "straight", tmp_path / "killed")

    job = _torchrun(tmp_path / "restarted", "--max-steps", steps, launcher=("--max-restarts", "1"), wait=False)
    at = _kill_after_first_checkpoint(tmp_path / "restarted", job, rank=1)
    assert job.wait(timeout=300) == 0 and 5 <= at < int(steps)
    log = (tmp_path / "restarted" / "log.csv").read_text().splitlines()
    assert len(log) > 1 and log[-1].startswith(steps + ",")
    _same_weights(tmp_path / "straight", tmp_path / "restarted")


def test_a_rank_that_dies_ends_the_job_naming_it(tmp_path):
    job = _torchrun(tmp_path / "run", "--max-steps", "400", wait=False, capture=True)
    _kill_after_first_checkpoint(tmp_path / "run", job, rank=1)
    _, err = job.communicate(timeout=120)
    assert job.returncode != 0
    assert "local_rank: 1" in err and "exitcode: -9" in err


def test_resuming_with_another_world_size_warns_and_continues(tmp_path, caplog):
    from infomax.api import fit

    _torchrun(tmp_path / "run", "--max-steps", "10")
    with caplog.at_level(logging.WARNING, logger="infomax.train.state"):
        run = fit("digits", out=tmp_path / "run", resume=True, steps=14, progress=False, channels=32, z_dim=32,
                  batch_size=32, bn_recalibrate=256, checkpoint_every=5)
    assert run.steps == 14
    assert "resuming a run of 2 processes with 1" in caplog.text
    assert load_checkpoint(tmp_path / "run").training_state()["world_size"] == 1


def test_fit_in_a_script_under_torchrun_returns_the_same_model_on_every_rank(tmp_path):
    """infomax.fit under torchrun: every rank gets the finished run (the last checkpoint written
    before any returns), and embeds alike."""
    script = tmp_path / "fit.py"
    script.write_text(
        "import os, numpy as np, infomax\n"
        f"run = infomax.fit('digits', steps=4, out={str(tmp_path / 'run')!r}, batch_size=32, channels=32, z_dim=32,"
        " progress=False)\n"
        "images = infomax.load_data('digits').split('test').images[:16]\n"
        f"np.save({str(tmp_path)!r} + f\"/z{{os.environ['RANK']}}.npy\", run.model.embed(images))\n")
    env = {**os.environ, "INFOMAX_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
                           str(_free_port()), str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    z0, z1 = (np.load(tmp_path / f"z{r}.npy") for r in (0, 1))
    assert z0.shape == (16, 32) and np.array_equal(z0, z1)
    assert load_checkpoint(tmp_path / "run").training_state()["step"] == 4


def test_leaving_the_process_group_ends_gloos_threads_before_the_interpreters_teardown(tmp_path):
    """Gloo threads alive in the interpreter's teardown can abort a finished rank (SIGABRT). After
    the differentiable collectives and `_leave` (what atexit runs), none may be left."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("thread names are read from Linux's /proc")
    script = (
        "import json, os, torch, torch.distributed as dist\n"
        "from infomax.train import distributed\n"
        f"dist.init_process_group('gloo', init_method='file://{tmp_path / 'store'}', rank=0, world_size=1)\n"
        "def threads():\n"
        "    return sorted(open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task'))\n"
        "before = threads()\n"
        "x = torch.randn(4, 3, requires_grad=True)\n"
        "distributed.gather_rows(x).sum().backward()\n"
        "distributed.all_reduce(x.sum()).backward()\n"
        "assert torch.equal(x.grad, torch.full((4, 3), 2.0))\n"
        "distributed._leave()\n"
        "print(json.dumps([before, threads()]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = json.loads(done.stdout)
    assert any("gloo" in name for name in before) and not any("gloo" in name for name in after), (before, after)

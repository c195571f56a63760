import threading
import time

import pytest

from infomax.serve.batcher import Batcher


def test_results_follow_jobs_and_batches_form_under_load():
    seen = []

    def run(jobs):
        seen.append(len(jobs))
        time.sleep(0.01)  # long enough for the other threads to queue up
        return [j * 2 for j in jobs]

    batcher = Batcher(run, max_batch=8)
    out = {}

    def client(i):
        out[i] = batcher(i, timeout=10)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert out == {i: 2 * i for i in range(40)}
    assert max(seen) <= 8 and len(seen) < 40 and sum(seen) == 40 == batcher.jobs


def test_an_error_reaches_every_job_of_its_batch_and_the_worker_lives_on():
    def run(jobs):
        if "bad" in jobs:
            raise ValueError("broken batch")
        return [ValueError("just this one") if j == "odd" else j.upper() for j in jobs]

    batcher = Batcher(run)
    with pytest.raises(ValueError, match="broken batch"):
        batcher("bad", timeout=5)
    with pytest.raises(ValueError, match="just this one"):
        batcher("odd", timeout=5)
    assert batcher("fine", timeout=5) == "FINE"
    batcher.close()
    with pytest.raises(RuntimeError, match="stopped"):
        batcher.submit("late")


def test_close_finishes_queued_jobs():
    gate = threading.Event()

    def run(jobs):
        gate.wait(5)
        return jobs

    batcher = Batcher(run, max_batch=2)
    futures = [batcher.submit(i) for i in range(5)]
    gate.set()
    batcher.close()
    assert [f.result(timeout=1) for f in futures] == list(range(5))

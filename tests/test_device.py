import platform
import statistics
import subprocess
import sys

import pytest

from infomax.device import keep_freed_memory

# Page faults per training step of the seed model (batch 32), with or without keep_freed_memory.
CHILD = """
import resource, sys, torch
torch.set_num_threads(1)  # one thread, one malloc arena: the count does not depend on the load
from infomax.device import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
torch.manual_seed(0)
model = DIM(ModelConfig()).to(memory_format=torch.channels_last)
x = torch.randn(32, 3, 32, 32).contiguous(memory_format=torch.channels_last)
for i in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.loss(x)[0].backward()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults_per_step(mode: str) -> float:
    """Median page faults of steps 4-12 (the first steps grow the heap)."""
    out = subprocess.run([sys.executable, "-c", CHILD, mode], check=True, capture_output=True, text=True)
    return statistics.median(int(n) for n in out.stdout.split()[3:])


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_memory_stops_the_page_faults_of_a_training_step():
    # by default glibc returns the activation buffers to the kernel on most steps; how many
    # depends on its adaptive mmap threshold, so the most of three runs shows it
    default = max(_faults_per_step("default") for _ in range(3))
    assert default > 500
    # the host can take pages back from any process at any moment (a few MB now and then),
    # which only adds faults: the median over steps and the fewest of three runs is the loop's own
    kept = min(_faults_per_step("keep") for _ in range(3))
    assert kept < default / 20


def test_keep_freed_memory_is_false_where_it_does_not_apply(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False

"""`make` on a Python without venv/ensurepip (Debian's python3 before `apt-get install python3-venv`)
stops before doing anything and prints the one apt-get line."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_without_ensurepip(tmp_path: Path) -> Path:
    hidden = tmp_path / "hide" / "ensurepip"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('no ensurepip, as on Debian without python3-venv')\n")
    wrapper = tmp_path / "python3"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={hidden.parent} exec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_names_the_missing_package(tmp_path):
    python = _python_without_ensurepip(tmp_path)
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "-C", str(ROOT), "install", f"VENV={venv}", f"PYTHON={python}"],
                          capture_output=True, text=True, timeout=60)
    version = "%d.%d" % sys.version_info[:2]
    assert done.returncode != 0 and not venv.exists()
    assert f"sudo apt-get install -y python{version}-venv" in done.stderr, done.stderr


def test_a_complete_python_passes(tmp_path):
    done = subprocess.run(["sh", str(ROOT / "scripts" / "check-python.sh"), sys.executable], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    missing = subprocess.run(["sh", str(ROOT / "scripts" / "check-python.sh"), str(tmp_path / "no-python")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "apt-get install -y python3 python3-venv" in missing.stderr

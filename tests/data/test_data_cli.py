"""`infomax data info SPEC`: the report, the errors, and a command line that starts instantly."""

import argparse
import subprocess
import sys

import pytest

from infomax.data import cli
from infomax.errors import InfomaxError

from .canonical import image_bytes, write_tree


def _run(*argv) -> int:
    parser = argparse.ArgumentParser(prog="infomax")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_info_prints_everything(capsys):
    assert _run("data", "info", "digits", "--no-progress") == 0
    out = capsys.readouterr().out
    for text in (
        "kind:          digits",
        "splits:        train 1,437, test 360",
        "images:        1,797",
        "image shape:   1×32×32",
        "classes:       10",
        "class names:   0, 1, 2",
        "pixel mean:",
        "pixel std:",
        "normalization: center",
        "load time:",
    ):
        assert text in out, text


def test_info_pixel_stats_are_exact(tmp_path, capsys):
    write_tree(
        tmp_path,
        {"a.png": image_bytes((0, 100, 200), (4, 4)), "b.png": image_bytes((100, 100, 0), (4, 4))},
        as_zip=False,
    )
    _run("data", "info", f"folder:{tmp_path}", "--no-progress")
    out = capsys.readouterr().out
    assert "pixel mean:    50.0 100.0 100.0" in out and "pixel std:     50.0 0.0 100.0" in out
    assert "classes:       none (unlabelled)" in out


def test_info_error_is_an_infomax_error(tmp_path):
    with pytest.raises(InfomaxError, match="does not exist"):
        _run("data", "info", f"folder:{tmp_path / 'missing'}")


def test_data_without_action_prints_usage(capsys):
    assert _run("data") == 2
    assert "info" in capsys.readouterr().out


def test_importing_the_command_is_light():
    code = (
        "import sys, infomax.data.cli, infomax.data; "
        "print(sorted(m for m in ('numpy', 'PIL', 'tqdm', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

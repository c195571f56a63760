"""`infomax serve` on the command line: its options, start-up messages, and a clean stop."""

import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

from infomax.errors import InfomaxError
from infomax.serve.cli import bind, browser_url, is_loopback


def test_parser_defaults_to_loopback():
    from infomax.cli import build_parser

    args = build_parser().parse_args(["serve", "--index", "i", "--checkpoint", "c"])
    assert (args.host, args.port, args.data, args.func.__module__) == ("127.0.0.1", 8000, None, "infomax.serve.cli")


def test_a_busy_port_is_a_clear_error():
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(InfomaxError, match="pass another --port"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
    with pytest.raises(InfomaxError, match="--port must be"):
        bind("127.0.0.1", 70000)


def test_bad_thread_count_is_a_clear_error(capsys):
    from infomax.cli import main

    assert main(["serve", "--index", "nowhere", "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_addresses():
    assert browser_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert browser_url("0.0.0.0", 80) == "http://127.0.0.1:80/"
    assert browser_url("::1", 8000) == "http://[::1]:8000/"
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def test_serve_starts_answers_and_stops(stack):
    env = {**os.environ, "INFOMAX_HOME": str(stack.cache)}
    cmd = [sys.executable, "-m", "infomax", "serve", "--index", str(stack.index), "--checkpoint", str(stack.run),
           "--port", "0", "--device", "cpu"]  # --data defaults to the spec the index records
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            found = re.search(r"open (http://127\.0\.0\.1:\d+/) in a browser", line)
            if found:
                break
        assert found, "".join(lines)
        url = found.group(1)
        assert httpx.get(url + "healthz").json()["gallery"] == len(stack.data.splits["train"])
        reply = httpx.post(url + "api/search", json={"id": 0, "k": 3})
        assert reply.status_code == 200 and len(reply.json()["results"]) == 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_refuses_a_data_set_that_does_not_match(stack, tmp_path, monkeypatch, capsys):
    from infomax.cli import main
    from tests.serve.conftest import encode

    (tmp_path / "other").mkdir()
    for i in range(3):
        (tmp_path / "other" / f"{i}.png").write_bytes(encode(stack.data.splits["test"].images[i]))
    monkeypatch.setenv("INFOMAX_HOME", str(stack.cache))
    code = main(["serve", "--index", str(stack.index), "--checkpoint", str(stack.run), "--device", "cpu",
                 "--data", f"folder:{tmp_path / 'other'},size=16,mode=L", "--port", "0"])
    assert code == 2
    assert "holds 3 images but the index refers to image 1436" in capsys.readouterr().err

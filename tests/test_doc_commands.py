"""Every shell command of README.md and docs/*.md runs, in order, page by page (tests/doc_commands.py
finds them, gives them small budgets and lays out the fixtures).

`infomax ...` commands run in this process through `infomax.cli.main` (the console script's
function; one torch import for all of them), `infomax serve` as its own process, queried on
127.0.0.1 and stopped before the next command that is not a `curl`; everything else (`source`,
`curl`, `python benchmarks/...`) in bash. A usage synopsis (a line with `[--`) is checked against
the command's --help instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.doc_commands import NEEDS_RUN, PAGES, ROOT, Command, page_commands, photo, photo_folder, write_fixtures
from tests.local_http import serve_folder

RUN_PAGES = [p for p in PAGES if page_commands(p)]
ARCHIVE = "~/data/cifar-10-python.tar.gz"  # where the README's --download puts CIFAR-10


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Fixtures, HOME, the cache and the mirror, shared by the pages (README.md's download first)."""
    root = tmp_path_factory.mktemp("docs")
    facts = write_fixtures(root)
    requests: list[str] = []
    with serve_folder(facts["archive"].parent, requests) as url:
        photo_folder(root / "home" / "photos")  # the README's ~/photos
        yield dict(facts, root=root, home=root / "home", cache=root / "cache", mirror=url, requests=requests)


@pytest.fixture
def page_env(world, monkeypatch):
    env = {
        "HOME": str(world["home"]),
        "INFOMAX_HOME": str(world["cache"]),
        "INFOMAX_MIRROR": world["mirror"],
        "INFOMAX_CHECKSUMS": str(world["sums"]),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: p.name)
def test_page_commands_run(page, world, page_env, monkeypatch):
    work = world["root"] / page.stem / "infomax"  # a checkout: ../shared beside it
    work.mkdir(parents=True)
    (work.parent / "shared").symlink_to(world["shared"])
    (work / ".venv").symlink_to(sys.prefix)
    shutil.copytree(ROOT / "benchmarks", work / "benchmarks")
    shutil.copytree(ROOT / "scripts", work / "scripts")
    shutil.copy(world["shared"] / "data" / "cifar10-jpg.zip", work / "cifar10-jpg.zip")
    for name in ("my-photo.jpg", "cat.jpg"):
        photo(work / name)
    monkeypatch.chdir(work)
    runner = Runner(work, page_env, world)
    if page.name != "README.md" and not Path(os.path.expanduser(ARCHIVE)).exists():
        runner.infomax(["data", "info", f"cifar10:{ARCHIVE}", "--download"])  # the README's first step
    if page.name in NEEDS_RUN:  # the README's train and embed lines
        for command in page_commands(ROOT / "README.md"):
            if command.text.startswith(("infomax train", "infomax embed")):
                runner.run(command)
    commands = page_commands(page)
    synopses = {c.block for c in commands if "[--" in c.text}  # usage lines, not commands
    try:
        for command in commands:
            if command.block in synopses:
                runner.synopsis([c for c in commands if c.block == command.block])
            elif not command.skip_reason:
                runner.run(command)
    finally:
        runner.stop_server()


class Runner:
    def __init__(self, work: Path, env: dict, world: dict):
        self.work, self.env, self.world = work, env, world
        self.server: subprocess.Popen | None = None
        self.port: int | None = None
        self.last_command = ""

    def run(self, command: Command) -> None:
        start = time.perf_counter()
        self._run(command)
        print(f"{time.perf_counter() - start:6.1f} s  {command.page} block {command.block}: {command.budgeted()}")

    def _run(self, command: Command) -> None:
        text = command.budgeted()
        where = f"{command.page} block {command.block}: {text}"
        words = shlex.split(text)
        if words[0] != "curl":
            self.stop_server()
        if words[:2] == ["infomax", "serve"]:
            self.start_server(words[1:], where)
        elif words[0] == "infomax":
            out = self.infomax(words[1:], where)
            check(words, out, self)
        else:
            if self.port:
                text = text.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
            done = subprocess.run(["bash", "-c", text], cwd=self.work, env=self.env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, f"{where} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
            check(words, done.stdout, self)

    def infomax(self, args: list[str], where: str = "") -> str:
        from infomax.cli import main

        args = [os.path.expanduser(a) if a.startswith("~") else a for a in args]  # as bash expands them
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        assert code == 0, f"{where or args} exited with {code}:\n{out.getvalue()}\n{err.getvalue()}"
        return out.getvalue()

    def synopsis(self, lines: list[Command]) -> None:
        """Every --flag of a usage block is one that its command's --help lists."""
        head = shlex.split(lines[0].text)[1]
        from infomax.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            main([head, "--help"])
        named = set(re.findall(r"--[a-z][\w-]*", " ".join(c.text for c in lines)))
        unknown = named - set(re.findall(r"--[a-z][\w-]*", out.getvalue()))
        assert not unknown, f"{lines[0].page} block {lines[0].block} names {sorted(unknown)}, not in --help"

    def start_server(self, args: list[str], where: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "infomax", *args, "--port", str(self.port), "--device", "cpu", "--threads", "1"]
        self.server = subprocess.Popen(cmd, cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
        lines = []
        deadline = time.monotonic() + 120
        for line in self.server.stdout:
            lines.append(line)
            if f"open http://127.0.0.1:{self.port}/" in line or time.monotonic() > deadline:
                break
        assert any("open http" in line for line in lines), f"{where} did not start:\n{''.join(lines)}"
        answer = post_json(f"http://127.0.0.1:{self.port}/api/search", {"id": 7, "k": 3})
        rows, scores = nearest(self.work / args[args.index("--index") + 1] / ".." / "emb", 7, 3)
        assert [r["row"] for r in answer["results"]] == rows, (answer, rows)
        assert max(abs(r["score"] - s) for r, s in zip(answer["results"], scores)) < 1e-4, (answer, scores)

    def stop_server(self) -> None:
        if self.server is None:
            return
        self.server.terminate()
        rest = self.server.communicate(timeout=60)[0]
        assert "stopped" in rest or self.server.returncode in (0, -15), rest
        self.server, self.port = None, None


def nearest(embeddings: Path, row: int, k: int) -> tuple[list[int], list[float]]:
    """The k train rows nearest to train row `row` by cosine similarity, itself left out (float64)."""
    import numpy as np

    from infomax.embed.files import load_embeddings

    z = np.asarray(load_embeddings(embeddings).vectors[:100], np.float64)  # the train split comes first
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    sims = z @ z[row]
    sims[row] = -np.inf
    order = np.argsort(-sims, kind="stable")[:k]
    return order.tolist(), sims[order].tolist()


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def check(words: list[str], out: str, runner: Runner) -> None:
    """What each kind of command must have produced, beyond exiting with 0."""
    flags = dict(zip(words, words[1:]))
    if words[:3] == ["infomax", "data", "info"] and "--download" in words:
        target = Path(os.path.expanduser(ARCHIVE))
        assert target.read_bytes() == runner.world["archive"].read_bytes()  # fetched to exactly the given path
        assert runner.world["requests"] == ["/cifar-10-python.tar.gz"]  # once, from the mirror
        assert "splits:        train 100, test 10" in out and "classes:       10" in out, out
    elif words[:2] == ["infomax", "train"]:
        latest = json.loads((runner.work / flags["--out"] / "checkpoints" / "latest.json").read_text())
        assert latest["dir"] == "step-00000002", latest  # the budget of the substitution table was applied
    elif words[:2] == ["infomax", "embed"]:
        from infomax.embed.files import load_embeddings

        rows = len(load_embeddings(runner.work / flags["--out"]))
        # train + test of the CIFAR-10 archive (100 + 10), the JPEG zip (70 + 20), the digits, ~/photos (12),
        # train + val of the Tiny ImageNet zip (102 + 4)
        assert rows in (110, 90, 1797, 12, 106), rows
    elif words[:2] == ["infomax", "export"] and "--encoder" in words:
        from infomax.checkpoint import load_checkpoint

        slim = load_checkpoint(runner.work / flags["--encoder"])
        full = load_checkpoint(runner.work / flags["--checkpoint"])
        assert set(slim.weights) == {k for k in full.weights if k.startswith(("encoder.", "whitening."))}, out
    elif words[:2] == ["infomax", "whiten"]:
        from infomax.checkpoint import load_checkpoint

        found = re.search(r"whiten: (\d+) train images(, each averaged with its mirror)?, power ([0-9.]+);", out)
        assert found, out
        fitted = load_checkpoint(runner.work / flags.get("--out", words[2]))
        assert float(fitted.weights["whitening.power"]) == pytest.approx(float(found[3])) and float(found[3]) > 0, out
        assert fitted.config["train"]["run"]["mirror"] == bool(found[2]), out
    elif words[:2] == ["infomax", "export"] and "--to" in words:
        assert "exported 110 vectors (256-d)" in out, out  # every row of train + test
    elif words[:2] == ["infomax", "export"]:
        found = re.search(r"max abs difference ([0-9.e-]+)", out)
        assert found and float(found.group(1)) < 1e-3, out
    elif words[:2] == ["infomax", "search"]:
        scores = [float(x) for x in re.findall(r"^\s+\d+\s+(-?[0-9.]+)\s+row \d+", out, re.M)]
        assert len(scores) == int(flags["--k"]) and scores == sorted(scores, reverse=True), out
    elif words[0] == "curl":
        answer = json.loads(out)
        assert len(answer["results"]) == 5 and answer["results"][0]["score"] >= answer["results"][-1]["score"], answer


def test_skip_list_and_substitutions_are_all_used():
    """No stale entries: each skip reason and each substitution matches a command of the docs."""
    from tests.doc_commands import SKIP, SUBSTITUTIONS

    commands = [c for page in PAGES for c in page_commands(page)]
    assert len([c for c in commands if c.page == "README.md"]) >= 12  # a changed fence style would find none
    for pattern in SKIP:
        assert any(re.fullmatch(pattern, c.text) for c in commands), f"skip entry {pattern!r} matches no command"
    for pattern, _, why in SUBSTITUTIONS:
        assert any(re.search(pattern, c.text) for c in commands if not c.skip_reason), f"{pattern!r} ({why}) is unused"

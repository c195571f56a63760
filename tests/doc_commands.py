"""The shell commands of README.md and docs/*.md: found in their ```bash blocks, given small budgets,
and run in order against small fixtures (used by tests/test_doc_commands.py).

A page runs in a folder laid out like a checkout: `.venv` (this interpreter's environment),
`benchmarks/` and `scripts/` (copies), `../shared/data/` (small fixtures with the names the docs
use), and the files the commands name (`my-photo.jpg`, `cat.jpg`, `cifar10-jpg.zip`). `HOME` is a fresh folder,
so `~/data/cifar-10-python.tar.gz` starts missing and `--download` fetches it from a server on
127.0.0.1 (INFOMAX_MIRROR, with the fixture's sha256 in INFOMAX_CHECKSUMS).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)

# Commands that cannot run here, each with the reason (matched against the whole command).
SKIP = {
    r"make test": "runs this whole suite, this test included",
    r"make demo": "five minutes of training; tests/test_demo.py runs `infomax demo` on a small budget",
    r"pip install .*": "installs from PyPI; the suite runs in the installed environment",
    r"torchrun --nproc_per_node=2 -m infomax embed .*": "2 processes under torchrun; tests/embed/test_resume.py "
    "runs the distributed embed",
    r"torchrun --n.*=8 .*": "8 GPUs or several machines; tests/train/test_distributed.py runs torchrun on 2 CPU processes",
    r"infomax export .* --to qdrant:http://.*": "a Qdrant server on another machine (the line above writes a local one)",
    r"srun .*": "a Slurm cluster of GPU machines",
    r"\.venv/bin/python benchmarks/gpu_check\.py": "needs a CUDA GPU",
    r"\.venv/bin/python benchmarks/gpu_check\.py --device cpu .*": "the GPU checker's dry run: four 20-step trainings "
    "and a torchrun job, over a minute on 2 cores (its torchrun needs 2 windows of 10 steps); its parts are tested "
    "in tests/train",
    r"python benchmarks/bench_serve\.py": "trains a 200-step model on the full CIFAR-10 first; the load test "
    "itself runs on the line with --index",
    r"python benchmarks/bench_serve\.py --work .*": "the same as the line above, in another folder",
    r"python benchmarks/soak_serve\.py .*": "a 60-second load test of 32 clients (the `bench` extra); "
    "tests/serve/test_hostile.py sends each of its kinds of request",
}

# Pages that use the README's runs/c10 without making it: its lines run first (budgeted).
NEEDS_RUN = {"embed.md"}

# Budgets and placeholders: (pattern, replacement, why). Applied in order to each command's text.
SUBSTITUTIONS = [
    (r"^(infomax train .*)--(time-budget|max-steps) \d+", r"\1--max-steps 2", "2 training steps"),
    (r"^(infomax train (?:(?!--max-steps).)*)$", r"\1 --max-steps 2", "2 training steps"),
    (r"^(infomax study .*) --(minutes \d+|steps \d+)(.*)$", r"\1 --steps 1\3", "1 training step per run"),
    (r"^(infomax (eval|study) .*)$", r"\1 --probe-epochs 2", "2 probe epochs (not 3,000 steps on a tiny set)"),
    (r"^(infomax study .*) --seeds 0,1", r"\1 --seeds 0", "one seed (a second runs the same code)"),
    (r"cifar10:PATH", "cifar10:~/data/cifar-10-python.tar.gz", "the archive --download fetched"),
    (r"screen/NAME", "screen/one", "a name"),
    (r" FLAGS$", "", "no extra flags"),
    (r"--batch-size 128", "--batch-size 64", "the fixture's 70 training images hold one batch of 64, not 128"),
    (r"--index IDX --checkpoint RUN", "--index runs/c10/index --checkpoint runs/c10", "the page's own index"),
    (r"^(python benchmarks/bench_serve\.py .*)$", r"\1 --duration 1 --clients 2", "1 s per phase"),
    (r'"id": 1234', '"id": 12', "the fixture's gallery has 100 images"),
    (r"--augment AUGMENT", "--augment crop_scale=0.6,flip=0", "one of the augmentations the table lists"),
    (r"R/checkpoints/step-00001000", "R", "the 2-step run's latest checkpoint"),
    (r"^(\.venv/bin/python scripts/sweep_whitening\.py .*)$", r"\1 --held-out 20 --fit 40",
     "the fixture's 70 train images: 20 queries, a gallery of 50"),
]


@dataclass
class Command:
    page: str
    block: int  # 1-based ```bash block of the page
    text: str  # as written (continuations joined, comment dropped)

    @property
    def skip_reason(self) -> str | None:
        return next((why for pattern, why in SKIP.items() if re.fullmatch(pattern, self.text)), None)

    def budgeted(self) -> str:
        text = self.text
        for pattern, replacement, _ in SUBSTITUTIONS:
            text = re.sub(pattern, replacement, text)
        return text


def page_commands(page: Path) -> list[Command]:
    """Every command of the page's ```bash blocks, in order; `a && b` gives two."""
    commands = []
    for number, block in enumerate(BASH_BLOCK.findall(page.read_text()), 1):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                head = words[: words.index("&&")] if "&&" in words else words
                commands.append(Command(page.name, number, shlex.join(head)))
                words = words[len(head) + 1 :]
    return commands


def write_fixtures(root: Path) -> dict:
    """The served archive, the shared data and the named files; returns facts the checks use."""
    import hashlib

    from tests.data.canonical import write_cifar10, write_tiny_imagenet

    served = root / "served"
    served.mkdir(parents=True)
    archive = served / "cifar-10-python.tar.gz"
    write_cifar10(archive, per_batch=20, n_test=10)  # train 100, test 10: the real members and pickles
    sums = root / "SHA256SUMS"
    sums.write_text(f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  {archive.name}\n")
    data = root / "shared" / "data"
    data.mkdir(parents=True)
    _write_cifar_jpg(data / "cifar10-jpg.zip")
    write_tiny_imagenet(data / "tiny-imagenet-200-mini.zip", per_class=34, side=16)  # 102 train: a batch is 100
    return {"archive": archive, "sums": sums, "shared": root / "shared"}


def _write_cifar_jpg(path: Path) -> None:
    """cifar10/{train,test}/<class>/NNNN.jpg: 10 classes, 7 train and 2 test 16×16 images each (a batch is 64)."""
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    from tests.data.canonical import CIFAR10_NAMES

    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as z:
        for split, n in (("train", 7), ("test", 2)):
            for c, name in enumerate(CIFAR10_NAMES):
                for i in range(n):
                    base = np.array([25 * c, 255 - 25 * c, (90 * c) % 256], np.int16)
                    pixels = np.clip(base + rng.integers(-30, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
                    out = io.BytesIO()
                    Image.fromarray(pixels).save(out, "JPEG", quality=90)
                    z.writestr(f"cifar10/{split}/{name}/{i:04d}.jpg", out.getvalue())


def photo_folder(folder: Path, count: int = 12) -> None:
    """~/photos of the README: `count` different JPEG photos of mixed sizes, no class folders."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(count):
        h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
        rgb = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)  # blocks of colour
        Image.fromarray(rgb).resize((w, h), Image.BILINEAR).save(folder / f"IMG_{i:04d}.jpg", "JPEG", quality=90)


def photo(path: Path) -> None:
    """A 48×40 JPEG photo for the upload and search commands."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:40, 0:48]
    rgb = np.stack([x * 5, y * 6, (x + y) * 3], -1).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, "JPEG", quality=90)

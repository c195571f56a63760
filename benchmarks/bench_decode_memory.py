"""Peak memory and time of decoding one hostile or large image, each case in a fresh process.

    python benchmarks/bench_decode_memory.py [--size 64]

Cases: a 40 MP PNG of one colour with alpha (a few hundred KB: a decompression bomb), a 16.8 MP
(4096×4096) PNG with alpha (the largest image decoded in full), a 48 MP JPEG (decoded reduced).
Each child process imports the decoder, reads the file, then decodes it; the figure is the growth
of the process's peak RSS (VmHWM, reset before the decode) over its RSS before it, so Pillow's C
buffers count too (Linux only).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

CHILD = r"""
import json, sys, time
from infomax.data.decode import decode_image
from infomax.errors import InfomaxError
def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
data = open(sys.argv[1], "rb").read()
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS:")
start = time.perf_counter()
try:
    out = decode_image(data, size=int(sys.argv[2]))
    result = "decoded " + "x".join(map(str, out.shape))
except InfomaxError as exc:
    result = "refused: " + str(exc)[:90]
took = time.perf_counter() - start
peak = status("VmHWM:")
print(json.dumps({"peak_mb": (peak - before) / 1024, "seconds": took, "result": result}))
"""


def cases() -> dict[str, bytes]:
    out = {}
    for name, size, fmt, mode, color, kw in (
        ("png-40mp-rgba", (8000, 5000), "PNG", "RGBA", (20, 40, 60, 128), {}),
        ("png-16.8mp-rgba", (4096, 4096), "PNG", "RGBA", (20, 40, 60, 128), {}),
        ("jpeg-48mp", (8000, 6000), "JPEG", "RGB", (20, 40, 60), {"quality": 90}),
    ):
        buf = io.BytesIO()
        Image.new(mode, size, color).save(buf, fmt, **kw)
        out[name] = buf.getvalue()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="output side (default 64)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in cases().items():
            path = Path(tmp) / name
            path.write_bytes(data)
            run = subprocess.run([sys.executable, "-c", CHILD, str(path), str(args.size)],
                                 capture_output=True, text=True, check=True)
            row = json.loads(run.stdout)
            print(f"{name:16} {len(data) / 1024:8.0f} KB  peak +{row['peak_mb']:6.0f} MB  "
                  f"{row['seconds']:6.2f} s  {row['result']}")


if __name__ == "__main__":
    main()

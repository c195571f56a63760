"""Fuzzing the decoder: mutated real files never raise anything but InfomaxError, nor hang.

Seeds are small real files of every accepted format, written by Pillow here. Mutations: bit flips,
byte overwrites (often in the header, where sizes live), truncation, and splices of one file into
another. Each case is decoded in a worker process (spawned once) with a time bound, so a hang
fails the test instead of stopping the suite. Derandomized: the same cases on every run.
"""

import io
import multiprocessing
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

TIME_BOUND = 2.0  # seconds per case
EXAMPLES = 1000  # about 10 s on a 2-core machine


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (12, 16, 4), dtype=np.uint8))
    gray = Image.fromarray(rng.integers(0, 256, (10, 14), dtype=np.uint8))
    out = []
    for image, fmt, kw in (
        (rgb, "JPEG", {"quality": 80}),
        (rgb, "JPEG", {"quality": 70, "progressive": True, "subsampling": 2}),
        (rgba, "PNG", {}),
        (rgb.quantize(16), "PNG", {"transparency": 3}),
        (gray, "PNG", {"optimize": True}),
        (rgb.quantize(8), "GIF", {"save_all": True, "append_images": [rgba.convert("RGB").quantize(8)]}),
        (rgb, "WEBP", {"quality": 60}),
        (rgba, "WEBP", {"lossless": True}),
        (rgb, "BMP", {}),
        (rgb.quantize(4), "BMP", {}),
        (rgb, "TIFF", {"compression": "tiff_lzw"}),
        (rgba, "TIFF", {"compression": "tiff_adobe_deflate"}),
        (gray, "TIFF", {}),
    ):
        buf = io.BytesIO()
        image.save(buf, fmt, **kw)
        out.append(buf.getvalue())
    return out


SEEDS = _seeds()


def _worker(inbox, outbox):
    """Decode each case; report ('ok', shape), ('infomax', message) or ('other', the exception)."""
    from infomax.data.decode import decode_image
    from infomax.errors import InfomaxError

    while (data := inbox.recv()) is not None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                result = ("ok", decode_image(data, size=32).shape)
            except InfomaxError as exc:
                result = ("infomax", str(exc))
            except BaseException as exc:  # noqa: BLE001 - what the test is looking for
                result = ("other", repr(exc))
        bombs = [str(w.message) for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
        outbox.send(("other", f"DecompressionBombWarning: {bombs}") if bombs else result)


class Decoder:
    """A worker process that decodes bytes, restarted after a case that hangs or kills it."""

    def __init__(self):
        self.context = multiprocessing.get_context("spawn")
        self.process = None

    def _start(self):
        self.inbox, child_in = self.context.Pipe()
        child_out, self.outbox = self.context.Pipe()
        self.process = self.context.Process(target=_worker, args=(child_in, child_out), daemon=True)
        self.process.start()
        self.startup = 30.0  # the first case also waits for the worker's imports

    def __call__(self, data: bytes) -> tuple:
        if self.process is None or not self.process.is_alive():
            self._start()
        self.inbox.send(data)
        ready = self.outbox.poll(TIME_BOUND + self.startup)
        self.startup = 0.0
        if ready:
            try:
                return self.outbox.recv()
            except EOFError:
                pass
        code = self.process.exitcode
        self.close()
        return ("hang" if code is None else "crash", f"exit code {code}")

    def close(self):
        if self.process is not None:
            self.process.kill()
            self.process.join(5)
            self.process = None


@pytest.fixture(scope="module")
def decoder():
    d = Decoder()
    yield d
    d.close()


def _flip(data, positions):
    out = bytearray(data)
    for p in positions:
        out[p % len(out)] ^= 1 << (p % 8)
    return bytes(out)


def _overwrite(data, at, chunk):
    at %= len(data)
    return data[:at] + chunk + data[at + len(chunk):]


seed = st.sampled_from(SEEDS)
mutated = st.one_of(
    st.builds(_flip, seed, st.lists(st.integers(0, 10**6), min_size=1, max_size=8)),
    st.builds(_overwrite, seed, st.integers(0, 64), st.binary(min_size=1, max_size=4)),  # header fields
    st.builds(_overwrite, seed, st.integers(0, 10**6), st.sampled_from([b"\xff\xff", b"\x00\x00", b"\xff\xff\xff\x7f"])),
    st.builds(lambda d, n: d[: n % (len(d) + 1)], seed, st.integers(0, 10**6)),  # truncation
    st.builds(lambda a, b, i, j: a[: i % len(a)] + b[j % len(b):], seed, seed, st.integers(0, 10**6),
              st.integers(0, 10**6)),  # splice
    st.builds(lambda d, i, n: d[: i % len(d)] + d[i % len(d):][: n] * 3 + d[i % len(d):], seed,
              st.integers(0, 10**6), st.integers(1, 64)),  # a repeated run
)


def test_seeds_decode(decoder):
    assert [decoder(s) for s in SEEDS] == [("ok", (3, 32, 32))] * len(SEEDS)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated)
def test_mutated_files_give_pixels_or_infomax_error(decoder, data):
    kind, detail = decoder(data)
    assert kind in ("ok", "infomax"), f"{kind}: {detail} for {len(data)} bytes starting {data[:24]!r}"
    if kind == "ok":
        assert detail == (3, 32, 32)
    else:
        assert detail.startswith("image: ") and len(detail) < 400

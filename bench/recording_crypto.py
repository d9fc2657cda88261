"""Recording encryption: throughput of the sealed container format against raw AES-256-GCM of
pycryptodome over the same bytes (one call, the fastest it gets), and peak memory while sealing
and opening a 1 GiB file (measured in a child process, as its maximum resident set size).

    .venv/bin/python -m bench.recording_crypto [--size-mib 64] [--big-mib 1024]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from Crypto.Cipher import AES

from appliance.recordings.container import DEFAULT_CHUNK, decrypt, encrypt, new_header


class Sink(io.RawIOBase):
    """Discards what is written, as the raw baseline keeps nothing either."""

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        return len(data)  # type: ignore[arg-type]


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def throughput(size_mib: int) -> None:
    data = os.urandom(size_mib * 2**20)
    key, nonce = os.urandom(32), os.urandom(12)
    step = DEFAULT_CHUNK

    def raw_encrypt() -> None:
        AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(data)

    def raw_chunked_encrypt() -> None:
        for offset in range(0, len(data), step):
            cipher = AES.new(key, AES.MODE_GCM, nonce=offset.to_bytes(12, "big"))
            cipher.encrypt_and_digest(data[offset : offset + step])

    sealed_raw, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(data)

    def raw_decrypt() -> None:
        AES.new(key, AES.MODE_GCM, nonce=nonce).decrypt_and_verify(sealed_raw, tag)

    chunks = []
    for offset in range(0, len(data), step):
        cipher = AES.new(key, AES.MODE_GCM, nonce=offset.to_bytes(12, "big"))
        chunks.append((offset, *cipher.encrypt_and_digest(data[offset : offset + step])))

    def raw_chunked_decrypt() -> None:
        for offset, sealed_chunk, chunk_tag in chunks:
            cipher = AES.new(key, AES.MODE_GCM, nonce=offset.to_bytes(12, "big"))
            cipher.decrypt_and_verify(sealed_chunk, chunk_tag)

    sealed = io.BytesIO()
    encrypt(io.BytesIO(data), sealed, key, new_header())

    def ours_encrypt() -> None:
        encrypt(io.BytesIO(data), Sink(), key, new_header())

    def ours_decrypt() -> None:
        decrypt(io.BytesIO(sealed.getvalue()), Sink(), key)

    print(f"Throughput over {size_mib} MiB in memory (best of 3, MiB/s; chunks of {step} B)")
    print(
        f"{'':<9}{'raw, one call':>15}{'raw, chunked':>14}{'format':>9}"
        f"{'format/one call':>17}{'format/chunked':>16}"
    )
    for name, raw, chunked, ours in (
        ("encrypt", raw_encrypt, raw_chunked_encrypt, ours_encrypt),
        ("decrypt", raw_decrypt, raw_chunked_decrypt, ours_decrypt),
    ):
        rates = [size_mib / best_of(3, action) for action in (raw, chunked, ours)]
        print(
            f"{name:<9}{rates[0]:>15.0f}{rates[1]:>14.0f}{rates[2]:>9.0f}"
            f"{rates[2] / rates[0]:>17.2f}{rates[2] / rates[1]:>16.2f}"
        )


CHILD = """
import sys
from appliance.recordings.container import decrypt, encrypt, new_header
def peak_kib():  # VmHWM: this process's own high-water mark (ru_maxrss survives exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
src, dst, back = sys.argv[1:4]
key = bytes(32)
before = peak_kib()
with open(src, "rb") as s, open(dst, "wb") as d:
    encrypt(s, d, key, new_header())
with open(dst, "rb") as s, open(back, "wb") as d:
    decrypt(s, d, key)
print(before, peak_kib())
"""


def peak_memory(big_mib: int) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        src, dst, back = Path(tmp, "plain"), Path(tmp, "sealed"), Path(tmp, "back")
        with src.open("wb") as fh:
            for _ in range(big_mib):
                fh.write(os.urandom(2**20))
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(src), str(dst), str(back)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        elapsed = time.perf_counter() - started
        before, after = (int(v) / 1024 for v in out)
        same = _same(src, back)
    print(
        f"\nSealing then opening a {big_mib} MiB file on disk: {elapsed:.1f} s, "
        f"round trip {'identical' if same else 'DIFFERENT'}"
    )
    print(f"{'':<28}{'MiB':>8}")
    print(f"{'peak RSS after imports':<28}{before:>8.1f}")
    print(f"{'peak RSS after the run':<28}{after:>8.1f}")
    print(f"{'growth while streaming':<28}{after - before:>8.1f}")


def _same(a: Path, b: Path) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(2**20), fb.read(2**20)
            if x != y:
                return False
            if not x:
                return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--big-mib", type=int, default=1024)
    args = parser.parse_args()
    throughput(args.size_mib)
    peak_memory(args.big_mib)


if __name__ == "__main__":
    main()

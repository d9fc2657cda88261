"""The backup archive's reader and its sealed secrets: any file, damaged, truncated or crafted,
gives the backup that was written or BackupError; nothing is written outside the folder it
unpacks into, and no archive makes it spend unbounded time or memory."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.backup import BackupError, sealing
from appliance.backup.archive import (
    DATABASE,
    MANIFEST,
    SECRETS,
    Manifest,
    Writer,
    extract,
)
from tests.fuzz.harness import Finding, probe, refuses

recording_names = st.from_regex(
    r"recordings/20[0-9]{2}/[01][0-9]/[a-z0-9]{1,12}\.rec", fullmatch=True
)
contents = st.binary(max_size=200)


@st.composite
def backups(draw: st.DrawFn) -> tuple[bytes, dict[str, bytes]]:
    members = {SECRETS: draw(contents), DATABASE: draw(contents)}
    members |= draw(st.dictionaries(recording_names, contents, max_size=3))
    out = io.BytesIO()
    writer = Writer(out, 1_700_000_000)
    for name, data in members.items():
        writer.add_bytes(name, data)
    writer.finish(
        Manifest("1.0", "abc", "2024-01-01T00:00:00Z", {"backend": "sqlite"}, writer.members)
    )
    return out.getvalue(), members


def _unpack(data: bytes) -> tuple[Manifest | None, dict[str, bytes], list[str]]:
    """Extract into a new folder beside a marker; what came out, and anything found outside."""
    with tempfile.TemporaryDirectory() as base:
        into = Path(base) / "into"
        into.mkdir(mode=0o700)
        manifest = None
        try:
            manifest = extract(io.BytesIO(data), into)
        finally:
            outside = [p for p in os.listdir(base) if p != "into"]
        files = {str(p.relative_to(into)): p.read_bytes() for p in into.rglob("*") if p.is_file()}
        return manifest, files, outside


@given(backups())
def test_a_backup_reads_back_member_for_member(backup):
    data, members = backup
    with probe("backup archive"):
        manifest, files, _ = _unpack(data)
        if manifest is None or files != members or set(manifest.members) != set(members):
            raise Finding("the archive read back differs from what was written")


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(backups())[0])
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "cut", "grow", "end"]))
        if how == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 600))]
        elif how == "grow":
            data[at:at] = draw(st.binary(min_size=1, max_size=600))
        else:
            del data[at:]
    return bytes(data)


names = st.one_of(
    st.sampled_from(
        [
            SECRETS,
            DATABASE,
            MANIFEST,
            "../x",
            "/etc/x",
            "recordings/../../x",
            "recordings/2024/01/a.rec",
            "a\\b",
            "tls/cert.pem",
            "",
        ]
    ),
    st.text(max_size=40),
)
KINDS = [tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE,
         tarfile.CHRTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE]  # fmt: skip


@st.composite
def crafted(draw: st.DrawFn) -> bytes:
    """A tar of hostile members: links, devices, odd names, sizes, a manifest of any JSON."""
    out = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for _ in range(draw(st.integers(0, 5))):
            name = draw(names)
            info = tarfile.TarInfo(name)
            info.type = draw(st.sampled_from(KINDS))
            info.linkname = draw(names)
            body = draw(st.binary(max_size=100)) if name != MANIFEST else draw(manifests)
            info.size = len(body) if info.type in (tarfile.REGTYPE, tarfile.CONTTYPE) else 0
            try:
                tar.addfile(info, io.BytesIO(body))
            except (ValueError, UnicodeError, tarfile.TarError):
                continue  # a name this format cannot write
    return out.getvalue()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
manifests = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "format": st.just(1) | json_values,
            "appliance_version": json_values,
            "schema_revision": json_values,
            "created": json_values,
            "database": json_values,
            "members": st.dictionaries(
                names,
                st.fixed_dictionaries(
                    {
                        "sha256": json_values,
                        "size": json_values | st.sampled_from([float("inf"), float("nan"), 10**30]),
                    }
                ),
                max_size=3,
            )
            | json_values,
        }
    ).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=100),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
)


@given(damaged() | crafted() | st.binary(max_size=2000))
def test_a_damaged_or_crafted_archive_is_refused_and_writes_nothing_outside(data):
    with probe("backup archive", BackupError):
        try:
            _, _, outside = _unpack(data)
        except BackupError:
            raise
        if outside:
            raise Finding(f"written outside the folder it unpacks into: {outside}")


@given(manifests)
def test_any_manifest_is_read_or_refused(raw):
    with probe("backup manifest", BackupError):
        manifest = Manifest.from_json(raw)
        for member in manifest.members.values():
            if not isinstance(member.size, int) or not isinstance(member.sha256, str):
                raise Finding(f"member {member!r} read from the manifest")


boxes = st.fixed_dictionaries(
    {
        "format": st.just(1) | json_values,
        "kdf": st.just("scrypt") | json_values,
        "cipher": st.just("aes-256-gcm") | json_values,
        "n": st.sampled_from([2, 4, 16, 3, 0, -2, 2**40, float("inf"), "16", None]),
        "r": st.sampled_from([1, 2, 0, 99, "x"]),
        "p": st.sampled_from([1, 0, 5, 1.5]),
        "salt": st.sampled_from(["", "AAAA", "not base64!", None]) | json_values,
        "nonce": st.sampled_from(["AAAAAAAAAAAAAAAA", "", "AA=="]) | json_values,
        "ciphertext": st.binary(max_size=40).map(
            lambda b: __import__("base64").b64encode(b).decode()
        )
        | json_values,
    }
).map(lambda d: json.dumps(d).encode())


@given(boxes | manifests | st.binary(max_size=200), st.text(max_size=20))
def test_any_sealed_box_opens_or_is_refused(box, passphrase):
    with probe("backup sealed secrets", BackupError, hang=20):
        sealing.unseal(box, passphrase)


def test_what_is_sealed_opens_with_its_passphrase_only():
    box = sealing.seal({"a": 1}, "correct horse battery", (16, 1, 1))
    assert sealing.unseal(box, "correct horse battery") == {"a": 1}
    refuses(lambda: sealing.unseal(box, "wrong horse battery"), BackupError)


# what the fuzzing found, kept -------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"format": 1, "appliance_version": "1", "schema_revision": "a", "created": "c", '
        b'"database": {}, "members": {"database.dump": {"sha256": "x", "size": Infinity}}}',
    ],
    ids=["deeply-nested", "infinite-size"],
)
def test_regression_a_manifest_too_deep_or_of_infinite_size_is_damaged(raw):
    refuses(lambda: Manifest.from_json(raw), BackupError)


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"n": Infinity, "r": 1, "p": 1}', b'{"n": 1e400, "r": 1, "p": 1}'],
    ids=["deeply-nested", "infinite-n", "overflowing-n"],
)
def test_regression_a_sealed_box_too_deep_or_of_infinite_work_is_damaged(raw):
    refuses(lambda: sealing.unseal(raw, "passphrase"), BackupError)

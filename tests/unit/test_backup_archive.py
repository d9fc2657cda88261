"""The backup's pure core: the archive (members, manifest, what reading refuses), the sealed
secrets, and database values as JSON."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from appliance.backup import BackupError, archive, rows, sealing

FAST = (2**10, 8, 1)  # scrypt work for tests; archives carry their own
REC = "recordings/2026/01/0123456789abcdef0123456789abcdef.rec"


def manifest(**members: archive.Member) -> archive.Manifest:
    return archive.Manifest("0.1.0", "0015", "2026-01-02T03:04:05+00:00", {"backend": "sqlite"},
                            members)  # fmt: skip


def good_archive() -> tuple[bytes, archive.Manifest]:
    out = io.BytesIO()
    writer = archive.Writer(out, 1_700_000_000)
    writer.add_bytes(archive.DATABASE, b"rows")
    writer.add_bytes(REC, b"sealed audio")
    writer.add_bytes(archive.CERTIFICATE, b"-----BEGIN CERTIFICATE-----")
    writer.add_bytes(archive.SECRETS, b"sealed secrets")
    made = manifest(**writer.members)
    writer.finish(made)
    return out.getvalue(), made


def crafted(*members: tuple[tarfile.TarInfo, bytes], listed: dict | None = None) -> bytes:
    """A tar with exactly these members, then a manifest that lists them (or `listed`)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        found = {}
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
            found[info.name] = archive.Member(hashlib.sha256(data).hexdigest(), len(data))
        body = manifest(**(found if listed is None else listed)).to_json()
        info = tarfile.TarInfo(archive.MANIFEST)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def regular(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def extract_into(tmp_path: Path, data: bytes, name: str = "into") -> archive.Manifest:
    into = tmp_path / name
    into.mkdir()
    return archive.extract(io.BytesIO(data), into)


def test_an_archive_reads_back_member_for_member(tmp_path):
    data, made = good_archive()
    read = extract_into(tmp_path, data)
    assert read == made
    assert (tmp_path / "into" / REC).read_bytes() == b"sealed audio"
    assert (tmp_path / "into" / REC).stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "into" / archive.MANIFEST).exists()  # kept in memory only
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert names[-1] == archive.MANIFEST


@pytest.mark.parametrize(
    ("member", "says"),
    [
        (regular("../../etc/cron.d/x"), "leads out of the archive"),
        (regular("recordings/../../x.rec"), "leads out of the archive"),
        (regular("/etc/passwd"), "absolute path"),
        (regular("notes.txt"), "not part of a backup"),
        (regular("recordings/2026/01/x.rec/y"), "not part of a backup"),
        (special(REC, tarfile.SYMTYPE, "/etc/shadow"), "symbolic link"),
        (special(REC, tarfile.LNKTYPE, archive.DATABASE), "hard link"),
        (special(REC, tarfile.CHRTYPE), "device"),
        (special(REC, tarfile.BLKTYPE), "device"),
        (special(REC, tarfile.FIFOTYPE), "FIFO"),
        (special("recordings/2026/01", tarfile.DIRTYPE), "directory"),
    ],
)
def test_hostile_members_are_refused_and_nothing_is_written_outside(tmp_path, member, says):
    data = crafted(regular(archive.DATABASE), regular(archive.SECRETS), member)
    with pytest.raises(BackupError, match=says):
        extract_into(tmp_path, data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["into"]
    assert not (tmp_path.parent / "x.rec").exists()


def test_a_sparse_member_that_would_fill_the_disk_is_refused(tmp_path):
    """PAX GNU.sparse headers: a few bytes in the archive, 50 MiB of zeros once extracted."""
    info, data = regular(REC, b"x")
    info.pax_headers = {
        "GNU.sparse.size": str(50 << 20),
        "GNU.sparse.map": f"{(50 << 20) - 1},1",
    }
    with pytest.raises(BackupError, match="is a sparse file: refused"):
        extract_into(tmp_path, crafted((info, data)))
    assert list((tmp_path / "into").rglob("*.rec")) == []


def test_a_malformed_sparse_header_is_one_clear_refusal(tmp_path):
    info, data = regular(REC, b"")
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
    with pytest.raises(BackupError, match="not a backup archive"):
        extract_into(tmp_path, crafted((info, data)))


def test_oversized_sealed_secrets_are_refused_before_they_are_read(tmp_path):
    too_big = b"\0" * (archive.MAX_SECRETS + 1)
    with pytest.raises(BackupError, match=r"secrets\.sealed is too big"):
        extract_into(tmp_path, crafted(regular(archive.SECRETS, too_big)))


def test_an_archive_with_more_members_than_a_backup_holds_stops_at_the_cap(tmp_path,
                                                                        monkeypatch):  # fmt: skip
    monkeypatch.setattr(archive, "MAX_MEMBERS", 100)
    empty = [regular(f"recordings/2026/01/{n}.rec", b"") for n in range(1000)]
    with pytest.raises(BackupError, match="more than 100 members, more than a backup does"):
        extract_into(tmp_path, crafted(*empty))
    assert len(list((tmp_path / "into").rglob("*.rec"))) == 100  # none after the cap


def test_the_archive_of_a_box_with_many_recordings_reads_back(tmp_path):
    """The sealed secrets repeat every member's SHA-256 (~180 bytes a recording): their bound
    and the manifest's follow the bound on recordings, so what a backup makes, a restore
    reads (a 1 MiB bound on the sealed secrets refused boxes of more than ~7,000)."""
    out = io.BytesIO()
    writer = archive.Writer(out, 1_700_000_000)
    writer.add_bytes(archive.DATABASE, b"rows")
    for n in range(10_000):
        writer.add_bytes(f"recordings/2026/01/1700000000.{n:06d}.rec", b"")
    made = manifest(**writer.members)
    sealed = {"members": archive.sealed_digests(writer.members), "created": made.created,
              "schema_revision": made.schema_revision}  # fmt: skip
    writer.add_bytes(archive.SECRETS, sealing.seal(sealed, "correct horse battery", FAST))
    writer.finish(manifest(**writer.members))
    read = extract_into(tmp_path, out.getvalue())
    box = (tmp_path / "into" / archive.SECRETS).read_bytes()
    assert len(box) > 1 << 20
    archive.check_sealed(read, sealing.unseal(box, "correct horse battery"))
    assert 256 * archive.MAX_MEMBERS < archive.MAX_SECRETS == archive.MAX_MANIFEST


def test_a_member_whose_bytes_changed_does_not_match_the_manifest(tmp_path):
    data, _ = good_archive()
    tampered = data.replace(b"sealed audio", b"sealed AUDIO")
    with pytest.raises(BackupError, match="does not match its SHA-256"):
        extract_into(tmp_path, tampered)


@pytest.mark.parametrize("inside", [b"rows", b"sealed audio", b"BEGIN CERT", b'"schema_revision"'])
def test_a_truncated_archive_is_refused(tmp_path, inside):
    data, _ = good_archive()
    with pytest.raises(BackupError, match="truncated"):
        extract_into(tmp_path, data[: data.index(inside) + 3])


def test_cut_at_a_member_boundary_the_missing_manifest_says_so(tmp_path):
    data, _ = good_archive()
    end = data.index(b"manifest.json") // 512 * 512  # the manifest's header block
    with pytest.raises(BackupError, match="manifest is missing"):
        extract_into(tmp_path, data[:end])


def test_members_must_be_exactly_the_manifests(tmp_path):
    base = (regular(archive.DATABASE), regular(archive.SECRETS))
    extra = crafted(*base, regular(REC), listed={
        archive.DATABASE: archive.Member(hashlib.sha256(b"x").hexdigest(), 1),
        archive.SECRETS: archive.Member(hashlib.sha256(b"x").hexdigest(), 1),
    })  # fmt: skip
    with pytest.raises(BackupError, match="not in the manifest"):
        extract_into(tmp_path, extra, "a")
    twice = crafted(*base, regular(REC), regular(REC))
    with pytest.raises(BackupError, match="twice"):
        extract_into(tmp_path, twice, "b")


def test_nothing_may_follow_the_manifest(tmp_path):
    data, _ = good_archive()
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for info in source.getmembers():
            tar.addfile(info, source.extractfile(info))
        tar.addfile(regular("recordings/2026/02/late.rec")[0], io.BytesIO(b"x"))
    with pytest.raises(BackupError, match="follows the manifest"):
        extract_into(tmp_path, out.getvalue())


def test_not_an_archive_at_all(tmp_path):
    with pytest.raises(BackupError, match="not a backup archive"):
        extract_into(tmp_path, b"PK\x03\x04 a zip file, say" * 40)


def test_a_manifest_that_lists_a_hostile_name_is_refused():
    body = manifest(**{"../x": archive.Member("0" * 64, 1)}).to_json()
    with pytest.raises(BackupError, match="leads out"):
        archive.Manifest.from_json(body)
    with pytest.raises(BackupError, match="manifest is damaged"):
        archive.Manifest.from_json(b'{"format": 1}')
    with pytest.raises(BackupError, match="format 2"):
        archive.Manifest.from_json(json.dumps({"format": 2}).encode())


def test_names_are_shown_printable_and_short():
    shown = archive.shown("\x1b[31mred\n" + "x" * 200)
    assert "\x1b" not in shown and "\n" not in shown and len(shown) < 110


# sealing ---------------------------------------------------------------------------------
def test_sealed_secrets_open_with_the_passphrase_only():
    box = sealing.seal({"master": "c2VjcmV0"}, "correct horse battery", FAST)
    assert b"c2VjcmV0" not in box and b"correct horse" not in box
    assert sealing.unseal(box, "correct horse battery") == {"master": "c2VjcmV0"}
    with pytest.raises(BackupError, match="wrong passphrase"):
        sealing.unseal(box, "correct horse batterY")


def test_a_changed_sealed_box_does_not_open():
    box = json.loads(sealing.seal({"a": 1}, "correct horse battery", FAST))
    blob = bytearray(base64.b64decode(box["ciphertext"]))
    blob[0] ^= 1
    box["ciphertext"] = base64.b64encode(bytes(blob)).decode()
    with pytest.raises(BackupError, match=r"wrong passphrase .*altered"):
        sealing.unseal(json.dumps(box).encode(), "correct horse battery")


def test_the_default_work_factor_is_strong():
    box = json.loads(sealing.seal({}, "correct horse battery"))
    assert (box["kdf"], box["n"], box["r"]) == ("scrypt", 2**17, 8)


@pytest.mark.parametrize(
    "change",
    [
        {"n": 2**24},
        {"r": 64},
        {"p": 100},
        {"n": 2**20, "r": 16},
        {"n": 1000},
        {"salt": 7},
        {"kdf": "md5"},
    ],
)
def test_an_archive_cannot_ask_for_unbounded_or_unknown_work(change):
    box = json.loads(sealing.seal({}, "correct horse battery", FAST)) | change
    with pytest.raises(BackupError):
        sealing.unseal(json.dumps(box).encode(), "correct horse battery")


def test_the_sealed_digests_must_repeat_the_manifest():
    data_manifest = manifest(**{
        archive.DATABASE: archive.Member("a" * 64, 1),
        archive.SECRETS: archive.Member("b" * 64, 1),
    })  # fmt: skip
    sealed = {
        "members": {archive.DATABASE: "a" * 64},
        "schema_revision": "0015",
        "created": data_manifest.created,
    }
    archive.check_sealed(data_manifest, sealed)
    for altered in (
        {"members": {archive.DATABASE: "c" * 64}},
        {"members": {archive.DATABASE: "a" * 64, REC: "d" * 64}},
        {"schema_revision": "0014"},
        {"created": "2020-01-01T00:00:00+00:00"},
    ):
        with pytest.raises(BackupError, match="altered"):
            archive.check_sealed(data_manifest, sealed | altered)


# values ----------------------------------------------------------------------------------
def test_times_are_kept_in_utc_whatever_the_backend_gave():
    naive = dt.datetime(2026, 1, 2, 3, 4, 5, 600)  # SQLite: UTC, without its zone
    aware = dt.datetime(2026, 1, 2, 4, 4, 5, 600, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert rows.encode(naive) == rows.encode(aware) == {"t": "2026-01-02T03:04:05.000600+00:00"}
    assert rows.decode(rows.encode(naive)) == naive.replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -7, 2.5, "", "ünïcødé \u2028", b"\x00\xff", decimal.Decimal("1.10"),
     dt.date(2026, 2, 3), float("inf")],
)  # fmt: skip
def test_values_survive_json(value):
    assert rows.decode(json.loads(json.dumps(rows.encode(value)))) == value


def test_an_unknown_value_is_an_error_not_a_guess():
    with pytest.raises(TypeError):
        rows.encode(object())
    with pytest.raises(ValueError):
        rows.decode({"x": "1"})


def test_a_table_that_refers_to_itself_is_ordered_parents_first():
    found = [
        {"id": 3, "parent": 2},
        {"id": 2, "parent": 1},
        {"id": 1, "parent": None},
        {"id": 4, "parent": 99},  # not among the rows: the database judges it
        {"id": 5, "parent": 5},
    ]
    ordered = [r["id"] for r in rows.parents_first(found, "id", "parent")]
    assert ordered.index(1) < ordered.index(2) < ordered.index(3)
    assert sorted(ordered) == [1, 2, 3, 4, 5]
    cycle = [{"id": 1, "parent": 2}, {"id": 2, "parent": 1}]
    assert rows.parents_first(cycle, "id", "parent") == cycle

"""Installing a Vosk model from an archive an admin brought: the model appears whole under
its name, and a hostile archive (paths outside, links, two folders, not a model, too big a
name) is refused with a message and writes nothing anywhere."""

import io
import os
import re
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from appliance.transcription import models
from tests.harness import time_bound

MODEL = {
    "vosk-model-small-xx/am/final.mdl": b"acoustic model",
    "vosk-model-small-xx/conf/mfcc.conf": b"--use-energy=false",
    "vosk-model-small-xx/conf/model.conf": b"--min-active=200",
    "vosk-model-small-xx/graph/HCLr.fst": b"graph",
}


def tar_of(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def zip_of(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return path


@pytest.mark.parametrize("pack", [tar_of, zip_of])
def test_a_model_archive_is_installed_under_its_folder_name(tmp_path, pack):
    archive = pack(tmp_path / "model.archive", MODEL)
    model_dir = tmp_path / "models"
    model = models.install(archive, model_dir)
    assert model.name == "vosk-model-small-xx" and model.bytes == sum(map(len, MODEL.values()))
    assert (
        model_dir / "vosk-model-small-xx" / "am" / "final.mdl"
    ).read_bytes() == b"acoustic model"
    assert [m.name for m in models.installed(model_dir)] == ["vosk-model-small-xx"]
    assert [p.name for p in model_dir.iterdir()] == ["vosk-model-small-xx"]  # nothing left
    with pytest.raises(models.ModelError, match="already installed"):
        models.install(archive, model_dir)
    assert models.install(archive, model_dir, name="ko").name == "ko"
    models.remove(model_dir, "ko")
    assert [m.name for m in models.installed(model_dir)] == ["vosk-model-small-xx"]


@pytest.mark.parametrize("pack", [tar_of, zip_of])
@pytest.mark.parametrize(
    ("files", "links", "message"),
    [
        ({**MODEL, "vosk-model-small-xx/../../evil": b"x"}, None, "outside the model"),
        ({**MODEL, "/etc/evil": b"x"}, None, "outside the model"),
        (MODEL, {"vosk-model-small-xx/am/link": "/etc/passwd"}, "link or device"),
        ({**MODEL, "other/file": b"x"}, None, "one folder"),
        ({"vosk-model-small-xx/readme.txt": b"not a model"}, None, "not a Vosk model"),
    ],
)
def test_hostile_or_wrong_archives_are_refused_and_write_nothing(tmp_path, pack, files, links,
                                                                 message):  # fmt: skip
    archive = pack(tmp_path / "model.archive", files, links)
    model_dir = tmp_path / "models"
    with pytest.raises(models.ModelError, match=message):
        models.install(archive, model_dir)
    assert not model_dir.exists()  # judged before anything is written
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "x" * 101, "<script>"])
def test_model_names_are_plain(tmp_path, name):
    archive = tar_of(tmp_path / "m.tgz", MODEL)
    with pytest.raises(models.ModelError, match="not a model name"):
        models.install(archive, tmp_path / "models", name=name)


def test_what_is_not_an_archive_is_refused(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(models.ModelError, match=r"not a \.zip or \.tar\.gz"):
        models.install(junk, tmp_path / "models")
    with pytest.raises(models.ModelError, match="no such file"):
        models.install(tmp_path / "missing.zip", tmp_path / "models")


def many_empty_members(path: Path, count: int) -> Path:
    """An archive of a small model followed by `count` empty files: a few hundred kB packed."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in MODEL.items():
                z.writestr(name, data)
            for n in range(count):
                z.writestr(f"vosk-model-small-xx/many/{n}", b"")
        return path
    with tarfile.open(path, "w:gz", compresslevel=1, format=tarfile.USTAR_FORMAT) as tar:
        for name, data in MODEL.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for n in range(count):
            tar.addfile(tarfile.TarInfo(f"vosk-model-small-xx/many/{n}"))
    return path


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_a_hundred_thousand_empty_files_are_refused_before_writing(tmp_path, suffix):
    """Each member used to be looked up again by name (quadratic in a tar) and written before
    the model was checked: this archive kept the installer busy for minutes."""
    archive = many_empty_members(tmp_path / f"bomb{suffix}", 100_000)
    model_dir = tmp_path / "models"
    with (
        time_bound(120, AssertionError("the installer was still busy after two minutes")),
        pytest.raises(models.ModelError) as refused,
    ):
        models.install(archive, model_dir)
    assert str(refused.value) == (
        "the archive holds more than 10,000 members: not a Vosk model (one has a few dozen files)"
    )
    assert not model_dir.exists()


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_a_model_with_many_files_below_the_cap_installs(tmp_path, suffix):
    archive = many_empty_members(tmp_path / f"big{suffix}", models.MAX_MEMBERS - len(MODEL) - 3)
    model = models.install(archive, tmp_path / "models")
    assert len(list((model.path / "many").iterdir())) == models.MAX_MEMBERS - len(MODEL) - 3


def special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind == tarfile.LNKTYPE:
        info.linkname = "vosk-model-small-xx/am/final.mdl"
    return info


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (special("vosk-model-small-xx/hard", tarfile.LNKTYPE), "link or device"),
        (special("vosk-model-small-xx/dev", tarfile.CHRTYPE), "link or device"),
        (special("vosk-model-small-xx/fifo", tarfile.FIFOTYPE), "link or device"),
        (tarfile.TarInfo("vosk-model-small-xx/am/final.mdl"), "names 'vosk-model-small-xx/am/fi"),
        (tarfile.TarInfo("vosk-model-small-xx/./am//final.mdl"), "twice"),
        (tarfile.TarInfo("vosk-model-small-xx/conf/model.conf/x"), "as a file and a folder"),
        (tarfile.TarInfo("vosk-model-small-xx\\..\\evil"), "outside the model"),
        (tarfile.TarInfo("./../evil"), "outside the model"),
    ],
)
def test_path_tricks_in_a_tar_are_refused_before_anything_is_written(tmp_path, extra, message):
    archive = tar_of(tmp_path / "model.tgz", MODEL)
    with tarfile.open(archive, "w:gz") as tar:  # the model again, then the trick
        for name, data in MODEL.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.addfile(extra)
    model_dir = tmp_path / "models"
    with pytest.raises(models.ModelError, match=re.escape(message)):
        models.install(archive, model_dir)
    assert not model_dir.exists() and not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    "files",
    [
        {**MODEL, "vosk-model-small-xx/conf/": b""},  # a folder named where a file is
        {**MODEL, "vosk-model-small-xx/am/final.mdl/": b""},
    ],
)
@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_zip_naming_one_path_twice_is_refused(tmp_path, files):
    archive = zip_of(tmp_path / "model.zip", files)
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("vosk-model-small-xx/conf/mfcc.conf", b"again")
    with pytest.raises(models.ModelError, match=r"twice|as a file and a folder"):
        models.install(archive, tmp_path / "models")
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("pack", [tar_of, zip_of])
def test_a_damaged_archive_is_refused_and_leaves_nothing(tmp_path, pack):
    whole = pack(
        tmp_path / "whole.archive", {**MODEL, "vosk-model-small-xx/big": os.urandom(1 << 16)}
    )
    cut = tmp_path / "cut.archive"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    model_dir = tmp_path / "models"
    with pytest.raises(models.ModelError, match=r"damaged or truncated|not a \.zip or \.tar\.gz"):
        models.install(cut, model_dir)
    assert not model_dir.exists() or list(model_dir.iterdir()) == []

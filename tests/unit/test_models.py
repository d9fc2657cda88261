"""Installing a Vosk model from an archive an admin brought: the model appears whole under
its name, and a hostile archive (paths outside, links, two folders, not a model, too big a
name) is refused with a message and writes nothing anywhere."""

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from appliance.transcription import models

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
    assert models.installed(model_dir) == []
    assert not model_dir.exists() or list(model_dir.iterdir()) == []
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "x" * 101, "<script>"])
def test_model_names_are_plain(tmp_path, name):
    archive = tar_of(tmp_path / "m.tgz", MODEL)
    with pytest.raises(models.ModelError, match="not a model name"):
        models.install(archive, tmp_path / "models", name=name)


def test_what_is_not_an_archive_is_refused(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(models.ModelError, match="not a .zip or .tar.gz"):
        models.install(junk, tmp_path / "models")
    with pytest.raises(models.ModelError, match="no such file"):
        models.install(tmp_path / "missing.zip", tmp_path / "models")

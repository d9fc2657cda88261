"""The self-signed certificate the admin UI starts with (replace the files to use your own)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

from appliance.config import ConfigError


def cert_paths(data_dir: Path) -> tuple[Path, Path]:
    return data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem"


def ensure_certificate(data_dir: Path, hostname: str = "localhost") -> bool:
    """Create a self-signed certificate unless one exists; return True when created."""
    cert, key = cert_paths(data_dir)
    if cert.exists() and key.exists():
        return False
    if shutil.which("openssl") is None:
        raise ConfigError(
            "http.tls: openssl is needed to create the certificate (apt install openssl)"
        )
    cert.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "825",
            "-subj",
            f"/CN={hostname}",
            "-addext",
            f"subjectAltName=DNS:{hostname},DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return True


def server_context(data_dir: Path) -> ssl.SSLContext:
    cert, key = cert_paths(data_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError:
        raise ConfigError(
            f"http.tls: no certificate in {cert.parent} (run 'appliance init')"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigError(f"http.tls: certificate in {cert.parent} is unusable: {exc}") from None
    return context

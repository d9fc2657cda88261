"""The admin UI's certificate: a self-signed one at first, for the names clients reach the
appliance by (the configured public name, the host's names and addresses it listens on), or
the admin's own (`appliance tls install CERT KEY`). TLS 1.2 and later, AEAD suites only."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

from appliance.config import Config, ConfigError

# TLS 1.3 suites are all AEAD; for TLS 1.2, forward-secret AES-GCM and ChaCha20-Poly1305 only
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def cert_paths(data_dir: Path) -> tuple[Path, Path]:
    return data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem"


def names(config: Config) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the certificate should be valid for."""
    dns = ["localhost"]
    ips = ["127.0.0.1", "::1"]
    public = (
        urllib.parse.urlsplit(config.http.public_url).hostname if config.http.public_url else ""
    )
    candidates = [public or "", socket.gethostname(), socket.getfqdn(), config.http.host]
    for name in candidates:
        name = name.strip().lower()
        if not name:
            continue
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            if name not in dns and all(c.isalnum() or c in ".-" for c in name):
                dns.append(name)
            continue
        if not address.is_unspecified and str(address) not in ips:
            ips.append(str(address))
    return dns, ips


def ensure_certificate(config: Config) -> bool:
    """Create a self-signed certificate unless one exists; return True when created."""
    cert, key = cert_paths(config.data_dir)
    if cert.exists() and key.exists():
        return False
    if shutil.which("openssl") is None:
        raise ConfigError(
            "http.tls: openssl is needed to create the certificate (apt install openssl)"
        )
    dns, ips = names(config)
    cn = dns[1] if len(dns) > 1 else dns[0]
    alt = ",".join([f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips])
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
            f"/CN={cn}",
            "-addext",
            f"subjectAltName={alt}",
            "-addext",
            "extendedKeyUsage=serverAuth",
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
    try:
        return _context(cert, key)
    except FileNotFoundError:
        raise ConfigError(
            f"http.tls: no certificate in {cert.parent} (run 'appliance init')"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigError(f"http.tls: certificate in {cert.parent} is unusable: {exc}") from None


def _context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.load_cert_chain(cert, key)
    return context


def install(config: Config, cert: Path, key: Path) -> None:
    """Replace the certificate with the admin's own, checked first: it must load with its key.
    The controller reads it at its next start."""
    try:
        _context(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(f"{exc.filename}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"the certificate and key do not make a usable pair: {exc}") from None
    target_cert, target_key = cert_paths(config.data_dir)
    target_cert.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for source, target, mode in ((cert, target_cert, 0o644), (key, target_key, 0o600)):
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".install-")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(source.read_bytes())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

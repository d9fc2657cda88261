"""The admin UI's certificate and TLS settings, with real openssl and real TLS handshakes."""

import asyncio
import socket
import ssl
import subprocess

import pytest

from appliance import tls
from appliance.config import ConfigError, load


def config_for(tmp_path, **settings):
    environ = {"APPLIANCE_PATHS_DATA_DIR": str(tmp_path / "data")}
    environ.update({f"APPLIANCE_HTTP_{k.upper()}": v for k, v in settings.items()})
    return load(None, environ)


def alt_names(cert) -> str:
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return text


def test_the_certificate_names_the_public_name_and_the_host(tmp_path):
    config = config_for(tmp_path, host="0.0.0.0", public_url="https://calls.example.com:8443/")
    assert tls.ensure_certificate(config)
    assert not tls.ensure_certificate(config)  # kept once made
    names = alt_names(tls.cert_paths(config.data_dir)[0])
    for expected in (
        "DNS:calls.example.com",
        f"DNS:{socket.gethostname().lower()}",
        "DNS:localhost",
    ):
        assert expected in names
    assert "IP Address:127.0.0.1" in names and "0.0.0.0" not in names
    _cert, key = tls.cert_paths(config.data_dir)
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_a_hostile_public_name_is_not_put_in_the_certificate(tmp_path):
    config = config_for(tmp_path, public_url="https://a,DNS:evil.example/")
    dns, _ = tls.names(config)
    assert not [d for d in dns if "," in d or "evil" in d]


async def handshake(context_for_client, port) -> str:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context_for_client)
    cipher = writer.get_extra_info("cipher")
    writer.close()
    return cipher[0]


async def test_only_tls12_and_later_with_aead_suites(tmp_path):
    config = config_for(tmp_path)
    tls.ensure_certificate(config)

    async def hold(reader, writer):
        await reader.read()
        writer.close()

    server = await asyncio.start_server(
        hold, "127.0.0.1", 0, ssl=tls.server_context(config.data_dir)
    )
    port = server.sockets[0].getsockname()[1]
    try:
        client = ssl.create_default_context(cafile=str(tls.cert_paths(config.data_dir)[0]))
        assert await handshake(client, port)
        cbc = ssl.create_default_context(cafile=str(tls.cert_paths(config.data_dir)[0]))
        cbc.maximum_version = ssl.TLSVersion.TLSv1_2
        cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384")  # CBC
        with pytest.raises((ssl.SSLError, ConnectionResetError)):  # refused in the handshake
            await handshake(cbc, port)
        gcm = ssl.create_default_context(cafile=str(tls.cert_paths(config.data_dir)[0]))
        gcm.maximum_version = ssl.TLSVersion.TLSv1_2
        suite = await handshake(gcm, port)
        assert "GCM" in suite or "CHACHA" in suite
    finally:
        server.close()
        await server.wait_closed()


def test_install_checks_the_pair_and_replaces_atomically(tmp_path):
    ours = config_for(tmp_path / "ours")
    tls.ensure_certificate(ours)
    other = config_for(tmp_path / "other")
    tls.ensure_certificate(other)
    cert, key = tls.cert_paths(other.data_dir)
    before = tls.cert_paths(ours.data_dir)[0].read_bytes()
    with pytest.raises(ConfigError, match="usable pair"):
        tls.install(ours, cert, tls.cert_paths(ours.data_dir)[1])
    with pytest.raises(ConfigError, match="no such file"):
        tls.install(ours, tmp_path / "missing.pem", key)
    assert tls.cert_paths(ours.data_dir)[0].read_bytes() == before
    tls.install(ours, cert, key)
    assert tls.cert_paths(ours.data_dir)[0].read_bytes() == cert.read_bytes()
    assert oct(tls.cert_paths(ours.data_dir)[1].stat().st_mode & 0o777) == "0o600"

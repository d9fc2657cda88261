"""`appliance doctor`'s certificate and clock checks, on real certificates made by openssl and a
stand-in timedatectl; its FastAGI checks, on the kernel's socket tables and the sysctl that
decides who may listen on the port."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from appliance import config as appliance_config
from appliance import doctor
from appliance.asterisk import agi_port
from appliance.tls import cert_paths

DAY = 86400
CA_CONFIG = """[ca]
default_ca = d
[d]
dir = .
database = ./index.txt
new_certs_dir = ./issued
serial = ./serial
default_md = sha256
policy = p
[p]
commonName = supplied
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def new_key_and_request(folder: Path) -> None:
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=calls.example.com", "-keyout", "key.pem", "-out", "request.pem",
        cwd=folder,
    )  # fmt: skip


def self_signed(folder: Path, days: int) -> None:
    """A self-signed certificate valid from now for `days` days, as 'appliance init' makes."""
    new_key_and_request(folder)
    openssl(
        "x509", "-req", "-in", "request.pem", "-signkey", "key.pem", "-days", str(days),
        "-out", "cert.pem",
        cwd=folder,
    )  # fmt: skip


def expired(folder: Path) -> None:
    """A self-signed certificate whose validity ended in 2020: openssl's `ca` sets both dates."""
    new_key_and_request(folder)
    (folder / "ca.cnf").write_text(CA_CONFIG)
    (folder / "index.txt").touch()
    (folder / "serial").write_text("01\n")
    (folder / "issued").mkdir()
    openssl(
        "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "key.pem",
        "-in", "request.pem", "-out", "cert.pem", "-notext",
        "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
        cwd=folder,
    )  # fmt: skip


def issued_by_a_ca(folder: Path, days: int) -> None:
    """A certificate signed by another (made-up) authority."""
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=Example CA", "-days", "30", "-keyout", "ca-key.pem", "-out", "ca.pem",
        cwd=folder,
    )  # fmt: skip
    new_key_and_request(folder)
    openssl(
        "x509", "-req", "-in", "request.pem", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-days", str(days), "-out", "cert.pem",
        cwd=folder,
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> appliance_config.Config:
    loaded = appliance_config.load(environ={"APPLIANCE_PATHS_DATA_DIR": str(tmp_path)})
    cert_paths(tmp_path)[0].parent.mkdir()
    return loaded


def the_certificate(config: appliance_config.Config) -> Path:
    return cert_paths(config.data_dir)[0].parent


@pytest.mark.parametrize(("days", "status"), [(400, doctor.OK), (31, doctor.OK), (10, doctor.WARN)])
def test_a_certificate_with_time_left(config, days, status):
    self_signed(the_certificate(config), days)
    found = doctor.check_certificate(config)
    assert found.status == status, found
    made = (time.time() - 600, time.time())  # a midnight may pass since it was made
    ends = {time.strftime("%Y-%m-%d", time.gmtime(t + days * DAY)) for t in made}
    assert any(e in found.detail for e in ends) and "self-signed" in found.detail
    if status == doctor.WARN:
        assert "expires on" in found.detail and "in 10 day(s)" in found.detail
        assert "run 'appliance init'" in found.fix and "appliance tls install CERT KEY" in found.fix


def test_an_expired_certificate_fails_with_its_date_and_what_to_run(config):
    expired(the_certificate(config))
    found = doctor.check_certificate(config)
    assert found.status == doctor.FAIL
    assert "expired on 2020-02-01 00:00 UTC" in found.detail
    cert, key = cert_paths(config.data_dir)
    assert f"delete {cert} and {key}, run 'appliance init'" in found.fix


def test_an_installed_certificate_is_renewed_by_installing_again(config):
    issued_by_a_ca(the_certificate(config), days=5)
    found = doctor.check_certificate(config)
    assert found.status == doctor.WARN and "self-signed" not in found.detail
    assert found.fix.startswith("install the renewed one: appliance tls install CERT KEY")
    later = doctor.check_certificate(config, now=time.time() + 6 * DAY)
    assert later.status == doctor.FAIL and "expired on" in later.detail


@pytest.mark.parametrize("content", [None, b"", b"not a certificate", b"\xff" * 64])
def test_a_missing_or_unreadable_certificate_fails(config, content):
    cert = cert_paths(config.data_dir)[0]
    if content is not None:
        cert.write_bytes(content)
    found = doctor.check_certificate(config)
    assert found.status == doctor.FAIL and "missing or unreadable" in found.detail
    assert "appliance tls install CERT KEY" in found.fix and "appliance init" in found.fix


def test_without_tls_there_is_no_certificate_to_check(tmp_path):
    loaded = appliance_config.load(
        environ={"APPLIANCE_PATHS_DATA_DIR": str(tmp_path), "APPLIANCE_HTTP_TLS": "false"}
    )
    assert doctor.check_certificate(loaded).status == doctor.OK


def stand_in(folder: Path, script: str) -> str:
    """A timedatectl that answers as told."""
    path = folder / "timedatectl"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(
    ("script", "status", "said"),
    [
        ('[ "$*" = "show -p NTPSynchronized --value" ] && echo yes', doctor.OK, "synchronised"),
        ("echo no", doctor.WARN, "not synchronised"),
        ("echo 'Failed to connect to bus' >&2; exit 1", doctor.WARN, "unknown"),
        ("echo maybe", doctor.WARN, "unknown"),
    ],
)
def test_the_clock_as_timedatectl_says(tmp_path, script, status, said):
    found = doctor.check_clock(stand_in(tmp_path, script), flag=tmp_path / "no-flag")
    assert found.status == status and said in found.detail, found
    if status == doctor.WARN:
        assert "systemd-timesyncd" in found.fix and "chrony" in found.fix


def test_the_clock_from_timesyncd_when_timedatectl_cannot_tell(tmp_path):
    flag = tmp_path / "synchronized"
    flag.touch()
    failing = stand_in(tmp_path, "exit 1")
    assert doctor.check_clock(failing, flag=flag).status == doctor.OK
    assert doctor.check_clock(None, flag=flag).status == doctor.OK
    unknown = doctor.check_clock(None, flag=tmp_path / "absent")
    assert unknown.status == doctor.WARN and "no timedatectl" in unknown.detail


def test_the_new_checks_are_part_of_the_doctor(config):
    checks = {f.check for f in doctor.findings(config)}
    assert {"certificate", "clock", "FastAGI", "FastAGI port guard"} <= checks


@pytest.mark.parametrize(
    ("start", "allowed", "status"),
    [
        (None, False, doctor.OK),  # a kernel without the sysctl: 1024, fixed
        (1024, False, doctor.OK),
        (574, False, doctor.OK),
        (573, False, doctor.FAIL),
        (0, False, doctor.FAIL),
        (0, True, doctor.WARN),  # agi.allow_unprivileged_ports: flagged all the same
    ],
)
def test_the_fastagi_port_guard_follows_the_sysctl(start, allowed, status):
    found = doctor.port_guard_finding(start, 573, allowed)
    assert found.status == status, found
    if status != doctor.OK:
        assert f"net.ipv4.ip_unprivileged_port_start is {start}" in found.detail
        assert "/etc/sysctl.d/90-appliance.conf" in found.fix and "above 573" in found.fix


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout
   0: 0100007F:023D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000:023D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 2 1
   2: 0200007F:023D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 3 1
   3: 0100007F:C288 0100007F:023D 01 00000000:00000000 00:00000000 00000000  1003        0 4 1
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 0000000000000000FFFF00000100007F:023D 00000000000000000000000000000000:0000 0A 0:0 0:0 0 1004
"""


def test_the_socket_tables_say_who_listens_where():
    found = agi_port.listeners(TCP) + agi_port.listeners(TCP6)
    assert [(one.address, one.port, one.uid) for one in found] == [
        ("127.0.0.1", 573, 0),
        ("0.0.0.0", 573, 1001),
        ("127.0.0.2", 573, 1002),
        ("127.0.0.1", 573, 1004),  # IPv6, on ::ffff:127.0.0.1
    ]  # the connection in state 01 is no listener
    held = agi_port.holders(found, "127.0.0.1", 573)
    assert [one.uid for one in held] == [0, 1001, 1004]  # 127.0.0.2 takes no 127.0.0.1 call
    big_endian = "hdr\n 0: 7F000001:023D 00000000:0000 0A 0:0 0:0 0 7\n"
    assert agi_port.listeners(big_endian, "big") == [agi_port.Listener("127.0.0.1", 573, 7)]


def test_a_stranger_on_the_fastagi_port_fails_the_doctor():
    held = agi_port.holders(agi_port.listeners(TCP), "127.0.0.1", 573)
    found = doctor.fastagi_finding(held, "127.0.0.1", 573, trusted={0})
    assert found.status == doctor.FAIL and "held by uid 1001, not the controller" in found.detail
    mine = doctor.fastagi_finding(held[:1], "127.0.0.1", 573, trusted={0})
    assert mine.status == doctor.OK and "listening (uid 0)" in mine.detail
    assert doctor.fastagi_finding([], "127.0.0.1", 573, {0}).status == doctor.WARN


def test_the_doctor_sees_the_fastagi_listener_without_connecting_to_it(config):
    """A real listening socket: the doctor finds it, owned by this user, in the kernel's
    table, and nothing waits to be accepted (a connection would count as an intrusion)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        moved = dataclasses.replace(config, agi=dataclasses.replace(config.agi, port=port))
        found = doctor.check_fastagi(moved)
        assert found.status == doctor.OK, found
        assert f"127.0.0.1:{port} is listening (uid {os.getuid()})" in found.detail
        with pytest.raises(BlockingIOError):
            listener.accept()

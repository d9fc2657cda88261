"""A site's own Asterisk, laid out the way FreePBX lays out its config: written here, by the
test, never by the appliance. Its dialplan sends carrier calls to the desk phone; the snippet
of `appliance attach snippet` is pasted into the *_custom.conf files, as an admin would."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from appliance.asterisk.render import NOLOAD, lookup_user, module_dir
from tests.harness import Stack

TRACKED = "+12025550123"  # the tracking number; the carrier sends it with the +
INTERNAL = "7001"  # an extension the site's dialplan rings without tracking


def extensions(freepbx: bool) -> str:
    """The site's dialplan: FreePBX's inbound route sets FROM_DID and goes to the custom
    destination (Gosub with Return); a plain one passes the dialled number to the Gosub."""
    track = "Gosub(appliance-track,s,1)" if freepbx else "Gosub(appliance-track,s,1(${EXTEN}))"
    return (
        "[general]\nstatic = yes\nwriteprotect = yes\n\n"
        "[from-pstn]\n"
        "exten => _+X.,1,Set(__FROM_DID=${EXTEN})\n"
        f" same => n,{track}\n"
        " same => n,Gosub(appliance-example,s,1)\n"
        " same => n,Dial(PJSIP/desk,10)\n"
        " same => n,Hangup()\n"
        f"exten => {INTERNAL},1,Dial(PJSIP/desk,10)\n"
        " same => n,Hangup()\n\n"
        "#include extensions_custom.conf\n"
    )


def pjsip(stack: Stack) -> str:
    return (
        "[transport-udp]\ntype = transport\nprotocol = udp\n"
        f"bind = 127.0.0.1:{stack.sip_port}\n\n"
        "[carrier]\ntype = endpoint\ntransport = transport-udp\ncontext = from-pstn\n"
        "disallow = all\nallow = ulaw\ndirect_media = no\nrtp_symmetric = yes\n\n"
        "[carrier-identify]\ntype = identify\nendpoint = carrier\nmatch = 127.0.0.1\n\n"
        "[desk]\ntype = endpoint\ntransport = transport-udp\ncontext = from-internal\n"
        "disallow = all\nallow = ulaw\ndirect_media = no\naors = desk\n\n"
        f"[desk]\ntype = aor\ncontact = sip:127.0.0.1:{stack.phone_port}\n"
    )


def asterisk_conf(stack: Stack) -> str:
    base = stack.asterisk_dir
    return (
        "[directories]\n"
        f"astetcdir => {base}/etc\nastmoddir => {module_dir(stack.root)}\n"
        "astvarlibdir => /var/lib/asterisk\n"
        f"astdbdir => {base}/db\nastkeydir => {base}\n"
        "astdatadir => /usr/share/asterisk\nastagidir => /usr/share/asterisk/agi-bin\n"
        f"astspooldir => {base}/spool\nastrundir => {base}/run\nastlogdir => {base}/log\n"
        "astsbindir => /usr/sbin\n\n"
        "[options]\nrunuser = asterisk\nrungroup = asterisk\n"
    )


def write(stack: Stack, freepbx: bool) -> Path:
    """The site's config in the stack's Asterisk directory, with the snippets pasted in."""
    manager = stack.appliance("attach", "snippet", "--part", "manager").stdout
    dialplan = ["attach", "snippet", "--part", "dialplan", *(["--freepbx"] if freepbx else [])]
    files = {
        "asterisk.conf": asterisk_conf(stack),
        "modules.conf": "[modules]\nautoload = yes\n"
        + "".join(f"noload => {module}\n" for module in NOLOAD),
        "logger.conf": "[logfiles]\nmessages.log => notice,warning,error\n",
        "pjsip.conf": pjsip(stack),
        "extensions.conf": extensions(freepbx),
        "extensions_custom.conf": stack.appliance(*dialplan).stdout,
        "manager.conf": "[general]\nenabled = yes\nbindaddr = 127.0.0.1\n"
        f"port = {stack.ami_port}\n\n#include manager_custom.conf\n",
        "manager_custom.conf": manager,
    }
    user = lookup_user(stack.root, "asterisk")
    base = stack.asterisk_dir_on_host
    etc = base / "etc"
    etc.mkdir(parents=True, mode=0o750)
    os.chown(etc, 0, user.gid)
    for name, text in files.items():
        (etc / name).write_text(text)
        os.chown(etc / name, 0, user.gid)
        (etc / name).chmod(0o640)
    for sub in ("db", "spool", "run", "log"):
        (base / sub).mkdir(mode=0o750)
        os.chown(base / sub, user.uid, user.gid)
    return etc


def fingerprint(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file under `directory`: its SHA-256 and its mtime (ns)."""
    return {
        str(path.relative_to(directory)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }

"""Bring your own PBX (asterisk.mode = attached): what the site adds to its own Asterisk or
FreePBX, as text to paste. Pure: settings in, snippets out. Every name in them is the code's
own (calls/variables.py, the AMI events the tracker reads, the FastAGI address), so a snippet
cannot drift from what the controller expects."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.asterisk.render import AMI_SECRET, CALL_EVENTS
from appliance.calls import variables as var
from appliance.config import Config, ConfigError

TRACK_SCRIPT = "track"  # the FastAGI scripts the snippet runs (appliance/integrator/agi.py)
LOOKUP_SCRIPT = "lookup"
TAG_SCRIPT = "tag"
EXAMPLE_CTX = "appliance-example"  # not the code's: the site's to copy, rename or drop
# What the manager user reads: calls' events and the dialplan's UserEvents. It writes nothing:
# following calls needs no action (panoramisk's keep-alive Ping needs no class).
MANAGER_READ = ("call", "user")


@dataclass(frozen=True)
class Snippet:
    manager: str  # a manager user, for manager_custom.conf (FreePBX) or manager.conf
    dialplan: str  # the tracking context and an example, for extensions_custom.conf


def agi_url(config: Config) -> str:
    """Where the site's dialplan reaches the controller's FastAGI server."""
    return f"agi://{config.agi.host}:{config.agi.port}"


def manager_user(username: str, secret: str, events: tuple[str, ...] = CALL_EVENTS) -> str:
    if not AMI_SECRET.fullmatch(secret):
        raise ConfigError(
            "ami.secret: use 8 to 128 letters, digits or - _ . ~ + / = (it is pasted into "
            "Asterisk's manager configuration)"
        )
    filters = "".join(f"eventfilter = Event: {event}\n" for event in events)
    return (
        "; The call-tracking appliance's manager user (asterisk.mode = attached): loopback\n"
        "; only, reads call and user events, may send no action that changes anything.\n"
        "; FreePBX: add to /etc/asterisk/manager_custom.conf; plain Asterisk: manager.conf.\n"
        "; Then: asterisk -rx 'manager reload'\n"
        f"[{username}]\n"
        f"secret = {secret}\n"
        "deny = 0.0.0.0/0.0.0.0\n"
        "permit = 127.0.0.1/255.255.255.255\n"
        f"read = {','.join(MANAGER_READ)}\n"
        "write =\n"
        "writetimeout = 1000\n"
        "; Only the events the appliance reads: every other one would cost it parsing time.\n"
        f"{filters}"
    )


def dialplan(url: str, freepbx: bool = False) -> str:
    """The tracking context (Gosub target, or a FreePBX custom destination with Return) and an
    example of the other scripts. FreePBX's inbound routes set FROM_DID; elsewhere the caller
    of the Gosub passes the dialled number as its argument."""
    dialled = "${FROM_DID}" if freepbx else "${ARG1}"
    how = (
        "; FreePBX: add to /etc/asterisk/extensions_custom.conf and run 'fwconsole reload'.\n"
        "; Then Admin > Custom Destinations > Add: Target "
        f"{var.TRACK_CTX},s,1, Return: Yes,\n"
        "; Destination: where the call goes next (extension, ring group, queue, IVR).\n"
        "; Point the inbound route of each tracking number at that custom destination.\n"
        if freepbx
        else "; Add to your dialplan (extensions.conf, or a file it #includes) and run\n"
        "; 'dialplan reload'. In the context your carrier's calls land in, before Dial():\n"
        f";   same => n,Gosub({var.TRACK_CTX},s,1(${{EXTEN}}))\n"
    )
    return (
        "; The call-tracking appliance (asterisk.mode = attached): the call's record starts\n"
        "; here, its outcome (answered, talk time, who hung up) follows over AMI.\n"
        f"{how}"
        "; The controller answers within agi.request_timeout; when it is down or slow the\n"
        "; call goes on untracked (AGISTATUS is FAILURE), it is never held up or dropped.\n"
        f"[{var.TRACK_CTX}]\n"
        f"exten => s,1,AGI({url}/{TRACK_SCRIPT},{dialled})\n"
        " same => n,Return()\n"
        "\n"
        f"{example(url)}"
    )


def example(url: str) -> str:
    """The other scripts at work, after the call is tracked: what the appliance knows of it
    (for a whisper, a screen pop, an IVR branch) and a tag put on it."""
    ready = f'$["${{{var.READY}}}" != "1"]'
    return (
        "; Example (yours to copy, rename or drop): after the tracking context, read what the\n"
        "; appliance knows of the call and tag it. Every script sets "
        f"{var.STATUS} (ok, or why\n"
        f"; not) and, last and only on success, {var.READY}=1.\n"
        f"[{EXAMPLE_CTX}]\n"
        f"exten => s,1,AGI({url}/{LOOKUP_SCRIPT})\n"
        f" same => n,GotoIf({ready}?done)\n"
        f" same => n,Verbose(1,call ${{{var.CALL_ID}}} from ${{{var.SOURCE}}} "
        f"campaign ${{{var.CAMPAIGN}}})\n"
        f' same => n,GotoIf($["${{{var.FIRST_TIME}}}" != "1"]?done)\n'
        f" same => n,AGI({url}/{TAG_SCRIPT},first-call)\n"
        " same => n(done),Return()\n"
    )


def snippet(config: Config, secret: str, freepbx: bool = False) -> Snippet:
    return Snippet(manager_user(config.ami.username, secret), dialplan(agi_url(config), freepbx))

"""Whether Asterisk is registered with each registration trunk's carrier, from AMI `Registry`
events (Asterisk sends one whenever a registration changes state). Pure: fed events, asked
for states."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

REGISTERED = "Registered"


@dataclass(frozen=True)
class Registration:
    status: str  # Registered, Unregistered, Rejected, Failed, ...
    cause: str
    since: float  # time.monotonic() of the change


def server_key(uri: str) -> str:
    """'sip:Sip.Example.net:5060;transport=udp' -> 'sip.example.net:5060'."""
    text = uri.strip().lower()
    text = text.removeprefix("sip:").removeprefix("sips:")
    text = text.split(";", 1)[0].split("@")[-1]
    return text if ":" in text else f"{text}:5060"


class Registrations:
    def __init__(self) -> None:
        self.states: dict[str, Registration] = {}  # server -> last state

    def on_event(self, event: Mapping[str, str]) -> None:
        if event.get("Event") != "Registry" or event.get("ChannelType", "").lower() != "pjsip":
            return
        server = server_key(event.get("Domain", ""))
        status = event.get("Status", "")[:40]
        known = self.states.get(server)
        if known is None or known.status != status:
            self.states[server] = Registration(
                status, event.get("Cause", "")[:80], time.monotonic()
            )

    def state_of(self, host: str, port: int) -> Registration | None:
        return self.states.get(server_key(f"{host}:{port}"))

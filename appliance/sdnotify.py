"""Tell systemd that the controller is ready, still alive, or stopping (the sd_notify protocol).

The unit is `Type=notify` with `WatchdogSec=`: systemd starts the units ordered after the
controller only once it says `READY=1`, and restarts it when the `WATCHDOG=1` pings stop. The
pings are sent by a coroutine on the controller's own event loop, never by a thread: a loop
that is stuck (a blocking call, a busy loop) can no longer route calls, answer AMI or serve
HTTP, and the silence is what gets it restarted.

The protocol needs no library: one datagram per message to the AF_UNIX socket named by
`$NOTIFY_SOCKET` (a path, or an abstract socket when it starts with `@`). Outside systemd the
variable is unset and every function here does nothing.

API, for the code that wires the controller::

    from appliance import sdnotify

    pings = asyncio.create_task(sdnotify.watchdog())  # returns at once if no watchdog is set
    ...                                               # bind listeners, start AMI
    sdnotify.ready()                                  # READY=1
    ...                                               # serve until SIGTERM
    sdnotify.stopping()                               # STOPPING=1, first thing on shutdown
    pings.cancel()

- `notify(message: str) -> bool`: send one message (e.g. `"STATUS=AMI reconnecting"`); False
  when `$NOTIFY_SOCKET` is unset or the message could not be sent. Never raises, never blocks.
- `ready() -> bool`, `stopping() -> bool`: `READY=1` and `STOPPING=1`.
- `watchdog_interval() -> float | None`: seconds between pings, half of `$WATCHDOG_USEC`;
  None when systemd asks for no pings from this process (no socket, no or bad
  `$WATCHDOG_USEC`, or `$WATCHDOG_PID` naming another process).
- `async watchdog(interval: float | None = None) -> None`: sends `WATCHDOG=1` now and then
  every `interval` seconds (default `watchdog_interval()`) until cancelled; returns at once
  when there is no interval or no `$NOTIFY_SOCKET`.
"""

from __future__ import annotations

import asyncio
import os
import socket


def _address() -> str | None:
    """The socket systemd listens on, in the form socket.sendto takes, or None outside systemd."""
    name = os.environ.get("NOTIFY_SOCKET", "")
    if name.startswith("@"):
        return "\0" + name[1:]  # abstract namespace
    if name.startswith("/"):
        return name
    return None  # unset, or a kind of socket (vsock:...) the controller never runs under


def notify(message: str) -> bool:
    """Send one sd_notify message. Non-blocking and never raising: telling systemd must never
    stall the event loop or take the controller down; a lost ping is systemd's to act on."""
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True


def ready() -> bool:
    """READY=1: startup is complete; units ordered after the controller may start."""
    return notify("READY=1")


def stopping() -> bool:
    """STOPPING=1: the shutdown is deliberate; systemd stops expecting pings and gives the
    controller the unit's stop timeout to finish."""
    return notify("STOPPING=1")


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd set for this process, so that one late ping is not
    fatal; None when no pings are expected from this process."""
    if _address() is None:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is for another process (e.g. our parent)
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


async def watchdog(interval: float | None = None) -> None:
    """Ping systemd every `interval` seconds from the running event loop, until cancelled.
    Sleeping on the loop (not in a thread) is the point: a blocked loop sends nothing."""
    interval = watchdog_interval() if interval is None else interval
    if interval is None or interval <= 0 or _address() is None:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)

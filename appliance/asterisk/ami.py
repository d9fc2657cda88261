"""The AMI client: panoramisk behind an adapter that reconnects with backoff and says so.

panoramisk 1.4 reconnects at a fixed interval, has no way to learn of a refused login and lets
a callback's exception break its parser; this module owns those concerns instead. Before the
secret is sent, the listener at the other end must belong to Asterisk's user: any local user
can listen on the AMI port while Asterisk is down, and must not learn the secret.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from appliance.asterisk.peercred import peer_uid

log = logging.getLogger(__name__)

EventHandler = Callable[[Mapping[str, str]], None]


class AmiError(Exception):
    """An AMI action that failed or could not be sent."""


class AmiAuthError(AmiError):
    """Asterisk refused the AMI username or secret."""


# headers panoramisk's protocol looks a message up by: repeated (it makes a list of them),
# they break its parser and with it the connection
ROUTING_HEADERS = ("Event", "Response", "ActionID", "CommandID")
ACTION_TIMEOUT = 5.0  # seconds an action's response may take before it counts as failed


class _Protocol(AMIProtocol):
    """panoramisk's protocol, dropping the messages it cannot route instead of failing."""

    def handle_message(self, message: Message) -> None:
        if any(isinstance(message.get(name), list) for name in ROUTING_HEADERS):
            log.warning("AMI message with a repeated %s header skipped", "/".join(ROUTING_HEADERS))
            return
        super().handle_message(message)


class _Manager(Manager):
    """panoramisk's Manager with its reconnect logic replaced by the owner's."""

    owner: AmiClient
    defaults: ClassVar[dict[str, Any]] = {**Manager.defaults, "protocol_factory": _Protocol}

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.exception() is not None:
            self.owner._connect_failed(f.exception())
            return
        transport, protocol = f.result()
        if not self.owner._trusted(transport.get_extra_info("socket")):
            protocol.closed = True  # nothing was sent: drop it quietly and try again later
            transport.close()
            self.owner._schedule_retry()
            return
        super().connection_made(f)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = bool(super().login(future))
        self.owner._logged_in(ok, future.result())
        return ok

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        self.authenticated = False
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        self.owner._lost()


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        allowed_uids: Collection[int],
        max_backoff: float = 1.0,
        uid_of: Callable[[socket.socket], int | None] = peer_uid,
    ) -> None:
        self.host, self.port = host, port
        self.allowed_uids = frozenset(allowed_uids)
        self.uid_of = uid_of
        self.max_backoff = max_backoff
        self.logins = 0  # successful logins since start: 1 at first, +1 per reconnect
        self.impostors = 0  # listeners on the AMI port that were not Asterisk
        self.backoff = 0.5
        self.connected = asyncio.Event()
        self.auth_failed = asyncio.Event()
        self.handlers: list[EventHandler] = []
        self.on_login: list[Callable[[], object]] = []
        self._closing = False
        self._retry: asyncio.TimerHandle | None = None
        self._attempts = 0
        self.manager = _Manager(
            host=host,
            port=port,
            username=username,
            secret=secret,
            ping_delay=5,
            ping_interval=5,
            loop=asyncio.get_running_loop(),
            log=logging.getLogger("appliance.asterisk.ami.wire"),
        )
        self.manager.owner = self
        self.manager.register_event("*", self._dispatch)

    def start(self) -> None:
        self._closing = False
        self.manager.connect()

    async def close(self) -> None:
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
        self.manager.close()
        self.connected.clear()

    @property
    def is_connected(self) -> bool:
        return self.connected.is_set()

    async def action(self, action: dict[str, str]) -> Any:
        """Send one action and return its response; every failure, ACTION_TIMEOUT included,
        raises AmiError."""
        if not self.is_connected:
            raise AmiError(f"AMI not connected; cannot send {action.get('Action')}")
        if any("\r" in str(v) or "\n" in str(v) for v in action.values()):
            raise AmiError(f"AMI action {action.get('Action')}: a value contains a line break")
        # panoramisk 1.4 reads the action's Async header when a response ends with
        # "successfully queued" (PlayDTMF's does) and drops the connection if it is missing.
        action = {"Async": "false", **action}
        try:
            async with asyncio.timeout(ACTION_TIMEOUT):
                response = await self.manager.send_action(action)
        except TimeoutError:
            raise AmiError(f"AMI action {action.get('Action')} timed out") from None
        first = response[0] if isinstance(response, list) else response
        if first is not None and first.get("Response") == "Error":
            raise AmiError(f"AMI action {action.get('Action')}: {first.get('Message')}")
        return response

    async def active_linkedids(self) -> set[str]:
        """The linkedids of the calls Asterisk has in progress (raises AmiError)."""
        response = await self.action({"Action": "CoreShowChannels"})
        messages = response if isinstance(response, list) else [response]
        return {m.get("Linkedid") for m in messages if m.get("Linkedid")}

    def _dispatch(self, _manager: Manager, event: Mapping[str, str]) -> None:
        for handler in self.handlers:
            try:
                handler(event)
            except Exception:
                log.exception("AMI event %s could not be handled; skipped", event.get("Event"))

    def _connect_failed(self, exc: BaseException | None) -> None:
        self._attempts += 1
        if self._attempts == 1 or self._attempts % 10 == 0:
            log.warning(
                "AMI %s:%s unreachable (%s); retrying in %.1fs",
                self.host,
                self.port,
                exc,
                self.backoff,
            )
        self._schedule_retry()

    def _trusted(self, sock: socket.socket) -> bool:
        uid = self.uid_of(sock)
        if uid in self.allowed_uids:
            return True
        self.impostors += 1
        log.error(
            "AMI %s:%s is held by uid %s, not Asterisk: the secret is not sent",
            self.host,
            self.port,
            uid,
        )
        return False

    def _logged_in(self, ok: bool, response: Mapping[str, str]) -> None:
        if ok:
            self.logins += 1
            log.info("AMI connected to %s:%s (login %d)", self.host, self.port, self.logins)
            self._attempts = 0
            self.backoff = 0.5
            self.connected.set()
            for callback in self.on_login:
                callback()
        else:
            log.error(
                "AMI login refused for user %r: %s (check ami.username and ami.secret)",
                self.manager.config["username"],
                response.get("Message"),
            )
            self.auth_failed.set()

    def _lost(self) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if self._closing or self.auth_failed.is_set():
            return
        if was_connected:
            log.warning("AMI connection lost; reconnecting")
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._closing:
            return
        loop = asyncio.get_running_loop()
        self._retry = loop.call_later(self.backoff, self.manager.connect)
        self.backoff = min(self.backoff * 2, self.max_backoff)

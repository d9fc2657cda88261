"""Routes, trunks and phones into Asterisk: read them from the database, write the routes file
and the PJSIP file, and have Asterisk reload what changed (its dialplan, PJSIP). Whoever
changes them (admin UI, CLI, another appliance sharing the database), Asterisk has them within
one refresh interval; calls in progress are not touched by either reload. Attached to a site's
own Asterisk (no `path`), only the routing table is kept, for the FastAGI scripts: nothing is
written, nothing reloaded."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path

from appliance.asterisk.ami import AmiClient, AmiError
from appliance.calls.dialplan import Compiled, Settings, compile_routes
from appliance.calls.model import RoutingTable
from appliance.calls.store import CallStore

log = logging.getLogger(__name__)


def write_routes(path: Path, text: str) -> bool:
    """Replace the routes file atomically (0640; its directory's setgid bit gives it
    Asterisk's group); return False when it already holds `text`."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, 0o640)
    os.replace(temporary, path)
    return True


class DialplanPublisher:
    def __init__(
        self,
        store: CallStore,
        path: Path | None,
        settings: Settings,
        ami: AmiClient,
        interval: float = 5.0,
        pjsip: tuple[Path, Callable[[], str]] | None = None,
        claims: Callable[[RoutingTable], frozenset[int]] | None = None,
    ) -> None:
        """`path`: the routes file (None: Asterisk's dialplan is the site's); `pjsip`: where
        the trunks and phones file goes, and what makes its text; `claims`: the routes plugins
        decide (blocking), compiled as if marked dynamic."""
        self.claims = claims
        self.store = store
        self.path = path
        self.settings = settings
        self.ami = ami
        self.interval = interval
        self.pjsip = pjsip
        self.table = RoutingTable()
        self.problems: tuple[str, ...] = ()
        self.unwritable: str | None = None  # why a file could not be written
        self.pending: set[str] = {"pbx_config", "res_pjsip.so"}  # modules to reload
        self.reloads = 0  # dialplan reloads Asterisk confirmed since start
        self.pjsip_reloads = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("routing refresh failed; Asterisk keeps the routes it has")

    async def refresh(self) -> None:
        table = await asyncio.to_thread(self.store.routing_table)
        if self.claims is not None:
            claimed = await asyncio.to_thread(self.claims, table)
            table = dataclasses.replace(table, claimed=claimed)
        self.table = table
        if self.path is None:
            return
        compiled = compile_routes(self.table, self.settings)
        self._report(compiled)
        files = [(self.path, compiled.text, "pbx_config")]
        if self.pjsip is not None:
            path, make = self.pjsip
            files.append((path, await asyncio.to_thread(make), "res_pjsip.so"))
        for path, text, module in files:
            try:
                changed = await asyncio.to_thread(write_routes, path, text)
            except OSError as exc:
                if self.unwritable is None:
                    log.error(
                        "%s cannot be written (%s); run 'appliance config render'",
                        path,
                        exc.strerror,
                    )
                self.unwritable = exc.strerror or str(exc)
                return
            if changed:
                log.info("%s rewritten from the database", path)
                self.pending.add(module)
        self.unwritable = None
        await self.reload()

    @property
    def healthy(self) -> bool:
        """Every route compiled as asked and Asterisk has the file."""
        return not self.problems and self.unwritable is None

    async def on_login(self) -> None:
        """Asterisk may have (re)started since: make sure it runs the current files."""
        self.pending = {"pbx_config", "res_pjsip.so"} if self.pjsip else {"pbx_config"}
        await self.refresh()

    async def reload(self) -> None:
        if not self.ami.is_connected or self.path is None:
            return
        if self.pjsip is None:
            self.pending.discard("res_pjsip.so")
        for module in sorted(self.pending):
            try:
                await self.ami.action({"Action": "Reload", "Module": module})
            except AmiError as exc:
                log.warning("%s reload failed (%s); retrying at the next refresh", module, exc)
                continue
            self.pending.discard(module)
            if module == "pbx_config":
                self.reloads += 1
            else:
                self.pjsip_reloads += 1

    def _report(self, compiled: Compiled) -> None:
        if compiled.problems != self.problems:
            for problem in compiled.problems:
                log.error("routing: %s", problem)
        self.problems = compiled.problems

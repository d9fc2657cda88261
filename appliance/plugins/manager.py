"""Loads plugins and calls their hooks in isolation: each implementation runs in a worker
thread of its own (async ones as tasks on the controller's loop) within the plugin timeout; an
exception or a timeout is logged with the plugin's name and counted, and the call and the
other plugins go on. A plugin with MAX_STUCK calls still running after their callers gave up
on them is skipped, so a stuck plugin holds a few threads, never more, while a quick one keeps
up with a burst of calls (at most MAX_RUNNING at once). Built-in plugins are the appliance's
own code: they run inline."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import inspect
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from appliance.plugins import loading, spec

log = logging.getLogger(__name__)

MAX_STUCK = 4  # calls of one plugin still running after the timeout: then it is skipped
MAX_RUNNING = 64  # calls one plugin may have running at once, stuck or not
BUILT_IN = "built-in"
Result = tuple[str, Any]  # (plugin name, what it returned)


@dataclass
class PluginInfo:
    name: str
    origin: str
    hooks: tuple[str, ...] = ()
    state: str = "loaded"  # or "refused"
    reason: str = ""
    stats: Counter[str] = field(default_factory=Counter)  # calls, failures, timeouts, skipped

    def view(self) -> dict[str, Any]:
        keys = ("calls", "failures", "timeouts", "skipped", "invalid")
        return {
            "name": self.name,
            "origin": self.origin,
            "hooks": list(self.hooks),
            "state": self.state,
            "reason": self.reason,
        } | {k: self.stats[k] for k in keys}


class PluginManager:
    def __init__(self, timeout: float = 0.5) -> None:
        self.timeout = timeout
        self.pm = pluggy.PluginManager(spec.PROJECT)
        self.pm.add_hookspecs(spec)
        self.plugins: dict[str, PluginInfo] = {}
        self.inflight: dict[str, set[_Running]] = {}  # per plugin: its calls still running
        self.threads: dict[concurrent.futures.Future[Any], _Running] = {}
        self.lock = threading.RLock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.running: set[asyncio.Future[Any]] = set()  # async calls not finished yet

    # loading ------------------------------------------------------------------------------
    def add_builtin(self, plugin: object, name: str) -> None:
        self._register(plugin, name, BUILT_IN)

    def load(self, directory: Path | None, installed: bool = True) -> None:
        """Installed plugins, then the drop-in directory's files (sorted by name)."""
        found: list[loading.Found | tuple[str, str, str]] = []
        if installed:
            found += list(loading.entry_points())
        if directory is not None:
            found += list(loading.dropins(directory, loading.trusted_owners()))
        for item in found:
            if isinstance(item, tuple):
                self.refuse(*item)
            else:
                self._load_one(item)

    def _load_one(self, item: loading.Found) -> None:
        if item.name in self.plugins:
            self.refuse(item.name, item.origin, "its name is taken by another plugin")
            return
        try:
            plugin = item.load()  # type: ignore[operator]
        except loading.Refused as exc:
            self.refuse(item.name, item.origin, str(exc))
            return
        except BaseException as exc:  # a broken plugin: refused, nothing else
            self.refuse(item.name, item.origin, f"failed to load: {_one_line(exc)}")
            return
        self._register(plugin, item.name, item.origin)

    def _register(self, plugin: object, name: str, origin: str) -> None:
        try:
            self.pm.register(plugin, name)
            self.pm.check_pending()
        except Exception as exc:  # pluggy's validation errors (unknown hook, argument)
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            self.refuse(name, origin, f"not a valid plugin: {_one_line(exc)}")
            return
        hooks = tuple(sorted(c.name for c in self.pm.get_hookcallers(plugin) or ()))
        self.plugins[name] = PluginInfo(name, origin, hooks)
        log.info("plugin %s loaded from %s (%s)", name, origin, ", ".join(hooks) or "no hooks")

    def refuse(self, name: str, origin: str, reason: str) -> None:
        name, origin = _printable(name), _printable(origin)  # a file's name may hold a newline
        log.error("plugin %s (%s) refused: %s", name, origin, reason)
        key = name if name not in self.plugins else f"{name} ({origin})"
        self.plugins[key] = PluginInfo(name, origin, (), "refused", reason)

    # calling ------------------------------------------------------------------------------
    def implementations(self, hook: str) -> list[pluggy.HookImpl]:
        """In calling order: tryfirst first, built-in trylast last."""
        return list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))

    def implemented(self, hook: str) -> bool:
        return any(i.plugin_name not in self._builtins() for i in self.implementations(hook))

    def _builtins(self) -> set[str]:
        return {n for n, p in self.plugins.items() if p.origin == BUILT_IN}

    def call(self, hook: str, **kwargs: Any) -> list[Result]:
        """Blocking (from a worker thread, never the loop): every implementation, at once,
        within one timeout; the results of those that answered, in calling order."""
        deadline = time.monotonic() + self.timeout
        running = [(impl, self._start(impl, kwargs)) for impl in self.implementations(hook)]
        results = []
        for impl, future in running:
            if future is None:
                continue
            try:
                value = future.result(max(0.0, deadline - time.monotonic()))
            except BaseException as exc:  # counted and logged per plugin
                if isinstance(exc, concurrent.futures.TimeoutError):
                    self._give_up(future)
                self._failed(impl.plugin_name, hook, exc)
                continue
            results.append((impl.plugin_name, value))
        return results

    async def acall(self, hook: str, **kwargs: Any) -> list[Result]:
        """From the loop: the same, awaited."""
        self.loop = asyncio.get_running_loop()
        impls = self.implementations(hook)
        waits = [self._await(impl, hook, kwargs) for impl in impls]
        answers = await asyncio.gather(*waits)
        return [(i.plugin_name, a[1]) for i, a in zip(impls, answers, strict=True) if a[0]]

    async def _await(
        self, impl: pluggy.HookImpl, hook: str, kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        try:
            if inspect.iscoroutinefunction(impl.function):
                return await self._await_coroutine(impl, kwargs)
            future = self._start(impl, kwargs)
            if future is None:
                return False, None
            try:
                async with asyncio.timeout(self.timeout):
                    return True, await asyncio.wrap_future(future)
            except TimeoutError:
                self._give_up(future)
                raise
        except Exception as exc:  # a timeout, or the plugin's own error: counted and logged
            self._failed(impl.plugin_name, hook, exc)
            return False, None

    async def _await_coroutine(
        self, impl: pluggy.HookImpl, kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        """An async implementation as a task of its own, waited for until the timeout and then
        cancelled and left: one that ignores its cancellation delays nobody, and is skipped
        while MAX_STUCK of it still run past their timeout (built-in ones are the appliance's
        own)."""
        name = impl.plugin_name
        counted = name not in self._builtins()
        running = self._admit(name) if counted else None
        if counted and running is None:
            return False, None
        coroutine: Any = impl.function(**_arguments(impl, kwargs))
        task = asyncio.ensure_future(coroutine)
        if running is not None:
            task.add_done_callback(lambda _: self._release(running))
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
        finally:
            task.cancel()  # nothing when it is done; else asked to stop, and not waited for
        if not done:
            if running is not None:
                running.given_up = True
            raise TimeoutError
        return True, task.result()

    def _admit(self, name: str) -> _Running | None:
        """This call of the plugin, or None (counted as skipped) while the plugin has
        MAX_STUCK calls running that their callers gave up on, or MAX_RUNNING at all."""
        with self.lock:
            running = self.inflight.setdefault(name, set())
            stuck = sum(1 for call in running if call.given_up)
            if stuck >= MAX_STUCK or len(running) >= MAX_RUNNING:
                self._count(name, "skipped")
                log.warning("plugin %s skipped: still busy with earlier calls", name)
                return None
            call = _Running(name)
            running.add(call)
        self._count(name, "calls")
        return call

    def _release(self, call: _Running) -> None:
        with self.lock:
            self.inflight[call.plugin].discard(call)

    def _give_up(self, future: concurrent.futures.Future[Any]) -> None:
        """The caller stopped waiting for this thread's call (its timeout)."""
        with self.lock:
            call = self.threads.get(future)
            if call is not None:
                call.given_up = True

    def _start(
        self, impl: pluggy.HookImpl, kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any] | None:
        name = impl.plugin_name
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        arguments = _arguments(impl, kwargs)
        if name in self._builtins():
            self._run(name, impl.function, arguments, future)
            return future
        running = self._admit(name)
        if running is None:
            return None
        with self.lock:
            self.threads[future] = running
        function = _sync(impl.function, self.loop)
        threading.Thread(
            target=self._run, args=(name, function, arguments, future), daemon=True
        ).start()
        return future

    def _run(
        self,
        name: str,
        function: Callable[..., Any],
        arguments: dict[str, Any],
        future: concurrent.futures.Future[Any],
    ) -> None:
        try:
            if future.set_running_or_notify_cancel():  # not given up on before it started
                try:
                    future.set_result(function(**arguments))
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)
        finally:
            with self.lock:
                running = self.threads.pop(future, None)
            if running is not None:
                self._release(running)

    def _failed(self, name: str, hook: str, exc: BaseException) -> None:
        if isinstance(exc, TimeoutError | concurrent.futures.TimeoutError):
            self._count(name, "timeouts")
            log.warning("plugin %s: %s took over %.2fs; ignored", name, hook, self.timeout)
        else:
            self._count(name, "failures")
            log.error("plugin %s: %s failed: %s", name, hook, _one_line(exc))

    def invalid(self, name: str, hook: str, reason: str) -> None:
        """A plugin's answer that its checks refused (appliance/plugins/checks.py)."""
        self._count(name, "invalid")
        log.error("plugin %s: %s returned what cannot be taken: %s", name, hook, reason)

    def _count(self, name: str, what: str) -> None:
        info = self.plugins.get(name)
        if info is not None:
            with self.lock:
                info.stats[what] += 1

    # reporting ----------------------------------------------------------------------------
    def listing(self) -> list[dict[str, Any]]:
        return [p.view() for p in self.plugins.values()]

    def totals(self) -> dict[str, int]:
        """For /health: what went wrong in plugins since start."""
        sums: Counter[str] = Counter()
        for info in self.plugins.values():
            sums.update(info.stats)
        return {f"plugin_{k}": sums[k] for k in ("failures", "timeouts", "skipped", "invalid")}


def _arguments(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments the implementation names, each a copy of its own."""
    return {a: copy.deepcopy(kwargs[a]) for a in impl.argnames if a in kwargs}


def _sync(
    function: Callable[..., Any], loop: asyncio.AbstractEventLoop | None
) -> Callable[..., Any]:
    """An async implementation called from a worker thread: on the controller's loop when
    there is one, else on a loop of its own."""
    if not inspect.iscoroutinefunction(function):
        return function

    def run(**arguments: Any) -> Any:
        if loop is not None and loop.is_running():
            return asyncio.run_coroutine_threadsafe(function(**arguments), loop).result()
        return asyncio.run(function(**arguments))

    return run


@dataclass(eq=False)
class _Running:
    """One call of a plugin's hook still running; `given_up`: its caller stopped waiting."""

    plugin: str
    given_up: bool = False


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return _printable(text)[:200]


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)

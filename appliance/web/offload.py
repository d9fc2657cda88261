"""Blocking work of the web side (database, bcrypt, decryption) runs in a small thread pool of
its own, so that however busy the pages and the API are, the threads that record calls and
seal recordings are never waiting behind them."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from aiohttp import web

P = ParamSpec("P")
T = TypeVar("T")
WORKERS = 3
POOL: web.AppKey[ThreadPoolExecutor] = web.AppKey("web_pool", ThreadPoolExecutor)
EXPORTS: web.AppKey[asyncio.Semaphore] = web.AppKey("exports", asyncio.Semaphore)


async def offload(
    request: web.Request, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[POOL], functools.partial(work, *args, **kwargs))


def setup(app: web.Application) -> None:
    app[POOL] = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="web")
    app[EXPORTS] = asyncio.Semaphore(1)  # one CSV export at a time: they read whole tables

    async def close(app: web.Application) -> None:
        app[POOL].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(close)

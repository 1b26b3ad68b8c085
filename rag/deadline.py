"""Calls that must end by a deadline although the library they use has only per-read timeouts.

A server that trickles a byte a second never trips a socket timeout, and chromadb builds its
HTTP client without one. The call runs in a daemon thread; past the deadline the caller gets
TimeoutError and the abandoned thread dies with the process (a non-daemon pool thread would be
joined at exit, which is the hang this avoids).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

T = TypeVar("T")


def within(call: Callable[[], T], seconds: float, name: str = "deadline") -> T:
    """`call()`'s result or exception, or TimeoutError after `seconds`."""
    result: dict = {}

    def target():
        try:
            result["value"] = call()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = e

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def start(call: Callable[[], T], name: str) -> "Future[T]":
    """`call()` begun in a daemon thread, its outcome in the Future. Unlike a ThreadPoolExecutor's
    thread, one that hangs does not hold the process at exit."""
    future: Future = Future()

    def target():
        try:
            future.set_result(call())
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(e)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future

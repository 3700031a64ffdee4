"""``stream_in_thread``: run one generator in its own thread and hand its items to the caller.

A comparison's steering hook edits only the forward passes of the thread that registered it, so
a stream must run on one thread from start to end; Gradio advances sync generators on whatever
worker is free. This module keeps the two apart.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

__all__ = ["stream_in_thread"]

T = TypeVar("T")
_DONE, _NONE = object(), object()


def stream_in_thread(
    make_stream: Callable[[], Iterator[T]], *, min_interval: float = 0.0
) -> Iterator[T]:
    """Run ``make_stream()`` to exhaustion in one dedicated thread and yield what it yields.

    Gradio advances a sync generator on whichever worker thread is free, but a comparison's
    steering hook acts only on forward passes of the thread that registered it (other users'
    passes on the shared model must stay untouched). One thread per stream keeps them together.
    Closing this iterator (a closed browser tab, a Stop click) stops the stream at its next item
    and closes it there, which removes its hook.

    Args:
        min_interval: Pass on at most one item per this many seconds (the first and the last
            always); meant for streams that yield one growing object, where only the latest
            state matters. Sending every token of a fast model costs more than computing it.
    """
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        pending, last = _NONE, -math.inf
        try:
            stream = make_stream()
            try:
                for item in stream:
                    now = time.monotonic()
                    if now - last >= min_interval:
                        items.put(item)
                        pending, last = _NONE, now
                    else:
                        pending = item
                    if stop.is_set():
                        break
                if pending is not _NONE:
                    items.put(pending)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        except BaseException as err:  # handed to the consumer, which re-raises it
            items.put(err)
        finally:
            items.put(_DONE)

    worker = threading.Thread(target=work, name="odesteer-stream", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()

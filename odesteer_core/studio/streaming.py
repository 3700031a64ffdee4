"""``stream_in_thread``: run one generator in its own thread and hand its items to the caller.

Gradio advances sync generators on whatever worker is free; a comparison runs on one thread of
its own from start to end, and stops as soon as its consumer goes away (a closed tab, a Stop
click): the ``cancel`` event it watches is set then, and the generation ends inside the forward
pass in progress rather than after it.
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
    make_stream: Callable[[], Iterator[T]],
    *,
    min_interval: float = 0.0,
    cancel: threading.Event | None = None,
) -> Iterator[T]:
    """Run ``make_stream()`` to exhaustion in one dedicated thread and yield what it yields.

    Gradio advances a sync generator on whichever worker thread is free; one thread per stream
    keeps a comparison's forward passes, and what they hold, on one thread. Closing this
    iterator (a closed browser tab, a Stop click), or its being garbage-collected unclosed, sets
    ``cancel`` and stops the stream at its next item, then closes it there.

    Args:
        min_interval: Pass on at most one item per this many seconds (the first and the last
            always); meant for streams that yield one growing object, where only the latest
            state matters. Sending every token of a fast model costs more than computing it.
        cancel: The event the stream itself watches (e.g. ``compare(..., cancel=cancel)``, which
            checks it between the model's layers): set when the consumer goes away, so a
            stream on a large model stops within a layer, not a whole token. None: an event of
            its own, seen between items only.
    """
    items: queue.Queue = queue.Queue()
    stop = cancel if cancel is not None else threading.Event()

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

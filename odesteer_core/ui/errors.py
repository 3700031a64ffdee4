"""``user_errors``: the core's ``ValueError``/``TypeError`` (user errors) as red messages in the UI.

Anything else is a bug: Gradio shows a generic error and logs the traceback on the server, so no
server detail reaches the page.
"""

from __future__ import annotations

import functools
import inspect

import gradio as gr

__all__ = ["user_errors"]


def user_errors(fn):
    """Wrap a handler (plain or generator) so that user errors become ``gr.Error``."""

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err), print_exception=False) from err

    @functools.wraps(fn)
    def streaming(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err), print_exception=False) from err

    return streaming if inspect.isgeneratorfunction(fn) else plain

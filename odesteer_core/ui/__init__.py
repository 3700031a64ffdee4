"""The Gradio app: the page (``page.py``), its handlers (``handlers.py``), the ``/compare`` API
(``api.py``) and their wiring (``blocks.py``). ``app.py`` at the repository root launches it."""

from odesteer_core.ui.blocks import build_app, concurrency, gpu
from odesteer_core.ui.page import CSS

__all__ = ["CSS", "build_app", "concurrency", "gpu"]

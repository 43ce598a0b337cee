"""The web UI: pages for people, served by `shoal server` beside the API (control/ui).

`ui_blueprint()` is what control/app.py registers; the UI reaches data only through the API.
"""

from __future__ import annotations

from flask import Blueprint

from shoal.control.ui import actions, views
from shoal.control.ui.blueprint import bp

__all__ = ["actions", "ui_blueprint", "views"]


def ui_blueprint() -> Blueprint:
    return bp

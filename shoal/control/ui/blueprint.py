"""The web UI's Flask blueprint: templates, static assets, filters, what every page knows.

`create_app` (control/app.py) registers `ui_blueprint()` at `/`, beside the API at `/api/v1`.
Every asset is served from this package: clusters may be offline, so no CDN.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from shoal.control.ui import session as ui_session
from shoal.control.ui.api import ApiRefused

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")

NAV = [
    ("ui.overview", "Overview", "viewer"),
    ("ui.nodes", "Nodes", "viewer"),
    ("ui.services", "Services", "viewer"),
    ("ui.deploy", "Deploy", "operator"),
    ("ui.secrets", "Secrets", "admin"),
    ("ui.tokens", "Tokens", "admin"),
    ("ui.policy", "Policy", "admin"),
    ("ui.events", "Events", "viewer"),
]


@bp.app_template_filter("clock")
def clock(value: Any) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(float(value)))
    except (TypeError, ValueError):
        return str(value or "")


@bp.app_template_filter("ago")
def ago(value: Any) -> str:
    try:
        seconds = max(0.0, time.time() - float(value))
    except (TypeError, ValueError):
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


@bp.app_template_filter("bytes")
def human_bytes(value: Any) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "0"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@bp.context_processor
def page_context() -> dict[str, Any]:
    user = ui_session.current_user()
    nav = [(endpoint, label) for endpoint, label, role in NAV if ui_session.has_role(role)]
    return {
        "user": user,
        "nav": nav,
        "csrf_token": ui_session.csrf_token(),
        "can_operate": ui_session.has_role("operator"),
        "can_admin": ui_session.has_role("admin"),
    }


@bp.before_request
def protect_forms() -> None:
    ui_session.check_csrf()


@bp.errorhandler(ApiRefused)
def api_refused(refused: ApiRefused) -> Response:
    flash(str(refused), "error")
    return redirect(request.referrer or url_for("ui.overview"))


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    body = f"{error.code} {error.name}: {error.description}"
    return Response(body, status=error.code or 500, mimetype="text/plain")

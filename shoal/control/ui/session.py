"""Sign-in, sign-out and CSRF protection for the web UI (control/ui).

A person signs in with an API token; it is kept in Flask's signed session cookie (Secure,
HttpOnly, SameSite=Lax) and checked against the API on sign-in. Every form carries a per-session
CSRF token that every POST must echo.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, redirect, request, session, url_for
from werkzeug.wrappers import Response

from shoal.control.ui.api import Api, ApiRefused

F = TypeVar("F", bound=Callable[..., Any])
ROLES = ("viewer", "operator", "admin")


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuses a POST whose form does not carry this session's CSRF token."""
    if request.method != "POST":
        return
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent.encode(), csrf_token().encode()):
        abort(400, description="the form is stale or forged (CSRF check failed); reload the page")


def sign_in(token: str) -> dict[str, Any]:
    """Checks the token against the API and starts a session; raises ApiRefused when it is bad."""
    with Api(token) as api:
        me = api.get("/whoami")
    session.clear()
    session["token"] = token
    session["user"] = {"name": me.get("name", ""), "role": me.get("role", "viewer")}
    session.permanent = True
    return cast(dict[str, Any], session["user"])


def sign_out() -> None:
    session.clear()


def current_user() -> dict[str, Any] | None:
    user = session.get("user")
    return user if isinstance(user, dict) and "token" in session else None


def api() -> Api:
    return Api(str(session.get("token", "")))


def has_role(role: str) -> bool:
    user = current_user()
    if user is None:
        return False
    return ROLES.index(str(user.get("role", "viewer"))) >= ROLES.index(role)


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if request.headers.get("X-Fragment"):
                return Response("signed out", status=401)
            return redirect(url_for("ui.login", next=request.path))
        try:
            return view(*args, **kwargs)
        except ApiRefused as refused:
            if refused.status == 401:
                sign_out()
                return redirect(url_for("ui.login"))
            raise

    return cast(F, wrapper)

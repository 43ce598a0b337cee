"""The web UI's forms: sign-in and every mutation (control/ui, write side).

Each handler turns a form into one API call; the API decides whether the person's role allows
it, so a viewer who forges a form is refused by the server, not just by a hidden button.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import urlencode

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from shoal.control.ui import session as ui_session
from shoal.control.ui.api import ApiRefused
from shoal.control.ui.blueprint import bp
from shoal.control.ui.session import api, login_required

LINE_IN_ERROR = re.compile(r"\(line (\d+)\)")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "GET":
        return render_template("login.html")
    try:
        ui_session.sign_in(request.form.get("token", "").strip())
    except ApiRefused as refused:
        flash(f"sign-in refused: {refused}", "error")
        return redirect(url_for("ui.login"))
    target = request.args.get("next", "")
    local = target.startswith("/") and not target.startswith("//")
    return redirect(target if local else url_for("ui.overview"))


@bp.post("/logout")
def logout() -> Response:
    ui_session.sign_out()
    flash("Signed out.", "info")
    return redirect(url_for("ui.login"))


@bp.post("/nodes/<name>/<any(drain, activate):action>")
@login_required
def node_action(name: str, action: str) -> Response:
    with api() as client:
        client.post(f"/nodes/{name}/{action}")
    flash(f"Node {name}: {action} requested.", "info")
    return redirect(url_for("ui.node", name=name))


@bp.post("/nodes/<name>/label")
@login_required
def node_label(name: str) -> Response:
    text = request.form.get("label", "").strip()
    key, sep, value = text.partition("=")
    labels: dict[str, Any] = {key: value} if sep else {key.rstrip("-"): None}
    with api() as client:
        client.post(f"/nodes/{name}/labels", {"labels": labels})
    flash(f"Node {name}: label {text} applied.", "info")
    return redirect(url_for("ui.node", name=name))


@bp.post("/services/<name>/scale")
@login_required
def service_scale(name: str) -> Response:
    replicas = request.form.get("replicas", "")
    if not replicas.isdigit():
        flash("replicas: a whole number is needed", "error")
        return redirect(url_for("ui.service", name=name))
    with api() as client:
        client.post(f"/services/{name}/scale", {"replicas": int(replicas)})
    flash(f"Scaling {name} to {replicas}.", "info")
    return redirect(url_for("ui.service", name=name))


@bp.post("/services/<name>/<any(restart, rollback, remove):action>")
@login_required
def service_action(name: str, action: str) -> Response:
    with api() as client:
        if action == "remove":
            client.delete(f"/services/{name}")
        else:
            client.post(f"/services/{name}/{action}")
    flash(f"Service {name}: {action} requested.", "info")
    return redirect(url_for("ui.services" if action == "remove" else "ui.service", name=name))


@bp.route("/deploy", methods=["GET", "POST"])
@login_required
def deploy() -> str:
    if request.method == "GET":
        return render_template("deploy.html")
    compose = _compose_text()
    project = request.form.get("project", "").strip()  # "": the file's name:, never a shared default
    dry_run = request.form.get("action") != "deploy"
    try:
        with api() as client:
            result = client.post("/deploy", {"compose": compose, "project": project, "dry_run": dry_run})
    except ApiRefused as refused:
        return _deploy_error(compose, project, str(refused))
    # qualified: another project may have a service of the same name
    names = [f"{result.get('project', project)}.{s['name']}" for s in result.get("services", [])]
    if dry_run:
        return render_template("deploy.html", compose=compose, project=project, checked=names)
    return render_template(
        "deploy.html", compose=compose, project=project, deployed=names, progress=_progress(names)
    )


def _compose_text() -> str:
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return bytes(upload.read()).decode("utf-8", errors="replace")
    return str(request.form.get("compose", ""))


def _deploy_error(compose: str, project: str, error: str) -> str:
    match = LINE_IN_ERROR.search(error)
    return render_template(
        "deploy.html",
        compose=compose,
        project=project,
        error=error,
        error_line=int(match.group(1)) if match else 0,
        lines=compose.splitlines(),
    )


def _progress(names: list[str]) -> list[dict[str, Any]]:
    with api() as client:
        return [client.get(f"/services/{name}") for name in names]


@bp.route("/secrets", methods=["GET", "POST"])
@login_required
def secrets() -> str | Response:
    with api() as client:
        if request.method == "POST":
            value = request.form.get("value", "").encode()
            name = request.form.get("name", "").strip()
            project = request.form.get("project", "").strip()
            body = {"name": name, "value_b64": base64.b64encode(value).decode(), "project": project}
            client.post("/secrets", body)
            flash(f"Secret {name} created{f' in project {project}' if project else ''}.", "info")
            return redirect(url_for("ui.secrets"))
        return render_template("secrets.html", secrets=client.get("/secrets"))


@bp.post("/secrets/<name>/delete")
@login_required
def secret_delete(name: str) -> Response:
    project = request.form.get("project", "")
    with api() as client:
        client.delete(f"/secrets/{name}?{urlencode({'project': project})}")
    flash(f"Secret {name} deleted.", "info")
    return redirect(url_for("ui.secrets"))


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> str:
    with api() as client:
        new_token = None
        if request.method == "POST":
            body = {"role": request.form.get("role", "viewer"), "name": request.form.get("name", "")}
            new_token = client.post("/tokens", body)
        return render_template("tokens.html", tokens=client.get("/tokens"), new_token=new_token)


@bp.post("/tokens/<token_id>/delete")
@login_required
def token_delete(token_id: str) -> Response:
    with api() as client:
        client.delete(f"/tokens/{token_id}")
    flash(f"Token {token_id} revoked.", "info")
    return redirect(url_for("ui.tokens"))

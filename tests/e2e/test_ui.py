"""The web UI in headless Chromium (Playwright) against the sandbox's real server and agents.

Walks what a person does: sign in, deploy through the form (a bad file first: the error is shown
beside its line), watch replicas come up, scale, see the event, roll back, sign out; and checks
that a viewer is offered no mutating control and is refused by the server if they forge one.
Screenshots of each main page land in test-artifacts/ui/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import Sandbox

playwright_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVICE = "uiweb"


def _compose(registry: str, env: str) -> str:
    return (
        "services:\n"
        f"  {SERVICE}:\n"
        f"    image: {registry}/example/hello:latest\n"
        "    environment:\n"
        f'      GREETING: "{env}"\n'
        "    deploy:\n"
        "      replicas: 2\n"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _token(cluster: Sandbox, role: str) -> str:
    return str(cluster.shoal_json("token", "create", "--role", role, "--name", f"ui-{role}")["token"])


def _page(browser: object, cluster: Sandbox):  # type: ignore[no-untyped-def]
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    context.set_default_timeout(20_000)
    return context.new_page()


def _sign_in(page, cluster: Sandbox, token: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{cluster.status['server']}/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_operator_deploys_scales_rolls_back_and_signs_out(cluster: Sandbox, browser: object) -> None:
    page = _page(browser, cluster)
    _sign_in(page, cluster, _token(cluster, "admin"))
    assert page.get_by_role("heading", name="Overview").is_visible()
    _shot(page, "overview")

    page.get_by_role("link", name="Deploy").click()
    assert page.get_by_label("Project").input_value() == ""  # no shared default project
    page.get_by_label("Compose file", exact=True).fill(_compose(cluster.status["registry"], "one"))
    page.get_by_role("button", name="Check").click()
    assert "no project name" in page.locator(".flash.error").inner_text()  # nor name: in the file
    page.get_by_label("Project").fill("uitest")
    page.get_by_label("Compose file", exact=True).fill(
        _compose(cluster.status["registry"], "one").replace("replicas", "replicaz")
    )
    page.get_by_role("button", name="Check").click()
    problem = page.locator(".code .msg")
    assert "replicaz" in problem.inner_text()
    assert page.locator(".code .err .ln").inner_text().strip() == "7"
    _shot(page, "deploy-error")

    page.get_by_label("Compose file", exact=True).fill(_compose(cluster.status["registry"], "one"))
    page.get_by_role("button", name="Deploy", exact=True).click()
    page.get_by_role("link", name=SERVICE).first.click()
    try:
        page.locator(".cards .n", has_text="2/2").wait_for(timeout=90_000)
    finally:
        _shot(page, "service-rollout")
    _shot(page, "service")

    page.get_by_label("Replicas").fill("3")
    page.get_by_role("button", name="Scale").click()
    page.locator(".cards .n", has_text="3/3").wait_for(timeout=90_000)

    page.get_by_role("link", name="Events").click()
    page.locator("ul.events li", has_text=SERVICE).first.wait_for()
    _shot(page, "events")

    page.get_by_role("link", name="Deploy").click()
    assert page.get_by_label("Project").input_value() == ""  # no shared default project
    page.get_by_label("Project").fill("uitest")
    page.get_by_label("Compose file", exact=True).fill(_compose(cluster.status["registry"], "two"))
    page.get_by_role("button", name="Deploy", exact=True).click()
    page.goto(f"{cluster.status['server']}/services/{SERVICE}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back").click()
    page.locator(".flash", has_text="rollback requested").wait_for()
    service = cluster.shoal_json("service", "inspect", SERVICE)
    assert "GREETING: two → one" in service["revisions"][-1]["change"] or service["revision"] == 1

    for name, link in (("nodes", "Nodes"), ("secrets", "Secrets"), ("tokens", "Tokens")):
        page.get_by_role("link", name=link).click()
        _shot(page, name)

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API token").wait_for()
    page.goto(f"{cluster.status['server']}/services")
    assert "/login" in page.url
    cluster.shoal("service", "rm", SERVICE)


def test_viewer_sees_no_mutating_control_and_is_refused(cluster: Sandbox, browser: object) -> None:
    page = _page(browser, cluster)
    _sign_in(page, cluster, _token(cluster, "viewer"))
    nav = page.get_by_role("navigation", name="Main").inner_text()
    assert "Deploy" not in nav and "Secrets" not in nav and "Tokens" not in nav
    for path in ("/", "/nodes", "/services"):
        page.goto(f"{cluster.status['server']}{path}")
        assert page.locator("main form").count() == 0, f"{path} offers a form to a viewer"
    _shot(page, "viewer-overview")
    csrf = page.locator("header input[name=csrf_token]").input_value()
    refused = page.request.post(
        f"{cluster.status['server']}/services/{SERVICE}-none/scale",
        form={"csrf_token": csrf, "replicas": "5"},
    )
    assert "this needs the operator role" in refused.text()
    stale = page.request.post(
        f"{cluster.status['server']}/services/{SERVICE}-none/scale", form={"replicas": "5"}
    )
    assert stale.status == 400 and "CSRF" in stale.text()
    forged = page.request.post(
        f"{cluster.status['server']}/api/v1/services/anything/scale",
        data=json.dumps({"replicas": 5}),
        headers={"Content-Type": "application/json"},
    )
    assert forged.status == 401

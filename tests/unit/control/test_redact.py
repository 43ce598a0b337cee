"""What a viewer sees of `service inspect` (control/redact): environment names, never values."""

from __future__ import annotations

from shoal.control.redact import for_viewer, redacted_change, redacted_env


def test_environment_maps_and_lists_keep_their_names_only() -> None:
    assert redacted_env({"PW": "s3cret", "EMPTY": None}) == {"PW": "(redacted)", "EMPTY": None}
    assert redacted_env(["PW=s3cret", "BARE"]) == ["PW=(redacted)", "BARE"]


def test_legacy_change_lines_lose_their_env_values() -> None:
    text = "environment.PW: old-s3cret → new; s3cret; image: a:1 → a:2; environment.X: (none) → y"
    assert redacted_change(text) == "environment.PW: (redacted); image: a:1 → a:2; environment.X: (redacted)"
    assert redacted_change("created") == "created"


def test_for_viewer_redacts_the_spec_the_template_and_the_revisions() -> None:
    view = {
        "name": "app",
        "spec": {"image": "a:1", "environment": {"PW": "s3cret"}},
        "revisions": [{"revision": 1, "change": "environment.PW: (none) → s3cret"}],
    }
    shown = for_viewer(view)
    assert "s3cret" not in repr(shown) and shown["spec"]["environment"] == {"PW": "(redacted)"}
    assert view["spec"]["environment"] == {"PW": "s3cret"}  # the original is left alone
    legacy = for_viewer({"spec": {"template": {"image": "a", "env": {"PW": "s3cret"}}}})
    assert legacy["spec"]["template"]["env"] == {"PW": "(redacted)"}

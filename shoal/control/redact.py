"""What a viewer token may not see of a service: its environment values.

Applied by the services API (and so the web UI, which reads through it) to `service inspect`
for viewer tokens: the variables' names stay, their values become "(redacted)", in the spec and
in each revision's change text (stored revisions from before env values were left out of it
included them). Operators and admins, who may deploy, see the file as written. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from shoal.model.specs import REDACTED

# one change line is `environment.NAME: OLD → NEW`; the lines of a revision are joined with "; "
_ENV_CHANGE = re.compile(r"(environment\.[^:;]*): .*?(?=; [A-Za-z_][\w.]*: |$)")


def redacted_env(env: Any) -> Any:
    """An environment (map or `KEY=VALUE` list) with its values replaced."""
    if isinstance(env, dict):
        return {key: REDACTED if value is not None else None for key, value in env.items()}
    if isinstance(env, list):
        return [f"{str(item).split('=', 1)[0]}={REDACTED}" if "=" in str(item) else item for item in env]
    return env


def redacted_change(text: str) -> str:
    """A revision's change text with every environment value replaced."""
    return _ENV_CHANGE.sub(lambda m: f"{m.group(1)}: {REDACTED}", text)


def for_viewer(view: dict[str, Any]) -> dict[str, Any]:
    """A `service inspect` answer as a viewer may see it."""
    spec = dict(view.get("spec") or {})
    if "environment" in spec:
        spec["environment"] = redacted_env(spec["environment"])
    if isinstance(spec.get("template"), dict) and "env" in spec["template"]:
        spec["template"] = {**spec["template"], "env": redacted_env(spec["template"]["env"])}
    revisions = [
        {**r, "change": redacted_change(str(r.get("change", "")))} for r in view.get("revisions", [])
    ]
    return {**view, "spec": spec, "revisions": revisions}

"""A view whose transaction PostgreSQL aborted (deadlock) runs again; one that keeps failing is a 503."""

from __future__ import annotations

from flask import jsonify

from shoal.control.api.common import register_errors
from shoal.control.app import BUSY_ATTEMPTS, ShoalFlask
from shoal.control.store.db import DatabaseBusy


def app_failing(times: int) -> tuple[ShoalFlask, list[int]]:
    app, calls = ShoalFlask("t"), []
    register_errors(app)

    @app.post("/x")
    def view():  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= times:
            raise DatabaseBusy("database busy, retry: deadlock detected")
        return jsonify(ok=True)

    return app, calls


def test_a_deadlocked_view_is_run_again() -> None:
    app, calls = app_failing(BUSY_ATTEMPTS - 1)
    response = app.test_client().post("/x")
    assert response.status_code == 200 and len(calls) == BUSY_ATTEMPTS


def test_a_view_busy_every_time_answers_503_with_the_reason() -> None:
    app, calls = app_failing(100)
    response = app.test_client().post("/x")
    assert response.status_code == 503 and len(calls) == BUSY_ATTEMPTS
    assert response.get_json() == {"error": "database busy, retry: deadlock detected"}

"""sys.runc: parsers of runc's captured output, and the argument lists."""

from __future__ import annotations

import json
from pathlib import Path

from shoal.agent.sys import runc

DATA = Path(__file__).parent / "data"


def test_error_line() -> None:
    assert runc.error_line(DATA.joinpath("state_missing.stderr").read_text()) == "container does not exist"
    assert runc.error_line("plain failure\n") == "plain failure"
    assert runc.error_line("") == "runc failed"


def test_args_carry_root() -> None:
    r = runc.Runc("/usr/sbin/runc", Path("/run/shc/runc"))
    assert r.args("kill", "c1", "TERM") == ["/usr/sbin/runc", "--root", "/run/shc/runc", "kill", "c1", "TERM"]


def _state_file() -> dict[str, object]:
    return json.loads(DATA.joinpath("statefile_running.json").read_text())


def test_parse_state_file_as_runc_list_tells_it() -> None:
    stat = DATA.joinpath("proc_stat_running.txt").read_text()  # the init process of that container
    running = runc.parse_state_file(_state_file(), stat, exec_fifo=False)
    assert (running.id, running.pid, running.status, running.bundle) == (
        "probe2",
        2149,
        "running",
        "/tmp/lprof/rb",
    )
    assert abs(running.created - 1795690793.990584361) < 1e-6
    assert runc.parse_state_file(_state_file(), stat, exec_fifo=True).status == "created"


def test_a_gone_reused_or_zombie_init_is_stopped() -> None:
    stat = DATA.joinpath("proc_stat_running.txt").read_text()
    reused = stat.replace(" 5197732 ", " 5197999 ")  # same pid, another start time
    zombie = stat.replace(") S ", ") Z ")
    for proc_stat in (None, reused, zombie):
        stopped = runc.parse_state_file(_state_file(), proc_stat, exec_fifo=False)
        assert (stopped.status, stopped.pid) == ("stopped", 0)

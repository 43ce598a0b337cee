"""runtime.logs: conmon's k8s-file records, rotation, the reader."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from shoal.agent.runtime import logs

DATA = Path(__file__).parent / "data"


def record(t: float, stream: str, text: str, tag: str = "F") -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + f".{int((t % 1) * 1e9):09d}+00:00"
    return f"{stamp} {stream} {tag} {text}\n"


def test_parse_captured_conmon_log() -> None:
    lines = list(logs.parse_records(iter(DATA.joinpath("conmon_k8s.log").read_text().splitlines(True))))
    assert [(ln.stream, ln.text) for ln in lines] == [
        ("stdout", "hi"),
        ("stderr", "oops"),
        ("stdout", "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)"),
        ("stdout", "partial"),
    ]
    assert lines[0].stamp == "2026-11-25T21:05:32.864706657+00:00"
    assert abs(lines[0].time - 1795640732.864706657) < 1e-6
    assert lines[0].render() == "2026-11-25T21:05:32.864706657+00:00 stdout hi"


def test_partial_records_join_per_stream() -> None:
    raw = [record(1, "stdout", "ab", "P"), record(2, "stderr", "e"), record(3, "stdout", "cd"), "junk\n"]
    assert [(ln.stream, ln.text) for ln in logs.parse_records(iter(raw))] == [
        ("stderr", "e"),
        ("stdout", "abcd"),
    ]


def test_parse_stamp() -> None:
    assert logs.parse_stamp("1970-01-01T00:00:01.500000000+00:00") == 1.5
    assert logs.parse_stamp("1970-01-01T01:00:02+01:00") == 2.0


def test_rotate_keeps_n(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    for i in range(4):
        path.write_text(f"gen{i}" * 10)
        assert logs.rotate(path, max_bytes=10, keep=2)
    assert not path.exists()
    assert (tmp_path / "c.log.1").read_text().startswith("gen3")
    assert (tmp_path / "c.log.2").read_text().startswith("gen2")
    assert not (tmp_path / "c.log.3").exists()
    path.write_text("small")
    assert not logs.rotate(path, max_bytes=10, keep=2)
    assert not logs.rotate(tmp_path / "missing.log", max_bytes=10, keep=2)


def test_read_lines_across_rotations_since_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    (tmp_path / "c.log.2").write_text(record(1, "stdout", "one"))
    (tmp_path / "c.log.1").write_text(record(2, "stdout", "two"))
    path.write_text(record(3, "stderr", "three") + record(4, "stdout", "four"))
    assert [ln.text for ln in logs.read_lines(path, keep=2)] == ["one", "two", "three", "four"]
    assert [ln.text for ln in logs.read_lines(path, keep=1)] == ["two", "three", "four"]
    assert [ln.text for ln in logs.read_lines(path, keep=2, since=2.5)] == ["three", "four"]
    assert [ln.text for ln in logs.read_lines(path, keep=2, tail=1)] == ["four"]
    assert logs.read_lines(path, keep=2, tail=0) == []
    assert logs.read_lines(tmp_path / "none.log", keep=2) == []


def test_follow_sees_new_lines_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    path.write_text(record(1, "stdout", "old"))
    done = threading.Event()

    def writer() -> None:
        time.sleep(0.1)
        with path.open("a") as f:
            f.write(record(2, "stdout", "new"))
        time.sleep(0.1)
        logs.rotate(path, max_bytes=1, keep=2)
        path.write_text(record(3, "stdout", "after rotation"))
        time.sleep(0.3)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    got = [ln.text for ln in logs.follow(path, 2, since=None, tail=None, stop=done.is_set, poll_s=0.02)]
    thread.join()
    assert got == ["old", "new", "after rotation"]


def test_follow_loses_no_line_written_as_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line the container writes between the stored lines and the tail is still given, once."""
    path = tmp_path / "c.log"
    path.write_text(record(1, "stdout", "stored"))
    opened = logs._Tail.__init__

    def opening(self: logs._Tail, where: Path) -> None:
        with path.open("a") as f:
            f.write(record(2, "stdout", "as it starts"))
        opened(self, where)

    monkeypatch.setattr(logs._Tail, "__init__", opening)
    got = [ln.text for ln in logs.follow(path, 2, since=None, tail=None, stop=lambda: True, poll_s=0.01)]
    assert got == ["stored", "as it starts"]

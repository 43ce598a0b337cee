"""Server rows: each running server's URL, node name, version and leadership, kept fresh by its
heartbeat (control.presence). A leader whose heartbeat stopped is not reported as leading."""

from __future__ import annotations

from shoal.control.store.db import Conn, Row

STALE_S = 5.0  # a server not seen for this long is no longer reported as the leader
KEPT_S = 7 * 86400  # a server not seen for a week is forgotten (it was removed)


def beat(conn: Conn, url: str, node: str, version: str, *, pid: int, leader: bool) -> None:
    """Record that the server at `url` is alive now (and whether it leads)."""
    conn.execute(
        "INSERT INTO servers (url, node, version, pid, leader) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (url) DO UPDATE SET node = EXCLUDED.node, version = EXCLUDED.version,"
        " pid = EXCLUDED.pid, leader = EXCLUDED.leader, last_seen = now()",
        (url, node, version, pid, leader),
    )
    if leader:  # the lock has one holder: a row still saying otherwise is a dead leader's
        conn.execute("UPDATE servers SET leader = false WHERE leader AND url <> %s", (url,))


def leave(conn: Conn, url: str) -> None:
    """A server stopping cleanly: it leads no more (its row stays, with its last_seen)."""
    conn.execute("UPDATE servers SET leader = false WHERE url = %s", (url,))


def all_servers(conn: Conn) -> list[Row]:
    """node, url, leader, version, last_seen of every server seen in the last week, by URL."""
    return conn.execute(
        "SELECT node, url, leader AND last_seen > now() - make_interval(secs => %s) AS leader,"
        " version, last_seen FROM servers WHERE last_seen > now() - make_interval(secs => %s)"
        " ORDER BY url",
        (STALE_S, KEPT_S),
    ).fetchall()


def urls(conn: Conn) -> list[str]:
    """The API URLs agents and the CLI may fail over between: every server of the last week."""
    return [r["url"] for r in all_servers(conn)]

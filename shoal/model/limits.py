"""The cluster's documented maximums for every number a deploy file or an API request may carry.

Pure constants under `shoal.model` (docs/compose.md lists them): each bound is what the next step
accepts — runc's int64 cgroup values, Linux's PID limit, the wait a thread can be given, the
scheduler's and PostgreSQL's integers — so a value past it is refused with the file's line
instead of failing later on an agent or in the database.
"""

from __future__ import annotations

MAX_REPLICAS = 10_000  # replicas of one service (deploy files, `service scale`)
MAX_CPUS = 1024.0  # cores in a limit or a reservation; runc's quota is cpus * period in int64
MAX_BYTES = 1 << 50  # 1 PiB: memory limits and reservations, tmpfs sizes (runc: int64 bytes)
MAX_DURATION_S = 366 * 86400.0  # a year: intervals, timeouts, delays, grace periods
MAX_PIDS = 4_194_304  # Linux's PID_MAX_LIMIT
MAX_COUNT = 1_000_000  # retries, parallelism, restart attempts (PostgreSQL int and below)

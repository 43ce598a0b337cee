-- shoal schema, version 14: `shoal service rebalance` requests and the moves each made.
-- A row in state 'running' lets the controller move the service's replicas (one at a time,
-- start-first) until they are spread evenly; it then ends 'done' (or 'failed' when a moved
-- replica failed to start). Services with `x-shoal: {rebalance: auto}` need no row.
CREATE TABLE rebalances (
    service   text PRIMARY KEY REFERENCES services(name) ON DELETE CASCADE,
    state     text NOT NULL DEFAULT 'running',
    message   text NOT NULL DEFAULT '',
    moves     jsonb NOT NULL DEFAULT '[]',
    requested timestamptz NOT NULL DEFAULT now(),
    updated   timestamptz NOT NULL DEFAULT now()
);

-- shoal schema, version 12: the servers running against this database (`shoal server ls`).
-- Each server process writes its row every heartbeat: where it is reached, its version, whether
-- its controller leads. Agents and the CLI fail over between the URLs of the recent ones.
CREATE TABLE servers (
    url text PRIMARY KEY,
    node text NOT NULL,
    version text NOT NULL,
    pid integer NOT NULL DEFAULT 0,
    leader boolean NOT NULL DEFAULT false,
    started timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now()
);

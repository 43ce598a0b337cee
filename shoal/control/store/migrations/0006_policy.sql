-- shoal schema, version 6: the admin's node policy, versioned. Each `shoal policy set` adds a row;
-- the current policy is the highest version; no row means the empty policy (safe defaults).
CREATE TABLE node_policies (
    version  integer PRIMARY KEY,
    document text NOT NULL,
    author   text NOT NULL DEFAULT '',
    created  timestamptz NOT NULL DEFAULT now()
);

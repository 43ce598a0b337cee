-- shoal schema, version 1: the whole cluster configuration.
CREATE TABLE nodes (
    name            text PRIMARY KEY,
    subnet_index    integer NOT NULL UNIQUE,
    subnet          text NOT NULL UNIQUE,
    public_key      text NOT NULL DEFAULT '',
    endpoint        text,
    labels          jsonb NOT NULL DEFAULT '{}',
    ingress         boolean NOT NULL DEFAULT false,
    role            text NOT NULL DEFAULT 'worker',
    availability    text NOT NULL DEFAULT 'active',
    down            boolean NOT NULL DEFAULT false,
    capacity        jsonb NOT NULL DEFAULT '{}',
    last_seen       timestamptz,
    credential_hash text NOT NULL UNIQUE,
    agent_secret    text NOT NULL,
    state_version   bigint NOT NULL DEFAULT 1,
    created         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE services (
    name            text PRIMARY KEY,
    project         text NOT NULL,
    revision        integer NOT NULL,
    mode            text NOT NULL DEFAULT 'replicated',
    replicas        integer NOT NULL DEFAULT 1,
    rollout_state   text NOT NULL DEFAULT 'completed',
    rollout_message text NOT NULL DEFAULT '',
    created         timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE revisions (
    service  text NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    number   integer NOT NULL,
    spec     jsonb NOT NULL,
    change   text NOT NULL DEFAULT '',
    created  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, number)
);

CREATE SEQUENCE task_generation;

CREATE TABLE tasks (
    id             text PRIMARY KEY,
    service        text NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    replica        integer NOT NULL,
    generation     bigint NOT NULL,
    revision       integer NOT NULL,
    node           text REFERENCES nodes(name) ON DELETE SET NULL,
    ip             text,
    desired_state  text NOT NULL DEFAULT 'run',
    observed_state text NOT NULL DEFAULT 'pending',
    health         text NOT NULL DEFAULT 'none',
    message        text NOT NULL DEFAULT '',
    created        timestamptz NOT NULL DEFAULT now(),
    updated        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_node ON tasks(node);
CREATE INDEX tasks_service ON tasks(service);

CREATE TABLE secrets (
    name       text PRIMARY KEY,
    ciphertext bytea NOT NULL,
    created    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tokens (
    id      text PRIMARY KEY,
    name    text NOT NULL DEFAULT '',
    role    text NOT NULL,
    hash    text NOT NULL UNIQUE,
    created timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE join_tokens (
    id        text PRIMARY KEY,
    hash      text NOT NULL UNIQUE,
    expires   timestamptz NOT NULL,
    uses_left integer NOT NULL,
    revoked   boolean NOT NULL DEFAULT false,
    created   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id      bigserial PRIMARY KEY,
    time    timestamptz NOT NULL DEFAULT now(),
    kind    text NOT NULL,
    subject text NOT NULL DEFAULT '',
    message text NOT NULL DEFAULT ''
);

CREATE TABLE node_status (
    node    text PRIMARY KEY REFERENCES nodes(name) ON DELETE CASCADE,
    status  jsonb NOT NULL,
    updated timestamptz NOT NULL DEFAULT now()
);

-- bumped with every cluster-wide change (nodes, serving replicas, ingress): caches key on it
CREATE TABLE cluster (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO cluster (id, version) VALUES (1, 1);

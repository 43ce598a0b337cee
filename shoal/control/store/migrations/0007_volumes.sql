-- shoal schema, version 7: named volumes are placement facts. A project's volume is bound to the
-- node its directory lives on when a replica using it is first placed; the scheduler keeps its
-- replicas there (unplaced while that node is down or draining), whatever the tasks say. Removing
-- the node drops the binding (its data went with it). Replicas the scheduler cannot place, and why.
CREATE TABLE volumes (
    project    text NOT NULL,
    name       text NOT NULL,
    node       text NOT NULL REFERENCES nodes(name) ON DELETE CASCADE ON UPDATE CASCADE,
    size_bytes bigint,
    created    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, name)
);
CREATE INDEX volumes_node ON volumes(node);

-- bind the volumes of services already running where their replicas run
INSERT INTO volumes (project, name, node)
SELECT DISTINCT ON (s.project, v.name) s.project, v.name, t.node
FROM services s
JOIN revisions r ON r.service = s.name AND r.number = s.revision
CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(r.spec->'volumes', '[]'::jsonb)) AS v(name)
JOIN tasks t ON t.service = s.name AND t.node IS NOT NULL AND t.desired_state = 'run'
WHERE coalesce(r.spec->>'mode', 'replicated') = 'replicated'
ORDER BY s.project, v.name, t.node;

CREATE TABLE unplaced (
    service text NOT NULL REFERENCES services(name) ON DELETE CASCADE ON UPDATE CASCADE,
    replica integer NOT NULL,
    reason  text NOT NULL,
    since   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, replica)
);

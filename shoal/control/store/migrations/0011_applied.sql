-- shoal schema, version 11: "deployed" means "served".
-- Each node's agent reports the node-state version it has fully applied (every reconcile step,
-- DNS and ingress included) and the cluster version of that state's cluster-wide parts (DNS,
-- ingress routes). NULL: unknown (an agent that does not report it yet).
ALTER TABLE nodes ADD COLUMN applied_version bigint;
ALTER TABLE nodes ADD COLUMN applied_cluster_version bigint;
-- The cluster version whose refresh first put a serving replica into every node's DNS and
-- ingress; NULL while it is not (yet) published. Reset when the replica stops serving.
ALTER TABLE tasks ADD COLUMN published bigint;

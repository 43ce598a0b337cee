-- shoal schema, version 13: what a node gets at join comes from its join token, not from the node.
-- A join token carries the labels, ingress flag and relay mark an admin gave it
-- (`shoal token create --role join --label k=v --ingress --relay`); a joining node gets exactly those.
-- Relaying is an admin's mark (`shoal node relay N on|off`); `shoal.relay=false` still means never.
ALTER TABLE join_tokens
    ADD COLUMN labels jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN ingress boolean NOT NULL DEFAULT false,
    ADD COLUMN relay boolean NOT NULL DEFAULT false,
    -- the name of the server's own machine (`server init --server-node`) is joined only with a
    -- token granting it: `server init`'s own, or one an admin made so; the role follows it
    ADD COLUMN server boolean NOT NULL DEFAULT false;

ALTER TABLE nodes ADD COLUMN relay boolean NOT NULL DEFAULT false;

-- Every public node relayed before unless labelled not to: an upgraded cluster keeps relaying.
UPDATE nodes SET relay = true
 WHERE coalesce(endpoint, '') <> ''
   AND lower(coalesce(labels->>'shoal.relay', 'true')) NOT IN ('false', 'no', '0');

-- Events as an audit trail (issue 19): who made each event through the API, and replica churn
-- kept apart so that it cannot push security events (tokens, secrets, nodes, deploys) out.
ALTER TABLE events ADD COLUMN principal text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN churn boolean NOT NULL DEFAULT false;
UPDATE events SET churn = true WHERE kind LIKE 'replica.%';
CREATE INDEX events_churn_id ON events (churn, id);

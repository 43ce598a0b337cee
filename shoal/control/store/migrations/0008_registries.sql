-- shoal schema, version 8: registry logins (`shoal registry login`). The password is stored only
-- as ciphertext (the server's secrets key, as secrets are); host and username are not secret.
CREATE TABLE registry_logins (
    host       text PRIMARY KEY,
    username   text NOT NULL,
    ciphertext bytea NOT NULL,
    created    timestamptz NOT NULL DEFAULT now()
);

-- shoal schema, version 9: a secret belongs to a project; '' is a global secret (every secret made
-- before this version is one). A name may exist once per project and once globally.
ALTER TABLE secrets ADD COLUMN project text NOT NULL DEFAULT '';
ALTER TABLE secrets DROP CONSTRAINT secrets_pkey;
ALTER TABLE secrets ADD PRIMARY KEY (project, name);

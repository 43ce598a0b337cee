-- shoal schema, version 3: projects are namespaces. A service's key `name` becomes the qualified
-- `<project>.<service>` (project names have no dots, service names are DNS labels), so `db` of
-- project `a` and `db` of project `b` are two rows; `short_name` is the name the file gives it.
-- The revisions' and tasks' foreign keys keep pointing at `name` and follow the rename.
ALTER TABLE services ADD COLUMN short_name text;
UPDATE services SET short_name = name;
ALTER TABLE services ALTER COLUMN short_name SET NOT NULL;

ALTER TABLE revisions DROP CONSTRAINT revisions_service_fkey;
ALTER TABLE revisions ADD CONSTRAINT revisions_service_fkey
    FOREIGN KEY (service) REFERENCES services(name) ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE tasks DROP CONSTRAINT tasks_service_fkey;
ALTER TABLE tasks ADD CONSTRAINT tasks_service_fkey
    FOREIGN KEY (service) REFERENCES services(name) ON DELETE CASCADE ON UPDATE CASCADE;

UPDATE services SET name = project || '.' || short_name WHERE position('.' IN name) = 0;
ALTER TABLE services ADD CONSTRAINT services_project_short_name UNIQUE (project, short_name);
CREATE INDEX services_short_name ON services(short_name);

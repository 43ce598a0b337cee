-- shoal schema, version 10: the exit code a replica last ended with, as its agent reported it
-- (`depends_on: {x: {condition: service_completed_successfully}}` waits for code 0).
ALTER TABLE tasks ADD COLUMN exit_code integer;

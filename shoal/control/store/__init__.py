"""The control plane's store: PostgreSQL schema, migrations and small typed queries.

The only code that talks to PostgreSQL. The API and the controller call these functions inside a
transaction from `db.Database`; every change that alters a node's desired state bumps that node's
`state_version` and NOTIFYs `shoal_node` so waiting long-polls wake.
"""

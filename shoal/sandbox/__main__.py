"""`python -m shoal.sandbox ...`: the `shoal sandbox` group on its own (used by the e2e fixtures)."""

from shoal.sandbox.commands import sandbox

sandbox(prog_name="shoal sandbox")

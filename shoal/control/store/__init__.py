"""shoal/control/store."""

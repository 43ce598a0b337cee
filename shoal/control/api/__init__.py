"""shoal/control/api."""

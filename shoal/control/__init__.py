"""shoal/control."""

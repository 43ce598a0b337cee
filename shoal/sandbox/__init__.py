"""shoal/sandbox."""

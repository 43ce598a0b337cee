"""shoal/cli."""

"""shoal/agent/sys."""

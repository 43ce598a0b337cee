"""shoal/agent/render."""

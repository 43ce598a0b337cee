"""shoal/agent."""

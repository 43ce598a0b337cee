"""shoal/agent/reconcilers."""

"""shoal/client."""

"""shoal/model."""

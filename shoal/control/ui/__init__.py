"""shoal/control/ui."""

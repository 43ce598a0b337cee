"""shoal/control/scheduler."""

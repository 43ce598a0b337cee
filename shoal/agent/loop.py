"""The agent main loop: long-poll node state, reconcile, report status."""

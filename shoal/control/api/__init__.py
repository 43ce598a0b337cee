"""The HTTP API under /api/v1: one blueprint per noun, JSON in and out (docs/interfaces.md)."""

"""Shared test fixtures and builders (registry, images, server, namespaces)."""

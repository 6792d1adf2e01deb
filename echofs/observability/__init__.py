"""Logs (structlog) and, later, metrics."""

"""Alembic migrations (shipped in the package as ``echofs.migrations``)."""

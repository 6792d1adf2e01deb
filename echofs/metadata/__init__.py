"""Metadata: SQLAlchemy models and the repository, the only place SQL lives."""

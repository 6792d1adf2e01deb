"""The controller role: signals in, per-file consistency modes out."""

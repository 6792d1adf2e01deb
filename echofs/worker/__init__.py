"""The worker role: stores chunks and serves them."""

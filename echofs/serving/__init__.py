"""What every role's network face shares: the HTTP middleware (errors,
request ids, the access log) and the helper that serves a role's HTTP and
gRPC with one lifecycle."""

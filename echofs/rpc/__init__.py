"""Between roles: generated gRPC messages (``generated/``, never hand-edited)
and the thin servers and clients over them."""

"""Pure domain logic: no I/O, no event loop, no framework imports."""

"""EchoFS: a distributed file store with adaptive consistency."""

__version__ = "0.1.0"

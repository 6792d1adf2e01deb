"""Accounts, passwords and tokens: who is asking, and what they may touch."""

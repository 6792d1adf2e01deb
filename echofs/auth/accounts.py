"""The account behind a token, checked on every request.

A signed token proves who it was issued to, not that the account still
exists, still has the role it had, or has not logged out since. So every
authenticated request looks the account up; to keep that off the database on
every request, each master keeps what it read for ``ttl`` seconds
(``AUTH_CACHE_SECONDS``).

Changes made through this master (delete, role change, logout) call
:meth:`AccountCheck.forget` and take effect on its next request. Changes made
through another master (or the store directly) take effect here when the
copy expires: within ``ttl`` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from echofs.auth.tokens import Identity
from echofs.core.errors import Unauthorized
from echofs.metadata.users import UserRecord, UsersRepository

# Accounts remembered at once (a few hundred bytes each).
MAX_ACCOUNTS = 10_000


class AccountCheck:
    def __init__(self, users: UsersRepository, ttl: float,
                 max_accounts: int = MAX_ACCOUNTS) -> None:
        self.users = users
        self.ttl = ttl
        self.max_accounts = max_accounts
        self._accounts: OrderedDict[str, tuple[float, UserRecord]] = OrderedDict()
        # Bumped by every forget(): a lookup that started before a change
        # must not put back what it read before that change.
        self._changes = 0

    async def current(self, token: Identity) -> Identity:
        """The identity to act as: the account's name and role now. 401 if
        the account is gone or the token was revoked."""
        account = await self._account(token.user_id)
        if account is None:
            raise Unauthorized("this account no longer exists", code="unknown_user")
        if account.token_generation != token.token_generation:
            raise Unauthorized("this token was revoked (signed out); log in again",
                               code="token_revoked")
        return Identity(account.user_id, account.username, account.role,
                        account.token_generation)

    async def _account(self, user_id: str) -> UserRecord | None:
        now = time.monotonic()
        kept = self._accounts.get(user_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        changes = self._changes
        account = await self.users.by_id(user_id)
        if account is None:
            self._accounts.pop(user_id, None)
        elif self.ttl > 0 and changes == self._changes:
            self._accounts[user_id] = (now + self.ttl, account)
            self._accounts.move_to_end(user_id)
            while len(self._accounts) > self.max_accounts:
                self._accounts.popitem(last=False)
        return account

    def forget(self, user_id: str) -> None:
        """The account changed: read it afresh on its next request."""
        self._changes += 1
        self._accounts.pop(user_id, None)

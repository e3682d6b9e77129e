"""Argon2id password hashing, off the event loop, bounded, and yielding the CPU to requests."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# How much lower than the request-serving thread a hashing thread is scheduled (nice 0..19).
HASHING_NICENESS = 10


class PasswordHasher:
    """Hash and verify passwords on `concurrency` threads of their own, at a lower priority.

    Argon2 runs outside the GIL, so a burst of sign-ins could otherwise take every core from
    the event loop and stall all other requests; on Linux, which schedules threads one by
    one, the hashing threads run at a lower priority and give way to request handling (the
    sign-ins wait instead).

    A stored hash made with other parameters still verifies, and is replaced by one with the
    current parameters at the next sign-in (`verify` returns it), so raising the cost later
    upgrades every account that signs in.
    """

    def __init__(self, concurrency: int, *, time_cost: int, memory_kib: int) -> None:
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self.hasher = PasswordHash(
            (Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1),)
        )
        # Verifying against this when the account does not exist makes an unknown email cost
        # the same as a wrong password: no timing oracle for which emails are registered.
        self._dummy_hash = self.hasher.hash("primetrade-dummy-password-for-timing")

    async def hash(self, password: str) -> str:
        hashed: str = await self._run(self.hasher.hash, password)
        return hashed

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one uses other parameters)."""
        target = hashed or self._dummy_hash
        ok, updated = await self._run(self.hasher.verify_and_update, password, target)
        # An empty stored hash must never match (it would be checked against the dummy).
        return (ok and bool(hashed)), updated

    def close(self) -> None:
        """Let the threads go; a later call starts new ones (an app may be started again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    async def _run(self, function: Any, *args: Any) -> Any:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self._concurrency,
                thread_name_prefix="argon2",
                initializer=_lower_priority,
            )
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)


def _lower_priority() -> None:
    # Linux applies a thread id given to setpriority to that thread alone; elsewhere it would
    # mean the whole process, so it is left as it is there.
    if sys.platform.startswith("linux"):
        with suppress(OSError):
            current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), current + HASHING_NICENESS)

"""The shared per-site credentials: one refresh for many callers, whatever happens to it."""

from __future__ import annotations

import asyncio

import pytest

from opchatgpts import AuthenticationError
from opchatgpts._credentials import Credentials, SiteAuth, mask


async def test_many_waiters_share_one_fetch():
    auth = SiteAuth()
    calls = 0

    async def fetch() -> Credentials:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return Credentials("n1", "s1")

    results = await asyncio.gather(*(auth.refresh(fetch, rejected=None) for _ in range(10)))
    assert calls == 1 and all(r == Credentials("n1", "s1") for r in results)
    # A caller whose rejected nonce was already replaced gets the new one without a fetch.
    assert await auth.refresh(fetch, rejected=None) == Credentials("n1", "s1")
    assert calls == 1


async def test_a_failed_fetch_reaches_every_waiter_and_the_next_call_fetches_again():
    auth = SiteAuth()

    async def failing() -> Credentials:
        await asyncio.sleep(0.02)
        raise AuthenticationError("no nonce", status_code=401)

    outcomes = await asyncio.gather(
        *(auth.refresh(failing, rejected=None) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, AuthenticationError) for o in outcomes)

    async def working() -> Credentials:
        return Credentials("n2")

    assert (await auth.refresh(working, rejected=None)).nonce == "n2"


async def test_a_cancelled_owner_hands_the_fetch_to_a_waiter():
    auth = SiteAuth()
    started = asyncio.Event()
    fetches = 0

    async def first_slow_then_quick() -> Credentials:
        nonlocal fetches
        fetches += 1
        if fetches == 1:
            started.set()
            await asyncio.sleep(30)
        return Credentials(f"fetch{fetches}")

    owner = asyncio.ensure_future(auth.refresh(first_slow_then_quick, rejected=None))
    await started.wait()
    waiters = [asyncio.ensure_future(auth.refresh(first_slow_then_quick, rejected=None)) for _ in range(2)]
    await asyncio.sleep(0)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    # Nobody cancelled the waiters: one of them fetched again, and both got its nonce.
    assert [(await w).nonce for w in waiters] == ["fetch2", "fetch2"]
    assert fetches == 2


async def test_a_cancelled_waiter_leaves_the_fetch_and_the_others_alone():
    auth = SiteAuth()
    release = asyncio.Event()

    async def fetch() -> Credentials:
        await release.wait()
        return Credentials("shared")

    owner = asyncio.ensure_future(auth.refresh(fetch, rejected=None))
    await asyncio.sleep(0)
    cancelled, other = (asyncio.ensure_future(auth.refresh(fetch, rejected=None)) for _ in range(2))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    release.set()
    # Before the fix the owner's set_result raised InvalidStateError (the shared future had
    # been cancelled through the waiter) and the other waiter got CancelledError.
    assert (await owner).nonce == "shared"
    assert (await other).nonce == "shared"


def test_remember_keeps_what_it_is_not_told():
    auth = SiteAuth()
    auth.remember(nonce="first12345", session_id="s")
    auth.remember(nonce="second1234")
    assert auth.credentials == Credentials("second1234", "s")
    assert "second1234" not in repr(auth.credentials)


def test_mask_shows_at_most_two_characters():
    assert mask("f44b4f4fcc") == "f4…" and mask(None) == "none"

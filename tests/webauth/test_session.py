"""Session cookies, CSRF tokens and the failed-login limit, with injected clocks."""

from __future__ import annotations

import pytest

from agentcmd.errors import ConfigError
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth
from agentcmd.webauth.ratelimit import LoginLimiter
from agentcmd.webauth.session import SessionSigner, derive_secret


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_session_cookie_verifies_until_it_expires() -> None:
    clock = Clock()
    signer = SessionSigner(derive_secret("tok"), max_age_s=60, clock=clock)
    value, session = signer.issue()
    assert signer.verify(value) == session
    clock.now += 59
    assert signer.verify(value) is not None
    clock.now += 2
    assert signer.verify(value) is None


@pytest.mark.parametrize("mangle", [
    lambda v: v[:-1] + ("0" if v[-1] != "0" else "1"),  # signature changed
    lambda v: "x" + v,  # session id changed
    lambda v: v.replace(".", ".9", 1),  # expiry extended
    lambda v: "",
    lambda v: "a.b",
])
def test_a_tampered_cookie_is_rejected(mangle: object) -> None:
    signer = SessionSigner(derive_secret("tok"))
    value, _ = signer.issue()
    assert signer.verify(mangle(value)) is None  # type: ignore[operator]


def test_rotating_the_token_ends_every_session() -> None:
    value, _ = SessionSigner(derive_secret("old")).issue()
    assert SessionSigner(derive_secret("new")).verify(value) is None


def test_the_cookie_does_not_contain_the_token() -> None:
    value, _ = SessionSigner(derive_secret("secret-dashboard-token")).issue()
    assert "secret-dashboard-token" not in value


def test_csrf_tokens_are_bound_to_one_browser() -> None:
    signer = SessionSigner(derive_secret("tok"))
    token = signer.csrf_token("sid-a")
    assert signer.check_csrf("sid-a", token)
    assert not signer.check_csrf("sid-b", token)
    assert not signer.check_csrf("sid-a", None)
    assert not signer.check_csrf(None, token)


def test_failed_logins_are_limited_per_client_and_forgotten_after_the_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=3, window_s=60, global_max=100, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("1.2.3.4") == 0
        limiter.failed("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == pytest.approx(60)
    assert limiter.retry_after("5.6.7.8") == 0
    clock.now += 30
    assert limiter.retry_after("1.2.3.4") == pytest.approx(30)
    clock.now += 31
    assert limiter.retry_after("1.2.3.4") == 0


def test_a_success_clears_the_clients_failures() -> None:
    limiter = LoginLimiter(max_failures=2, clock=Clock())
    limiter.failed("c")
    limiter.succeeded("c")
    limiter.failed("c")
    assert limiter.retry_after("c") == 0


def test_many_failures_hold_each_failing_address_to_one_guess_but_never_lock_out_a_fresh_client() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=5, window_s=60, global_max=10, clock=clock)
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 0  # one mistake is not a lockout
    for i in range(2, 11):
        limiter.failed(f"10.0.0.{i}")
    assert limiter.under_attack()
    assert limiter.retry_after("10.0.0.200") == 0  # the token's owner, from an address with no failures
    assert limiter.retry_after("10.0.0.1") == pytest.approx(60)  # a guesser gets one guess per address
    clock.now += 61
    assert not limiter.under_attack() and limiter.retry_after("10.0.0.1") == 0


def test_the_limiter_keeps_bounded_memory_under_a_flood_of_addresses() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=3, window_s=60, global_max=50, clock=clock, max_clients=100)
    for i in range(5000):
        limiter.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        clock.now += 0.001
    assert limiter.clients() <= 100
    assert len(limiter._all) <= 50
    for _ in range(50):
        limiter.failed("192.0.2.7")
    assert len(limiter._by_client["192.0.2.7"]) <= 3


def test_a_remote_production_engine_without_a_dashboard_token_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        WebAuth.build(Mode.PRODUCTION, "0.0.0.0", token=None)
    assert "agentcmd install" in (err.value.fix or "")


def test_dashboard_auth_without_a_token_is_refused() -> None:
    with pytest.raises(ConfigError):
        WebAuth.build(Mode.DEV, "127.0.0.1", dashboard_auth=True, token="  ")


def test_webauth_repr_hides_the_token() -> None:
    auth = WebAuth.build(Mode.PRODUCTION, "0.0.0.0", token="very-secret-token")
    assert "very-secret-token" not in repr(auth)


def test_run_counts_are_reused_in_proportion_to_their_cost() -> None:
    from agentcmd.engine.dashboard.reads import CountCache
    from agentcmd.engine.store.queries.models import RunFilter

    clock = Clock()
    cache = CountCache(clock)
    cheap, costly = RunFilter(function="a"), RunFilter(function="b")
    cache.put(cheap, {"Completed": 1}, cost_s=0.0005)  # a small table: never cached
    cache.put(costly, {"Completed": 9}, cost_s=0.04)  # 40 ms: reused for 2 s
    assert cache.get(cheap) is None
    assert cache.get(costly) == {"Completed": 9}
    clock.now += 1.9
    assert cache.get(costly) == {"Completed": 9}
    clock.now += 0.2
    assert cache.get(costly) is None
    cache.put(costly, {"Completed": 10}, cost_s=10)  # never longer than MAX_AGE_S
    clock.now += CountCache.MAX_AGE_S
    assert cache.get(costly) is None

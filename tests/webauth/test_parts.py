"""The login hardening's parts on their own: trusted proxies, revoked sessions, safe names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentcmd.config import load_settings
from agentcmd.errors import ConfigError
from agentcmd.safenames import is_plain_name, path_under
from agentcmd.webauth.options import WebOptions
from agentcmd.webauth.proxy import TrustedProxies, limiter_key
from agentcmd.webauth.revocation import RevocationList
from agentcmd.webauth.session import Session


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- trusted proxies -----------------------------------------------------------------

def xff(value: str) -> list[tuple[str, str]]:
    return [("x-forwarded-for", value)]


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() -> None:
    proxies = TrustedProxies()
    assert proxies.client("127.0.0.1", xff("203.0.113.9")) == "127.0.0.1"
    assert not proxies.forwarded_https("127.0.0.1", [("x-forwarded-proto", "https")])


def test_a_trusted_proxy_chain_is_walked_from_the_right_and_stops_at_the_first_untrusted_hop() -> None:
    proxies = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")
    assert proxies.client("127.0.0.1", xff("203.0.113.9")) == "203.0.113.9"
    assert proxies.client("127.0.0.1", xff("192.0.2.1, 203.0.113.9, 10.1.2.3")) == "203.0.113.9"
    assert proxies.client("127.0.0.1", [*xff("192.0.2.1"), *xff("203.0.113.9")]) == "203.0.113.9"
    assert proxies.client("127.0.0.1", xff("garbage, 10.0.0.1")) == "10.0.0.1"  # never the forged value
    assert proxies.client("127.0.0.1", []) == "127.0.0.1"
    assert proxies.client("198.51.100.1", xff("203.0.113.9")) == "198.51.100.1"  # not a proxy of ours


def test_forwarded_proto_counts_only_from_a_trusted_proxy_and_only_its_own_value() -> None:
    proxies = TrustedProxies.parse(["127.0.0.2"])
    assert proxies.forwarded_https("127.0.0.2", [("x-forwarded-proto", "https")])
    assert not proxies.forwarded_https("127.0.0.2", [("x-forwarded-proto", "https, http")])
    assert not proxies.forwarded_https("127.0.0.3", [("x-forwarded-proto", "https")])


def test_ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert limiter_key("2001:db8:1:2:aaaa::1") == limiter_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert limiter_key("::ffff:192.0.2.5") == "192.0.2.5"
    assert limiter_key("unknown") == "unknown"


@pytest.mark.parametrize("value", ["proxy.example", "10.0.0.0/33", "1.2.3"])
def test_a_bad_trusted_proxies_setting_names_the_setting(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "AGENTCMD_TRUSTED_PROXIES" in err.value.what and value.split("/")[0] in err.value.what


def test_the_settings_become_web_options(monkeypatch: pytest.MonkeyPatch, agentcmd_home: Path) -> None:
    monkeypatch.setenv("AGENTCMD_TRUSTED_PROXIES", "127.0.0.1,::1")
    monkeypatch.setenv("AGENTCMD_PUBLIC_URL", "https://agentcmd.example.com/")
    options = WebOptions.from_settings(load_settings())
    assert options.proxies.trusts("::1") and options.public_https
    assert options.public_url == "https://agentcmd.example.com"
    assert options.revocations_path == agentcmd_home / "data" / "web-sessions-revoked"
    monkeypatch.setenv("AGENTCMD_PUBLIC_URL", "agentcmd.example.com")
    with pytest.raises(ConfigError, match="AGENTCMD_PUBLIC_URL"):
        load_settings()


# -- revoked sessions ------------------------------------------------------------------

def test_a_revoked_session_stays_revoked_and_others_do_not(tmp_path: Path) -> None:
    clock = Clock()
    revoked = RevocationList(tmp_path / "revoked", clock=clock)
    a, b = Session("a", int(clock.now) + 100), Session("b", int(clock.now) + 100)
    revoked.revoke(a)
    assert revoked.is_revoked(a) and not revoked.is_revoked(b)
    assert os.stat(tmp_path / "revoked").st_mode & 0o777 == 0o600


def test_a_second_server_sees_a_revocation_at_once_and_a_restarted_one_too(tmp_path: Path) -> None:
    clock = Clock()
    engine, app = RevocationList(tmp_path / "r", clock=clock), RevocationList(tmp_path / "r", clock=clock)
    session = Session("shared", int(clock.now) + 100)
    engine.revoke(session)
    assert app.is_revoked(session)
    assert RevocationList(tmp_path / "r", clock=clock).is_revoked(session)


def test_memory_is_bounded_and_a_full_list_revokes_every_issued_session_instead_of_forgetting_one(
        tmp_path: Path) -> None:
    clock = Clock()
    revoked = RevocationList(tmp_path / "r", max_entries=3, max_age_s=100, clock=clock)
    sessions = [Session(f"s{i}", int(clock.now) + 100) for i in range(4)]
    for s in sessions:
        revoked.revoke(s)
    assert revoked.entries() <= 3
    assert all(revoked.is_revoked(s) for s in sessions)
    assert RevocationList(tmp_path / "r", max_entries=3, max_age_s=100, clock=clock).is_revoked(sessions[0])
    clock.now += 1
    later = Session("later", int(clock.now) + 100)
    assert not revoked.is_revoked(later)  # a login after the cutoff works


def test_expired_revocations_are_dropped(tmp_path: Path) -> None:
    clock = Clock()
    revoked = RevocationList(None, max_entries=2, clock=clock)
    revoked.revoke(Session("old1", int(clock.now) + 10))
    revoked.revoke(Session("old2", int(clock.now) + 10))
    clock.now += 11
    fresh = Session("fresh", int(clock.now) + 100)
    revoked.revoke(fresh)
    assert revoked.entries() == 1 and revoked.is_revoked(fresh)
    assert not revoked.is_revoked(Session("new", int(clock.now) + 200))


def test_a_large_file_is_compacted_and_damaged_lines_are_ignored(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from agentcmd.webauth import revocation

    monkeypatch.setattr(revocation, "MAX_FILE_BYTES", 200)
    clock = Clock()
    path = tmp_path / "r"
    path.write_text("garbage line\n* not-a-number\nexpired 5\n")
    revoked = RevocationList(path, clock=clock)
    keep = [Session(f"session-{i:03d}", int(clock.now) + 1000) for i in range(20)]
    for s in keep:
        revoked.revoke(s)
        clock.now += 1
    assert path.stat().st_size < 20 * len("session-000 1001000\n") + 1
    assert "garbage" not in path.read_text()
    fresh = RevocationList(path, clock=clock)
    assert all(fresh.is_revoked(s) for s in keep)


def test_an_unwritable_file_still_revokes_for_the_servers_lifetime(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    revoked = RevocationList(blocker / "r")
    session = Session("s", 2**40)
    revoked.revoke(session)
    assert revoked.is_revoked(session)


# -- names that become paths -----------------------------------------------------------

@pytest.mark.parametrize("name,ok", [
    ("report.txt", True), ("01JRUN", True), ("my report v2.txt", True), (".hidden", True),
    ("..", False), (".", False), ("...", False), ("", False), ("a/b", False), ("a\\b", False),
    ("/etc", False), ("a\x00b", False), ("report.txt\n", False),
    (" lead", False), ("trail ", False), ("x" * 256, False),
])
def test_plain_names(name: str, ok: bool) -> None:
    assert is_plain_name(name) is ok


def test_path_under_refuses_a_symlink_out(tmp_path: Path) -> None:
    base = tmp_path / "artifacts"
    (base / "run").mkdir(parents=True)
    (base / "run" / "out").symlink_to(tmp_path)
    assert path_under(base, "run", "file.txt") == (base / "run" / "file.txt").resolve()
    assert path_under(base, "run", "out") is None
    assert path_under(base, "..", "x") is None

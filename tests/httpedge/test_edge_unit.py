"""The edge's pure parts: Host parsing and the allow-list, cross-site and JSON rules, strict JSON, redaction."""

from __future__ import annotations

import json
import logging

import pytest

from agentcmd.errors import ConfigError, InputError
from agentcmd.httpedge import HostPolicy, jsonbody
from agentcmd.httpedge.browser import cross_site_reason, json_refusal
from agentcmd.httpedge.hosts import parse_allowed, split_host
from agentcmd.httpedge.redact import RedactFilter, redact_path


@pytest.mark.parametrize(("value", "parsed"), [
    ("localhost:4100", ("localhost", 4100)), ("127.0.0.1", ("127.0.0.1", None)), ("[::1]:8288", ("::1", 8288)),
    ("Agentcmd.Example.COM.", ("agentcmd.example.com", None)), ("a_b.local:1", ("a_b.local", 1)),
    ("", None), ("bad host", None), ("x:99999", None), ("x:-1", None), ("[::1", None), ("[zz]:1", None),
    ("[::1]x", None), ("x:1:2", None), ("évil", None), ("a/b", None),
])
def test_host_headers_are_parsed_strictly(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert split_host(value) == parsed


def test_loopback_bind_answers_loopback_names_on_any_port_and_nothing_else() -> None:
    hosts = HostPolicy.build("127.0.0.1")
    for ok in ("localhost:1", "127.0.0.1:4100", "[::1]:8288", "LOCALHOST", "127.0.0.2:80", "localhost.",
               "0.0.0.0:8288", "[::]:8288"):
        assert hosts.allows(ok), ok
    for bad in ("rebind.example:4711", "localhost.rebind.example", "10.0.0.1", None, "", "evil"):
        assert not hosts.allows(bad), bad


def test_bind_host_configured_names_and_known_urls_are_allowed() -> None:
    hosts = HostPolicy.build("192.168.1.5", ["box.lan, proxy.example.com", "https://ui.example.org:8443"],
                             known_urls=["http://serve.example.net:4100", None])
    for ok in ("192.168.1.5:4100", "box.lan", "proxy.example.com:443", "ui.example.org", "serve.example.net"):
        assert hosts.allows(ok), ok
    assert not hosts.allows("192.168.1.6") and not hosts.allows("other.example")
    assert hosts.configured == {"box.lan", "proxy.example.com", "ui.example.org"}


def test_a_wildcard_bind_answers_ip_literals_but_not_unknown_names() -> None:
    hosts = HostPolicy.build("0.0.0.0")
    assert hosts.allows("10.1.2.3:4100") and hosts.allows("[fe80::1]:1")
    assert not hosts.allows("rebind.example")
    assert HostPolicy.build("0.0.0.0", ["*"]).allows("anything.example")


def test_a_bad_allowed_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a host name"):
        parse_allowed(["good.example,bad host!"])


ALLOWED = HostPolicy.build("127.0.0.1", ["proxy.example.com"])


@pytest.mark.parametrize(("headers", "refused"), [
    ({"host": "127.0.0.1:8288"}, False),                                              # the CLI: no browser headers
    ({"host": "127.0.0.1:8288", "origin": "http://127.0.0.1:8288"}, False),           # same origin
    ({"host": "127.0.0.1:8288", "sec-fetch-site": "same-origin"}, False),
    ({"host": "127.0.0.1:8288", "origin": "https://proxy.example.com"}, False),       # configured proxy name
    ({"host": "127.0.0.1:8288", "origin": "http://evil.example"}, True),
    ({"host": "127.0.0.1:8288", "origin": "http://localhost:3000"}, True),            # another local site
    ({"host": "127.0.0.1:8288", "origin": "null"}, True),
    ({"host": "127.0.0.1:8288", "origin": "chrome-extension://abc"}, True),
    ({"host": "127.0.0.1:8288", "sec-fetch-site": "cross-site"}, True),
    ({"host": "127.0.0.1:8288", "sec-fetch-site": "same-site"}, True),
])
def test_cross_site_requests_are_recognised(headers: dict[str, str], refused: bool) -> None:
    assert (cross_site_reason(headers, ALLOWED) is not None) is refused


@pytest.mark.parametrize(("ctype", "refused"), [
    (None, False), ("application/json", False), ("application/json; charset=utf-8", False),
    ("text/plain", True), ("application/x-www-form-urlencoded", True), ("multipart/form-data; boundary=x", True),
])
def test_keyless_routes_take_json_only(ctype: str | None, refused: bool) -> None:
    headers = {"content-length": "2", **({"content-type": ctype} if ctype else {})}
    assert (json_refusal(headers) is not None) is refused


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"\xff\xfe{}", "not valid UTF-8"), (b"{not json", "not valid JSON"), (b'{"a": NaN}', "NaN"),
    (b"[Infinity]", "Infinity"), (b"[-Infinity]", "-Infinity"), (b"[1e999]", "out of range"),
    (b"[" * 100_000 + b"]" * 100_000, "too deeply"), (b"[" * 200 + b"]" * 200, "deeper than 128"),
    (b'"\\ud800"', "surrogate"), (b"1" * 5000, "not acceptable JSON"),
])
def test_every_malformed_body_is_an_input_error(raw: bytes, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        jsonbody.loads(raw)


def test_valid_json_parses_as_json_does() -> None:
    doc = {"a": [1, 2.5, "\U0001f600", None, True], "b": {"c": "\u00e9"}, "deep": [[[[[[[[1]]]]]]]]}
    assert jsonbody.loads(json.dumps(doc).encode()) == doc
    assert jsonbody.loads(b'"\\ud83d\\ude00"') == "\U0001f600"  # a surrogate pair is fine
    assert jsonbody.loads(b"") is None


def test_event_keys_are_redacted_from_paths_and_log_records() -> None:
    assert redact_path("/e/secretkey123") == "/e/<redacted>"
    assert redact_path("/e/secretkey123?x=1") == "/e/<redacted>?x=1"
    assert redact_path("/v1/events/01X") == "/v1/events/01X"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:1", "POST", "/e/secretkey123", "1.1", 200), None)
    RedactFilter().filter(record)
    assert "secretkey123" not in record.getMessage() and "/e/<redacted>" in record.getMessage()

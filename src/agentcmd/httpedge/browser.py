"""Requests from browsers on other sites, and bodies a browser can send without asking.

A page on any site can make a browser send a "simple" request (a form post,
``fetch`` with ``text/plain`` or no content type) to a loopback server with
no CORS preflight: the page cannot read the answer, but the request is
made. So, for state-changing methods:

* ``Origin`` or ``Sec-Fetch-Site`` saying another site: refused (403),
  unless the ``Origin`` is the request's own ``Host`` (same origin) or a
  name configured with ``--allowed-host`` (a reverse proxy's public name).
  ``Sec-Fetch-Site: same-origin`` counts only once the ``Host`` passed the
  allow-list (``hosts.py``), since rebinding makes any page same-origin.
* Routes with no key, bearer or signature (the dev engine's API, the open
  app API, the dev SDK endpoint) refuse bodies labelled with any other
  type than ``application/json`` (forms, ``text/plain``): a browser must
  preflight JSON cross-site, and neither server answers preflights. Form
  posts of the dashboards carry a CSRF token instead.
"""

from __future__ import annotations

from agentcmd.httpedge.hosts import HostPolicy, split_host

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site_reason(headers: dict[str, str], hosts: HostPolicy) -> str | None:
    """Why this request looks sent by a page on another site, or None. ``headers`` have lower-case names."""
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None:
        if origin == "null":
            return "Origin: null (a sandboxed page, a file or a redirect)"
        scheme, sep, rest = origin.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            return f"Origin {origin[:100]!r} is not an http(s) origin"
        parsed = split_host(rest)
        if parsed is None:
            return f"Origin {origin[:100]!r} is not a valid origin"
        if rest.lower() == host.lower() or parsed[0] in hosts.configured or hosts.any_host:
            return None
        return f"Origin {origin[:100]} is not this server ({host[:100]})"
    site = headers.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {site}"
    return None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def json_refusal(headers: dict[str, str]) -> str | None:
    """Why this body is not acceptable on a keyless state-changing route, or None.

    A body with no ``Content-Type`` passes: browsers label every body they
    send cross-site (forms, ``text/plain``), and a typeless body (``fetch``
    with a Blob, ``sendBeacon``) always comes with an ``Origin`` header
    (the Fetch standard adds it to every non-GET request), which
    ``cross_site_reason`` has already judged. Scripts and ``curl
    --data-binary`` without a type keep working.
    """
    ctype = headers.get("content-type")
    if ctype is None or ctype == "application/json" or media_type(ctype) == "application/json":
        return None
    return f"Content-Type {ctype[:100]!r} is not application/json"

"""Who may see and do what on the engine's web surfaces.

Three small pieces, each testable on its own:

* ``policy``: a pure function from (route kind, mode, loopback bind,
  ``--dashboard-auth``) to what a request must carry, plus the bind check
  (dev refuses a non-loopback bind unless ``--allow-remote-dev``).
* ``session`` / ``csrf``: an HMAC-signed session cookie (HttpOnly,
  SameSite=Strict) and CSRF tokens bound to it, so a restart keeps people
  logged in and rotating the dashboard token logs everyone out;
  ``revocation`` remembers the ids of logged-out sessions (bounded, in a
  file shared by both servers) so a copied cookie dies with the logout.
* ``ratelimit``: failed logins are limited per client, never globally,
  with an injected clock; ``proxy`` says who the client is (forwarded
  headers only from ``trusted_proxies``) and whether it came over https.
* ``options``: those deployment settings (trusted proxies, public URL,
  the revocation file) as one value for ``WebAuth.build``.

``guard`` ties them to Starlette requests for the dashboard router.
"""

from agentcmd.webauth.loopback import is_loopback_host
from agentcmd.webauth.policy import Need, Route, check_bind, classify, dashboard_locked, requirement

__all__ = ["Need", "Route", "check_bind", "classify", "dashboard_locked", "is_loopback_host", "requirement"]

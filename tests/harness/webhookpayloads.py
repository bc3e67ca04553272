"""Webhook payloads in the shapes GitHub and Linear document, and how they sign them.

GitHub: the ``issues`` event with ``action: "labeled"`` ("Webhook events and
payloads", issues), sent with ``X-GitHub-Event``, ``X-GitHub-Delivery`` (a
GUID) and ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``
("Validating webhook deliveries"). Linear: a data change webhook for an
``Issue`` (``action``, ``type``, ``data``, ``url``, ``createdAt``,
``organizationId``, ``webhookTimestamp`` in ms, ``webhookId``), with
``Linear-Delivery``, ``Linear-Event`` and ``Linear-Signature: <hex HMAC-SHA256>``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from agentcmd.server.webhooksig import sign


def _user(login: str, uid: int) -> dict[str, Any]:
    return {"login": login, "id": uid, "node_id": f"MDQ6VXNlcj{uid}", "avatar_url":
            f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "",
            "url": f"https://api.github.com/users/{login}", "html_url": f"https://github.com/{login}",
            "type": "User", "site_admin": False}


def github_issue_labeled(label: str = "agent", number: int = 1347, title: str = "Found a bug",
                         body: str | None = "I'm having a problem with this.") -> dict[str, Any]:
    """An ``issues`` delivery with ``action: "labeled"`` (GitHub's documented shape, trimmed of URLs)."""
    owner = _user("octocat", 1)
    label_obj = {"id": 208045946, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
                 "url": f"https://api.github.com/repos/octocat/Hello-World/labels/{label}", "name": label,
                 "description": "Work for an agent", "color": "f29513", "default": False}
    return {
        "action": "labeled",
        "issue": {
            "url": f"https://api.github.com/repos/octocat/Hello-World/issues/{number}",
            "repository_url": "https://api.github.com/repos/octocat/Hello-World",
            "html_url": f"https://github.com/octocat/Hello-World/issues/{number}",
            "id": 1, "node_id": "MDU6SXNzdWUx", "number": number, "title": title, "user": owner,
            "labels": [label_obj], "state": "open", "locked": False, "assignee": None, "assignees": [],
            "milestone": None, "comments": 0, "created_at": "2011-04-22T13:33:48Z",
            "updated_at": "2011-04-22T13:33:48Z", "closed_at": None, "author_association": "OWNER",
            "active_lock_reason": None, "body": body,
            "reactions": {"url": f"https://api.github.com/repos/octocat/Hello-World/issues/{number}/reactions",
                          "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0, "confused": 0,
                          "heart": 0, "rocket": 0, "eyes": 0},
            "performed_via_github_app": None, "state_reason": None,
        },
        "label": label_obj,
        "repository": {"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": "Hello-World",
                       "full_name": "octocat/Hello-World", "private": False, "owner": owner,
                       "html_url": "https://github.com/octocat/Hello-World", "description": "This your first repo!",
                       "fork": False, "default_branch": "main"},
        "sender": owner,
    }


def github_headers(secret: str, body: bytes, event: str = "issues", delivery: str | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd",
            "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "292430182", "X-Hub-Signature-256": "sha256=" + sign(secret, body)}


def linear_issue_created(title: str = "Fix the login page", timestamp_ms: int | None = None) -> dict[str, Any]:
    """A Linear ``Issue`` data change webhook, ``action: "create"`` (Linear's documented shape)."""
    now = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return {
        "action": "create",
        "actor": {"id": "2e6eea91-1111-0000-9486-acea0603064d", "type": "user", "name": "Jane Doe",
                  "email": "jane@example.com", "url": "https://linear.app/acme/profiles/jane"},
        "createdAt": "2026-12-04T10:12:44.513Z",
        "data": {"id": "a9bd1e1b-ad0a-4a2b-9e55-4fb1bd23b8f2", "createdAt": "2026-12-04T10:12:44.513Z",
                 "updatedAt": "2026-12-04T10:12:44.513Z", "number": 42, "title": title,
                 "description": "The button does nothing.", "priority": 2, "priorityLabel": "High",
                 "identifier": "ENG-42", "url": "https://linear.app/acme/issue/ENG-42/fix-the-login-page",
                 "teamId": "72b2a2dc-6f4f-4423-9d34-24b5bd10634a",
                 "team": {"id": "72b2a2dc-6f4f-4423-9d34-24b5bd10634a", "key": "ENG", "name": "Engineering"},
                 "state": {"id": "5e6ad4f9-0000-4bd2-a7c4-d7b1c34e0f2c", "name": "Todo", "type": "unstarted",
                           "color": "#e2e2e2"},
                 "labels": [{"id": "c8d3a4e7-2f1b-4d7e-9a3c-1b2c3d4e5f60", "name": "agent", "color": "#5e6ad2"}],
                 "labelIds": ["c8d3a4e7-2f1b-4d7e-9a3c-1b2c3d4e5f60"]},
        "url": "https://linear.app/acme/issue/ENG-42/fix-the-login-page",
        "type": "Issue",
        "organizationId": "b4ef6b2a-0000-4a2f-8b9e-6e2f4c7d1a00",
        "webhookTimestamp": now,
        "webhookId": "000042e3-d123-4980-b49f-8e140eef9329",
    }


def linear_headers(secret: str, body: bytes, delivery: str | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Linear-Webhook",
            "Linear-Delivery": delivery or str(uuid.uuid4()), "Linear-Event": "Issue",
            "Linear-Signature": sign(secret, body)}


def encode(payload: dict[str, Any]) -> bytes:
    """As a sender would: compact JSON, UTF-8 (the signature covers exactly these bytes)."""
    return json.dumps(payload, separators=(",", ":")).encode()

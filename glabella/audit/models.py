"""Append-only audit events, chained by hash.

Each event stores the hash of the one before it (``prev_hash``) and its own hash over
its content and that previous hash, so removing, reordering or editing any event breaks
the chain from there on; ``glabella audit-verify`` names the first broken link. The
database itself refuses UPDATE and DELETE on the table (triggers in migration 0002).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models

GENESIS_HASH = "0" * 64


class Action(models.TextChoices):
    VIEW = "view", "viewed"
    CREATE = "create", "created"
    UPDATE = "update", "updated"
    SIGN = "sign", "signed"
    EXPORT = "export", "exported"
    LOGIN = "login", "signed in"
    LOGIN_FAILED = "login_failed", "failed to sign in"
    LOGOUT = "logout", "signed out"
    SETUP = "setup", "set up"


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=254)
    action = models.CharField(max_length=20, choices=Action.choices)
    object_type = models.CharField(max_length=50, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=200, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["organization", "-seq"], name="audit_org_seq"),
            models.Index(fields=["organization", "object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor_label} {self.action} {self.object_type} {self.object_id}"

    def payload(self) -> dict[str, Any]:
        """The fields the hash covers, in a stable form."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(timespec="microseconds"),
            "organization": self.organization_id,
            "actor": self.actor_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_label": self.object_label,
            "ip": self.ip,
            "request_id": self.request_id,
            "detail": self.detail,
        }

    def compute_hash(self) -> str:
        return hashlib.sha256(f"{self.prev_hash}|{_body(self.payload())}".encode()).hexdigest()

    def body_before_seq(self) -> str:
        """The hashed body up to its sequence number, for a database that numbers the event and
        finishes the hash itself: ``compute_hash()`` is the SHA-256 of
        ``prev_hash + "|" + before + str(seq) + "}"``.

        ``seq`` is the payload's last key in sorted order, and the body is ASCII (``json.dumps``
        escapes everything else), so its bytes are the same in any database encoding.
        """
        body = _body({**self.payload(), "seq": 0})
        if not body.endswith(_SEQ_LAST):
            raise AssertionError("seq must be the hashed payload's last key")
        return body[: -len("0}")]


#: How the hashed body ends: the sequence number is its last key.
_SEQ_LAST = ',"seq":0}'


def _body(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


class ChainHead(models.Model):
    """One row: the last event's sequence number and hash. Writers lock it to append.

    ``prev_hash`` is the hash the last event chained onto, when one statement appended it
    (PostgreSQL, ``audit.services``): that statement's ``RETURNING`` reads the head's new values
    only, so the head keeps the old hash for it.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    prev_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit chain head #{self.seq}"

"""Signed checkpoints: (position, head hash) signed with Ed25519, kept by an auditor
outside the database and later checked against the chain."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.audit.chain import Verdict, verify


def generate_key(private_path: Path) -> Path:
    """Writes a new private key (0600) and its public key beside it; returns the latter."""
    key = Ed25519PrivateKey.generate()
    private_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private_path.chmod(0o600)
    public_path = private_path.with_suffix(".pub")
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public_path


def _payload(position: int, head_hash: str, signed_at: str) -> bytes:
    return json.dumps(
        {"position": position, "head_hash": head_hash, "signed_at": signed_at}, sort_keys=True, separators=(",", ":")
    ).encode()


def sign(verdict: Verdict, private_path: Path, signed_at: datetime) -> dict[str, Any]:
    if not verdict.ok:
        raise ValueError(f"the chain is broken at position {verdict.failed_at}; nothing to vouch for")
    key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    stamp = signed_at.isoformat()
    signature = key.sign(_payload(verdict.head_position, verdict.head_hash, stamp))
    return {
        "position": verdict.head_position,
        "head_hash": verdict.head_hash,
        "signed_at": stamp,
        "signature": base64.b64encode(signature).decode(),
    }


def check(conn: Any, schema: str, checkpoint: dict[str, Any], public_path: Path) -> tuple[bool, str]:
    """Is the checkpoint genuine, and does today's chain still lead to its head?"""
    key = serialization.load_pem_public_key(public_path.read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    try:
        key.verify(
            base64.b64decode(checkpoint["signature"]),
            _payload(checkpoint["position"], checkpoint["head_hash"], checkpoint["signed_at"]),
        )
    except (InvalidSignature, KeyError, ValueError):
        return False, "the checkpoint's signature does not match: it was not made with this key or was edited"
    verdict = verify(conn, schema, upto=checkpoint["position"])
    if not verdict.ok:
        return False, f"the chain breaks at position {verdict.failed_at}: {verdict.problem}"
    if (verdict.head_position, verdict.head_hash) != (checkpoint["position"], checkpoint["head_hash"]):
        return False, (
            f"the chain no longer leads to the checkpoint's head at position {checkpoint['position']} "
            "(history before it was rewritten and re-chained)"
        )
    return True, f"the chain up to position {checkpoint['position']} matches the checkpoint"

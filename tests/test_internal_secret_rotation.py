"""Rotating OTV_INTERNAL_SECRET without refusing staff requests (deploy/README.md, "Rotating secrets").

The gateway signs each staff request's identity with the internal secret; every service verifies it. Five
Deployments cannot change the secret at one moment: while they roll, a gateway with the new secret calls a
service that still has the old one, and the staff member gets 401. OTV_INTERNAL_SECRET_ACCEPTED is a
second secret a service accepts but never signs with: the new one in the first phase of a rotation, the
old one in the second, unset after it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer

from services.catalog.app import create_app as create_catalog
from services.catalog.config import Settings as CatalogSettings
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, request_target, sign
from tests.conftest import svc_settings

ROOT = Path(__file__).resolve().parents[1]
OLD = "the-internal-secret-before-the-rotation"
NEW = "the-internal-secret-after-the-rotation"
PATH = "/api/v1/admin/locations"


def signed_by(secret: str) -> dict[str, str]:
    identity = StaffIdentity(
        subject="rotation-admin",
        kind=IdentityKind.USER,
        grants=(Grant(role=Role.ADMIN, locations=("*",)),),
        issued_at=datetime.now(UTC),
    )
    return {HEADER: sign(identity, secret, target=request_target("catalog", "GET", PATH))}


async def statuses(**settings: Any) -> dict[str, int]:
    """The catalog's answer to a staff request signed with each secret (and with a third)."""
    app = create_catalog(svc_settings(CatalogSettings, **settings))  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        return {
            name: (await client.get(PATH, headers=signed_by(secret))).status
            for name, secret in (("old", OLD), ("new", NEW), ("other", "a-third-secret-nobody-holds"))
        }


async def test_each_phase_of_a_rotation_accepts_what_the_gateways_of_both_phases_sign() -> None:
    # Before: only the old secret.
    assert await statuses(internal_secret=OLD) == {"old": 200, "new": 401, "other": 401}
    # Phase 1 (every Deployment rolled): services also accept the new one, gateways still sign with the old.
    assert await statuses(internal_secret=OLD, internal_secret_accepted=NEW) == {
        "old": 200,
        "new": 200,
        "other": 401,
    }
    # Phase 2: gateways sign with the new one; a pod of phase 1 or 2 accepts either, so no rollout order
    # between the gateway and the services matters.
    assert await statuses(internal_secret=NEW, internal_secret_accepted=OLD) == {
        "old": 200,
        "new": 200,
        "other": 401,
    }
    # Phase 3: the old secret is gone.
    assert await statuses(internal_secret=NEW) == {"old": 401, "new": 200, "other": 401}


def rotation_section() -> str:
    notes = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    start = notes.index("### 6. Rotating secrets")
    return notes[start : notes.index("\n## ", start)]


def test_the_readme_rotates_every_secret_and_no_longer_says_the_internal_secret_keys_nothing() -> None:
    notes = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    assert "key nothing stored in the database" not in notes
    assert "in all services at once" not in notes
    section = " ".join(rotation_section().split())
    # The internal secret in three phases, with reporting's pseudonym key set first.
    for needed in (
        "OTV_INTERNAL_SECRET_ACCEPTED",
        "OTV_PSEUDONYM_KEY",
        "kubectl -n otv rollout restart deployment -l app.kubernetes.io/part-of=otv",
        "Idempotency-Key",
        "manage links",
    ):
        assert needed in section, needed
    # Never to change, each with its reason; and the passwords with their order.
    for never in ("OTV_MAIL_HASH_KEY", "OTV_MAIL_DOMAIN", "OTV_PSEUDONYM_KEY"):
        assert never in section.split("Never change")[1], never
    for password in ("otv-db-", "userlist.txt", "postgres-init.sql", "OTV_SMTP_PASSWORD", "change_password"):
        assert password in section, password
    # Reporting reads its key from a Secret of its own, if there is one.
    reporting = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "reporting.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in reporting if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    refs = [s["secretRef"] for s in container["envFrom"] if "secretRef" in s]
    assert {"name": "otv-reporting", "optional": True} in refs

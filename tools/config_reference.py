"""The configuration reference, docs/configuration.md, generated from the settings' source.

`python -m tools.config_reference` writes it; `--check` only compares and exits 1 when it is stale
(tests/deploy/test_configuration_reference.py does the same). One table row per OTV_* variable: the
pydantic-settings fields of shared/config.py and services/*/config.py, each service's database password,
and the few variables that tools read directly. A field's explanation is the comment directly above it
(and on its line), else its `Field(description=...)`; a field without either stops the generation, so that
no setting goes undocumented.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import sys
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from services.booking.config import Settings as BookingSettings
from services.catalog.config import Settings as CatalogSettings
from services.gateway.config import Settings as GatewaySettings
from services.notifier.config import Settings as NotifierSettings
from services.reporting.config import Settings as ReportingSettings
from shared.config import CommonSettings
from tools.mailsink import DEFAULT_MAX_MESSAGES

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration.md"
PREFIX = "OTV_"
SERVICES: dict[str, type[CommonSettings]] = {
    "gateway": GatewaySettings,
    "catalog": CatalogSettings,
    "booking": BookingSettings,
    "notifier": NotifierSettings,
    "reporting": ReportingSettings,
}
DEV_SECRET = "development default — set in production"  # noqa: S105 -- the words shown instead of one
# Settings whose default is a public development value (besides any default containing "change-me", which
# OTV_REFUSE_DEV_DEFAULTS refuses): shown as DEV_SECRET, never with their value.
SECRETS = frozenset({"broker_url", "internal_secret", "web_secret", "mail_hash_key", "smtp_password"})

# What an operator must set before production, and why (the first table of the reference).
PRODUCTION: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("OTV_REFUSE_DEV_DEFAULTS",),
        "`true` (the k8s ConfigMap sets it): a process refuses to start while a secret below is still its "
        "development default or a `REPLACE-...` placeholder",
    ),
    (
        ("OTV_INTERNAL_SECRET",),
        "signs the staff identity between the gateway and the services; the same in every process",
    ),
    (("OTV_WEB_SECRET",), "seals the customer pages' state and signs their tokens; 32 characters or more"),
    (
        ("OTV_MAIL_HASH_KEY",),
        "keys the suppression list's address hashes; never change it once mails went out",
    ),
    (("OTV_BROKER_URL",), "RabbitMQ with a user of its own (the default logs in as `guest`)"),
    (tuple(f"OTV_{s.upper()}_DB_PASSWORD" for s in SERVICES), "the password of each service's database role"),
    (("OTV_DB_HOST", "OTV_DB_PORT"), "the database (in a cluster its connection pooler)"),
    (
        ("OTV_DB_SSLMODE", "OTV_DB_SSLROOTCERT"),
        "`verify-full` and the CA file of a database (or pooler) reached over a network: without them the "
        "database's certificate is not checked (deploy/README.md)",
    ),
    (
        ("OTV_PUBLIC_BASE_URL",),
        "the https address customers reach the pages at: the links in mails and calendar files",
    ),
    (
        tuple(f"OTV_{s.upper()}_URLS" for s in SERVICES if s != "gateway"),
        "the gateway's upstreams (the services' addresses in the cluster)",
    ),
    (
        ("OTV_SMTP_HOST", "OTV_SMTP_PORT", "OTV_SMTP_USERNAME", "OTV_SMTP_PASSWORD"),
        "the mail relay (and its login where it needs one)",
    ),
    (
        ("OTV_MAIL_FROM", "OTV_MAIL_DOMAIN"),
        "the sender of every mail and the domain of the Message-IDs and calendar UIDs; never change the "
        "domain once mails went out (calendars match cancellations and new times to their entry by the UID)",
    ),
    (
        ("OTV_PRIVACY_CONTROLLER", "OTV_PRIVACY_CONTACT", "OTV_ACCESSIBILITY_CONTACT"),
        "what the privacy notice and the accessibility statement name (the defaults are examples)",
    ),
    (
        ("OTV_TRUSTED_PROXIES",),
        "the ingress controller's pod network only, never client or office networks; else every customer "
        "counts as the ingress' address (rate limits, lock-out, audit)",
    ),
    (("OTV_FRAME_ANCESTORS",), "the jobcenter's homepage, where it embeds the customer pages (R36)"),
)


@dataclass(frozen=True)
class Row:
    name: str
    default: str
    kind: str
    meaning: str


# Variables read directly (os.environ), not through a settings class: (who reads them, rows).
TOOLS: tuple[tuple[str, tuple[Row, ...]], ...] = (
    (
        "`python -m tools.mailsink`, the local mail sink (development and compose, never production)",
        (
            Row("OTV_SMTP_HOST", "`127.0.0.1`", "text", "Where the sink's SMTP server listens."),
            Row("OTV_SMTP_PORT", "1025", "integer", "The port of the sink's SMTP server."),
            Row(
                "OTV_MAILSINK_HTTP_HOST",
                "`127.0.0.1`",
                "text",
                "Where the web inbox and its JSON API listen.",
            ),
            Row("OTV_MAILSINK_HTTP_PORT", "8025", "integer", "The port of the web inbox and its JSON API."),
            Row(
                "OTV_MAILSINK_MAX_MESSAGES",
                str(DEFAULT_MAX_MESSAGES),
                "integer",
                "The sink keeps this many mails in memory; older ones are dropped.",
            ),
        ),
    ),
    (
        "`deploy/healthcheck.py`, the container image's health check",
        (
            Row(
                "OTV_HEALTH_URL",
                "`http://127.0.0.1:$OTV_PORT/healthz`",
                "text",
                "The URL whose 200 means healthy (the mail sink's container sets its inbox's `/healthz`).",
            ),
            Row(
                "OTV_PORT",
                "8080",
                "integer",
                "The port of the process in the container (the image sets 8080).",
            ),
        ),
    ),
    (
        "`python -m services.gateway create-admin <username>`",
        (
            Row(
                "OTV_ADMIN_PASSWORD",
                "unset",
                "text",
                "The new administrator's password when standard input is a terminal (otherwise it is read "
                "from standard input); unset: asked twice. There is never a default.",
            ),
        ),
    ),
    (
        "`scripts/setup.sh` (`make setup`, `make run`, `make test`)",
        (Row("OTV_SKIP_DEMO", "unset", "any text", "Set: never load the demo data (wins over `make run`)."),),
    ),
)


# --- reading the source -----------------------------------------------------------------------------------
def _comments(text: str) -> tuple[dict[int, str], dict[int, str]]:
    """Comments by line: those alone on their line, and those after code."""
    alone: dict[int, str] = {}
    after_code: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            body = token.string.lstrip("#").strip()
            (after_code if token.line[:col].strip() else alone)[row] = body
    return alone, after_code


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    if text[:1].islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def explanations(cls: type[BaseSettings]) -> dict[str, str]:
    """The explanation of each field declared in `cls`'s own body (not inherited), in source order; empty
    where it has none. A comment that begins with "..." continues the comment of the nearest field above
    that has one (a group such as the bot defence's): the explanation then refers to that field."""
    lines, _ = inspect.getsourcelines(cls)
    text = textwrap.dedent("".join(lines))
    (classdef,) = ast.parse(text).body
    if not isinstance(classdef, ast.ClassDef):
        raise TypeError(f"{cls!r} is not a class statement")
    alone, after_code = _comments(text)
    found: dict[str, str] = {}
    commented: str | None = None  # the nearest field so far with a comment above it
    for stmt in classdef.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        if ast.unparse(stmt.annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        name = stmt.target.id
        above: list[str] = []
        row = stmt.lineno - 1
        while row in alone:
            above.insert(0, alone[row])
            row -= 1
        trailing = [
            after_code[r]
            for r in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
            if r in after_code and not after_code[r].startswith(("noqa", "type:"))
        ]
        parts = [" ".join(above)] if above else []
        parts += trailing
        description = cls.model_fields[name].description
        if not parts and description:
            parts.append(description)
        explanation = " ".join(_sentence(part) for part in parts)
        if explanation.startswith("...") and commented is not None:
            explanation += f" See `{env_name(commented)}`."
        found[name] = explanation
        if above:
            commented = name
    return found


def env_name(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


# --- rendering --------------------------------------------------------------------------------------------
def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_default(name: str, field: FieldInfo) -> str:
    value = field.default
    if field.is_required():
        return "none (required)"
    if isinstance(value, str) and value and (name in SECRETS or "change-me" in value):
        return DEV_SECRET
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    return f"`{value}`" if value else "empty"


_TYPE_NAMES: dict[Any, str] = {bool: "boolean", int: "integer", float: "number", str: "text"}


def render_kind(field: FieldInfo) -> str:
    annotation = field.annotation
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    if typing.get_origin(annotation) is typing.Literal:
        kind = "one of " + ", ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    else:
        kind = _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    limits = []
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            limits.append(f"≥ {_number(meta.ge)}")
        elif isinstance(meta, annotated_types.Gt):
            limits.append(f"> {_number(meta.gt)}")
        elif isinstance(meta, annotated_types.Le):
            limits.append(f"≤ {_number(meta.le)}")
        elif isinstance(meta, annotated_types.Lt):
            limits.append(f"< {_number(meta.lt)}")
        elif isinstance(meta, annotated_types.MinLen):
            limits.append(f"of ≥ {meta.min_length} characters")
        elif isinstance(meta, annotated_types.MaxLen):
            limits.append(f"of ≤ {meta.max_length} characters")
        elif getattr(meta, "pattern", None):
            limits.append(f"matching `{meta.pattern}`")
    if limits:
        kind = f"{kind} {', '.join(limits)}"
    return f"{kind} or unset" if optional else kind


def settings_rows(cls: type[CommonSettings], *, base: dict[str, str] | None = None) -> list[Row]:
    """A row per field declared in `cls` itself; a redeclared field without a comment keeps the base's."""
    rows = []
    missing = []
    for name, meaning in explanations(cls).items():
        meaning = meaning or (base or {}).get(name, "")
        if not meaning:
            missing.append(name)
        field = cls.model_fields[name]
        rows.append(Row(env_name(name), render_default(name, field), render_kind(field), meaning))
    if missing:
        where = inspect.getsourcefile(cls)
        raise ValueError(f"{where}: write a comment above {', '.join(missing)} (tools/config_reference.py)")
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> Iterator[str]:
    header = list(header)
    yield "| " + " | ".join(header) + " |"
    yield "|" + "---|" * len(header)
    for row in rows:
        yield "| " + " | ".join(_cell(c) for c in row) + " |"


def _settings_table(rows: list[Row]) -> Iterator[str]:
    yield from _table(
        ("variable", "default", "type", "meaning"),
        ((f"`{r.name}`", r.default, r.kind, r.meaning) for r in rows),
    )


def sections() -> list[tuple[str, str, list[Row]]]:
    """(heading, introduction, rows) of every section after the production table."""
    shared_meaning = explanations(CommonSettings)
    # A shared field that every service declares again with its own default (the port).
    per_service = {env_name(f) for f in set.intersection(*(set(explanations(c)) for c in SERVICES.values()))}
    shared_rows = [
        Row(r.name, "per service", r.kind, r.meaning) if r.name in per_service else r
        for r in settings_rows(CommonSettings)
    ]
    result = [
        (
            "Shared by all services",
            "`shared/config.py` (`CommonSettings`): every service reads these, and so do the set-up's "
            "`python -m shared.migrate` (the database settings and every service's password below) and "
            "`python -m shared.topology` (the broker settings).",
            shared_rows,
        )
    ]
    for service, cls in SERVICES.items():
        rows = settings_rows(cls, base=shared_meaning)
        rows.append(
            Row(
                f"OTV_{service.upper()}_DB_PASSWORD",
                DEV_SECRET,
                "text",
                f"The password of the database role `otv_{service}` (the development default is the role's "
                "name); the migrations read it too.",
            )
        )
        result.append(
            (
                service,
                f"`python -m services.{service}` (`services/{service}/config.py`), besides the shared ones.",
                rows,
            )
        )
    return result


def render() -> str:
    body = sections()
    read_by: dict[str, list[str]] = {}
    for heading, _, section_rows in body:
        for row in section_rows:
            read_by.setdefault(row.name, []).append(
                "all services" if heading.startswith("Shared") else heading
            )
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `.venv/bin/python -m tools.config_reference` from the settings' source (the",
        "     comments above the fields); do not edit by hand. tests/deploy checks that it is current. -->",
        "",
        "Every OTV process reads environment variables with the prefix `OTV_`; the defaults work on a",
        "developer's machine. Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`. In Kubernetes",
        "the settings are in `deploy/k8s/settings/otv.env` (the ConfigMap) and the secrets in Secrets",
        "(`deploy/README.md`).",
        "",
        "## Must set in production",
        "",
    ]
    production = []
    for names, why in PRODUCTION:
        unknown = [n for n in names if n not in read_by]
        if unknown:
            raise ValueError(f"PRODUCTION names what no service reads: {unknown}")
        readers = dict.fromkeys(r for n in names for r in read_by[n])
        production.append((", ".join(f"`{n}`" for n in names), ", ".join(readers), why))
    out += _table(("variable", "read by", "why"), production)
    for heading, introduction, section_rows in body:
        out += ["", f"## {heading}", "", introduction, "", *_settings_table(section_rows)]
    out += [
        "",
        "## Tools",
        "",
        "Read directly from the environment, not through a settings class.",
    ]
    for reader, tool_rows in TOOLS:
        out += ["", f"{reader}:", "", *_settings_table(list(tool_rows))]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.config_reference", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check that the file is current")
    args = parser.parse_args(argv)
    text = render()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run .venv/bin/python -m tools.config_reference")
            return 1
        return 0
    if current != text:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

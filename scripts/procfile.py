#!/usr/bin/env python3
"""Writes the Procfile that `make run` hands to honcho: REPLICAS processes of every service.

    python scripts/procfile.py REPLICAS [-o var/Procfile.run] [--base-port 8080]

With REPLICAS=1 the result is the repository's Procfile (one process each, on its usual port). Each
service's line names its port (OTV_PORT), so that an OTV_PORT in the caller's environment moves only the
gateway, the one process without it (`OTV_PORT=9000 make run`). With more,
replica i (1-based) of a service listens on its usual port + 100 * (i - 1) (catalog 8081, 8181, ...), the
gateway is told every replica's URL (OTV_<SERVICE>_URLS) and balances across them, and the gateway
processes all listen on the one public port with SO_REUSEPORT (OTV_REUSE_PORT), the kernel spreading the
connections. The mail sink runs once. Background work needs nothing here: the outbox relay, the mail
sender and the scheduled jobs take their rows with SKIP LOCKED or an advisory lock, so each piece of work
is done once however many replicas run.

--base-port moves everything (the tests run a second copy beside a `make run`): the gateway on it, the
services on base + 1 ... base + 4; --smtp-port and --mail-http-port move the mail sink.

Standalone on purpose (no import of the project): it runs before anything else, from any interpreter.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

PYTHON = ".venv/bin/python"
GATEWAY_PORT = 8080
# Each service's offset from the gateway's port: its usual port (services/<name>/config.py) is 8080 + it.
SERVICE_OFFSETS = {"catalog": 1, "booking": 2, "reporting": 3, "notifier": 4}
# Who links to the public address (manage links, "book again" links in mails).
USES_PUBLIC_BASE_URL = ("gateway", "booking", "notifier")
REPLICA_PORT_STEP = 100
MAX_REPLICAS = 9  # replica 10 of the notifier would collide with the next thousand's ports
SMTP_PORT = 1025
MAIL_HTTP_PORT = 8025


def replica_name(service: str, index: int, replicas: int) -> str:
    return service if replicas == 1 else f"{service}-{index}"


def service_port(service: str, index: int, base_port: int) -> int:
    return base_port + SERVICE_OFFSETS[service] + REPLICA_PORT_STEP * (index - 1)


def line(name: str, env: dict[str, str], argv: list[str]) -> str:
    words = [f"{key}={shlex.quote(value)}" for key, value in env.items()] + [shlex.quote(a) for a in argv]
    return f"{name}: {' '.join(words)}"


def processes(
    replicas: int,
    *,
    base_port: int = GATEWAY_PORT,
    smtp_port: int = SMTP_PORT,
    mail_http_port: int = MAIL_HTTP_PORT,
    python: str = PYTHON,
) -> list[tuple[str, dict[str, str], list[str]]]:
    """(name, environment, argv) of every process, gateway first, mail sink last."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"REPLICAS must be between 1 and {MAX_REPLICAS}, not {replicas}")
    moved = base_port != GATEWAY_PORT
    public_url = f"http://127.0.0.1:{base_port}"
    result: list[tuple[str, dict[str, str], list[str]]] = []

    gateway_env: dict[str, str] = {}
    if moved:
        gateway_env["OTV_PORT"] = str(base_port)
    if replicas > 1:
        gateway_env["OTV_REUSE_PORT"] = "true"
    if replicas > 1 or moved:
        for service in SERVICE_OFFSETS:
            urls = [f"http://127.0.0.1:{service_port(service, i, base_port)}" for i in range(1, replicas + 1)]
            gateway_env[f"OTV_{service.upper()}_URLS"] = ",".join(urls)
    if moved:
        gateway_env["OTV_PUBLIC_BASE_URL"] = public_url
    for i in range(1, replicas + 1):
        result.append(
            (replica_name("gateway", i, replicas), dict(gateway_env), [python, "-m", "services.gateway"])
        )

    for service in ("catalog", "booking", "notifier", "reporting"):
        for i in range(1, replicas + 1):
            # Always named, the usual port too: honcho hands the caller's environment to every process, and
            # `OTV_PORT=9000 make run` is meant for the gateway (the one public port), not for all five.
            env: dict[str, str] = {"OTV_PORT": str(service_port(service, i, base_port))}
            if moved and service in USES_PUBLIC_BASE_URL:
                env["OTV_PUBLIC_BASE_URL"] = public_url
            if service == "notifier" and smtp_port != SMTP_PORT:
                env["OTV_SMTP_PORT"] = str(smtp_port)
            result.append((replica_name(service, i, replicas), env, [python, "-m", f"services.{service}"]))

    sink_env: dict[str, str] = {}
    if smtp_port != SMTP_PORT:
        sink_env["OTV_SMTP_PORT"] = str(smtp_port)
    if mail_http_port != MAIL_HTTP_PORT:
        sink_env["OTV_MAILSINK_HTTP_PORT"] = str(mail_http_port)
    result.append(("mailsink", sink_env, [python, "-m", "tools.mailsink"]))
    return result


def render(
    replicas: int,
    *,
    base_port: int = GATEWAY_PORT,
    smtp_port: int = SMTP_PORT,
    mail_http_port: int = MAIL_HTTP_PORT,
    python: str = PYTHON,
) -> str:
    listed = processes(
        replicas, base_port=base_port, smtp_port=smtp_port, mail_http_port=mail_http_port, python=python
    )
    return "".join(line(name, env, argv) + "\n" for name, env, argv in listed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("replicas", type=int, help=f"processes of each service (1 to {MAX_REPLICAS})")
    parser.add_argument("-o", "--output", type=Path, help="write here (default: print)")
    parser.add_argument("--base-port", type=int, default=GATEWAY_PORT)
    parser.add_argument("--smtp-port", type=int, default=SMTP_PORT)
    parser.add_argument("--mail-http-port", type=int, default=MAIL_HTTP_PORT)
    parser.add_argument("--python", default=PYTHON, help="interpreter of the services")
    args = parser.parse_args(argv)
    try:
        text = render(
            args.replicas,
            base_port=args.base_port,
            smtp_port=args.smtp_port,
            mail_http_port=args.mail_http_port,
            python=args.python,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

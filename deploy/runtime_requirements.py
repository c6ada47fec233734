#!/usr/bin/env python3
"""Derives deploy/requirements.runtime.txt from requirements.lock: the pinned lines of the packages the
services need at run time (the [project] dependencies of pyproject.toml and everything they pull in), and
none of the test and development tools.

    .venv/bin/python deploy/runtime_requirements.py > deploy/requirements.runtime.txt

It reads the dependency metadata of the packages installed in the running interpreter (the .venv that
scripts/setup.sh made from the lock), for Linux and this Python (the image's python:3.11-slim). The tests
(tests/deploy/) check that the file is what this prints, so a changed lock or a new dependency cannot be
forgotten here.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
HEADER = (
    "# The runtime part of requirements.lock, for the container image (deploy/Dockerfile); same pins.\n"
    "# Generated: .venv/bin/python deploy/runtime_requirements.py > deploy/requirements.runtime.txt\n"
)


def direct_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


def applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    environment: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""}))


def closure(roots: list[Requirement]) -> set[str]:
    """Canonical names of the roots and of everything they require (with their extras), as installed."""
    seen: dict[str, set[str]] = {}
    # (requirement, extras of the package that asked for it)
    todo: list[tuple[Requirement, set[str]]] = [(r, set()) for r in roots]
    while todo:
        requirement, asking_extras = todo.pop()
        if not applies(requirement, asking_extras):
            continue
        name = canonicalize_name(requirement.name)
        wanted = set(requirement.extras)
        if name in seen and wanted <= seen[name]:
            continue
        seen[name] = seen.get(name, set()) | wanted
        for spec in metadata.requires(requirement.name) or []:
            todo.append((Requirement(spec), seen[name]))
    return set(seen)


def runtime_lines() -> list[str]:
    names = closure(direct_dependencies())
    lines = []
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==", line)
        if match and canonicalize_name(match.group(1)) in names:
            lines.append(line)
    return lines


def render() -> str:
    return HEADER + "".join(f"{line}\n" for line in runtime_lines())


if __name__ == "__main__":
    sys.stdout.write(render())

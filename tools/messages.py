"""The gettext templates of the customer pages (R43), extracted from their code and templates.

``python -m tools.messages`` (``make messages``) writes ``translations/<domain>.pot`` of every package below,
as ``pybabel extract -F <package>/babel.cfg`` does; ``--check`` only says which template lacks a text of the
sources or holds one they no longer use, and exits with 1 (tests/web/test_web_catalogues.py fails then too).
A template whose messages and places did not change is left alone, so that its creation date makes no diff.

After a change, bring the catalogues up to date with the new template and translate what is new, e.g.
``pybabel update -i services/gateway/web/translations/messages.pot -d services/gateway/web/translations
--no-fuzzy-matching`` (or by hand: the catalogues need no locations).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = ROOT / "services" / "gateway"
# package -> its catalogue domain: the pages' own, and the waiting list's merged into them.
PACKAGES: dict[Path, str] = {GATEWAY / "web": "messages", GATEWAY / "web_waiting": "waiting"}
HEADER = "# Texts of the customer pages (R43); `make messages` writes this file.\n#"


def template_of(package: Path) -> Path:
    return package / "translations" / f"{PACKAGES[package]}.pot"


def extract(package: Path) -> Catalog:
    """Every message of a package's code and templates, as its babel.cfg says where to look."""
    with (package / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]  # Babel's frontend is unannotated
    catalog = Catalog(project="OTV customer pages", charset="utf-8", header_comment=HEADER)
    where = package.relative_to(ROOT)
    for filename, line, message, comments, context in extract_from_dir(
        str(package), method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        catalog.add(
            message, None, [((where / filename).as_posix(), line)], auto_comments=comments, context=context
        )
    return catalog


def message_ids(catalog: Catalog) -> set[tuple[str, ...]]:
    """The ids of a catalogue, a plural message as (singular, plural)."""
    return {(m.id,) if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


def read_template(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def _rendered(catalog: Catalog, *, omit_header: bool = False) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=76, omit_header=omit_header)
    return out.getvalue()


def differences(package: Path) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """The ids the sources use that the template lacks, and the ids it holds that no source uses any more.
    Moved lines alone do not count: every change of the code would otherwise need a new template."""
    path = template_of(package)
    wanted = message_ids(extract(package))
    held = message_ids(read_template(path)) if path.exists() else set()
    return wanted - held, held - wanted


def is_current(package: Path) -> bool:
    """The template holds what the sources say, in the same order and places (its header aside: the date
    and Babel's version change without any text changing)."""
    path = template_of(package)
    found = read_template(path) if path.exists() else Catalog()
    return _rendered(found, omit_header=True) == _rendered(extract(package), omit_header=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.messages", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale templates (exit 1)")
    args = parser.parse_args(argv)
    stale = [package for package in PACKAGES if any(differences(package))]
    if args.check:
        for package in stale:
            print(f"stale: {template_of(package).relative_to(ROOT)}")
        return 1 if stale else 0
    for package in PACKAGES:
        if not is_current(package):  # new texts, or only moved ones: the places help the translators
            template_of(package).write_bytes(_rendered(extract(package)))
            print(f"written: {template_of(package).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

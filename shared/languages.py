"""The customer's language (R43): German, Leichte Sprache and English are built in; further languages are
content, not code.

A language is a BCP 47 tag (`de`, `de-x-ls`, `en`, `tr`, `pt-BR`). The gateway offers every language it
has a page catalogue for; booking accepts any well-formed tag and keeps it with the appointment or wish.
Whatever has no text in that language (a mail, a concern's name, a date format) falls back along the tag
(`pt-BR` -> `pt`, `de-x-ls` -> `de`) and then to German: the jobcenter's official language (§ 19 SGB X),
and the one language every text is guaranteed in (the catalog requires it, every mail text has it), so a
mail is never half in one language and half in another.

Events carry the tag in `language_tag` and, in `language`, the nearest of the three built-in languages
(`nearest_built_in`): a consumer that knows only those (an older release during a rolling update) reads
a value it accepts and writes in the language a newer one falls back to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated

from babel import Locale, UnknownLocaleError
from pydantic import Field

from shared.events.appointment import Language

FALLBACK = Language.DE.value
# RFC 5646 recommends that implementations keep at least 35 characters of a tag; ours are far shorter.
MAX_TAG_LENGTH = 35
# A well-formed tag after RFC 5646 (`langtag`), without the rarely used extended language subtags and
# the irregular grandfathered tags: language, script, region, variants, extensions, private use.
TAG_PATTERN = (
    r"^[A-Za-z]{2,3}"
    r"(-[A-Za-z]{4})?"
    r"(-([A-Za-z]{2}|[0-9]{3}))?"
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
    r"(-[0-9A-WYZa-wyz](-[A-Za-z0-9]{2,8})+)*"
    r"(-[Xx](-[A-Za-z0-9]{1,8})+)?$"
)
_TAG = re.compile(TAG_PATTERN)

LanguageTag = Annotated[
    str,
    Field(
        min_length=2,
        max_length=MAX_TAG_LENGTH,
        pattern=TAG_PATTERN,
        description="The customer's language, a BCP 47 tag: de (default), de-x-ls (Leichte Sprache), en, "
        "or any further language the pages offer; texts the system lacks in it come in German.",
    ),
]

# Dates as the built-in languages write them: British English ("Monday, 7 December 2026").
_BUILT_IN_LOCALES = {"de": "de_DE", "de-x-ls": "de_DE", "en": "en_GB"}


def is_well_formed(tag: str) -> bool:
    return len(tag) <= MAX_TAG_LENGTH and _TAG.fullmatch(tag) is not None


def lookup(tag: str) -> list[str]:
    """The tags to try for a text in `tag`, most specific first (RFC 4647 lookup: `zh-Hant-TW`,
    `zh-Hant`, `zh`), ending with German."""
    chain: list[str] = []
    subtags = tag.split("-") if tag else []
    while subtags:
        chain.append("-".join(subtags))
        subtags.pop()
        while subtags and len(subtags[-1]) == 1:  # a singleton (`x`, `u`) never ends a tag
            subtags.pop()
    if FALLBACK not in chain:
        chain.append(FALLBACK)
    return chain


def pick(tag: str, available: Iterable[str]) -> str:
    """The language of `available` to write in for a customer of `tag` (case-insensitive, as tags are);
    German when none fits."""
    have = {language.lower(): language for language in available}
    for candidate in lookup(tag):
        if candidate.lower() in have:
            return have[candidate.lower()]
    return FALLBACK


def nearest_built_in(tag: str) -> Language:
    """The built-in language an event's `language` names for a customer of `tag`."""
    return Language(pick(tag, (language.value for language in Language)))


@lru_cache(maxsize=256)
def babel_locale(tag: str) -> str:
    """The Babel locale that formats dates for `tag`: the built-in languages' own, else the most specific
    one Babel knows along the tag, else German."""
    for candidate in lookup(tag):
        if candidate in _BUILT_IN_LOCALES:
            return _BUILT_IN_LOCALES[candidate]
        try:
            return str(Locale.parse(candidate, sep="-"))
        except (ValueError, UnknownLocaleError):
            continue
    return _BUILT_IN_LOCALES[FALLBACK]

"""Languages of the customer pages (R43): Babel message catalogues, compiled in memory at start-up.

Every text of the pages is in `translations/<language>/LC_MESSAGES/messages.po` (the message ids are
English). A language is content, not code: a new folder with a complete catalogue is a new language,
offered in the switcher under the name its catalogue gives for `LANGUAGE_NAME`, and customers book in it
(`shared/languages.py`: what has no text in it comes in German). The folder's name is the language's
BCP 47 tag. Beside the built-in folder, `OTV_TRANSLATIONS_DIR` may name a folder of further catalogues
(mounted into the pod, no new image needed); one there for a built-in language replaces that one.
German is the default.

The language of a request comes from `?lang=` (carried in every link, so that it also survives in an
iframe where cookies are blocked), then the `otv_lang` cookie, then German.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from shared.languages import babel_locale, is_well_formed

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
DEFAULT_LANGUAGE = "de"
LANGUAGE_COOKIE = "otv_lang"
LANGUAGE_PARAM = "lang"


def N_(message: str) -> str:  # gettext's conventional name for "extract, translate later"
    return message


# Each catalogue translates this id into its own name, as shown in the language switcher.
LANGUAGE_NAME = N_("language-name")
# The order of the switcher; languages found beyond these follow alphabetically.
PREFERRED_ORDER = ("de", "de-x-ls", "en")


@dataclass(frozen=True)
class Language:
    code: str  # as in <html lang>, the `language` of the booking API and the `lang` parameter
    name: str  # in the language itself
    translations: NullTranslations


def compile_catalogue(po_file: Path, language: str, domain: str | None = None) -> Translations:
    """A catalogue compiled in memory (no binary .mo file is built or committed)."""
    with po_file.open("rb") as handle:
        # The locale's plural rules apply where the catalogue's header names none.
        catalog = read_po(handle, locale=babel_locale(language))
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out; empty ones fall back to the id
    compiled.seek(0)
    return Translations(compiled, domain=domain)


def catalogues(name: str, directory: Path, extra: Path | None = None) -> dict[str, Path]:
    """The catalogues `<language>/LC_MESSAGES/<name>` by language: the built-in folder's, then the extra
    folder's (which replace built-in ones of the same language)."""
    found: dict[str, Path] = {}
    for folder in (directory, extra):
        if folder is None:
            continue
        if not folder.is_dir():
            raise RuntimeError(f"the translations folder {folder} does not exist")
        for po_file in sorted(folder.glob(f"*/LC_MESSAGES/{name}")):
            code = po_file.parts[-3]
            if not is_well_formed(code):
                # The folder's name is the language customers book in: booking accepts BCP 47 tags only.
                raise RuntimeError(f"{po_file}: {code!r} is no BCP 47 language tag (such as tr or pt-BR)")
            found[code] = po_file
    return found


def load_languages(directory: Path = TRANSLATIONS_DIR, *, extra: Path | None = None) -> dict[str, Language]:
    found: dict[str, Language] = {}
    for code, po_file in catalogues("messages.po", directory, extra).items():
        translations = compile_catalogue(po_file, code)
        name = translations.gettext(LANGUAGE_NAME)
        found[code] = Language(code, code if name == LANGUAGE_NAME else name, translations)
    if DEFAULT_LANGUAGE not in found:
        raise RuntimeError(f"no catalogue for the default language {DEFAULT_LANGUAGE!r} in {directory}")
    order = [c for c in PREFERRED_ORDER if c in found] + sorted(c for c in found if c not in PREFERRED_ORDER)
    return {code: found[code] for code in order}


LANGUAGES = web.AppKey("web_languages", dict)


def offered_languages(app: web.Application) -> list[str]:
    """The tags of the languages the customer pages offer (the built-in ones and those of
    `OTV_TRANSLATIONS_DIR`), in the switcher's order: also what staff book a customer in (R43)."""
    languages: dict[str, Language] = app[LANGUAGES]
    return list(languages)


_current: contextvars.ContextVar[Language | None] = contextvars.ContextVar("web_language", default=None)


def asked_language(request: web.Request) -> str | None:
    """The language the address asks for; none when it names two (`?lang=en&lang=de`, refused as a
    repeated parameter by shared.web): the refusal's page is then in the remembered language."""
    asked = request.query.getall(LANGUAGE_PARAM, [])
    return asked[0] if len(asked) == 1 else None


def choose_language(request: web.Request) -> str:
    languages: dict[str, Language] = request.app[LANGUAGES]
    for candidate in (asked_language(request), request.cookies.get(LANGUAGE_COOKIE)):
        if candidate in languages:
            return candidate
    return DEFAULT_LANGUAGE


@contextmanager
def using(language: Language) -> Iterator[None]:
    token = _current.set(language)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Language | None:
    return _current.get()


def gettext(message: str) -> str:
    language = _current.get()
    return language.translations.gettext(message) if language else message


def ngettext(singular: str, plural: str, n: int) -> str:
    language = _current.get()
    if language is None:
        return singular if n == 1 else plural
    return language.translations.ngettext(singular, plural, n)


def _(message: str, **values: object) -> str:
    """Translate, then fill `%(name)s` placeholders (as the templates' newstyle gettext does)."""
    text = gettext(message)
    return text % values if values else text


@web.middleware
async def language_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every request runs in its language; an explicit `?lang=` is remembered in a cookie."""
    languages: dict[str, Language] = request.app[LANGUAGES]
    code = choose_language(request)
    with using(languages[code]):
        response = await handler(request)
    chosen = asked_language(request)
    is_page = response.content_type == "text/html"
    if (
        is_page
        and chosen in languages
        and request.cookies.get(LANGUAGE_COOKIE) != chosen
        and not response.prepared
    ):
        response.set_cookie(
            LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600, path="/", samesite="Lax", httponly=True
        )
    return response

"""Every text of the customer pages is in the message catalogues, and every catalogue translates all of it
(R43): German, Leichte Sprache and English; a language is a folder with a catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from services.catalog import demo_data
from services.catalog.texts import FINDER_MESSAGES
from services.gateway.web.i18n import LANGUAGE_NAME, TRANSLATIONS_DIR, load_languages
from services.gateway.web_waiting import TRANSLATIONS as WAITING_TRANSLATIONS
from tools import messages

WEB = Path(TRANSLATIONS_DIR).parent
WAITING = WAITING_TRANSLATIONS.parent


def source_messages(package: Path = WEB) -> set[str]:
    """The ids of a package's texts (a plural one by its singular), as `make messages` extracts them."""
    return {ids[0] for ids in messages.message_ids(messages.extract(package))}


def translated(po_file: Path) -> set[str]:
    """The ids a catalogue translates (a plural one in every form), fuzzy ones not counted."""
    with po_file.open("rb") as handle:
        catalog: Catalog = read_po(handle)
    return {
        str(m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and not m.fuzzy and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }


@pytest.mark.req("R43")
@pytest.mark.parametrize("package", list(messages.PACKAGES), ids=lambda package: package.name)
def test_the_gettext_template_holds_every_text_of_the_pages_and_no_other(package: Path) -> None:
    """A text added to the code but not to the template never reaches the translators' tools; `make
    messages` writes the template afresh. (Lines that merely moved do not make it stale.)"""
    template = messages.template_of(package)
    assert template.exists(), f"{template} is missing: run `make messages`"
    assert len(messages.message_ids(messages.extract(package))) > 40
    missing, leftover = messages.differences(package)
    assert not missing, f"{template.name} lacks {sorted(missing)[:10]}: run `make messages`"
    assert not leftover, f"{template.name} still has {sorted(leftover)[:10]}: run `make messages`"


@pytest.mark.req("R43")
def test_every_language_translates_every_text_of_the_pages() -> None:
    wanted = source_messages()
    assert len(wanted) > 150
    for po_file in sorted(TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po")):
        missing = sorted(wanted - translated(po_file))
        assert not missing, f"{po_file.parts[-3]} lacks {missing[:10]}"


@pytest.mark.req("R43")
@pytest.mark.req("R45")
def test_every_language_translates_every_text_of_the_waiting_list_pages() -> None:
    """The waiting list's pages use the pages' catalogue and their own (merged into it): together they
    translate every text, English too (its ids being English is no reason to leave a text to chance), and
    the waiting list's own ids are its own, so that the merge overrides no text of the pages."""
    wanted = source_messages(WAITING)
    assert len(wanted) > 50
    languages = sorted(path.parts[-3] for path in TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po"))
    for language in languages:
        own = WAITING_TRANSLATIONS / language / "LC_MESSAGES" / "waiting.po"
        assert own.exists(), f"no waiting-list catalogue for {language}"
        pages = TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
        missing = sorted(wanted - translated(own) - translated(pages))
        assert not missing, f"{language} lacks {missing[:10]}"
        with own.open("rb") as handle:
            ids = {str(m.id if isinstance(m.id, str) else m.id[0]) for m in read_po(handle) if m.id}
        assert not ids & source_messages(WEB), (language, sorted(ids & source_messages(WEB)))
        assert not ids - wanted, f"{language} still has {sorted(ids - wanted)[:10]}"


@pytest.mark.req("R43")
def test_the_languages_are_found_in_the_translations_folder_with_their_own_names() -> None:
    languages = load_languages()
    assert list(languages) == ["de", "de-x-ls", "en"]
    assert [language.name for language in languages.values()] == ["Deutsch", "Leichte Sprache", "English"]
    assert languages["en"].translations.gettext("Next") == "Next"
    assert languages["de"].translations.gettext("Next") == "Weiter"
    assert languages["de-x-ls"].translations.gettext(LANGUAGE_NAME) == "Leichte Sprache"


def _catalogue(folder: Path, language: str, name: str) -> None:
    target = folder / language / "LC_MESSAGES" / "messages.po"
    target.parent.mkdir(parents=True)
    target.write_text(f'msgid ""\nmsgstr ""\n\nmsgid "{LANGUAGE_NAME}"\nmsgstr "{name}"\n', encoding="utf-8")


@pytest.mark.req("R43")
def test_a_folder_of_further_catalogues_adds_languages_after_the_built_in_ones(tmp_path: Path) -> None:
    """`OTV_TRANSLATIONS_DIR`: the web team adds a language without a new image; a catalogue there for a
    built-in language replaces it."""
    _catalogue(tmp_path, "tr", "Türkçe")
    _catalogue(tmp_path, "pt-BR", "Português (Brasil)")
    _catalogue(tmp_path, "en", "English (edited)")
    languages = load_languages(extra=tmp_path)
    assert list(languages) == ["de", "de-x-ls", "en", "pt-BR", "tr"]
    assert languages["tr"].name == "Türkçe"
    assert languages["en"].name == "English (edited)"
    assert languages["tr"].translations.gettext("Next") == "Next"  # untranslated: the English id


@pytest.mark.req("R43")
def test_a_further_catalogue_not_named_by_a_language_tag_stops_the_start(tmp_path: Path) -> None:
    """Its name is the language customers book in: booking takes BCP 47 tags only, so a folder named
    otherwise would offer a language nobody can book in. The gateway says so when it starts."""
    _catalogue(tmp_path, "Türkçe", "Türkçe")
    with pytest.raises(RuntimeError, match="no BCP 47 language tag"):
        load_languages(extra=tmp_path)
    with pytest.raises(RuntimeError, match="does not exist"):
        load_languages(extra=tmp_path / "missing")


@pytest.mark.req("R43")
def test_english_times_are_on_the_24_hour_clock_without_o_clock() -> None:
    """ "14:00 o'clock" is not English: the German "Uhr" after a time has no English counterpart. Every
    English catalogue of the pages (the pages' own and the waiting list's) drops it."""
    catalogues = [TRANSLATIONS_DIR / "en" / "LC_MESSAGES" / "messages.po"]
    catalogues += sorted(WEB.parent.glob("*/translations/en/LC_MESSAGES/*.po"))
    assert len(catalogues) >= 2
    for po_file in catalogues:
        with po_file.open("rb") as handle:
            catalog = read_po(handle)
        for message in catalog:
            english = message.string or message.id
            texts = english if isinstance(english, tuple) else (english,)
            assert not any("o'clock" in str(t) for t in texts), (po_file.name, message.id)


def leichte_sprache() -> dict[str, str]:
    """Every Leichte-Sprache text of the pages (the pages' own and the waiting list's), by message id."""
    texts: dict[str, str] = {}
    for po_file in sorted(WEB.parent.glob("*/translations/de-x-ls/LC_MESSAGES/*.po")):
        with po_file.open("rb") as handle:
            for message in read_po(handle):
                if message.id:
                    ids = message.id if isinstance(message.id, (tuple, list)) else (message.id,)
                    found = message.string
                    strings = found if isinstance(found, (tuple, list)) else (found,)
                    texts[str(ids[0])] = " ".join(str(s) for s in strings if s)
    return texts


@pytest.mark.req("R43")
def test_leichte_sprache_speaks_actively_and_tells_the_whole_waiting_list_rule() -> None:
    texts = leichte_sprache()
    assert len(texts) > 200
    passive = {
        key: found
        for key, text in texts.items()
        if (found := re.findall(r"\b[Ww]ird\b[^.?!:]*\bge\w+(?:t|en)\b", text))
    }
    assert not passive
    # The join page says that an offer is held only a few hours and must be booked with the button.
    intro = next(text for key, text in texts.items() if key.startswith("No suitable time is free? Tell us"))
    assert "Stunden" in intro and texts["Book this appointment"] in intro
    # A page title is a phrase of its own, and a disclosure's summary (followed by ": <concern>") ends
    # without a full stop.
    assert texts["Your place on the waiting list"].startswith("Ihr ")
    assert not texts["Documents to bring and more information"].endswith(".")
    # Abbreviations of laws are explained.
    legal = next(text for key, text in texts.items() if key.startswith("The legal basis is"))
    assert "(kurz: DSGVO)" in legal and "(kurz: SGB X)" in legal


# One spelling per word in Leichte Sprache, as the pages write it: long words split by the middle dot.
LS_WORDS = {
    "Uhr·zeit": ("Uhrzeit", "Uhr-Zeit"),
    "Warte·liste": ("Warteliste", "Warte-Liste"),
    "Haus·nummer": ("Hausnummer", "Haus-Nummer"),
    "Post·leit·zahl": ("Postleitzahl", "Post-Leit-Zahl"),
    "Telefon·nummer": ("Telefonnummer", "Telefon-Nummer"),
    "Buchungs·nummer": ("Buchungsnummer", "Buchungs-Nummer"),
    "Jugend·berufs·agentur": ("Jugend-Berufs-Agentur",),  # the list names the location "Jugendberufsagentur"
}


def demo_leichte_sprache() -> list[str]:
    """Every Leichte-Sprache text of the demo catalogue (names, info, documents, groups, locations)."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("de-x-ls"), str):
                found.append(value["de-x-ls"])
            for inner in value.values():
                walk(inner)
        elif isinstance(value, (list, tuple)):
            for inner in value:
                walk(inner)

    for name in dir(demo_data):
        if name.isupper():
            walk(getattr(demo_data, name))
    return found


@pytest.mark.req("R43")
def test_leichte_sprache_spells_each_long_word_one_way_on_pages_finder_and_mails() -> None:
    texts = dict(leichte_sprache())
    texts.update({f"finder {key}": messages["de-x-ls"] for key, messages in FINDER_MESSAGES.items()})
    mails = WEB.parents[1] / "notifier" / "templates" / "de-x-ls"
    texts.update({path.name: path.read_text(encoding="utf-8") for path in sorted(mails.glob("*.j2"))})
    # The demo catalogue's concerns, documents and group names stand on the same pages.
    texts.update({f"demo catalogue {n}": text for n, text in enumerate(demo_leichte_sprache())})
    assert len(texts) > 250
    for word, others in LS_WORDS.items():
        assert any(word in text for text in texts.values()), word
        wrong = {key for key, text in texts.items() for other in others if other in text}
        assert not wrong, (word, sorted(wrong))
    # Long words are split by the middle dot, as the pages do, not by a hyphen ("Not-Fall"); a hyphen stays
    # where German writes one (E-Mail-Adresse, Spam-Ordner, a name: Datenschutz-Grundverordnung).
    hyphenated = {
        (key, word)
        for key, text in texts.items()
        for word in re.findall(r"\b[A-ZÄÖÜ][a-zäöüß]+-[A-ZÄÖÜ][a-zäöüß]+\b", text)
        if word
        not in (
            "Mail-Adresse",
            "Service-Center",
            "Inkasso-Service",
            "Spam-Ordner",
            "Datenschutz-Grundverordnung",
        )
    }
    assert not hyphenated, sorted(hyphenated)


@pytest.mark.req("R43")
def test_english_pages_say_available_times_and_course_or_training() -> None:
    """ "Free times" reads as leisure time, "a free day" as a day off (in a heading too, with a capital), and
    "a measure" (Maßnahme) is no English."""
    catalogues = sorted(WEB.parent.glob("*/translations/en/LC_MESSAGES/*.po"))  # the pages' and the list's
    assert len(catalogues) >= 2
    for po_file in catalogues:
        with po_file.open("rb") as handle:
            for message in read_po(handle):
                english = message.string or message.id
                for text in english if isinstance(english, (tuple, list)) else (english,):
                    lower = str(text).lower()
                    assert not any(word in lower for word in ("free time", "free day", "measure")), message.id


@pytest.mark.req("R43")
def test_german_pages_begin_a_whole_sentence_after_a_colon_with_a_capital() -> None:
    """ "Telefonisch: Wir rufen Sie an", as "Ich bestätige: Ich bin berufstätig" on the same pages (a whole
    sentence after a colon begins with a capital letter, § 81 of the official rules)."""
    catalogues = sorted(WEB.parent.glob("*/translations/de*/LC_MESSAGES/*.po"))
    assert len(catalogues) >= 4
    lower_sentence = re.compile(r": (wir|ich|sie|es|er) \w")
    wrong = []
    for po_file in catalogues:
        with po_file.open("rb") as handle:
            for message in read_po(handle):
                german = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
                language = po_file.parent.parent.name
                wrong += [f"{language}: {text}" for text in german if lower_sentence.search(str(text))]
    assert not wrong, wrong


@pytest.mark.req("R43")
def test_german_pages_and_mails_say_jemand_anders_not_jemand_anderes() -> None:
    """Standard German says "jemand anders" / "niemand anders" ("anderes" is colloquial): on the pages, in
    Leichte Sprache, and in the shipped mail texts the customer gets."""
    colloquial = re.compile(r"\b(?:jemand|niemand)\s+anderes\b", re.IGNORECASE)
    mails = Path(__file__).resolve().parents[2] / "services" / "notifier" / "templates"
    wrong = []
    for po_file in sorted(WEB.parent.glob("*/translations/de*/LC_MESSAGES/*.po")):
        with po_file.open("rb") as handle:
            for message in read_po(handle):
                german = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
                wrong += [f"{po_file.parent.parent.name}: {t}" for t in german if colloquial.search(str(t))]
    templates = sorted(mails.glob("de*/*.j2"))
    assert len(templates) > 20
    wrong += [t.name for t in templates if colloquial.search(t.read_text(encoding="utf-8"))]
    assert not wrong, wrong


PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.mark.req("R43")
def test_every_translation_keeps_the_placeholders_of_its_message_id() -> None:
    """A lost, renamed or added `%(name)s` breaks the page in that one language only (KeyError, or a
    value that is never shown); a stray "%" breaks the formatting of the whole text."""
    catalogues = sorted(WEB.parent.glob("*/translations/*/LC_MESSAGES/*.po"))
    assert len(catalogues) >= 6
    checked = 0
    for po_file in catalogues:
        with po_file.open("rb") as handle:
            catalog = read_po(handle)
        for message in catalog:
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, (tuple, list)) else (message.id,)
            found = message.string
            strings = found if isinstance(found, (tuple, list)) else (found,)
            wanted = set(PLACEHOLDER.findall(str(ids[-1])))
            where = (po_file.parts[-3], po_file.name, ids[0])
            for string in strings:
                if not string:
                    continue  # falls back to the id
                checked += 1
                assert set(PLACEHOLDER.findall(str(string))) == wanted, where
                assert not re.search(r"%(?!\(\w+\)s)", str(string)), where
    assert checked > 500

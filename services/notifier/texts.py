"""The mail texts (R10, R43): Jinja2 templates per kind and language, as plain text and HTML, with the
administrators' versions stored in the database in place of the shipped defaults.

A language is content: a folder `templates/<BCP 47 tag>/` with every kind's three files is a language the
notifier writes in (`languages()`). A customer who booked in a language without such a folder (one the
pages offer as content, `shared/languages.py`) gets the mail in the nearest one along the tag, else in
German; the links in it still open the pages in the customer's own language.

Templates run in a sandbox (an administrator's text must not reach Python internals) with strict
undefined variables (a typo is refused when the text is saved, not found in a customer's mail). HTML
is autoescaped: customers type their own names, and a name is data, never markup.

The foot every mail shares is one template per language (`_footer.txt.j2`, the footer of `_layout.html.j2`):
an administrator's text includes it (or extends the layout) and so follows the operator's settings, such as
whether replies are read (OTV_MAIL_REPLY_TO). Stored texts that wrote out the old shipped foot were changed
to include it (migration 012).

The subject gets a reduced context without the concern and without the customer's name or number, so
no text, shipped or edited, can put them there (R52).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
from babel.dates import format_date, format_time
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.clock import BERLIN
from shared.events.appointment import AppointmentSnapshot, Language
from shared.events.mail import MailKind
from shared.languages import babel_locale, is_well_formed, nearest_built_in, pick
from shared.links import in_language
from shared.phone import tel_uri
from shared.reasons import worded

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
BUILT_IN: tuple[str, ...] = tuple(lang.value for lang in Language)
KINDS: tuple[str, ...] = tuple(kind.value for kind in MailKind)
PARTS = ("subject", "text", "html")
_SUFFIXES = {"subject": "subject.j2", "text": "txt.j2", "html": "html.j2"}
SUBJECT_FIELDS = ("kind", "reference", "date", "start_time")
_MAX_SUBJECT = 200


@dataclass(frozen=True)
class TemplateSet:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


class TemplateProblem(Exception):
    """A template that does not compile or render; `field` is subject, text or html."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def find_languages(directory: Path) -> tuple[str, ...]:
    """The languages with a complete folder of mail texts in `directory`: the built-in ones first. A folder
    that lacks a file, or whose name is no language tag, is no language (its mails would fail)."""
    files = [f"{kind}.{_SUFFIXES[part]}" for kind in KINDS for part in PARTS]
    found = {
        folder.name
        for folder in directory.iterdir()
        if folder.is_dir() and is_well_formed(folder.name) and all((folder / f).is_file() for f in files)
    }
    return tuple(lang for lang in BUILT_IN if lang in found) + tuple(sorted(found - set(BUILT_IN)))


@lru_cache(maxsize=1)
def languages() -> tuple[str, ...]:
    """The languages the notifier writes in (read once, on first use)."""
    return find_languages(TEMPLATE_DIR)


def language_of(value: str) -> str:
    """The language to write a mail in for a customer of language `value`: their own if there are texts
    for it, else the nearest along the tag (`en-GB` -> `en`), else German (R43)."""
    return pick(value, languages())


def default_templates(kind: str, language: str) -> TemplateSet:
    return _read_defaults(kind, language_of(language))


@lru_cache(maxsize=64)
def _read_defaults(kind: str, language: str) -> TemplateSet:
    folder = TEMPLATE_DIR / language
    return TemplateSet(
        subject=(folder / f"{kind}.{_SUFFIXES['subject']}").read_text(encoding="utf-8"),
        text=(folder / f"{kind}.{_SUFFIXES['text']}").read_text(encoding="utf-8"),
        html=(folder / f"{kind}.{_SUFFIXES['html']}").read_text(encoding="utf-8"),
    )


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


_TEXT_ENV = _environment(html=False)
_HTML_ENV = _environment(html=True)


@lru_cache(maxsize=256)
def _compile(source: str, html: bool) -> jinja2.Template:
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


def _render(field: str, source: str, context: dict[str, Any], *, html: bool) -> str:
    try:
        return _compile(source, html).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(field, f"syntax error in line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(field, f"unknown value: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateProblem(field, f"not allowed: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(field, f"{type(exc).__name__}: {exc.message}") from None
    except Exception as exc:  # noqa: BLE001 -- any failure of a template is a problem of that template
        raise TemplateProblem(field, f"{type(exc).__name__} while rendering") from None


def render(templates: TemplateSet, context: dict[str, Any]) -> RenderedMail:
    subject_context = {k: context[k] for k in SUBJECT_FIELDS}
    subject = " ".join(_render("subject", templates.subject, subject_context, html=False).split())
    if not subject:
        raise TemplateProblem("subject", "the subject is empty")
    return RenderedMail(
        subject=subject[:_MAX_SUBJECT],
        text=_render("text", templates.text, context, html=False),
        html=_render("html", templates.html, context, html=True),
    )


# -- the context of a mail ----------------------------------------------------------------------------


def _date(moment: datetime, language: str) -> str:
    return format_date(moment.astimezone(BERLIN).date(), format="full", locale=babel_locale(language))


def _time(moment: datetime, language: str) -> str:
    return format_time(moment.astimezone(BERLIN).time(), format="HH:mm", locale=babel_locale(language))


def book_again_url(site: str, language: str) -> str:
    """The start page of the booking, in the customer's language."""
    return in_language(site.rstrip("/") + "/", language)


def privacy_url(site: str, language: str) -> str:
    """The privacy notice of the customer pages (Art. 13 GDPR), linked from every mail: a customer booked
    by phone never saw the booking form that links it."""
    return in_language(site.rstrip("/") + "/privacy", language)


def site_of(manage_url: str, fallback: str) -> str:
    return manage_url.split("/manage/", 1)[0] if "/manage/" in manage_url else fallback


# What everybody brings when the concern names nothing; the printable page says the same (R10, R11).
DEFAULT_DOCUMENT = {
    "de": "Personalausweis oder Reisepass",
    "en": "Identity card or passport",
    "de-x-ls": "Ihren Ausweis oder Ihren Reise·pass",
}


def default_document(language: str) -> str:
    return DEFAULT_DOCUMENT[pick(language, DEFAULT_DOCUMENT)]


SAMPLE_HOTLINE = "0421 566-0"


def footer_context(hotline: str, *, replies_read: bool) -> dict[str, Any]:
    """What the foot of every mail shows (`_footer.txt.j2`, `_layout.html.j2`): the hotline, as a global
    `tel:` link where it can be one (else as text), and whether a reply reaches the jobcenter (a Reply-To
    that is read) or the mail asks for none."""
    return {"hotline": hotline, "hotline_tel": tel_uri(hotline) or "", "replies_read": replies_read}


def mail_context(
    kind: str,
    payload: dict[str, Any],
    *,
    public_base_url: str,
    hotline: str = SAMPLE_HOTLINE,
    replies_read: bool = False,
) -> dict[str, Any]:
    """What a template may show, from the snapshot stored with the mail (and the jobcenter's hotline;
    `replies_read` when replies go to a mailbox that is read, OTV_MAIL_REPLY_TO)."""
    snap = AppointmentSnapshot.model_validate(payload["appointment"])
    # The texts in the language the notifier has for the customer's; the links in the customer's own (a
    # language the pages offer as content opens in it, even when the mail could not be written in it).
    language = language_of(snap.customer_language)
    pages_language = snap.customer_language
    context: dict[str, Any] = {
        "kind": kind,
        "language": language,
        "reference": snap.reference,
        "first_name": snap.customer.first_name,
        "last_name": snap.customer.last_name,
        "name": f"{snap.customer.first_name} {snap.customer.last_name}".strip(),
        "date": _date(snap.start, language),
        "start_time": _time(snap.start, language),
        "end_time": _time(snap.end, language),
        "duration_minutes": int((snap.end - snap.start).total_seconds() // 60),
        "mode": snap.mode.value,
        "is_phone": snap.mode.value == "phone",
        "phone": snap.customer.phone or "",
        "location_name": snap.location_name,
        "location_address": snap.location_address,
        "concern": snap.concern_name,
        "documents": list(snap.documents) or [default_document(language)],
        "evening": snap.evening,
        "interpreter_language": snap.interpreter_language or "",
        "manage_url": in_language(snap.manage_url, pages_language),
        "book_again_url": book_again_url(site_of(snap.manage_url, public_base_url), pages_language),
        "privacy_url": privacy_url(site_of(snap.manage_url, public_base_url), pages_language),
        **footer_context(hotline, replies_read=replies_read),
        "previous_date": "",
        "previous_start_time": "",
        "cancelled_by": payload.get("cancelled_by") or "",
        "cancel_reason": "",
        "change_reason": "",
    }
    previous = payload.get("previous_start")
    if previous:
        previous_start = datetime.fromisoformat(previous)
        context["previous_date"] = _date(previous_start, language)
        context["previous_start_time"] = _time(previous_start, language)
    # A reason given by staff tells the customer why; the customer's own reason is not repeated. One the
    # system worded is said in the customer's language.
    said = worded(
        kind, str(payload.get("reason_code") or ""), language, location=payload.get("handed_to") or ""
    )
    if kind == "reschedule":
        context["change_reason"] = said
    elif payload.get("cancelled_by") not in (None, "customer"):
        context["cancel_reason"] = said or str(payload.get("reason") or "")
    return context


# -- validation of an administrator's text (R10) -------------------------------------------------------

SAMPLE_CONCERN = "Schwangerschaft und Geburt: Erstausstattung"


def sample_payload(language: str) -> dict[str, Any]:
    start = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    snap = {
        "id": str(uuid.UUID(int=1)),
        "reference": "OTV-SAMPLE",
        "revision": 2,
        "status": "booked",
        "location_id": "mitte",
        "location_name": "Geschäftsstelle Mitte",
        "location_address": "Doventorsteinweg 48-52, 28195 Bremen",
        "group_id": "ez",
        "service_point": 1,
        "concern_id": "sample",
        "concern_name": SAMPLE_CONCERN,
        "sensitive": True,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "mode": "phone",
        "channel": "online",
        "language": nearest_built_in(language).value,
        "language_tag": language,
        "evening": True,
        "documents": ["Personalausweis", "Mutterpass"],
        "interpreter_language": "Arabisch",
        "customer": {
            "first_name": "<b>Erika</b>",
            "last_name": "Müller",
            "email": "erika@example.org",
            "phone": "0421 123456",
        },
        "manage_url": "https://termine.example/manage/sample?token=sample-token",
        "booked_at": (start - timedelta(days=3)).isoformat(),
    }
    return {
        "appointment": snap,
        "previous_start": (start - timedelta(days=1)).isoformat(),
        "previous_end": (start - timedelta(days=1, minutes=-30)).isoformat(),
        "cancelled_by": "staff",
        "reason": "Der Standort ist geschlossen.",
    }


# What an administrator's HTML must not carry: a mail is no web page, and a script, a frame, a form or an
# event handler in it is either stripped by the mail client or an attack on the customer (a stolen admin
# session must not turn the confirmation mail into a phishing form).
_UNSAFE_TAGS = frozenset(
    {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input", "button", "base"}
)
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "background", "srcset", "xlink:href"})
_UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")


class _UnsafeHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _UNSAFE_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            scheme = "".join((value or "").split()).lower()
            if name.startswith("on") or name == "srcdoc":
                self.found.append(f"{name}=")
            elif name in _URL_ATTRIBUTES and scheme.startswith(_UNSAFE_SCHEMES):
                self.found.append(f"{name}={scheme.split(':', 1)[0]}:")


def unsafe_html_problem(html: str) -> dict[str, str] | None:
    """The problem of a rendered HTML mail that carries a script, a frame, a form, an event handler or a
    `javascript:` link (named in `message`), or None."""
    parser = _UnsafeHtml()
    parser.feed(html)
    parser.close()
    if not parser.found:
        return None
    return {
        "field": "html",
        "message": f"unsafe HTML: {', '.join(dict.fromkeys(parser.found))}",
        "type": "unsafe_html",
    }


def preview(kind: str, language: str, templates: TemplateSet) -> RenderedMail:
    """The mail the texts make of the sample appointment (what `validate` checks), for an administrator
    to read before saving; `TemplateProblem` where a part does not render."""
    if kind.startswith("waiting_"):
        from services.notifier import waiting_mail

        context = waiting_mail.mail_context(
            kind, waiting_mail.sample_payload(language), public_base_url="https://termine.example"
        )
    else:
        context = mail_context(kind, sample_payload(language), public_base_url="https://termine.example")
    return render(templates, context)


def validate(kind: str, language: str, templates: TemplateSet) -> list[dict[str, str]]:
    """Problems of a text an administrator wants to save: it must compile in the sandbox and render the
    sample mail; the subject must not name the concern (R52); the body must carry the manage link
    (R7, R41) or, for a cancellation, the link to book again."""
    if kind.startswith("waiting_"):  # the waiting list's mails have their own context (R45, issue 11)
        from services.notifier.waiting_mail import validate as validate_waiting

        return validate_waiting(kind, language, templates)
    problems: list[dict[str, str]] = []
    for field in PARTS:
        try:
            _compile(getattr(templates, field), field == "html")
        except jinja2.TemplateSyntaxError as exc:
            problems.append({"field": field, "message": f"syntax error in line {exc.lineno}: {exc.message}"})
    if problems:
        return problems
    context = mail_context(kind, sample_payload(language), public_base_url="https://termine.example")
    try:
        rendered = render(templates, context)
    except TemplateProblem as exc:
        return [{"field": exc.field, "message": exc.message}]
    if SAMPLE_CONCERN.lower() in rendered.subject.lower():
        problems.append({"field": "subject", "message": "the subject must not name the concern"})
    unsafe = unsafe_html_problem(rendered.html)
    if unsafe:
        problems.append(unsafe)
    link = context["book_again_url"] if kind == MailKind.CANCELLATION else context["manage_url"]
    for field in ("text", "html"):
        body = getattr(rendered, field)
        if link not in body and link.replace("&", "&amp;") not in body:
            what = "book again" if kind == MailKind.CANCELLATION else "manage"
            problems.append({"field": field, "message": f"the text must contain the {what} link"})
    return problems

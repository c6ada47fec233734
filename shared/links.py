"""Links to the customer pages that the services hand out (in mails, calendar invitations)."""

from __future__ import annotations

from shared.events.appointment import Language


def in_language(url: str, language: str) -> str:
    """A link to a customer page that opens in the customer's language on whatever device the mail is
    read (R43); German, the pages' default, needs no parameter. The services' links themselves stay as
    the API gives them (`<base>/manage/{id}?token=<token>`)."""
    if language == Language.DE.value or not url:
        return url
    return f"{url}{'&' if '?' in url else '?'}lang={language}"

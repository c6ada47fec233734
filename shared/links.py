"""Links to the customer pages that the services hand out (in mails, calendar invitations)."""

from __future__ import annotations


def in_language(url: str, language: str) -> str:
    """A link to a customer page that opens in the customer's language on whatever device the mail is
    read (R43). German too: the pages fall back to the language a browser remembers (the `otv_lang`
    cookie) before German, so a German link without it opened in English on a computer that last showed
    the pages in English (a family's, the service centre's). The services' links themselves stay as the
    API gives them (`<base>/manage/{id}?token=<token>`)."""
    if not url:
        return url
    return f"{url}{'&' if '?' in url else '?'}lang={language}"

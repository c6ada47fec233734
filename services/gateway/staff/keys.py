"""The app and request keys of staff access, in one place (no imports of the other staff modules)."""

from __future__ import annotations

from aiohttp import web

from services.gateway.staff.rules import Rule
from services.gateway.staff.service import SessionInfo, Staff
from shared.identity import StaffIdentity

STAFF = web.AppKey("staff", Staff)
RULES = web.AppKey("staff_rules", dict)
ALLOWED_ORIGINS = web.AppKey("staff_allowed_origins", frozenset)
# The session cookie's name: `__Host-` prefixed behind TLS (services/gateway/cookies.py).
SESSION_COOKIE = web.AppKey("staff_session_cookie", str)
# Renders a refusal as an HTML page for the staff pages (set by pages.py); JSON elsewhere.
PAGE_ERROR = web.AppKey("staff_page_error", object)
# Renders the sign-in page for a page's form sent without a live session (set by pages.py).
PAGE_SIGN_IN = web.AppKey("staff_page_sign_in", object)

IDENTITY = web.RequestKey("staff_identity", StaffIdentity)
SESSION = web.RequestKey("staff_session", SessionInfo)
LOCATION = web.RequestKey("staff_location", str)
GROUP = web.RequestKey("staff_group", str)
RULE = web.RequestKey("staff_rule", Rule)
JSON_BODY = web.RequestKey("staff_json_body", object)
# The same route by the account's id, for an answer to the deprecated username form (deprecation.py).
SUCCESSOR = web.RequestKey("staff_successor", str)

"""The location pages of the staff frontend (catalog configuration); filled in below."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()

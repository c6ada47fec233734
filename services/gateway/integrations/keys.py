"""The app keys of integrations, in one place."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from services.gateway.integrations.net import Resolver
from services.gateway.integrations.service import Integrations

INTEGRATIONS = web.AppKey("integrations", Integrations)
# Name resolution for webhook targets; tests put a fake here before the app starts (the edge).
RESOLVER = web.AppKey("integrations_resolver", Resolver)
WEBHOOK_HTTP = web.AppKey("integrations_webhook_http", aiohttp.ClientSession)

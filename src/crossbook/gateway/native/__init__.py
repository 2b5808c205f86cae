"""The native `/v1` API: orders and account (`orders`, `account`), public market data
(`public`), operator endpoints (`admin`), with `render` turning records into wire structs.

`register(router, context)` adds every `/v1` route.
"""

from __future__ import annotations

from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import Router
from crossbook.gateway.native.account import register as register_account
from crossbook.gateway.native.admin import register as register_admin
from crossbook.gateway.native.orders import register as register_orders
from crossbook.gateway.native.public import register as register_public


def register(router: Router, context: GatewayContext) -> None:
    register_orders(router, context)
    register_account(router, context)
    register_public(router, context)
    register_admin(router, context)

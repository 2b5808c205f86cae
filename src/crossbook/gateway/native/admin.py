"""`/v1/admin/...`: operator endpoints (signed with an admin-permission key).

Accounts (create, list, set fees), deposits and withdrawals, API keys (create with
permissions, list, revoke), assets and instruments (add, halt, resume). Every change is a
journaled command answered after it is durable; an engine rejection answers 4xx with its
code. A created key's secret is returned once and never shown again.
"""

from __future__ import annotations

import secrets

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import Permission
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Units
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import ApiError, Request, Response, Router, json_response
from crossbook.gateway.native import render
from crossbook.gateway.native.account import permission_names
from crossbook.gateway.native.public import instrument_info
from crossbook.protocol import native as wire
from crossbook.protocol.decimals import DecimalError, scale_for_precision
from crossbook.sequencer.ports import Applied

_PERMISSIONS = {"read": Permission.READ, "trade": Permission.TRADE, "admin": Permission.ADMIN}


def new_key_pair() -> tuple[str, str]:
    """A fresh (key, secret): 32 and 64 URL-safe characters from the OS's randomness, never
    starting with `-` (they are passed on command lines, where that reads as an option)."""
    return _token(24), _token(48)


def _token(nbytes: int) -> str:
    while True:
        token = secrets.token_urlsafe(nbytes)
        if token[0] != "-":
            return token


def permissions_of(names: list[wire.PermissionName]) -> Permission:
    flags = Permission(0)
    for name in names:
        flags |= _PERMISSIONS[name]
    return flags


def register(router: Router, ctx: GatewayContext) -> None:
    views = ctx.views

    async def run(command: cmd.Command) -> Applied:
        applied = await ctx.execute(command)
        error = render.first_reject(applied.events)
        if error is not None:
            raise error
        return applied

    def summary(account: int) -> wire.AccountSummary:
        record = views.accounts[account]
        return wire.AccountSummary(account, record.maker_fee_bps, record.taker_fee_bps)

    async def create_account(request: Request) -> Response:
        body = request.json(wire.NewAccount)
        await run(cmd.CreateAccount(AccountId(body.account), body.maker_fee_bps,
                                    body.taker_fee_bps))
        return json_response(summary(body.account), 201)

    async def list_accounts(request: Request) -> Response:
        return json_response([summary(a) for a in sorted(views.accounts)])

    async def set_fees(request: Request) -> Response:
        account = _account_param(request)
        body = request.json(wire.Fees)
        await run(cmd.SetFees(AccountId(account), body.maker_fee_bps, body.taker_fee_bps))
        return json_response(summary(account))

    async def transfer(request: Request, deposit: bool) -> Response:
        body = request.json(wire.Transfer)
        asset = views.assets.get(body.asset)
        if asset is None:
            raise ApiError(400, Reject.UNKNOWN_ASSET, f"unknown asset {body.asset!r}")
        scale = scale_for_precision(asset.precision)
        amount = scale.parse(body.amount)
        if isinstance(amount, DecimalError):
            raise ApiError(400, amount.code, f"amount {amount.message}")
        kind = cmd.Deposit if deposit else cmd.Withdraw
        await run(kind(AccountId(body.account), body.asset, Units(amount), body.tx_id))
        free, locked = views.accounts[body.account].balances.get(body.asset, (0, 0))
        return json_response(wire.TransferDone(
            body.account, body.asset, scale.format(amount), body.tx_id,
            wire.Balance(body.asset, scale.format(free), scale.format(locked)),
        ), 201)

    async def deposit(request: Request) -> Response:
        return await transfer(request, True)

    async def withdraw(request: Request) -> Response:
        return await transfer(request, False)

    async def create_key(request: Request) -> Response:
        body = request.json(wire.NewApiKey)
        flags = permissions_of(body.permissions)
        key, secret = new_key_pair()
        await run(cmd.CreateApiKey(key, secret, AccountId(body.account), int(flags), body.label))
        return json_response(wire.ApiKeyInfo(
            key, body.account, permission_names(flags), body.label, secret
        ), 201)

    async def list_keys(request: Request) -> Response:
        return json_response([
            wire.ApiKeyInfo(k.key, k.account, permission_names(k.permissions), k.label)
            for k in views.keys.values()
        ])

    async def revoke_key(request: Request) -> Response:
        key = request.params["key"]
        record = views.keys.get(key)
        if record is None:
            raise ApiError(404, Reject.UNKNOWN_API_KEY, "unknown or revoked key")
        await run(cmd.RevokeApiKey(key))
        return json_response(
            wire.ApiKeyInfo(key, record.account, permission_names(record.permissions),
                            record.label)
        )

    async def add_asset(request: Request) -> Response:
        body = request.json(wire.NewAsset)
        await run(cmd.AddAsset(Asset(body.code, body.precision)))
        return json_response(wire.AssetInfo(body.code, body.precision), 201)

    async def add_instrument(request: Request) -> Response:
        body = request.json(wire.NewInstrument)
        base, quote = views.assets.get(body.base), views.assets.get(body.quote)
        if base is None or quote is None:
            raise ApiError(400, Reject.UNKNOWN_ASSET, "add the base and quote assets first")
        try:
            inst = Instrument.create(
                body.symbol, base, quote, body.tick_size, body.lot_size,
                min_qty=body.min_quantity, max_qty=body.max_quantity,
                min_price=body.min_price, max_price=body.max_price,
                min_notional=body.min_notional,
            )
        except (ValueError, ArithmeticError) as exc:
            raise ApiError(400, Reject.INVALID_INSTRUMENT, str(exc)) from None
        await run(cmd.AddInstrument(inst))
        return json_response(instrument_info(views.instruments[inst.symbol]), 201)

    async def halt_or_resume(request: Request, halt: bool) -> Response:
        symbol = request.params["symbol"]
        applied = await run(cmd.HaltTrading(symbol) if halt else cmd.ResumeTrading(symbol))
        assert any(isinstance(e, ev.TradingHalted | ev.TradingResumed) for e in applied.events)
        return json_response(instrument_info(views.instruments[symbol]))

    async def halt(request: Request) -> Response:
        return await halt_or_resume(request, True)

    async def resume(request: Request) -> Response:
        return await halt_or_resume(request, False)

    admin = {"auth": "native", "permission": Permission.ADMIN, "tags": ("admin",)}
    add = router.add
    add("POST", "/v1/admin/accounts", create_account, body=wire.NewAccount,
        response=wire.AccountSummary, summary="Create an account", **admin)
    add("GET", "/v1/admin/accounts", list_accounts, response=list[wire.AccountSummary],
        summary="List accounts", **admin)
    add("PUT", "/v1/admin/accounts/{account}/fees", set_fees, body=wire.Fees,
        response=wire.AccountSummary, summary="Set an account's fee tier", **admin)
    add("POST", "/v1/admin/deposits", deposit, body=wire.Transfer, response=wire.TransferDone,
        summary="Credit an account", **admin)
    add("POST", "/v1/admin/withdrawals", withdraw, body=wire.Transfer,
        response=wire.TransferDone, summary="Debit an account", **admin)
    add("POST", "/v1/admin/api-keys", create_key, body=wire.NewApiKey,
        response=wire.ApiKeyInfo, summary="Create an API key (secret shown once)", **admin)
    add("GET", "/v1/admin/api-keys", list_keys, response=list[wire.ApiKeyInfo],
        summary="List live API keys", **admin)
    add("DELETE", "/v1/admin/api-keys/{key}", revoke_key, response=wire.ApiKeyInfo,
        summary="Revoke an API key", **admin)
    add("POST", "/v1/admin/assets", add_asset, body=wire.NewAsset, response=wire.AssetInfo,
        summary="Add an asset", **admin)
    add("POST", "/v1/admin/instruments", add_instrument, body=wire.NewInstrument,
        response=wire.InstrumentInfo, summary="Add an instrument", **admin)
    add("POST", "/v1/admin/instruments/{symbol}/halt", halt, response=wire.InstrumentInfo,
        summary="Halt trading", **admin)
    add("POST", "/v1/admin/instruments/{symbol}/resume", resume,
        response=wire.InstrumentInfo, summary="Resume trading", **admin)


def _account_param(request: Request) -> int:
    try:
        return int(request.params["account"])
    except ValueError:
        raise ApiError(400, Reject.GATEWAY_BAD_REQUEST, "account must be an integer") from None

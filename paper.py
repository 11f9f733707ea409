#!/usr/bin/env python3
"""paper: a paper trading account, exact to the last decimal, kept in SQLite.

    python paper.py init --balance 5000            # prints the new account's id
    python paper.py deposit --account-id 3f2a --amount 250.50
    python paper.py status --account-id 3f2a

As a library, the same ledger the command line uses:

    import paper
    with paper.Ledger("data/paper.db") as ledger:
        ledger.deposit(account_id, "250.50")

`python paper.py` compiles this whole file on every run (a script gets no .pyc), so each
line costs every command time: the code is kept lean on purpose (see bench_paper.py).
"""

try:  # Ctrl-C while Python loads what paper needs: nothing is open yet, so just stop
    import _signal  # built in and loaded already (signal would import enum's machinery on every run)
    import sys

    def _stop(signum, frame, exit_now=(sys.modules.get("posix") or sys.modules["nt"])._exit):  # os's, built in
        if sys.stderr:  # None when closed (2>&-)
            sys.stderr.write("paper: error: interrupted; nothing was done\n")
            sys.stderr.flush()
        exit_now(130)  # at once: an exception raised here could land in an import's callback and be ignored

    if __name__ == "__main__" and _signal.getsignal(_signal.SIGINT) != _signal.SIG_IGN:  # ignored by whoever
        _signal.signal(_signal.SIGINT, _stop)  # started paper (nohup, a trap ''): it stays ignored
except KeyboardInterrupt:  # before the handler was in place
    if __name__ != "__main__":
        raise
    raise SystemExit(130) from None

__all__ = [  # the library: what `import paper` is for (the command line is main)
    "Ledger", "backtest", "sweep", "load_strategy", "Strategy", "Context", "Bar", "read_prices", "Exchange",
    "kline_steps", "write_report", "Account", "Balance", "Transaction", "Trade", "Order", "Rules",
    "PaperError", "NoDatabase", "NotFound", "InsufficientFunds", "RefConflict", "Busy", "RiskRefused",
    "TimeGoesBack", "UsageError", "StrategyError", "main"]

import argparse
import contextlib
import io
import itertools
import math
import os
import re
import sqlite3
import time
from operator import attrgetter, itemgetter
from datetime import datetime, timedelta, timezone
from decimal import (ROUND_CEILING, ROUND_FLOOR, Context as DecimalContext, Decimal, DecimalException, Inexact,
                     InvalidOperation, localcontext)


# --- Constants ---

# The schema's version: 2, amount CHECKs of the exact form and a log that refuses INSERT OR REPLACE; 3,
# accounts.currency and orders.reason
SCHEMA_VERSION = 3
DEFAULT_DB = os.path.join("data", "paper.db")
ZERO = Decimal(0)
DAY = 86400  # seconds
SYMBOLS = {}  # each symbol to_symbol has taken, as given: {text: BASE/QUOTE}
DATES = {}  # each day to_time has met in epoch seconds: {days since 1970: 'YYYY-MM-DD'}
CLOCKS = {}  # each second of a day epoch_time has met: {second: 'HH:MM:SS'}
STORED = {}  # {amount: the same amount in its stored form} (see as_stored)
PRICES = {}  # each price text to_price_text has passed, in paper's form: {text: Decimal} (emptied at 20,000)
EPOCH = datetime(1970, 1, 1)
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z")  # paper's form (or to the second)
LIMIT = Decimal("1e18")  # every amount and balance stays below this
FEE_RATE = Decimal("0.001")
CLOSED = "its account was closed"  # the reason of the orders close_account cancels
AT_ONCE = "when placed: "  # how the reason of an order that could not fill as it was placed begins

# Amounts have at most 18 + 18 digits and products 72, so EXACT never rounds; a rounding that
# slipped through would raise Inexact. Fees are rounded up to 8 places, P&L (shown) to 18.
EXACT = DecimalContext(prec=100, traps=[InvalidOperation, Inexact])
CEILING = DecimalContext(prec=100, rounding=ROUND_CEILING)
FLOORED = DecimalContext(prec=100, rounding=ROUND_FLOOR)
ROUNDED = DecimalContext(prec=100)
TABLES = ("accounts", "balances", "orders", "trades", "transactions", "prices", "strategy_runs")
ACCOUNT = "id, name, leverage, max_leverage, is_active, created_at, updated_at, closed_at, price_id, currency"
TRANSACTION = ("id, account_id, transaction_type, currency, amount, balance_after, description, reference_id,"
               " created_at, trade_id, price_id")
ORDER = ("id, account_id, symbol, side, qty, limit_price, fee_rate, filled_qty, reserved_amount, status,"
         " created_at, updated_at, type, stop_price, expires_at, reference_id, triggered, reason, price_id,"
         " reserve_price, slippage, sized_at_fill, trail, trail_amount, mark, protect_sl, protect_tp, protect_trail,"
         " entry_trade_id")
TRADE = "id, account_id, order_id, symbol, side, qty, price, fee_rate, fee, reference_id, created_at, price_id"
PRICE_BAR = "time, open, high, low, close"  # a price's market time and bar
PRICE = f"symbol, {PRICE_BAR}"
ORDER_TYPES = ("limit", "stop", "stop-limit", "oco", "market", "trailing-stop")
QTY_STEP = Decimal("1e-8")  # a qty paper sizes (a buy of an amount, a sell of a fraction) is in these steps
PLAIN = re.compile(r"[0-9]{1,18}(\.[0-9]{0,18})?|\.[0-9]{1,18}")  # digits, a point: an amount to_amount takes

# An amount as paper writes it: no leading zero, 2-18 decimals, no trailing zero after the second.
AMOUNT = re.compile(r"-?(0|[1-9][0-9]{0,17})\.[0-9][0-9]([0-9]{0,16}[1-9])?")
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # a plain number a spreadsheet reads as one
BALANCES = "SELECT currency, available_amount, reserved_amount FROM balances WHERE account_id = ? ORDER BY currency"
UPSERT_BALANCE = ("INSERT INTO balances VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET available_amount"
                  " = excluded.available_amount, reserved_amount = excluded.reserved_amount, updated_at = ?")
ENDED = ("an earlier write in this batch failed (is the disk full?) and ended its transaction: nothing in it is"
         " recorded, and nothing more can be; leave the batch, and run it again")


# --- Errors: every refusal is a PaperError, its message fit for the user ---

class PaperError(Exception):
    """A refused operation: the message is fit for the user."""


class NoDatabase(PaperError):
    """The database file does not exist yet."""


class NotFound(PaperError):
    """No account or order has the id (or the start of one) given."""


class InsufficientFunds(PaperError):
    """The available balance does not pay for the operation (what it holds in reserve does not count)."""


class RefConflict(PaperError):
    """A ref (an idempotency key) already names an operation with other details: a client's bug, not a retry."""


class Busy(PaperError):
    """Another process held the database's write lock for longer than the busy timeout; nothing was written."""


class RiskRefused(PaperError):
    """A buy refused by one of the account's risk rules; the refusal is recorded as a risk event, even
    though the operation itself leaves nothing."""

    def __init__(self, message, account_id, rule, symbol):
        super().__init__(message)
        self.event = account_id, rule, "refused", symbol, message


class TimeGoesBack(PaperError):
    """A price older than the newest recorded of its symbol: per symbol, time never goes back."""

    def __init__(self, message, symbol, newest):
        super().__init__(message)
        self.symbol, self.newest = symbol, newest


class UsageError(PaperError):
    """Bad arguments that only the strategy file shows (an unknown param, a value of the wrong type): exit 2."""


class StrategyError(PaperError):
    """A strategy raised: the message names its file, line and function; .traceback is its own traceback;
    .refusal the risk refusal it let through, if that was what it raised (it is on the record all the same)."""

    traceback, refusal = "", None


# --- Amounts and times: exact Decimals, stored as text; market time in one form ---

def fmt(amount):
    """Plain text, no exponent, at least two decimals: how paper stores and shows amounts."""
    text = str(amount)
    whole, _, fraction = (text if "E" not in text else f"{amount:f}").partition(".")
    return f"{whole}.{fraction.rstrip('0'):0<2}"


def as_stored(amount):
    """amount as the database gives it back: Decimal(fmt(amount)), each value worked out once (but 0, whose
    sign fmt keeps)."""
    if amount in STORED:
        return STORED[amount]
    form = Decimal(fmt(amount))
    if amount and len(STORED) < 20_000:
        STORED[amount] = form
    return form


def from_db(text):
    """An amount as SQLite holds it (exact text) back to a Decimal."""
    try:
        amount = Decimal(text.decode("ascii", "replace"))
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise PaperError(f"the database holds {shown(text.decode('utf-8', 'replace'))} where an amount should be:"
                         " `python paper.py verify` names the row")
    return amount


# Reading: a converter for paper's own column type, DECIMAL_TEXT, so no other database is touched. Writing:
# amounts go in as text (stored()), not through an adapter, which would change every Decimal a host binds.
sqlite3.register_converter("DECIMAL_TEXT", from_db)


def insert_sql(into, columns):
    """The INSERT of a record's columns (ACCOUNT, ORDER, ...) into table."""
    return f"INSERT INTO {into} ({columns}) VALUES ({', '.join('?' * (columns.count(',') + 1))})"


# The writes a transaction holds back to write in bulk (see Connection): each row's id is given (Ledger._next_id)
INSERT_PRICE = insert_sql("prices", f"id, {PRICE}, created_at")
INSERT_TRANSACTION = insert_sql("transactions", TRANSACTION)
INSERT_TRADE = insert_sql("trades", TRADE)
INSERT_ORDER = insert_sql("orders", f"rowid, {ORDER}")
UPDATE_ORDER = ("UPDATE orders SET qty = ?, filled_qty = ?, reserved_amount = ?, status = ?, updated_at = ?, triggered = ?,"
                " reason = ?, price_id = ?, stop_price = ?, mark = ? WHERE id = ?")  # all that changes as it lives


def stored(values):
    """values as they are written to SQLite: each Decimal as paper's text."""
    return tuple(fmt(value) if isinstance(value, Decimal) else value for value in values)


def shown(value, longest=40):
    """repr(value), cut short: a refusal quotes what it refused in a message of normal length."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 1000 else "a huge number"
    return text if len(text) <= longest else f"{text[:longest - 5]}...{text[-1]}"


def to_amount(value, what="amount", zero=False):
    """A Decimal from text like '250.50' (or a Decimal or int), refused unless exact and in range."""
    if isinstance(value, str) and PLAIN.fullmatch(value):  # the usual case, checked at once
        amount = Decimal(value)
        if amount or zero:
            return amount
    if value.__class__ is Decimal and value.is_finite() and value > 0 and -18 <= value.as_tuple().exponent <= 0 \
            and value.adjusted() < 18:  # a Decimal as paper itself makes them: as the text of it would give
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool) and Decimal(value).is_finite():
        value = number_digits(Decimal(value), what, zero)
    elif not isinstance(value, str):
        raise PaperError(f"{what} must be a decimal string, an int or a finite Decimal, not {type(value).__name__}"
                         f" {shown(value)}")
    return text_amount(value, what, zero)


def number_digits(number, what, zero):
    """A finite Decimal (an int made one) as to_amount reads text: its digits, with a point if it has
    decimals; refused if below zero, or too large or too precise to write out exactly."""
    if number < 0:
        raise PaperError(f"{what} must be {'zero or more' if zero else 'greater than zero'}, not {shown(number)}")
    # Checked before the number is written out in full: 1E+999999999 has a billion digits.
    if number and number.adjusted() >= 18:
        raise PaperError(f"{what} {shown(number)} has more than 18 digits before the decimal point")
    if number.as_tuple().exponent < -18:
        try:
            number = number.quantize(Decimal("1e-18"), context=EXACT)
        except Inexact:
            raise PaperError(f"{what} {shown(number)} has more than 18 decimal places; paper never rounds") from None
    return f"{number.copy_abs():f}"


def text_amount(text, what, zero):
    """The amount text gives, refused unless it is digits with at most one point, at most 18 digits
    either side of it (but zeros that change nothing), and above zero (unless zero)."""
    if not text.isascii() or not text.replace(".", "", 1).isdigit():
        if text[:1] == "-" and PLAIN.fullmatch(text[1:]):
            raise PaperError(f"{what} must be {'zero or more' if zero else 'greater than zero'}, not {text}")
        raise PaperError(f"{what} {shown(text)} is not a number: use digits with at most one decimal point,"
                         " like 250.50 (no sign, exponent, separator or space)")
    whole, _, fraction = text.partition(".")
    if len(fraction.rstrip("0")) > 18:
        raise PaperError(f"{what} {shown(text)} has more than 18 decimal places; paper never rounds")
    if len(whole.lstrip("0")) > 18:
        raise PaperError(f"{what} {shown(text)} has more than 18 digits before the decimal point")
    amount = Decimal(text)
    if not zero and not amount:
        raise PaperError(f"{what} must be greater than zero")
    return amount


def to_price_text(value, what):
    """A price above zero, and its text as paper stores it: text already in that form is kept as given
    (a feed's file usually is), which spares formatting it again."""
    if value.__class__ is str and value in PRICES:  # met before: bars repeat their prices
        return PRICES[value], value
    if isinstance(value, str) and AMOUNT.fullmatch(value) and value[0] != "-" and value != "0.00":
        if len(PRICES) >= 20_000:  # memory stays flat however long the feed
            PRICES.clear()
        price = PRICES[value] = Decimal(value)
        return price, value
    price = to_amount(value, what)
    return price, fmt(price)


def cost(qty, price, fee_rate):
    """qty x price, exact (refused if that needs more than 18 decimal places), and its fee rounded up."""
    value = EXACT.multiply(qty, price)
    if value.as_tuple().exponent < -18 and value.normalize(EXACT).as_tuple().exponent < -18:
        raise PaperError(f"{fmt(qty)} x {fmt(price)} = {value:f} needs more than 18 decimal places")
    return value, CEILING.multiply(value, fee_rate).quantize(Decimal("1e-8"), context=CEILING)


def floor_qty(qty, step=QTY_STEP):
    """qty rounded down to a whole number of steps (a symbol's step size, or 8 decimal places)."""
    return FLOORED.divide(qty, step).to_integral_value(ROUND_FLOOR) * step


def affordable(amount, price, fee_rate, step=QTY_STEP):
    """The most that amount of QUOTE buys at price, its fee included, in whole steps (0: none)."""
    qty = floor_qty(FLOORED.divide(amount, FLOORED.multiply(price, 1 + fee_rate)), step)
    while qty > 0 and EXACT.add(*cost(qty, price, fee_rate)) > amount:  # the fee is rounded up: a step less
        qty -= step
    return max(qty, ZERO)


def slipped(price, side, slippage):
    """What a market trade pays (buy) or gets (sell) at price with slippage: price x (1 +/- slippage),
    rounded to 8 decimal places against the trader."""
    if not slippage:
        return price
    rounding = CEILING if side == "buy" else FLOORED
    price = rounding.multiply(price, 1 + slippage if side == "buy" else 1 - slippage).quantize(Decimal("1e-8"),
                                                                                             context=rounding)
    if not price:
        raise PaperError(f"slippage {fmt(slippage)} leaves no price to sell at")
    return price


def to_time(value):
    """Market time as paper stores it, UTC ISO-8601 with microseconds ('2026-11-25T14:00:00.000000Z'),
    from ISO-8601 text (a date alone is midnight; no zone is UTC), an epoch number (its unit told by
    its size, see epoch_time), or a datetime."""
    if value.__class__ is str and len(value) > 8 and value.isdigit() and value.isascii():  # a feed's usual form
        return epoch_time(value)
    if isinstance(value, str) and TIME.fullmatch(value):
        try:  # paper's own form, or the same to the second: checked at once
            datetime.fromisoformat(value[:-1])
            return value if len(value) == 27 else f"{value[:-1]}.000000Z"
        except ValueError:
            pass  # and refused below
    try:
        if isinstance(value, str):
            return time_from_text(value)
        if isinstance(value, datetime):
            return datetime_time(value)
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return epoch_time(value)
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        pass
    raise PaperError(f"time {shown(value)} must be ISO-8601 (2026-11-25T14:00:00Z, 2026-11-25 14:00, 2026-11-25;"
                     " no zone is UTC) or an epoch number (seconds, milliseconds or microseconds)")


def time_from_text(text):
    """Market time from text in a form other than paper's own: ISO-8601's basic date, a year or a month
    (each at its first midnight), an epoch number, or other ISO-8601 text; ValueError if none of them."""
    if len(text) == 8 and text.isascii() and text.isdigit():
        return datetime_time(datetime.fromisoformat(text))  # ISO-8601's basic form, 20261125 (not 1970-08-23)
    if re.fullmatch(r"[0-9]{4}(-[0-9]{2})?", text):  # a year (not 1970's second 2025), or a month
        return datetime_time(datetime.fromisoformat(text + ("-01-01" if len(text) == 4 else "-01")))
    if text.isascii() and text.replace(".", "", 1).isdigit():
        return epoch_time(text)
    return datetime_time(datetime.fromisoformat(text))


def datetime_time(moment):
    """A datetime as market time (an aware one converted to UTC, a naive one taken as UTC)."""
    if moment.tzinfo:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def epoch_time(value):
    """Market time from an epoch number, its unit told by its size as Binance's files and APIs use them:
    below 1e11 seconds (until the year 5138), below 1e14 milliseconds, below 1e17 microseconds."""
    if value.__class__ is str and len(value) == 10 and value.isdigit():  # whole seconds, a backtest's usual form
        day, second = divmod(int(value), DAY)
        date, clock = DATES.get(day), CLOCKS.get(second)
        if date and clock:  # each formatted before (below)
            return f"{date}T{clock}.000000Z"
    number = int(value) if isinstance(value, int) or isinstance(value, str) and value.isdigit() else Decimal(value)
    if isinstance(number, Decimal) and not number.is_finite() or number < 0:
        raise ValueError
    if number < 10**11:  # whole seconds, a backtest's usual form
        per_second = 1
    elif number < 10**14:
        per_second = 1000
    elif number < 10**17:
        per_second = 10**6
    else:
        raise PaperError(f"time {shown(value)} is too large for an epoch number: below 1e11 is seconds, below"
                         " 1e14 milliseconds, below 1e17 microseconds")
    if isinstance(number, int):
        whole, part = divmod(number, per_second)
        micro = part * (10**6 // per_second)
    else:
        micros = number * (10**6 // per_second)
        if micros != micros.to_integral_value():
            raise PaperError(f"time {shown(value)} is more precise than a microsecond")
        whole, micro = divmod(int(micros), 10**6)
    day, second = divmod(whole, DAY)
    if day not in DATES:  # a feed's rows share their days: each is formatted once
        DATES[day] = (EPOCH + timedelta(days=day)).date().isoformat() if len(DATES) < 100_000 else None
    date = DATES[day] or (EPOCH + timedelta(days=day)).date().isoformat()
    if second not in CLOCKS:
        CLOCKS[second] = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    return f"{date}T{CLOCKS[second]}.000000Z" if not micro else f"{date}T{CLOCKS[second]}.{micro:06d}Z"


def utc_now():
    """UTC ISO-8601 with microseconds: sorts as text in time order."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns // 1000 % 10**6:06d}Z"


def seconds(moment):
    """Epoch seconds of a market time as paper keeps it ('2026-11-25T14:00:00.000000Z')."""
    return (datetime.fromisoformat(moment[:-1]) - EPOCH).total_seconds()


def time_text(moment):
    """A market time as tables show it: '2026-11-25 14:00:00' (UTC), with its microseconds only if it has any."""
    if moment is None:
        return None
    return moment[:10] + " " + moment[11:19] + ("" if moment[20:26] == "000000" else moment[19:26])


def short_time(text):
    """A market time as a summary shows it: 2025-01-01 00:00:00."""
    return text[:19].replace("T", " ")


def time_us(text):
    """A market time in paper's form as epoch microseconds."""
    return (datetime.fromisoformat(text[:-1]) - EPOCH) // timedelta(microseconds=1)


# --- Input checks: what a user gives, checked once, at the edge ---

def to_currency(value):
    """An upper-case currency code of 2-10 ASCII letters or digits."""
    if not isinstance(value, str) or not 2 <= len(value) <= 10 or not value.isascii() or not value.isalnum():
        raise PaperError(f"currency {value!r} must be 2-10 ASCII letters or digits, like USDT")
    return value.upper()


def to_symbol(value):
    """BASE/QUOTE: two different currency codes, upper-cased."""
    if isinstance(value, str) and value in SYMBOLS:  # a feed names the same symbol on every row
        return SYMBOLS[value]
    base, slash, quote = str(value).partition("/")
    if not isinstance(value, str) or not slash:
        raise PaperError(f"symbol {shown(value)} must be BASE/QUOTE, like BTC/USDT")
    try:
        base, quote = to_currency(base), to_currency(quote)
    except PaperError as error:
        raise PaperError(f"symbol {shown(value)}: {error}") from None
    if base == quote:
        raise PaperError(f"symbol {shown(value)} names {base} twice: BASE/QUOTE are two currencies, like BTC/USDT")
    if len(SYMBOLS) < 1000:
        SYMBOLS[value] = f"{base}/{quote}"
    return f"{base}/{quote}"


JOINERS = dict.fromkeys([0x200D, *range(0xE0020, 0xE0080)])  # invisible, but they build emoji: 👨‍👩‍👧, flags


def to_text(value, what, longest=200):
    """One line of printable text, 1 to `longest` characters; emoji welcome (joined ones and flags too)."""
    if not isinstance(value, str) or not 0 < len(value) <= longest or not value.translate(JOINERS).isprintable() \
            or not value.isascii() and not joined_as_emoji(value):
        raise PaperError(f"{what} must be 1-{longest} printable characters on one line")
    return value


def joined_as_emoji(text):
    """Whether every zero-width joiner sits between two pictographs, and every tag follows a black flag
    or another tag: nowhere else could an invisible character make two texts that look the same."""
    if "\u200d" not in text and max(text) < "\U000e0000":
        return True
    import unicodedata
    for i, char in enumerate(text):
        before, after = text[i - 1] if i else "", text[i + 1:i + 2]
        if char == "\u200d" and not (before and after and unicodedata.category(after) == "So" and (
                unicodedata.category(before) == "So" or before == "\ufe0f" or "\U0001f3fb" <= before <= "\U0001f3ff")):
            return False
        if "\U000e0020" <= char <= "\U000e007f" and before != "\U0001f3f4" and not "\U000e0020" <= before <= "\U000e007f":
            return False
    return True


def to_ref(value):
    """An idempotency key: 1-100 printable characters, no space at either end ('rent ' is not 'rent')."""
    if to_text(value, "ref", 100) != value.strip():
        raise PaperError(f"ref {value!r} starts or ends with a space: a key must read the same to every client")
    return value


def to_id(value):
    """An account or order id: the full UUID (text, or a uuid.UUID) or a prefix of 4 or more characters."""
    if type(value).__name__ == "UUID" and type(value).__module__ == "uuid":  # without importing uuid
        value = str(value)
    if not isinstance(value, str) or not 4 <= len(value) <= 36 or value.lower().strip("0123456789abcdef-"):
        raise PaperError(f"id {value!r} must be a UUID or a prefix of at least 4 of its characters")
    return value.lower()


def to_fee_rate(value, what="fee rate"):
    """A fee rate (or a slippage) from 0 to below 1 (0.001 is 0.1%)."""
    rate = to_amount(value, what, zero=True)
    if rate >= 1:
        raise PaperError(f"{what} {shown(value)} must be below 1 (0.001 is 0.1%)")
    return rate


def to_share(value, what, below=False):
    """A share as a fraction above 0 and at most 1 (below 1 if below), from text like '5%' or '0.05' (a bare
    5 or 1 is ambiguous: 5% or 500%?), a Decimal fraction (as this gives it) or a float (a ratio may be one)."""
    if isinstance(value, float) and math.isfinite(value):
        value = Decimal(repr(value))
    if isinstance(value, str) and value.endswith("%"):
        share = to_amount(value[:-1], what).scaleb(-2)
    else:
        share = to_amount(value, what)
        if share >= 1 and not isinstance(value, Decimal):
            raise PaperError(f"{what} {shown(value)} is ambiguous: write a percentage like 5% or a fraction like 0.05")
    if share > 1 or below and share == 1:
        raise PaperError(f"{what} {share_text(share)} is {'100% or more: it would leave nothing' if below else 'more than 100%'}")
    return share


def to_rule_share(value, what):
    """A rule's share, or 'none' (the rule removed)."""
    return value if value == "none" else to_share(value, what, below=what in ("stop loss", "trailing stop",
                                                                              "max drawdown"))


def share_text(share):
    """A fraction as a percentage: 0.25 is 25%."""
    return f"{share.scaleb(2).normalize():f}%"


def rules_text(rules):
    """An account's rules as one line: 'max position 25%, stop loss 5%, cooldown 3 prices'."""
    parts = []
    for name in RULES:
        value = getattr(rules, name)
        if value and name != "flatten":
            shown_value = f"{value} prices" if name == "cooldown" else value if name == "max_open_positions" else \
                share_text(value) + (" and flatten" if name == "max_drawdown" and rules.flatten else "")
            parts.append(f"{name.replace('_', ' ')} {shown_value}")
    return ", ".join(parts) or "no risk rules"


def to_count(value, what):
    """A whole number above zero."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise PaperError(f"{what} must be a whole number above zero, not {shown(value)}")
    return value


def to_price(text):
    """CURRENCY=PRICE, as `status --price BTC=65000` takes it."""
    currency, equals, price = text.partition("=")
    if not equals:
        raise PaperError(f"price {text!r} must be CURRENCY=PRICE, like BTC=65000")
    return to_currency(currency), to_amount(price, f"price of {currency}", zero=True)  # 0: a worthless coin


def to_bar(price=None, open=None, high=None, low=None, close=None):
    """((open, high, low, close), their texts as stored) from a price (a tick: all four the same) or a
    bar; refused unless every price is above zero and low <= open, close <= high."""
    if price is not None:
        if open is not None or high is not None or low is not None or close is not None:
            raise PaperError("give a price, or a bar's open, high, low and close, not both")
        price, text = to_price_text(price, "price")
        return (price,) * 4, (text,) * 4
    if None in (open, high, low, close):
        raise PaperError("a bar needs its open, high, low and close (or give one price)")
    (o, o_text), (h, h_text), (l, l_text), (c, c_text) = (to_price_text(open, "open"), to_price_text(high, "high"),
                                                          to_price_text(low, "low"), to_price_text(close, "close"))
    if l > o or l > c or h < o or h < c:
        raise PaperError(f"bar open {o_text} high {h_text} low {l_text} close {c_text}: the low must be at most the"
                         " open and the close, and the high at least both")
    return (o, h, l, c), (o_text, h_text, l_text, c_text)


def to_leverage(leverage, max_leverage):
    """(leverage, max leverage): both above zero, the leverage at most the max."""
    leverage, max_leverage = to_amount(leverage, "leverage"), to_amount(max_leverage, "max leverage")
    if leverage > max_leverage:
        raise PaperError(f"leverage {fmt(leverage)} is above the max leverage {fmt(max_leverage)}")
    return leverage, max_leverage


def to_limit(value, name="limit"):
    """How many rows at most: a whole number above zero (None: all)."""
    if value is None:
        return -1
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PaperError(f"{name} must be a whole number above zero, not {shown(value)}")
    return min(value, 2**62)  # SQLite's integers end at 2^63 - 1


def to_path(value):
    """A database or backup file's name: not empty."""
    if not value:
        raise PaperError("needs a file name")
    return value


def to_row(line, row, source=None):
    """A checked import row: (line, type, currency, signed amount, description, ref)."""
    try:
        if len(row) != 5:
            raise PaperError(f"{len(row)} columns, not 5 (type, amount, currency, description, ref)")
        kind, amount, currency = str(row[0]).upper(), to_amount(row[1]), to_currency(row[2] or "USDT")
        if kind not in ("DEPOSIT", "WITHDRAWAL"):
            raise PaperError(f"type {shown(row[0])} must be DEPOSIT or WITHDRAWAL")
        return (line, kind, currency, amount if kind == "DEPOSIT" else amount.copy_negate(),
                to_text(row[3] or kind.title(), "description"), to_ref(row[4]) if row[4] else f"{source} line {line}" if source else None)
    except PaperError as error:
        raise PaperError(f"line {line}: {error}") from None


def order_text(order):
    """An order in a few words: 'oco sell 0.50 BTC/USDT (limit 110.00, stop 95.00)'."""
    prices = [f"{name} {fmt(value)}" for name, value in (("limit", order.limit_price), ("stop", order.stop_price),
                                                         ("trail", order.trail_amount)) if value is not None]
    prices += [f"trail {share_text(order.trail)}"] if order.trail is not None else []
    return f"{order.type} {order.side} {fmt(order.qty)} {order.symbol}" + (f" ({', '.join(prices)})" if prices else "")


def article(word):
    """'a' or 'an' before word, as it is said: an oco order, a stop order."""
    return "an" if word[:1] in "aeio" else "a"


def to_terms(side, symbol, qty, price, fee_rate, what="price"):
    """The checked terms of a trade or an order: side, symbol, qty, price, fee rate."""
    side = side.lower() if isinstance(side, str) else side
    if side not in ("buy", "sell"):
        raise PaperError(f"side {side!r} must be buy or sell")
    return side, to_symbol(symbol), to_amount(qty, "qty"), to_amount(price, what), to_fee_rate(fee_rate)


def order_terms(order):
    return (order.side, order.symbol, order.qty, order.type, order.limit_price, order.stop_price, order.fee_rate,
            order.expires_at)


def to_order(side, symbol, qty, limit_price, fee_rate, order_type, stop_price, trail=None, trail_amount=None):
    """A checked Order, not yet placed: its type has the prices it needs, and an oco's legs are on the
    right sides (a sell's limit above its stop, a buy's below); a trailing stop has one distance."""
    side, symbol, qty, _, fee_rate = to_terms(side, symbol, qty, 1, fee_rate)
    check_order_type(order_type, limit_price, stop_price, trail, trail_amount)
    limit_price = None if limit_price is None else to_amount(limit_price, "limit price")
    stop_price = None if stop_price is None else to_amount(stop_price, "stop price")
    if order_type == "oco" and (limit_price <= stop_price if side == "sell" else limit_price >= stop_price):
        raise PaperError(f"a {side} oco takes profit at its limit and stops a loss at its stop, so its limit"
                         f" must be {'above' if side == 'sell' else 'below'} its stop")
    order = Order(None, None, symbol, side, qty, limit_price, fee_rate, ZERO, ZERO, "OPEN", None, None, order_type,
                  stop_price)
    if order_type == "trailing-stop":
        order.trail = None if trail is None else to_share(trail, "trail")
        order.trail_amount = None if trail_amount is None else to_amount(trail_amount, "trail amount")
        if order.trail is not None and order.trail >= 1:
            raise PaperError(f"trail {shown(trail)} must be below 100%: a stop at or below zero never comes")
    return order


def check_order_type(order_type, limit_price, stop_price, trail, trail_amount):
    """Refuse an unknown order type, or prices and trail distances that it does not take or lacks."""
    if order_type not in ORDER_TYPES:
        raise PaperError(f"order type {shown(order_type)} must be one of {', '.join(ORDER_TYPES)}")
    if (order_type == "trailing-stop") != (trail is not None or trail_amount is not None) or trail is not None and \
            trail_amount is not None:
        raise PaperError("a trailing stop trails by a share (trail=) or an amount (trail_amount=), one of them" if
                         order_type == "trailing-stop" else f"{article(order_type)} {order_type} order takes no"
                         " trail_amount=")
    needs = {"limit": (True, False), "stop": (False, True), "market": (False, False),
             "trailing-stop": (False, False)}.get(order_type, (True, True))
    for price, name, needed in ((limit_price, "limit_price=", needs[0]), (stop_price, "stop_price=", needs[1])):
        if (price is None) == needed:
            raise PaperError(f"{article(order_type)} {order_type} order {'needs a' if needed else 'takes no'} {name}")


def to_protection(side, sl, tp, trail, risk, qty):
    """(sl, tp, trail, risk) of an order or trade, checked: they protect (a stop loss, a take profit, a
    trailing stop) and size (risk: the share of equity lost at the stop loss) a buy, and go together as
    an oco does (a stop loss or a trailing stop, and a take profit only with a stop loss)."""
    if side != "buy" and (sl, tp, trail, risk) != (None,) * 4:
        raise PaperError("a stop loss, take profit, trailing stop or risk protects or sizes a buy, not a sell")
    sl = None if sl is None else to_amount(sl, "stop loss")
    tp = None if tp is None else to_amount(tp, "take profit")
    trail = None if trail is None else to_share(trail, "trail")
    risk = None if risk is None else to_share(risk, "risk")
    if trail is not None and (sl is not None or tp is not None):
        raise PaperError("a trailing stop protects an entry alone: an oco's stop leg does not trail (give a stop loss"
                         " with a take profit, or a trailing stop)")
    if trail is not None and trail >= 1:
        raise PaperError("a trail of 100% or more never stops anything: give less")
    if risk is not None and (qty is not None or sl is None):
        raise PaperError("risk sizes a buy by its stop loss instead of a qty: give a stop loss and no qty")
    if qty is None and risk is None and (sl is None or side != "buy"):
        raise PaperError("give a qty" + (", or a risk share with a stop loss to size the buy by" if side == "buy" else
                                         ": a sell is of a quantity"))
    return sl, tp, trail, risk


def at_entry(price, sl, tp):
    """Refuse a stop loss or take profit on the wrong side of the entry price."""
    if sl is not None and sl >= price:
        raise PaperError(f"a stop loss at {fmt(sl)} is not below the entry at {fmt(price)}")
    if tp is not None and tp <= price:
        raise PaperError(f"a take profit at {fmt(tp)} is not above the entry at {fmt(price)}")


def trail_stop(side, mark, trail, trail_amount):
    """A trailing stop's price from its mark: mark x (1 - trail) or mark - trail amount below it for a sell,
    above it for a buy; 8 decimal places, rounded away from the market."""
    if trail is not None:
        price = mark * (1 - trail if side == "sell" else 1 + trail)
    else:
        price = mark - trail_amount if side == "sell" else mark + trail_amount
    rounding = FLOORED if side == "sell" else CEILING
    return price.quantize(Decimal("1e-8"), context=rounding)


def market_terms(order, latest, spend, step=QTY_STEP):
    """A market order's reserve price, the latest close (latest: that price's row), and for a buy of spend
    its qty there: what spend pays for, fee included, in whole steps."""
    if latest is None:
        raise PaperError(f"no recorded price for {order.symbol}: a market order reserves at the latest close;"
                         " record one with `tick`")
    order.reserve_price = latest.close
    if spend is not None:
        order.qty, order.sized_at_fill = affordable(spend, latest.close, order.fee_rate, step), 1
        if not order.qty:
            raise PaperError(f"spend {fmt(spend)} buys no {order.symbol} at {fmt(latest.close)}, fee included")


def same_details(ref, earlier, details):
    """earlier, the record an earlier call with ref made, if details are its own (None in details matches
    anything: a market trade's price); refused otherwise, as a client bug, not a retry."""
    if isinstance(earlier, Trade):
        recorded = earlier.side, earlier.symbol, earlier.qty, earlier.price, earlier.fee_rate
        what = f"{earlier.side} {fmt(earlier.qty)} {earlier.symbol} @ {fmt(earlier.price)} (trade {earlier.id})"
    elif isinstance(earlier, Order):
        recorded = order_terms(earlier)
        what = (f"{article(earlier.type)} {earlier.type} order to {earlier.side} {fmt(earlier.qty)} {earlier.symbol}"
                f" (order {earlier.id})")
    else:
        recorded = earlier.type, earlier.currency, earlier.amount
        what = f"{earlier.type} {fmt(earlier.amount)} {earlier.currency} (transaction {earlier.id})"
    if len(details) != len(recorded) or any(want is not None and want != got for want, got in zip(details, recorded)):
        raise RefConflict(f"ref {ref!r} was used for {what}: a retry repeats the same details")
    return earlier


# --- Records: the rows of the database as Python objects ---

def new_id():
    """A random (version 4) UUID, without the cost of importing uuid."""
    h = f"{int.from_bytes(os.urandom(16), 'big') & ~(0xF << 76 | 0xC << 60) | 0x4 << 76 | 0x8 << 60:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Record:
    """What the records share: their fields are their class's annotations, in order (see record), and
    each writes its __init__ out by hand; repr and == by the fields, written once here. (dataclass would
    write and compile all three again for each record on every run, 0.4 to 0.9 ms a record, and
    importing dataclasses costs more than that.)"""

    _fields = ()  # set by record

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{name}={getattr(self, name)!r}' for name in self._fields)})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._fields)

    def row(self, columns):
        """The values of columns (the record's column list, ACCOUNT, ORDER, ...) as SQLite stores them."""
        return stored(fields_of(columns)(self))

    def copy(self, columns):
        """A copy of the record as the database gives it back (each amount in its stored form): columns are
        its first fields, in order, so they are its __init__'s first arguments."""
        return type(self)(*[as_stored(value) if value.__class__ is Decimal else value for value in
                            fields_of(columns)(self)])


FIELD_OF = {"reserved_amount": "reserved", "transaction_type": "type"}  # a column whose field has another name
GETTERS = {}  # {a record's column list: what reads those fields of a record, in that order}


def fields_of(columns):
    """What reads the fields of columns (a record's column list: its first fields, in order) off a record:
    by name, so a column list and its record that drift apart fail loudly, not by position."""
    if columns not in GETTERS:
        GETTERS[columns] = attrgetter(*(FIELD_OF.get(name, name) for name in columns.split(", ")))
    return GETTERS[columns]


def fresh(make):
    """A record field's default made anew for each record, as its __init__ does: fresh(list), fresh(dict)."""
    return make


def record(cls):
    """A class of records: its annotations, in order, are its fields (their values in the class body say
    their defaults, which its __init__ gives)."""
    cls._fields = tuple(cls.__annotations__)
    for name in cls._fields:  # the instance's value, never the class's
        if name in cls.__dict__:
            delattr(cls, name)
    return cls


@record
class Balance(Record):
    """What an account holds of one currency: total = available + reserved."""

    currency: str
    available: Decimal = ZERO
    reserved: Decimal = ZERO

    def __init__(self, currency, available=ZERO, reserved=ZERO):  # made for each balance read: by hand
        self.currency, self.available, self.reserved = currency, available, reserved

    @property
    def total(self):
        return EXACT.add(self.available, self.reserved)

    def move(self, available, reserved=ZERO):
        """Change this balance by (available, reserved) and return its new total; refused, and left as it
        was, if available would go below zero or the total reach 10^18."""
        new_available, new_reserved = EXACT.add(self.available, available), EXACT.add(self.reserved, reserved)
        total = EXACT.add(new_available, new_reserved)
        if new_available < 0:
            raise InsufficientFunds(f"insufficient funds: {fmt(self.available)} {self.currency} available,"
                             f" {fmt(available.copy_negate())} needed")
        if total >= LIMIT:
            raise PaperError(f"the {self.currency} balance would reach {fmt(total)}: paper holds less than 10^18")
        self.available, self.reserved = new_available, new_reserved
        return total


@record
class Transaction(Record):
    """One row of the log: a signed amount of one currency (+ into the account, - out of it)."""

    id: int
    account_id: str
    type: str
    currency: str
    amount: Decimal
    balance_after: Decimal  # the currency's total after this row
    description: str
    reference_id: str | None
    created_at: str
    trade_id: int | None = None
    price_id: int | None = None  # the newest price when it was written: its place in market time

    def __init__(self, id, account_id, type, currency, amount, balance_after, description, reference_id, created_at,
                 trade_id=None, price_id=None):
        """The fields in order (see the class), as its rows hold them; written out, not made at each run."""
        self.id, self.account_id, self.type, self.currency = id, account_id, type, currency
        self.amount, self.balance_after, self.description, self.reference_id = amount, balance_after, description, reference_id
        self.created_at, self.trade_id, self.price_id = created_at, trade_id, price_id


@record
class Account(Record):
    """An account; Ledger.account fills in its balances and newest transactions."""

    id: str
    name: str
    leverage: Decimal
    max_leverage: Decimal
    is_active: int
    created_at: str
    updated_at: str
    closed_at: str | None
    price_id: int | None = None  # the newest price when it was opened
    currency: str = "USDT"  # its own currency: what it is valued in unless told otherwise
    balances: dict = fresh(dict)  # currency: Balance
    transactions: list = fresh(list)  # newest first

    def __init__(self, id, name, leverage, max_leverage, is_active, created_at, updated_at, closed_at, price_id=None,
                 currency='USDT', balances=None, transactions=None):
        """The fields in order (see the class), as its rows hold them; written out, not made at each run."""
        self.id, self.name, self.leverage, self.max_leverage = id, name, leverage, max_leverage
        self.is_active, self.created_at, self.updated_at, self.closed_at = is_active, created_at, updated_at, closed_at
        self.price_id, self.currency = price_id, currency
        self.balances = {} if balances is None else balances
        self.transactions = [] if transactions is None else transactions

    @property
    def status(self):
        return "ACTIVE" if self.is_active else "CLOSED"


@record
class Order(Record):
    """An order resting until the market reaches it, and what it still sets aside: quote currency for a
    buy (fee included), base for a sell.

    limit fills at its limit or better; stop becomes a market order at its stop; stop-limit becomes a
    limit order at its stop (triggered); oco is a limit (take profit) and a stop (stop loss) on one
    quantity: whichever is reached first fills, and the other is gone with it; market fills at the next
    price of its symbol (a bar's open), with its slippage, and reserves at the latest close when placed
    (reserve_price). A market buy sized_at_fill buys what its reserve pays for at the fill price and fee.
    """

    id: str
    account_id: str
    symbol: str
    side: str
    qty: Decimal
    limit_price: Decimal | None
    fee_rate: Decimal
    filled_qty: Decimal
    reserved: Decimal
    status: str  # OPEN, FILLED, CANCELLED or EXPIRED
    created_at: str
    updated_at: str
    type: str = "limit"
    stop_price: Decimal | None = None
    expires_at: str | None = None  # market time
    reference_id: str | None = None
    triggered: int = 0  # a stop-limit whose stop was reached: a limit order now
    reason: str | None = None  # why it ended unfilled
    price_id: int | None = None  # the newest price when it was placed or last changed
    reserve_price: Decimal | None = None  # a market order's: the latest close when it was placed
    slippage: Decimal = ZERO  # a market order's fill pays price x (1 + slippage), a sell gets x (1 - slippage)
    sized_at_fill: int = 0  # a market buy of an amount: qty is what it bought (until then, what it buys at reserve_price)
    trail: Decimal | None = None  # a trailing stop's distance, a share of its mark
    trail_amount: Decimal | None = None  # or in QUOTE
    mark: Decimal | None = None  # a trailing stop's high-water mark (a buy's: its low-water mark)
    protect_sl: Decimal | None = None  # a buy's protection, placed on each fill: a stop loss,
    protect_tp: Decimal | None = None  # a take profit (with a stop loss: an oco),
    protect_trail: Decimal | None = None  # or a trailing stop
    entry_trade_id: int | None = None  # a protection: the fill of the entry it protects
    fills: list = fresh(list)  # its trades, when place_order returns it

    def __init__(self, id, account_id, symbol, side, qty, limit_price, fee_rate, filled_qty, reserved, status,
                 created_at, updated_at, type='limit', stop_price=None, expires_at=None, reference_id=None,
                 triggered=0, reason=None, price_id=None, reserve_price=None, slippage=ZERO, sized_at_fill=0,
                 trail=None, trail_amount=None, mark=None, protect_sl=None, protect_tp=None, protect_trail=None,
                 entry_trade_id=None, fills=None):
        """The fields in order (see the class), as its rows hold them; written out, not made at each run."""
        self.id, self.account_id, self.symbol, self.side = id, account_id, symbol, side
        self.qty, self.limit_price, self.fee_rate, self.filled_qty = qty, limit_price, fee_rate, filled_qty
        self.reserved, self.status, self.created_at, self.updated_at = reserved, status, created_at, updated_at
        self.type, self.stop_price, self.expires_at, self.reference_id = type, stop_price, expires_at, reference_id
        self.triggered, self.reason, self.price_id, self.reserve_price = triggered, reason, price_id, reserve_price
        self.slippage, self.sized_at_fill, self.trail, self.trail_amount = slippage, sized_at_fill, trail, trail_amount
        self.mark, self.protect_sl, self.protect_tp, self.protect_trail = mark, protect_sl, protect_tp, protect_trail
        self.entry_trade_id = entry_trade_id
        self.fills = [] if fills is None else fills

    @property
    def reserve_currency(self):
        base, quote = self.symbol.split("/")
        return quote if self.side == "buy" else base

    def reserve_for(self, qty):
        """What qty of this order sets aside: qty itself for a sell; for a buy qty x price + its fee, at the
        limit (the stop for a stop order, the dearer leg of an oco, the reserve price for a market order)."""
        if self.side == "sell" or not qty:
            return qty
        price = {"stop": self.stop_price, "oco": max(self.limit_price or ZERO, self.stop_price or ZERO),
                 "market": self.reserve_price, "trailing-stop": self.stop_price}.get(self.type, self.limit_price)
        return EXACT.add(*cost(qty, price, self.fee_rate))

    def legs(self):
        """(is_stop, price) of each leg the market can reach: a stop-limit has its stop until triggered; a
        market order is a stop reached already, at no price of its own (None)."""
        if self.type == "market":
            return [(True, None)]
        if self.type == "oco":
            return [(False, self.limit_price), (True, self.stop_price)]
        if self.type in ("stop", "trailing-stop") or self.type == "stop-limit" and not self.triggered:
            return [(True, self.stop_price)]
        return [(False, self.limit_price)]

    def trailed(self, high, low):
        """(mark, stop) of a trailing stop after a bar: the mark follows the high (a sell; a buy's the low),
        and the stop follows the mark by the trail, never back."""
        if self.side == "sell":
            mark = max(self.mark, high)
            return mark, max(self.stop_price, trail_stop("sell", mark, self.trail, self.trail_amount))
        mark = min(self.mark, low)
        return mark, min(self.stop_price, trail_stop("buy", mark, self.trail, self.trail_amount))


@record
class Trade(Record):
    """One fill at one price (a market trade, or part of an order), with its legs in the log."""

    id: int
    account_id: str
    order_id: str | None
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee_rate: Decimal
    fee: Decimal  # in the quote currency
    reference_id: str | None
    created_at: str
    price_id: int | None = None  # the newest price when it was made: its place in market time
    transactions: list = fresh(list)

    def __init__(self, id, account_id, order_id, symbol, side, qty, price, fee_rate, fee, reference_id, created_at,
                 price_id=None, transactions=None):
        """The fields in order (see the class), as its rows hold them; written out, not made at each run."""
        self.id, self.account_id, self.order_id, self.symbol = id, account_id, order_id, symbol
        self.side, self.qty, self.price, self.fee_rate = side, qty, price, fee_rate
        self.fee, self.reference_id, self.created_at, self.price_id = fee, reference_id, created_at, price_id
        self.transactions = [] if transactions is None else transactions


class Price(tuple):
    """A recorded price as the ledger keeps a symbol's latest: (id, time, open, high, low, close), by name."""

    __slots__ = ()
    id, time, open, high, low, close = (property(itemgetter(i)) for i in range(6))


class Point(tuple):
    """A point of the equity curve (Ledger._curve): (price_id, time, equity, flow, exposed), by name."""

    __slots__ = ()
    price_id, time, equity, flow, exposed = (property(itemgetter(i)) for i in range(5))


class Position:
    """A symbol's P&L book, by average cost: the BASE it holds, what that cost in QUOTE (fees included), and
    what its sales realised."""

    __slots__ = ("held", "cost", "realized")

    def __init__(self, held=ZERO, cost=ZERO, realized=ZERO):
        self.held, self.cost, self.realized = held, cost, realized


def book_trade(book, side, qty, price, fee):
    """A trade on its symbol's book (a Position): a buy adds qty, and qty x price + fee to the cost; a sell
    takes out what it sold (at most what the book holds) at its average cost, and realises its proceeds less
    that: returned (None for a buy)."""
    if side == "buy":
        book.held, book.cost = book.held + qty, book.cost + qty * price + fee
        return None
    part = min(qty, book.held)
    sold = book.cost * part / book.held if book.held else ZERO
    book.held, book.cost, book.realized = book.held - part, book.cost - sold, book.realized + part * price - fee - sold
    return part * price - fee - sold


def cap_positions(books, currency, held):
    """No book of a symbol with currency as its BASE holds more than the account does (held): coins that
    left another way take their average cost with them, realising nothing."""
    for symbol, book in books.items():
        if book.held > held and symbol.startswith(f"{currency}/"):
            book.held, book.cost = held, book.cost * held / book.held


# --- The order book: a symbol's open orders, by the price at which each comes due ---

class Book:
    """The open orders of one symbol, by the price at which each leg comes due, so a price looks only at
    the legs it reaches: a buy limit or a sell stop is due when the low falls to its price, a sell limit
    or a buy stop when the high rises to it. Kept for as long as nobody else writes to the database."""

    def __init__(self):
        import heapq  # only the market needs it
        self.push, self.pop = heapq.heappush, heapq.heappop
        self.orders, self.falls, self.rises, self.expiries = {}, [], [], []  # heaps: (price key, age, id, stop)
        self.market = []  # (age, id) of the market orders: due at the next price, whatever it is
        self.trailing = {}  # id: the trailing stops, whose stops move with each price

    def add(self, order, age):
        self.orders[order.id] = order, age
        if order.type == "trailing-stop":
            self.trailing[order.id] = order
        for stop, price in order.legs():
            if price is None:
                self.market.append((age, order.id))
            elif (order.side == "buy") != stop:  # reached when the low falls to it: the highest price first
                self.push(self.falls, (-price, age, order.id, stop))
            else:
                self.push(self.rises, (price, age, order.id, stop))
        if order.expires_at:
            self.push(self.expiries, (order.expires_at, age, order.id))

    def remove(self, order_id):
        self.orders.pop(order_id, None)  # its legs stay in the heaps until they come up, then are skipped
        self.trailing.pop(order_id, None)

    def moved(self, order, age):
        """A trailing stop's stop has moved: its new leg (the old one comes up no later, and is then one of
        the same order: due() fills it at the stop in force)."""
        if order.side == "sell":
            self.push(self.falls, (-order.stop_price, age, order.id, True))
        else:
            self.push(self.rises, (order.stop_price, age, order.id, True))

    def expired(self, now):
        """The orders whose expiry is at or before time, oldest first, taken out of the book."""
        due = []
        while self.expiries and self.expiries[0][0] <= now:
            _, age, order_id = self.pop(self.expiries)
            if order_id in self.orders:
                due.append(self.orders.pop(order_id)[0])
                self.trailing.pop(order_id, None)
        return due

    def due(self, open_price, high, low):
        """[(order, age, is_stop, fill price)] of the orders a bar reaches, oldest first, taken out of the book.
        A leg the bar jumped past fills at the open, never at a price the bar did not trade; if one bar
        reaches both legs of an oco, the stop wins. A market order fills at the open."""
        reached = {}
        for age, order_id in self.market:
            reached[order_id] = [(True, open_price)]
        self.market.clear()
        while self.falls and -self.falls[0][0] >= low:
            key, age, order_id, stop = self.pop(self.falls)
            reached.setdefault(order_id, []).append((stop, min(open_price, -key)))
        while self.rises and self.rises[0][0] <= high:
            key, age, order_id, stop = self.pop(self.rises)
            reached.setdefault(order_id, []).append((stop, max(open_price, key)))
        due = []
        for order_id, legs in reached.items():
            order = self.orders.get(order_id, (None,))[0]
            current = order and {stop for stop, _ in order.legs()}  # a triggered stop-limit has left its stop leg
            legs = [leg for leg in legs if current and leg[0] in current]
            if legs and order.type == "trailing-stop":  # at the stop in force, not an older leg's price
                self.trailing.pop(order_id)
                legs = [(True, min(open_price, order.stop_price) if order.side == "sell" else max(open_price, order.stop_price))]
            if legs:
                due.append((self.orders.pop(order_id), max(legs)))
        return [(order, age, *leg) for (order, age), leg in sorted(due, key=lambda item: item[0][1])]


# --- The ledger: one SQLite database, every change in one transaction ---

def schema():
    """The statements of schema.sql, one by one (executescript would commit a transaction in progress)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.sql")) as f:
        statement = ""
        for line in f:
            statement += line
            if sqlite3.complete_statement(statement):
                yield statement
                statement = ""


def make_folders(path):
    """Create the folders path needs, owner only (0700) whatever the umask, for a new database file."""
    folder, missing = os.path.dirname(os.path.abspath(path)), []
    if len(os.fsencode(os.path.abspath(path))) > 500:  # SQLite opens no longer path (with its -journal)
        raise PaperError(f"{shown(path)} is a longer path than SQLite opens (500 bytes)")
    while not os.path.lexists(folder):
        folder, missing = os.path.dirname(folder), [folder] + missing
    for folder in missing:
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(folder, 0o700)


@contextlib.contextmanager
def building(path):
    """A new empty file beside path, owner only, named after this process (path.PID.RANDOM.new), for
    a database to be built in and then linked into place; removed at the end. What killed processes
    left in the folder (their .new files and journals) is removed first."""
    folder = os.path.dirname(os.path.abspath(path))
    for name in os.listdir(folder):
        litter = re.fullmatch(r".+\.([0-9]+)\.[0-9a-f]{8}\.new(-wal|-shm|-journal)?", name)  # compiled only here
        if litter and not alive(int(litter[1])):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, name))
    new = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.new"
    try:
        os.close(os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # SQLite gives its -wal the same mode
    except OSError as error:  # named by the path the user gave, not by the file beside it
        raise PaperError(f"{path} cannot be created: {error.strerror or error} (in {folder})") from None
    try:
        yield new
    finally:
        os.unlink(new)


def owner(path):
    """Who owns path, and its mode, as a refusal names them."""
    import pwd
    info = os.stat(path)
    return f"owner {pwd.getpwuid(info.st_uid).pw_name}, mode {info.st_mode & 0o777:o}"


def alive(pid):
    """Whether a process with this id exists (one we may not signal exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


class Connection:
    """The ledger's SQLite connection, holding back the commonest writes of a write transaction (prices, the
    log, trades, orders, balances: see hold) to write them in bulk, a statement's rows at a time, just
    before anything else runs on it (a read too) and before COMMIT: every statement sees all that was
    written before it, as if nothing were held. A savepoint (begin; release or undo) costs nothing until
    something must run inside it: then what was held before it is written first, outside it, and it
    begins. Inside a read transaction (holding is False) nothing is held: a write takes the write lock at
    once, or is refused, as SQLite decides.

    Writes held together may run in another order than they were made, table by table: no table's rows
    depend on another's as SQLite checks them (paper turns no foreign keys on, and its triggers read their
    own table), and within a table each statement's rows keep their order; an order's UPDATE runs after
    the INSERTs of orders (a new order's UPDATE needs its row). A held write that fails (a full disk) rolls
    the whole transaction back: nobody can say which of them were written."""

    def __init__(self, raw):
        self.raw = raw
        self.held = []  # [(sql, row)] in the order they were made
        self.holding = False  # whether writes are held: in a write transaction (see Ledger._transaction), which
        # then must not end before the ledger ends it (see ENDED)
        self.savepoints = []  # [where in held it began (0 once it has begun in SQLite), whether it has]

    @property
    def in_transaction(self):
        return self.raw.in_transaction

    def __getattr__(self, name):  # close, total_changes, ...: the connection's own
        return getattr(self.raw, name)

    def execute(self, sql, parameters=()):
        if self.held or self.savepoints and not self.savepoints[-1][1]:
            self.write()
        elif self.holding and not self.raw.in_transaction:  # it ended under us: nothing may run on its own
            raise PaperError(ENDED)
        return self.raw.execute(sql, parameters)

    def executemany(self, sql, rows):
        self.write()
        return self.raw.executemany(sql, rows)

    def hold(self, sql, row):
        """Run sql with row later (see the class); a long feed or backtest holds 10,000 at most."""
        if not self.holding:
            self.execute(sql, row)
            return
        self.held.append((sql, row))
        if len(self.held) >= 10_000:
            self.write()

    def write(self):
        """Write what is held; each savepoint open but not begun in SQLite begins between what was held before
        it and what was held since."""
        if self.holding and not self.raw.in_transaction:  # a failed write ended the transaction (and dropped
            if self.held:  # what was held): what was held since cannot be written on its own
                self.held.clear()
                raise PaperError(ENDED)
            return
        start = 0
        try:
            for savepoint in self.savepoints:
                if not savepoint[1]:
                    self._bulk(start, savepoint[0])
                    start = savepoint[0]
                    self.raw.execute("SAVEPOINT operation")
                savepoint[:] = 0, True
            self._bulk(start, len(self.held))
            self.held.clear()
        except BaseException:
            self.rollback()
            raise

    def _bulk(self, start, end):
        """Write held[start:end]: the rows of each statement together (see the class)."""
        statements, last, rows = {}, None, None
        for sql, row in itertools.islice(self.held, start, end):
            if sql is not last:  # (runs of one statement are the rule: a feed's prices)
                last, rows = sql, statements.setdefault(sql, [])
            rows.append(row)
        later = statements.pop(UPDATE_ORDER, None)
        for sql, rows in statements.items():
            self.raw.executemany(sql, rows)
        if later:
            self.raw.executemany(UPDATE_ORDER, later)

    def rollback(self):
        """Drop what is held and roll the whole transaction back (nothing if it has gone already)."""
        self.held.clear()
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def begin(self):
        """A savepoint, begun in SQLite only once something runs inside it (see write)."""
        self.savepoints.append([len(self.held), False])

    def release(self):
        """The innermost savepoint's writes stay, part of the one around it."""
        _, begun = self.savepoints.pop()
        if begun and self.raw.in_transaction:  # (a failed write may have ended the whole transaction)
            self.raw.execute("RELEASE operation")

    def undo(self):
        """The innermost savepoint's writes are gone, held or written; the transaction goes on."""
        start, begun = self.savepoints.pop()
        if not self.raw.in_transaction:  # (a failed write may have ended the whole transaction)
            start = 0
        elif begun:
            self.raw.execute("ROLLBACK TO operation")
            self.raw.execute("RELEASE operation")
        del self.held[start:]


class Ledger:
    """The accounts in one SQLite database; every rule of paper lives here."""

    def __init__(self, path=DEFAULT_DB, create=False, read_only=False, busy_timeout_ms=10000):
        """Open the database at path (read_only for reads); only create=True makes a new one.

        A database of an older schema version is upgraded in place first, in one transaction.
        """
        if type(busy_timeout_ms) is not int or busy_timeout_ms < 0:
            raise PaperError(f"busy_timeout_ms {shown(busy_timeout_ms)} must be a whole number of milliseconds, 0 or"
                             " more")
        self.path, self.busy_timeout_ms, self.read_only, self.upgraded_from = path, busy_timeout_ms, read_only, None
        self._depth = 0  # how many `with ledger:` are open: the outermost closes it
        # Kept between transactions while no other connection writes (PRAGMA data_version says so), and
        # dropped by a roll-back (_forget): the books of open orders, the latest price of each symbol, the
        # newest price's id, the ids the next rows get (the rows are written late: see Connection), the
        # balances as read or written ({(account id, currency): Balance}, and {(account id, None): its
        # currencies, in order} once all are read: see _balances), the accounts' rows (see _account).
        self._books, self._latest, self._newest, self._seen, self._began = {}, {}, None, None, None
        self._ids, self._held, self._rows = {}, {}, {}
        self._later = (None, None)  # (the clock at BEGIN, 24 hours later): see _horizon
        self._unchecked = False  # whether SQLite's CHECKs are off on this connection: in a batch (see _transaction)
        self._within = False  # whether code runs inside a transaction of _transaction's (see ENDED)
        self.notes, self._noted_order = [], False  # what a user should know that stops nothing: main prints it
        self.risk = Risk(self)
        if os.path.isdir(path):
            raise PaperError(f"{path} is a folder, not a database file")
        if not os.path.basename(path):
            raise PaperError(f"{path} ends with a slash: give the database file's name")
        if not os.path.lexists(path):
            if not create:
                raise NoDatabase(f"no database at {path}: create one with Ledger(path, create=True)")
            self._create()
        elif not os.path.isfile(path):
            raise PaperError(f"{path} is not a regular file")
        # Checked read-only first: a connection that may write rolls back a hot journal as it opens
        # and checkpoints the WAL as it closes, and a database that paper refuses is left as it was.
        self.db = self._connect("ro")
        try:
            if self._version() < SCHEMA_VERSION:
                self.db.close()
                self.db = self._connect("rw")
                self._upgrade()
            if not read_only:
                self.db.close()
                self.db = self._connect("rw")
                self.db.execute("PRAGMA synchronous=FULL")
        except BaseException as error:
            self.db.close()
            if isinstance(error, sqlite3.Error):
                raise self._refusal(error) from None
            raise

    def _version(self):
        """The schema version, once the file is known to be a paper database this paper.py can read."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version > SCHEMA_VERSION:
            raise PaperError(f"{self.path} has schema version {version}, newer than this paper.py"
                             f" ({SCHEMA_VERSION}): use a newer paper.py")
        if not version or "accounts" not in tables:
            raise PaperError(f"{self.path} is not a paper database")
        missing = {"balances", "transactions", "orders", "trades"} - tables
        if missing:
            raise PaperError(f"{self.path} is damaged: table {', '.join(sorted(missing))} is missing")
        return version

    def _upgrade(self):
        """Rebuild the tables of an older version on this schema in one transaction, every row kept
        (version 2 added CHECKs, which SQLite cannot add to a table in place)."""
        self.db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            version = self._version()  # again, under the write lock: another process may have done it
            if version == SCHEMA_VERSION:
                return
            extras = self.db.execute("SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
                                     " AND sql IS NOT NULL").fetchall()
            for kind, name, _ in extras:  # paper's names are taken by the new tables'; a user's own come back
                self.db.execute(f'DROP {kind} "{name}"')
            old = [table_name for table_name in TABLES if self.db.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                                                                (table_name,)).fetchone()]
            self.db.execute("PRAGMA legacy_alter_table = ON")  # a user's views keep naming the tables
            for table_name in old:
                self.db.execute(f"ALTER TABLE {table_name} RENAME TO {table_name}_v{version}")
            self.db.execute("PRAGMA legacy_alter_table = OFF")
            for statement in schema():
                self.db.execute(statement)
            for table_name in old:
                columns = ", ".join(row[1] for row in self.db.execute(f"PRAGMA table_info({table_name}_v{version})"))
                self.db.execute(f"INSERT INTO {table_name} ({columns}) SELECT {columns} FROM {table_name}_v{version}")
                self.db.execute(f"DROP TABLE {table_name}_v{version}")
            for kind, name, sql in extras:
                if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone():
                    self.db.execute(sql)
            if version < 3:  # an account's currency: that of its first transaction (init's deposit), else USDT
                self.db.execute("UPDATE accounts SET currency = ifnull((SELECT currency FROM transactions WHERE"
                                " account_id = accounts.id ORDER BY id LIMIT 1), 'USDT')")
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.upgraded_from = version

    def _connect(self, mode):  # mode=ro or rw: SQLite never creates a file here
        path = os.path.abspath(self.path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        return Connection(sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=self.busy_timeout_ms / 1000,
                                          isolation_level=None, detect_types=sqlite3.PARSE_DECLTYPES))

    def _refusal(self, error):
        """A sqlite3 error as the PaperError a user can act on."""
        name, folder = getattr(error, "sqlite_errorname", ""), os.path.dirname(os.path.abspath(self.path))
        if name == "SQLITE_BUSY_SNAPSHOT":
            return Busy(f"another process wrote to {self.path} while this connection was reading it (a snapshot, or a"
                        " history or prices still being read): a write cannot go on from what it read; finish the"
                        " reading, then write; nothing was written")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return Busy(f"database is busy: another process held {self.path} for more than"
                              f" {self.busy_timeout_ms} ms (busy_timeout_ms); nothing was written")
        if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
            return PaperError(f"{self.path}: {error} (is the disk full?)" + ("" if self.read_only else
                              ": a change in progress may not be recorded; the same call again (with the same ref, where it"
                              " takes one) records it once"))
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
            for journal in (f"{self.path}-shm", f"{self.path}-wal"):
                if os.path.exists(journal) and not os.access(journal, os.R_OK | os.W_OK):
                    return PaperError(f"cannot read {self.path}: SQLite must read and write {journal} beside it (the"
                                      f" database is in WAL mode), and you may not ({owner(journal)}): its owner can"
                                      " let you, or give you a copy made with `python paper.py backup`")
            if not os.access(folder, os.W_OK) and not os.path.exists(f"{self.path}-shm"):
                return PaperError(f"cannot read {self.path}: SQLite must create {os.path.basename(self.path)}-shm"
                                  f" beside it (the database is in WAL mode), and you may not write to {folder}"
                                  f" ({owner(folder)}): its owner can give you write access to the folder, or a copy"
                                  " made with `python paper.py backup`")
        return PaperError(f"{self.path}: {error}")

    def _create(self):
        """Build a new database beside path, then link it into place: a racing init sees it whole or not at all.

        The file being built is named after this process, so the next init can remove what a killed one left.
        """
        make_folders(self.path)
        with building(self.path) as new:
            with contextlib.closing(sqlite3.connect(new, isolation_level=None)) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("BEGIN")
                for statement in schema():
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("COMMIT")
            with contextlib.suppress(FileExistsError):  # another init won the race: use its database
                os.link(new, self.path)

    def backup(self, target):
        """Copy the whole database to target, a new file, through SQLite's backup API: one consistent
        snapshot even while other processes write (a plain copy can miss commits still in the -wal file).
        Returns its size in bytes."""
        if os.path.lexists(target):
            raise PaperError(f"{target} exists already: backup never overwrites a file")
        if self.db.in_transaction:  # (SQLite's backup would wait for this very transaction for ever)
            raise PaperError("backup copies what is committed: call it outside a batch or a snapshot")
        make_folders(target)
        with building(target) as new:
            with contextlib.closing(sqlite3.connect(new)) as copy:
                try:
                    self.db.backup(copy)
                except sqlite3.Error as error:
                    raise self._refusal(error) from None
            try:
                os.link(new, target)  # in place whole, and never over a file that appeared meanwhile
            except FileExistsError:
                raise PaperError(f"{target} exists already: backup never overwrites a file") from None
        return os.path.getsize(target)

    def close(self):
        """Close the database; refused inside a batch (a transaction that writes), whose work it would drop."""
        if self.db.holding and self.db.in_transaction:
            raise PaperError("the ledger is inside a batch: leave the batch first (closing it now would drop the"
                             " batch's work)")
        self.db.close()

    def __enter__(self):
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if not self._depth:  # the outermost `with` closes
            self.close()

    def snapshot(self):
        """`with ledger.snapshot():` every read inside it sees the same state, even while others write."""
        return self._transaction("BEGIN")

    def batch(self):
        """`with ledger.batch():` runs every operation inside it as one SQLite transaction: an exception
        or a kill leaves none of them, and nobody else sees any of them before the end. A refused
        operation inside it leaves nothing of itself, and the batch goes on if you catch the refusal.
        A backtest runs in one: inside it, prices are matched against orders kept in memory."""
        return self._transaction(exact=False)  # the batch's own code keeps its own decimal context

    @contextlib.contextmanager
    def _transaction(self, begin="BEGIN IMMEDIATE", exact=True):
        """One SQLite transaction: every change inside it lands together or not at all. A write inside
        another one (a batch) is a savepoint: refused, it leaves nothing, and the outer one goes on.
        Arithmetic inside is exact: a rounding raises Inexact instead of happening."""
        try:
            nested = self.db.in_transaction
        except sqlite3.ProgrammingError:
            raise PaperError(f"the ledger of {self.path} is closed") from None
        if not nested and self._within:  # a batch whose transaction a failed write ended (a full disk)
            raise PaperError(ENDED)
        if nested:
            try:
                with self._savepoint() if begin == "BEGIN IMMEDIATE" else contextlib.nullcontext(), localcontext(EXACT):
                    yield
            except sqlite3.Error as error:  # a batch's code may catch it, as any refusal
                raise self._refusal(error) from None
            return
        try:
            if begin == "BEGIN IMMEDIATE" and exact == self._unchecked:  # a batch writes without SQLite's CHECKs:
                # paper checks every value itself (verify does again), and they cost a feed or a backtest half its
                # time; any other write has them. Set only when it changes (each change re-prepares statements).
                self.db.execute(f"PRAGMA ignore_check_constraints = {'OFF' if exact else 'ON'}")
                self._unchecked = not exact
            self.db.execute(begin)
            self.db.holding = begin == "BEGIN IMMEDIATE"  # a read transaction holds nothing back (see Connection)
            try:
                self._began, version = utc_now(), self.db.execute("PRAGMA data_version").fetchone()[0]
                if version != self._seen:  # another connection wrote: what is kept may be stale
                    self._forget()
                    self._seen = version
                self._within = True
                try:
                    with localcontext(EXACT) if exact else contextlib.nullcontext():
                        yield
                finally:
                    self._within = False
                if not self.db.in_transaction:  # ended by a failed write that the code inside caught
                    raise PaperError(ENDED)
                self.db.execute("COMMIT")  # (what is held is written first)
                self.db.holding = False
            except BaseException as error:
                self.db.holding = False
                try:
                    if isinstance(error, GeneratorExit) and begin == "BEGIN" and self.db.in_transaction:
                        self.db.execute("COMMIT")  # a reader closed early: what was written meanwhile stays
                        raise
                    self.db.rollback()
                except sqlite3.ProgrammingError:  # closed already (a reading generator dropped late): nothing to undo
                    return
                self._forget()
                refusal = error if isinstance(error, RiskRefused) else getattr(error, "refusal", None)
                if refusal:  # the refusal is on the record, though the operation is not
                    self.db.execute("BEGIN IMMEDIATE")
                    self.risk.log(*refusal.event)
                    self.db.execute("COMMIT")
                raise
        except sqlite3.Error as error:
            raise self._refusal(error) from None

    @contextlib.contextmanager
    def _savepoint(self):
        """A write inside a transaction: refused, it is undone alone."""
        self.db.begin()
        try:
            yield
        except BaseException as error:
            self.db.undo()
            self._forget()
            if isinstance(error, RiskRefused) and self.db.in_transaction:
                self.risk.log(*error.event)  # on the record (an outer roll-back records it again itself)
            raise
        self.db.release()

    def _forget(self):
        """Drop what is kept (see __init__), once what is held is written."""
        self.db.write()
        self._held.clear()
        self._rows.clear()
        self._ids.clear()
        self.risk.forget()
        self._books.clear()
        self._latest.clear()
        self._newest = None

    def _next_id(self, table):
        """The id (rowid) the next row of table gets, as SQLite would give it: its rows are written late."""
        if table not in self._ids:
            self._ids[table] = self.db.execute(f"SELECT ifnull(max(rowid), 0) FROM {table}").fetchone()[0]
        self._ids[table] += 1
        return self._ids[table]

    @property
    def _horizon(self):
        """(the clock, the latest market time a price may have without allow_future: 24 hours later)."""
        if self._later[0] != self._began:
            clock = datetime.fromisoformat(self._began[:-1]) + timedelta(days=1)
            self._later = self._began, clock.isoformat(timespec="microseconds") + "Z"
        return self._later

    @property
    def _price_id(self):
        """The newest price's id (None before the first): every row written now has this place in market time."""
        if self._newest is None:
            self._newest = self.db.execute("SELECT max(ifnull((SELECT max(id) FROM prices), 0),"  # never given twice
                                           " ifnull((SELECT max(id) FROM prices_deleted), 0))").fetchone()[0]
        return self._newest or None

    def _market_time(self):
        """(market time, id) of the newest price: where anything written now belongs; (None, None) before any."""
        price_id = self._price_id
        if price_id is None:
            return None, None
        row = self.db.execute("SELECT time FROM prices WHERE id <= ? ORDER BY id DESC LIMIT 1", (price_id,)).fetchone()
        return (row and row[0]), price_id  # (no time when every price up to it was deleted)

    def _find(self, make, source, columns, prefix):
        """The one record of table whose id starts with prefix, as git finds short hashes."""
        prefix, what = to_id(prefix), source[:-1]
        rows = self.db.execute(f"SELECT {columns} FROM {source} WHERE id >= ? AND id < ? ORDER BY id LIMIT 11",
                               (prefix, prefix + "~")).fetchall()
        if len(rows) > 1:
            ids = ", ".join(row[0] for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
            raise PaperError(f"{what} id {prefix!r} is ambiguous: it matches {ids}")
        if not rows:
            raise NotFound(f"no {what} {prefix!r}")
        return make(*rows[0])

    def _account(self, account_id, active=False):
        """The account account_id names (a new Account: a caller may add to it); inside a transaction, read
        once while kept (see __init__; an account is changed only by close_account and reset, which forget it)."""
        kept = account_id.__class__ is str and self.db.in_transaction
        row = self._rows.get(account_id) if kept else None
        if row is None:
            row = self._find(lambda *values: values, "accounts", ACCOUNT, account_id)
            if kept and row[0] == account_id:  # by its whole id: a prefix may match another account tomorrow
                self._rows[account_id] = row
        account = Account(*row)
        return self._active(account) if active else account

    @staticmethod
    def _active(account):
        if not account.is_active:
            raise PaperError(f"account {account.id} is closed")
        return account

    def _open_order(self, order_id):
        for book in self._books.values() if order_id.__class__ is str else ():  # an open order the matching
            if order_id in book.orders:  # keeps, by its whole id: a copy, as it is stored
                order = book.orders[order_id][0].copy(ORDER)
                break
        else:
            order = self._find(Order, "orders", ORDER, order_id)
        if order.status != "OPEN":
            raise PaperError(f"order {order.id} is {order.status.lower()}")
        return order

    def _balance(self, account_id, currency):
        """The balance as it is now (a copy: the caller may move it); inside a transaction, read once while kept
        (see __init__: _move keeps it)."""
        held = self._held.get((account_id, currency)) if self.db.in_transaction else None
        if held is None:
            held = Balance(currency, *self.db.execute("SELECT available_amount, reserved_amount FROM balances WHERE"
                                                      " account_id = ? AND currency = ?", (account_id, currency)
                                                      ).fetchone() or ())
            if self.db.in_transaction:
                self._held[account_id, currency] = held
        return Balance(currency, held.available, held.reserved)

    def _move(self, account_id, currency, available, reserved=ZERO, legs=(), ref=None, trade_id=None):
        """Change one balance by (available, reserved) and log its legs [(type, amount, description)]."""
        balance, now, logged = self._balance(account_id, currency), utc_now(), []
        total = balance.total
        balance.move(available, reserved)
        available, reserved = fmt(balance.available), fmt(balance.reserved)
        self.db.hold(UPSERT_BALANCE, (account_id, currency, available, reserved, now, now, now))
        currencies = self._held.get((account_id, None))
        if currencies is not None and currency not in currencies:  # its first row
            currencies.append(currency)
            currencies.sort()
        self._held[account_id, currency] = Balance(currency, Decimal(available), Decimal(reserved))  # as stored
        for kind, amount, description in legs:
            if amount:  # no row for a zero fee
                total = EXACT.add(total, amount)
                tx = Transaction(self._next_id("transactions"), account_id, kind, currency, as_stored(amount),
                                 as_stored(total), description, ref, now, trade_id, self._price_id)  # as read back
                self.db.hold(INSERT_TRANSACTION, tx.row(TRANSACTION))
                logged.append(tx)
        return logged

    def _recorded(self, account_id, refs):
        """What the account recorded under each of refs: {ref: its Transaction, Trade or Order}. A ref is the
        client's idempotency key: it names one deposit, withdrawal, trade or order of an account."""
        found = {}
        for start in range(0, len(refs), 500):  # SQLite takes at most 999 parameters
            chunk = refs[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT {TRANSACTION} FROM transactions WHERE account_id = ? AND trade_id IS"
                                       f" NULL AND reference_id IN ({marks})", (account_id, *chunk)):
                found[row[7]] = Transaction(*row)
            for row in self.db.execute(f"SELECT {TRADE} FROM trades WHERE account_id = ? AND reference_id IN ({marks})",
                                       (account_id, *chunk)):
                found[row[9]] = Trade(*row, [Transaction(*leg) for leg in self.db.execute(
                    f"SELECT {TRANSACTION} FROM transactions WHERE trade_id = ? ORDER BY id", (row[0],))])
            for row in self.db.execute(f"SELECT {ORDER} FROM orders WHERE account_id = ? AND reference_id IN ({marks})",
                                       (account_id, *chunk)):
                found[row[15]] = Order(*row)
        return found

    def _retried(self, account_id, ref, *details):
        """The record an earlier call with ref made, when this call is its retry; None when ref is new (or
        None). Refused when ref was used with other details (see same_details)."""
        earlier = None if ref is None else self._recorded(account_id, [ref]).get(ref)
        return earlier and same_details(ref, earlier, details)

    # --- Accounts ---

    def create_account(self, balance=Decimal(5000), currency="USDT", name="Paper Trading Account",
                       leverage=Decimal(1), max_leverage=Decimal(3)):
        """Open an account; a non-zero balance is recorded as an 'Initial deposit'."""
        balance, currency, name = to_amount(balance, "balance", zero=True), to_currency(currency), to_text(name, "name")
        leverage, max_leverage = to_leverage(leverage, max_leverage)
        with self._transaction():
            now = utc_now()
            account = Account(new_id(), name, leverage, max_leverage, 1, now, now, None, self._price_id, currency)
            self.db.execute(insert_sql("accounts", ACCOUNT), account.row(ACCOUNT))
            if balance:
                self._move(account.id, currency, balance, legs=[("DEPOSIT", balance, "Initial deposit")])
        return self.account(account.id)

    def account(self, account_id, transactions=10):
        """The account with its balances and its newest transactions."""
        with self._transaction("BEGIN"):
            account = self._account(account_id)
            account.balances = self._balances(account.id)
            account.transactions = self._newest_transactions(account.id, to_limit(transactions)) if transactions else []
        return account

    def accounts(self):
        """Every account with its balances, oldest first."""
        with self._transaction("BEGIN"):
            accounts = {row[0]: Account(*row) for row in self.db.execute(f"SELECT {ACCOUNT} FROM accounts ORDER BY rowid")}
            for account_id, *row in self.db.execute("SELECT account_id, currency, available_amount, reserved_amount"
                                                    " FROM balances ORDER BY currency"):
                if account_id in accounts:  # a balance row without its account is verify's business
                    accounts[account_id].balances[row[0]] = Balance(*row)
        return list(accounts.values())

    def close_account(self, account_id):
        """Close an account: it keeps its history and refuses new money and trades. Its open orders are
        cancelled in the same transaction (reason CLOSED), their reserves released."""
        with self._transaction():
            account = self._account(account_id, active=True)
            for order in self.orders(account.id, open_only=True):
                self._close(order, "CANCELLED", CLOSED)
            now = utc_now()
            self.db.execute("UPDATE accounts SET is_active = 0, closed_at = ?, updated_at = ? WHERE id = ?",
                            (now, now, account.id))
            self._rows.clear()
        return self.account(account.id)

    def transactions(self, account_id, limit=None):
        """The account's transactions, newest first."""
        return list(self.history(account_id, limit))

    def history(self, account_id, limit=None):
        """transactions() one by one, read as they are needed (a million cost no memory)."""
        limit = to_limit(limit)
        with self._transaction("BEGIN"):
            account_id = self._account(account_id).id
            for row in self.db.execute(f"SELECT {TRANSACTION} FROM transactions WHERE account_id = ? ORDER BY id DESC"
                                       " LIMIT ?", (account_id, limit)):
                yield Transaction(*row)

    def _newest_transactions(self, account_id, limit):
        return [Transaction(*row) for row in self.db.execute(
            f"SELECT {TRANSACTION} FROM transactions WHERE account_id = ? ORDER BY id DESC LIMIT ?", (account_id, limit))]

    def reset(self, account_id, balance=Decimal(5000), currency=None):
        """Start over, keeping the past: cancel open orders, log every balance to zero, then deposit balance
        (of the account's own currency unless currency says otherwise)."""
        balance, currency = to_amount(balance, "balance", zero=True), None if currency is None else to_currency(currency)
        with self._transaction():
            account = self._account(account_id, active=True)
            currency = currency or account.currency
            for order in self.orders(account.id, open_only=True):
                self.cancel(order.id)
            olds = self.account(account.id, 0).balances.values()
            self.risk.flowing(account.id, {old.currency: -old.available for old in olds})
            for old in olds:
                self._move(account.id, old.currency, -old.available, legs=[("RESET", -old.available, "Reset to zero")])
            self.risk.flowing(account.id, {currency: balance})
            self._move(account.id, currency, balance, legs=[("DEPOSIT", balance, "Reset deposit")])
            self.db.execute("UPDATE accounts SET pnl_after_trade = (SELECT ifnull(max(id), 0) FROM trades),"
                            " updated_at = ? WHERE id = ?", (utc_now(), account.id))
            self._rows.clear()
        return self.account(account.id)

    # --- Money in and out ---

    def deposit(self, account_id, amount, currency=None, description=None, ref=None):
        """Add money (in the account's own currency unless currency says otherwise); a retry with the same
        ref returns the first transaction."""
        return self._transfer("DEPOSIT", account_id, to_amount(amount), currency, description, ref)

    def withdraw(self, account_id, amount, currency=None, description=None, ref=None):
        """Take money out (in the account's own currency unless currency says otherwise), never below zero
        available; a retry with the same ref returns the first."""
        return self._transfer("WITHDRAWAL", account_id, to_amount(amount).copy_negate(), currency, description, ref)

    def _transfer(self, kind, account_id, amount, currency, description, ref):
        currency, ref = None if currency is None else to_currency(currency), None if ref is None else to_ref(ref)
        description = kind.title() if description is None else to_text(description, "description")
        with self._transaction():
            account = self._account(account_id)
            currency = currency or account.currency
            earlier = self._retried(account.id, ref, kind, currency, amount)
            if earlier:
                return earlier
            self.risk.flowing(self._active(account).id, {currency: amount})
            return self._move(account.id, currency, amount, legs=[(kind, amount, description)], ref=ref)[0]

    def import_rows(self, account_id, rows, first_line=2, source=None):
        """Deposits and withdrawals in bulk, in one SQLite transaction: every row or none.

        Each row is (type, amount, currency, description, ref), as in a CSV file, numbered from
        first_line; an empty row (a blank line) is skipped. A row whose ref is already recorded with the
        same details is skipped too. With source, a key for where the rows come from (the command line
        gives a hash of the file's bytes), a row without a ref gets the ref 'SOURCE line N', so the same
        rows from the same source are recorded once. Returns (recorded, skipped).
        """
        # Checked whole before the write lock is taken, so a slow reader holds up no other writer.
        rows = [to_row(line, row, source) for line, row in enumerate(rows, first_line) if "".join(map(str, row)).strip()]
        recorded, seen, balances = 0, {}, {}
        with self._transaction():
            account_id, now = self._account(account_id, active=True).id, utc_now()
            for start in range(0, len(rows), 500):  # refs looked up, and rows written, 500 at a time
                chunk = rows[start:start + 500]
                earlier = self._recorded(account_id, [row[-1] for row in chunk if row[-1]])
                new = [values for values in (self._import_row(account_id, row, earlier, seen, balances, now)
                                             for row in chunk) if values]
                self.db.executemany("INSERT INTO transactions (account_id, transaction_type, currency, amount,"
                                    " balance_after, description, reference_id, created_at, price_id) VALUES (?, ?,"
                                    " ?, ?, ?, ?, ?, ?, ?)", new)
                recorded += len(new)
            self.risk.flowing(account_id, {currency: balance.total - self._balance(account_id, currency).total
                                           for currency, balance in balances.items()})  # what the file moved, at
            # the index before it (the balances it moved are written just below)
            self.db.executemany(UPSERT_BALANCE, [(account_id, b.currency, fmt(b.available), fmt(b.reserved), now, now, now)
                                                 for b in balances.values()])
            self._held.clear()
            self._ids.clear()  # SQLite gave the log's new rows their ids
        return recorded, len(rows) - recorded

    def _import_row(self, account_id, row, earlier, seen, balances, now):
        """One checked row's values for the INSERT, its balance moved; None when its ref is recorded already,
        by an earlier import (earlier) or an earlier row (seen)."""
        line, kind, currency, amount, description, ref = row
        try:
            if ref in seen:
                if seen[ref][1:] != (kind, currency, amount):
                    raise PaperError(f"ref {ref!r} is on line {seen[ref][0]} with other details")
                return None
            if ref in earlier:
                same_details(ref, earlier[ref], (kind, currency, amount))
                return None
            if ref:
                seen[ref] = line, kind, currency, amount
            if currency not in balances:
                balances[currency] = self._balance(account_id, currency)
            after = balances[currency].move(amount)
        except PaperError as error:
            raise PaperError(f"line {line}: {error}") from None
        return account_id, kind, currency, fmt(amount), fmt(after), description, ref, now, self._price_id

    # --- Trading ---

    def trade(self, account_id, side, symbol, qty=None, price=None, fee_rate=FEE_RATE, ref=None, slippage=ZERO,
              sl=None, tp=None, trail=None, risk=None):
        """Buy or sell qty of BASE now, at price in QUOTE or else the symbol's latest recorded close; the
        fee is in QUOTE. With slippage, a buy pays price x (1 + slippage) and a sell gets price x
        (1 - slippage), rounded to 8 decimal places against the trader. A buy may be protected (sl, tp,
        trail: see _protect) and sized by risk instead of qty (see _sized). A sell of BASE that its
        protections hold takes it from them. Returns the Trade."""
        side, symbol, checked, _, fee_rate = to_terms(side, symbol, 1 if qty is None else qty, price or 1, fee_rate)
        qty, protection = None if qty is None else checked, to_protection(side, sl, tp, trail, risk, qty)
        slippage, ref = to_fee_rate(slippage, "slippage"), None if ref is None else to_ref(ref)
        price = None if price is None else slipped(to_amount(price, "price"), side, slippage)
        with self._transaction():
            account = self._account(account_id)
            # A retry at the latest close is the same trade, whatever the market did since.
            earlier = self._retried(account.id, ref, side, symbol, qty, price, fee_rate)
            if earlier:
                return earlier
            if price is None:
                latest = self._latest_price(symbol)
                if latest is None:
                    raise PaperError(f"no recorded price for {symbol}: give a price, or record one with tick()")
                price = slipped(latest.close, side, slippage)
            if slippage:  # a slipped price is on the tick too, rounded against the trader
                price = self.risk.on_tick(symbol, price, side)
            sl, tp, trail, risk = protection
            if side == "buy":
                at_entry(price, sl, tp)
                qty = qty if qty is not None else self._sized(account.id, symbol, price, sl, risk, fee_rate)
            else:
                self._unprotect(account.id, symbol, qty)
            self.risk.check_order(symbol, qty, [price, sl, tp])
            trade = self._execute(self._active(account).id, side, symbol, qty, price, fee_rate, ref)
            if side == "buy":
                self._protect(trade, sl, tp, trail)
            return trade

    def _execute(self, account_id, side, symbol, qty, price, fee_rate, ref=None, order_id=None, release=ZERO):
        """Fill qty at price: the trade and its legs. release is what an order had set aside for it. A buy
        is refused (RiskRefused) if the account's risk rules forbid it."""
        if side == "buy":
            self.risk.buying(account_id, symbol, qty, price)
        (base, quote), (value, fee) = symbol.split("/"), cost(qty, price, fee_rate)
        if value + fee >= LIMIT:  # no balance pays for it, and no amount paper keeps holds it
            raise (InsufficientFunds if side == "buy" else PaperError)(
                f"{side} {fmt(qty)} {symbol} @ {fmt(price)} comes to {fmt(value + fee)} {quote}, its fee included:"
                " paper keeps every amount below 10^18")
        trade = Trade(None, account_id, order_id, symbol, side, *map(as_stored, (qty, price, fee_rate, fee)), ref,
                      utc_now(), self._price_id)  # its amounts as read back
        trade.id = self._next_id("trades")
        self.db.hold(INSERT_TRADE, trade.row(TRADE))
        what, kind = f"{side} {fmt(qty)} {symbol} @ {fmt(price)}", f"TRADE_{side.upper()}"
        if side == "buy":  # pays value + fee of quote, from the order's reserve first; gets qty of base
            trade.transactions = self._move(account_id, quote, release - value - fee, -release, [
                (kind, -value, what), ("FEE", -fee, what)], ref, trade.id)
            trade.transactions += self._move(account_id, base, qty, ZERO, [(kind, qty, what)], ref, trade.id)
        else:  # pays qty of base, from the order's reserve first; gets value - fee of quote
            trade.transactions = self._move(account_id, base, release - qty, -release, [(kind, -qty, what)], ref,
                                            trade.id)
            trade.transactions += self._move(account_id, quote, value - fee, ZERO, [
                (kind, value, what), ("FEE", -fee, what)], ref, trade.id)
        return trade

    def place_order(self, account_id, side, symbol, qty=None, limit_price=None, fee_rate=FEE_RATE, type="limit",
                    stop_price=None, expires=None, ref=None, slippage=ZERO, spend=None, trail=None, trail_amount=None,
                    sl=None, tp=None, risk=None):
        """An order that rests until the market reaches it (see Order), or a fill, a cancel or its expiry
        (market time): what it may spend moves from available to reserved. If the latest recorded price
        already reaches it, it fills at once at that price; a market order waits for the next price. A
        market buy may give spend (an amount of QUOTE) instead of qty: it buys what spend pays for, fee
        included, at the price it fills at. A trailing stop trails the market by trail (a share) or
        trail_amount from the latest close on. A buy may be protected (sl, tp, trail: placed on each fill,
        see _protect) and sized by risk (see _sized). A retry with the same ref returns the first."""
        order, protection, spend = self._order_to_place(side, symbol, qty, limit_price, fee_rate, type, stop_price,
                                                        expires, ref, slippage, spend, trail, trail_amount, sl, tp,
                                                        risk)
        trailing = order.type == "trailing-stop"
        with self._transaction():
            account = self._account(account_id)
            earlier = self._retried(account.id, order.reference_id, *order_terms(order))
            if earlier:
                earlier.fills = self._fills(earlier.id)
                return earlier
            latest = self._latest_price(order.symbol)
            self._at_latest(order, latest, spend)
            entry = order.limit_price or order.stop_price or order.reserve_price
            if order.side == "buy":
                order.protect_sl, order.protect_tp, order.protect_trail, risk = protection
                at_entry(entry, order.protect_sl, order.protect_tp)
                if order.qty is None:
                    order.qty = self._sized(account.id, order.symbol, entry, order.protect_sl, risk, order.fee_rate)
            else:
                self._unprotect(account.id, order.symbol, order.qty)
            self.risk.check_order(order.symbol, order.qty, [order.limit_price, None if trailing else order.stop_price,
                                                             order.protect_sl, order.protect_tp],
                                  order.reserve_price or order.stop_price)
            if order.side == "buy":  # at the price it would fill at: its limit, else its stop, else the market's
                self.risk.buying(account.id, order.symbol, order.qty, entry)
            return self._place(order, self._active(account).id, latest)

    def _order_to_place(self, side, symbol, qty, limit_price, fee_rate, order_type, stop_price, expires, ref,
                        slippage, spend, trail, trail_amount, sl, tp, risk):
        """place_order's arguments checked, before anything is read: (the Order, its protection as
        to_protection gives it, spend as an amount or None)."""
        trailing = order_type == "trailing-stop"
        order = to_order(side, symbol, 1 if qty is None else qty, limit_price, fee_rate, order_type, stop_price,
                         trail if trailing else None, trail_amount)
        protection = to_protection(order.side, sl, tp, None if trailing else trail, risk, None if qty is None and
                                   spend is None else order.qty)
        order.qty = None if qty is None else order.qty
        order.expires_at, order.reference_id = None if expires is None else to_time(expires), None if ref is None \
            else to_ref(ref)
        order.slippage, spend = to_fee_rate(slippage, "slippage"), None if spend is None else to_amount(spend, "spend")
        if order.slippage and order.type != "market":
            raise PaperError("slippage is for market orders; a limit or stop order fills by the fill rules")
        if spend is not None and (qty is not None or (order.type, order.side) != ("market", "buy")):
            raise PaperError("spend (an amount of QUOTE to buy with, instead of a qty) is for a market buy")
        return order, protection, spend

    def _at_latest(self, order, latest, spend):
        """An order's terms that the latest price of its symbol (latest: its row, or None) sets: refused if
        it expires by then; a market order's reserve (and its qty, if it spends an amount), a trailing
        stop's mark and stop."""
        if latest and order.expires_at and order.expires_at <= latest.time:
            raise PaperError(f"expires {order.expires_at} is not after the latest price of {order.symbol}"
                             f" ({latest.time})")
        if order.type == "market":
            market_terms(order, latest, spend, self.risk.step(order.symbol))
        if order.type == "trailing-stop":
            self._trail_from(order, latest)

    def _place(self, order, account_id, latest):
        """Place a checked order: its reserve set aside, its row written, matched at once against the latest
        price (latest: its row) if that reaches it (a market order waits for the next), then kept in the
        symbol's book."""
        order.id, order.account_id, order.created_at = new_id(), account_id, utc_now()
        order.updated_at, order.reserved, order.price_id = order.created_at, order.reserve_for(order.qty), \
            self._price_id
        self._move(order.account_id, order.reserve_currency, -order.reserved, order.reserved)
        age = self._next_id("orders")  # its rowid: the book's order of arrival
        self.db.hold(INSERT_ORDER, (age, *order.row(ORDER)))
        if latest and order.type != "market" and any(  # a marketable order: matched against the latest price (its
                price is None or (price >= latest.close if (order.side == "buy") != stop else price <= latest.close)
                for stop, price in order.legs()):  # close), as on an exchange (a leg it reaches, as Book.due finds them)
            book = Book()
            book.add(order, age)
            order.fills = self._match(book, *[latest.close] * 4, market=True)["fills"]
        if order.status == "OPEN" and order.symbol in self._books:  # after the match: a stop-limit triggered
            self._books[order.symbol].add(order.copy(ORDER), age)  # by it rests with its limit leg alone; the book's
            # own copy, as stored: the caller's may change
        return order

    def _trail_from(self, order, latest):
        """A trailing stop's mark, the latest close, and its stop, trail below it (a sell; above, a buy)."""
        if latest is None:
            raise PaperError(f"no recorded price for {order.symbol}: a trailing stop starts from the latest close;"
                             " record one with `tick`")
        order.mark = latest.close  # its stop moves by itself: to 8 decimal places, not the tick a price one gives is on
        order.stop_price = trail_stop(order.side, order.mark, order.trail, order.trail_amount)
        if order.stop_price <= 0:
            raise PaperError(f"trail amount {fmt(order.trail_amount)} puts the stop at or below zero, from"
                             f" {fmt(order.mark)}")

    def _sized(self, account_id, symbol, price, sl, risk, fee_rate):
        """The qty of a buy at price with a stop loss at sl that loses risk (a share, else the account's
        risk-per-trade rule) of the equity if the stop fills: equity x risk / (price - sl), in the symbol's
        steps, and no more than what the available balance pays for, fee included."""
        rules = self.risk.rules(account_id)
        risk = risk if risk is not None else rules and rules.risk_per_trade
        if risk is None:
            raise PaperError("give a qty, or a risk share (or the account's risk-per-trade rule) to size the buy")
        base, quote = symbol.split("/")
        balances = self._balances(account_id)
        _, equity, unpriced = self._holdings(balances.values(), quote)
        if equity is None:
            raise PaperError(f"risk sizes a buy by the equity, which has no value in {quote}: {', '.join(unpriced)}"
                             " has no price")
        step = self.risk.step(symbol)
        qty = min(floor_qty(FLOORED.divide(FLOORED.multiply(equity, risk), price - sl), step),
                  affordable(balances.get(quote, Balance(quote)).available, price, fee_rate, step))
        if qty <= 0:
            raise PaperError(f"risk {share_text(risk)} of equity {fmt(equity)} with a stop loss {fmt(price - sl)} below"
                             f" {fmt(price)} buys no {symbol}")
        return qty

    def _protect(self, trade, sl=None, tp=None, trail=None):
        """After a buy fill (trade), in its transaction: its protection on the qty it bought, a sell linked
        to it (entry_trade_id): an oco (a take profit and a stop loss), a stop (a stop loss), a trailing stop,
        or a limit (a take profit). What the entry gives none of, the account's rules give (a stop loss,
        take profit or trailing stop as shares of the fill price); a take profit and a trailing stop do not
        go together, and the entry's own choice wins. Placed at a price the market has passed already, it
        fills at once."""
        rules = self.risk.rules(trade.account_id)
        if rules and sl is None and trail is None:
            if rules.stop_loss:
                sl = self.risk.on_tick(trade.symbol, trade.price * (1 - rules.stop_loss), "sell")
            elif rules.trailing_stop and tp is None:
                trail = rules.trailing_stop
        if rules and tp is None and trail is None and rules.take_profit:
            tp = self.risk.on_tick(trade.symbol, trade.price * (1 + rules.take_profit), "buy")
        if sl is None and tp is None and trail is None:
            return None
        order_type = "oco" if sl is not None and tp is not None else "stop" if sl is not None else \
            "trailing-stop" if trail is not None else "limit"
        order = to_order("sell", trade.symbol, trade.qty, tp, trade.fee_rate, order_type, sl, trail)
        order.entry_trade_id, latest = trade.id, self._latest_price(trade.symbol)
        if trail is not None:
            self._trail_from(order, latest)
        self._place(order, trade.account_id, latest)
        self.risk.log(trade.account_id, "protection", "protected", trade.symbol, f"trade {trade.id}: {order_text(order)}",
                      order.id)
        return order

    def _unprotect(self, account_id, symbol, qty):
        """Before a sell of qty: what the available BASE is short of comes out of the account's protective
        orders on it, newest first (each shrinks, or is cancelled, its reserve released), so that closing a
        position by hand never fails because of its own stop."""
        base = symbol.split("/")[0]
        short = qty - self._balance(account_id, base).available
        if short <= 0:
            return
        for order in self.orders(account_id, open_only=True):
            if short <= 0:
                break
            if order.side != "sell" or order.entry_trade_id is None or not order.symbol.startswith(f"{base}/"):
                continue
            taken, left = min(short, order.qty - order.filled_qty), order.qty - order.filled_qty
            short -= taken
            what = f"order {order.id} ({order_text(order)}, protecting trade {order.entry_trade_id})"
            if taken == left:
                self._close(order, "CANCELLED", f"its {base} was sold another way")
                self.notes.append(f"{what} is cancelled: this sell takes its {fmt(taken)} {base}")
            else:
                self._move(account_id, base, taken, -taken)
                order.qty -= taken
                self._update(order, order.filled_qty, order.reserved - taken, "OPEN")
                self.notes.append(f"{what} keeps {fmt(order.qty - order.filled_qty)} {base}: this sell takes"
                                  f" {fmt(taken)}")
            self.risk.log(account_id, "protection", "taken", order.symbol, f"{fmt(taken)} {base} taken from order"
                          f" {order.id} for a sell of {fmt(qty)} {symbol}", order.id)

    def _flatten(self, rules, message):
        """A halt that flattens: every holding but the account's own currency sold at the next price of
        CURRENCY/ACCOUNT CURRENCY (a market order), its open orders cancelled already."""
        account = self._account(rules.account_id)
        for currency, balance in self._balances(account.id).items():
            symbol = f"{currency}/{account.currency}"
            if currency == account.currency or not balance.available:
                continue
            latest = self._latest_price(symbol)
            if latest is None:
                self.risk.log(account.id, "max-drawdown", "flattened", symbol, f"{fmt(balance.available)} {currency}"
                              f" cannot be sold: no price of {symbol} is recorded")
                continue
            order = to_order("sell", symbol, balance.available, None, FEE_RATE, "market", None)
            market_terms(order, latest, None)
            self._place(order, account.id, latest)
            self.risk.log(account.id, "max-drawdown", "flattened", symbol, f"{message}: {order_text(order)} at the next"
                          " price", order.id)

    def _fills(self, order_id):
        """The trades that filled an order, oldest first, each with its legs."""
        return [Trade(*row, [Transaction(*leg) for leg in self.db.execute(
            f"SELECT {TRANSACTION} FROM transactions WHERE trade_id = ? ORDER BY id", (row[0],))])
            for row in self.db.execute(f"SELECT {TRADE} FROM trades WHERE order_id = ? ORDER BY id", (order_id,))]

    def fill(self, order_id, price=None, qty=None):
        """Execute an open order by hand, whole or in part, at price (default its limit; a stop order needs
        one); returns the Trade."""
        price = None if price is None else to_amount(price, "price")
        qty = None if qty is None else to_amount(qty, "qty")
        with self._transaction():
            order = self._open_order(order_id)
            left, limit = order.qty - order.filled_qty, order.limit_price
            price, qty = limit if price is None else price, left if qty is None else qty
            if price is None:
                raise PaperError(f"{article(order.type)} {order.type} order has no limit price: give the price it"
                                 " fills at (price=)")
            if limit is not None and (price > limit if order.side == "buy" else price < limit):
                raise PaperError(f"a {order.side} order limited to {fmt(limit)} cannot fill at {fmt(price)}")
            if qty > left:
                raise PaperError(f"qty {fmt(qty)} is more than the {fmt(left)} left on order {order.id}")
            keep = order.reserve_for(left - qty)
            trade = self._execute(self._account(order.account_id, active=True).id, order.side, order.symbol, qty,
                                  price, order.fee_rate, order_id=order.id, release=order.reserved - keep)
            self._update(order, order.filled_qty + qty, keep, "OPEN" if left - qty else "FILLED")
            if order.side == "buy":
                self._protect(trade, order.protect_sl, order.protect_tp, order.protect_trail)
        return trade

    def cancel(self, order_id):
        """Cancel an open order (a closed account's too): its reserve goes back to available."""
        with self._transaction():
            return self._close(self._open_order(order_id), "CANCELLED")

    def _close(self, order, status, reason=None):
        """The order ends unfilled (CANCELLED or EXPIRED, for reason if it was not asked for): what it
        still reserves is available again."""
        self._move(order.account_id, order.reserve_currency, order.reserved, -order.reserved)
        order.reason = reason
        self._update(order, order.filled_qty, ZERO, status)
        return order

    def _write_order(self, order):
        """What changes in an order's row as it lives (see UPDATE_ORDER), from the order as it is now."""
        self.db.hold(UPDATE_ORDER, (fmt(order.qty), fmt(order.filled_qty), fmt(order.reserved), order.status,
                                    order.updated_at, order.triggered, order.reason, order.price_id,
                                    None if order.stop_price is None else fmt(order.stop_price),
                                    None if order.mark is None else fmt(order.mark), order.id))

    def _update(self, order, filled, reserved, status, triggered=None):
        order.filled_qty, order.reserved, order.status, order.updated_at = filled, reserved, status, utc_now()
        order.triggered, order.price_id = order.triggered if triggered is None else triggered, self._price_id
        self._write_order(order)
        book = self._books.get(order.symbol)
        if book and status != "OPEN":
            book.remove(order.id)
        elif book and order.id in book.orders:  # filled in part by hand, or shrunk: the book must see what is left
            book.orders[order.id] = order, book.orders[order.id][1]
            if order.id in book.trailing:
                book.trailing[order.id] = order

    def orders(self, account_id, open_only=False):
        """The account's orders, newest first."""
        with self._transaction("BEGIN"):
            return [Order(*row) for row in self.db.execute(
                f"SELECT {ORDER} FROM orders WHERE account_id = ?{' AND status = ?' if open_only else ''} ORDER BY"
                " rowid DESC", (self._account(account_id).id, *(["OPEN"] if open_only else [])))]

    # --- Risk (the rules themselves are in the Risk unit) ---

    def set_risk(self, account_id, **rules):
        """Set some of the account's risk rules (RULES: shares like '5%' or 0.05, counts, flatten), keeping
        the others; None clears one. Returns its Rules."""
        unknown = set(rules) - set(RULES)
        if unknown:
            raise PaperError(f"no risk rule {', '.join(sorted(unknown))}: the rules are {', '.join(RULES)}")
        checked = {name: None if value is None or value == "none" else to_count(value, name.replace("_", " ")) if
                   name in ("cooldown", "max_open_positions") else bool(value) if name == "flatten" else to_share(
                   value, name.replace("_", " "), below=name in ("stop_loss", "trailing_stop", "max_drawdown"))
                   for name, value in rules.items()}
        with self._transaction():
            account = self._account(account_id, active=True)
            current = self.risk.rules(account.id) or Rules(account.id)
            new = Rules(**{**vars(current), **checked})
            if new.stop_loss and new.trailing_stop:
                raise PaperError("a stop loss and a trailing stop are both a stop: give one of them (a rule goes with"
                                 " none: stop_loss=None)")
            if new.take_profit and new.trailing_stop:
                raise PaperError("a take profit and a trailing stop cannot protect one entry together (an oco has"
                                 " one stop leg, which does not trail): give one of them")
            if new.flatten and not new.max_drawdown:
                raise PaperError("flatten sells every holding when the max drawdown halts the account: give a max"
                                 " drawdown too")
            if new.max_drawdown and not current.max_drawdown:  # the drawdown counts from here
                new.units = new.peak = None
            new.flatten = int(bool(new.flatten))
            self.risk.save(new)
            self.risk.log(account.id, "rules", "set", None, rules_text(new))
        return new

    def clear_risk(self, account_id):
        """Remove every risk rule of the account (and a halt with them)."""
        with self._transaction():
            account = self._account(account_id)
            self.db.execute("DELETE FROM risk_rules WHERE account_id = ?", (account.id,))
            self.risk.forget()
            self.risk.log(account.id, "rules", "cleared", None, "no risk rules")

    def risk_rules(self, account_id):
        """The account's Rules, or None when it has none."""
        with self._transaction("BEGIN"):
            return self.risk.rules(self._account(account_id).id)

    def risk_events(self, account_id, limit=None):
        """What the account's risk rules did, newest first: [{"id", "time", "rule", "action", "symbol",
        "detail", "order_id"}]."""
        with self._transaction("BEGIN"):
            return [dict(zip(("id", "time", "rule", "action", "symbol", "detail", "order_id"), row)) for row in
                    self.db.execute("SELECT id, time, rule, action, symbol, detail, order_id FROM risk_events WHERE"
                                    " account_id = ? ORDER BY id DESC LIMIT ?",
                                    (self._account(account_id).id, to_limit(limit)))]

    def resume(self, account_id):
        """Lift a drawdown halt: buys are taken again, and the peak counts from here."""
        with self._transaction():
            return self.risk.resume(self._account(account_id).id)

    def set_symbol(self, symbol, replace=False, **rules):
        """Record some of a symbol's exchange rules (SYMBOL_RULES: tick_size, step_size, min_qty,
        min_notional), keeping the others (all of them given, with None for no rule, if replace). Returns
        them."""
        symbol = to_symbol(symbol)
        unknown = set(rules) - set(SYMBOL_RULES)
        if unknown:
            raise PaperError(f"no symbol rule {', '.join(sorted(unknown))}: they are {', '.join(SYMBOL_RULES)}")
        checked = {name: rules[name] and to_amount(rules[name], name.replace("_", " ")) for name in rules}
        with self._transaction():
            kept = {} if replace else self.risk.symbol_rules(symbol) or {}
            checked = {name: checked[name] if name in checked else kept.get(name) for name in SYMBOL_RULES}
            self.db.execute(f"INSERT OR REPLACE INTO symbols (symbol, {', '.join(SYMBOL_RULES)}, updated_at) VALUES"
                            " (?, ?, ?, ?, ?, ?)", (symbol, *stored(checked.values()), utc_now()))
            self.risk.symbols.pop(symbol, None)
        return checked

    def symbol_rules(self, symbol):
        """A symbol's exchange rules {tick_size, step_size, min_qty, min_notional}, or None."""
        with self._transaction("BEGIN"):
            return self.risk.symbol_rules(to_symbol(symbol))

    def clear_symbol(self, symbol):
        """Forget a symbol's exchange rules."""
        symbol = to_symbol(symbol)
        with self._transaction():
            self.db.execute("DELETE FROM symbols WHERE symbol = ?", (symbol,))
            self.risk.symbols.pop(symbol, None)

    def fetch_symbol_rules(self, symbols, base_url=None, report=None):
        """Read symbols' exchange rules from the exchange (see Exchange.symbol_rules) and record them, all of
        them in one transaction: {symbol: rules}. report(line) is told of each wait."""
        found = Exchange(base_url, report).symbol_rules([symbols] if isinstance(symbols, str) else list(symbols))
        with self._transaction():
            for symbol, rules in found.items():
                self.set_symbol(symbol, replace=True, **rules)
        return found

    # --- The market ---

    def tick(self, symbol, price=None, time=None, open=None, high=None, low=None, close=None, allow_future=False):
        """Record a price of symbol at market time (default now), or a bar (open, high, low, close), and in
        the same transaction expire, trigger and fill every open order on symbol that it reaches, of
        every account, oldest order first (the rules are Book.due's). Per symbol, time never goes back;
        the same symbol and time again with the same prices is a retry, and records nothing. A time more
        than 24 hours after the clock is refused (a typo would block the symbol for good) unless
        allow_future says the timeline is simulated.

        Returns {"symbol", "time", "open", "high", "low", "close", "recorded", "fills": [Trade],
        "cancelled": [Order], "triggered": [Order]}.
        """
        symbol, (bar, texts) = to_symbol(symbol), to_bar(price, open, high, low, close)
        time = utc_now() if time is None else to_time(time)
        if self.db.in_transaction:  # in a batch: no savepoint is needed, it checks everything before it writes
            try:
                return self._tick(symbol, time, bar, texts, allow_future)
            except sqlite3.Error as error:  # (as _transaction gives it)
                raise self._refusal(error) from None
        with self._transaction():
            return self._tick(symbol, time, bar, texts, allow_future)

    def _tick_row(self, row, allow_future=False):
        """Record a row as read_prices (or fetched_bars) gives it, (symbol, price, time, open, high, low, close),
        its time in paper's form already, inside a batch: the result as tick's."""
        symbol, price, market_time, *bar = row
        return self._tick(to_symbol(symbol), market_time, *to_bar(price, *bar), allow_future)

    def _tick(self, symbol, market_time, bar, texts, allow_future=False):
        result = {"symbol": symbol, "time": market_time, "open": bar[0], "high": bar[1], "low": bar[2], "close": bar[3],
                  "recorded": False, "fills": [], "cancelled": [], "triggered": [], "risk": []}
        latest = self._latest[symbol] if symbol in self._latest else self._latest_price(symbol)
        if latest and market_time <= latest.time:
            same = latest if market_time == latest.time else Price(self.db.execute(
                f"SELECT id, {PRICE_BAR} FROM prices WHERE symbol = ? AND time = ?", (symbol, market_time)).fetchone()
                                                                     or ())
            if not same:
                raise TimeGoesBack(f"{symbol} has a price at {latest.time}: time never goes back, so {market_time} is"
                                   " refused", symbol, latest.time)
            if tuple(same[2:]) != bar:
                raise PaperError(f"{symbol} at {market_time} is recorded already, with open {fmt(same.open)} high"
                                 f" {fmt(same.high)} low {fmt(same.low)} close {fmt(same.close)}: a retry repeats them")
            return result
        if not allow_future and market_time > self._horizon[1]:
            raise PaperError(f"{symbol} at {market_time} is more than 24 hours after the clock ({self._began}): a mistyped"
                             " time would keep every real price out; give allow_future=True if the"
                             " timeline is simulated")
        price_id = (self._newest if self._newest is not None else self._price_id or 0) + 1  # nobody else adds one:
        # this transaction holds the write lock
        self.db.hold(INSERT_PRICE, (price_id, symbol, market_time, *texts, self._began))
        self._latest[symbol], self._newest, result["recorded"] = Price((price_id, market_time, *bar)), price_id, True
        book = self._books[symbol] if symbol in self._books else self._book(symbol)
        if book.orders:
            self._match(book, *bar, at=market_time, result=result)
        if self.risk.watched != []:  # accounts with a max-drawdown rule: none most of the time
            self.risk.watch(result)
        return result

    def _match(self, book, open_price, high, low, close, at=None, market=False, result=None):
        """Expire, then trigger or fill, the orders of book that a bar reaches, oldest first. A fill is an
        ordinary trade of the whole rest of the order; one that costs more than its reserve and the
        available balance together is cancelled instead, its reserve released. A stop-limit triggered
        by a price is matched as a limit order from the next price on (at once when it is placed)."""
        result = result or {"fills": [], "cancelled": [], "triggered": []}
        if not book.orders:  # most prices reach no order: the book is empty, or its nearest orders are out of reach
            return result
        for order in book.expired(at) if at else ():
            result["cancelled"].append(self._close(order, "EXPIRED"))
        due = book.due(open_price, high, low)
        while due:
            for order, age, stop, price in due:
                if order.type == "stop-limit" and not order.triggered:
                    self._update(order, order.filled_qty, order.reserved, "OPEN", triggered=1)
                    book.add(order, age)
                    result["triggered"].append(order)
                    continue
                trade = self._fill_due(order, price, placing=market)
                if trade:
                    result["fills"].append(trade)
                    if stop and order.type != "market":
                        self.risk.stopped(order, trade)
                else:
                    result["cancelled"].append(order)
            due = book.due(close, close, close) if market and result["triggered"] and not result["fills"] else []
        if book.trailing and not market:
            self._trail(book, high, low)
        return result

    def _trail(self, book, high, low):
        """After a bar: each trailing stop of book placed before it moves its mark and stop (see
        Order.trailed); a buy's reserve follows its stop. One placed at this price starts from its close."""
        newest = self._price_id
        for order in list(book.trailing.values()):
            if order.id not in book.orders or order.price_id == newest:
                continue
            mark, stop = order.trailed(high, low)
            if (mark, stop) == (order.mark, order.stop_price):
                continue
            moved, order.mark, order.stop_price = stop != order.stop_price, mark, stop
            reserve = order.reserve_for(order.qty - order.filled_qty)
            if reserve != order.reserved:  # a buy's stop, and so its reserve, came down
                self._move(order.account_id, order.reserve_currency, order.reserved - reserve, reserve - order.reserved)
            order.reserved, order.updated_at, order.price_id = reserve, utc_now(), newest
            self._write_order(order)
            if moved:
                book.moved(order, book.orders[order.id][1])

    def _fill_due(self, order, price, placing=False):
        """Fill the rest of a due order at price: the Trade; or cancel it, saying why in order.reason (its
        account is closed, or the fill costs more than the reserve and available together; 'when placed:'
        first if it was being placed): None."""
        if not self._account(order.account_id).is_active:
            reason = "its account is closed"
        else:
            try:
                price = price if order.type != "market" else slipped(price, order.side, order.slippage)
                left = order.qty - order.filled_qty
                if order.sized_at_fill:  # what its reserve pays for, at this price and fee
                    left = affordable(order.reserved, price, order.fee_rate, self.risk.step(order.symbol))
                    if not left:
                        raise PaperError(f"its reserve {fmt(order.reserved)} buys none at {fmt(price)}")
                if order.side == "buy":  # the rules first: a refusal cancels the order (one row on the record)
                    self.risk.buying(order.account_id, order.symbol, left, price)
                with self._transaction():  # a savepoint: a fill it cannot pay leaves nothing behind
                    trade = self._execute(order.account_id, order.side, order.symbol, left, price, order.fee_rate,
                                          order_id=order.id, release=order.reserved)
                    order.qty = order.filled_qty + left  # as it was, but for an order sized at its fill
                    self._update(order, order.qty, ZERO, "FILLED")
                    if order.side == "buy":
                        self._protect(trade, order.protect_sl, order.protect_tp, order.protect_trail)
                return trade
            except RiskRefused as error:  # on the record as refused; the order goes, saying why
                reason = str(error)
                self.risk.log(order.account_id, error.event[1], "cancelled", order.symbol, reason, order.id)
            except PaperError as error:
                reason = f"not filled at {fmt(price)}: {error}"
        self._close(order, "CANCELLED", f"{AT_ONCE}{reason}" if placing else reason)
        return None

    def _book(self, symbol):
        """The open orders of symbol, loaded once and then kept up to date (see __init__)."""
        if symbol not in self._books:
            book = self._books[symbol] = Book()
            for age, *row in self.db.execute(f"SELECT rowid, {ORDER} FROM orders WHERE symbol = ? AND status = 'OPEN'",
                                             (symbol,)):
                book.add(Order(*row), age)
        return self._books[symbol]

    def _latest_price(self, symbol):
        """(id, time, open, high, low, close) of symbol's latest price, or None."""
        if symbol not in self._latest:
            row = self.db.execute(f"SELECT id, {PRICE_BAR} FROM prices WHERE symbol = ? ORDER BY time DESC LIMIT 1",
                                  (symbol,)).fetchone()
            self._latest[symbol] = row and Price(row)
        return self._latest[symbol]

    def prices(self, symbol=None, limit=None, until=None):
        """Recorded prices, newest first, at or before market time until if given: [{"symbol", "time",
        "open", "high", "low", "close"}]."""
        return list(self.newest_prices(symbol, limit, until))

    def newest_prices(self, symbol=None, limit=None, until=None, oldest_first=False):
        """prices() one by one, read as they are needed (a million prices cost no memory); oldest_first: the
        same rows the other way round (as a file of prices is fed)."""
        where, params = (" WHERE id <= ? AND symbol = ?", (to_symbol(symbol),)) if symbol else (" WHERE id <= ?", ())
        if until is not None:
            where, params = f"{where} AND time <= ?", (*params, to_time(until))
        limit, names = to_limit(limit), PRICE.split(", ")
        sql = f"SELECT {PRICE}, id FROM prices{where} ORDER BY id DESC LIMIT ?"
        if oldest_first:  # all of them: straight through the table; the newest n: those, turned round
            sql = f"SELECT {PRICE}, id FROM prices{where} ORDER BY id" if limit < 0 else \
                f"SELECT * FROM ({sql}) ORDER BY id"
        with self._transaction("BEGIN"):
            newest = self._price_id or 0  # the prices recorded when it began: not those recorded while it is read
            for row in self.db.execute(sql, (newest, *params, limit) if "LIMIT" in sql else (newest, *params)):
                yield dict(zip(names, row))

    def delete_prices(self, symbol, start):
        """Remove symbol's prices at or after market time start (a mistyped time that keeps every real
        price out, say), in one transaction, into prices_deleted; refused while the record rests on one
        of them: a trade of symbol made while one was its latest price (at its close, maybe, whatever price
        was recorded last), an order of symbol it filled, expired, triggered or cancelled. Anything else written while one was the newest price (a deposit, another symbol's
        trade) belongs from then on to the market time of the newest price before it. Returns how many
        were removed."""
        symbol, start = to_symbol(symbol), to_time(start)
        doomed = "SELECT id FROM prices WHERE symbol = ? AND time >= ?"
        with self._transaction():
            deleted = self.db.execute(f"SELECT count(*) FROM ({doomed})", (symbol, start)).fetchone()[0]
            if not deleted:
                raise PaperError(f"{symbol} has no price at or after {start}")
            users = [f"trade {row_id}" for (row_id,) in self.db.execute(  # its price_id: the newest of any symbol
                f"SELECT id FROM trades WHERE symbol = ? AND price_id >= (SELECT min(id) FROM ({doomed})) ORDER BY"
                " id LIMIT 3", (symbol, symbol, start))]
            users += [f"order {order_id}" for (order_id,) in self.db.execute(
                f"SELECT id FROM orders WHERE symbol = ? AND (status <> 'OPEN' OR triggered = 1) AND price_id IN"
                f" ({doomed}) LIMIT 3", (symbol, symbol, start))]
            if users:
                raise PaperError(f"{symbol}'s prices at or after {start} are part of the record: {', '.join(users)}"
                                 f" {'was' if len(users) == 1 else 'were'} made or ended while one of them was its"
                                 " latest price; nothing was removed")
            trigger = self.db.execute("SELECT sql FROM sqlite_master WHERE name = 'prices_append_only_delete'"
                                      ).fetchone()
            self.db.execute(f"INSERT INTO prices_deleted SELECT *, ? FROM prices WHERE id IN ({doomed})",
                            (utc_now(), symbol, start))
            self.db.execute("DROP TRIGGER IF EXISTS prices_append_only_delete")  # within this transaction only
            self.db.execute(f"DELETE FROM prices WHERE id IN ({doomed})", (symbol, start))
            if trigger:
                self.db.execute(trigger[0])
            self._forget()
        return deleted

    def fetch(self, symbols, interval, start=None, end=None, base_url=None, follow=False, each=None, stop=None,
              report=None):
        """Record the exchange's closed klines of symbols (BASE/QUOTE) at interval (Binance's public market
        data, see Exchange and kline_steps), each step in one transaction that fills resting orders as tick
        does: from start, but after each symbol's newest recorded price (so a second run records nothing
        new); without start, from that price or else the symbol's last 1,000 bars; to end (default now), or
        with follow on and on as bars close. base_url: default PAPER_MARKET_URL, else Binance's public host;
        report(line) is told of each wait; each and stop as record_klines takes them. Returns the summary
        of record_klines."""
        symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        with self.snapshot():  # each symbol goes on after its newest price (by the index, not a scan)
            after = {symbol: newest[1] for symbol in map(to_symbol, symbols) if (newest := self._latest_price(symbol))}
            apart = {symbol: [seconds(row[0]) for row in self.db.execute(
                "SELECT time FROM prices WHERE symbol = ? ORDER BY id DESC LIMIT 2", (symbol,))] for symbol in after}
        length = INTERVALS.get(to_interval(interval))
        for symbol, (newer, older) in ((symbol, times) for symbol, times in apart.items() if len(times) == 2):
            if report and (round((newer - older) * 1000) != length if length else not  # bars of two lengths
                           28 * DAY <= newer - older <= 31 * DAY):  # overlap (a month is 28 to 31 days)
                named = {ms: name for name, ms in INTERVALS.items()}.get(round((newer - older) * 1000))
                report(f"{symbol}'s newest two prices are {named or f'{newer - older:g} s'} apart, these bars {interval}:"
                       " a symbol's bars of two lengths overlap or leave gaps (one interval a symbol keeps them apart)")
        client = Exchange(base_url, report)
        client.symbol_rules(symbols)  # each symbol listed, and split as the exchange splits it (not BTCU/SDT)
        steps = kline_steps(client, symbols, interval, start, end, follow, after)
        return record_klines(self, steps, each, stop)

    def _balances(self, account_id):
        """The account's balances, {currency: Balance} in currency order (copies); inside a transaction, read
        once while kept (as _balance)."""
        if not self.db.in_transaction:
            return {row[0]: Balance(*row) for row in self.db.execute(BALANCES, (account_id,))}
        currencies = self._held.get((account_id, None))
        if currencies is None:
            rows = self.db.execute(BALANCES, (account_id,)).fetchall()
            for currency, available, reserved in rows:
                self._held[account_id, currency] = Balance(currency, available, reserved)
            currencies = self._held[account_id, None] = [row[0] for row in rows]
        return {currency: self._balance(account_id, currency) for currency in currencies}

    def _price_in(self, currency, quote, given):
        """(price, market time) of currency in quote: 1 for quote itself, the price given, or the latest
        recorded close of CURRENCY/QUOTE with its time; (None, None) when there is none."""
        if currency == quote:
            return Decimal(1), None
        if currency in given:
            return given[currency], None
        latest = self._latest_price(f"{currency}/{quote}")
        return (None, None) if latest is None else (latest.close, latest.time)

    # --- Checks (their work is the Audit's) ---

    def verify(self, account_id=None):
        """Every mismatch between balances, the log, trades, orders and prices, plus SQLite's integrity
        check (see Audit): [{"account_id", "currency", "problem"}], empty when all is well."""
        with self._transaction("BEGIN"):
            scope = (" WHERE account_id = ?", (self._account(account_id).id,)) if account_id else ("", ())
            return Audit(self.db, *scope).problems()


    # --- Results ---

    def valuation(self, account_id, prices=None, quote=None, realized=True):
        """The holdings valued in quote (the account's own currency unless given), the equity, and (unless
        realized=False: it reads every trade) realised P&L by symbol. A currency's price is prices[currency]
        if given, else the latest recorded close of CURRENCY/QUOTE (its market time alongside); a holding
        with neither is unpriced, and then no equity is claimed (None)."""
        given = {to_currency(c): to_amount(p, f"price of {c}", zero=True) for c, p in dict(prices or {}).items()}
        with self._transaction("BEGIN"):
            account = self.account(account_id, 0)
            quote = self._quote(account, quote)
            if quote in given:
                raise PaperError(f"{quote} is the quote currency, worth 1 by definition: give no price for it")
            holdings, equity, unpriced = self._holdings(account.balances.values(), quote, given)
            books = self._realized(account.id)[0] if realized else None
        self.notes += [f"a price was given for {currency}, which account {account.id} does not hold: it values"
                       " nothing" for currency in given if currency not in holdings]
        valued = {"quote": quote, "holdings": holdings, "equity": None if unpriced else equity, "unpriced": unpriced}
        return valued if books is None else valued | {"realized_pnl": {
            symbol: Decimal(fmt(book.realized.quantize(Decimal("1e-18"), context=ROUNDED))) for symbol, book in
            sorted(books.items())}}

    def _holdings(self, balances, quote, given=None):
        """(holdings {currency: {"total", "price", "value", "time"}}, equity or None, [unpriced currencies])
        of balances valued in quote (see valuation)."""
        holdings, equity, unpriced = {}, ZERO, []
        for balance in balances:
            if not balance.total:
                continue
            price, price_time = self._price_in(balance.currency, quote, given or {})
            value = None if price is None else EXACT.multiply(balance.total, price)
            holdings[balance.currency] = {"total": balance.total, "price": price, "value": value, "time": price_time}
            if value is None:
                unpriced.append(balance.currency)
            else:
                equity = EXACT.add(equity, value)
        return holdings, None if unpriced else equity, unpriced

    def _realized(self, account_id, since_reset=True, trips=None):
        """Realised P&L by average cost since the latest reset (or since the account opened): the books
        {symbol: [held, cost, realised]} and each sell's [(trade id, realised)].

        A buy adds qty x price + fee to its symbol's position; a sell realises qty x price - fee - the
        average cost of what it sold. A position never holds more BASE than the account does: coins that
        leave another way (sold through another quote, withdrawn, reset) take their average cost with them
        and realise nothing, and coins sold beyond the position cost their sale price (they realise only
        their fee). Exact to 100 digits. trips (a RoundTrips), if given, follows each book as it goes.
        """
        books, closed, counted = {}, [], set()
        after_trade = self.db.execute("SELECT pnl_after_trade FROM accounts WHERE id = ?", (account_id,)).fetchone()[0] \
            if since_reset else 0
        rows = self.db.execute(  # only the rows that can take coins out (the transactions_out index)
            "SELECT t.currency, +t.balance_after, r.id, r.symbol, r.side, +r.qty, +r.price, +r.fee, t.price_id"
            " FROM transactions t"
            " LEFT JOIN trades r ON r.id = t.trade_id AND r.id > ? WHERE t.account_id = ? AND (t.trade_id IS NOT NULL"
            " OR t.transaction_type IN ('WITHDRAWAL', 'RESET')) ORDER BY t.id", (after_trade, account_id))
        bases = set()  # the BASE of each book: only a row of one of them can cap a position
        with localcontext(ROUNDED):  # +column: text, made a Decimal only where it counts (a long history)
            for currency, held_after, trade_id, symbol, side, qty, price, fee, price_id in rows:
                if trade_id is not None and trade_id not in counted:  # the trade's first leg
                    counted.add(trade_id)
                    bases.add(symbol.partition("/")[0])
                    realized = book_trade(books.setdefault(symbol, Position()), side, Decimal(qty),
                                          Decimal(price), Decimal(fee))
                    closed += [] if realized is None else [(trade_id, realized)]
                    if trips is not None:
                        trips.traded(price_id, symbol, side, Decimal(qty), Decimal(price), realized, books[symbol])
                if currency in bases:
                    cap_positions(books, currency, Decimal(held_after))
                    if trips is not None:
                        trips.left(price_id, currency, books)
        return books, closed

    def _curve(self, account, quote):
        """The account's equity at each price recorded since it opened, in market time (at one time, in
        the order recorded), valued in quote after the fills that price caused, where every holding has
        a price: (price id, market time, equity, flow, exposed) one by one, read as they are needed (a
        long history costs no memory). flow is what deposits and withdrawals (and resets) brought in
        since the point before (at the first, since the account opened: its start), valued at this
        point's prices; exposed says the account held anything but quote. Each transaction counts from
        the market time of the newest price when it was written. Prices recorded out of market-time
        order across symbols (one symbol's file fed after another's) are drawn in market time, but
        their fills happened in the order recorded: that is noted once (self.notes)."""
        start = account.price_id or 0
        moves = self._moves(account)
        priced = self._closes_at(start, quote)
        held, brought, equity, exposed, moved, newest, bases = {}, {}, None, False, False, (0, None, None), {}
        move = next(moves)
        next_time, next_price = move[:2]
        for price_id, symbol, market_time, close in self.db.execute("SELECT id, symbol, time, +close FROM prices"
                                                                    " WHERE id > ? ORDER BY time, id", (start,)):
            if price_id > newest[0]:
                newest = price_id, symbol, market_time
            elif not self._noted_order:
                self._note_out_of_order(newest, symbol, market_time)
            if symbol not in bases:  # the currency this symbol prices in quote, if any
                bases[symbol] = symbol[:-len(quote) - 1] if symbol.endswith(f"/{quote}") else None
            base = bases[symbol]
            changed = base is not None and held.get(base)  # a holding's price moved
            while next_time < market_time or next_time == market_time and next_price <= price_id:
                _, _, currency, amount, flow = move
                amount = Decimal(amount)  # read as text: a long history's converter calls would cost a third more
                held[currency], changed, moved = held.get(currency, ZERO) + amount, True, True
                if flow:
                    brought[currency] = brought.get(currency, ZERO) + amount
                move = next(moves)
                next_time, next_price = move[:2]
            if base is not None:
                priced[base] = Decimal(close)
            if changed or equity is None:  # else this price leaves the equity as it was
                try:
                    equity = sum([total * priced[currency] for currency, total in held.items() if total], ZERO)
                except KeyError:  # a holding has no price yet: no point
                    equity = None
                    continue
                if moved:  # else what it holds is as it was
                    exposed, moved = self._exposed(held, quote), False
            flow = ZERO
            if brought:
                flow = self._brought_in(brought, priced)
                brought.clear()
            yield Point((price_id, market_time, equity, flow, exposed))

    @staticmethod
    def _exposed(held, quote):
        """Whether held ({currency: total}) holds anything but quote."""
        return any(total for currency, total in held.items() if currency != quote)

    @staticmethod
    def _brought_in(brought, priced):
        """What deposits and withdrawals brought in ({currency: amount}) is worth at priced ({currency: its
        price in quote}); a currency with no price counts 0."""
        return sum([amount * priced.get(currency, ZERO) for currency, amount in brought.items()], ZERO)

    def _moves(self, account):
        """The account's transactions in the market time of the price they came at (the newest when they
        were written; a removed price's, the one before it), in that order: (market time or '', price
        id or 0, currency, amount as text, whether it brought money in or out), read as they are needed,
        then ('~', 0, None, None, None), which comes after every price."""
        at = "p.id = t.price_id" if not self.db.execute("SELECT 1 FROM prices_deleted LIMIT 1").fetchone() else \
            "p.id = (SELECT max(id) FROM prices WHERE id <= t.price_id)"  # a removed price: the one before it
        return itertools.chain(self.db.execute(
            "SELECT ifnull(p.time, ''), ifnull(p.id, 0), t.currency, +t.amount, t.transaction_type IN (?, ?, ?)"
            f" FROM transactions t LEFT JOIN prices p ON {at} WHERE t.account_id = ? ORDER BY 1, 2, t.id",
            ("DEPOSIT", "WITHDRAWAL", "RESET", account.id)), [("~", 0, None, None, None)])

    def _note_out_of_order(self, newest, symbol, market_time):
        """Note, once, that a price at market_time was recorded before the newest (price id, symbol, market
        time) so far: the curve follows market time, its fills the order recorded."""
        self._noted_order = True
        self.notes.append(f"prices were recorded out of market-time order across symbols ({newest[1]} at"
                          f" {newest[2]} was recorded after {symbol} at {market_time}): the curve follows market"
                          " time, but fills happened in the order the prices were recorded")

    def _closes_at(self, price_id, quote):
        """{currency: its latest close in quote as of price_id}, quote itself at 1."""
        closes = {quote: Decimal(1)}
        for symbol, close in self.db.execute("SELECT symbol, close FROM prices WHERE id IN (SELECT max(id) FROM prices"
                                             " WHERE id <= ? GROUP BY symbol)", (price_id,)):
            if symbol.endswith(f"/{quote}"):
                closes[symbol.partition("/")[0]] = close
        return closes

    def _quote(self, account, quote):
        """The currency to value account in: quote if given, else the account's own."""
        return account.currency if quote is None else to_currency(quote)

    def equity(self, account_id, quote=None):
        """The equity curve (see _curve): [{"time", "equity", "drawdown"}], drawdown a fraction <= 0 of
        the running peak, with deposits and withdrawals taken out (a withdrawal is no drawdown). In the
        account's own currency unless quote says otherwise."""
        return list(self.equity_points(account_id, quote))

    def equity_points(self, account_id, quote=None):
        """equity's points one by one, read as they are needed: a long curve costs no memory."""
        with self._transaction("BEGIN"):
            account = self._account(account_id)
            figures = Performance()
            for point in self._curve(account, self._quote(account, quote)):
                yield {"time": point.time, "equity": point.equity,
                       "drawdown": figures.add(point.time, point.equity, point.flow, point.exposed)}

    def stats(self, account_id, quote=None):
        """How the account did over its equity curve: backtesting.py's table, empyrical's definitions
        (README, Results), in the account's own currency unless quote says otherwise. Amounts are exact
        Decimals, ratios floats; a figure that cannot be computed is None."""
        with self._transaction("BEGIN"):
            account = self._account(account_id)
            quote, figures, first, last = self._quote(account, quote), Performance(), None, None
            for point in self._curve(account, quote):
                figures.add(point.time, point.equity, point.flow, point.exposed)
                first, last = first or point.price_id, point.price_id
            traded = self._traded(account, first, last)
        return summary(quote, figures, *traded)

    def _traded(self, account, first, last):
        """What summary takes beside the curve's Performance: the account's trades [(id, symbol, fee)], the
        realised P&L of each sale [(trade id, P&L)], and the first and last close (price ids first to last,
        the curve's) of the one symbol it traded, for buy and hold."""
        trades = self.db.execute("SELECT id, symbol, fee FROM trades WHERE account_id = ?", (account.id,)).fetchall()
        closed = self._realized(account.id, since_reset=False)[1]
        held = {symbol for _, symbol, _ in trades}
        hold = [self.db.execute(f"SELECT close FROM prices WHERE symbol = ? AND id BETWEEN ? AND ? ORDER BY id {way}"
                                " LIMIT 1", (*held, first, last)).fetchone()
                for way in ("", "DESC")] if len(held) == 1 and first else []
        return trades, closed, hold if None not in hold else []  # its first close and its last, over the curve

    def no_points(self, account_id, quote=None):
        """Why the account's curve has no point (in quote): one line that says what to do."""
        with self._transaction("BEGIN"):
            account = self._account(account_id)
            quote = self._quote(account, quote)
            if not self.db.execute("SELECT 1 FROM prices WHERE id > ? LIMIT 1", (account.price_id or 0,)).fetchone():
                return "no price has been recorded since the account opened: record prices with tick, feed or fetch"
            unpriced = self.valuation(account.id, quote=quote)["unpriced"]
        if unpriced:
            return (f"{', '.join(unpriced)} {'has' if len(unpriced) == 1 else 'have'} no price in {quote}: record"
                    f" {unpriced[0]}/{quote} prices, or value in another currency with --quote")
        return f"no price since the account opened gives every holding a value in {quote}"

    def chart(self, account_id, quote=None, percent=False, log=False):
        """The equity curve as an SVG document (README, Results), in the account's own currency unless quote
        says otherwise: the equity (the return in % if percent) with buy and hold, on a log scale if log; the
        drawdown; the close of up to three traded symbols with each round trip on it; a legend, dated axes,
        and a title with the name, return and max drawdown."""
        with self._transaction("BEGIN"):
            account = self._account(account_id)
            figure = self._figure(account, self._quote(account, quote), percent)
        return svg_chart(figure, log)

    def report(self, account_id, quote=None, sections=()):
        """The account's results as one self-contained HTML page (README, Results): its stats, chart, round
        trips, monthly returns and worst drawdowns, from one pass over the curve; its risk rules and events
        when there are any; then sections [(title, rows)] of the caller's, each row a dict, as tables."""
        with self._transaction("BEGIN"):
            account = self._account(account_id)
            figure = self._figure(account, self._quote(account, quote))
            traded = self._traded(account, figure.curve.first_id, figure.curve.last_id)
            risk = self._risk_sections(account)
        stats = summary(figure.quote, figure.curve.performance, *traded)
        return report_html(account, stats, figure, [*risk, *sections])

    def _risk_sections(self, account):
        """The report's sections of the account's risk rules and of what they did (oldest first), when there
        are any."""
        rules, sections = self.risk.rules(account.id), []
        if rules:
            halted = f"halted at drawdown {float(rules.halt_drawdown):.2%} on {rules.halted_at}" if rules.halted_at \
                else "trading"
            sections.append(("Risk rules", [{"rules": rules_text(rules), "state": halted}]))
        events = [dict(zip(("time", "rule", "action", "symbol", "detail"), row)) for row in self.db.execute(
            "SELECT time, rule, action, symbol, detail FROM risk_events WHERE account_id = ? ORDER BY id",
            (account.id,))]
        return sections + ([("Risk events", events)] if events else [])

    def round_trips(self, account_id, symbol=None):
        """The account's round trips (README, Results), each symbol's from a flat position back to flat: the
        closed ones in the order they closed, then the open ones by symbol, valued at the latest close.
        [{"symbol", "status", "entry_time", "exit_time", "qty", "entry_price", "exit_price", "pnl", "return",
        "duration", "fills"}]."""
        symbol = None if symbol is None else to_symbol(symbol)
        with self._transaction("BEGIN"):
            trips = self._round_trips(self._account(account_id))
        return [trip for trip in trips if symbol in (None, trip["symbol"])]

    def _round_trips(self, account):
        trips = RoundTrips()
        self._realized(account.id, since_reset=False, trips=trips)
        going = [trips.going[symbol] for symbol in sorted(trips.going)]
        times = self._times({trip[key] for trip in trips.closed + going for key in ("entry", "exit")} - {None})
        return [round_trip(trip, times) for trip in trips.closed] + [
            round_trip(trip, times, self._latest_price(trip["symbol"])) for trip in going]

    def _times(self, price_ids):
        """{price id: its market time}."""
        ids, times = sorted(price_ids), {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            times.update(self.db.execute(f"SELECT id, time FROM prices WHERE id IN ({', '.join('?' * len(chunk))})",
                                         chunk))
        for price_id in set(ids) - set(times):  # removed (prices --delete): the time of the newest price before it
            times[price_id] = (self.db.execute("SELECT time FROM prices WHERE id < ? ORDER BY id DESC LIMIT 1",
                                               (price_id,)).fetchone() or ("",))[0]
        return times

    def _figure(self, account, quote, percent=False):
        """What the chart draws and the report tabulates, from one pass over the curve: a Figure. Its time
        runs from the curve's first point to the latest price recorded; its panels are the three symbols the
        account traded most in it."""
        start = account.price_id or 0
        latest = self.db.execute("SELECT max(time) FROM prices WHERE id > ?", (start,)).fetchone()[0]
        curve = Curve(seconds(latest) if latest else 0.0, percent)
        for point in self._curve(account, quote):
            curve.add(*point)
        figure = Figure(account.name, quote, curve.finish(), self._round_trips(account))
        if not curve.performance.points:
            figure.empty = self.no_points(account.id, quote)
            return figure
        traded = [symbol for symbol, in self.db.execute(
            "SELECT symbol FROM trades WHERE account_id = ? AND ifnull(price_id, 0) >= ? GROUP BY symbol"
            " ORDER BY count(*) DESC, symbol", (account.id, start))]
        for symbol in traded[:3]:
            panel = self._price_panel(symbol, start, curve, latest, figure.trips)
            figure.panels += [panel] if panel[1].columns or panel[3] else []
        figure.hidden = traded[3:]
        return figure

    def _price_panel(self, symbol, start, curve, latest, trips):
        """(symbol, Columns of its closes in view, its first close in view, its round trips in view). SQLite
        finds each column's lowest and highest close through the (symbol, time) index: no row of a million
        passes through Python (a bare column takes the row of min() or max())."""
        first, last, begin = curve.performance.first, curve.last, curve.performance.start
        closes = Columns(first, last)
        bounds = [begin] + [(EPOCH + timedelta(seconds=first + column / closes.scale)).isoformat(
            timespec="microseconds") + "Z" for column in range(1, COLUMNS)] if closes.scale else [begin]
        for column, (since, until) in enumerate(zip(bounds, bounds[1:] + [latest])):
            for way in ("min", "max"):
                close_time, close = self.db.execute(
                    f"SELECT time, {way}(CAST(close AS REAL)) FROM prices WHERE symbol = ? AND time >= ? AND time"
                    f" {'<=' if until == latest else '<'} ? AND id > ?", (symbol, since, until, start)).fetchone()
                if close_time is not None:
                    closes.add(seconds(close_time), close, column)
        first_close = self.db.execute("SELECT CAST(close AS REAL) FROM prices WHERE symbol = ? AND time >= ? AND"
                                      " id > ? ORDER BY time LIMIT 1", (symbol, begin, start)).fetchone()
        trips_shown = [trip for trip in trips if trip["symbol"] == symbol and trip["entry_time"] and trip["exit_time"]
                 and trip["exit_price"] is not None and seconds(trip["exit_time"]) >= first
                 and seconds(trip["entry_time"]) <= last]
        return symbol, closes, first_close and first_close[0], trips_shown


# --- The audit: verify's checks ---

class Audit:
    """verify's checks, over a ledger's connection inside its read transaction: each mismatch between
    balances, the log, trades, orders and prices names its account, currency and row. Amounts are read
    as text, so one in a form paper never writes is named (table, row, column) instead of stopping the
    check. where and params scope the rows to one account (or, empty, to all)."""

    def __init__(self, db, where="", params=()):
        self.db, self.where, self.params, self.found = db, where, params, []

    def problems(self):
        """[{"account_id", "currency", "problem"}]: SQLite's integrity check, then paper's own checks."""
        for (result,) in self.db.execute("PRAGMA integrity_check"):
            if result != "ok":
                self.add("", "", f"integrity check: {result}")
        for row in self.db.execute(f"SELECT id, +leverage, +max_leverage FROM accounts"
                                   f"{self.where.replace('account_', '')}", self.params):
            self.amounts("account", row[0], row[0], "", leverage=row[1], max_leverage=row[2])
        sums, legs = self.log()
        self.balances(sums, self.orders(self.trades(legs)))
        self.prices()
        return self.found

    def add(self, account, currency, text):
        self.found.append({"account_id": account, "currency": currency, "problem": text})

    def amounts(self, what, row_id, account, currency, **columns):
        """The columns' texts as Decimals, or None after naming each one that is not an amount."""
        bad = [name for name, text in columns.items() if not (isinstance(text, str) and AMOUNT.fullmatch(text))
               or text.startswith("-") and (what, name) != ("transaction", "amount")]
        for name in bad:
            self.add(account, currency, f"{what} {row_id}: {name} holds {shown(columns[name])}, not an amount")
        return None if bad else [Decimal(text) for text in columns.values()]

    def log(self):
        """Each row's form, sign and balance_after; returns the sums {(account, currency): total} and the
        trade legs {trade id: [(account, currency, type, amount)]}."""
        sums, afters, legs = {}, {}, {}
        for tx_id, account, currency, kind, amount, after, trade_id in self.db.execute(
                "SELECT id, account_id, currency, transaction_type, +amount, +balance_after, trade_id"
                f" FROM transactions{self.where} ORDER BY id", self.params):  # +column: as text, no converter
            checked = self.amounts("transaction", tx_id, account, currency, amount=amount, balance_after=after)
            if checked is None:
                continue
            amount, after = checked
            key = account, currency
            before, sums[key], afters[key] = afters.get(key, ZERO), sums.get(key, ZERO) + amount, after
            if before + amount != after:
                self.add(account, currency, f"transaction {tx_id} says balance {fmt(after)} after it, but the row"
                                             f" before it says {fmt(before)} and this one adds {fmt(amount)}")
            if (trade_id is None) != (kind in ("DEPOSIT", "WITHDRAWAL", "RESET")) or (amount > 0) != (
                    kind == "DEPOSIT") and kind not in ("TRADE_BUY", "TRADE_SELL"):
                self.add(account, currency, f"transaction {tx_id}: a {kind} of {fmt(amount)}"
                                             + ("" if trade_id is None else f" in trade {trade_id}") + " cannot be")
            if trade_id is not None:
                legs.setdefault(trade_id, []).append((account, currency, kind, amount))
        return sums, legs

    def trades(self, legs):
        """Each trade against its legs (qty x price, the fee the fee rule gives, signs, currencies, its
        account); returns what filled each order {order id: (qty, [(trade id, price)])}."""
        fills = {}
        for trade_id, account, order_id, symbol, side, *terms in self.db.execute(
                f"SELECT id, account_id, order_id, symbol, side, +qty, +price, +fee_rate, +fee FROM trades{self.where}",
                self.params):
            base, _, quote = symbol.partition("/")
            logged = legs.pop(trade_id, [])
            checked = self.amounts("trade", trade_id, account, quote, **dict(zip(("qty", "price", "fee_rate", "fee"),
                                                                                   terms)))
            if checked is None:
                continue
            qty, price, fee_rate, fee = checked
            filled, prices = fills.get(order_id, (ZERO, []))
            fills[order_id] = filled + qty, prices + [(trade_id, price)]
            value, due = cost(qty, price, fee_rate)
            if fee != due:
                self.add(account, quote, f"trade {trade_id}: fee {fmt(fee)}, but {fmt(qty)} x {fmt(price)} at fee"
                                          f" rate {fmt(fee_rate)} makes {fmt(due)}")
            sign, kind = (1 if side == "buy" else -1), f"TRADE_{side.upper()}"
            wanted = [(account, base, kind, sign * qty), (account, quote, kind, -sign * value)]
            wanted += [(account, quote, "FEE", -due)] if due else []
            for currency in (base, quote):
                got, due_legs = ([leg for leg in side if leg[1] == currency] for side in (logged, wanted))
                if sorted(got) != sorted(due_legs):
                    self.add(account, currency, f"trade {trade_id}: its {currency} legs in the log are"
                                                 f" [{legs_text(got, account)}], but {side} {fmt(qty)} {symbol} @"
                                                 f" {fmt(price)} makes [{legs_text(due_legs, account)}]")
        for trade_id, logged in legs.items():
            self.add(logged[0][0], logged[0][1], f"transactions of trade {trade_id}, which is not in trades")
        return fills

    def orders(self, fills):
        """Each order's filled qty against its trades, the prices of a limit order's fills against its limit,
        its expiry's form, and each open order's reserve against its type and what is left of it; returns
        the reserves {(account, currency): total}."""
        reserves = {}
        for row in self.db.execute("SELECT id, account_id, symbol, side, +qty, +limit_price, +fee_rate, +filled_qty,"
                                   " +reserved_amount, status, created_at, updated_at, type, +stop_price, expires_at,"
                                   " +reserve_price, +slippage, +trail, +trail_amount, +mark, +protect_sl, +protect_tp,"
                                   f" +protect_trail FROM orders{self.where}", self.params):
            order = self.order_read(row)
            if order is not None:
                key = order.account_id, order.reserve_currency
                self.order(order, key, *fills.pop(order.id, (ZERO, [])))
                reserves[key] = reserves.get(key, ZERO) + order.reserved
        for order_id in fills.keys() - {None}:
            self.add("", "", f"trades of order {order_id}, which is not in orders")
        return reserves

    def order_read(self, row):
        """The Order of an orders row read as text, its amounts Decimals; None after naming one that is not."""
        order = Order(*row[:15])
        texts = {name: text for name, text in zip(("qty", "limit_price", "fee_rate", "filled_qty", "reserved",
                                                   "stop_price", "reserve_price", "slippage", "trail", "trail_amount",
                                                   "mark", "protect_sl", "protect_tp", "protect_trail"),
                                                  row[4:9] + row[13:14] + row[15:]) if text is not None}
        checked = self.amounts("order", order.id, order.account_id, order.reserve_currency, **texts)
        if checked is None:
            return None
        for name, value in zip(texts, checked):
            setattr(order, name, value)
        return order

    def order(self, order, key, filled, prices):
        """One order against what its trades filled (filled, [(trade id, price)])."""
        if order.expires_at is not None and not TIME.fullmatch(str(order.expires_at)):
            self.add(*key, f"order {order.id}: expires_at holds {shown(order.expires_at)}, not a market time")
        for trade_id, price in prices if order.type in ("limit", "stop-limit") else ():
            if price > order.limit_price if order.side == "buy" else price < order.limit_price:
                self.add(*key, f"trade {trade_id} filled order {order.id} at {fmt(price)}, beyond its limit"
                               f" {fmt(order.limit_price)}")
        if order.filled_qty != filled or (order.status == "FILLED") != (filled == order.qty):
            self.add(*key, f"order {order.id} is {order.status} with {fmt(order.filled_qty)} of {fmt(order.qty)}"
                           f" filled, but its trades fill {fmt(filled)}")
        if order.type == "trailing-stop" and order.status == "OPEN" and (order.mark is None or order.stop_price !=
                                                                          trail_stop(order.side, order.mark, order.trail,
                                                                                     order.trail_amount)):
            self.add(*key, f"trailing stop {order.id}: its stop {fmt(order.stop_price)} is not its trail from its"
                           f" mark {fmt(order.mark) if order.mark is not None else 'NULL'}")
        needed = order.reserve_for(order.qty - order.filled_qty) if order.status == "OPEN" else ZERO
        if order.reserved != needed:
            self.add(*key, f"order {order.id} reserves {fmt(order.reserved)} but what is left of it needs {fmt(needed)}")

    def balances(self, sums, reserves):
        for account, currency, available, reserved in self.db.execute(
                f"SELECT account_id, currency, +available_amount, +reserved_amount FROM balances{self.where}", self.params):
            total, reserve = sums.pop((account, currency), ZERO), reserves.get((account, currency), ZERO)
            checked = self.amounts("balance", f"{account}/{currency}", account, currency, available_amount=available,
                                    reserved_amount=reserved)
            if checked is None:
                continue
            available, reserved = checked
            if available + reserved != total:
                self.add(account, currency, f"balance {fmt(available + reserved)} but the log sums to {fmt(total)}")
            if reserved != reserve:
                self.add(account, currency, f"reserved {fmt(reserved)} but open orders reserve {fmt(reserve)}")
        for (account, currency), total in sums.items():
            if total:
                self.add(account, currency, f"no balance row, but the log sums to {fmt(total)}")

    def prices(self):
        """Each price's form and bar, each symbol's time order, and every price id a row refers to."""
        latest = {}
        for price_id, symbol, market_time, *bar in self.db.execute("SELECT id, symbol, time, +open, +high, +low, +close"
                                                            " FROM prices ORDER BY id"):
            checked = self.amounts("price", price_id, "", symbol, **dict(zip(("open", "high", "low", "close"), bar)))
            if checked and not checked[2] <= min(checked[0], checked[3]) <= max(checked[0], checked[3]) <= checked[1]:
                self.add("", symbol, f"price {price_id}: low {fmt(checked[2])} and high {fmt(checked[1])} do not hold"
                                      f" open {fmt(checked[0])} and close {fmt(checked[3])}")
            if not TIME.fullmatch(str(market_time)):
                self.add("", symbol, f"price {price_id}: time holds {shown(market_time)}, not a market time")
            elif market_time <= latest.get(symbol, ""):
                self.add("", symbol, f"price {price_id} at {market_time} is not after the one before it ({latest[symbol]})")
            latest[symbol] = max(market_time, latest.get(symbol, ""))
        for name in ("accounts", "trades", "transactions", "orders", "risk_events"):
            for row_id, price_id in self.db.execute(f"SELECT id, price_id FROM {name} WHERE price_id IS NOT NULL"
                                                    " AND price_id NOT IN (SELECT id FROM prices UNION ALL"
                                                    " SELECT id FROM prices_deleted)"):
                self.add("", "", f"{name[:-1]} {row_id} refers to price {price_id}, which is not in prices")


def legs_text(legs, account):
    """Legs as verify names them, with the account of any that is not the trade's."""
    return ", ".join(f"{kind} {fmt(amount)} {currency}"
                     + (f" in account {leg_account}" if leg_account != account else "")
                     for leg_account, currency, kind, amount in legs)


# --- Market data in: price files ---

def read_prices(paths, symbol=None):
    """The prices of CSV files as tick takes them: (source, line, (symbol, price, time, open, high, low,
    close)), time in paper's form; several files merged by market time (at one time, in the order given).
    A file is opened and its header checked before any row is read (see price_rows); '-' is standard
    input, read as it arrives."""
    if "-" in paths and len(paths) > 1:
        raise PaperError("- (standard input) is read alone: give it without files")
    if len(paths) > 1:
        return merged(paths, symbol)
    return price_rows(StandardInput() if paths == ["-"] else paths[0], symbol)


def read_later(paths, symbol=None):
    """read_prices, opened only when the first price is asked for (a run checks itself first; standard
    input may wait a long time for its first line)."""
    yield from read_prices(paths, symbol)


def merged(paths, symbol):
    """The prices of several files by market time (at one time, in the order given), each file opened only
    once the merge reaches its first price: daily files are read one after the other, a file a symbol side
    by side, and a thousand of them never hold a thousand open files."""
    import heapq
    starts = []
    for index, path in enumerate(paths):  # each checked whole first (its header, its checksum), then closed
        rows = price_rows(path, symbol)
        first = next(rows, None)
        rows.close()
        if first is not None:
            starts.append((first[2][2], index, path))
    starts.sort()
    heap, waiting = [], iter(starts)
    upcoming = next(waiting, None)
    while heap or upcoming:
        while upcoming and (not heap or upcoming[0] <= heap[0][0]):  # a file whose first price is due: opened
            rows = price_rows(upcoming[2], symbol, checked=True)
            item = next(rows, None)
            if item is not None:
                heapq.heappush(heap, (item[2][2], upcoming[1], item[1], item, rows))
            upcoming = next(waiting, None)
        _, index, _, item, rows = heapq.heappop(heap)
        yield item
        following = next(rows, None)
        if following is not None:
            heapq.heappush(heap, (following[2][2], index, following[1], following, rows))


def price_rows(source, symbol=None, checked=False):
    """The rows of one price file (a path, or StandardInput): with a header time,symbol,price or
    time,symbol,open,high,low,close (or time,symbol,close: closes alone; `open_time` for time, as in
    Binance's futures files; other columns ignored; symbol, if the file has no symbol column), or
    Binance's kline files (no header). Plain, gzip or a zip holding one file, as downloaded; a
    FILE.CHECKSUM beside it is checked first (unless checked already)."""
    import csv
    name = source.name if isinstance(source, StandardInput) else source
    reader = csv.reader(source if isinstance(source, StandardInput) else file_lines(source, checked))
    try:
        first = next((row for row in reader if "".join(row).strip()), None)
    except csv.Error as error:
        raise csv_refusal(name, reader, error) from None
    if first is None:
        raise PaperError(f"{name} is empty: no header and no prices")
    if first[0].strip().isdigit():
        if not symbol:
            raise PaperError(f"{name}: a file without a header (Binance klines) needs a symbol=")
        return kline_rows(reader, first, symbol, name)
    return header_rows(reader, *header_columns(first, symbol, name), symbol, name)


def header_columns(header, symbol, name):
    """(at, width, prices) of the file name from its header: at, the columns of time, the prices (one,
    or open, high, low and close) and (unless symbol) symbol; width, how many columns a row has;
    prices, how many price columns."""
    names = ["time" if column == "open_time" else column for column in (cell.strip().lower() for cell in header)]
    bar = ["price"] if "price" in names else ["open", "high", "low", "close"]
    if bar != ["price"] and "close" in names and not {"open", "high", "low"} & set(names):
        bar = ["close"]  # closes alone: each is a price
    if symbol and "symbol" in names:
        raise PaperError(f"{name} has a symbol column: symbol= is for a file without one")
    wanted = ["time", *bar] + ([] if symbol else ["symbol"])
    missing = [column for column in wanted if column not in names]
    if missing:
        raise PaperError(f"{name}: the first line must name the columns time,symbol,price or"
                         f" time,symbol,open,high,low,close (no {', '.join(missing)} column"
                         + (": give symbol= for a file without one)" if missing == ["symbol"] else ")"))
    return [names.index(column) for column in wanted], len(names), len(bar)


def header_rows(reader, at, width, prices, symbol, name):
    """The rows of a file with a header: at, the columns of time, the prices and (unless symbol) symbol."""
    import csv
    try:
        for row in reader:
            if len(row) != width:
                if not "".join(row).strip():
                    continue
                raise PaperError(f"{name}: line {reader.line_num}: {len(row)} columns, the header has {width}")
            values = [row[i] for i in at]
            bar = values[1:5] if prices == 4 else [None] * 4
            yield name, reader.line_num, (symbol or values[-1], values[1] if prices == 1 else None,
                                          row_time(values[0], name, reader), *bar)
    except csv.Error as error:
        raise csv_refusal(name, reader, error) from None


def kline_rows(reader, first, symbol, name):
    """The rows of a Binance kline file as downloaded: open time (an epoch number: seconds, milliseconds or
    microseconds), open, high, low, close, volume, ... (no header, so no symbol: symbol is needed)."""
    import csv
    width = len(first)
    try:
        for row in itertools.chain([first], reader):
            if len(row) != width or not row[0].isdigit():
                if not "".join(row).strip():
                    continue
                raise PaperError(f"{name}: line {reader.line_num}: a kline has {width} columns like the first,"
                                 " starting with open time, open, high, low, close")
            yield name, reader.line_num, (symbol, None, row_time(row[0], name, reader), *row[1:5])
    except csv.Error as error:
        raise csv_refusal(name, reader, error) from None


def csv_refusal(name, reader, error):
    """The csv module's error in a user's words, with the file and line."""
    text = str(error)
    if text.startswith("new-line character seen in unquoted field"):
        text = "a line break (a lone carriage return) inside a field that is not in quotes"
    return PaperError(f"{name}: line {reader.line_num}: {text}")


def row_time(text, name, reader):
    try:
        return to_time(text)
    except PaperError as error:
        raise PaperError(f"{name}: line {reader.line_num}: {error}") from None


LONGEST_LINE = 1 << 20  # no line of prices comes near a MiB: a longer one is refused, not read whole


def line_text(line, number, name):
    """A line's bytes as text (a leading byte order mark, Excel's "CSV UTF-8", is no part of it)."""
    if len(line) > LONGEST_LINE:
        raise PaperError(f"{name}: line {number} is longer than {LONGEST_LINE:,} bytes: not a CSV of prices")
    if number == 1 and line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    try:
        return line.decode()
    except UnicodeDecodeError:
        raise PaperError(f"{name}: line {number} is not UTF-8 text") from None


def file_lines(path, checked=False):
    """The lines of a file as text, read as downloaded (see open_prices), a line at a time."""
    with contextlib.ExitStack() as opened:
        source = open_prices(path, opened, checked)
        try:
            for number, line in enumerate(iter(lambda: source.readline(LONGEST_LINE + 1), b""), 1):
                yield line_text(line, number, path)
        except (OSError, EOFError, ValueError) as error:  # gzip's and zlib's errors of a damaged file
            raise PaperError(f"{path} cannot be read: {error}") from None


def open_prices(path, opened, checked=False):
    """A price file's bytes as downloaded: plain, gzip, or a zip holding one file, each file object put in
    opened (an ExitStack) to be closed; when FILE.CHECKSUM (as data.binance.vision gives it: the
    SHA-256 in hex, then the file's name) lies beside it, the file's SHA-256 is checked first (unless
    checked already), and a mismatch is refused. A pipe (`<(zcat FILE.gz)`) is read as it comes."""
    if not checked and os.path.isfile(f"{path}.CHECKSUM"):
        check_sum(path)
    try:
        source = opened.enter_context(open(path, "rb"))
    except OSError as error:  # as the command line says it, from the library too
        raise PaperError(f"{error.strerror or error}: {path}") from None
    magic = source.peek(4)[:4]  # a pipe cannot seek back
    try:
        if magic[:2] == b"\x1f\x8b":
            import gzip
            return opened.enter_context(gzip.GzipFile(fileobj=source))
        if magic[:2] == b"PK":
            if not source.seekable():
                raise PaperError(f"{path} is a zip archive read through a pipe: give the file itself")
            import zipfile
            archive = opened.enter_context(zipfile.ZipFile(source))
            members = [member for member in archive.namelist() if not member.endswith("/")]
            if len(members) != 1:
                raise PaperError(f"{path} holds {len(members)} files, not one CSV: unzip it and feed the file")
            return opened.enter_context(archive.open(members[0]))
    except (OSError, EOFError, ValueError) as error:
        raise PaperError(f"{path} cannot be read: {error}") from None
    except Exception as error:  # zipfile.BadZipFile, without importing zipfile for every file
        if type(error).__name__ != "BadZipFile":
            raise
        raise PaperError(f"{path} cannot be read: {error}") from None
    return source


def check_sum(path):
    import hashlib
    with open(f"{path}.CHECKSUM", "rb") as f:
        expected = f.read(200).split()[:1]
    if not expected or len(expected[0]) != 64 or expected[0].strip(b"0123456789abcdefABCDEF"):
        raise PaperError(f"{path}.CHECKSUM does not start with a SHA-256 (64 hex digits), as data.binance.vision"
                         " writes it: remove it, or download it again")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest().encode() != expected[0].lower():
        raise PaperError(f"{path}: its SHA-256 is {digest.hexdigest()}, but {path}.CHECKSUM says"
                         f" {expected[0].decode()}: the download is damaged or not that file; nothing was recorded")


class StandardInput:
    """Standard input's lines as they arrive, read straight from its descriptor so that ready() can tell,
    without waiting, whether more is there; gzip-compressed input is taken apart on the way."""

    name = "standard input"

    def __init__(self):
        try:
            self.fd = sys.stdin.fileno()
        except (AttributeError, ValueError, OSError):
            raise PaperError("standard input is closed: pipe prices into feed -, or give a file") from None
        self.buffer, self.start, self.ended, self.inflate, self.read = b"", 0, False, None, 0

    def ready(self):
        """Whether a line can be had at once: one is waiting, the input has ended, or more has come."""
        if self.ended or self.buffer.find(b"\n", self.start) >= 0:
            return True
        import select
        return bool(select.select([self.fd], [], [], 0)[0])

    def __iter__(self):
        number = 0
        while True:
            cut = self.buffer.find(b"\n", self.start)
            if cut >= 0:
                line, self.start, number = self.buffer[self.start:cut + 1], cut + 1, number + 1
                yield line_text(line, number, self.name)
            elif self.ended:
                if self.start < len(self.buffer):
                    yield line_text(self.buffer[self.start:], number + 1, self.name)
                return
            elif len(self.buffer) - self.start > LONGEST_LINE:
                line_text(self.buffer[self.start:], number + 1, self.name)
            else:
                self.more()

    def more(self):
        chunk = os.read(self.fd, 1 << 16)
        if not self.read and chunk[:2] == b"\x1f\x8b":  # gzip: decompressed as it comes
            import zlib
            self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if not self.read and chunk[:2] == b"PK":
            raise PaperError("standard input is a zip archive: give the file itself (feed FILE.zip)")
        self.read += len(chunk)
        if self.inflate:
            try:
                chunk = self.inflate.decompress(chunk) if chunk else self.inflate.flush()
            except Exception as error:  # zlib.error
                raise PaperError(f"standard input: its gzip data is damaged ({error})") from None
        self.buffer, self.start, self.ended = self.buffer[self.start:] + chunk, 0, not chunk


def stream_groups(rows, ready, wait=0.2, most=5000):
    """Lists of rows as they arrive: each what has come by the time the one before was handled (ready()
    says whether more has), up to most rows or wait seconds, so a fast stream commits many rows at once
    and a slow one each row as it comes. A refusal of the input comes after the rows before it."""
    rows, ended = iter(rows), False
    while not ended:
        first = next(rows, None)  # waits for the input
        if first is None:
            return
        group, deadline = [first], time.monotonic() + wait
        try:
            while len(group) < most and time.monotonic() < deadline and ready():
                row = next(rows, None)
                if row is None:
                    ended = True
                    break
                group.append(row)
        except PaperError:
            yield group
            raise
        yield group


def read_text(path):
    """A file's bytes and its text, refused unless UTF-8, a bad byte named by its line; a leading byte
    order mark (Excel's "CSV UTF-8") is no part of the text."""
    with open(path, "rb") as f:
        content = f.read()
    start = 3 if content.startswith(b"\xef\xbb\xbf") else 0
    try:
        return content, content[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, start + error.start) + 1
        raise PaperError(f"{path}: line {line} is not UTF-8 text") from None


# --- Market data in: the exchange (Binance's public market data API) ---

MARKET_URL = "https://data-api.binance.vision"  # Binance's public market-data host: no key, no account

# Binance's kline intervals and their length in ms (a month's varies: None)
INTERVALS = {"1s": 1000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
             "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
             "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000, "1M": None}
PAGE = 1000  # klines a request asks for: Binance's most
WEIGHT_LIMIT = 6000  # Binance's request weight a minute per IP address; paper pauses past half of it
TIMEOUT = 30  # seconds a request may take, from connecting to the last byte of its answer
BACKOFF = (5, 60)  # a failed request is tried again after 5 s, then 10, 20, ... at most 60
TRIES = 5  # tries of one request before a fetch gives up (never, while following)
SETTLE = 0.5  # seconds after a bar's close before it is asked for (follow)
WEEK_OPEN = 4 * DAY * 1000  # 1970-01-05T00:00:00Z, a Monday: Binance's weekly klines open on Monday 00:00 UTC
USER_AGENT = "paper (paper-trading ledger; Python urllib)"
EXCHANGE_FILTERS = (("tick_size", "PRICE_FILTER", "tickSize"), ("step_size", "LOT_SIZE", "stepSize"),  # where
                    ("min_qty", "LOT_SIZE", "minQty"), ("min_notional", "NOTIONAL", "minNotional"))  # SYMBOL_RULES are
PRICE_LINES = re.compile(rf"(?:(?:{PLAIN.pattern})\n)*(?:{PLAIN.pattern})")  # decimal strings, one a line
KLINES = ("klines ([open time, open, high, low, close, volume, close time, ...] rows in time order, times in epoch"
          " ms inside the range asked for, prices as decimal strings)")


def to_interval(value):
    """One of Binance's kline intervals (1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)."""
    if not isinstance(value, str) or value not in INTERVALS:
        raise PaperError(f"interval {shown(value)} must be one of Binance's: {' '.join(INTERVALS)}")
    return value


def to_base_url(value):
    """The address of an exchange's API (--base-url, PAPER_MARKET_URL): http:// or https://, a host, maybe a
    port and a path; no query."""
    import urllib.parse
    try:
        parts = urllib.parse.urlsplit(value)
    except (ValueError, TypeError, AttributeError):
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not value.isascii() \
            or not value.isprintable() or " " in value:
        raise PaperError(f"base URL {shown(value)} must be http:// or https:// and a host, like {MARKET_URL}")
    try:
        parts.port  # a port that is not a number, or not 0-65535, raises ValueError
    except ValueError:
        raise PaperError(f"base URL {shown(value)}: its port must be a number from 0 to 65535") from None
    if parts.username is not None or parts.password is not None:  # never sent, and never to be echoed
        raise PaperError(f"base URL {parts.scheme}://...@{parts.hostname}: the market data API takes no user name or"
                         " password")
    if parts.query or parts.fragment:
        raise PaperError(f"base URL {shown(value)}: paper adds the API's paths and queries itself, so it takes none"
                         " (no ? or #)")
    return value.rstrip("/")


class Exchange:
    """Binance's public market data (its REST API: no key, no account): klines, the server's time and the
    symbols' trading rules, each answer checked against the documented shape.

    A failed request is tried again as the exchange asks: on HTTP 429 after its Retry-After; on a 5xx, a
    timeout, a dropped connection or an unreachable host after 5 s doubling to 60 s, TRIES times (for
    ever with forever=True); past half the minute's request weight (X-MBX-USED-WEIGHT-1M) it pauses until
    the next minute. Each wait is told to report(line). Anything else is a PaperError naming its cause:
    the exchange's refusal (`exchange refused BTC/XXX: -1121 Invalid symbol.`), a ban (418), its firewall (403),
    a failed TLS handshake (the same on every try), the host, or the URL of an answer of the wrong shape. A
    proxy that is not reached is named, not the host. TIMEOUT bounds a request whole, from connecting to its
    answer's last byte. HTTPS certificates are checked (urllib's default context), the usual proxy variables
    (HTTPS_PROXY) are honoured, and the User-Agent names paper."""

    def __init__(self, base_url=None, report=None):
        self.base_url = to_base_url(base_url or os.environ.get("PAPER_MARKET_URL") or MARKET_URL)
        self.host = self.base_url.split("://")[1].split("/")[0]
        self.report = report or (lambda line: None)
        self.offset = 0  # the server's clock less ours (ms), as its latest answer to GET /api/v3/time said
        self.url = None  # the latest request's, for the messages about its answer
        self.open = self.proxy = None  # bounded_opener's, and proxy_for's text, once a request is made

    def clock(self):
        """Our clock in epoch ms. (A test gives the client a timeline of its own: clock and sleep.)"""
        return time.time_ns() // 1_000_000

    def sleep(self, delay):
        """Wait. (A Ctrl-C ends it at once: see Interrupt.)"""
        time.sleep(delay)

    def now(self):
        """The server's clock (epoch ms) as ours tells it."""
        return self.clock() + self.offset

    def server_time(self, forever=False):
        """The exchange's clock (epoch ms): GET /api/v3/time."""
        answer = self.get("/api/v3/time", None, "the time", forever)
        server = answer.get("serverTime") if isinstance(answer, dict) else None
        if type(server) is not int or not 10**12 <= server < 10**14:
            raise self.misshapen('{"serverTime": epoch milliseconds}', answer)
        self.offset = server - self.clock()
        if self.offset > DAY * 1000:  # its bars would be refused by tick's rule: say why, once
            raise PaperError(f"the exchange's clock ({epoch_time(server)}) is {self.offset / 3_600_000:,.1f} hours"
                             f" ahead of this machine's ({epoch_time(self.clock())}): paper takes no price more than"
                             " 24 hours after this machine's clock; set its clock right")
        return server

    def klines(self, symbol, interval, start=None, end=None, forever=False):
        """symbol's klines (BASE/QUOTE) at interval that open from start to end (epoch ms, both included;
        without start, the latest up to end), at most PAGE: [(open time, close time, open, high, low, close)]:
        GET /api/v3/klines. Prices are the exchange's decimal strings in paper's form (price_text:
        60012.34000000 is 60012.34), which tick stores as given instead of reading each into a Decimal and
        writing it out again."""
        params = {"symbol": symbol.replace("/", ""), "interval": interval, "limit": PAGE}
        if start is not None:
            params["startTime"] = start
        if end is not None:
            params["endTime"] = end
        rows = self.get("/api/v3/klines", params, symbol, forever)
        if rows == []:
            return []
        import operator
        try:  # checked a column at a time: a page costs a few calls, not thousands
            opened, opens, highs, lows, closes, _, closed = itertools.islice(zip(*rows), 7)
            text = "\n".join(opens + highs + lows + closes)  # a price that is not text raises TypeError
        except (TypeError, ValueError):  # not rows of 7 fields or more
            raise self.misshapen(KLINES, rows) from None
        if type(rows) is not list or {int} != set(map(type, opened + closed)) \
                or not all(map(operator.lt, opened, closed)) or not all(map(operator.lt, opened, opened[1:])) \
                or start is not None and opened[0] < start or end is not None and opened[-1] > end \
                or text.count("\n") != 4 * len(rows) - 1 or not PRICE_LINES.fullmatch(text):
            raise self.misshapen(KLINES, rows)
        return list(zip(opened, closed, *(map(price_text, prices) for prices in (opens, highs, lows, closes))))

    def symbol_rules(self, symbols):
        """Each symbol's trading rules on the exchange, as Ledger.set_symbol takes them: {symbol: {"tick_size",
        "step_size", "min_qty", "min_notional"}}, Decimals from its strings (PRICE_FILTER's tickSize, LOT_SIZE's
        stepSize and minQty, NOTIONAL's or else MIN_NOTIONAL's minNotional), None where it sets no such rule
        (no filter, or Binance's 0, which turns a rule off): GET /api/v3/exchangeInfo."""
        import json
        names = {symbol.replace("/", ""): symbol for symbol in map(to_symbol, symbols)}
        answer = self.get("/api/v3/exchangeInfo", {"symbols": json.dumps(list(names), separators=(",", ":"))},
                          ", ".join(names.values()))
        rules, assets = {}, {}
        try:
            for entry in answer["symbols"]:
                filters = {item["filterType"]: item for item in entry["filters"]}
                filters["NOTIONAL"] = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
                assets[entry["symbol"]] = f"{entry['baseAsset']}/{entry['quoteAsset']}"
                rules[entry["symbol"]] = {rule: to_amount(filters.get(kind, {}).get(key, "0"), rule, zero=True) or None
                                          for rule, kind, key in EXCHANGE_FILTERS}
        except (KeyError, TypeError, AttributeError, PaperError) as error:
            raise self.misshapen("exchangeInfo (symbols with their filters, amounts as decimal strings)",
                                 f"{type(error).__name__} {error}") from None
        for name, symbol in names.items():
            if name not in rules:
                raise self.misshapen("exchangeInfo", f"no {name}")
            if assets[name] != symbol:
                raise PaperError(f"the exchange's {name} is {assets[name]}, not {symbol}")
        return {symbol: rules[name] for name, symbol in names.items()}

    def misshapen(self, expected, found):
        return PaperError(f"{self.url} answered, but not with {expected} (found {shown(found, 80)}): nothing of it"
                          " was recorded")

    def get(self, path, params, what, forever=False):
        """The JSON answer to GET path?params, tried again as the class says; what is the subject named by a
        refusal (a symbol)."""
        import json
        import urllib.parse
        self.url = f"{self.base_url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        failures = throttled = 0
        while True:
            status, reason, headers, body = self.answer()
            if status == 200:
                self.pace(headers)
                try:
                    return json.loads(body)
                except ValueError:
                    raise self.misshapen("JSON", body[:60]) from None
            if status == 429 and throttled < TRIES:
                throttled += 1
                wait = retry_after(headers, 60)
                self.report(f"{self.host} says too many requests (HTTP 429): waiting {wait:,} s as it asks, then"
                            " asking again")
                self.sleep(wait)
                continue
            failure = self.failure(status, reason, headers, body, what)
            failures += 1
            if failures >= TRIES and not forever:
                raise PaperError(f"{failure} ({TRIES} tries)")
            wait = min(BACKOFF[0] * 2 ** min(failures - 1, 10), BACKOFF[1])
            self.report(f"{failure}; trying again in {wait} s")
            self.sleep(wait)

    def answer(self):
        """(status, reason, headers, body) of GET self.url; status None when no answer came (reason says why)."""
        import http.client
        import ssl
        import urllib.error
        import urllib.request
        if self.open is None:
            self.open, self.proxy = bounded_opener(), proxy_for(self.base_url, self.host)
        request = urllib.request.Request(self.url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
        connecting = False
        try:
            with self.open(request) as response:
                return response.status, response.reason, response.headers, response.read()
        except urllib.error.HTTPError as error:
            with error:
                try:
                    return error.code, error.reason, error.headers, error.read()
                except (OSError, http.client.HTTPException) as broken:
                    why = broken
        except urllib.error.URLError as error:  # while connecting (to the proxy, if one is used) and asking
            why, connecting = error.reason, True
        except (OSError, http.client.HTTPException) as error:  # timed out or cut off while reading
            why = error
        if isinstance(why, ssl.SSLCertVerificationError):
            raise PaperError(f"{self.host} shows no valid certificate ({why.verify_message}): paper never turns"
                             " the check off")
        if connecting and isinstance(why, ssl.SSLError) and not isinstance(why, (ssl.SSLEOFError, ssl.SSLSyscallError,
                                                                                 ssl.SSLZeroReturnError)):
            raise PaperError(self.tls_failure(why))  # the same handshake fails the same way again: no retry
        return None, unreached(self.host, why, self.proxy, connecting), None, b""

    def tls_failure(self, why):
        """A failed TLS handshake, in a line: a server that answers in plain text (an http:// port) is named so."""
        reason = why.reason or why
        if why.reason in ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE",
                          "HTTP_REQUEST"):  # OpenSSL's words, by version, for an answer that is not TLS
            return (f"{self.host} does not speak TLS ({reason}), which an https:// address asks for: is it"
                    f" http://{self.base_url.split('://')[1]}?")
        return f"{self.host}: the TLS handshake failed ({reason}); it fails the same way on every try"

    def failure(self, status, reason, headers, body, what):
        """What went wrong, in a line, when trying again may help; any other refusal is raised."""
        refusal = exchange_error(body)
        if status == 418:
            wait = retry_after(headers, None)
            raise PaperError(f"{self.host} has banned this IP address" + (f" for {wait:,} s" if wait else "")
                             + " (HTTP 418) after too many requests: wait " + ("that long" if wait else "a while")
                             + ", then run the same command")
        if status == 429:
            raise PaperError(f"{self.host} still says too many requests (HTTP 429) after {TRIES} waits: try later")
        if status == 403:  # Binance's docs: its firewall blocked the request, for a time they do not say: no retry
            raise PaperError(f"{self.host} refused the request (HTTP 403 {reason}" + (f", {refusal}" if refusal else "")
                             + "): Binance answers 403 when its web application firewall (WAF) blocks a request, for"
                             " too many requests or a security rule: wait a while, then run the same command")
        if status == 451:  # Binance's own page on HTTP codes: the region the request comes from is restricted
            raise PaperError(f"{self.host} refuses this request for where it comes from (HTTP 451 {reason}"
                             + (f", {refusal}" if refusal else "") + "): Binance does not serve the region it comes"
                             " from; prices from a file can be recorded with feed")
        if status is None:
            return reason
        if status < 500 and refusal:
            raise PaperError(f"exchange refused {what}: {refusal}")
        if status < 500:
            raise PaperError(f"{self.url}: HTTP {status} {reason}, not an answer of Binance's API: is {self.base_url}"
                             " its address?")
        return f"{self.host}: HTTP {status} {reason}" + (f" ({refusal})" if refusal else "")

    def pace(self, headers):
        """Past half of the minute's request weight, wait for the next minute: the rest is left to others at
        this IP address (Binance counts per address), and no request gets a 429."""
        used = headers.get("X-MBX-USED-WEIGHT-1M", "")
        if used.isdigit() and int(used) > WEIGHT_LIMIT // 2:
            wait = 60 - self.now() % 60_000 / 1000
            self.report(f"{self.host}: {int(used):,} of its {WEIGHT_LIMIT:,} request weight a minute used; pausing"
                        f" {wait:.0f} s until the next minute")
            self.sleep(wait)


def price_text(text):
    """An exchange's decimal string in paper's form, which tick stores as given: Binance writes 8 decimals,
    so most of its prices are paper's once their last six zeros go (60012.34000000 is 60012.34), and any
    other is written out by fmt."""
    return text[:-6] if text[-9:-8] == "." and text.endswith("000000") else fmt(text)


def unreached(host, why, proxy=None, connecting=False):
    """A request that got no answer, in a line naming the host, and the proxy (proxy_for) it went through:
    while connecting, it is the proxy that was not reached."""
    text = getattr(why, "strerror", None) or why
    if proxy and connecting:
        if str(why).startswith("Tunnel connection failed"):  # the proxy's refusal to connect to host (https)
            return f"{proxy} would not connect to {host}: {why}"
        return f"cannot reach {proxy} on the way to {host}: {text}"
    through = f" (through {proxy})" if proxy else ""
    if isinstance(why, TimeoutError):
        return f"{host} gave no complete answer within {TIMEOUT} s{through}"
    if isinstance(why, ConnectionResetError) or type(why).__name__ in ("IncompleteRead", "RemoteDisconnected",
                                                                        "BadStatusLine"):
        return f"{host} dropped the connection before its answer was complete{through}"
    return f"cannot reach {host}: {text}{through}"


def proxy_for(url, host):
    """'the proxy 10.0.0.1:3128 (https_proxy)' that urllib sends url's requests to host through, from the
    environment (or the system's settings), its password left out; None if none."""
    import urllib.parse
    import urllib.request
    scheme = url.split("://")[0]
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    names = [name for name in os.environ if name.lower() == f"{scheme}_proxy" and os.environ[name] == proxy]
    source = f"{scheme}_proxy" if f"{scheme}_proxy" in names else names[0] if names else "the system's proxy settings"
    address = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}").netloc.rpartition("@")[2]
    return f"the proxy {address} ({source})"


def bounded_opener():
    """urllib's opener (proxies as urllib reads them, certificates checked as its default context does)
    with every request over within TIMEOUT seconds, from connecting to its answer's last byte: urllib's
    timeout bounds each wait for more bytes alone, so a server trickling a byte every few seconds would
    hold paper for ever. Returns open(request), which raises TimeoutError at the deadline."""
    import http.client
    import urllib.request
    deadline = [0.0]  # of the request under way

    def left():
        remaining = deadline[0] - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        return remaining

    class Reader(io.RawIOBase):
        """A socket's bytes, each read waiting only until the deadline."""

        def __init__(self, sock):
            self.sock, self.raw = sock, sock.makefile("rb", buffering=0)

        def readable(self):
            return True

        def readinto(self, buffer):
            self.sock.settimeout(left())
            return self.raw.readinto(buffer)

        def close(self):
            self.raw.close()
            super().close()

    class Response(http.client.HTTPResponse):
        def __init__(self, sock, *args, **kwargs):
            super().__init__(sock, *args, **kwargs)
            self.fp.close()  # http.client's reader of the socket, not read yet: replaced
            self.fp = io.BufferedReader(Reader(sock))

    class Connection(http.client.HTTPConnection):
        response_class = Response

        def connect(self):
            self.timeout = left()
            super().connect()

    class SecureConnection(http.client.HTTPSConnection):
        response_class = Response

        def connect(self):  # the TLS handshake waits at most what is left for each of its reads
            self.timeout = left()
            super().connect()

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, request):
            return self.do_open(Connection, request)

    class Secure(urllib.request.HTTPSHandler):
        def https_open(self, request):
            return self.do_open(SecureConnection, request, context=self._context)

    opener = urllib.request.build_opener(Plain, Secure)

    def open(request):
        deadline[0] = time.monotonic() + TIMEOUT
        return opener.open(request, timeout=TIMEOUT)
    return open


def exchange_error(body):
    """'-1121 Invalid symbol.' from an answer of Binance's error form ({"code": -1121, "msg": "Invalid
    symbol."}), else None."""
    import json
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if isinstance(answer, dict) and type(answer.get("code")) is int and isinstance(answer.get("msg"), str):
        return " ".join(f"{answer['code'] or ''} {answer['msg']}".split())[:300]  # code 0: no code (a 451's)
    return None


def retry_after(headers, default):
    """The seconds a Retry-After header asks for, else default."""
    value = headers.get("Retry-After", "") if headers else ""
    return int(value) if value.isascii() and value.isdigit() else default


def kline_steps(client, symbols, interval, start=None, end=None, follow=False, after=None):
    """The closed klines of symbols (BASE/QUOTE) at interval, as steps to record: an iterator of lists of bars
    (symbol, time, open, high, low, close), time in paper's form (the kline's open time), prices the
    exchange's decimal strings in paper's form (see Exchange.klines). Bars are merged by market time (at one
    time, in the order of symbols); a step is what one transaction should hold: a page of one symbol, or
    every symbol's bars up to the earliest end of their pages in hand, so memory holds a page per symbol
    however long the range.

    From start (a market time; default each symbol's last 1,000 closed bars), but only after after[symbol]
    (a market time, such as the newest price recorded) where that is later; to end (exclusive; default the
    server's time when the fetch began). A kline still forming (its close time at or after the server's
    time) is never yielded. With follow (and no end), once caught up it waits until the next bar should
    have closed, then yields it (each time's bars of every symbol in one step), for ever: the caller stops
    by closing the iterator. Waits are client.sleep; network failures are retried for ever when following.
    Bad arguments are refused here, before any request."""
    symbols, (first, last) = kline_symbols(symbols), kline_range(start, end, follow)
    interval, after = to_interval(interval), {to_symbol(symbol): market_time
                                               for symbol, market_time in (after or {}).items()}
    position = {}  # each symbol's next startTime (epoch ms): None asks for its latest bars
    for symbol in symbols:
        resume = None if after.get(symbol) is None else time_us(to_time(after[symbol])) // 1000 + 1
        position[symbol] = resume if first is None or resume is not None and resume > first else first
    return stepping(client, symbols, interval, position, last, follow, first)


def kline_symbols(symbols):
    """kline_steps' symbols (one, or several), checked: each once."""
    symbols = [to_symbol(symbol) for symbol in ([symbols] if isinstance(symbols, str) else symbols)]
    if not symbols:
        raise PaperError("give one or more symbols")
    twice = [symbol for symbol in symbols if symbols.count(symbol) > 1]
    if twice:
        raise PaperError(f"{twice[0]} is given twice: give each symbol once")
    return symbols


def kline_range(start, end, follow):
    """(the first epoch ms at or after start, the last before end), None where not given; checked."""
    if follow and end is not None:
        raise PaperError("follow goes on with no end: give an end, or follow, not both")
    first = None if start is None else -(-time_us(to_time(start)) // 1000)
    last = None if end is None else -(-time_us(to_time(end)) // 1000) - 1
    if first is not None and last is not None and last < first:
        raise PaperError(f"end {to_time(end)} is not after start {to_time(start)}")
    return first, last


def stepping(client, symbols, interval, position, last, follow, first=None):
    """kline_steps' steps, its arguments checked (first: the start asked for, in epoch ms, if any)."""
    while True:
        now = client.server_time(follow)
        if first is not None and first > now and not follow:  # a mistyped year, say: no bar can have closed
            raise PaperError(f"start {short_time(epoch_time(first))} is after the exchange's clock"
                             f" ({short_time(epoch_time(now))}): no bar has closed then (follow waits for one)")
        bound = closed_before(now, interval) if last is None else min(last, closed_before(now, interval))
        yield from merged_steps({symbol: kline_pages(client, symbol, interval, position, bound, now, follow)
                                 for symbol in symbols})
        if not follow:
            return
        client.sleep(max((follow_wake(position, interval, now) - client.now()) / 1000, 0) + SETTLE)


def kline_pages(client, symbol, interval, position, bound, now, forever):
    """symbol's closed bars from position[symbol] to bound (epoch ms), page by page (lists, none empty);
    position[symbol] moves past each page."""
    while position[symbol] is None or position[symbol] <= bound:
        page = client.klines(symbol, interval, position[symbol], bound, forever)
        full = len(page) == PAGE and position[symbol] is not None  # the latest PAGE bars: all that is wanted
        if page and page[-1][1] >= now:  # still forming (never after an endTime before it opened: checked all
            page.pop()  # the same)
        if not page:
            return
        position[symbol] = page[-1][0] + 1
        yield [(symbol, epoch_time(opened), open_price, high, low, close)
               for opened, _, open_price, high, low, close in page]
        if not full:
            return


def merged_steps(pages):
    """Steps from each symbol's pages ({symbol: iterator}, in the symbols' order): every bar up to the
    earliest last time of the pages in hand, sorted by time (a stable sort: at one time, the symbols'
    order). A symbol whose pages are done no longer holds the others back."""
    from bisect import bisect_right
    held = dict.fromkeys(pages, ())
    while True:
        for symbol, source in pages.items():
            if not held[symbol] and source is not None:
                held[symbol] = next(source, ())
                if not held[symbol]:
                    pages[symbol] = None
        horizon = min((held[symbol][-1][1] for symbol, source in pages.items() if source is not None), default=None)
        step = []
        for symbol, bars in held.items():
            cut = len(bars) if horizon is None else bisect_right(bars, horizon, key=lambda bar: bar[1])
            step += bars[:cut]
            held[symbol] = bars[cut:]
        if not step:
            return
        if len(pages) > 1:
            step.sort(key=lambda bar: bar[1])
        yield step


def next_open(opened, interval):
    """The open time (epoch ms) of the kline after the one that opened at opened."""
    if INTERVALS[interval]:
        return opened + INTERVALS[interval]
    moment = EPOCH + timedelta(milliseconds=opened)  # a month: the first of the next one
    year, month = divmod(moment.year * 12 + moment.month, 12)
    return (datetime(year, month + 1, 1) - EPOCH) // timedelta(milliseconds=1)


def closed_before(now, interval):
    """The latest open time (epoch ms) of a kline closed at the server's time now: its close time (the next
    open less 1 ms) is before now."""
    if INTERVALS[interval]:
        return now - INTERVALS[interval]
    moment = EPOCH + timedelta(milliseconds=now)
    return (datetime(moment.year, moment.month, 1) - EPOCH) // timedelta(milliseconds=1) - 1


def kline_open(moment, interval):
    """The open time (epoch ms) of the kline at interval that holds moment, as Binance lays them out in UTC: a
    month's on its first day, a week's on Monday (its docs' 1w kline opens on Monday 2017-07-03), the others'
    at whole multiples of their length from the epoch."""
    if not INTERVALS[interval]:
        day = EPOCH + timedelta(milliseconds=moment)
        return (datetime(day.year, day.month, 1) - EPOCH) // timedelta(milliseconds=1)
    offset = WEEK_OPEN if interval == "1w" else 0
    return (moment - offset) // INTERVALS[interval] * INTERVALS[interval] + offset


def follow_wake(position, interval, now):
    """When (the server's epoch ms) to ask again: as soon as a symbol's next bar should have closed (the server
    said now), or in a second for a symbol whose bar is late or that has none yet. A symbol's next bar is the
    first to open at or after its position: after the latest bar's open time, or from a time of another kind
    (run --fetch's now): it closes as kline_open lays bars out, and at the latest a bar's length after the
    next one; should the exchange lay them out otherwise, it is asked then."""
    wakes = []
    for start in position.values():  # start: the ms after the latest bar's open time, or where a symbol begins
        if start is None:
            wakes.append(now + 1000)
            continue
        first = kline_open(start, interval)
        expected = next_open(first if first == start else next_open(first, interval), interval)
        latest = next_open(next_open(start - 1, interval), interval)
        wakes.append(expected if expected > now else latest if latest > now else now + 1000)
    return min(wakes)


def record_klines(ledger, steps, each=None, stop=None):
    """Record steps of bars (kline_steps), each in one transaction (ledger.batch), filling orders as tick does;
    each(results) is called with a step's tick results once it is committed. stop (the command line's
    Interrupt) ends the run between two steps once stop.pending, and at once while it waits for the
    exchange (stop.waiting is set then). A refusal says what was recorded before it. Returns the summary:
    {"recorded", "skipped", "symbols": {symbol: {"recorded", "skipped", "from", "to"}}, "fills": [Trade],
    "cancelled": [Order] (expired ones too), "triggered": [Order], "risk": [what the risk rules did]}."""
    totals = {"recorded": 0, "skipped": 0, "symbols": {}, "fills": [], "cancelled": [], "triggered": [], "risk": []}
    try:
        while not (stop and stop.pending):
            if stop:
                stop.waiting = True
            step = next(steps, None)
            if stop:
                stop.waiting = False
            if step is None:
                break
            with ledger.batch():
                results = [record_bar(ledger, *bar) for bar in step]
            for result in results:
                tally(totals, result)
            if each:
                each(results)
    except KeyboardInterrupt:  # raised by stop while waiting: nothing was being written
        if stop is None:
            raise
    except PaperError as error:
        if stop:
            stop.waiting = False
        recorded_before, on = recorded_text(totals), "the same command goes on from there"
        if isinstance(error, TimeGoesBack):  # another price of the symbol was recorded meanwhile: a gap
            on = (f"the same command goes on after {error.newest}, and the bars before it are not recorded (time"
                  f" never goes back); if that price was a mistake, delete_prices({error.symbol!r}, {error.newest!r})"
                  " removes it first")
        raise PaperError(f"{error}; recorded before it: {recorded_before}; {on}" if recorded_before else
                         f"{error}; {on}" if isinstance(error, TimeGoesBack) else str(error)) from None
    finally:
        if stop:
            stop.waiting = False
        steps.close()
    return totals


def record_bar(ledger, symbol, market_time, open_price, high, low, close):
    try:
        return ledger.tick(symbol, time=market_time, open=open_price, high=high, low=low, close=close)
    except TimeGoesBack as error:
        raise TimeGoesBack(f"the exchange's {symbol} bar at {market_time}: {error}", error.symbol, error.newest) from None
    except PaperError as error:
        raise PaperError(f"the exchange's {symbol} bar at {market_time}: {error}") from None


def tally(totals, result):
    """A recorded bar's tick result, added to the summary of record_klines."""
    counts = totals["symbols"].get(result["symbol"]) or totals["symbols"].setdefault(
        result["symbol"], {"recorded": 0, "skipped": 0, "from": None, "to": None})
    if result["recorded"]:
        totals["recorded"] += 1
        counts["recorded"] += 1
        counts["from"] = counts["from"] or result["time"]
        counts["to"] = result["time"]
    else:
        totals["skipped"] += 1
        counts["skipped"] += 1
    if result["fills"] or result["cancelled"] or result["triggered"] or result["risk"]:
        for key in ("fills", "cancelled", "triggered", "risk"):
            totals[key] += result[key]


def recorded_text(totals):
    """The bars a fetch recorded, per symbol, and their market times: 'BTC/USDT 1,000 bars, ETH/USDT 1,000
    bars, 2025-01-01 00:00:00 to 2025-01-01 16:39:00' (a range each when they differ); '' for none."""
    recorded = {symbol: counts for symbol, counts in totals["symbols"].items() if counts["recorded"]}
    spans = {(counts["from"], counts["to"]) for counts in recorded.values()}
    parts = [f"{symbol} {count(counts['recorded'], 'bar')}" + ("" if len(spans) == 1 else
             f" {short_time(counts['from'])} to {short_time(counts['to'])}") for symbol, counts in recorded.items()]
    if len(spans) == 1:
        first, last = spans.pop()
        parts.append(f"{short_time(first)} to {short_time(last)}")
    return ", ".join(parts)


# --- Strategies: one file that runs as a backtest and live on a paper account ---

GRID_LIMIT = 100_000  # combinations a sweep takes
BAR_WINDOW = 2  # bars of each symbol a run keeps in memory, or the most a strategy asks for; older ones from SQL
PARAM_TYPES = (bool, int, float, str)
MAXIMIZE = ("sharpe", "sortino", "calmar", "return", "cagr", "max_drawdown", "win_rate", "profit_factor",
            "equity_final", "avg_trade", "trades")


class Bar(tuple):
    """A bar as a strategy sees it: symbol, time (market time), open, high, low, close (Decimals)."""

    __slots__ = ()
    symbol, time = property(lambda bar: bar[0]), property(lambda bar: bar[1])
    open, high, low, close = (property(lambda bar, i=i: bar[i]) for i in range(2, 6))

    def __repr__(self):
        return "Bar({})".format(", ".join(f"{name}={value!r}" for name, value in zip(PRICE.split(", "), self)))


class Strategy:
    """A strategy file, loaded in a module of its own: PARAMS (the defaults), init (or None) and on_bar."""

    def __init__(self, path, module):
        self.path, self.name, self.module = path, os.path.basename(path), module
        self.params, self.init, self.on_bar = module.PARAMS, module.init, module.on_bar


def load_strategy(path):
    """The strategy file at path, run once in a module of its own. Refused in one line (file and line)
    if it cannot be read, does not compile, or has no on_bar; a StrategyError if its code raises."""
    import types
    try:
        with open(path, "rb") as f:
            source = f.read()
        code = compile(source, path, "exec", dont_inherit=True)
    except OSError as error:
        raise PaperError(f"cannot read the strategy {path}: {error.strerror or error}") from None
    except (SyntaxError, ValueError) as error:  # ValueError: a NUL byte, before Python 3.12
        raise PaperError(f"{path} line {getattr(error, 'lineno', None) or 1}: {getattr(error, 'msg', error)}") from None
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    module = types.ModuleType(f"paper_strategy_{stem}")  # never a name another module has (json.py, ...)
    module.__file__, module.PARAMS, module.init = path, {}, None
    sys.modules[module.__name__] = module  # dataclasses and pickle look a module up by its name
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:  # its own modules beside it, as when a script runs (`from indicators import sma`)
        sys.path.append(folder)
    try:
        exec(code, vars(module))
    except (Exception, SystemExit) as error:
        raise strategy_error(path, error) from None
    if not callable(getattr(module, "on_bar", None)):
        raise PaperError(f"{path} line 1: no on_bar(ctx, bar) function: a strategy defines one")
    if not (module.init is None or callable(module.init)):
        raise PaperError(f"{path}: init must be a function init(ctx)")
    if not isinstance(module.PARAMS, dict) or not all(isinstance(name, str) and name.isidentifier() and type(
            value) in PARAM_TYPES for name, value in module.PARAMS.items()):
        raise PaperError(f"{path}: PARAMS must be a dict of names to int, float, bool or str defaults")
    return Strategy(path, module)


def strategy_error(path, error):
    """A strategy's exception as a StrategyError: its traceback with the strategy's own frames (paper's
    left out), and a message naming the file, line and function of the last of them."""
    import traceback
    paper_file = os.path.abspath(__file__)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(frame.filename) != paper_file]
    own = [frame for frame in frames if frame.filename == path] or frames
    text = str(error) if isinstance(error, PaperError) else type(error).__name__ + (f": {error}" if str(error) else "")
    where = f"{path} line {own[-1].lineno} in {own[-1].name}" if own else path
    failed = StrategyError(f"{where}: {' '.join(text.splitlines())}")
    failed.refusal = error if isinstance(error, RiskRefused) else None
    failed.traceback = "".join(["Traceback (most recent call last):\n", *traceback.format_list(frames),
                                *traceback.format_exception_only(type(error), error)])
    return failed


def param_values(name, text, default):
    """The values --param NAME=TEXT gives, each of the default's type: a:b:step (a range including b, for
    numbers) or a,b,c (a list) give several, anything else one. Returns (values, several)."""
    numeric = type(default) in (int, float)
    if "," in text:
        return list(dict.fromkeys(param_value(name, part, default) for part in text.split(","))), True  # once each
    if numeric and ":" in text:
        parts = [param_value(name, part, default) for part in text.split(":")]
        if len(parts) not in (2, 3) or parts[0] > parts[1] or len(parts) == 3 and parts[2] <= 0:
            raise UsageError(f"--param {name}={text}: a range is FROM:TO:STEP, FROM at most TO, STEP above 0")
        first, last, step = (Decimal(part) for part in text.split(":") + ["1"] * (3 - len(parts)))
        value_count = int((last - first) / step) + 1
        if value_count > 10_000:
            raise UsageError(f"--param {name}={text} gives {value_count:,} values: at most 10,000")
        return [type(default)(first + i * step) for i in range(value_count)], True
    return [param_value(name, text, default)], False


def param_value(name, text, default):
    """text as a value of the default's type (int, float, bool or str)."""
    kind, text = type(default), text.strip() if type(default) is not str else text
    try:
        if kind is bool:
            return {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}[text.lower()]
        if kind in (int, float) and not re.fullmatch(r"-?[0-9]+" if kind is int else r"-?[0-9]*\.?[0-9]+([eE]-?[0-9]+)?",
                                                     text):  # as typed in ASCII: no 5_000, no other digits
            raise ValueError
        value = kind(text)
        if kind is float and not math.isfinite(value):
            raise ValueError
        return value
    except (KeyError, ValueError):
        raise UsageError(f"--param {name}={text}: {name} is {'an' if kind is int else 'a'} {kind.__name__} (its"
                         f" default is {default!r})") from None


def to_grid(strategy, given):
    """--param NAME=VALUE texts as {name: [values]} over every param of strategy (its default unless given),
    and whether any gave several (a sweep)."""
    grid, is_sweep = {name: [value] for name, value in strategy.params.items()}, False
    for i, text in enumerate(given):
        name, equals, value = text.partition("=")
        if not equals:
            raise UsageError(f"--param {text!r} must be NAME=VALUE")
        if name not in strategy.params:
            raise UsageError(f"--param {name}: {strategy.path} has no param {name!r} (its PARAMS: "
                             f"{', '.join(strategy.params) or 'none'})")
        if any(other.partition("=")[0] == name for other in given[:i]):
            raise UsageError(f"--param {name} is given twice")
        grid[name], several = param_values(name, value, strategy.params[name])
        is_sweep = is_sweep or several
    return grid, is_sweep


def to_params(strategy, params):
    """A strategy's params: its defaults, with params (a dict of values of the defaults' types) over them."""
    chosen = dict(strategy.params)
    for name, value in dict(params or {}).items():
        if name not in chosen:
            raise UsageError(f"{strategy.path} has no param {name!r} (its PARAMS: {', '.join(chosen) or 'none'})")
        kind = type(chosen[name])
        if not (type(value) is kind or kind is float and type(value) is int):
            raise UsageError(f"param {name} is {'an' if kind is int else 'a'} {kind.__name__}, not {shown(value)}")
        chosen[name] = kind(value)
    return chosen


def to_constraint(text, names):
    """A constraint over the params, compiled: names, numbers, strings, + - * / // %, comparisons, and,
    or, not and if-else are all it may hold; anything else is refused (no call, no attribute, no import)."""
    import ast
    try:
        tree = ast.parse(text, "<constraint>", mode="eval")
    except SyntaxError as error:
        raise UsageError(f"constraint {text!r} is not an expression: {error.msg}") from None
    allowed = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Name, ast.Load,
               ast.Constant, ast.boolop, ast.cmpop, ast.unaryop, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv,
               ast.Mod)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise UsageError(f"constraint {text!r}: {type(node).__name__} is not allowed; it may use the params,"
                             " numbers, strings, + - * / // %, comparisons, and, or, not, ... if ... else ...")
        if isinstance(node, ast.Name) and node.id not in names:
            raise UsageError(f"constraint {text!r}: {node.id!r} is not a param of the strategy")
    return text, compile(tree, "<constraint>", "eval")


def combinations(grid, constraint=None):
    """Every combination of the grid's values {name: [values]}, in its order, that passes the constraint."""
    names, chosen = list(grid), []
    check = to_constraint(constraint, names) if isinstance(constraint, str) else constraint
    count = math.prod(len(values) for values in grid.values())
    if count > GRID_LIMIT:
        raise UsageError(f"the params give {count:,} combinations: at most {GRID_LIMIT:,} (a sweep backtests each)")
    for values in itertools.product(*grid.values()):
        params = dict(zip(names, values))
        try:
            passes = check is None or eval(check[1], {"__builtins__": {}}, dict(params))
        except Exception as error:
            raise UsageError(f"constraint {check[0]!r} fails for {params}: {type(error).__name__}: {error}") from None
        chosen += [params] if passes else []
    if not chosen:
        raise UsageError(f"constraint {check[0]!r} leaves no combination of the params" if check else
                         "the grid has no combination: a param has no value")
    return chosen


def run_name(strategy, params):
    """The account name of a strategy run: the file's name and its params."""
    name = " ".join([strategy.name] + [f"{key}={value}" for key, value in params.items()])
    name = "".join(char if char.isprintable() else "?" for char in name)
    return name if len(name) <= 200 else name[:199] + "…"


class Context:
    """What a strategy sees as `ctx`: its params and state, the market time, its account, the bars so
    far, and what it may do, all through the ledger the command line uses. A bar's orders are paper's
    orders; a market order fills at the next price of its symbol, or with on_close at this bar's close."""

    def __init__(self, ledger, account_id, params, state, fee_rate=FEE_RATE, slippage=ZERO, on_close=False):
        self.params, self.state, self.account_id, self.time = params, state, account_id, None
        self._ledger, self._fee_rate, self._slippage, self._on_close = ledger, fee_rate, slippage, on_close
        self._symbol, self._bars, self._closes, self._fills = None, {}, {}, []  # windows: {symbol: deque}
        self._cancelled = []  # the account's orders this bar's price cancelled (a gap it could not pay, an expiry)
        self._copies = {}  # {order id: (its state, the copy orders() gave, the copy's state)}

    def _which(self, symbol):
        if symbol is None:
            if self._symbol is None:
                raise PaperError("no bar yet: name the symbol")
            return self._symbol
        return to_symbol(symbol)

    def _window(self, symbol, n=0):
        """symbol's latest bars in memory (at least n, or all there are), up to this bar; read from SQL
        the first time and whenever a strategy asks for more than the window holds."""
        bars = self._bars.get(symbol)
        if bars is None or n > bars.maxlen:
            from collections import deque
            size = max(BAR_WINDOW, n, bars.maxlen if bars is not None else 0)
            rows = reversed(self._ledger.prices(symbol, size, until=self.time))
            bars = self._bars[symbol] = deque((Bar(row.values()) for row in rows), maxlen=size)
            self._closes[symbol] = deque((float(bar[5]) for bar in bars), maxlen=size)
        return bars

    def _push(self, bar):
        """bar is the new bar of its symbol, now recorded."""
        self.time, self._symbol = bar[1], bar[0]
        if bar[0] in self._bars:
            self._bars[bar[0]].append(bar)
            self._closes[bar[0]].append(float(bar[5]))
        else:
            self._window(bar[0])  # this bar included

    def history(self, symbol=None, n=None):
        """The bars of symbol (default this bar's) up to this one, oldest first: the last n, or all."""
        symbol = self._which(symbol)
        if n is None:
            return [Bar(row.values()) for row in reversed(self._ledger.prices(symbol, until=self.time))]
        n = to_limit(n, "n")
        bars = self._window(symbol, n)
        return list(itertools.islice(bars, max(len(bars) - n, 0), None))

    def closes(self, n, symbol=None):
        """The last n closes of symbol (default this bar's) up to this bar, oldest first, as floats for
        indicators (fewer while there are fewer): a signal may be a float, money never is."""
        closes = self._closes.get(symbol or self._symbol)
        if closes is None or type(n) is not int or not 0 < n <= closes.maxlen:  # else the usual case, at once
            symbol, n = self._which(symbol), to_limit(n, "n")
            self._window(symbol, n)
            closes = self._closes[symbol]
        return list(itertools.islice(closes, max(len(closes) - n, 0), None))


    @property
    def equity(self):
        """What the account holds, valued in this bar's QUOTE at the latest closes (None if a holding has none)."""
        ledger = self._ledger
        if not ledger.db.in_transaction:  # (on_bar runs inside its bar's transaction: this is for init)
            return ledger.valuation(self.account_id, quote=self._quote(), realized=False)["equity"]
        return ledger._holdings(ledger._balances(self.account_id).values(), self._quote())[1]  # as valuation's

    def _quote(self):
        if self._symbol is None:
            return self._ledger.account(self.account_id, 0).currency
        return self._symbol.partition("/")[2]

    def orders(self, symbol=None):
        """The account's open orders on symbol (default this bar's), oldest first."""
        symbol, ledger = self._which(symbol), self._ledger
        if not ledger.db.in_transaction:  # (on_bar runs inside its bar's transaction: this is for init)
            return [order for order in reversed(ledger.orders(self.account_id, open_only=True)) if order.symbol == symbol]
        mine, copies = [], {}  # the symbol's open orders, as the matching keeps them: copies, as read (the same
        for order, _ in sorted(ledger._book(symbol).orders.values(), key=itemgetter(1)):  # copy again while
            if order.account_id == self.account_id:  # neither the order nor the copy has changed since: fills,
                state, kept = tuple(vars(order).values()), self._copies.get(order.id)  # its one list, is empty
                if kept is None or kept[0] != state or tuple(vars(kept[1]).values()) != kept[2] or kept[1].fills:
                    copy = order.copy(ORDER)
                    kept = state, copy, tuple(vars(copy).values())
                mine.append(kept[1])
                copies[order.id] = kept
        self._copies = copies
        return mine

    def position(self, symbol=None):
        """How much BASE of symbol (default this bar's) the account holds (reserved for orders included)."""
        return self._ledger._balance(self.account_id, self._which(symbol).partition("/")[0]).total

    @property
    def cash(self):
        """The QUOTE of this bar's symbol (before the first bar, the account's currency) available."""
        return self._ledger._balance(self.account_id, self._quote()).available

    def buy(self, qty=None, *, symbol=None, fraction=None, limit=None, stop=None, expires=None, type=None, sl=None,
            tp=None, trail=None):
        """Buy qty of BASE, or a fraction of the equity's worth: see README, Strategies; sl, tp and trail
        protect what it buys (see README, Risk). Returns the Order (a market order with on_close fills at
        once: the Trade)."""
        return self._order("buy", qty, symbol, fraction, limit, stop, expires, type, (sl, tp, trail))

    def sell(self, qty=None, *, symbol=None, fraction=None, limit=None, stop=None, expires=None, type=None):
        """Sell qty of BASE, or a fraction of the position: as buy."""
        return self._order("sell", qty, symbol, fraction, limit, stop, expires, type)

    def close(self, symbol=None):
        """Sell all of symbol (default this bar's) held at market, once its open sell orders (which hold
        it) are cancelled; None when nothing is held."""
        symbol = self._which(symbol)
        for order in self.orders(symbol):
            if order.side == "sell":
                self.cancel(order)
        held = self.position(symbol)
        return self.sell(held, symbol=symbol) if held else None

    def cancel(self, order):
        """Cancel an open order of the account (an Order or its id): its reserve is available again."""
        self._placing()
        ledger = self._ledger
        if isinstance(order, Order) and order.account_id == self.account_id and ledger.db.in_transaction:
            if order.id not in ledger._book(order.symbol).orders:  # the book holds every open order of its symbol
                raise NotFound(f"no open order {order.id!r} of account {self.account_id}")
            return ledger.cancel(order.id)
        order_id = order.id if isinstance(order, Order) else to_id(order)
        mine = [open_order.id for open_order in self._ledger.orders(self.account_id, open_only=True)
                if open_order.id.startswith(order_id)]
        if len(mine) != 1:
            raise NotFound(f"no open order {order_id!r} of account {self.account_id}")
        return self._ledger.cancel(mine[0])

    def log(self, text):
        """Print text on stderr after the market time."""
        print(f"{self.time or 'init'} {text}", file=sys.stderr, flush=True)

    def _placing(self):
        if self.time is None:
            raise PaperError("orders are placed and cancelled in on_bar: init runs before the first bar, and"
                             " again when a run resumes")

    def _order(self, side, qty, symbol, fraction, limit, stop, expires, order_type, protection=(None, None, None)):
        self._placing()
        symbol = self._which(symbol)
        if (qty is None) == (fraction is None):
            raise PaperError(f"{side} takes a qty or a fraction (one of them)")
        order_type = order_type or ("market" if limit is None and stop is None else "limit" if stop is None else "stop" if
                        limit is None else "stop-limit")
        spend = None
        if fraction is not None:
            qty, spend = self._sized(side, symbol, fraction, order_type, limit, stop)
        sl, tp, trail = protection
        if order_type == "market" and self._on_close:  # at this bar's close: an ordinary trade, now
            trade = self._ledger.trade(self.account_id, side, symbol, qty, fee_rate=self._fee_rate,
                                       slippage=self._slippage, sl=sl, tp=tp, trail=trail)
            self._fills.append(trade)
            return trade
        market = order_type == "market"
        order = self._ledger.place_order(self.account_id, side, symbol, qty, limit, self._fee_rate, order_type, stop,
                                         expires, slippage=self._slippage if market else ZERO, spend=spend, sl=sl,
                                         tp=tp, trail=trail)
        self._fills += order.fills
        return order

    def _sized(self, side, symbol, fraction, order_type, limit, stop):
        """(qty, spend) of a fraction: of the position for a sell (qty); of the equity for a buy, sized at a
        market order's fill (spend), else now, at the order's own price or this bar's close (qty)."""
        if isinstance(fraction, float) and not math.isfinite(fraction):
            raise PaperError(f"fraction {fraction} must be above 0 and at most 1")
        share = Decimal(repr(fraction)) if isinstance(fraction, float) else to_amount(fraction, "fraction")
        if not 0 < share <= 1:
            raise PaperError(f"fraction {shown(fraction)} must be above 0 and at most 1")
        if side == "sell":
            qty = floor_qty(self.position(symbol) * share, self._ledger.risk.step(symbol))
            if not qty:
                raise PaperError(f"fraction {shown(fraction)} of the {fmt(self.position(symbol))}"
                                 f" {symbol.partition('/')[0]} held is nothing to sell")
            return qty, None
        equity = self.equity
        if equity is None:
            raise PaperError("the equity has no value (a holding has no price), so a fraction of it neither")
        spend = FLOORED.multiply(equity, share).quantize(QTY_STEP, context=FLOORED)
        if order_type == "market":
            latest = self._ledger.prices(symbol, 1)
            if not latest:
                raise PaperError(f"no recorded price for {symbol}: a fraction of the equity is sized at its latest"
                                 " close")
            price = latest[0]["close"]  # a market order's reserve; with on_close, its fill
            price = slipped(price, side, self._slippage) if self._on_close else price
        else:
            price = to_amount({"limit": limit, "stop-limit": limit, "stop": stop}.get(order_type) or max(
                to_amount(limit, "limit"), to_amount(stop, "stop")), "price")
        qty = affordable(spend, price, self._fee_rate, self._ledger.risk.step(symbol))
        if not qty:
            raise PaperError(f"fraction {shown(fraction)} of the equity ({fmt(spend)}) buys no {symbol} at"
                             f" {fmt(price)}, fee included")
        return (None, spend) if order_type == "market" and not self._on_close else (qty, None)  # sized again at its fill


class Run:
    """A strategy running on an account: the bars it is given, recorded and handed to on_bar once each,
    and its row in strategy_runs (its state and the last bar it handled of each symbol)."""

    def __init__(self, ledger, strategy, account_id, params, options, mode):
        import json
        self.ledger, self.strategy, self.mode, self.json = ledger, strategy, mode, json
        self.params, self.options = params, {key: jsonable(value) for key, value in options.items()}
        with ledger.snapshot():
            account = ledger.account(account_id, 0)
            identity = (account.id, strategy.name, json.dumps(params, sort_keys=True), mode)
            row = ledger.db.execute("SELECT id, options, state, handled, bars FROM strategy_runs WHERE account_id = ?"
                                    " AND strategy = ? AND params = ? AND mode = ?", identity).fetchone()
        if not account.is_active:
            raise PaperError(f"account {account.id} is closed")
        self.id, state, self.handled, self.before = (row[0], json.loads(row[2]), json.loads(row[3]), row[4]) if row \
            else (None, {}, {}, 0)
        if row and json.loads(row[1]) != self.options:
            was = json.loads(row[1])
            raise PaperError(f"strategy run {row[0]} ({strategy.name} on account {account.id}) was started with"
                             f" fee_rate={was['fee_rate']} slippage={was['slippage']}"
                             f"{' on_close=True' if was['on_close'] else ''}: resume it with the same options")
        self.identity, self.bars, self.fills, self.on_bar, self.skipped = identity, 0, 0, strategy.on_bar, 0
        self.ctx = Context(ledger, account.id, dict(params), state, options["fee_rate"], options["slippage"],
                           options["on_close"])

    def start(self):
        """init(ctx), once a process, before its first bar (a resumed run's ctx.state as it was)."""
        if self.strategy.init:
            self.call(self.strategy.init, self.ctx)

    def call(self, function, *args):
        """A function of the strategy's, its prints sent to stderr (stdout carries results only), anything it
        raises but Ctrl-C a StrategyError."""
        stdout, sys.stdout = sys.stdout, sys.stderr
        try:
            function(*args)
        except KeyboardInterrupt as error:  # a Ctrl-C, unless the command line's handler has it: then the
            if not isinstance(_signal.getsignal(_signal.SIGINT), Interrupt):  # strategy raised it itself
                raise
            raise strategy_error(self.strategy.path, error) from None
        except BaseException as error:
            raise strategy_error(self.strategy.path, error) from None
        finally:
            sys.stdout = stdout

    def step(self, source, line, row, allow_future=False):
        """Record one bar (row, from line of source, as read_prices gives it), with the fills it causes, and
        hand it to on_bar unless this run handled it before; returns whether it did. A bar that differs from
        the one recorded at its time is refused."""
        try:
            recorded = self.ledger._tick_row(row, allow_future)
        except PaperError as error:
            raise PaperError(f"{source}: line {line}: {error}" if line else f"{source}: {error}") from None
        symbol, market_time = recorded["symbol"], recorded["time"]
        if market_time <= self.handled.get(symbol, ""):
            return False
        # history: recorded before, and a later price of its symbol too (an order now would fill at that one):
        # not handed on
        if not recorded["recorded"] and self.ledger._latest[symbol].time != market_time:
            self.skipped += 1
            return False
        ctx, fills, cancelled = self.ctx, recorded["fills"], recorded["cancelled"]
        ctx._fills = [trade for trade in fills if trade.account_id == ctx.account_id] if fills else []
        ctx._cancelled = [order for order in cancelled if order.account_id == ctx.account_id] if cancelled else []
        bar = Bar((symbol, market_time, recorded["open"], recorded["high"], recorded["low"], recorded["close"]))
        ctx._push(bar)
        self.call(self.on_bar, ctx, bar)
        self.handled[symbol], self.bars, self.fills = market_time, self.bars + 1, self.fills + len(self.ctx._fills)
        return True

    def claim(self):
        """Refuse to go on (inside a bar's transaction, before the bar) if another process has moved this run
        on, or started it, since this one last wrote it: a strategy runs on an account once at a time."""
        row = self.ledger.db.execute("SELECT id, bars FROM strategy_runs WHERE account_id = ? AND strategy = ? AND"
                                     " params = ? AND mode = ?", self.identity).fetchone()
        if (row and tuple(row)) != (self.id and (self.id, self.before + self.bars)):
            raise PaperError(f"{self.strategy.name} on account {self.identity[0]} was moved on by another process"
                             f" ({row[1] if row else 0} bars handled, {self.before + self.bars} by this one): a strategy"
                             " runs on an account once at a time")

    def save(self):
        """Write the run's row (inside the transaction of its last bar)."""
        try:
            state = self.json.dumps(self.ctx.state, sort_keys=True, allow_nan=False)
        except TypeError as error:  # Object of type Decimal is not JSON serializable
            state, why = None, error
        except ValueError as error:  # Python's own words are about its limit on an int's digits
            state, why = None, ("an int of more than 4,300 digits" if "digits" in str(error) else
                                "a float that is nan or infinite, or a list or dict inside itself")
        if state is None or self.json.loads(state) != self.ctx.state:  # a tuple, an int key: not as it was
            raise PaperError(f"ctx.state keeps JSON values only (str, int, float, bool, None, lists, dicts with str"
                             f" keys){f': {why}' if state is None else ''}")
        now, handled = utc_now(), self.json.dumps(self.handled, sort_keys=True)
        if self.id is None:
            self.id = self.ledger.db.execute(
                "INSERT INTO strategy_runs (account_id, strategy, params, options, mode, state, handled, bars,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*self.identity[:3],
                self.json.dumps(self.options, sort_keys=True), self.mode, state, handled, self.bars, now, now)).lastrowid
        else:
            self.ledger.db.execute("UPDATE strategy_runs SET state = ?, handled = ?, bars = ?, updated_at = ? WHERE"
                                   " id = ?", (state, handled, self.before + self.bars, now, self.id))


def run_options(fee_rate=FEE_RATE, slippage=ZERO, on_close=False):
    return {"fee_rate": to_fee_rate(fee_rate), "slippage": to_fee_rate(slippage, "slippage"),
            "on_close": bool(on_close)}


def run_strategy(ledger, strategy, account_id, bars, params=None, *, fee_rate=FEE_RATE, slippage=ZERO,
                 on_close=False, each=None, allow_future=False):
    """Run strategy live on an existing account over bars ((source, line, (symbol, price, time, open, high,
    low, close)), as read_prices yields them; any iterable, endless too): each bar's price, its fills, the
    strategy's orders and its state commit together, then each(trades of the account in that bar) is
    called. Killed and started again with the same strategy, params and options, it resumes after the
    last bar it handled (allow_future: bars more than 24 hours after the clock are taken, as tick's).
    Returns {"strategy_run", "account_id", "bars", "handled_before", "fills", "history": bars skipped as
    history}."""
    strategy = strategy if isinstance(strategy, Strategy) else load_strategy(strategy)
    run = Run(ledger, strategy, account_id, to_params(strategy, params), run_options(fee_rate, slippage, on_close),
              "run")
    run.start()
    for source, line, row in bars:
        with ledger.batch():
            run.claim()
            handled = run.step(source, line, row, allow_future)
            if handled:
                run.save()
        if handled and each:
            each(run.ctx._fills, run.ctx._cancelled)
    return {"strategy_run": run.id, "account_id": run.ctx.account_id, "bars": run.bars,
            "handled_before": run.before, "fills": run.fills, "history": run.skipped}


@contextlib.contextmanager
def fresh_database(path=None):
    """A path for a new database: in a temporary folder, removed at the end; or, given path (refused if it
    exists), beside it, put in place whole at the end (so a kill leaves none of it) and removed on failure."""
    import tempfile
    folder = tempfile.gettempdir() if path is None else os.path.dirname(os.path.abspath(path))
    if path is not None and os.path.lexists(path):
        raise PaperError(f"{path} exists already: a backtest writes a new database")
    for name in os.listdir(folder) if path is None else ():  # what killed backtests left
        litter = re.fullmatch(r"paper-backtest-([0-9]+)-.*", name)
        if litter and not alive(int(litter[1])):
            import shutil
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    new = os.path.join(tempfile.mkdtemp(prefix=f"paper-backtest-{os.getpid()}-"), "backtest.db") if path is None \
        else f"{path}.{os.getpid()}.{os.urandom(4).hex()}.new"  # the next init or backtest there removes it
    try:
        yield new
        if path is not None:
            try:
                os.link(new, path)
            except FileExistsError:
                raise PaperError(f"{path} exists already: a backtest writes a new database") from None
    finally:
        removed(new, folder=path is None)


def removed(database, folder=False):
    """Remove a database file with its WAL files (and its folder)."""
    for name in (database, f"{database}-wal", f"{database}-shm", f"{database}-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
    if folder:
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(database))


def backtest(strategy, data, params=None, *, symbol=None, balance=Decimal(10000), currency="USDT",
             fee_rate=FEE_RATE, slippage=ZERO, on_close=False, db=None, finish=None):
    """Run strategy (a file's path, or a loaded Strategy) with params over the bars of data (price files,
    as feed reads them; symbol for those without a symbol column) on a fresh account of balance in a fresh
    database: a temporary one, or db (a new file, refused if it exists: all of it or none is written).
    finish(ledger, account_id, stats) is called before the database closes. Returns {"account_id",
    "database" (None when temporary), "params", "stats" (Ledger.stats)}."""
    strategy = strategy if isinstance(strategy, Strategy) else load_strategy(strategy)
    params, options = to_params(strategy, params), run_options(fee_rate, slippage, on_close)
    paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    with fresh_database(db) as path, Ledger(path, create=True) as ledger:
        if db is None:  # removed at the end: nothing in it needs to survive a power cut
            ledger.db.execute("PRAGMA synchronous=OFF")
        account = ledger.create_account(balance, currency, run_name(strategy, params))
        with ledger.batch():  # one transaction: the timeline is simulated, so no price is in the future
            run = Run(ledger, strategy, account.id, params, options, "backtest")
            run.start()
            for source, line, row in read_prices(paths, symbol):
                run.step(source, line, row, allow_future=True)
            run.save()
        stats = ledger.stats(account.id, account.currency)
        if finish:
            finish(ledger, account.id, stats)
    return {"account_id": account.id, "database": db, "params": params, "stats": stats}


def sweep_task(strategy, data, params, options):
    """One combination of a sweep, in a worker: {"params", "stats"}; a refusal names the combination."""
    try:
        return {"params": params, "stats": backtest(strategy, data, params, **options)["stats"]}
    except PaperError as error:
        error.args = (f"{' '.join(f'{name}={value}' for name, value in params.items())}: {error}",)
        raise


def sweep_worker(parent):
    """A sweep's worker process starts: Ctrl-C is its parent's to handle, and it ends when its parent does
    (killed or interrupted; on Linux), so that no worker runs on alone."""
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    with contextlib.suppress(Exception):  # elsewhere, it ends once it finds its parent gone
        import ctypes
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    if os.getppid() != parent:  # the parent was gone before that
        os._exit(1)


def sweep(strategy, data, grid, constraint=None, maximize="sharpe", executor=None, jobs=None, **options):
    """Backtest every combination of grid {param: [values]} that passes constraint (an expression over the
    params, like "fast < slow"), each in its own temporary database, on executor (any concurrent.futures
    Executor; default a process pool of jobs workers, the CPU count; jobs=1: this process). Returns
    [{"params", "stats"}], best first by the statistic maximize, ties by params: the same for any executor."""
    if maximize not in MAXIMIZE:
        raise UsageError(f"maximize {maximize!r} must be one of {', '.join(MAXIMIZE)}")
    loaded = strategy if isinstance(strategy, Strategy) else load_strategy(strategy)
    full = {name: [default] for name, default in loaded.params.items()}  # a param not in grid: its default
    for name, values in grid.items():
        values = values if isinstance(values, (list, tuple, range)) else [values]
        full[name] = [to_params(loaded, {name: value})[name] for value in values]
    chosen = combinations(full, constraint)
    tasks = ([loaded.path] * len(chosen), [data] * len(chosen), chosen, [options] * len(chosen))
    if executor is None and jobs == 1:
        results = list(map(sweep_task, *tasks))
    elif executor is None:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(jobs or os.cpu_count(), initializer=sweep_worker, initargs=(os.getpid(),)) as pool:
            results = list(pool.map(sweep_task, *tasks))
    else:
        results = list(executor.map(sweep_task, *tasks))
    names = list(full)
    return sorted(results, key=lambda result: (result["stats"][maximize] is None,
                                               -(result["stats"][maximize] or 0),
                                               [result["params"][name] for name in names]))


def live_bars(ledger, symbols, interval, base_url=None, report=None):
    """The exchange's bars of symbols as each closes, for run: from after each symbol's newest recorded price
    (a run restarted goes on from there), or from now for a symbol with none; asked for only when the run
    wants its first bar. report(line) is told of each wait."""
    with ledger.snapshot():
        after = {symbol: newest[1] if (newest := ledger._latest_price(symbol)) else utc_now() for symbol in symbols}
    client = Exchange(base_url, report)
    client.symbol_rules(symbols)  # a symbol the exchange does not list is refused now, not after a bar's wait
    yield from fetched_bars(kline_steps(client, symbols, interval, follow=True, after=after))


def fetched_bars(steps):
    """Bars from the exchange client (lists of (symbol, time, open, high, low, close) a step, as
    kline_steps yields them) as run_strategy takes them."""
    for step in steps:
        for symbol, market_time, open_price, high, low, close in step:
            yield f"fetched {symbol} at {market_time}", None, (symbol, None, market_time, open_price, high, low, close)


def to_jobs(value):
    """How many worker processes: 1 to 1024."""
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= 1024:
        raise PaperError(f"jobs {value!r} must be a whole number from 1 to 1024")
    return int(value)


# --- Risk: the account's rules and the exchange's, decided in one place ---

RULES = ("max_position", "stop_loss", "take_profit", "trailing_stop", "risk_per_trade", "max_drawdown", "flatten",
         "cooldown", "max_open_positions")
RULES_COLUMNS = ", ".join(("account_id",) + RULES + ("units", "peak", "carried", "halted_at", "halt_drawdown",
                                                     "updated_at"))
SYMBOL_RULES = ("tick_size", "step_size", "min_qty", "min_notional")


@record
class Rules(Record):
    """An account's risk rules (None: not set) and its drawdown state (see schema.sql, risk_rules)."""

    account_id: str
    max_position: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop: Decimal | None = None
    risk_per_trade: Decimal | None = None
    max_drawdown: Decimal | None = None
    flatten: int = 0
    cooldown: int | None = None
    max_open_positions: int | None = None
    units: str | None = None
    peak: str | None = None
    carried: str | None = None
    halted_at: str | None = None
    halt_drawdown: str | None = None
    updated_at: str | None = None

    def __init__(self, account_id, max_position=None, stop_loss=None, take_profit=None, trailing_stop=None,
                 risk_per_trade=None, max_drawdown=None, flatten=0, cooldown=None, max_open_positions=None,
                 units=None, peak=None, carried=None, halted_at=None, halt_drawdown=None, updated_at=None):
        """The fields in order (see the class), as its rows hold them; written out, not made at each run."""
        self.account_id, self.max_position, self.stop_loss, self.take_profit = account_id, max_position, stop_loss, take_profit
        self.trailing_stop, self.risk_per_trade, self.max_drawdown, self.flatten = trailing_stop, risk_per_trade, max_drawdown, flatten
        self.cooldown, self.max_open_positions, self.units, self.peak = cooldown, max_open_positions, units, peak
        self.carried, self.halted_at, self.halt_drawdown, self.updated_at = carried, halted_at, halt_drawdown, updated_at


class Risk:
    """The risk rules of the ledger's accounts and the exchange rules of its symbols: every buy, by any
    path (trade, an order placed or filled, a strategy), is decided here (buying), every price moves the
    drawdown of the accounts that watch it (watch), and every refusal and automatic action is a row of
    risk_events. What it reads is kept for as long as the ledger keeps its books (forget)."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.kept, self.symbols, self.watched = {}, {}, None  # {account: Rules or None}, {symbol: rules}

    @property
    def db(self):
        return self.ledger.db

    def forget(self):
        self.kept.clear()
        self.symbols.clear()
        self.watched = None

    def rules(self, account_id):
        """The account's Rules, or None when it has none."""
        if account_id not in self.kept:
            row = self.db.execute(f"SELECT {RULES_COLUMNS} FROM risk_rules WHERE account_id = ?", (account_id,)
                                  ).fetchone()
            self.kept[account_id] = Rules(*row) if row else None
        return self.kept[account_id]

    def save(self, rules):
        rules.updated_at = utc_now()
        self.db.execute(f"INSERT OR REPLACE INTO risk_rules ({RULES_COLUMNS}) VALUES"
                        f" ({', '.join('?' * (RULES_COLUMNS.count(',') + 1))})", rules.row(RULES_COLUMNS))
        self.kept[rules.account_id], self.watched = rules, None

    def log(self, account_id, rule, action, symbol, detail, order_id=None):
        """A risk event at the newest price's market time."""
        market_time, price_id = self.ledger._market_time()
        self.db.execute("INSERT INTO risk_events (account_id, price_id, time, rule, action, symbol, detail, order_id,"
                        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (account_id, price_id, market_time, rule, action, symbol, detail, order_id, utc_now()))

    def buying(self, account_id, symbol, qty, price):
        """Refuse (RiskRefused) a buy of qty symbol at price that a rule of the account forbids: a halt,
        a cooldown after a stop, the most positions, the largest share of equity in one symbol."""
        rules = self.rules(account_id)
        if rules is None:
            return
        base, quote = symbol.split("/")
        if rules.halted_at:
            self.refuse(rules, "max-drawdown", symbol, f"risk: halted at drawdown {float(rules.halt_drawdown):.2%} on"
                                                       f" {rules.halted_at}; risk --resume to trade again")
        if rules.cooldown:
            self.cooling(rules, symbol)
        balances = self.ledger._balances(account_id)
        held = [currency for currency, balance in balances.items() if balance.total and currency != quote]
        if rules.max_open_positions and base not in held and len(held) >= rules.max_open_positions:
            self.refuse(rules, "max-open-positions", symbol, f"risk: max open positions {rules.max_open_positions}:"
                                                             f" {', '.join(held)} held; {base} would be one more")
        if rules.max_position:
            self.positioned(rules, balances, base, quote, qty, price)

    def cooling(self, rules, symbol):
        stopped = self.db.execute("SELECT price_id, time FROM risk_events WHERE account_id = ? AND symbol = ? AND"
                                  " action = 'cooldown' ORDER BY id DESC LIMIT 1", (rules.account_id, symbol)).fetchone()
        if stopped:
            since = self.db.execute("SELECT count(*) FROM (SELECT 1 FROM prices WHERE symbol = ? AND id > ? LIMIT ?)",
                                    (symbol, stopped[0] or 0, rules.cooldown)).fetchone()[0]
            if since < rules.cooldown:
                self.refuse(rules, "cooldown", symbol, f"risk: cooldown {rules.cooldown} prices: a stop filled on"
                                                       f" {symbol} at {stopped[1]}; {rules.cooldown - since} more"
                                                       f" {'price' if rules.cooldown - since == 1 else 'prices'} of it"
                                                       " before a buy")

    def positioned(self, rules, balances, base, quote, qty, price):
        held = balances.get(base, Balance(base)).total
        _, equity, unpriced = self.ledger._holdings(balances.values(), quote, {base: price})
        if equity is None:
            self.refuse(rules, "max-position", f"{base}/{quote}", f"risk: max position {share_text(rules.max_position)}:"
                                                                  f" the equity has no value in {quote}"
                                                                  f" ({', '.join(unpriced)} has no price)")
        after = EXACT.multiply(EXACT.add(held, qty), price)
        if equity <= 0 or after > equity * rules.max_position:
            share = f"{float(after) / float(equity):.2%}" if equity > 0 else "all"
            self.refuse(rules, "max-position", f"{base}/{quote}", f"risk: max position {share_text(rules.max_position)}:"
                                                                  f" {base} would be {share} of equity {fmt(equity)}")

    def refuse(self, rules, rule, symbol, message):
        raise RiskRefused(message, rules.account_id, rule, symbol)

    def stopped(self, order, trade):
        """A stop filled order: a cooldown of its symbol starts, if the account has one."""
        rules = self.rules(order.account_id)
        if rules and rules.cooldown:
            self.log(order.account_id, "cooldown", "cooldown", order.symbol, f"a stop filled {order.side}"
                     f" {fmt(trade.qty)} {order.symbol} @ {fmt(trade.price)}: no buy of it for {rules.cooldown} prices",
                     order.id)

    # --- The drawdown: a halt when the account falls too far from its peak ---

    def watch(self, result):
        """After a price (tick's result) and its fills: each account with a max-drawdown rule is valued,
        and halted once its growth index is that far below its peak; what that did goes in result."""
        if self.watched is None:
            self.watched = [Rules(*row) for row in self.db.execute(
                f"SELECT {', '.join('r.' + column for column in RULES_COLUMNS.split(', '))} FROM risk_rules r JOIN"
                " accounts a ON a.id = r.account_id WHERE r.max_drawdown IS NOT NULL AND r.halted_at IS NULL AND"
                " a.is_active = 1")]
            self.kept.update((rules.account_id, rules) for rules in self.watched)
        for rules in self.watched:
            if not rules.halted_at:
                self.measure(rules, result)

    def measure(self, rules, result):
        account = self.ledger._account(rules.account_id)
        _, equity, unpriced = self.ledger._holdings(self.ledger._balances(account.id).values(), account.currency)
        if equity is None:  # not silently: said once, until it changes
            said = f"max drawdown {share_text(rules.max_drawdown)} cannot be watched: {', '.join(unpriced)} has no" \
                   f" price in {account.currency}"
            last = self.db.execute("SELECT detail FROM risk_events WHERE account_id = ? AND rule = 'max-drawdown'"
                                   " ORDER BY id DESC LIMIT 1", (account.id,)).fetchone()
            if not last or last[0] != said:
                self.log(account.id, "max-drawdown", "unpriced", None, said)
                result["risk"].append(f"account {account.id}: {said}")
            return
        if not rules.units or float(rules.units) <= 0:  # the first count: the index starts at 1 (or where an
            if equity <= 0:  # emptied account left it)
                return
            index = float(rules.carried) if rules.carried else 1.0
            rules.units, rules.peak, rules.carried = repr(float(equity) / index), rules.peak or repr(1.0), None
            self.save(rules)
            return
        index, peak = float(equity) / float(rules.units), float(rules.peak)
        if index > peak:
            rules.peak = repr(index)
            self.save(rules)
        elif index <= peak * (1 - float(rules.max_drawdown)):
            self.halt(rules, index / peak - 1, result)

    def equity(self, account):
        """The account's equity in its own currency at the latest prices, or None while a holding has none."""
        return self.ledger._holdings(self.ledger._balances(account.id).values(), account.currency)[1]

    def flowing(self, account_id, amounts):
        """Before deposits, withdrawals or a reset of amounts {currency: amount}: they buy or sell units at the
        index they find (as stats counts it), so that money brought in or taken out is no gain and no
        drawdown. Emptied, the account keeps its index for the money that comes in next."""
        rules = self.rules(account_id)
        if rules is None or not rules.max_drawdown or not rules.units or float(rules.units) <= 0:
            return
        account = self.ledger._account(account_id)
        equity = self.equity(account)
        prices = [self.ledger._price_in(currency, account.currency, {})[0] for currency in amounts]
        if not equity or equity <= 0 or None in prices:
            return
        after = equity + sum([amount * price for amount, price in zip(amounts.values(), prices)], ZERO)
        if after > 0:
            rules.units = repr(float(rules.units) * float(after) / float(equity))
        else:
            rules.units, rules.carried = None, repr(float(equity) / float(rules.units))
        self.save(rules)

    def halt(self, rules, drawdown, result):
        """Halt the account: its open buys cancelled (protective sells stay), new buys refused; with
        flatten, every holding sold at the next price."""
        rules.halted_at, rules.halt_drawdown = self.ledger._market_time()[0], repr(drawdown)
        self.save(rules)
        message = f"risk: halted at drawdown {drawdown:.2%} on {rules.halted_at}; risk --resume to trade again"
        self.log(rules.account_id, "max-drawdown", "halted", None, message)
        result["risk"].append(f"account {rules.account_id} {message[6:]}")
        for order in self.ledger.orders(rules.account_id, open_only=True):
            if order.side == "buy" or rules.flatten:
                result["cancelled"].append(self.ledger._close(order, "CANCELLED", message))
                self.log(rules.account_id, "max-drawdown", "cancelled", order.symbol, message, order.id)
        if rules.flatten:
            self.ledger._flatten(rules, message)

    def resume(self, account_id):
        """Lift a halt: buys are taken again, and the peak counts from the index now."""
        rules = self.rules(account_id)
        if rules is None or not rules.halted_at:
            raise PaperError(f"account {account_id} is not halted")
        equity = self.equity(self.ledger._account(account_id))
        rules.halted_at = rules.halt_drawdown = None
        if equity is not None and rules.units:
            rules.peak = repr(float(equity) / float(rules.units))
        self.save(rules)
        self.log(account_id, "max-drawdown", "resumed", None, "resumed: the peak counts from here")
        return rules

    # --- The exchange's rules of a symbol ---

    def symbol_rules(self, symbol):
        """{tick_size, step_size, min_qty, min_notional} of symbol (None where there is no rule), or None."""
        if symbol not in self.symbols:
            row = self.db.execute(f"SELECT {', '.join(SYMBOL_RULES)} FROM symbols WHERE symbol = ?", (symbol,)
                                  ).fetchone()
            self.symbols[symbol] = None if row is None else dict(zip(SYMBOL_RULES, row))
        return self.symbols[symbol]

    def check_order(self, symbol, qty, prices, worth=None):
        """Refuse a qty or a price (limit, stop, a trade's, a protection's) that symbol's exchange rules do not
        take, naming the filter and the nearest valid values; qty x the first price (else worth: a market
        order's latest close, a trailing stop's stop) must reach the min notional."""
        rules = self.symbol_rules(symbol)
        if rules is None:
            return
        for price in prices:
            if price is not None and rules["tick_size"]:
                off_step("price", price, rules["tick_size"], symbol, "PRICE_FILTER tick size")
        if rules["step_size"]:
            off_step("qty", qty, rules["step_size"], symbol, "LOT_SIZE step size")
        if rules["min_qty"] and qty < rules["min_qty"]:
            raise PaperError(f"qty {fmt(qty)} is below {symbol}'s LOT_SIZE min qty {fmt(rules['min_qty'])}")
        price = next((price for price in prices if price is not None), worth)
        if rules["min_notional"] and price is not None and qty * price < rules["min_notional"]:
            raise PaperError(f"{fmt(qty)} x {fmt(price)} = {fmt(qty * price)} is below {symbol}'s NOTIONAL min notional"
                             f" {fmt(rules['min_notional'])}")

    def on_tick(self, symbol, price, side):
        """price rounded to symbol's tick size (8 decimal places where paper knows none), away from the
        market: down for a sell's stop, up for a buy's."""
        rules = self.symbol_rules(symbol)
        tick = rules and rules["tick_size"] or Decimal("1e-8")
        below = price - price % tick
        return below if side == "sell" or below == price else below + tick

    def step(self, symbol):
        """The step a qty of symbol is sized in (by risk, by a share of equity or of a position, by an
        amount to spend): its step size, or 8 decimal places where paper knows none."""
        rules = self.symbol_rules(symbol)
        return rules and rules["step_size"] or QTY_STEP


def off_step(what, value, step, symbol, name):
    """Refuse value unless it is a whole multiple of step, naming the two nearest that are."""
    below = value - value % step  # exact, as a division might not be
    if below != value:
        raise PaperError(f"{what} {fmt(value)} is not a multiple of {symbol}'s {name} {fmt(step)}: the nearest are"
                         f" {fmt(below)} and {fmt(below + step)}")


# --- Results: the equity curve and its statistics ---

class Performance:
    """An equity curve's figures, taken point by point in one pass, so that a long curve costs no memory:
    the growth index, the drawdown and its longest duration, each UTC day's last index, the first and
    last points. Floats for the ratios; the amounts stay exact.

    growth: what 1 brought in grew to, moved by gains and losses only: index_i = index_{i-1} x
    (equity_i - flow_i) / equity_{i-1}, so a deposit or a withdrawal does not move it; at the first
    point, equity / flow (what the money brought in before it became), or 1. After an equity of 0 it
    carries over unchanged (an empty account has no return to measure). drawdown: the fall from the
    highest index so far (1 at the start), a fraction <= 0; 0.0 at a new high, or back at the old one
    within float rounding (a deposit's division can leave 1e-16)."""

    def __init__(self):
        self.points = self.exposed = 0
        self.start = self.end = self.first = self.last = None  # market times, and their epoch seconds
        self.equity_start = self.equity_final = self.equity_peak = None
        self.index, self.peak, self.base_index, self.base_equity = None, 1.0, 1.0, None
        self.max_drawdown, self.longest, self.peak_time, self.underwater = 0.0, 0.0, None, False
        self.days = []  # (UTC day, the index at its last point)

    def add(self, when, equity, flow, exposed=False):
        """Take the next point (its market time, equity, flow, whether it held anything but the quote);
        return its drawdown."""
        moment = seconds(when) if isinstance(when, str) else when
        if self.index is None:
            index = self._first_point(when, moment, equity, flow)
        elif flow or not self.equity_final:
            index = self.index * float(equity - flow) / float(self.equity_final) if self.equity_final else self.index
            self.base_index, self.base_equity = index, float(equity)
        else:  # measured from the last flow, not point by point: a recovered curve is back at exactly its peak
            index = self.base_index * (float(equity) / self.base_equity) if self.base_equity else self.base_index
        self.points, self.exposed, self.end, self.last = self.points + 1, self.exposed + bool(exposed), when, moment
        self.index, self.equity_final = index, equity
        if self.equity_peak is None or equity > self.equity_peak:  # (a point per bar: each comparison counts)
            self.equity_peak = equity
        fall = self._fall(index, moment)
        day, days = int(moment // DAY), self.days
        if days and days[-1][0] == day:
            days[-1] = (day, index)
        else:
            days.append((day, index))
        return fall

    def _first_point(self, when, moment, equity, flow):
        """Take the first point (see add): where the curve starts, and its growth index, which is also
        the base the next points are measured from."""
        self.start, self.first, self.peak_time = when, moment, moment
        self.equity_start = flow if flow > 0 else equity
        index = float(equity) / float(flow) if flow > 0 else 1.0
        self.base_index, self.base_equity = index, float(equity)
        return index

    def _fall(self, index, moment):
        """The drawdown of a point at growth index index and epoch seconds moment, after the peak, the
        deepest drawdown and the longest time under water are moved by it."""
        if index > self.peak:
            self.peak = index
        fall = 0.0 if index >= self.peak * (1 - 1e-12) else index / self.peak - 1
        if fall < self.max_drawdown:
            self.max_drawdown = fall
        if (fall < 0 or self.underwater) and moment - self.peak_time > self.longest:  # the longest time from a
            self.longest = moment - self.peak_time  # peak to the next as high (or the end)
        if fall == 0:
            self.peak_time = moment
        self.underwater = fall < 0
        return fall

    def daily_returns(self):
        """One return per UTC day after the first: the growth index's last value of the day / the day
        before's - 1, so deposits and withdrawals are out of it wherever in the day they came. A day with
        no point keeps the day before's (a return of 0.0); one after an index of 0 has none."""
        returns = []
        for (day, before), (next_day, close) in zip(self.days, self.days[1:]):
            if before:
                returns += [0.0] * (next_day - day - 1) + [close / before - 1]
        return returns

    def ratios(self):
        """The return, the drawdown and the annual ratios, as empyrical computes them with annualization
        365 (crypto trades every day); None where one cannot be computed."""
        returns, result = self.daily_returns(), dict.fromkeys(("volatility", "sharpe", "sortino", "cagr", "calmar"))
        if len(returns) >= 2:  # statistics.stdev would import fractions and more on every run: 4 ms
            mean = math.fsum(returns) / len(returns)
            deviation = math.sqrt(math.fsum([(r - mean) ** 2 for r in returns]) / (len(returns) - 1))
            result["volatility"] = deviation * math.sqrt(365)
            result["sharpe"] = mean / deviation * math.sqrt(365) if deviation else None
            downside = math.sqrt(math.fsum([min(r, 0.0) ** 2 for r in returns]) / len(returns)) * math.sqrt(365)
            result["sortino"] = mean * 365 / downside if downside else None
        with contextlib.suppress(OverflowError, ValueError):  # growth beyond a float, or below zero
            grown = math.pow(math.prod([1 + r for r in returns]), 365 / len(returns)) - 1 if returns else None
            result["cagr"] = grown if grown is not None and math.isfinite(grown) else None
        if self.max_drawdown < 0 and result["cagr"] is not None:
            result["calmar"] = result["cagr"] / -self.max_drawdown
        total = None if self.index is None else 0.0 if abs(self.index - 1) < 1e-12 else self.index - 1
        empty = self.index is None  # with no point there is no drawdown to speak of, nor a duration
        return result | {"return": total, "max_drawdown": None if empty else self.max_drawdown,
                         "max_drawdown_duration": None if empty else self.longest}


def growth(curve):
    """The growth index at each point of curve [(seconds, equity, flow)] (see Performance)."""
    figures, indexes = Performance(), []
    for moment, equity, flow in curve:
        figures.add(moment, equity, flow)
        indexes.append(figures.index)
    return indexes


def drawdowns(indexes):
    """Each point's fall from the highest index so far (see Performance)."""
    falls, peak = [], 1.0
    for index in indexes:
        peak = max(peak, index)
        falls.append(0.0 if index >= peak * (1 - 1e-12) else index / peak - 1)
    return falls


def performance(curve, indexes=None, falls=None):
    """Performance.ratios of curve [(seconds, equity, flow)]."""
    result = Performance()
    for moment, equity, flow in curve:
        result.add(moment, equity, flow)
    return result.ratios()


def summary(quote, figures, trades, closed, hold):
    """stats: the curve's Performance in quote, the account's trades [(id, symbol, fee)], the realised P&L
    of each closed trade [(trade id, P&L)], and the closes of the one symbol traded over the curve (for
    buy and hold). Trade P&L is in the quote currency of its symbol: when the closed trades are quoted
    in more than one, only those in quote count."""
    fees, symbols = {}, {trade_id: symbol for trade_id, symbol, _ in trades}
    for _, symbol, fee in trades:
        fees[symbol.partition("/")[2]] = fees.get(symbol.partition("/")[2], ZERO) + fee
    currencies = {symbols[trade_id].partition("/")[2] for trade_id, _ in closed}
    trade_currency = currencies.pop() if len(currencies) == 1 else quote
    with localcontext(ROUNDED):  # each P&L as status shows it (to 18 places); their sums are then exact
        closed = [pnl.quantize(Decimal("1e-18")) for trade_id, pnl in closed
                  if symbols[trade_id].endswith(f"/{trade_currency}")]
        gains, losses = sum([pnl for pnl in closed if pnl > 0], ZERO), sum([pnl for pnl in closed if pnl < 0], ZERO)
        average = (sum(closed, ZERO) / len(closed)).quantize(Decimal("1e-18")) if closed else None
        closed = [Decimal(fmt(pnl)) for pnl in closed]
    ratios, empty = figures.ratios(), not figures.points
    return {"quote": quote, "start": figures.start, "end": figures.end,
            "duration": None if empty else figures.last - figures.first,
            "equity_start": figures.equity_start, "equity_final": figures.equity_final,
            "equity_peak": figures.equity_peak, "return": ratios["return"],
            "buy_and_hold_return": float(hold[-1][0] / hold[0][0]) - 1 if hold else None,
            "max_drawdown": ratios["max_drawdown"], "max_drawdown_duration": ratios["max_drawdown_duration"],
            **{key: ratios[key] for key in ("cagr", "volatility", "sharpe", "sortino", "calmar")},
            "trades": len(trades), "trade_currency": trade_currency, "closed_trades": len(closed),
            "win_rate": sum(pnl > 0 for pnl in closed) / len(closed) if closed else None,
            "profit_factor": float(gains / -losses) if losses else None,
            "best_trade": max(closed, default=None), "worst_trade": min(closed, default=None), "avg_trade": average,
            "fees": dict(sorted(fees.items())),
            "exposure": None if empty else figures.exposed / figures.points}


def ratio_text(value, spec):
    return "n/a" if value is None else format(value, spec)


def amount_ticks(low, high):
    """The amount axis: (step, bottom, top), ticks at bottom x step to top x step. The smallest 1, 2 or 5
    x 10^k step that covers low to high in at most 6 ticks; if that leaves only 3, the step below it.
    Exact Decimals, so the labels are exact too; a flat line sits in the middle."""
    if low == high:
        pad = max(abs(low) / 100, Decimal(1))
        low, high = low - pad, high + pad
    exponent, smaller = (high - low).adjusted(), None
    for step in (Decimal(digit).scaleb(exponent + shift) for shift in (-2, -1, 0, 1) for digit in (1, 2, 5)):
        bottom, top = -(-low / step).to_integral_value(ROUND_CEILING), (high / step).to_integral_value(ROUND_CEILING)
        if top - bottom <= 5:
            break
        smaller = step, bottom, top  # the first step gives 100 ticks or more, so this is set
    return smaller if top - bottom < 3 else (step, bottom, top)


# --- Results: round trips ---

class RoundTrips:
    """Each symbol's round trips, followed through Ledger._realized's walk by average cost (the rule of
    book_trade, never a second one): a trip opens when a buy finds its symbol's book flat and closes when
    the book is flat again, whether a sell emptied it or its coins left another way (withdrawn, reset, sold
    through another quote: cap_positions). A sell that finds the book flat (coins that came by deposit,
    which have no entry price) is in no trip."""

    def __init__(self):
        self.held = {}  # symbol: what its book held when last seen, to tell what a sell or a cap took out
        self.going = {}  # symbol: its trip in progress
        self.closed = []  # the closed trips, in the order they closed

    def traded(self, price_id, symbol, side, qty, price, realized, book):
        """A trade on symbol's book, after book_trade, which returned realized."""
        before, self.held[symbol] = self.held.get(symbol, ZERO), book.held
        trip = self.going.get(symbol)
        if side == "buy":
            if trip is None:
                trip = self.going[symbol] = {"symbol": symbol, "entry": price_id, "exit": None, "closed": False,
                                             "book": book, "most": ZERO, "bought": ZERO, "paid": ZERO, "sold": ZERO,
                                             "got": ZERO, "pnl": ZERO, "fills": 0}
            trip["bought"], trip["paid"] = trip["bought"] + qty, trip["paid"] + qty * price
            trip["most"] = max(trip["most"], book.held)
        elif trip is None:
            return
        else:
            part = before - book.held  # what the book held of what was sold: the rest realises only its fee
            trip["sold"], trip["got"] = trip["sold"] + part, trip["got"] + part * price
            trip["pnl"] += realized.quantize(Decimal("1e-18"), context=ROUNDED)  # as stats counts each sale
        trip["fills"] += 1
        if not book.held:
            self.close(symbol, price_id)

    def left(self, price_id, currency, books):
        """After cap_positions for currency: a book it emptied ends its trip there."""
        for symbol, book in books.items():
            if book.held != self.held.get(symbol, ZERO) and symbol.startswith(f"{currency}/"):
                self.held[symbol] = book.held
                if not book.held and symbol in self.going:
                    self.close(symbol, price_id)

    def close(self, symbol, price_id):
        trip = self.going.pop(symbol)
        trip["exit"], trip["closed"] = price_id, True
        self.closed.append(trip)


def round_trip(trip, times, latest=None):
    """A trip RoundTrips followed as round_trips gives it. An open one counts what it still holds as sold at
    its symbol's latest close (latest: (id, time, open, high, low, close)) by book_trade with no fee."""
    pnl, sold, got, exit_time = trip["pnl"], trip["sold"], trip["got"], times.get(trip["exit"])
    with localcontext(ROUNDED):
        if not trip["closed"] and latest is None:  # never priced: nothing to value it at
            pnl = exit_time = None
        elif not trip["closed"]:
            held, close = trip["book"].held, Decimal(latest.close)
            pnl += book_trade(Position(held, trip["book"].cost), "sell", held, close, ZERO).quantize(Decimal("1e-18"))
            sold, got, exit_time = sold + held, got + held * close, latest.time
        entry_time = times.get(trip["entry"])
        return {"symbol": trip["symbol"], "status": "CLOSED" if trip["closed"] else "OPEN", "entry_time": entry_time,
                "exit_time": exit_time, "qty": trip["most"], "entry_price": average_price(trip["paid"], trip["bought"]),
                "exit_price": average_price(got, sold) if pnl is not None else None,
                "pnl": None if pnl is None else Decimal(fmt(pnl)),
                "return": float(pnl) / float(trip["paid"]) if pnl is not None and trip["paid"] else None,
                "duration": seconds(exit_time) - seconds(entry_time) if entry_time and exit_time else None,
                "fills": trip["fills"]}


def average_price(value, qty):
    """value / qty, rounded half-even to 18 decimal places like P&L; None without a qty."""
    return Decimal(fmt(ROUNDED.divide(value, qty).quantize(Decimal("1e-18"), context=ROUNDED))) if qty else None


# --- Results: the chart and the report ---

COLUMNS = 560  # a line keeps at most two points per column, and the narrowest plot is this many units wide


class Columns:
    """A line kept as at most two points per column of the plot, its lowest and its highest (in time
    order), from points given one at a time: a million points draw as a thousand, and look the same."""

    def __init__(self, first, last):
        self.first, self.scale = first, (COLUMNS - 1e-6) / (last - first) if last > first else 0.0
        self.columns = {}  # column: [moment, height] of its lowest point, then of its highest

    def add(self, moment, height, column=None):
        """A point at moment (seconds), drawn at height (a float); column, if its column is known already."""
        if column is None:
            column = int((moment - self.first) * self.scale)
        kept = self.columns.get(column)
        if kept is None:
            self.columns[column] = [moment, height, moment, height]
        elif height < kept[1]:
            kept[0], kept[1] = moment, height
        elif height > kept[3]:
            kept[2], kept[3] = moment, height

    def points(self):
        """[(moment, height)], at most two a column, in time order."""
        drawn = []
        for column in sorted(self.columns):
            low_time, low, high_time, high = self.columns[column]
            if (low_time, low) == (high_time, high):
                drawn.append((low_time, low))
            else:
                drawn += [(low_time, low), (high_time, high)] if low_time <= high_time else \
                    [(high_time, high), (low_time, low)]
        return drawn

    def extremes(self):
        """[lowest height, highest height], or [] without a point."""
        kept = self.columns.values()
        return [min(column[1] for column in kept), max(column[3] for column in kept)] if kept else []


class Curve:
    """An equity curve read once, point by point (Ledger._curve's points, in market time): its Performance
    (the growth, the drawdown, what stats reports), and what its chart draws and its report tabulates, in
    memory that does not grow with the curve."""

    def __init__(self, last, percent=False):
        self.last, self.percent = last, percent  # last: the latest market time (seconds) the chart shows
        self.performance = Performance()
        self.first_id = self.last_id = None  # the price ids of the first and the last point
        self.line = self.falls = None  # Columns of the equity (or the growth index) and of the drawdown
        self.flows = {}  # (column, +1 or -1): (moment, height) of a point where money came in or went out
        self.months, self.month = [], None  # [month 'YYYY-MM', the growth index at its last point]; the latest
        self.worst = []  # the five deepest drawdowns: [depth, start, bottom, recovery], market times
        self.falling, self.peak_time = None, None  # the drawdown in progress; the time of the last peak

    def add(self, price_id, market_time, equity, flow, exposed):
        """The next point of the curve (see Ledger._curve). (Every line here runs once a point.)"""
        figures, first = self.performance, self.line is None
        fall = figures.add(market_time, equity, flow, exposed)
        if first:
            self.first_id, self.peak_time = price_id, market_time
            self.line, self.falls = Columns(figures.first, self.last), Columns(figures.first, self.last)
        moment, index, self.last_id = figures.last, figures.index, price_id
        height, column = index if self.percent else float(equity), int((moment - figures.first) * self.line.scale)
        if flow and not first:  # money in or out: one mark of each kind a column is enough to explain a jump
            self.flows[column, 1 if flow > 0 else -1] = moment, height
        self.line.add(moment, height, column)
        self.falls.add(moment, fall, column)
        if market_time[:7] == self.month:
            self.months[-1][1] = index
        else:
            self.month = market_time[:7]
            self.months.append([self.month, index])
        if fall < 0 and (self.falling is None or fall < self.falling[0]) or fall == 0 and self.falling is not None:
            self.follow_drawdown(market_time, fall)  # a new drawdown, a deeper one, or the end of one
        elif fall == 0:
            self.peak_time = market_time

    def follow_drawdown(self, market_time, fall):
        """A drawdown starts at the last peak before a fall, bottoms at its deepest point and ends when the
        index is back at the peak (as Performance measures its duration)."""
        if fall < 0:
            if self.falling is None:
                self.falling = [fall, self.peak_time, market_time, None]
            elif fall < self.falling[0]:
                self.falling[0], self.falling[2] = fall, market_time
            return
        if self.falling is not None:
            self.falling[3] = market_time
            self.keep_drawdown()
        self.peak_time = market_time

    def keep_drawdown(self):
        self.worst.append(self.falling)
        self.worst.sort(key=lambda drawdown: (drawdown[0], drawdown[1]))
        del self.worst[5:]
        self.falling = None

    def finish(self):
        """After the last point: a drawdown still going on counts, unrecovered."""
        if self.falling is not None:
            self.keep_drawdown()
        return self


class Figure:
    """What a chart draws, and the report shows beside it (Ledger._figure makes one)."""

    def __init__(self, name, quote, curve, trips):
        self.name, self.quote, self.curve, self.trips = name, quote, curve, trips  # trips: round_trips' dicts
        self.panels = []  # (symbol, Columns of its closes, its first close in view, its round trips)
        self.hidden = []  # traded symbols beyond the three that get a panel
        self.empty = None  # without a point: why, and what to do


class Axis:
    """A panel's vertical scale: heights from low to high drawn from its bottom to its top (their log10 if
    log), with its ticks [(height, label)]."""

    def __init__(self, label, size, ticks, low, high, log=False):
        self.label, self.size, self.ticks, self.log = label, size, ticks, log
        self.low, self.high = (math.log10(low), math.log10(high)) if log else (low, high)
        self.top = self.bottom = 0  # placed by svg_chart

    def y(self, height):
        if self.log:  # nothing at or below zero has a place on a log scale: it sits at the bottom
            height = math.log10(height) if height > 0 else self.low
        return self.bottom - (height - self.low) / (self.high - self.low) * (self.bottom - self.top)


CHART_WIDTH, TEXT, SMALL, TITLE = 720, 13, 12, 15  # viewBox units: shown 600 to 1,600 px wide, text is 11 to 29 px
RIGHT = CHART_WIDTH - 24  # the plots' right edge (a time label centred on it stays in view)
COLOURS = {"equity": "#0969da", "hold": "#8c959f", "drawdown": "#cf222e", "close": "#57606a", "gain": "#1a7f37",
           "loss": "#cf222e", "even": "#8c959f", "deposit": "#8250df", "withdrawal": "#bc4c00"}


def svg_chart(figure, log=False):
    """An SVG of a Figure that scales to its container (viewBox, width 100%): the same figure gives the same
    bytes (every number goes through a format spec); no script inside."""
    curve, title = figure.curve, chart_title(figure)
    if not curve.performance.points:
        return empty_chart(title, figure.empty)
    first = curve.performance.first
    axes = [equity_axis(figure, log), drawdown_axis(curve)] + [price_axis(panel) for panel in figure.panels]
    left = min(max(max(text_width(label, TEXT) for axis in axes for _, label in axis.ticks) + 12, 44), 160)
    legend, top = chart_legend(figure, log)
    for axis in axes:
        axis.top, axis.bottom, top = top + 20, top + 20 + axis.size, top + 20 + axis.size
    height = top + (58 if figure.hidden else 42)
    span = curve.last - first
    scale = (RIGHT - left) / span if span > 0 else 0.0
    x_start = left if span > 0 else (left + RIGHT) / 2

    def x(moment):
        return x_start + (moment - first) * scale

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {CHART_WIDTH} {height}"'
           f' font-family="sans-serif" font-size="{TEXT}">', title[0], trip_markers(),
           f'<rect width="{CHART_WIDTH}" height="{height}" fill="#fff"/>', title[1], *legend]
    ticks, context = time_ticks(first, curve.last)
    grid = [f"M{left},{axis.y(value):.1f}H{RIGHT}" for axis in axes for value, _ in axis.ticks]
    grid += [f"M{x(moment):.1f},{axis.top}V{axis.bottom}" for moment, _, _ in ticks for axis in axes]
    svg.append(f'<path class="grid" d="{"".join(grid)}" stroke="#eaeef2" fill="none"/>')
    svg += equity_panel(figure, axes[0], x, left) + drawdown_panel(curve, axes[1], x, left)
    for panel, axis in zip(figure.panels, axes[2:]):
        svg += price_panel(panel, axis, x, left, curve)
    svg += time_axis(ticks, context, x, left, top, figure.hidden)
    return "\n".join(svg + ["</svg>\n"])


def chart_title(figure):
    """The title's elements: the account's name in bold, then its figures ': return +7.90%, max drawdown
    -42.81% (USDT)' (n/a without a point), smaller (down to SMALL) where the whole would not fit and the name
    cut where it still does not; the whole of it as the SVG's <title>."""
    ratios = figure.curve.performance.ratios()
    figures = (f": return {ratio_text(ratios['return'], '+.2%')}, max drawdown"
               f" {ratio_text(ratios['max_drawdown'], '.2%')} ({figure.quote})")
    room = CHART_WIDTH - 24
    whole = text_width(figure.name, TITLE, bold=True) + text_width(figures, TITLE)
    size = TITLE if whole <= room else max(SMALL, math.floor(TITLE * room / whole * 10) / 10)
    name = cut_to_width(figure.name, room - text_width(figures, size), size, bold=True)
    return [f"<title>{svg_text(figure.name + figures)}</title>", f'<text class="title" x="12" y="25"'
            f' font-size="{size:g}"><tspan font-weight="bold">{svg_text(name)}</tspan>{svg_text(figures)}</text>']


def empty_chart(title, why):
    """The chart of a curve without a point: its title, and why there is none and what to do."""
    lines = wrap_to_width(f"No equity points yet: {why}", CHART_WIDTH - 80, TEXT)
    height = 140 + 18 * len(lines)
    return "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {CHART_WIDTH} {height}"'
                      f' font-family="sans-serif" font-size="{TEXT}">', title[0],
                      f'<rect width="{CHART_WIDTH}" height="{height}" fill="#fff"/>', title[1],
                      f'<rect x="12" y="44" width="{CHART_WIDTH - 24}" height="{height - 56}" fill="#f6f8fa"'
                      ' stroke="#d0d7de"/>', '<g class="empty" text-anchor="middle" fill="#57606a">',
                      *[f'<text x="{CHART_WIDTH // 2}" y="{height // 2 + 4 + 18 * (i - len(lines) / 2):.1f}">'
                        f"{svg_text(line)}</text>" for i, line in enumerate(lines)], "</g>", "</svg>\n"])


def svg_text(text):
    """text fit for XML: its special characters escaped, control characters (refused even escaped) as spaces."""
    return "".join(char if char.isprintable() or ord(char) in JOINERS else " " for char in text).replace(
        "&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text_width(text, size, bold=False):
    """About how wide text is drawn in a sans-serif font at size (in the same units), never much narrower:
    each character by its class in DejaVu Sans, the widest common sans-serif (Arial and Helvetica are
    narrower), a wide (CJK) character 1 em, an emoji 1.25, a combining mark or a joiner nothing."""
    width = 0.0
    for char in text:
        if char.isascii():
            width += 0.34 if char in "'ijlIJ,.:;| /\\" else 0.44 if char in "ft()[]!r-\"" else 1.0 if char in \
                "mwMW%@#+<=>^~" else 0.8 if char.isupper() or char == "&" else 0.64
        else:
            width += char_width(char)
    return width * size * (1.1 if bold else 1)


def char_width(char):
    """The width in em of a character beyond ASCII (see text_width)."""
    import unicodedata
    if unicodedata.combining(char) or char in "\u200d\ufe0f" or "\U000e0000" <= char <= "\U000e007f":
        return 0.0
    if unicodedata.east_asian_width(char) in "WF":
        return 1.25 if char >= "\U0001f000" else 1.0
    return 0.8


def cut_to_width(text, width, size, bold=False):
    """text, or as much of it as fits in width with an ellipsis after it."""
    if text_width(text, size, bold) <= width:
        return text
    room, kept = width - text_width("…", size, bold), 0
    for kept, char in enumerate(text):
        room -= text_width(char, size, bold)
        if room < 0:
            break
    return text[:kept].rstrip("\u200d\ufe0f ") + "…"


def wrap_to_width(text, width, size):
    """text in lines no wider than width, broken between words."""
    lines = [""]
    for word in text.split():
        if lines[-1] and text_width(f"{lines[-1]} {word}", size) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return lines


def benchmark(figure):
    """(symbol, [(moment, height)]): buy and hold of the first panel's symbol from its first close in view,
    scaled to the starting equity (to a growth index of 1 in a percent chart); None without one."""
    if not figure.panels or figure.panels[0][2] is None:
        return None
    symbol, closes, first_close, _ = figure.panels[0]
    scale = (1.0 if figure.curve.percent else float(figure.curve.performance.equity_start)) / first_close
    return symbol, [(moment, close * scale) for moment, close in closes.points()]


def linear_ticks(low, high):
    """[(height, its exact value)]: amount_ticks from low to high (floats)."""
    step, bottom, top = amount_ticks(Decimal(f"{low:.12g}"), Decimal(f"{high:.12g}"))
    return [(float(n * step), n * step) for n in range(int(bottom), int(top) + 1)]


def log_ticks(low, high):
    """[(height, its exact value)] for a log scale from low to high (both > 0): 1, 2 and 5 x 10^k between
    them (only the 1s when those are too many); linear ticks when that leaves fewer than three."""
    ticks = [Decimal(digit).scaleb(power) for power in range(math.floor(math.log10(low)),
                                                             math.ceil(math.log10(high)) + 1) for digit in (1, 2, 5)]
    ticks = [tick for tick in ticks if low <= float(tick) <= high]
    if len(ticks) > 7:
        ticks = [tick for tick in ticks if tick.as_tuple().digits[0] == 1]
    if len(ticks) < 3:
        return [(height, value) for height, value in linear_ticks(low, high) if height > 0]
    return [(float(tick), tick) for tick in ticks]


def value_axis(label, size, low, high, log, text):
    """An Axis over heights from low to high, its ticks labelled by text(their exact value)."""
    if log:
        high = high if high > 0 else 1.0
        low = low if low > 0 else high / 1000  # a zero equity has no place on a log scale: it sits at the bottom
        ticks = log_ticks(low, high)
        low, high = min([low] + [height for height, _ in ticks]), max([high] + [height for height, _ in ticks])
        low, high = low / 1.05, high * 1.05
    else:
        ticks = linear_ticks(low, high)
        low, high = ticks[0][0], ticks[-1][0]
    return Axis(label, size, [(height, text(value)) for height, value in ticks], low, high, log)


def percent_text(value):
    return f"{value.normalize():+,f}%" if value else "0%"


def equity_axis(figure, log):
    """The equity panel's scale: money, or with a percent Curve the return in % (its heights are growth
    indexes, 1 + the return), buy and hold included."""
    curve, hold = figure.curve, benchmark(figure)
    heights = curve.line.extremes() + [height for _, height in hold[1]] if hold else curve.line.extremes()
    low, high, scale = min(heights), max(heights), ", log scale" if log else ""
    if not curve.percent:
        return value_axis(f"equity ({figure.quote}{scale})", 230, low, high, log, lambda value: f"{value:,f}")
    if log:
        return value_axis(f"return{scale}", 230, low, high, True, lambda value: percent_text((value - 1) * 100))
    axis = value_axis("return", 230, (low - 1) * 100, (high - 1) * 100, False, percent_text)
    return Axis(axis.label, axis.size, [(1 + height / 100, text) for height, text in axis.ticks], 1 + axis.low / 100,
                1 + axis.high / 100)


def drawdown_axis(curve):
    """The drawdown panel's scale in %, from 0 down to the deepest (to -1% if it never fell): 3 to 4 ticks, every
    other one of amount_ticks' when it gives more (the panel is low)."""
    deepest = curve.performance.max_drawdown
    axis = value_axis("drawdown", 84, deepest * 100 if deepest < 0 else -1.0, 0.0, False, percent_text)
    axis.ticks = axis.ticks[::-2][::-1] if len(axis.ticks) > 4 else axis.ticks
    return axis


def price_axis(panel):
    symbol, closes, _, trips = panel
    heights = closes.extremes() + [float(trip[key]) for trip in trips for key in ("entry_price", "exit_price")]
    return value_axis(f"{symbol} close ({symbol.partition('/')[2]})", 120, min(heights), max(heights), False,
                      lambda value: f"{value:,f}")


def chart_legend(figure, log):
    """The legend: an entry for each line and mark drawn, in rows that fit the chart; and the y below it."""
    curve, hold = figure.curve, benchmark(figure)
    trips = [trip for panel in figure.panels for trip in panel[3]]
    entries = [("line", "equity", "return" if curve.percent else "equity")]
    entries += [("line", "hold", f"buy & hold {hold[0]}")] if hold else []
    entries += [("area", "drawdown", "drawdown")] + ([("line", "close", "close")] if figure.panels else [])
    kinds = {trip_kind(trip) for trip in trips if trip["status"] == "CLOSED"}
    entries += [("trip", kind, label) for kind, label in (("gain", "round trip, gain"), ("loss", "round trip, loss"),
                                                          ("even", "round trip, even")) if kind in kinds]
    entries += [("open", "even", "open round trip")] if any(trip["status"] == "OPEN" for trip in trips) else []
    entries += [("up", "deposit", "deposit")] if any(sign > 0 for _, sign in curve.flows) else []
    entries += [("down", "withdrawal", "withdrawal")] if any(sign < 0 for _, sign in curve.flows) else []
    svg, x, y = ['<g class="legend" fill="#333">'], 12.0, 48
    for shape, kind, label in entries:
        width = 26 + text_width(label, TEXT) + 14
        if x + width > CHART_WIDTH - 12 and x > 12:
            x, y = 12.0, y + 19
        svg += [legend_swatch(shape, kind, x, y), f'<text x="{x + 26:.1f}" y="{y}">{svg_text(label)}</text>']
        x += width
    return svg + ["</g>"], y + 8


def legend_swatch(shape, kind, x, y):
    """The mark a legend entry shows at (x, baseline y): a line, an area, a round trip or a triangle."""
    colour = COLOURS[kind]
    if shape == "line":
        return f'<path d="M{x:.1f},{y - 4}h20" stroke="{colour}" stroke-width="2"/>'
    if shape == "area":
        return (f'<rect x="{x:.1f}" y="{y - 9}" width="20" height="10" fill="{colour}" fill-opacity=".3"'
                f' stroke="{colour}"/>')
    if shape in ("trip", "open"):
        dash = ' stroke-dasharray="4 3"' if shape == "open" else ""
        return (f'<path d="M{x + 3:.1f},{y - 1}L{x + 17:.1f},{y - 8}" stroke="{colour}" stroke-width="1.5"{dash}'
                f' marker-start="url(#trip-{kind})" marker-end="url(#trip-{kind})"/>')
    return flow_mark(x + 10, y - 4, 1 if shape == "up" else -1, colour)


def trip_kind(trip):
    """gain, loss or even: the colour of a round trip, by its P&L (valued at the latest close if open)."""
    pnl = trip["pnl"] or 0
    return "gain" if pnl > 0 else "loss" if pnl < 0 else "even"


def flow_mark(x, y, sign, colour):
    """A triangle at (x, y): up for money in, down for money out."""
    tip = -6 if sign > 0 else 6
    return (f'<path d="M{x:.1f},{y + tip:.1f}l4.5,{-tip * 1.5:.1f}h-9z" fill="{colour}" stroke="#fff"'
            ' stroke-width=".5"/>')


def trip_markers():
    """The dot at each end of a round trip, one for each colour (marker-mid dots the ends inside one path)."""
    return "<defs>" + "".join(f'<marker id="trip-{kind}" viewBox="-3 -3 6 6" markerWidth="6" markerHeight="6"'
                              f' markerUnits="userSpaceOnUse"><circle r="2.5" fill="{COLOURS[kind]}"/></marker>'
                              for kind in ("gain", "loss", "even")) + "</defs>"


def panel_frame(kind, axis, left):
    """A panel's group, frame, name and tick labels (its lines follow; the caller closes the group)."""
    return [f'<g class="panel {kind}">', f'<text class="panel-label" x="{left}" y="{axis.top - 6}" font-size="{SMALL}"'
            f' fill="#57606a">{svg_text(axis.label)}</text>',
            f'<rect x="{left}" y="{axis.top}" width="{RIGHT - left}" height="{axis.size}" stroke="#afb8c1"'
            ' fill="none"/>', '<g class="ticks" text-anchor="end" fill="#333">',
            *[f'<text x="{left - 6}" y="{axis.y(height) + 4:.1f}">{svg_text(label)}</text>'
              for height, label in axis.ticks], "</g>"]


def polyline(kind, points, axis, x, width):
    """A line through points [(moment, height)]."""
    return (f'<polyline class="{kind}" points="' + " ".join(f"{x(moment):.1f},{axis.y(height):.1f}"
                                                            for moment, height in points) +
            f'" fill="none" stroke="{COLOURS[kind]}" stroke-width="{width}" stroke-linejoin="round"/>')


def equity_panel(figure, axis, x, left):
    """The equity (or return) line over buy and hold, a dot if it is one point, a mark where money came in
    or went out."""
    curve, hold = figure.curve, benchmark(figure)
    svg = panel_frame("equity", axis, left) + ([polyline("hold", hold[1], axis, x, 1.2)] if hold else [])
    points = curve.line.points()
    svg.append(polyline("equity", points, axis, x, 1.6))
    if curve.performance.points == 1:
        svg.append(f'<circle class="dot" cx="{x(points[0][0]):.1f}" cy="{axis.y(points[0][1]):.1f}" r="3"'
                   f' fill="{COLOURS["equity"]}"/>')
    for sign, kind in ((1, "deposit"), (-1, "withdrawal")):
        marks = [flow_mark(x(moment), axis.y(height), sign, COLOURS[kind]).replace("<path", f'<path class="{kind}"')
                 for (_, mark_sign), (moment, height) in sorted(curve.flows.items()) if mark_sign == sign]
        svg += marks
    return svg + ["</g>"]


def drawdown_panel(curve, axis, x, left):
    """The drawdown as an area below 0%."""
    points = curve.falls.points()
    zero = axis.y(0.0)
    area = " ".join(f"{x(moment):.1f},{axis.y(fall * 100):.1f}" for moment, fall in points)
    return panel_frame("drawdown", axis, left) + [
        f'<polygon class="drawdown" points="{x(points[0][0]):.1f},{zero:.1f} {area} {x(points[-1][0]):.1f},'
        f'{zero:.1f}" fill="{COLOURS["drawdown"]}" fill-opacity=".3" stroke="{COLOURS["drawdown"]}"'
        ' stroke-width=".6"/>', "</g>"]


def price_panel(panel, axis, x, left, curve):
    """A symbol's closes, and each of its round trips from entry to exit (time, average price), coloured by
    P&L and dashed while open: one path a kind, with a dot at each end while they are few enough to tell
    apart (a trip every 4 units or fewer); more would blot out the closes."""
    symbol, closes, _, trips = panel
    paths, first, last = {}, curve.performance.first, curve.last
    for trip in thinned(trips, first, last):
        entry_at, exit_at = max(seconds(trip["entry_time"]), first), min(seconds(trip["exit_time"]), last)
        segment = (f"M{x(entry_at):.1f},{axis.y(float(trip['entry_price'])):.1f}"
                   f"L{x(exit_at):.1f},{axis.y(float(trip['exit_price'])):.1f}")
        paths.setdefault((trip_kind(trip), trip["status"] == "OPEN"), {})[segment] = None  # an ordered set
    svg = panel_frame("price", axis, left) + [polyline("close", closes.points(), axis, x, 1)]
    dotted = len(trips) <= COLUMNS // 4
    for (kind, going), segments in sorted(paths.items()):
        dash = ' stroke-dasharray="4 3"' if going else ""
        dots = f' marker-start="url(#trip-{kind})" marker-mid="url(#trip-{kind})" marker-end="url(#trip-{kind})"'
        svg.append(f'<path class="trips {kind}{" open" if going else ""}" d="{"".join(segments)}" fill="none"'
                   f' stroke="{COLOURS[kind]}" stroke-width="1.5"{dash}{dots if dotted else ""}/>')
    return svg + ["</g>"]


def thinned(trips, first, last):
    """The round trips a panel draws: all of them up to two a column; beyond that, in each column where
    trips start, the two of each colour with the largest P&L (a million points may hold 100,000 trips)."""
    if len(trips) <= 2 * COLUMNS:
        return trips
    scale, kept, counts = COLUMNS / (last - first) if last > first else 0.0, [], {}
    for trip in sorted(trips, key=lambda trip: -abs(trip["pnl"] or 0)):
        key = int((seconds(trip["entry_time"]) - first) * scale), trip_kind(trip)
        if counts.get(key, 0) < 2:
            counts[key] = counts.get(key, 0) + 1
            kept.append(trip)
    return kept


def time_axis(ticks, context, x, left, bottom, hidden):
    """The time labels under the lowest panel, the context of the first one (its year, or its date) once,
    and the traded symbols that got no panel."""
    svg = ['<g class="time-axis" text-anchor="middle" fill="#333">']
    for moment, label, bold in ticks:
        centre, weight = min(x(moment), CHART_WIDTH - 4 - text_width(label, TEXT, bold) / 2), ' font-weight="bold"'
        svg.append(f'<text x="{centre:.1f}" y="{bottom + 17}"{weight if bold else ""}>{label}</text>')
    svg.append("</g>")
    if context:
        svg.append(f'<text class="context" x="{left}" y="{bottom + 34}" fill="#57606a">{context} (UTC)</text>')
    if hidden:
        note = cut_to_width(f"also traded, not drawn: {', '.join(hidden)}", RIGHT - left, SMALL)
        svg.append(f'<text class="hidden" x="{left}" y="{bottom + 50}" font-size="{SMALL}" fill="#57606a">'
                   f"{svg_text(note)}</text>")
    return svg


# Time steps, each at most about twice the one before, so that some step gives 4 to 8 ticks on any span:
# seconds (minutes and hours, at whole multiples), days of the month (1, 1 + n, ...), months, years.
TIME_STEPS = (*[("second", n) for n in (0.1, 0.2, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900,
                                        1200, 1800, 3600, 7200, 10800, 14400, 21600, 43200, DAY)],
              *[("day", n) for n in (2, 3, 5, 7, 14)], *[("month", n) for n in (1, 2, 3, 4, 6)],
              *[("year", n) for n in (1, 2, 4, 5, 10, 20, 40, 50, 100, 200, 400, 500, 1000)])
UNIT_SECONDS = {"second": 1, "day": DAY, "month": 30.44 * DAY, "year": 365.25 * DAY}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def time_ticks(first, last, most=8):
    """The time axis from first to last (epoch seconds): ([(moment, label, bold)], context). Ticks on natural
    boundaries, of the smallest step that gives at most `most`; a label names the finest unit of its step,
    and a higher unit where it begins (bold: 'Feb', '2026'); context is the year (the date, for steps under a
    day) of the first tick, shown once."""
    moments, unit = [], "second"
    for unit, step in TIME_STEPS:
        if (last - first) / (step * UNIT_SECONDS[unit]) <= most + 2:  # else too many, surely: not counted
            moments = tick_moments(first, last, unit, step)
            if len(moments) <= most:
                break
    fine = unit == "second" and step < DAY
    moments = moments or [first]
    ticks = [(moment, *tick_label(EPOCH + timedelta(seconds=moment), unit, step)) for moment in moments]
    start = EPOCH + timedelta(seconds=moments[0])
    context = start.date().isoformat() if fine else None if unit == "year" or ticks[0][1] == str(start.year) \
        else str(start.year)
    return ticks, context


def tick_moments(first, last, unit, step):
    """The moments from first to last on the boundaries of a step (see TIME_STEPS)."""
    if unit == "second" and step < 1:  # parts of a second: n / 10, n / 5, n / 4 or n / 2
        per = round(1 / step)
        return [n / per for n in range(math.ceil(first * per), math.floor(last * per) + 1)]
    if unit == "second":
        return list(range(math.ceil(first / step) * step, math.floor(last) + 1, step))
    start, end = (EPOCH + timedelta(seconds=first)), (EPOCH + timedelta(seconds=last))
    if unit == "year":
        dates = [datetime(year, 1, 1) for year in range(start.year, end.year + 1) if year % step == 0]
    elif unit == "month":
        dates = [datetime(start.year + (month - 1) // 12, (month - 1) % 12 + 1, 1) for month in
                 range(start.month, (end.year - start.year) * 12 + end.month + 1) if (month - 1) % step == 0]
    else:  # days 1, 1 + step, ... while a whole step fits in the month's 31 days
        days = range(1, 32 - step, step)
        dates = [day for day in (start + timedelta(days=n) for n in range((end - start).days + 2)) if day.day in days]
        dates = [datetime(day.year, day.month, day.day) for day in dates]
    return [moment for moment in ((date - EPOCH).total_seconds() for date in dates) if first <= moment <= last]


def tick_label(when, unit, step):
    """(label, bold) of a tick at when: see time_ticks."""
    midnight = not (when.hour or when.minute or when.second or when.microsecond)
    if unit == "year" or midnight and when.month == 1 and when.day == 1:
        return str(when.year), unit != "year"
    if unit == "month":
        return MONTHS[when.month - 1], False
    if unit == "day" or step == DAY:
        return (MONTHS[when.month - 1], True) if when.day == 1 else (f"{MONTHS[when.month - 1]} {when.day}", False)
    if midnight:
        return f"{MONTHS[when.month - 1]} {when.day}", True
    if step < 1:  # tenths, or hundredths for quarters
        return f"{when:%H:%M:%S}." + (f"{when.microsecond // 10000:02d}" if step == 0.25 else
                                       f"{when.microsecond // 100000}"), False
    return when.strftime("%H:%M" if step >= 60 else "%H:%M:%S"), False


def monthly_returns(months):
    """{year: {month: return}} from a Curve's months [('YYYY-MM', the growth index at its last point)]: each
    month's index / the month before's - 1 (the first month's / 1, what came in), so that they compound to
    the return; a month without a point returns 0.0; one after an index of 0 has none (None)."""
    returns, before, previous = {}, 1.0, None
    for key, index in months:
        year, month = int(key[:4]), int(key[5:7])
        while previous is not None and previous + 1 < year * 12 + month - 1:  # months without a point
            previous += 1
            returns.setdefault(previous // 12, {})[previous % 12 + 1] = 0.0 if before else None
        returns.setdefault(year, {})[month] = index / before - 1 if before else None
        before, previous = index, year * 12 + month - 1
    return returns


def worst_drawdowns(curve):
    """A Curve's five deepest drawdowns, deepest first: [{"start", "bottom", "recovery", "depth", "length"}],
    start the last peak before it, recovery None if it has not recovered (its length then runs to the end)."""
    end = curve.performance.end
    return [{"start": start, "bottom": bottom, "recovery": recovery, "depth": depth,
             "length": seconds(recovery or end) - seconds(start)} for depth, start, bottom, recovery in curve.worst]


REPORT_STYLE = """body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;max-width:1200px;\
margin:0 auto;padding:12px 20px 40px}
h1{font-size:22px;margin:8px 0 2px;overflow-wrap:anywhere}h2{font-size:17px;margin:28px 0 8px;\
border-bottom:1px solid #d0d7de;padding-bottom:4px}.meta{color:#57606a;margin:0 0 12px}
dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:0 28px;margin:0}
dl div{display:flex;justify-content:space-between;gap:12px;border-bottom:1px solid #eaeef2;padding:3px 0}
dt{color:#57606a}dd{margin:0;text-align:right}.scroll{overflow-x:auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{padding:3px 7px;text-align:right;\
white-space:nowrap;border-bottom:1px solid #eaeef2}th{color:#57606a;font-weight:600;border-color:#d0d7de}
.text{text-align:left}.gain{color:#1a7f37}.loss{color:#cf222e}.months td{min-width:48px}
svg{display:block;width:100%;height:auto}p.none{color:#57606a}"""


def report_html(account, stats, figure, sections=()):
    """The report page (Ledger.report): no script, no link outside itself; the same data, the same bytes."""
    import html
    when = f"{time_text(stats['start'])} to {time_text(stats['end'])} UTC" if stats["start"] else "no equity points yet"
    page = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(account.name)}: paper report</title>", f"<style>\n{REPORT_STYLE}\n</style>",
            "</head>", "<body>", f"<h1>{html.escape(account.name)}</h1>",
            f'<p class="meta">Valued in {figure.quote}; {when} (market time).</p>', "<h2>Statistics</h2>",
            *stats_list(stats), "<h2>Chart</h2>", svg_chart(figure).rstrip("\n"), "<h2>Round trips</h2>",
            *html_table(["#", "symbol", "entry", "exit", "qty", "entry price", "exit price", "P&L", "return %",
                         "duration", "fills"], [trip_cells(n, trip) for n, trip in enumerate(figure.trips, 1)],
                        "No round trips yet: a round trip runs from a buy that opens a position to the sale that"
                        " closes it."),
            "<h2>Monthly returns (%)</h2>", *monthly_table(monthly_returns(figure.curve.months)),
            "<h2>Worst drawdowns</h2>", *html_table(["#", "start (peak)", "bottom", "recovery", "depth %", "length"],
                                                    [drawdown_cells(n, fall) for n, fall in
                                                     enumerate(worst_drawdowns(figure.curve), 1)], "No drawdown.")]
    for title, rows in sections:
        columns = list(rows[0]) if rows else []
        page += [f"<h2>{html.escape(str(title))}</h2>", *html_table(
            columns, [[(cell_text(row.get(column)), "") for column in columns] for row in rows], "None.")]
    return "\n".join(page + ["</body>", "</html>\n"])


def stats_list(stats):
    """The stats as the stats table shows them, in a grid of label and value (times as tables show them)."""
    import html
    currencies = {"[Q]": f"[{stats['quote']}]", "[T]": f"[{stats['trade_currency']}]"}
    items = ["<dl>"]
    for key, label, how in STATS:
        value = time_text(stats[key]) if key in ("start", "end") and stats[key] else stat_text(stats[key], how)
        items.append(f"<div><dt>{html.escape(label[:-3] + currencies.get(label[-3:], label[-3:]))}</dt>"
                     f"<dd>{html.escape(value)}</dd></div>")
    return items + ["</dl>"]


def drawdown_cells(number, fall):
    """A drawdown as the report's table shows it: [(text, class)]."""
    recovery = time_text(fall["recovery"]) if fall["recovery"] else "not recovered"
    return [(number, ""), (time_text(fall["start"]), ""), (time_text(fall["bottom"]), ""), (recovery, ""),
            (f"{fall['depth'] * 100:.2f}", "loss"), (stat_text(fall["length"], "span"), "")]


def cell_text(value):
    return "" if value is None else fmt(value) if isinstance(value, Decimal) else str(value)


def html_table(columns, rows, empty):
    """A table of rows [[(text, class)]] under columns, or the empty text without a row: a column of numbers
    right-aligned, one of text left."""
    import html
    if not rows:
        return [f'<p class="none">{html.escape(empty)}</p>']
    texts = [[column] + [str(row[i][0]) for row in rows] for i, column in enumerate(columns)]
    left = [not all(NUMBER.fullmatch(text.replace(",", "").lstrip("+")) or text in ("", "n/a") for text in column[1:])
            for column in texts]
    head = "".join(f"<th{TEXT_CLASS if text else ''}>{html.escape(column)}</th>" for column, text in zip(columns, left))
    body = ["<tr>" + "".join(html_cell(str(text), " ".join(filter(None, (kind, "text" if text_column else ""))))
                             for (text, kind), text_column in zip(row, left)) + "</tr>" for row in rows]
    return ['<div class="scroll"><table>', f"<thead><tr>{head}</tr></thead>", "<tbody>", *body,
            "</tbody></table></div>"]


TEXT_CLASS = ' class="text"'


def html_cell(text, classes):
    import html
    return f'<td class="{classes}">{html.escape(text)}</td>' if classes else f"<td>{html.escape(text)}</td>"


def trip_cells(number, trip):
    """A round trip as the report's table shows it: [(text, class)]."""
    kind = {"gain": "gain", "loss": "loss"}.get(trip_kind(trip), "") if trip["pnl"] is not None else ""
    exit_time = time_text(trip["exit_time"]) or "n/a"
    return [(number, ""), (trip["symbol"], ""), (time_text(trip["entry_time"]) or "n/a", ""),
            (f"{exit_time} (open)" if trip["status"] == "OPEN" else exit_time, ""), (fmt(trip["qty"]), ""),
            (fmt(trip["entry_price"]), ""), (cell_text(trip["exit_price"]) or "n/a", ""),
            (cell_text(trip["pnl"]) or "n/a", kind),
            (ratio_text(trip["return"] and trip["return"] * 100, "+.2f"), kind),
            (stat_text(trip["duration"], "span"), ""), (trip["fills"], "")]


def monthly_table(returns):
    """The monthly returns as a table, a row a year, each month coloured by its sign and, in strength, by its
    size against the largest; the year compounded at the end."""
    if not returns:
        return ['<p class="none">No equity points yet.</p>']
    largest = max([abs(r) for months in returns.values() for r in months.values() if r is not None] + [1e-12])
    rows = ['<div class="scroll"><table class="months">', "<thead><tr><th></th>" +
            "".join(f"<th>{month}</th>" for month in MONTHS) + "<th>year</th></tr></thead>", "<tbody>"]
    for year, months in sorted(returns.items()):
        cells = [month_cell(f"{year}-{month:02d}", months.get(month), largest, month in months)
                 for month in range(1, 13)]
        year_return = math.prod([1 + r for r in months.values()]) - 1 if None not in months.values() else None
        rows.append(f"<tr><th>{year}</th>{''.join(cells)}{month_cell(str(year), year_return, largest, True)}</tr>")
    return rows + ["</tbody></table></div>"]


def month_cell(name, value, largest, measured_month):
    if not measured_month:
        return "<td></td>"
    if value is None:
        return f'<td title="{name}: n/a">n/a</td>'
    strength = 0.12 + 0.55 * min(abs(value) / largest, 1.0)
    colour = "26,127,55" if value > 0 else "207,34,46" if value < 0 else "140,149,159"
    return (f'<td title="{name}: {value:+.4%}" style="background:rgba({colour},{strength:.2f})">'
            f"{value * 100:+.2f}</td>")


def write_report(ledger, account_id, path, quote=None, sections=()):
    """Write the account's report (Ledger.report) to path, aside and then into place, as the chart is written
    (for `report` and a strategy runner's `backtest --report FILE`). Returns its size in bytes."""
    return write_file(path, ledger.report(account_id, quote, sections), "the report")


def write_file(path, text, what):
    """text into the file at path. A file is written aside, then put in place: a failed write leaves the one
    that was there. Anything else (a device, a pipe) is written to as it is. Returns the bytes written."""
    aside = f"{path}.{os.getpid()}.new" if os.path.isfile(path) or not os.path.lexists(path) else path
    data = text.encode()
    try:
        with open(aside, "wb") as f:
            f.write(data)
        os.replace(aside, path)
    except OSError as error:
        if aside != path:
            with contextlib.suppress(OSError):
                os.unlink(aside)
        raise PaperError(f"could not write {what} to {path}: {error.strerror or error}") from None
    return len(data)


# --- Rendering: tables, CSV, JSON and progress ---

HISTORY = "id created_at type currency amount balance_after description"
HISTORY_NARROW = ("description", "created_at", "currency")  # left out in turn on a narrow terminal
ORDERS = ("id status type side symbol qty filled_qty limit_price stop_price mark reserved currency protects expires_at"
          " created_at")
ORDERS_NARROW = ("created_at", "expires_at", "protects", "mark", "currency", "filled_qty", "reserved", "status", "type")


def jsonable(value):
    """value as JSON data: records become dicts, amounts exact strings."""
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, Record):
        value = vars(value)
    return {key: jsonable(item) for key, item in value.items()} if isinstance(value, dict) else value


def account_json(account, transactions=True):
    """An account as `status --json` shows it."""
    return jsonable({"id": account.id, "name": account.name, "status": account.status, "currency": account.currency,
                     "leverage": account.leverage,
                  "max_leverage": account.max_leverage, "created_at": account.created_at,
                  "closed_at": account.closed_at, "balances": {
                      b.currency: {"available": b.available, "reserved": b.reserved, "total": b.total}
                      for b in account.balances.values()}} | ({"transactions": account.transactions} if transactions else {}))


def table(rows, columns, width=None, narrow=()):
    """rows (dicts of plain values) in the named columns, each as wide as its widest cell; a column of
    numbers is right-aligned on the decimal point; a column's name is its header, _ shown as a space (a name
    that starts with = is shown as it is, = left out: a param's own name). Within width (a terminal's columns), ids and times
    are shortened and the columns in narrow left out, in that order, until the table fits."""
    return "\n".join(table_lines(rows, columns, width, narrow))


def table_lines(rows, columns, width=None, narrow=()):
    """table()'s lines. A list is laid out in memory; any other iterable of rows is read once, its cells
    kept in a temporary file while the widths are measured, so a long table costs no memory."""
    names = columns.split()
    if isinstance(rows, list):
        cells = [["" if row.get(name) is None else str(row[name]) for name in names] for row in rows]
        if width:
            names, cells = fitted(names, cells, width, narrow)
        yield from laid_out(names, cells, measured(cells, len(names)))
        return
    import tempfile
    layout = [[True, 0, 0, 0] for _ in names]
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n") as spool:
        for chunk in iter(lambda: list(itertools.islice(rows, 5000)), []):  # measured as they are kept
            cells = [["" if row.get(name) is None else str(row[name]) for name in names] for row in chunk]
            for column, more in zip(layout, measured(cells, len(names))):
                column[:] = column[0] and more[0], max(column[1], more[1]), max(column[2], more[2]), max(column[3],
                                                                                                        more[3])
            spool.writelines("\x1f".join(row) + "\n" for row in cells)
        spool.seek(0)
        yield from laid_out(names, (line[:-1].split("\x1f") for line in spool), layout)


def measured(cells, rows):
    """Each column's layout from its cells: [is a number, widest whole part, most decimals (point
    included), widest cell]."""
    layout = []
    for column in itertools.islice(zip(*cells), rows) if cells else [()] * rows:
        filled = [cell for cell in column if cell]
        number = all(cell.lstrip("-").replace(".", "", 1).isdigit() for cell in filled)
        decimals = [len(cell) - cell.find(".") if "." in cell else 0 for cell in filled] if number else [0]
        layout.append([number, max((len(cell) - d for cell, d in zip(filled, decimals)), default=0) if number else 0,
                       max(decimals, default=0), max(map(columns_of, filled), default=0)])
    return layout


def laid_out(names, cells, layout):
    """The lines of a table: its header, then cells (rows of texts) as layout (see measured) says, a
    column at a time."""
    heads = [name[1:] if name.startswith("=") else name.replace("_", " ") for name in names]  # =: as it is
    widths = [max(whole + decimals, len(head)) if number else max(widest, columns_of(head))
              for head, (number, whole, decimals, widest) in zip(heads, layout)]
    yield "  ".join(head.rjust(width) if column[0] else head.ljust(width)
                    for head, width, column in zip(heads, widths, layout)).rstrip()
    cells = iter(cells)
    for chunk in iter(lambda: list(itertools.islice(cells, 5000)), []):
        columns = []
        for column, width, (number, _, decimals, _) in zip(zip(*chunk), widths, layout):
            if number:
                columns.append([(cell + " " * (decimals - (len(cell) - cell.find(".") if "." in cell else 0))
                                 ).rjust(width) for cell in column])
            else:
                columns.append([cell + " " * (width - columns_of(cell)) for cell in column])
        yield from ("  ".join(line).rstrip() for line in zip(*columns))


ID_COLUMNS, TIME_COLUMNS = {"id", "account_id", "order_id"}, {"created_at", "time", "expires_at", "closed_at",
                                                           "entry_time", "exit_time"}


def fitted(names, cells, width, narrow):
    """(names, cells) that fit width: ids cut to 8 characters and times to the minute ('2026-11-25 14:36'),
    then the columns of narrow left out in turn; if it still does not fit, the widest text column cut
    with '…' (a number is never cut: it would read as another number)."""
    if table_span(names, cells)[0] <= width:
        return names, cells
    cells = shortened(names, cells)
    for name in narrow:
        if table_span(names, cells)[0] <= width:
            break
        if name in names:
            i = names.index(name)
            names, cells = names[:i] + names[i + 1:], [row[:i] + row[i + 1:] for row in cells]
    wide, layout = table_span(names, cells)
    if wide > width:
        cells = widest_text_cut(names, cells, layout, wide - width)
    return names, cells


def table_span(names, cells):
    """(the columns a table of names and cells spans, its layout: see measured)."""
    layout = measured(cells, len(names))
    return sum(max(whole + decimals, len(name)) if number else max(widest, columns_of(name))
               for name, (number, whole, decimals, widest) in zip(names, layout)) + 2 * (len(names) - 1), layout


def shortened(names, cells):
    """cells with their ids cut to 8 characters (where every one is a full UUID) and their times to the
    minute ('2026-11-25 14:36')."""
    short = {i for i, name in enumerate(names) if name in ID_COLUMNS and all(
        len(row[i]) == 36 for row in cells if row[i])}
    times = {i for i, name in enumerate(names) if name in TIME_COLUMNS}
    return [[cell[:8] if i in short else cell[:16].replace("T", " ") if i in times else cell
             for i, cell in enumerate(row)] for row in cells]


def widest_text_cut(names, cells, layout, excess):
    """cells with the widest text column (wider than its name) cut by excess columns, to no less than
    its name + 1 or 4 columns; cells as they were if there is no such column."""
    texts = [(column[3], i) for i, column in enumerate(layout) if not column[0] and column[3] > len(names[i]) + 1]
    if not texts:
        return cells
    widest, i = max(texts)
    keep = max(widest - excess, len(names[i]) + 1, 4)
    return [row[:i] + [row[i] if columns_of(row[i]) <= keep else cut_text(row[i], keep)] + row[i + 1:]
            for row in cells]


def cut_text(text, columns):
    """text cut to fit columns of a terminal, with '…' at the end."""
    while columns_of(text) > columns - 1:
        text = text[:-1]
    return text + "…"


def terminal_width(args):
    """The terminal's columns when stdout is one and --wide was not given; None (every column) otherwise."""
    if getattr(args, "wide", False) or not sys.stdout.isatty():
        return None
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except OSError:
        return None


def columns_of(text):
    """How many columns a terminal gives text: two for a wide character (CJK, most emoji), none for a
    joiner, a variation selector, a tag or a combining mark."""
    if text.isascii():
        return len(text)
    import unicodedata
    return sum(0 if unicodedata.combining(char) or char in "\u200d\ufe0f" or "\U000e0000" <= char <= "\U000e007f"
               else 2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def csv_text(rows, columns):
    """rows as CSV. A text cell that a spreadsheet would run as a formula (it starts with = + - @, a tab
    or CR) gets a leading ' so it shows as text; amounts stay numbers."""
    return "\n".join(csv_lines(rows, columns))


def csv_lines(rows, columns):
    """csv_text()'s lines, one row at a time."""
    import csv
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="")
    for row in itertools.chain([dict(zip(columns, columns))], rows):
        writer.writerow(["'" + cell if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r")
                         and not NUMBER.fullmatch(cell) else cell for cell in map(row.get, columns)])
        yield out.getvalue()
        out.seek(0)
        out.truncate()


class Progress:
    """A long command's progress on stderr: one line, rewritten in place a few times a second, from half a
    second on; nothing at all when stderr is not a terminal (a log or a pipe gets no control characters)."""

    after, every = 0.5, 0.2  # seconds: a quick command shows none
    showing = False  # whether a progress line is on the terminal now (an interrupt takes it away first)

    def __init__(self, unit, prefix=""):
        self.unit, self.prefix, self.on, self.shown = unit, prefix, sys.stderr.isatty(), False
        self.start = time.monotonic()
        self.due = self.start + self.after

    def update(self, done_count, reached):
        """count units done so far; reached, the market time they reached."""
        if self.on and time.monotonic() >= self.due:
            now = time.monotonic()
            self.due, self.shown, Progress.showing = now + self.every, True, True
            sys.stderr.write(f"\r{self.prefix}{done_count:,} {self.unit}, market time {reached[:19].replace('T', ' ')},"
                             f" {done_count / (now - self.start):,.0f} {self.unit}/s\033[K")
            sys.stderr.flush()

    def clear(self):
        """Take the line away (before other output, and at the end)."""
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = Progress.showing = False


def count(n, thing):
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def json_line(value):
    import json
    return json.dumps(value, ensure_ascii=False)


def json_list_lines(items, encoded=False):
    """A list as json_text prints one (an item a line), one line at a time (items already JSON if encoded)."""
    yield "["
    previous = None
    for item in items:
        if previous is not None:
            yield previous + ","
        previous = item if encoded else json_line(item)
    if previous is not None:
        yield previous
    yield "]"


def json_text(value):
    """value as --json prints it: an object indented, a list one item to a line (json's indenting encoder
    is pure Python: 100,000 items would take a second)."""
    import json
    if isinstance(value, list):
        return "[\n" + ",\n".join(map(json.JSONEncoder(ensure_ascii=False).encode, value)) + "\n]" if value else "[]"
    return json.dumps(value, indent=2, ensure_ascii=False)


STATS = [  # key, label, how it is shown
    ("start", "Start", "{}"), ("end", "End", "{}"), ("duration", "Duration", "span"),
    ("equity_start", "Equity start [Q]", "amount"), ("equity_final", "Equity final [Q]", "amount"),
    ("equity_peak", "Equity peak [Q]", "amount"), ("return", "Return [%]", "percent"),
    ("buy_and_hold_return", "Buy & hold return [%]", "percent"), ("max_drawdown", "Max. drawdown [%]", "percent"),
    ("max_drawdown_duration", "Max. drawdown duration", "span"), ("cagr", "CAGR [%]", "percent"),
    ("volatility", "Volatility (ann.) [%]", "percent"), ("sharpe", "Sharpe ratio", "{:.3f}"),
    ("sortino", "Sortino ratio", "{:.3f}"), ("calmar", "Calmar ratio", "{:.3f}"), ("trades", "Trades (fills)", "{}"),
    ("closed_trades", "Closed trades", "{}"), ("win_rate", "Win rate [%]", "percent"),
    ("profit_factor", "Profit factor", "{:.3f}"), ("best_trade", "Best trade [T]", "amount"),
    ("worst_trade", "Worst trade [T]", "amount"), ("avg_trade", "Avg. trade [T]", "amount"),
    ("fees", "Fees", "fees"), ("exposure", "Exposure [%]", "percent")]


def stat_text(value, how):
    """A statistic as the stats table shows it (STATS says how)."""
    if value is None:
        return "n/a"
    if how == "span":
        return f"{int(value // DAY)} days {time.strftime('%H:%M:%S', time.gmtime(value % DAY))}"
    if how == "percent":
        return f"{value * 100:.2f}"
    if how == "amount":
        return fmt(value)
    if how == "fees":
        return ", ".join(f"{fmt(fee)} {currency}" for currency, fee in value.items()) or "0"
    return how.format(value)


# --- The command line: a thin layer over the library ---

def cmd_init(ledger, args):
    account = ledger.create_account(args.balance, args.currency, args.name, args.leverage, args.max_leverage)
    return account_json(account), account.id


def cmd_transfer(ledger, args):
    """deposit and withdraw: the ledger method of the same name."""
    tx = getattr(ledger, args.command)(args.account_id, args.amount, args.currency, args.description, args.ref)
    return jsonable(tx), (f"transaction {tx.id}: {tx.type} {fmt(tx.amount.copy_abs())} {tx.currency},"
                       f" balance {fmt(tx.balance_after)} {tx.currency}")


def cmd_status(ledger, args):
    if not args.account_id:
        accounts = [account_json(account, transactions=False) for account in ledger.accounts()]
        rows = [a | {"balances": ", ".join(f"{b['total']} {c}" for c, b in a["balances"].items())} for a in accounts]
        return accounts, table(rows, "id status name balances", terminal_width(args), ("status",)) if accounts else \
            f"No accounts yet in {ledger.path}: create one with `python paper.py init`."
    with ledger.snapshot():
        account = ledger.account(args.account_id)
        valued = ledger.valuation(account.id, dict(args.prices), args.quote)
        rules = ledger.risk_rules(account.id)
    result, closed, width = account_json(account), f" since {account.closed_at}" if account.closed_at else "", \
        terminal_width(args)
    name = cut_text(account.name, width) if width and columns_of(account.name) > width else account.name
    text = [name, f"id          {account.id}", f"status      {account.status}{closed}",
            f"leverage    {fmt(account.leverage)} (max {fmt(account.max_leverage)})", f"created     {account.created_at}",
            "", table([{"currency": c} | b for c, b in result["balances"].items()], "currency available reserved total")
            if account.balances else "No balances."]
    result |= jsonable(valued) | {"risk": rules and {name: jsonable(getattr(rules, name)) for name in RULES} | {
        "halted_at": rules.halted_at}}
    if rules:
        text += ["", f"Risk rules: {rules_text(rules)}" + (f" (HALTED at drawdown {float(rules.halt_drawdown):.2%} on"
                                                          f" {rules.halted_at})" if rules.halted_at else "")]
    text += valued_text(result, width)
    if result["realized_pnl"]:
        text += ["\nRealised P&L (average cost, since the latest reset):",
                 table([{"symbol": s, "realised": pnl} for s, pnl in result["realized_pnl"].items()], "symbol realised")]
    if account.transactions:
        text += [f"\nLast {count(len(account.transactions), 'transaction')}:",
                 table(result["transactions"], HISTORY, width, HISTORY_NARROW)]
    return result, "\n".join(text)


def valued_text(result, width):
    """status's lines of what the holdings are worth (none when nothing is held)."""
    if not result["holdings"]:
        return []
    quote = result["quote"]
    return ([f"\nValued in {quote}:", table([{"currency": c} | held for c, held in result["holdings"].items()]
                                            + [{"currency": "equity", "value": result["equity"]}],
                                            "currency total price value time", width)]
            + [f"{c} has no price in {quote}: record {c}/{quote} prices (tick, feed, fetch) or give --price {c}=PRICE"
               for c in result["unpriced"]]
            + (["No equity is shown while a holding has no price."] if result["unpriced"] else []))


def cmd_history(ledger, args):
    """The account's transactions, written as they are read (on a terminal, laid out to fit it)."""
    transactions = (jsonable(tx) for tx in ledger.history(args.account_id, args.limit))
    first = next(transactions, None)
    if first is None:
        return [], ",".join(HISTORY.split() + ["reference_id", "trade_id"]) if args.csv else "No transactions."
    transactions = itertools.chain([first], transactions)
    if args.json:
        return None, Lines(json_list_lines(transactions))
    if args.csv:
        return None, Lines(csv_lines(transactions, HISTORY.split() + ["reference_id", "trade_id"]))
    width = terminal_width(args)
    if width:  # a terminal reads a screenful: laid out to fit it
        return None, table(list(transactions), HISTORY, width, HISTORY_NARROW)
    return None, Lines(table_lines(transactions, HISTORY))


def cmd_close(ledger, args):
    account = ledger.close_account(args.account_id)
    cancelled = [order for order in ledger.orders(account.id) if order.reason == CLOSED]
    return account_json(account) | {"cancelled": jsonable(cancelled)}, "\n".join(
        [f"account {account.id} closed"] + [f"order {order.id} cancelled ({order.side} {fmt(order.qty)} {order.symbol});"
                                            " its reserve is available again" for order in cancelled])


def cmd_verify(ledger, args):
    problems = ledger.verify(args.account_id)
    lines = [f"MISMATCH account {p['account_id']} {p['currency']}: {p['problem']}" if p["account_id"] else
             f"MISMATCH {p['problem']}" for p in problems]
    return {"ok": not problems, "mismatches": problems}, "\n".join(lines + ["FAILED" if problems else "OK"]), int(
        bool(problems))


def cmd_trade(ledger, args):
    trade = ledger.trade(args.account_id, args.side, args.symbol, args.qty, args.price, args.fee_rate, args.ref,
                         args.slippage, args.sl, args.tp, args.trail, args.risk)
    return jsonable(trade), trade_text(trade)


def cmd_fill(ledger, args):
    trade = ledger.fill(args.order_id, args.price, args.qty)
    return jsonable(trade), trade_text(trade)


def trade_text(trade):
    base, quote = trade.symbol.split("/")
    balances = {tx.currency: tx.balance_after for tx in trade.transactions}  # the last leg of each currency
    return (f"trade {trade.id}: {trade.side} {fmt(trade.qty)} {trade.symbol} @ {fmt(trade.price)}, fee {fmt(trade.fee)}"
            f" {quote}; balances {fmt(balances[base])} {base}, {fmt(balances[quote])} {quote}"
            + (f" (order {trade.order_id})" if trade.order_id else ""))


def cmd_order(ledger, args):
    """The order's id alone on stdout (`O=$(python paper.py order ...)`); a fill at once is told on stderr,
    and an order cancelled at once (it could not pay the fill) is a refusal, exit 1."""
    began = utc_now()
    order = ledger.place_order(args.account_id, args.side, args.symbol, args.qty, args.limit_price, args.fee_rate,
                               args.type, args.stop_price, args.expires, args.ref, trail=args.trail,
                               trail_amount=args.trail_amount, sl=args.sl, tp=args.tp, risk=args.risk)
    if order.status == "CANCELLED" and (order.reason or "").startswith(AT_ONCE):  # a retry of it too says so
        raise PaperError(f"order {order.id} cancelled at once: {order.reason[len(AT_ONCE):]}")
    for trade in order.fills if not args.json and order.created_at >= began else ():  # --json has them
        print(f"filled at once: {trade_text(trade)}", file=sys.stderr)
    return jsonable(order), order.id


def cmd_tick(ledger, args):
    result = ledger.tick(args.symbol, args.price, args.time, args.open, args.high, args.low, args.close,
                         args.allow_future)
    return jsonable(result), tick_text(result)


def tick_text(result):
    """A price as tick prints it, then what it did to orders: one line each."""
    bar = [result[key] for key in ("open", "high", "low", "close")]
    prices = fmt(bar[0]) if len(set(bar)) == 1 else " ".join(f"{key[0].upper()} {fmt(result[key])}" for key in
                                                               ("open", "high", "low", "close"))
    lines = [f"{result['symbol']} {prices} at {result['time']}" + ("" if result["recorded"] else
                                                                   ": recorded already, nothing new")]
    ended = [f"order {order.id} {order.status.lower()}" + (f": {order.reason}" if getattr(order, "reason", None)
                                                            else "") + "; its reserve is available again"
             for order in result["cancelled"]]
    expired = sum(order.status == "EXPIRED" for order in result["cancelled"])  # first: before any fill
    lines += ended[:expired] + [trade_text(trade) for trade in result["fills"]] + ended[expired:]
    lines += [f"order {order.id} triggered: a limit order at {fmt(order.limit_price)} from the next price on"
              for order in result["triggered"]]
    return "\n".join(lines + result["risk"])


def cmd_feed(ledger, args):
    """Record CSV files of prices, in one transaction (every row or none), or standard input as rows
    arrive, each price that fills, cancels or triggers an order printed as it happens."""
    fed, progress = empty_fed(), Progress("prices")
    if args.files == ["-"]:
        return feed_stream(ledger, args, StandardInput(), fed, progress)
    rows, said = read_prices(args.files, args.symbol), []
    with ledger.batch():
        for source, line, row in rows:
            said += fed_result(fed, fed_tick(ledger, source, line, row, args.allow_future), args.json)
            progress.update(fed["recorded"] + fed["skipped"], row[2])
    progress.clear()
    return fed, "\n".join(said + [fed_text(fed)])


def feed_stream(ledger, args, source, fed, progress):
    """feed -: rows committed as they arrive (many at once when they come fast), what they did printed once
    committed (--json: a JSON line each, and the summary last; a reader that left stops the printing, not
    the recording). A refused row stops it, the rows before it recorded. A writer in another process gets
    the lock within a second: a stream that has held it for a second leaves it free a little longer than
    SQLite's longest wait between tries (100 ms)."""
    held_since = time.monotonic()
    for group in stream_groups(price_rows(source, args.symbol), source.ready):
        said, refusal = [], None
        with ledger.batch():
            for name, line, row in group:
                try:  # a refused price writes nothing, so the ones before it are committed
                    said += fed_result(fed, fed_tick(ledger, name, line, row, args.allow_future), args.json)
                except PaperError as error:
                    refusal = error
                    break
        progress.clear()
        if said:
            args.out.send("\n".join(said))
        if refusal:
            raise refusal
        progress.update(fed["recorded"] + fed["skipped"], group[-1][2][2])
        if time.monotonic() - held_since > 1:
            time.sleep(0.12)
            held_since = time.monotonic()
    progress.clear()
    totals = {key: len(value) if isinstance(value, list) else value for key, value in fed.items()}
    return None, json_line(totals) if args.json else fed_text(fed)


def empty_fed():
    """What feed and fetch count as they record prices (fed_result adds to it, fed_text says it)."""
    return {"recorded": 0, "skipped": 0, "fills": [], "cancelled": [], "expired": [], "triggered": []}


def fed_tick(ledger, source, line, row, allow_future):
    try:
        return ledger._tick_row(row, allow_future)  # inside the feed's batch
    except PaperError as error:
        raise PaperError(f"{source}: line {line}: {error}") from None


def fed_result(fed, result, as_json):
    """What a fed price did, counted in fed: [the lines that say what it did to orders], [] if nothing."""
    fed["recorded" if result["recorded"] else "skipped"] += 1
    if not (result["fills"] or result["cancelled"] or result["triggered"] or result["risk"]):
        return []
    for order in result["cancelled"]:
        fed["expired" if order.status == "EXPIRED" else "cancelled"].append(jsonable(order))
    fed["fills"] += jsonable(result["fills"])
    fed["triggered"] += jsonable(result["triggered"])
    return [json_line(jsonable(result)) if as_json else tick_text(result).partition("\n")[2]]


def fed_text(fed):
    return (f"recorded {count(fed['recorded'], 'price')}" + (f", skipped {fed['skipped']:,} recorded already" if
                                                               fed["skipped"] else "")
            + f"; {count(len(fed['fills']), 'fill')}, {len(fed['cancelled']):,} cancelled"
            + (f", {len(fed['expired']):,} expired" if fed["expired"] else ""))


def cmd_fetch(ledger, args):
    """Record the exchange's klines: the past a step (a page) at a time, then with --follow each bar as it
    closes, until Ctrl-C (args.interrupt: the summary, then exit 130). What the bars do to orders is
    printed as feed prints it: at the end, or with --follow once committed (--json: a JSON line each, the
    summary last); waits and retries are told on stderr."""
    more = f" +{len(args.symbols) - 1}" if len(args.symbols) > 1 else ""  # the progress line fits 80 columns
    fed, said, progress = empty_fed(), [], Progress("bars", f"{args.symbols[0]}{more} {args.interval}: ")

    def each(results):
        lines = [line for result in results for line in fed_result(fed, result, args.json)]
        if lines and args.follow:
            progress.clear()
            args.out.send("\n".join(lines))  # a reader that left stops the printing, not the recording
        else:
            said.extend(lines)
        progress.update(fed["recorded"] + fed["skipped"], results[-1]["time"])

    def report(line):
        progress.clear()
        tell(line)

    totals = ledger.fetch(args.symbols, args.interval, args.start, args.end, args.base_url, args.follow, each,
                           args.interrupt, report)
    progress.clear()
    symbols = jsonable(totals["symbols"])
    fetched, names = recorded_text(totals), ", ".join(args.symbols)
    if not fetched and args.interrupt.pending:
        fetched = f"no bar of {names} recorded before the interrupt"
    elif not fetched:
        with ledger.snapshot():
            newest = {symbol: latest.time for symbol in args.symbols if (latest := ledger._latest_price(symbol))}
        times = {short_time(newest_time) for newest_time in newest.values()}
        after = times.pop() if len(times) == 1 and len(newest) == len(args.symbols) else ", ".join(
            f"{symbol} {short_time(newest_time)}" for symbol, newest_time in newest.items())
        fetched = f"no new closed bar of {names}" + (f" after the newest recorded, {after}" if newest else "")
    text = f"{fed_text(fed)}; {fetched}"
    if args.follow:
        counts = {key: len(value) if isinstance(value, list) else value for key, value in fed.items()}
        return None, json_line(counts | {"symbols": symbols}) if args.json else text
    return fed | {"symbols": symbols}, "\n".join(said + [text])


def tell(line):
    """A wait of the exchange's client and its reason (fetch, symbol --fetch, run --fetch), told on stderr."""
    print(f"paper: {line}", file=sys.stderr, flush=True)


def cmd_equity(ledger, args):
    points = ledger.equity_points(args.account_id, args.quote)
    first = next(points, None)
    if first is None:
        return [], "time,equity,drawdown" if args.csv else \
            "No equity points yet: " + ledger.no_points(args.account_id, args.quote) + "."
    points = itertools.chain([first], points)
    if args.json:  # one point a line, written as they come: a long curve costs no memory; the texts need no escaping
        return None, Lines(json_list_lines((f'{{"time": "{point["time"]}", "equity": "{fmt(point["equity"])}",'
                                            f' "drawdown": {point["drawdown"]!r}}}' for point in points), encoded=True))
    rows = ({"time": point["time"], "equity": fmt(point["equity"]), "drawdown": f"{point['drawdown']:.6f}"}
            for point in points)
    if args.csv:
        return None, Lines(csv_lines(rows, ["time", "equity", "drawdown"]))
    return None, Lines(table_lines(rows, "time equity drawdown"))


def cmd_stats(ledger, args):
    stats = ledger.stats(args.account_id, args.quote)
    lines = [stats_text(stats)]
    if stats["start"] is None:
        lines.append(f"No equity points yet: {ledger.no_points(args.account_id, args.quote)}.")
    return jsonable(stats), "\n".join(lines)


def stats_text(stats):
    """Ledger.stats as the stats table shows it: [Q] is the currency it is valued in, [T] the trades'."""
    currencies = {"[Q]": f"[{stats['quote']}]", "[T]": f"[{stats['trade_currency']}]"}
    return "\n".join(f"{label[:-3] + currencies.get(label[-3:], label[-3:]):<28}{stat_text(stats[key], how)}"
                     for key, label, how in STATS)


def cmd_chart(ledger, args):
    svg = ledger.chart(args.account_id, args.quote, percent=args.percent, log=args.log)
    if args.output == "-":
        return {"svg": svg}, svg.rstrip("\n")
    path = args.output or f"equity-{ledger.account(args.account_id, transactions=0).id[:8]}.svg"
    size = write_file(path, svg, "the chart")
    return {"chart": path, "bytes": size}, f"wrote {path} ({size:,} bytes)"


def cmd_prices(ledger, args):
    if args.delete:
        deleted = ledger.delete_prices(args.symbol, args.start)
        return {"deleted": deleted}, f"deleted {count(deleted, 'price')} of {args.symbol} at or after {args.start}"
    prices = (jsonable(price) for price in ledger.newest_prices(args.symbol, args.limit, oldest_first=args.csv))
    first = next(prices, None)
    if first is None:
        return [], ",".join(PRICE.split(", ")) if args.csv else "No prices recorded."
    prices = itertools.chain([first], prices)
    if args.json:
        return None, Lines(json_list_lines(prices))
    if args.csv:
        return None, Lines(csv_lines(prices, PRICE.split(", ")))
    return None, Lines(table_lines(prices, "time symbol open high low close"))


def cmd_cancel(ledger, args):
    order = ledger.cancel(args.order_id)
    return jsonable(order), f"order {order.id} cancelled; its reserve is available again"


def cmd_orders(ledger, args):
    orders = ledger.orders(args.account_id, args.open)
    result = jsonable(orders)
    rows = [row | {"currency": order.reserve_currency, "protects": order.entry_trade_id and f"trade {order.entry_trade_id}"}
            for row, order in zip(result, orders)]
    return result, table(rows, ORDERS, terminal_width(args), ORDERS_NARROW) if orders else "No orders."


def cmd_reset(ledger, args):
    account = ledger.reset(args.account_id, args.balance, args.currency)
    held = [f"{fmt(b.total)} {b.currency}" for b in account.balances.values() if b.total]
    return account_json(account), f"account {account.id} reset: {', '.join(held) or 'it holds nothing'}"


def cmd_import(ledger, args):
    import csv
    import hashlib
    content, text = read_text(args.file)
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        if next(rows, None) != ["type", "amount", "currency", "description", "ref"]:
            raise PaperError(f"{args.file}: the first line must be type,amount,currency,description,ref")
        # A row without a ref is keyed by the file's content and its line: the same file twice records it once.
        recorded, skipped = ledger.import_rows(args.account_id, rows, source=hashlib.sha256(content).hexdigest()[:16])
    except csv.Error as error:
        raise PaperError(f"{args.file}: line {rows.line_num}: {error}") from None
    return {"recorded": recorded, "skipped": skipped}, f"recorded {count(recorded, 'transaction')}" + (
        f", skipped {skipped} already recorded" if skipped else "")


def cmd_risk(ledger, args):
    """Set the account's rules (then show them), --clear them, --resume after a halt, list --events, or
    show the rules, the halt state and the latest events."""
    given = {name: getattr(args, name) for name in RULES if getattr(args, name) not in (None, False)}
    if args.clear:
        ledger.clear_risk(args.account_id)
    elif args.resume:
        ledger.resume(args.account_id)
    elif given:
        ledger.set_risk(args.account_id, **given)
    events = ledger.risk_events(args.account_id, None if args.events else 10)
    if args.events:
        return events, table(events, "time rule action symbol detail", terminal_width(args), ("symbol", "rule")) \
            if events else "No risk events."
    rules, account = ledger.risk_rules(args.account_id), ledger.account(args.account_id, 0)
    result = {"account_id": account.id, "rules": rules and {name: jsonable(getattr(rules, name)) for name in RULES},
              "halted_at": rules and rules.halted_at, "events": events}
    text = [f"Risk rules of {account.name} ({account.id[:8]}): {rules_text(rules) if rules else 'none'}",
            "state: " + (f"HALTED at drawdown {float(rules.halt_drawdown):.2%} on {rules.halted_at}; risk --resume to"
                         " trade again" if rules and rules.halted_at else "trading")]
    if events:
        text += ["", "Latest events:", table(events, "time rule action symbol detail", terminal_width(args),
                                            ("symbol", "rule"))]
    return result, "\n".join(text)


def cmd_symbol(ledger, args):
    """Record symbols' exchange rules (given, or --fetch'ed from the exchange), --clear them, or show them."""
    given = {name: getattr(args, name) for name in SYMBOL_RULES if getattr(args, name) is not None}
    if args.fetch:
        ledger.fetch_symbol_rules(args.symbols, args.base_url, tell)
    for symbol in args.symbols:
        if args.clear:
            ledger.clear_symbol(symbol)
        elif given:
            ledger.set_symbol(symbol, **given)
    found = {symbol: ledger.symbol_rules(symbol) for symbol in args.symbols}
    return {symbol: jsonable(rules) for symbol, rules in found.items()}, "\n".join(
        f"{symbol}: " + (", ".join(f"{name.replace('_', ' ')} {fmt(value)}" for name, value in rules.items() if value
                                   is not None) or "no rule" if rules else "no exchange rules recorded")
        for symbol, rules in found.items())


def cmd_backup(ledger, args):
    size = ledger.backup(args.to)
    return {"database": ledger.path, "backup": args.to, "bytes": size}, f"copied {ledger.path} to {args.to}" \
                                                                         f" ({size:,} bytes)"


TRIPS = "symbol entry_time exit_time qty entry_price exit_price pnl return_% duration fills"
TRIPS_NARROW = ("fills", "duration", "exit_price", "entry_price")  # left out in turn on a narrow terminal


def cmd_trades(ledger, args):
    trips = jsonable(ledger.round_trips(args.account_id, args.symbol))
    if args.json:
        return trips, None
    if args.csv:
        return trips, csv_text([trip | {"return": ratio_text(trip["return"], ".6f")} for trip in trips],
                               ["symbol", "status", *TRIPS.replace("return_%", "return").split()[1:]])
    rows = [trip | {"exit_time": "open" if trip["status"] == "OPEN" else trip["exit_time"],
                    "exit_price": trip["exit_price"] or "n/a", "pnl": trip["pnl"] or "n/a",
                    "return_%": ratio_text(trip["return"] and trip["return"] * 100, ".2f"),
                    "duration": stat_text(trip["duration"], "span")} for trip in trips]
    return trips, table(rows, TRIPS, terminal_width(args), TRIPS_NARROW) if rows else \
        "No round trips yet: one runs from a buy that opens a position to the sale that closes it."


def cmd_report(ledger, args):
    if args.output == "-":
        page = ledger.report(args.account_id, args.quote)
        return {"html": page}, page.rstrip("\n")
    path = args.output or f"report-{ledger.account(args.account_id, transactions=0).id[:8]}.html"
    size = write_report(ledger, args.account_id, path, args.quote)
    return {"report": path, "bytes": size}, f"wrote {path} ({size:,} bytes)"


def cmd_backtest(ledger, args):
    """backtest (ledger is None: each run makes its own database): one run, or a sweep when a --param
    gives several values."""
    strategy = load_strategy(args.strategy)
    grid, several = to_grid(strategy, args.params)
    options = {"symbol": args.symbol, "balance": args.balance, "currency": args.currency,
               "fee_rate": args.fee_rate, "slippage": args.slippage, "on_close": args.on_close}
    if several:
        return cmd_sweep(strategy, grid, options, args)
    for flag, given in (("--constraint", args.constraint), ("--maximize", args.maximize), ("--jobs", args.jobs),
                        ("--csv", args.csv)):
        if given:
            raise UsageError(f"{flag} is for a sweep: give a --param several values (FROM:TO:STEP or A,B,C)")
    lines = []

    def finish(ledger, account_id, stats):  # before the database closes (a temporary one is removed)
        lines.append(stats_text(stats))
        if args.chart:
            lines.append(cmd_chart(ledger, argparse.Namespace(account_id=account_id, quote=None, output=args.chart,
                                                              percent=False, log=False))[1])
        if args.report:
            lines.append(f"wrote {args.report} ({write_report(ledger, account_id, args.report):,} bytes)")
    result = backtest(strategy, args.data, {name: values[0] for name, values in grid.items()}, db=args.db,
                      finish=finish, **options)
    lines += [f"account {result['account_id']} in {args.db}"] if args.db else []
    return jsonable(result), "\n".join(lines)


def cmd_sweep(strategy, grid, options, args):
    """backtest with several values of a param: one row a combination, best first."""
    for flag, given in (("--db", args.db), ("--chart", args.chart), ("--report", getattr(args, "report", None))):
        if given:
            raise UsageError(f"{flag} is for one backtest: a sweep keeps no database")
    maximize = args.maximize or "sharpe"
    results = sweep(strategy, args.data, grid, args.constraint, maximize, jobs=args.jobs, **options)
    hows = {key: how for key, _, how in STATS}
    keys = ["return", "max_drawdown", "sharpe", "trades", "win_rate"]
    keys += [maximize] if maximize not in keys else []
    names = [name for name, values in grid.items() if len(values) > 1]  # the params it sweeps
    if args.csv:
        return jsonable(results), csv_text([jsonable(r["params"] | {key: r["stats"][key] for key in keys})
                                            for r in results], names + keys)
    labels = [key + ("_[%]" if hows[key] == "percent" else "") for key in keys]
    rows = [{f"={name}": str(value) for name, value in r["params"].items()} | {
        label: stat_text(r["stats"][key], hows[key]) for key, label in zip(keys, labels)} for r in results]
    return jsonable(results), table(rows, " ".join([f"={name}" for name in names] + labels))  # params as typed


def cmd_run(ledger, args):
    """run: a strategy live on an account, bar by bar from --feed (a file, or - for standard input, row by
    row); each bar's fills are printed once they are committed."""
    strategy = load_strategy(args.strategy)
    grid, several = to_grid(strategy, args.params)
    if several:
        raise UsageError("run takes one value for each --param (a sweep is backtest's)")
    bars = read_later([args.feed], args.symbol) if args.feed else live_bars(ledger, args.fetch, args.interval,
                                                                             args.base_url, tell)
    so_far, account_id = {"bars": 0, "fills": 0}, ledger.account(args.account_id, 0).id
    args.interrupt.tally = lambda: json_line({"account_id": account_id, **so_far, "interrupted": True}) if args.json \
        else (f"{strategy.name} on account {account_id}: handled {count(so_far['bars'], 'bar')} before the interrupt;"
              f" {count(so_far['fills'], 'fill')}")

    def each(trades, cancelled):
        so_far["bars"], so_far["fills"] = so_far["bars"] + 1, so_far["fills"] + len(trades)
        try:
            for trade in trades:
                print(json_line(jsonable(trade)) if args.json else trade_text(trade), flush=True)
            for order in cancelled:
                print(json_line(jsonable(order)) if args.json else f"order {order.id} {order.status.lower()}"
                      + (f": {order.reason}" if order.reason else "") + "; its reserve is available again", flush=True)
        except BrokenPipeError:  # `paper.py run ... | head`: nothing can be printed any more, so it stops
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise PaperError("stdout was closed (its reader left): the run stopped; every bar it handled is"
                             " recorded") from None
    ran = run_strategy(ledger, strategy, args.account_id, bars, {name: values[0] for name, values in grid.items()},
                        fee_rate=args.fee_rate, slippage=args.slippage, on_close=args.on_close, each=each,
                        allow_future=args.allow_future)
    before = f", after {count(ran['handled_before'], 'bar')} before" if ran["handled_before"] else ""
    history = f"; skipped {count(ran['history'], 'bar')} recorded before it (an order now would fill at a later" \
              " price)" if ran["history"] else ""
    if args.json:  # JSON Lines, as the fills and cancels above: the summary is the last line
        return None, json_line(jsonable(ran))
    return ran, (f"{strategy.name} on account {ran['account_id']}: handled {count(ran['bars'], 'bar')}{before};"
                  f" {count(ran['fills'], 'fill')}{history}")


def argument_type(check, *args):
    """An argparse type= from a to_* check: its refusal becomes a usage error (exit 2)."""
    def convert(text):
        try:
            return check(text, *args)
        except PaperError as error:
            raise argparse.ArgumentTypeError(error) from None
    return convert


def formatter(prog):
    """argparse's help layout without the shutil import (2.5 ms a run) it makes only to learn the width."""
    columns = os.environ.get("COLUMNS", "")
    return argparse.HelpFormatter(prog, width=int(columns) - 2 if columns.isdigit() and int(columns) > 40 else 78)


ID = "a UUID or a unique prefix of 4+ characters"
OPTIONS = {  # option: its argparse keywords
    "account-id": {"type": argument_type(to_id), "help": ID},
    "order-id": {"type": argument_type(to_id), "help": ID},
    "balance": {"type": argument_type(to_amount, "balance", True), "default": Decimal(5000), "help": "default 5000, 0 for none"},
    "currency": {"type": argument_type(to_currency), "default": "USDT", "help": "the account's own currency, what"
                 " it is valued in (default USDT)"},
    "own-currency": {"type": argument_type(to_currency), "dest": "currency", "help": "default: the account's own"},
    "name": {"type": argument_type(to_text, "name"), "default": "Paper Trading Account"},
    "leverage": {"type": argument_type(to_amount, "leverage"), "default": Decimal(1),
                 "help": "a stored setting: trades are spot, cash only (default 1.0)"},
    "max-leverage": {"type": argument_type(to_amount, "max leverage"), "default": Decimal(3), "help": "default 3.0"},
    "amount": {"type": argument_type(to_amount), "help": "like 250.50: up to 18 decimals"},
    "description": {"type": argument_type(to_text, "description")},
    "ref": {"type": argument_type(to_ref), "help": "idempotency key: a retry with the same ref records nothing new"},
    "side": {"type": str.lower, "choices": ("buy", "sell")},
    "symbol": {"type": argument_type(to_symbol), "help": "BASE/QUOTE, like BTC/USDT"},
    "qty": {"type": argument_type(to_amount, "qty"), "help": "quantity of BASE (fill: default all that is left)"},
    "price": {"type": argument_type(to_amount, "price"), "help": "in QUOTE (trade: default the latest recorded close;"
              " fill: default the order's limit; tick: a price, not a bar)"},
    "limit-price": {"type": argument_type(to_amount, "limit price")},
    "fee-rate": {"type": argument_type(to_fee_rate), "default": FEE_RATE,
                 "help": "the fee as a fraction of the value traded, paid in QUOTE (default 0.001, i.e. 0.1%%)"},
    "prices": {"type": argument_type(to_price), "action": "append", "default": [], "dest": "prices", "metavar": "CURRENCY=PRICE",
               "help": "value the account: a price in the quote currency for each currency held"},
    "quote": {"type": argument_type(to_currency), "help": "the currency to value in (default: the account's own)"},
    "open": {"action": "store_true", "help": "only open orders"},
    "limit": {"type": argument_type(to_limit), "help": "at most N rows"},
    "csv": {"action": "store_true", "help": "CSV: a header line, then one row each"},
    "file": {"help": "CSV with the header type,amount,currency,description,ref"},
    "prices-file": {"metavar": "FILE", "nargs": "+", "help": "CSV files of prices (.csv, .gz or"
                    " a .zip of one CSV), merged by market time; - reads standard input as rows arrive"},
    "type": {"choices": ORDER_TYPES, "default": "limit", "help": "default limit"},
    "sl": {"type": argument_type(to_amount, "stop loss"), "metavar": "PRICE", "help": "a buy: once it fills, a stop"
           " loss at PRICE on what it bought (with --tp: an oco)"},
    "tp": {"type": argument_type(to_amount, "take profit"), "metavar": "PRICE", "help": "a buy: once it fills, a take"
           " profit at PRICE on what it bought"},
    "trail": {"type": argument_type(to_share, "trail"), "metavar": "SHARE", "help": "a trailing stop's distance"
              " (3%% or 0.03); on a buy of another type, a trailing stop placed on what it bought"},
    "trail-amount": {"type": argument_type(to_amount, "trail amount"), "metavar": "AMOUNT",
                     "help": "a trailing stop's distance in QUOTE, instead of --trail"},
    "risk": {"type": argument_type(to_share, "risk"), "metavar": "SHARE", "help": "size a buy with --sl instead of"
             " --qty: lose this share of equity (1%% or 0.01) if the stop loss fills"},
    "stop-price": {"type": argument_type(to_amount, "stop price"), "help": "stop and stop-limit: the price that sets it off;"
                   " oco: the stop-loss leg"},
    "expires": {"type": argument_type(to_time), "help": "market time: still open when a price at or after it is recorded,"
                " it expires"},
    "time": {"type": argument_type(to_time), "help": "market time: ISO-8601 (no zone is UTC) or epoch seconds; default now"},
    "open-price": {"type": argument_type(to_amount, "open"), "dest": "open", "metavar": "OPEN"},
    "high": {"type": argument_type(to_amount, "high")},
    "low": {"type": argument_type(to_amount, "low")},
    "close": {"type": argument_type(to_amount, "close")},
    "slippage": {"type": argument_type(to_fee_rate, "slippage"), "default": ZERO,
                 "help": "a buy pays price x (1 + RATE), a sell gets price x (1 - RATE), to 8 places (default 0)"},
    "feed-symbol": {"type": argument_type(to_symbol), "dest": "symbol", "help": "for a file without a symbol column"},
    "allow-future": {"action": "store_true", "help": "take prices more than 24 hours after the clock (a simulated"
                     " timeline)"},
    "prices-symbol": {"type": argument_type(to_symbol), "dest": "symbol", "help": "only this symbol"},
    "delete": {"action": "store_true", "help": "remove the prices of --symbol at or after --from (refused while"
               " a trade, transaction, order or account refers to one)"},
    "from": {"type": argument_type(to_time), "dest": "start", "metavar": "TIME", "help": "with --delete: the first"
             " market time to remove"},
    "wide": {"action": "store_true", "help": "every column, however wide the terminal"},
    **{name: {"type": argument_type(to_rule_share, name.replace("-", " ")), "dest": name.replace("-", "_"),
              "metavar": "SHARE", "help": help + " (none: no such rule)"} for name, help in (
        ("max-position", "no buy makes one symbol more than this share of equity (25%% or 0.25)"),
        ("stop-loss", "a stop at entry price x (1 - SHARE) for every buy that gives none"),
        ("take-profit", "a take-profit at entry price x (1 + SHARE) for every buy that gives none"),
        ("trailing-stop", "a trailing stop SHARE below the market for every buy that gives none"),
        ("risk-per-trade", "size buys with a stop loss and no qty to lose this share of equity at the stop"),
        ("max-drawdown", "halt the account (cancel open buys, refuse new ones) this far below its peak"))},
    "flatten": {"action": "store_true", "help": "with --max-drawdown: a halt also sells every holding at the next"
                " price"},
    "cooldown": {"type": argument_type(to_count, "cooldown"), "metavar": "N", "help": "after a stop fills on a"
                 " symbol, refuse buys of it until N more of its prices are recorded"},
    "max-open-positions": {"type": argument_type(to_count, "max open positions"), "metavar": "N",
                           "help": "refuse a buy that opens a position in a new symbol while N are held"},
    "clear": {"action": "store_true", "help": "remove every rule"},
    "resume": {"action": "store_true", "help": "lift a drawdown halt: the peak counts from now"},
    "events": {"action": "store_true", "help": "list every refusal and action of the rules, newest first"},
    "symbol-names": {"type": argument_type(to_symbol), "metavar": "SYMBOL", "nargs": "+", "help": "BASE/QUOTE"},
    "fetch": {"action": "store_true", "help": "read the rules from the exchange (GET /api/v3/exchangeInfo)"},
    "clear-symbol": {"action": "store_true", "dest": "clear", "help": "forget the symbols' rules"},
    **{name: {"type": argument_type(to_amount, name.replace("-", " ")), "dest": name.replace("-", "_"),
              "help": help} for name, help in (
        ("tick-size", "prices must be multiples of it (PRICE_FILTER)"),
        ("step-size", "quantities must be multiples of it (LOT_SIZE)"), ("min-qty", "the least qty (LOT_SIZE)"),
        ("min-notional", "the least qty x price (NOTIONAL)"))},
    "json": {"action": "store_true", "help": "print one JSON document"},
    "to": {"type": argument_type(to_path), "help": "the new file (an existing one is never overwritten)"},
    "output": {"type": argument_type(to_path), "help": "the SVG file (default equity-<id's first 8>.svg; - for stdout)"},
    "report-output": {"type": argument_type(to_path), "dest": "output", "metavar": "OUTPUT",
                      "help": "the HTML file (default report-<id's first 8>.html; - for stdout)"},
    "percent": {"action": "store_true", "help": "the return in %% instead of money"},
    "log": {"action": "store_true", "help": "a log scale for the equity (or the return)"},
    "db": {"type": argument_type(to_path), "help": "database file (default $PAPER_DB, else data/paper.db)"},
    "fetch-symbols": {"nargs": "+", "type": argument_type(to_symbol), "metavar": "SYMBOL",
                      "help": "BASE/QUOTE, like BTC/USDT (the exchange's BTCUSDT); several are merged by market time"},
    "interval": {"type": argument_type(to_interval),
                 "help": f"the bars' length, one of Binance's: {' '.join(INTERVALS)}"},
    "start": {"type": argument_type(to_time), "help": "market time of the first bar (default: after each symbol's"
              " newest recorded price, else its last 1,000 bars; never before that price)"},
    "end": {"type": argument_type(to_time), "help": "bars that open before this market time (default now)"},
    "follow": {"action": "store_true", "help": "once caught up, record each new bar as it closes, until Ctrl-C"},
    "base-url": {"type": argument_type(to_base_url), "help": f"the exchange's API (default $PAPER_MARKET_URL, else"
                 f" {MARKET_URL})"},
    "strategy": {"metavar": "STRATEGY.py", "help": "a Python file with on_bar(ctx, bar), and PARAMS and init if it"
                 " likes (README, Strategies)"},
    "data": {"nargs": "+", "metavar": "FILE", "help": "price files as feed reads them"},
    "backtest-balance": {"type": argument_type(to_amount, "balance"), "default": Decimal(10000), "dest": "balance",
                         "help": "the fresh account's balance (default 10000)"},
    "param": {"action": "append", "default": [], "dest": "params", "metavar": "NAME=VALUE",
              "help": "a param of the strategy, of its default's type; backtest: FROM:TO:STEP or A,B,C sweep it"},
    "on-close": {"action": "store_true", "help": "a market order fills at the close of its bar, not at the next"
                 " bar's open"},
    "keep-db": {"type": argument_type(to_path), "dest": "db", "metavar": "FILE",
                "help": "keep the database in this new file (default: a temporary one)"},
    "chart-file": {"type": argument_type(to_path), "dest": "chart", "metavar": "FILE",
                   "help": "draw the equity chart to this SVG file"},
    "report": {"type": argument_type(to_path), "metavar": "FILE", "help": "write the HTML report to this file"},
    "constraint": {"help": "a sweep: only the combinations for which this expression holds, like 'fast < slow'"},
    "maximize": {"choices": MAXIMIZE, "metavar": "STAT", "help": "a sweep: the statistic that ranks the combinations,"
                 f" best first: {', '.join(MAXIMIZE)} (default sharpe)"},
    "jobs": {"type": argument_type(to_jobs), "help": "a sweep: worker processes (default the number of CPUs)"},
    "run-feed": {"dest": "feed", "metavar": "FILE", "help": "the bars: a price file as feed reads it, or - for"
                 " standard input, row by row"},
    "run-fetch": {"dest": "fetch", "nargs": "+", "type": argument_type(to_symbol), "metavar": "SYMBOL",
                  "help": "the bars: the exchange's, as each closes (with --interval), from after each symbol's newest"
                          " recorded price, or from now"},
}
FLAGS = {"prices": "--price", "file": "file", "prices-file": "files", "open-price": "--open", "own-currency": "--currency",
         "feed-symbol": "--symbol", "prices-symbol": "--symbol", "symbol-names": "symbols", "clear-symbol": "--clear",  # are not the flags
         "report-output": "--output", "strategy": "strategy", "backtest-balance": "--balance", "keep-db": "--db",
         "chart-file": "--chart", "run-feed": "--feed", "run-fetch": "--fetch", "fetch-symbols": "symbols"}
ADDING_FLAGS = {FLAGS.get(name, "--" + name) for name, option in OPTIONS.items() if option.get("action") == "append"}
COMMANDS = {  # name: (what it does, its options, ! marking a required one, its function)
    "init": ("open a new account and print its id", "balance currency name leverage max-leverage", cmd_init),
    "deposit": ("add money to an account", "account-id! amount! own-currency description ref", cmd_transfer),
    "withdraw": ("take money out of an account", "account-id! amount! own-currency description ref", cmd_transfer),
    "status": ("show one account, or list them all", "account-id prices quote wide", cmd_status),
    "history": ("list an account's transactions, newest first", "account-id! limit csv wide", cmd_history),
    "close": ("close an account (it keeps its history)", "account-id!", cmd_close),
    "verify": ("check every balance against the log and open orders", "account-id", cmd_verify),
    "trade": ("buy or sell now, at a price you give or the latest recorded one",
              "account-id! side! symbol! qty price fee-rate ref slippage sl tp trail risk", cmd_trade),
    "order": ("place an order that rests until the market reaches it, reserving its funds; prints its id",
              "account-id! side! symbol! qty type limit-price stop-price trail trail-amount fee-rate expires ref sl tp"
              " risk", cmd_order),
    "fill": ("execute an order by hand, whole or in part", "order-id! price qty", cmd_fill),
    "cancel": ("cancel an order and release its reserve", "order-id!", cmd_cancel),
    "tick": ("record a price (or a bar) and fill the orders it reaches", "symbol! price time open-price high low"
             " close allow-future", cmd_tick),
    "feed": ("record a CSV of prices and fill the orders they reach", "prices-file feed-symbol allow-future",
             cmd_feed),
    "fetch": ("record the exchange's bars (Binance's klines) of symbols, and with --follow each new one",
              "fetch-symbols interval! start end follow base-url", cmd_fetch),
    "prices": ("list recorded prices, newest first (--csv: oldest first, a file feed reads), or --delete some", "prices-symbol limit csv delete from",
               cmd_prices),
    "equity": ("an account's equity at each recorded price, with its drawdown", "account-id! quote csv", cmd_equity),
    "stats": ("how an account did: return, drawdown, Sharpe and the rest", "account-id! quote", cmd_stats),
    "chart": ("draw an account's equity, drawdown, prices and round trips as an SVG file",
              "account-id! quote output percent log", cmd_chart),
    "orders": ("list an account's orders, newest first", "account-id! open wide", cmd_orders),
    "reset": ("start an account over, keeping its history", "account-id! balance own-currency", cmd_reset),
    "import": ("record a CSV file of deposits and withdrawals: every row or none", "account-id! file", cmd_import),
    "backup": ("copy the database, consistent even while others write, to a new file", "to!", cmd_backup),
    "risk": ("set, show or clear an account's risk rules; resume after a halt; list what they did",
             "account-id! max-position stop-loss take-profit trailing-stop risk-per-trade max-drawdown flatten"
             " cooldown max-open-positions clear resume events wide", cmd_risk),
    "symbol": ("record or show symbols' exchange rules: tick size, step size, min qty, min notional",
               "symbol-names tick-size step-size min-qty min-notional fetch base-url clear-symbol", cmd_symbol),
    "trades": ("list an account's round trips (flat to flat) with their P&L", "account-id! prices-symbol csv wide",
               cmd_trades),
    "report": ("write an account's results as one self-contained HTML page", "account-id! quote report-output",
               cmd_report),
    "backtest": ("run a strategy over price files on a fresh account and print its stats; a sweep when a --param"
                 " gives several values", "strategy data! feed-symbol backtest-balance currency fee-rate slippage"
                 " param on-close keep-db chart-file report constraint maximize jobs csv", cmd_backtest),
    "run": ("run a strategy live on an account, each bar as it comes; restarted, it resumes after the last bar it"
            " handled", "strategy account-id! run-feed run-fetch interval base-url feed-symbol param fee-rate slippage"
            " on-close allow-future", cmd_run),
}
OWN_DATABASE = ("backtest",)  # these make databases of their own: no ledger is opened for them, no --db default
READS = ("status", "history", "verify", "orders", "backup", "prices", "equity", "stats", "chart", "trades",
         "report")  # these open the database read-only
PARSER = {"allow_abbrev": False, "formatter_class": formatter}


def build_parser(command=None):
    """The parser of a known command alone (all a run needs, and cheaper), or of every command."""
    if command:
        about, options, _ = COMMANDS[command]
        return add_options(argparse.ArgumentParser(prog=f"paper {command}", description=about, **PARSER),
                           command, options)
    parser = argparse.ArgumentParser(prog="paper", description="A paper trading account kept in SQLite.", **PARSER)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (about, options, _) in COMMANDS.items():
        add_options(commands.add_parser(name, help=about, description=about, **PARSER), name, options)
    return parser


def add_options(parser, command, options):
    """command's options, as COMMANDS lists them (! marks a required one), plus --json and --db."""
    parser.set_defaults(command=command)
    for option in options.split() + ["json"] + ([] if command in OWN_DATABASE else ["db"]):
        name = option.rstrip("!")
        parser.add_argument(FLAGS.get(name, "--" + name), **OPTIONS[name],
                            **{"required": True} if option.endswith("!") else {})
    return parser


class Output:
    """stdout for a command's result, written once the command is done (a refusal prints nothing there),
    line by line for a long one (Lines). A reader that leaves (`paper.py history | head`) ends it quietly;
    another failure is kept in failed, to be reported once."""

    def __init__(self):
        self.failed = None

    def send(self, output):
        chunks = output.chunks() if isinstance(output, Lines) else [output + "\n"]
        for chunk in chunks:
            if self.failed is not None:
                return
            try:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            except BrokenPipeError:  # the reader left, nothing to say
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                self.failed = False
            except (OSError, ValueError, AttributeError) as error:
                self.failed = error


class Lines:
    """A long result as lines made while they are written (a curve of a million points costs no memory):
    iterables of lines, one after the other."""

    def __init__(self, *parts):
        self.parts = parts

    def chunks(self, size=2000):
        lines = iter(itertools.chain.from_iterable([part] if isinstance(part, str) else part for part in self.parts))
        while True:
            chunk = list(itertools.islice(lines, size))
            if not chunk:
                return
            yield "\n".join(chunk) + "\n"


@contextlib.contextmanager
def english_argparse():
    """argparse without its gettext lookups while paper parses, then as it was: paper speaks English,
    Python ships no translations of argparse, and the first lookup imports locale (0.8 ms, 3% of a run)."""
    translate, argparse._ = argparse._, str
    try:
        yield
    finally:
        argparse._ = translate


def check_usage(args, argv):
    """The usage rules argparse cannot state, refused as usage errors (exit 2): a flag given twice
    (but --price, which adds up), the command's own rules (USAGE), PAPER_BUSY_TIMEOUT."""
    flags = [arg.split("=")[0] for arg in argv if arg.startswith("--")]
    repeated = [flag for flag in flags if flags.count(flag) > 1 and flag not in ADDING_FLAGS]
    if repeated:
        raise PaperError(f"{repeated[0]} is given more than once")
    USAGE.get(args.command, lambda args: None)(args)
    busy_timeout()


def check_prices_usage(args):
    if args.delete and not (args.symbol and args.start):
        raise PaperError("--delete removes the prices of one symbol from a time on: give --symbol and --from")
    if args.start and not args.delete:
        raise PaperError("--from goes with --delete")
    if args.delete and (args.limit or args.csv):
        raise PaperError("--delete lists nothing: no --limit or --csv")


def check_status_usage(args):
    if (args.prices or args.quote) and not args.account_id:
        raise PaperError("--price and --quote value one account: give --account-id")
    if len(dict(args.prices)) < len(args.prices):
        raise PaperError("--price gives the same currency twice")


def check_order_usage(args):
    trailing = args.type == "trailing-stop"
    if args.type in ORDER_TYPES:  # a type argparse does not know is its own error
        order = to_order(args.side, args.symbol, args.qty or 1, args.limit_price, args.fee_rate, args.type,
                         args.stop_price, args.trail if trailing else None, args.trail_amount)
        to_protection(order.side, args.sl, args.tp, None if trailing else args.trail, args.risk, args.qty)
        if order.limit_price or order.stop_price:
            at_entry(order.limit_price or order.stop_price, args.sl, args.tp)


def check_trade_usage(args):
    to_protection(args.side, args.sl, args.tp, args.trail, args.risk, args.qty)
    if args.price and not args.slippage:
        at_entry(args.price, args.sl, args.tp)


def check_symbol_usage(args):
    given = [name for name in SYMBOL_RULES if getattr(args, name) is not None]
    if sum(map(bool, (given, args.fetch, args.clear))) > 1:
        raise PaperError("give rules to record, --fetch or --clear: one of them")
    if args.base_url and not args.fetch:
        raise PaperError("--base-url is where --fetch reads from: give --fetch")
    check_market_usage(args.symbols, args.base_url if args.fetch else "")


def check_risk_usage(args):
    changes = [name for name in RULES if getattr(args, name) not in (None, False)]
    if sum(map(bool, (changes, args.clear, args.resume, args.events))) > 1:
        raise PaperError("give rules to set, --clear, --resume or --events: one of them")
    given = {name: getattr(args, name) not in (None, "none") for name in ("stop_loss", "trailing_stop", "take_profit")}
    if given["trailing_stop"] and (given["stop_loss"] or given["take_profit"]):
        raise PaperError("a trailing stop protects an entry alone: give it without --stop-loss and --take-profit")


def check_fetch_usage(args):
    check_market_usage(args.symbols, args.base_url)
    if args.follow and args.end:
        raise PaperError("--follow goes on with no end: give --end or --follow, not both")
    if args.start and args.end and args.end <= args.start:
        raise PaperError(f"--end {args.end} is not after --start {args.start}")


def check_market_usage(symbols, base_url=None):
    """fetch's, symbol's and run --fetch's rules: each symbol once; without --base-url (base_url None), a
    PAPER_MARKET_URL that is an address (base_url "": none is read)."""
    repeated = [symbol for symbol in symbols if symbols.count(symbol) > 1]
    if repeated:
        raise PaperError(f"{repeated[0]} is given twice")
    if base_url is None and os.environ.get("PAPER_MARKET_URL"):
        try:
            to_base_url(os.environ["PAPER_MARKET_URL"])
        except PaperError as error:
            raise PaperError(f"PAPER_MARKET_URL: {error}") from None


def check_run_usage(args):
    if bool(args.feed) == bool(args.fetch):
        raise PaperError("run needs the bars from one source: --feed FILE (or - for standard input), or --fetch SYMBOL"
                         " ... --interval I")
    if args.fetch and not args.interval:
        raise PaperError("--fetch takes --interval: the exchange's bars of that length")
    if not args.fetch and (args.interval or args.base_url):
        raise PaperError("--interval and --base-url are for --fetch (the bars of a --feed are as long as they are)")
    if args.fetch and args.symbol:
        raise PaperError("--symbol names the symbol of a file without a symbol column: --fetch names its own")
    if args.fetch:
        check_market_usage(args.fetch, args.base_url)


USAGE = {"init": lambda args: to_leverage(args.leverage, args.max_leverage), "status": check_status_usage,
         "risk": check_risk_usage, "symbol": check_symbol_usage, "run": check_run_usage, "prices": check_prices_usage,
         "order": check_order_usage, "trade": check_trade_usage, "fetch": check_fetch_usage,
         "tick": lambda args: to_bar(args.price, args.open, args.high, args.low, args.close)}


def busy_timeout():
    """PAPER_BUSY_TIMEOUT: how long a writer waits for the lock, in milliseconds (default 10000)."""
    timeout = os.environ.get("PAPER_BUSY_TIMEOUT", "10000")
    if not timeout.isascii() or not timeout.isdigit() or int(timeout) >= 2**31:
        raise PaperError(f"PAPER_BUSY_TIMEOUT must be a whole number of milliseconds up to 2147483647, not"
                         f" {timeout!r}")
    return int(timeout)


class Interrupt:
    """Ctrl-C during a command. Until a change is committed it stops the process at once: SQLite drops
    a transaction in progress exactly as it does a killed process's, so nothing of it is recorded.
    Once a change is committed, it waits until the command has printed what it did, so that no
    message claims a roll-back that did not happen. A stream (`feed -`, `run`: each price or bar its own
    commit) stops at once: what it has committed stays. (Exiting at once also means the interrupt never
    lands, as an exception would, inside a callback that Python ignores.) A run in steps (fetch: each step
    its own transaction) ends between two steps, so that it can say what it recorded; while it waits (for
    the exchange, or for the next bar: `waiting`), at once, by a KeyboardInterrupt that it catches
    (record_klines)."""

    def __init__(self, stream=False, unit="price", steps=False):
        self.ledger, self.done, self.pending, self.stream, self.unit = None, False, False, stream, unit
        self.steps, self.waiting, self.tally = steps, False, None  # tally: a stream's summary so far (run)

    def __call__(self, signum, frame):
        if self.steps:
            self.pending = True
            if self.waiting:
                raise KeyboardInterrupt
            return
        try:
            changing = self.ledger.db.in_transaction
            committed = self.ledger.db.total_changes and not changing
        except (AttributeError, sqlite3.Error):  # no ledger open yet, or closed already
            changing = committed = False
        if (self.done or committed) and not self.stream:
            self.pending = True
            return
        if self.stream:
            message = f"the {self.unit}s being recorded now are not; every one committed before them is" \
                if changing else f"every {self.unit} read is recorded"
            with contextlib.suppress(Exception):  # what it did, as its end would say it (stdout gone: not)
                if self.tally:
                    sys.stdout.write(self.tally() + "\n")
                    sys.stdout.flush()
        else:
            message = "nothing was recorded"
        sys.stderr.write(("\r\033[K" if Progress.showing else "") + f"paper: error: interrupted; {message}\n")
        sys.stderr.flush()
        os._exit(130)

    @contextlib.contextmanager
    def installed(self):
        try:
            if _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN:  # ignored by whoever started paper
                raise ValueError
            before = _signal.signal(_signal.SIGINT, self)
        except ValueError:  # not the main thread, or ignored: Ctrl-C is not ours to handle
            yield
            return
        try:
            yield
        finally:  # once a command has run, Ctrl-C is too late to change anything (and _stop would wrongly say
            # that nothing was done): the script ignores it from here to its exit
            _signal.signal(_signal.SIGINT, _signal.SIG_IGN if before is _stop else before)


def run_command(args, interrupt, out):
    """Open the ledger, run args.command and send its output to out: its exit code. A refusal is one
    line on stderr."""
    path = args.db or os.environ.get("PAPER_DB") or DEFAULT_DB
    if args.command in OWN_DATABASE:
        path = args.db or "the temporary database"
    try:
        with Ledger(path, create=args.command == "init", read_only=args.command in READS and not (
                args.command == "prices" and args.delete), busy_timeout_ms=busy_timeout()) \
                if args.command not in OWN_DATABASE else contextlib.nullcontext() as interrupt.ledger:
            if interrupt.ledger and interrupt.ledger.upgraded_from:
                print(f"paper: upgraded {path} from schema version {interrupt.ledger.upgraded_from} to"
                      f" {SCHEMA_VERSION}", file=sys.stderr)
            value, text, *exit_code = COMMANDS[args.command][2](interrupt.ledger, args)
            interrupt.done = True
            out.send(json_text(value) if args.json and value is not None else text)  # a Lines result reads as it goes
            for note in interrupt.ledger.notes if interrupt.ledger else ():
                print(f"paper: note: {note}", file=sys.stderr)
        return exit_code[0] if exit_code else 0
    except NoDatabase as error:
        if args.command == "status" and not args.account_id:  # nothing yet: an empty list, saying where it looked
            out.send("[]" if args.json else f"No accounts yet in {path}: create one with `python paper.py init`.")
            return 0
        message, code = error, 1
    except (Exception, KeyboardInterrupt) as error:
        message, code = refusal_for(error, path)
    finally:
        interrupt.ledger = None
    return fail(message, code)


def refusal_for(error, path):
    """(message, exit code) for an error a command raised, its database at path; a strategy's own
    traceback goes to stderr first."""
    if isinstance(error, StrategyError):  # its traceback, then the line that names where it raised
        sys.stderr.write(error.traceback)
        return error, 1
    if isinstance(error, UsageError):
        return error, 2
    if isinstance(error, PaperError):
        return error, 1
    if isinstance(error, KeyboardInterrupt):  # only where Interrupt is not installed (another thread): rolled back
        return "interrupted; nothing was recorded", 130
    if isinstance(error, sqlite3.Error):  # outside a transaction (the ledger turns those into PaperError)
        return f"{path}: {error}", 1
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename or path}", 1
    if isinstance(error, DecimalException):
        return f"{path} holds an amount paper cannot read ({type(error).__name__}): `python paper.py verify` names it", 1
    # a last resort, so that no database content, however damaged, gives a traceback
    return f"{path}: unexpected {type(error).__name__}: {error}", 1


def fail(message, code=1):
    """paper: error: message, in the command line's words (a strategy's error as it is: it runs in Python)."""
    print(f"paper: error: {message if isinstance(message, StrategyError) else command_line_words(str(message))}",
          file=sys.stderr)
    return code


CLI_WORDS = [  # (the library's words, the command line's: its flags); fail() says a refusal in the second
    (r"create one with Ledger\(path, create=True\)", "create one with `python paper.py init`"),
    (r" ms \(busy_timeout_ms\)", " ms (PAPER_BUSY_TIMEOUT)"), (r"fills at \(price=\)", "fills at (--price)"), (r"\(trail=\)", "(--trail)"), (r"\(trail_amount=\)", "(--trail-amount)"),
    (r"takes no trail_amount=", "takes no --trail-amount"), (r"needs a limit_price=", "needs --limit-price"),
    (r"needs a stop_price=", "needs --stop-price"), (r"takes no limit_price=", "takes no --limit-price"),
    (r"takes no stop_price=", "takes no --stop-price"), (r"^constraint (?=['\"])", "--constraint "),
    (r"if that price was a mistake, delete_prices\('([^']*)', '([^']*)'\) removes it first",
     r"if that price was a mistake, `prices --delete --symbol \1 --from \2` removes it first"),
    (r"give allow_future=True", "give --allow-future"), (r"needs a symbol=", "needs --symbol"),
    (r"give a price, or record one with tick\(\)", "give --price, or record one with `tick`"),
    (r"the same call again \(with the same ref,", "the same command again (with the same --ref,"),
    (r"none: stop_loss=None\)", "none: --stop-loss none)"), (r"\bsymbol= is for", "--symbol is for"),
    (r"give symbol= for", "give --symbol for"), (r" fee_rate=(\S+) slippage=(\S+)", r" --fee-rate \1 --slippage \2"),
    (r" on_close=True: resume", " --on-close: resume")]


def command_line_words(message):
    """A refusal from the library as the command line says it: the flags for the library's words (in paper's
    own text: not inside what it quotes, a user's ref or name shown with repr)."""
    for library, flags in CLI_WORDS:  # the words around something quoted first (they keep what they quote)
        if "'" in library:
            message = re.sub(library, flags, message)
    parts = re.split(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", message)
    for k in range(0, len(parts), 2):  # the even parts are outside quotes
        for library, flags in CLI_WORDS:
            parts[k] = parts[k] if "'" in library else re.sub(library, flags, parts[k])
    return "".join(parts)


def main(argv=None):
    """Run one command; return its exit code: 0 done, 1 refused, 2 usage error, 130 interrupted."""
    sys.modules.setdefault("paper", sys.modules[__name__])  # a strategy's `import paper` is this module (as
    # `python paper.py` runs it, it is __main__): the same PaperError, the same RiskRefused
    if sys.stderr is None:  # 2>&-: paper's messages go nowhere, not to stdout (print's default then), and the
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # descriptor is no file's opened later; the exit code tells
        sys.stderr = open(2, "w", closefd=False)
    if sys.stdout is None:  # >&-: a result would be lost (init's new id), so nothing is done
        return fail("standard output is closed: nothing was done (paper writes its results there; >/dev/null"
                    " discards them)")
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        with english_argparse():
            parser = build_parser(command)
            if command is None and argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
                parser.error(f"{argv[0]} is not a command: a command comes first, its options after it (paper -h"
                             " lists the commands)")
            args = parser.parse_args(argv[1:] if command else argv)
            try:
                check_usage(args, argv)
            except PaperError as error:
                parser.error(command_line_words(str(error)))
    except SystemExit as exit:  # argparse has printed its message
        return exit.code
    interrupt = Interrupt(stream=args.command == "feed" and args.files == ["-"] or args.command == "run",
                          unit="bar" if args.command == "run" else "price", steps=args.command == "fetch")
    out = args.out = Output()  # a stream prints as it goes
    args.interrupt = interrupt  # a run in steps (fetch) reads it to stop between two steps
    with interrupt.installed():
        code = run_command(args, interrupt, out)
    if out.failed:  # stdout full, closed or missing
        return fail(f"could not write the result to stdout ({getattr(out.failed, 'strerror', None) or out.failed});"
                    " the command itself is done")
    if interrupt.pending:
        return fail("interrupted: what is summed up above is recorded, and the same command goes on from there"
                    if interrupt.steps else "interrupted after the command was done: its result is above", 130)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""paper: a paper trading account, exact to the last decimal, kept in SQLite.

    python paper.py init --balance 5000            # prints the new account's id
    python paper.py deposit --account-id 3f2a --amount 250.50
    python paper.py status --account-id 3f2a

As a library, the same ledger the command line uses:

    import paper
    with paper.Ledger("data/paper.db") as ledger:
        ledger.deposit(account_id, "250.50")
"""

import argparse
import io
import os
import sqlite3
import sys
import time
import contextlib
from dataclasses import dataclass, field
from decimal import (ROUND_CEILING, Context, Decimal, DecimalException, DivisionByZero, Inexact,
                     InvalidOperation, Overflow, localcontext)

SCHEMA_VERSION = 1
DEFAULT_DB = os.path.join("data", "paper.db")
ZERO, ONE = Decimal(0), Decimal(1)
CENT = Decimal("0.01")
LIMIT = Decimal("1e18")  # every amount and balance stays below this
DEFAULT_FEE_RATE = Decimal("0.001")
FEE_STEP = Decimal("1e-8")  # fees are rounded up to 8 decimal places; nothing else is rounded
# Amounts have at most 18 + 18 digits, products at most 72: this context never
# rounds, and Inexact is a trap, so a rounding that slipped through would raise.
EXACT = Context(prec=100, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
FEE_ROUNDING = Context(prec=100, rounding=ROUND_CEILING)
PNL_ROUNDING = Context(prec=100)  # average cost may not terminate: P&L is shown to 18 places
TRANSACTION_COLUMNS = ("id, account_id, transaction_type, currency, amount, balance_after,"
                       " description, reference_id, created_at, trade_id")
ACCOUNT_COLUMNS = "id, name, leverage, max_leverage, is_active, created_at, updated_at, closed_at"
UPSERT_BALANCE = ("INSERT INTO balances VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET available_amount"
                  " = excluded.available_amount, reserved_amount = excluded.reserved_amount, updated_at = ?")
ORDER_COLUMNS = ("id, account_id, symbol, side, qty, limit_price, fee_rate, filled_qty, reserved_amount,"
                 " status, created_at, updated_at")
TRADE_COLUMNS = "id, account_id, order_id, symbol, side, qty, price, fee_rate, fee, reference_id, created_at"


class PaperError(Exception):
    """A refused operation: the message is fit for the user."""


class NoDatabase(PaperError):
    """The database file does not exist yet."""


def fmt(amount):
    """Plain text, no exponent, at least two decimals: how paper stores and shows amounts."""
    amount = amount.normalize(EXACT)
    if amount.as_tuple().exponent > -2:
        amount = amount.quantize(CENT, context=EXACT)
    return f"{amount:f}"


sqlite3.register_adapter(Decimal, fmt)
def from_db(text):
    """An amount as SQLite holds it (exact text) back to a Decimal."""
    amount = Decimal(text.decode("ascii", "replace"))
    if not amount.is_finite():
        raise PaperError(f"the database holds {amount} where an amount should be")
    return amount


sqlite3.register_converter("DECIMAL_TEXT", from_db)


def to_amount(value, what="amount", zero=False):
    """A Decimal from text like '250.50' (or a Decimal or int), refused unless exact and in range."""
    if isinstance(value, str):
        if not value.isascii() or not value.replace(".", "", 1).isdigit():
            raise PaperError(f"{what} {value!r} is not a number: use digits with at most one"
                             " decimal point, like 250.50 (no sign, exponent, separator or space)")
        whole, _, fraction = value.partition(".")
        before, decimals, value = len(whole), len(fraction), Decimal(value)
    elif isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        value = Decimal(value)
        if not value.is_finite() or value.is_signed():
            raise PaperError(f"{what} {value} must be a finite number, not negative")
        _, digits, exponent = value.as_tuple()
        before, decimals = len(digits) + exponent, -exponent
    else:
        raise PaperError(f"{what} must be a Decimal or a string, not {type(value).__name__}")
    if decimals > 18:
        raise PaperError(f"{what} {value} has more than 18 decimal places; paper never rounds")
    if before > 18:
        raise PaperError(f"{what} {value} has more than 18 digits before the decimal point")
    if not value and not zero:
        raise PaperError(f"{what} must be greater than zero")
    return value


def to_currency(value):
    """An upper-case currency code of 2-10 ASCII letters or digits."""
    if not isinstance(value, str) or not 2 <= len(value) <= 10 or not value.isascii() or not value.isalnum():
        raise PaperError(f"currency {value!r} must be 2-10 ASCII letters or digits, like USDT")
    return value.upper()


def to_text(value, what, longest=200):
    """One line of printable text (emoji welcome), 1 to `longest` characters."""
    if not isinstance(value, str) or not 0 < len(value) <= longest or not value.isprintable():
        raise PaperError(f"{what} must be 1-{longest} printable characters on one line")
    return value


def to_symbol(value):
    """BASE/QUOTE: two different currency codes, upper-cased."""
    base, slash, quote = value.partition("/") if isinstance(value, str) else ("", "", "")
    try:
        if slash and to_currency(base) != to_currency(quote):
            return value.upper()
    except PaperError:
        pass
    raise PaperError(f"symbol {value!r} must be BASE/QUOTE with two different currencies, like BTC/USDT")


def to_side(value):
    if value not in ("buy", "sell"):
        raise PaperError(f"side {value!r} must be buy or sell")
    return value


def to_fee_rate(value):
    rate = to_amount(value, "fee rate", zero=True)
    if rate >= 1:
        raise PaperError(f"fee rate {value} must be below 1 (0.001 is 0.1%)")
    return rate


def to_price(text):
    """BASE=PRICE, as `status --price BTC=65000` takes it."""
    currency, equals, price = text.partition("=")
    if not equals:
        raise PaperError(f"price {text!r} must be CURRENCY=PRICE, like BTC=65000")
    return to_currency(currency), to_amount(price, f"price of {currency}")


def notional(qty, price):
    """qty x price, exact; refused if it needs more than 18 decimal places."""
    value = EXACT.multiply(qty, price)
    if value.as_tuple().exponent < -18 and value.normalize(EXACT).as_tuple().exponent < -18:
        raise PaperError(f"{fmt(qty)} x {fmt(price)} = {value:f} needs more than 18 decimal places")
    return value


def fee_for(value, rate):
    """The fee on value at rate, rounded up to 8 decimal places."""
    return FEE_ROUNDING.multiply(value, rate).quantize(FEE_STEP, context=FEE_ROUNDING)


def to_id(value):
    """An account or order id: the full UUID or a prefix of 4 or more characters."""
    if not isinstance(value, str) or not 4 <= len(value) <= 36 or value.lower().strip("0123456789abcdef-"):
        raise PaperError(f"id {value!r} must be a UUID or a prefix of at least 4 of its characters")
    return value.lower()


def new_id():
    """A random (version 4) UUID, without the cost of importing uuid."""
    b = bytearray(os.urandom(16))
    b[6], b[8] = b[6] & 0x0F | 0x40, b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc_now():
    """UTC ISO-8601 with microseconds: sorts as text in time order."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns // 1000 % 10**6:06d}Z"


# --- Records ---

@dataclass
class Balance:
    """What an account holds of one currency."""

    currency: str
    available: Decimal
    reserved: Decimal

    @property
    def total(self):
        return EXACT.add(self.available, self.reserved)

    def check(self, change):
        """Refuse this balance if change took it below zero available, or to 10^18."""
        if self.available < 0:
            raise PaperError(f"insufficient funds: {fmt(self.available - change)} {self.currency} available,"
                             f" {fmt(-change)} needed")
        if self.total >= LIMIT:
            raise PaperError(f"the {self.currency} balance would reach {fmt(self.total)}: paper holds less than 10^18")


@dataclass
class Transaction:
    """One row of the log: a signed amount of one currency."""

    id: int
    account_id: str
    type: str
    currency: str
    amount: Decimal  # signed: + into the account, - out of it
    balance_after: Decimal  # the currency's total after this row
    description: str
    reference_id: str | None
    created_at: str
    trade_id: int | None = None


@dataclass
class Account:
    """An account, with its balances and newest transactions when read through Ledger.account."""

    id: str
    name: str
    leverage: Decimal
    max_leverage: Decimal
    is_active: int
    created_at: str
    updated_at: str
    closed_at: str | None
    balances: dict = field(default_factory=dict)  # currency -> Balance
    transactions: list = field(default_factory=list)  # newest first

    @property
    def status(self):
        return "ACTIVE" if self.is_active else "CLOSED"


@dataclass
class Order:
    """A limit order and what it still has set aside."""

    id: str
    account_id: str
    symbol: str
    side: str
    qty: Decimal
    limit_price: Decimal
    fee_rate: Decimal
    filled_qty: Decimal
    reserved: Decimal  # still set aside: quote currency for a buy (fee included), base for a sell
    status: str  # OPEN, FILLED or CANCELLED
    created_at: str
    updated_at: str

    @property
    def reserve_currency(self):
        return self.symbol.split("/")[self.side == "buy"]


def reserve_for(side, qty, limit_price, fee_rate):
    """What an order for qty sets aside: qty x limit + its fee for a buy, qty of base for a sell."""
    if side == "sell" or not qty:
        return qty
    value = notional(qty, limit_price)
    return value + fee_for(value, fee_rate)


@dataclass
class Trade:
    """One fill at one price: a market trade, or part or all of an order."""

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
    transactions: list = field(default_factory=list)  # its legs


@dataclass
class Valuation:
    """An account valued at given prices, with its realised P&L."""

    quote: str
    holdings: dict  # currency -> (total, price, value in quote)
    equity: Decimal
    realized_pnl: dict  # symbol -> realised P&L in its quote currency, since the latest reset


@dataclass
class Mismatch:
    """One problem verify found."""

    account_id: str
    currency: str
    problem: str


# --- The ledger ---

class Ledger:
    """The accounts in one SQLite database; every rule of paper lives here."""

    def __init__(self, path=DEFAULT_DB, create=False, read_only=False, busy_timeout_ms=10000):
        """Open the database at path; only create=True makes a new one."""
        self.path = path
        if os.path.isdir(path) or not os.path.basename(path):
            raise PaperError(f"{path} is a folder, not a database file")
        if not os.path.lexists(path):
            if not create:
                raise NoDatabase(f"no database at {path}: create one with `python paper.py init`")
            self._create(path)
        elif not os.path.isfile(path):
            raise PaperError(f"{path} is not a regular file")
        # Read-only first: a connection that may write checkpoints the WAL into the file as it
        # closes, and a database that paper refuses is left exactly as it was.
        self.db = self._connect("ro", busy_timeout_ms)
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise PaperError(f"{path} has schema version {version}, newer than this paper.py"
                                 f" ({SCHEMA_VERSION}): use a newer paper.py")
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version < SCHEMA_VERSION or "accounts" not in tables:
                raise PaperError(f"{path} is not a paper database")
            missing = {"accounts", "balances", "transactions", "orders", "trades"} - tables
            if missing:
                raise PaperError(f"{path} is damaged: table {', '.join(sorted(missing))} is missing")
            if not read_only:
                self.db.close()
                self.db = self._connect("rw", busy_timeout_ms)
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            self.db.close()
            raise

    def _connect(self, mode, busy_timeout_ms):
        # A URI with mode=ro or rw never creates a file, even if it vanished since the checks.
        path = os.path.abspath(self.path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        return sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=busy_timeout_ms / 1000,
                               isolation_level=None, detect_types=sqlite3.PARSE_DECLTYPES)

    @staticmethod
    def _create(path):
        """Build a new database beside path, then link it into place: a racing init sees it whole or not at all."""
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.sql")) as f:
            schema = f.read()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        building = f"{path}.{os.urandom(8).hex()}.new"
        os.close(os.open(building, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner only, and its -wal
        try:
            db = sqlite3.connect(building, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(f"BEGIN; {schema}; PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
            finally:
                db.close()
            try:
                os.link(building, path)
            except FileExistsError:  # another init won the race: use its database
                pass
        finally:
            os.unlink(building)

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def _transaction(self, begin="BEGIN IMMEDIATE"):
        """One SQLite transaction: every change inside it lands together or not at all."""
        self.db.execute(begin)
        try:
            with localcontext(EXACT):
                yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _find(self, table, prefix, what):
        """The one row of table whose id starts with prefix, as git finds short hashes."""
        prefix = to_id(prefix)
        columns = {"accounts": ACCOUNT_COLUMNS, "orders": ORDER_COLUMNS}[table]
        rows = self.db.execute(f"SELECT {columns} FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT 11",
                               (prefix, prefix + "~")).fetchall()
        if not rows:
            raise PaperError(f"no {what} {prefix!r}")
        if len(rows) > 1:
            ids = ", ".join(row[0] for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
            raise PaperError(f"{what} id {prefix!r} is ambiguous: it matches {ids}")
        return rows[0]

    def _account(self, account_id, active=False):
        account = Account(*self._find("accounts", account_id, "account"))
        if active and not account.is_active:
            raise PaperError(f"account {account.id} is closed")
        return account

    def _balances(self, account_id):
        return {row[0]: Balance(*row) for row in self.db.execute(
            "SELECT currency, available_amount, reserved_amount FROM balances WHERE account_id = ?"
            " ORDER BY currency", (account_id,))}

    def _move(self, account, currency, available, reserved=ZERO, legs=(), ref=None, trade_id=None):
        """Change one balance by (available, reserved) and log its legs [(type, amount, text)]."""
        now = utc_now()
        row = self.db.execute("SELECT available_amount, reserved_amount FROM balances"
                              " WHERE account_id = ? AND currency = ?", (account.id, currency)).fetchone()
        old = Balance(currency, *row) if row else Balance(currency, ZERO, ZERO)
        new = Balance(currency, old.available + available, old.reserved + reserved)
        new.check(available)
        self.db.execute(UPSERT_BALANCE, (account.id, currency, new.available, new.reserved, now, now, now))
        total, logged = old.total, []
        for kind, amount, description in legs:
            if not amount:  # a zero fee
                continue
            total += amount
            tx = Transaction(None, account.id, kind, currency, amount, total, description, ref, now, trade_id)
            tx.id = self.db.execute(
                f"INSERT INTO transactions ({TRANSACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(vars(tx).values())).lastrowid
            logged.append(tx)
        return logged

    # --- Accounts ---

    def create_account(self, balance=Decimal(5000), currency="USDT", name="Paper Trading Account",
                       leverage=Decimal(1), max_leverage=Decimal(3)):
        """Open an account; a non-zero balance is recorded as an 'Initial deposit'."""
        balance, currency = to_amount(balance, "balance", zero=True), to_currency(currency)
        name = to_text(name, "name")
        leverage, max_leverage = to_amount(leverage, "leverage"), to_amount(max_leverage, "max leverage")
        if leverage > max_leverage:
            raise PaperError(f"leverage {leverage} is above the max leverage {max_leverage}")
        with self._transaction():
            now = utc_now()
            account = Account(new_id(), name, leverage, max_leverage, 1, now, now, None)
            self.db.execute(f"INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            tuple(vars(account).values())[:8])
            if balance:
                self._move(account, currency, balance, legs=[("DEPOSIT", balance, "Initial deposit")])
        return self.account(account.id)

    def account(self, account_id, transactions=10):
        """The account with its balances and its newest transactions."""
        with self._transaction("BEGIN"):
            account = self._account(account_id)
            account.balances = self._balances(account.id)
            account.transactions = self._transactions(account.id, transactions)
        return account

    def accounts(self):
        """Every account with its balances, oldest first."""
        with self._transaction("BEGIN"):
            accounts = {row[0]: Account(*row) for row in self.db.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY rowid")}
            for row in self.db.execute("SELECT account_id, currency, available_amount, reserved_amount"
                                       " FROM balances ORDER BY currency"):
                if row[0] in accounts:
                    accounts[row[0]].balances[row[1]] = Balance(*row[1:])
        return list(accounts.values())

    def close_account(self, account_id):
        """Close an account: it keeps its history and refuses new money and trades."""
        with self._transaction():
            account = self._account(account_id, active=True)
            now = utc_now()
            self.db.execute("UPDATE accounts SET is_active = 0, closed_at = ?, updated_at = ? WHERE id = ?",
                            (now, now, account.id))
        return self.account(account.id)

    # --- Money in and out ---

    def _transactions(self, account_id, limit):
        return [Transaction(*row) for row in self.db.execute(
            f"SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE account_id = ? ORDER BY id DESC LIMIT ?",
            (account_id, -1 if limit is None else limit))]

    def transactions(self, account_id, limit=None):
        """The account's transactions, newest first."""
        with self._transaction("BEGIN"):
            return self._transactions(self._account(account_id).id, limit)

    def deposit(self, account_id, amount, currency="USDT", description=None, ref=None):
        """Add money; a retry with the same ref returns the first transaction."""
        return self._transfer("DEPOSIT", account_id, amount, currency, description, ref)

    def withdraw(self, account_id, amount, currency="USDT", description=None, ref=None):
        """Take money out, never below zero available; a retry with the same ref returns the first."""
        return self._transfer("WITHDRAWAL", account_id, amount, currency, description, ref)

    def _transfer(self, kind, account_id, amount, currency, description, ref):
        amount, currency = to_amount(amount), to_currency(currency)
        description = to_text(description or kind.title(), "description")
        ref = None if ref is None else to_text(ref, "ref", 100)
        signed = amount if kind == "DEPOSIT" else -amount
        with self._transaction():
            account = self._account(account_id)
            done = self._earlier(account, ref, lambda tx: isinstance(tx, Transaction) and (
                tx.type, tx.currency, tx.amount) == (kind, currency, signed))
            if done:
                return done
            if not account.is_active:
                raise PaperError(f"account {account.id} is closed")
            return self._move(account, currency, signed, legs=[(kind, signed, description)], ref=ref)[0]

    def import_rows(self, account_id, rows, first_line=2):
        """Deposits and withdrawals in bulk, in one SQLite transaction: every row or none.

        Each row is (type, amount, currency, description, ref), as in a CSV file; a row whose
        ref is already recorded with the same details is skipped. Returns (recorded, skipped).
        """
        with self._transaction():
            account = self._account(account_id, active=True)
            held, touched, refs, new, skipped, now = self._balances(account.id), {}, {}, [], 0, utc_now()
            for line, row in enumerate(rows, first_line):
                try:
                    if len(row) != 5:
                        raise PaperError(f"{len(row)} columns, not 5 (type, amount, currency, description, ref)")
                    kind, amount, currency, description, ref = row
                    amount, currency, kind = to_amount(amount), to_currency(currency or "USDT"), kind.upper()
                    if kind not in ("DEPOSIT", "WITHDRAWAL"):
                        raise PaperError(f"type {row[0]!r} must be DEPOSIT or WITHDRAWAL")
                    details = kind, currency, amount if kind == "DEPOSIT" else -amount
                    if ref:
                        if refs.setdefault(ref, details) != details:
                            raise PaperError(f"ref {ref!r} appears twice with different details")
                        if refs[ref] is not details or self._earlier(account, ref, lambda tx: isinstance(
                                tx, Transaction) and (tx.type, tx.currency, tx.amount) == details):
                            skipped += 1
                            continue
                    balance = touched.get(currency) or touched.setdefault(
                        currency, held.get(currency, Balance(currency, ZERO, ZERO)))
                    balance.available += details[2]
                    balance.check(details[2])
                    new.append((account.id, kind, currency, details[2], balance.total,
                                to_text(description or kind.title(), "description"), ref or None, now))
                except PaperError as error:
                    raise PaperError(f"line {line}: {error}") from None
            self.db.executemany("INSERT INTO transactions (account_id, transaction_type, currency, amount,"
                                " balance_after, description, reference_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                new)
            self.db.executemany(UPSERT_BALANCE, [(account.id, b.currency, b.available, b.reserved, now, now, now)
                                                 for b in touched.values()])
        return len(new), skipped

    def _earlier(self, account, ref, same):
        """What account recorded under ref (a Transaction or a Trade) if same(it); refuse a ref reused otherwise."""
        if ref is None:
            return None
        row = self.db.execute(f"SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE account_id = ?"
                              " AND reference_id = ? AND trade_id IS NULL", (account.id, ref)).fetchone()
        done = row and Transaction(*row)
        if not done:
            row = self.db.execute(f"SELECT {TRADE_COLUMNS} FROM trades WHERE account_id = ? AND reference_id = ?",
                                  (account.id, ref)).fetchone()
            done = row and self._legs(Trade(*row))
        if done and not same(done):
            what = (f"{done.type} {fmt(done.amount)} {done.currency} (transaction {done.id})"
                    if isinstance(done, Transaction) else
                    f"{done.side} {fmt(done.qty)} {done.symbol} @ {fmt(done.price)} (trade {done.id})")
            raise PaperError(f"ref {ref!r} was used for {what}: a retry repeats the same details")
        return done

    def _legs(self, trade):
        trade.transactions = [Transaction(*row) for row in self.db.execute(
            f"SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE trade_id = ? ORDER BY id", (trade.id,))]
        return trade

    # --- Trading ---

    def trade(self, account_id, side, symbol, qty, price, fee_rate=DEFAULT_FEE_RATE, ref=None):
        """Buy or sell qty of BASE at price in QUOTE, now; the fee is in QUOTE. Returns the Trade."""
        side, symbol = to_side(side), to_symbol(symbol)
        qty, price, fee_rate = to_amount(qty, "qty"), to_amount(price, "price"), to_fee_rate(fee_rate)
        ref = None if ref is None else to_text(ref, "ref", 100)
        with self._transaction():
            account = self._account(account_id)
            done = self._earlier(account, ref, lambda t: isinstance(t, Trade) and (
                t.side, t.symbol, t.qty, t.price, t.fee_rate) == (side, symbol, qty, price, fee_rate))
            if done:
                return done
            if not account.is_active:
                raise PaperError(f"account {account.id} is closed")
            return self._execute(account, side, symbol, qty, price, fee_rate, ref)

    def _execute(self, account, side, symbol, qty, price, fee_rate, ref=None, order=None, release=ZERO):
        """Fill qty at price: the trade row and every leg; release is what an order had set aside for it."""
        base, quote = symbol.split("/")
        value = notional(qty, price)
        trade = Trade(None, account.id, order and order.id, symbol, side, qty, price, fee_rate,
                      fee_for(value, fee_rate), ref, utc_now())
        trade.id = self.db.execute(f"INSERT INTO trades ({TRADE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   tuple(vars(trade).values())[:11]).lastrowid
        what = f"{side} {fmt(qty)} {symbol} @ {fmt(price)}"
        if side == "buy":
            trade.transactions = self._move(account, quote, release - value - trade.fee, -release, [
                ("TRADE_BUY", -value, what), ("FEE", -trade.fee, what)], ref, trade.id)
            trade.transactions += self._move(account, base, qty, ZERO, [("TRADE_BUY", qty, what)], ref, trade.id)
        else:
            trade.transactions = self._move(account, base, release - qty, -release, [
                ("TRADE_SELL", -qty, what)], ref, trade.id)
            trade.transactions += self._move(account, quote, value - trade.fee, ZERO, [
                ("TRADE_SELL", value, what), ("FEE", -trade.fee, what)], ref, trade.id)
        return trade

    def place_order(self, account_id, side, symbol, qty, limit_price, fee_rate=DEFAULT_FEE_RATE):
        """A limit order: what it may spend moves from available to reserved until it fills or is cancelled."""
        side, symbol = to_side(side), to_symbol(symbol)
        qty, limit_price = to_amount(qty, "qty"), to_amount(limit_price, "limit price")
        fee_rate = to_fee_rate(fee_rate)
        with self._transaction():
            account = self._account(account_id, active=True)
            now = utc_now()
            order = Order(new_id(), account.id, symbol, side, qty, limit_price, fee_rate, ZERO,
                          reserve_for(side, qty, limit_price, fee_rate), "OPEN", now, now)
            self._move(account, order.reserve_currency, -order.reserved, order.reserved)
            self.db.execute(f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            tuple(vars(order).values()))
        return order

    def _open_order(self, order_id):
        order = Order(*self._find("orders", order_id, "order"))
        if order.status != "OPEN":
            raise PaperError(f"order {order.id} is {order.status.lower()}")
        return order

    def _update(self, order, filled, reserved, status):
        order.filled_qty, order.reserved, order.status, order.updated_at = filled, reserved, status, utc_now()
        self.db.execute("UPDATE orders SET filled_qty = ?, reserved_amount = ?, status = ?, updated_at = ?"
                        " WHERE id = ?", (filled, reserved, status, order.updated_at, order.id))

    def fill(self, order_id, price=None, qty=None):
        """Execute an open order, whole or in part, at price (default its limit); returns the Trade."""
        price = None if price is None else to_amount(price, "price")
        qty = None if qty is None else to_amount(qty, "qty")
        with self._transaction():
            order = self._open_order(order_id)
            account = self._account(order.account_id, active=True)
            price = order.limit_price if price is None else price
            if (price > order.limit_price) if order.side == "buy" else (price < order.limit_price):
                raise PaperError(f"a {order.side} order limited to {fmt(order.limit_price)} cannot fill"
                                 f" at {fmt(price)}")
            left = order.qty - order.filled_qty
            qty = left if qty is None else qty
            if qty > left:
                raise PaperError(f"qty {fmt(qty)} is more than the {fmt(left)} left on order {order.id}")
            keep = reserve_for(order.side, left - qty, order.limit_price, order.fee_rate)
            trade = self._execute(account, order.side, order.symbol, qty, price, order.fee_rate,
                                  order=order, release=order.reserved - keep)
            self._update(order, order.filled_qty + qty, keep, "OPEN" if left - qty else "FILLED")
        return trade

    def cancel(self, order_id):
        """Cancel an open order (also on a closed account): its reserve goes back to available."""
        with self._transaction():
            order = self._open_order(order_id)
            self._cancel(self._account(order.account_id), order)
        return order

    def _cancel(self, account, order):
        self._move(account, order.reserve_currency, order.reserved, -order.reserved)
        self._update(order, order.filled_qty, ZERO, "CANCELLED")

    def orders(self, account_id, open_only=False):
        """The account's orders, newest first."""
        with self._transaction("BEGIN"):
            return self._orders(self._account(account_id).id, open_only)

    def _orders(self, account_id, open_only=False):
        only = " AND status = 'OPEN'" if open_only else ""
        return [Order(*row) for row in self.db.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_id = ?{only} ORDER BY created_at DESC, rowid DESC",
            (account_id,))]

    def reset(self, account_id, balance=Decimal(5000), currency="USDT"):
        """Start over, keeping the past: cancel open orders, log every balance to zero, then deposit balance."""
        balance, currency = to_amount(balance, "balance", zero=True), to_currency(currency)
        with self._transaction():
            account = self._account(account_id, active=True)
            for order in self._orders(account.id, open_only=True):
                self._cancel(account, order)
            for held in self._balances(account.id).values():
                self._move(account, held.currency, -held.available, legs=[("RESET", -held.available, "Reset to zero")])
            self._move(account, currency, balance, legs=[("DEPOSIT", balance, "Reset deposit")])
            self.db.execute("UPDATE accounts SET pnl_after_trade = (SELECT ifnull(max(id), 0) FROM trades),"
                            " updated_at = ? WHERE id = ?", (utc_now(), account.id))
        return self.account(account.id)

    def valuation(self, account_id, prices, quote="USDT"):
        """Each holding's value in quote at prices {currency: price}, the equity, and realised P&L by symbol."""
        from fractions import Fraction
        quote = to_currency(quote)
        prices = {to_currency(c): to_amount(p, f"price of {c}") for c, p in dict(prices).items()}
        prices[quote] = ONE
        with self._transaction("BEGIN"):
            account = self._account(account_id)
            holdings, equity = {}, ZERO
            for held in self._balances(account.id).values():
                if held.total:
                    if held.currency not in prices:
                        raise PaperError(f"no price for {held.currency}: add --price {held.currency}=PRICE"
                                         f" (in {quote})")
                    value = held.total * prices[held.currency]
                    holdings[held.currency] = held.total, prices[held.currency], value
                    equity += value
            # Average cost, fees in the cost and out of the proceeds. Coins sold beyond what was bought
            # (deposited ones) cost their sale price: they realise only their fee.
            books = {}
            for symbol, side, qty, price, fee in self.db.execute(
                    "SELECT symbol, side, qty, price, fee FROM trades WHERE account_id = ? AND id >"
                    " (SELECT pnl_after_trade FROM accounts WHERE id = ?) ORDER BY id", (account.id, account.id)):
                held, cost, realized = books.get(symbol, (ZERO, Fraction(0), Fraction(0)))
                if side == "buy":
                    held, cost = held + qty, cost + Fraction(qty * price + fee)
                else:
                    matched = min(qty, held)
                    part = cost * Fraction(matched) / Fraction(held) if held else Fraction(0)
                    held, cost, realized = held - matched, cost - part, realized + Fraction(matched * price - fee) - part
                books[symbol] = held, cost, realized
        realized = {symbol: Decimal(fmt(PNL_ROUNDING.divide(Decimal(r.numerator), Decimal(r.denominator))
                                        .quantize(Decimal("1e-18"), context=PNL_ROUNDING)))
                    for symbol, (_, _, r) in sorted(books.items())}
        return Valuation(quote, holdings, equity, realized)

    # --- Checks ---

    def verify(self, account_id=None):
        """Every mismatch between balances, the log and open orders, plus SQLite's integrity check."""
        with self._transaction("BEGIN"):
            problems = [Mismatch("", "", f"integrity check: {row[0]}")
                        for row in self.db.execute("PRAGMA integrity_check") if row[0] != "ok"]
            where, params = "", ()
            if account_id is not None:
                where, params = " WHERE account_id = ?", (self._account(account_id).id,)
            totals, drifted = {}, set()
            for account, currency, tx_id, amount, after in self.db.execute(
                    f"SELECT account_id, currency, id, amount, balance_after FROM transactions{where}", params):
                key = account, currency
                total = totals[key] = totals.get(key, ZERO) + amount
                if total != after and key not in drifted:
                    drifted.add(key)
                    problems.append(Mismatch(account, currency, f"transaction {tx_id} says balance"
                                             f" {fmt(after)} after it, but the log sums to {fmt(total)}"))
            reserves = {}
            for row in self.db.execute(f"SELECT {ORDER_COLUMNS} FROM orders{where}"
                                       f"{' AND' if where else ' WHERE'} status = 'OPEN'", params):
                order = Order(*row)
                key = order.account_id, order.reserve_currency
                reserves[key] = reserves.get(key, ZERO) + order.reserved
                needed = reserve_for(order.side, order.qty - order.filled_qty, order.limit_price, order.fee_rate)
                if order.reserved != needed:
                    problems.append(Mismatch(*key, f"order {order.id} reserves {fmt(order.reserved)} but what is"
                                                   f" left of it needs {fmt(needed)}"))
            for account, currency, available, reserved in self.db.execute(
                    f"SELECT account_id, currency, available_amount, reserved_amount FROM balances{where}", params):
                key = account, currency
                total = totals.pop(key, ZERO)
                if available + reserved != total:
                    problems.append(Mismatch(account, currency, f"balance {fmt(available + reserved)}"
                                             f" but the log sums to {fmt(total)}"))
                if reserved != reserves.get(key, ZERO):
                    problems.append(Mismatch(account, currency, f"reserved {fmt(reserved)} but open orders"
                                             f" reserve {fmt(reserves.get(key, ZERO))}"))
            for (account, currency), total in totals.items():
                if total:
                    problems.append(Mismatch(account, currency, f"no balance row, but the log sums to {fmt(total)}"))
        return problems


# --- Rendering ---

def table(headers, rows, align):
    """Rows under headers, each column as wide as its widest cell; align is '<' or '>' per column."""
    rows = [headers] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    return "\n".join("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip()
                     for row in rows)


def transactions_table(transactions):
    return table(["id", "time", "type", "currency", "amount", "balance after", "description"],
                 [[t.id, t.created_at, t.type, t.currency, fmt(t.amount), fmt(t.balance_after), t.description]
                  for t in transactions], "><<<>><")


def as_json(record):
    """A record's fields for JSON: amounts as exact strings, nested records too."""
    return {key: fmt(value) if isinstance(value, Decimal) else
            [as_json(item) for item in value] if isinstance(value, list) else value
            for key, value in vars(record).items()}


def trade_line(trade):
    balances = {tx.currency: tx.balance_after for tx in trade.transactions}
    return (f"trade {trade.id}: {trade.side} {fmt(trade.qty)} {trade.symbol} @ {fmt(trade.price)},"
            f" fee {fmt(trade.fee)} {trade.symbol.split('/')[1]}; balances "
            + ", ".join(f"{fmt(total)} {currency}" for currency, total in balances.items()))


def orders_table(orders):
    return table(["id", "status", "side", "symbol", "qty", "filled", "limit", "reserved", "created"],
                 [[o.id, o.status, o.side, o.symbol, fmt(o.qty), fmt(o.filled_qty), fmt(o.limit_price),
                   f"{fmt(o.reserved)} {o.reserve_currency}", o.created_at] for o in orders], "<<<<>>>><")


def account_json(account, transactions=True):
    result = {"id": account.id, "name": account.name, "status": account.status,
              "leverage": fmt(account.leverage), "max_leverage": fmt(account.max_leverage),
              "created_at": account.created_at, "closed_at": account.closed_at,
              "balances": {b.currency: {"available": fmt(b.available), "reserved": fmt(b.reserved),
                                        "total": fmt(b.total)} for b in account.balances.values()}}
    if transactions:
        result["transactions"] = [as_json(tx) for tx in account.transactions]
    return result


def print_json(value):
    import json
    print(json.dumps(value, indent=2, ensure_ascii=False))


# --- The command line ---

def checked(check):
    """An argparse type= from one of the to_* checks: its refusal becomes a usage error."""
    def convert(text):
        try:
            return check(text)
        except PaperError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return convert




class Formatter(argparse.HelpFormatter):
    """argparse's help layout, without importing shutil on every run to learn the terminal's width."""

    def __init__(self, prog):
        columns = os.environ.get("COLUMNS", "")
        try:
            width = int(columns) if columns.isdigit() else os.get_terminal_size(1).columns
        except OSError:
            width = 80
        super().__init__(prog, width=max(width, 40) - 2)


def build_parser(command=None):
    """The argument parser; given a known command, only that command's parser is built (faster)."""
    parser = argparse.ArgumentParser(prog="paper", description="A paper trading account kept in SQLite.",
                                     allow_abbrev=False, formatter_class=Formatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if command is None else [command]:
        summary = COMMANDS[name][0]
        sub = commands.add_parser(name, help=summary, description=summary, allow_abbrev=False,
                                  formatter_class=Formatter)
        add = sub.add_argument
        if name in ("fill", "cancel"):
            add("--order-id", type=checked(to_id), required=True, help="a UUID or a unique prefix of 4+ characters")
        elif name != "init":
            add("--account-id", type=checked(to_id), required=name not in ("status", "verify"),
                help="a UUID or a unique prefix of 4+ characters")
        if name in ("init", "reset"):
            add("--balance", type=checked(lambda s: to_amount(s, "balance", zero=True)), default=Decimal(5000),
                help="opening balance (default 5000; 0 for none)")
        if name in ("init", "deposit", "withdraw", "reset"):
            add("--currency", type=checked(to_currency), default="USDT", help="currency code (default USDT)")
        if name == "init":
            add("--name", type=checked(lambda s: to_text(s, "name")), default="Paper Trading Account")
            add("--leverage", type=checked(lambda s: to_amount(s, "leverage")), default=ONE,
                help="a stored setting: trades are spot, cash only (default 1.0)")
            add("--max-leverage", type=checked(lambda s: to_amount(s, "max leverage")), default=Decimal(3),
                help="default 3.0")
        if name in ("deposit", "withdraw"):
            add("--amount", type=checked(to_amount), required=True, help="like 250.50: up to 18 decimals")
            add("--description", type=checked(lambda s: to_text(s, "description")))
        if name in ("trade", "order"):
            add("--side", choices=("buy", "sell"), required=True)
            add("--symbol", type=checked(to_symbol), required=True, help="BASE/QUOTE, like BTC/USDT")
        if name in ("trade", "order", "fill"):
            add("--qty", type=checked(lambda s: to_amount(s, "qty")), required=name != "fill",
                help="quantity of BASE" + (" (default: all that is left)" if name == "fill" else ""))
        if name in ("trade", "fill"):
            add("--price", type=checked(lambda s: to_amount(s, "price")), required=name == "trade",
                help="price in QUOTE" + (" (default: the order's limit)" if name == "fill" else ""))
        if name == "order":
            add("--limit-price", type=checked(lambda s: to_amount(s, "limit price")), required=True)
        if name in ("trade", "order"):
            add("--fee-rate", type=checked(to_fee_rate), default=DEFAULT_FEE_RATE,
                help="fee in QUOTE per unit of value traded (default 0.001, i.e. 0.1%%)")
        if name in ("deposit", "withdraw", "trade"):
            add("--ref", type=checked(lambda s: to_text(s, "ref", 100)),
                help="idempotency key: a retry with the same ref records nothing new")
        if name == "status":
            add("--price", type=checked(to_price), action="append", default=[], metavar="CURRENCY=PRICE",
                help="value the account: a price in the quote currency, once per currency held")
            add("--quote", type=checked(to_currency), help="the currency to value in (default USDT)")
        if name == "orders":
            add("--open", action="store_true", help="only open orders")
        if name == "import":
            add("file", help="CSV with the header type,amount,currency,description,ref")
        if name == "history":
            add("--limit", type=checked(lambda s: positive(s, "limit")), help="at most N transactions")
            add("--csv", action="store_true", help="CSV: a header line, then one row each")
        add("--json", action="store_true", help="print one JSON document")
        add("--db", help="database file (default $PAPER_DB, else data/paper.db)")
    return parser


def positive(text, what):
    if not text.isascii() or not text.isdigit() or not int(text):
        raise PaperError(f"{what} must be a whole number above zero, not {text!r}")
    return min(int(text), 2**62)  # SQLite's integers end at 2^63 - 1


def cmd_init(ledger, args):
    account = ledger.create_account(args.balance, args.currency, args.name, args.leverage, args.max_leverage)
    print_json(account_json(account)) if args.json else print(account.id)
    return 0


def cmd_transfer(ledger, args):
    move = ledger.deposit if args.command == "deposit" else ledger.withdraw
    tx = move(args.account_id, args.amount, args.currency, args.description, args.ref)
    if args.json:
        print_json(as_json(tx))
    else:
        print(f"transaction {tx.id}: {tx.type} {fmt(abs(tx.amount))} {tx.currency},"
              f" balance {fmt(tx.balance_after)} {tx.currency}")
    return 0


def cmd_trade(ledger, args):
    if args.command == "trade":
        trade = ledger.trade(args.account_id, args.side, args.symbol, args.qty, args.price, args.fee_rate, args.ref)
    else:
        trade = ledger.fill(args.order_id, args.price, args.qty)
    print_json(as_json(trade)) if args.json else print(trade_line(trade))
    return 0


def cmd_order(ledger, args):
    order = ledger.place_order(args.account_id, args.side, args.symbol, args.qty, args.limit_price, args.fee_rate)
    print_json(as_json(order)) if args.json else print(order.id)
    return 0


def cmd_cancel(ledger, args):
    order = ledger.cancel(args.order_id)
    print_json(as_json(order)) if args.json else print(f"order {order.id} cancelled; its reserve is available again")
    return 0


def cmd_orders(ledger, args):
    orders = ledger.orders(args.account_id, args.open)
    if args.json:
        print_json([as_json(order) for order in orders])
    else:
        print(orders_table(orders) if orders else "No orders.")
    return 0


def cmd_reset(ledger, args):
    account = ledger.reset(args.account_id, args.balance, args.currency)
    print_json(account_json(account)) if args.json else print(
        f"account {account.id} reset: " + ", ".join(f"{fmt(b.total)} {b.currency}"
                                                    for b in account.balances.values() if b.total))
    return 0


def cmd_import(ledger, args):
    import csv
    with open(args.file, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        try:
            if next(rows, None) != ["type", "amount", "currency", "description", "ref"]:
                raise PaperError(f"{args.file}: the first line must be type,amount,currency,description,ref")
            recorded, skipped = ledger.import_rows(args.account_id, rows)
        except (csv.Error, UnicodeDecodeError) as error:
            raise PaperError(f"{args.file}: {error}") from None
    if args.json:
        print_json({"recorded": recorded, "skipped": skipped})
    else:
        print(f"recorded {recorded} transactions" + (f", skipped {skipped} already recorded" if skipped else ""))
    return 0


def cmd_status(ledger, args):
    if args.account_id is None:
        accounts = ledger.accounts()
        if args.json:
            print_json([account_json(account, transactions=False) for account in accounts])
        elif not accounts:
            print("No accounts yet: create one with `python paper.py init --balance 5000`.")
        else:
            print(table(["id", "status", "name", "balances"],
                        [[a.id, a.status, a.name, ", ".join(f"{fmt(b.total)} {b.currency}"
                                                             for b in a.balances.values())] for a in accounts],
                        "<<<<"))
        return 0
    account = ledger.account(args.account_id)
    valued = (args.price or args.quote) and ledger.valuation(account.id, dict(args.price), args.quote or "USDT")
    if args.json:
        print_json({**account_json(account), **({"quote": valued.quote, "holdings": {
            currency: {"total": fmt(total), "price": fmt(price), "value": fmt(value)}
            for currency, (total, price, value) in valued.holdings.items()}, "equity": fmt(valued.equity),
            "realized_pnl": {symbol: fmt(pnl) for symbol, pnl in valued.realized_pnl.items()}} if valued else {})})
        return 0
    closed = f" since {account.closed_at}" if account.closed_at else ""
    print(f"{account.name}\n"
          f"id          {account.id}\n"
          f"status      {account.status}{closed}\n"
          f"leverage    {fmt(account.leverage)} (max {fmt(account.max_leverage)})\n"
          f"created     {account.created_at}\n")
    rows = [[b.currency, fmt(b.available), fmt(b.reserved), fmt(b.total)] for b in account.balances.values()]
    print(table(["currency", "available", "reserved", "total"], rows, "<>>>") if rows else "No balances.")
    if valued:
        print(f"\nValued in {valued.quote}:\n" + table(
            ["currency", "total", "price", "value"],
            [[c, fmt(total), fmt(price), fmt(value)] for c, (total, price, value) in valued.holdings.items()]
            + [["equity", "", "", f"{fmt(valued.equity)}"]], "<>>>"))
        if valued.realized_pnl:
            print("\nRealised P&L (average cost, since the latest reset):\n" + table(
                ["symbol", "realised"], [[s, fmt(pnl)] for s, pnl in valued.realized_pnl.items()], "<>"))
    if account.transactions:
        print(f"\nLast {len(account.transactions)} transactions:\n" + transactions_table(account.transactions))
    return 0


def cmd_history(ledger, args):
    transactions = ledger.transactions(args.account_id, args.limit)
    if args.json:
        print_json([as_json(tx) for tx in transactions])
    elif args.csv:
        import csv
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["id", "created_at", "type", "currency", "amount", "balance_after",
                         "description", "reference_id", "trade_id"])
        writer.writerows([tx.id, tx.created_at, tx.type, tx.currency, fmt(tx.amount), fmt(tx.balance_after),
                          tx.description, tx.reference_id, tx.trade_id] for tx in transactions)
    else:
        print(transactions_table(transactions) if transactions else "No transactions.")
    return 0


def cmd_close(ledger, args):
    account = ledger.close_account(args.account_id)
    print_json(account_json(account)) if args.json else print(f"account {account.id} closed")
    return 0


def cmd_verify(ledger, args):
    problems = ledger.verify(args.account_id)
    if args.json:
        print_json({"ok": not problems, "mismatches": [vars(p) for p in problems]})
    else:
        for p in problems:
            print(f"MISMATCH account {p.account_id} {p.currency}: {p.problem}" if p.account_id
                  else f"MISMATCH {p.problem}")
        print("FAILED" if problems else "OK")
    return 1 if problems else 0


COMMANDS = {  # name: (summary, function)
    "init": ("open a new account and print its id", cmd_init),
    "deposit": ("add money to an account", cmd_transfer),
    "withdraw": ("take money out of an account", cmd_transfer),
    "status": ("show one account, or list them all", cmd_status),
    "history": ("list an account's transactions, newest first", cmd_history),
    "close": ("close an account (it keeps its history)", cmd_close),
    "verify": ("check every balance against the transaction log and open orders", cmd_verify),
    "trade": ("buy or sell now at a price you give", cmd_trade),
    "order": ("place a limit order: its funds are reserved; prints its id", cmd_order),
    "fill": ("execute a limit order, whole or in part", cmd_trade),
    "cancel": ("cancel a limit order and release its reserve", cmd_cancel),
    "orders": ("list an account's orders, newest first", cmd_orders),
    "reset": ("start an account over, keeping its history", cmd_reset),
    "import": ("record a CSV file of deposits and withdrawals: every row or none", cmd_import),
}
READS = {"status", "history", "verify", "orders"}  # these open the database read-only


def main(argv=None):
    """Run one command; return its exit code: 0 done, 1 refused, 2 usage error (130 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
        try:
            args = parser.parse_args(argv)
            flags = [arg.split("=", 1)[0] for arg in argv if arg.startswith("--")]
            for flag in flags:
                if flags.count(flag) > 1 and (args.command, flag) != ("status", "--price"):
                    parser.error(f"{flag} is given more than once")
            if args.command == "status":
                currencies = [currency for currency, _ in args.price]
                if (args.price or args.quote) and not args.account_id:
                    parser.error("--price and --quote value one account: give --account-id")
                if len(set(currencies)) < len(currencies):
                    parser.error("--price gives the same currency twice")
            if args.command == "init" and args.leverage > args.max_leverage:
                parser.error(f"leverage {fmt(args.leverage)} is above --max-leverage {fmt(args.max_leverage)}")
            if args.db == "":
                parser.error("--db needs a file name")
            timeout = os.environ.get("PAPER_BUSY_TIMEOUT", "10000")
            if not timeout.isascii() or not timeout.isdigit() or int(timeout) > 2**31 - 1:
                parser.error(f"PAPER_BUSY_TIMEOUT must be a whole number of milliseconds up to 2147483647,"
                             f" not {timeout!r}")
        except SystemExit as exit:  # argparse has printed its message
            return exit.code
        output = io.StringIO()  # written when the command is done, so a refusal prints nothing on stdout
        with contextlib.redirect_stdout(output):
            code = run(args, args.db or os.environ.get("PAPER_DB") or DEFAULT_DB, int(timeout))
        try:
            sys.stdout.write(output.getvalue())
            sys.stdout.flush()
        except BrokenPipeError:  # `paper.py history | head`: the reader left, nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError) as error:  # stdout full, closed or missing
            return fail(f"could not write the result to stdout ({getattr(error, 'strerror', None) or error});"
                        " the command itself is done")
        return code
    except KeyboardInterrupt:
        return fail("interrupted; a change not yet committed is rolled back", 130)


def run(args, path, timeout):
    """Open the ledger, run args.command on it, and turn every refusal into one line on stderr."""
    ledger = None
    try:
        ledger = Ledger(path, create=args.command == "init", read_only=args.command in READS,
                        busy_timeout_ms=timeout)
        return COMMANDS[args.command][1](ledger, args)
    except NoDatabase as error:
        if args.command != "status" or args.account_id:
            return fail(error)
        print_json([]) if args.json else print("No accounts yet: create one with"
                                               " `python paper.py init --balance 5000`.")
        return 0
    except PaperError as error:
        return fail(error)
    except sqlite3.Error as error:
        name = getattr(error, "sqlite_errorname", "")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return fail(f"database is busy: another process held {path} for more than {timeout} ms"
                        " (PAPER_BUSY_TIMEOUT); nothing was written")
        if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")) and args.command not in READS:
            return fail(f"{path}: {error} (is the disk full?): the change may not be recorded;"
                        " a retry with the same --ref is safe")
        return fail(f"{path}: {error}")
    except OSError as error:
        return fail(f"{error.strerror or error}: {error.filename or path}")
    except DecimalException as error:
        return fail(f"{path} holds an amount paper cannot read ({type(error).__name__})")
    except Exception as error:  # never a traceback, whatever the database holds
        return fail(f"{path}: unexpected {type(error).__name__}: {error}")
    finally:
        if ledger is not None:
            ledger.close()


def fail(message, code=1):
    print(f"paper: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

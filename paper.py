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
import os
import re
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import (ROUND_CEILING, Context, Decimal, DecimalException, DivisionByZero, Inexact,
                     InvalidOperation, Overflow, localcontext)

SCHEMA_VERSION = 1
DEFAULT_DB = os.path.join("data", "paper.db")
ZERO = Decimal(0)
CENT = Decimal("0.01")
LIMIT = Decimal("1e18")  # every amount and balance stays below this
DEFAULT_FEE_RATE = Decimal("0.001")
# Amounts have at most 18 + 18 digits, products at most 72: this context never
# rounds, and Inexact is a trap, so a rounding that slipped through would raise.
EXACT = Context(prec=100, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
FEE_ROUNDING = Context(prec=100, rounding=ROUND_CEILING)
NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
CURRENCY = re.compile(r"[A-Za-z0-9]{2,10}")
ID_PREFIX = re.compile(r"[0-9a-fA-F-]{4,36}")
TRANSACTION_COLUMNS = ("id, account_id, transaction_type, currency, amount, balance_after,"
                       " description, reference_id, created_at, trade_id")
REPEATABLE = {"--price"}  # options that may be given more than once
ACCOUNT_COLUMNS = "id, name, leverage, max_leverage, is_active, created_at, updated_at, closed_at"


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
sqlite3.register_converter("DECIMAL_TEXT", lambda text: Decimal(text.decode()))


def to_amount(value, what="amount", zero=False):
    """A Decimal from text like '250.50' (or a Decimal or int), refused unless exact and in range."""
    if isinstance(value, str):
        match = NUMBER.fullmatch(value)
        if not match or not any(match.groups()):
            raise PaperError(f"{what} {value!r} is not a number: use digits with at most one"
                             " decimal point, like 250.50 (no sign, exponent, separator or space)")
        value = Decimal(value)
    elif isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        value = Decimal(value)
        if not value.is_finite() or value.is_signed():
            raise PaperError(f"{what} {value} must be a finite number, not negative")
    else:
        raise PaperError(f"{what} must be a Decimal or a string, not {type(value).__name__}")
    digits, exponent = len(value.as_tuple().digits), value.as_tuple().exponent
    if -exponent > 18:
        raise PaperError(f"{what} {value} has more than 18 decimal places; paper never rounds")
    if digits + exponent > 18:
        raise PaperError(f"{what} {value} has more than 18 digits before the decimal point")
    if not value and not zero:
        raise PaperError(f"{what} must be greater than zero")
    return value


def to_currency(value):
    """An upper-case currency code of 2-10 ASCII letters or digits."""
    if not isinstance(value, str) or not CURRENCY.fullmatch(value):
        raise PaperError(f"currency {value!r} must be 2-10 ASCII letters or digits, like USDT")
    return value.upper()


def to_text(value, what, longest=200):
    """One line of printable text (emoji welcome), 1 to `longest` characters."""
    if not isinstance(value, str) or not 0 < len(value) <= longest or not value.isprintable():
        raise PaperError(f"{what} must be 1-{longest} printable characters on one line")
    return value


def to_id(value):
    """An account or order id: the full UUID or a prefix of 4 or more characters."""
    if not isinstance(value, str) or not ID_PREFIX.fullmatch(value):
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
    currency: str
    available: Decimal
    reserved: Decimal

    @property
    def total(self):
        return EXACT.add(self.available, self.reserved)


@dataclass
class Transaction:
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
class Mismatch:
    account_id: str
    currency: str
    problem: str


# --- The ledger ---

class Ledger:
    """The accounts in one SQLite database; every rule of paper lives here."""

    def __init__(self, path=DEFAULT_DB, create=False, busy_timeout_ms=10000):
        """Open the database at path; only create=True makes a new one."""
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        if os.path.isdir(path):
            raise PaperError(f"{path} is a folder, not a database file")
        if not os.path.exists(path):
            if not create:
                raise NoDatabase(f"no database at {path}: create one with `python paper.py init`")
            self._create(path)
        # mode=rw: never create a file here, even if it vanished since the check.
        uri = "file:" + os.path.abspath(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        self.db = sqlite3.connect(uri + "?mode=rw", uri=True, timeout=busy_timeout_ms / 1000,
                                  isolation_level=None, detect_types=sqlite3.PARSE_DECLTYPES)
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise PaperError(f"{path} has schema version {version}, newer than this paper.py"
                                 f" ({SCHEMA_VERSION}): use a newer paper.py")
            if version < SCHEMA_VERSION:
                raise PaperError(f"{path} is not a paper database")
            self._check_tables()
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            self.db.close()
            raise

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

    def _check_tables(self):
        """Refuse a database whose tables were dropped before anything reads or writes them."""
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = {"accounts", "balances", "transactions", "orders", "trades"} - tables
        if missing:
            raise PaperError(f"{self.path} is damaged: table {', '.join(sorted(missing))} is missing")

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
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
        columns = ACCOUNT_COLUMNS if table == "accounts" else "*"
        rows = self.db.execute(f"SELECT {columns} FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
                               (prefix, prefix + "~")).fetchall()
        if not rows:
            raise PaperError(f"no {what} {prefix!r}")
        if len(rows) > 1:
            ids = ", ".join(row[0] for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
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
        if new.available < 0:
            raise PaperError(f"insufficient funds: {fmt(old.available)} {currency} available,"
                             f" {fmt(-available)} needed")
        if new.total >= LIMIT:
            raise PaperError(f"the {currency} balance would reach {fmt(new.total)}: paper holds less than 10^18")
        self.db.execute(
            "INSERT INTO balances VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET available_amount"
            " = excluded.available_amount, reserved_amount = excluded.reserved_amount, updated_at = ?",
            (account.id, currency, new.available, new.reserved, now, now, now))
        total, logged = old.total, []
        for kind, amount, description in legs:
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
        now = utc_now()
        account = Account(new_id(), name, leverage, max_leverage, 1, now, now, None)
        with self._transaction():
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
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id")}
            for row in self.db.execute("SELECT account_id, currency, available_amount, reserved_amount"
                                       " FROM balances ORDER BY currency"):
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
            if ref is not None:
                row = self.db.execute(f"SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE account_id = ?"
                                      " AND reference_id = ? ORDER BY id LIMIT 1", (account.id, ref)).fetchone()
                if row:
                    done = Transaction(*row)
                    if (done.type, done.currency, done.amount, done.trade_id) != (kind, currency, signed, None):
                        raise PaperError(f"ref {ref!r} was used for {done.type} {fmt(done.amount)}"
                                         f" {done.currency} (transaction {done.id}): a retry repeats the same details")
                    return done
            if not account.is_active:
                raise PaperError(f"account {account.id} is closed")
            return self._move(account, currency, signed, legs=[(kind, signed, description)], ref=ref)[0]

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
            for account, symbol, side, reserved in self.db.execute(
                    f"SELECT account_id, symbol, side, reserved_amount FROM orders{where}"
                    f"{' AND' if where else ' WHERE'} status = 'OPEN'", params):
                key = account, symbol.split("/")[side == "buy"]
                reserves[key] = reserves.get(key, ZERO) + reserved
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


def transaction_json(tx):
    return {"id": tx.id, "type": tx.type, "currency": tx.currency, "amount": fmt(tx.amount),
            "balance_after": fmt(tx.balance_after), "description": tx.description,
            "reference_id": tx.reference_id, "created_at": tx.created_at, "trade_id": tx.trade_id}


def account_json(account, transactions=True):
    result = {"id": account.id, "name": account.name, "status": account.status,
              "leverage": fmt(account.leverage), "max_leverage": fmt(account.max_leverage),
              "created_at": account.created_at, "closed_at": account.closed_at,
              "balances": {b.currency: {"available": fmt(b.available), "reserved": fmt(b.reserved),
                                        "total": fmt(b.total)} for b in account.balances.values()}}
    if transactions:
        result["transactions"] = [transaction_json(tx) for tx in account.transactions]
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




def build_parser(command=None):
    """The argument parser; given a command name, only that command's options are built (faster)."""
    parser = argparse.ArgumentParser(prog="paper", description="A paper trading account kept in SQLite.",
                                     allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, _) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary, allow_abbrev=False)
        if command not in (None, name):
            continue
        add = sub.add_argument
        if name in ("init", "deposit", "withdraw"):
            add("--currency", type=checked(to_currency), default="USDT", help="currency code (default USDT)")
        if name == "init":
            add("--balance", type=checked(lambda s: to_amount(s, "balance", zero=True)), default=Decimal(5000),
                help="opening balance (default 5000; 0 opens an empty account)")
            add("--name", type=checked(lambda s: to_text(s, "name")), default="Paper Trading Account")
            add("--leverage", type=checked(lambda s: to_amount(s, "leverage")), default=Decimal(1),
                help="stored setting (default 1.0)")
            add("--max-leverage", type=checked(lambda s: to_amount(s, "max leverage")), default=Decimal(3),
                help="default 3.0")
        elif name in ("status", "verify"):
            add("--account-id", type=checked(to_id), help="a UUID or a unique prefix of 4+ characters")
        else:
            add("--account-id", type=checked(to_id), required=True,
                help="a UUID or a unique prefix of 4+ characters")
        if name in ("deposit", "withdraw"):
            add("--amount", type=checked(to_amount), required=True, help="like 250.50: up to 18 decimals")
            add("--description", type=checked(lambda s: to_text(s, "description")))
            add("--ref", type=checked(lambda s: to_text(s, "ref", 100)),
                help="idempotency key: a retry with the same ref records nothing new")
        if name == "history":
            add("--limit", type=checked(lambda s: positive(s, "limit")), help="at most N transactions")
            add("--csv", action="store_true", help="CSV: a header line, then one row each")
        add("--json", action="store_true", help="print one JSON document")
        add("--db", help="database file (default $PAPER_DB, else data/paper.db)")
    return parser


def positive(text, what):
    if not text.isascii() or not text.isdigit() or not int(text):
        raise PaperError(f"{what} must be a whole number above zero, not {text!r}")
    return int(text)


def cmd_init(ledger, args):
    account = ledger.create_account(args.balance, args.currency, args.name, args.leverage, args.max_leverage)
    print_json(account_json(account)) if args.json else print(account.id)
    return 0


def cmd_transfer(ledger, args):
    move = ledger.deposit if args.command == "deposit" else ledger.withdraw
    tx = move(args.account_id, args.amount, args.currency, args.description, args.ref)
    if args.json:
        print_json(transaction_json(tx))
    else:
        print(f"transaction {tx.id}: {tx.type} {fmt(abs(tx.amount))} {tx.currency},"
              f" balance {fmt(tx.balance_after)} {tx.currency}")
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
    if args.json:
        print_json(account_json(account))
        return 0
    closed = f" since {account.closed_at}" if account.closed_at else ""
    print(f"{account.name}\n"
          f"id          {account.id}\n"
          f"status      {account.status}{closed}\n"
          f"leverage    {fmt(account.leverage)} (max {fmt(account.max_leverage)})\n"
          f"created     {account.created_at}\n")
    rows = [[b.currency, fmt(b.available), fmt(b.reserved), fmt(b.total)] for b in account.balances.values()]
    print(table(["currency", "available", "reserved", "total"], rows, "<>>>") if rows else "No balances.")
    if account.transactions:
        print(f"\nLast {len(account.transactions)} transactions:\n" + transactions_table(account.transactions))
    return 0


def cmd_history(ledger, args):
    transactions = ledger.transactions(args.account_id, args.limit)
    if args.json:
        print_json([transaction_json(tx) for tx in transactions])
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
    "verify": ("check every balance against the transaction log", cmd_verify),
}


def main(argv=None):
    """Run one command; return its exit code (0 done, 1 refused, 2 usage error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
        flags = [arg.split("=", 1)[0] for arg in argv if arg.startswith("--")]
        for flag in flags:
            if flags.count(flag) > 1 and flag not in REPEATABLE:
                parser.error(f"{flag} is given more than once")
        timeout = os.environ.get("PAPER_BUSY_TIMEOUT", "10000")
        if not timeout.isascii() or not timeout.isdigit():
            parser.error(f"PAPER_BUSY_TIMEOUT must be a whole number of milliseconds, not {timeout!r}")
        if args.command == "init" and args.leverage > args.max_leverage:
            parser.error(f"leverage {fmt(args.leverage)} is above --max-leverage {fmt(args.max_leverage)}")
    except SystemExit as exit:  # argparse has printed its message
        return exit.code
    path = args.db or os.environ.get("PAPER_DB") or DEFAULT_DB
    ledger = None
    try:
        ledger = Ledger(path, create=args.command == "init", busy_timeout_ms=int(timeout))
        return COMMANDS[args.command][1](ledger, args)
    except NoDatabase as error:
        if args.command != "status" or args.account_id:
            return fail(error)
        print_json([]) if args.json else print("No accounts yet: create one with"
                                               " `python paper.py init --balance 5000`.")
        return 0
    except BrokenPipeError:  # `paper.py history | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except PaperError as error:
        return fail(error)
    except sqlite3.Error as error:
        name = getattr(error, "sqlite_errorname", "")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return fail(f"database is busy: another process held {path} for more than {timeout} ms"
                        " (PAPER_BUSY_TIMEOUT); nothing was written")
        if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
            return fail(f"{path}: {error} (is the disk full?): the change may not be recorded;"
                        " a retry with the same --ref is safe")
        return fail(f"{path}: {error}")
    except OSError as error:
        return fail(f"{error.strerror or error}: {error.filename or path}")
    except DecimalException as error:
        return fail(f"{path} holds an amount paper cannot read ({type(error).__name__})")
    except KeyboardInterrupt:
        return fail("interrupted; nothing half-written is kept", 130)
    finally:
        if ledger is not None:
            ledger.close()


def fail(message, code=1):
    print(f"paper: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

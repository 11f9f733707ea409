"""Tests for paper.py: what a user sees on the command line and what the database holds."""

import contextlib
import hashlib
import http.server
import atexit
import calendar
import itertools
import json
import os
import pwd
import re
import signal
import socket
import sqlite3
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest

import paper

HERE = Path(__file__).resolve().parent
PAPER = str(HERE / "paper.py")
# Most tests start paper as `python -m paper`, its bytecode cached for the session: `python paper.py` compiles
# 6,500 lines (0.15 s) on every run and the suite starts hundreds of processes. The tests of the script itself
# (a new user in an empty folder, the README word for word, -S, -W error, shells) run `python paper.py`.
PYCACHE = tempfile.mkdtemp(prefix="paper-tests-pycache-")
atexit.register(shutil.rmtree, PYCACHE, True)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ["PYTHONPYCACHEPREFIX"] = PYCACHE
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
PAPER_RUN = [sys.executable, "-m", "paper"]
# `make test` runs the two test files side by side, and a shell starts a job in the background with Ctrl-C
# ignored; every process started here would inherit that (and paper keeps an ignored Ctrl-C ignored)
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.delenv("PAPER_DB", raising=False)
    monkeypatch.delenv("PAPER_BUSY_TIMEOUT", raising=False)
    return str(tmp_path / "paper.db")


@pytest.fixture
def run(db, capsys):
    """main(argv) on the test database: (exit code, stdout, stderr)."""
    def run(*argv):
        code = paper.main([*argv, "--db", db] if argv and argv[0] in paper.COMMANDS else list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def acct(run):
    code, out, err = run("init", "--balance", "5000")
    assert (code, err) == (0, "")
    return out.strip()


def ok(result):
    code, out, err = result
    assert (code, err) == (0, ""), err
    return out


def refused(result, code=1):
    got, out, err = result
    assert got == code, (got, out, err)
    assert out == ""
    assert "Traceback" not in err
    if code == 1:
        assert err.startswith("paper: error: ") and err.count("\n") == 1, err
    else:
        assert "error:" in err
    return err


# --- Shared with test_faults.py (one home for each helper: the project's files are fixed, so no conftest.py) ---

@contextlib.contextmanager
def connection(path, **options):
    """A sqlite3 connection to path: committed if all went well, and closed (sqlite3's own `with` only
    commits, and a connection left open is a ResourceWarning)."""
    conn = sqlite3.connect(path, **options)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def query(path, sql, *params):
    with connection(path) as conn:
        return conn.execute(sql, params).fetchall()


def shell(path, *sql):
    """What a user does with the sqlite3 shell: run statements, commit, close."""
    with connection(path) as conn:
        for statement in sql:
            conn.execute(statement)


def dump(db):
    with connection(db) as conn:
        return list(conn.iterdump())


def cli(*argv, cwd=None, env=None, timeout=60, script=False):
    """python -m paper ARGV as a process of its own (script: python paper.py ARGV)."""
    return subprocess.run([sys.executable, PAPER, *argv] if script else [*PAPER_RUN, *argv], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def without_root_powers():
    """Root ignores file modes: drop the capabilities that override them, so read-only means read-only."""
    if os.geteuid() == 0:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0):  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "cannot drop root's file capabilities")


def balance(db, account_id, currency="USDT"):
    with connection(db) as conn:
        row = conn.execute("SELECT available_amount, reserved_amount FROM balances"
                           " WHERE account_id = ? AND currency = ?", (account_id, currency)).fetchone()
    return row and (Decimal(row[0]), Decimal(row[1]))


# --- A fake Binance on 127.0.0.1 (test_faults.py uses it too) ---

LISTED = 1735689600000  # 2025-01-01T00:00:00Z in epoch ms: when the fake exchange's markets open
KLINE_MS = {"1s": 1000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
            "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
            "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000}  # and 1M: a calendar month
MONDAY = 4 * 86_400_000  # 1970-01-05T00:00:00Z: Binance's weeks open on Monday (the epoch was a Thursday)


def kline_open(interval, moment):
    """The open time (epoch ms) of the kline at interval that holds moment, as Binance lays them out (its
    docs' example of a 1w kline opens on Monday 2017-07-03): a month's on its first day at 00:00 UTC, a week's
    on Monday, the others' whole multiples of their length from the epoch."""
    if interval == "1M":
        day = time.gmtime(moment // 1000)
        return calendar.timegm((day.tm_year, day.tm_mon, 1, 0, 0, 0)) * 1000
    offset = MONDAY if interval == "1w" else 0
    return (moment - offset) // KLINE_MS[interval] * KLINE_MS[interval] + offset


def kline_after(interval, opened):
    """The open time of the kline after the one that opened at opened."""
    return kline_open(interval, opened + 32 * 86_400_000) if interval == "1M" else opened + KLINE_MS[interval]


class FakeBinance:
    """Binance's public market-data API as its documentation shows it, on 127.0.0.1 at a free port, served by a
    thread: GET /api/v3/time, /api/v3/klines and /api/v3/exchangeInfo; errors as {"code", "msg"} with their HTTP
    status; X-MBX-USED-WEIGHT-1M on every answer (the weight used in the server's minute); 429 and 418 with
    Retry-After. Klines of every interval, 1M too, open where Binance's do (kline_open: weeks on Monday, months
    on the 1st), and are made from their open time, so any range is served without storing it: a bar of a
    market whose base price is B, opening at minute m of its day and second s, opens at B + m + s/100, its high
    1.50 above, its low 0.25 below, its close 0.50 above, written as Binance writes prices (8 decimals). Every
    market opens at `listed`; the kline that contains the server's time (`now`: epoch ms, or a callable) is
    served, still forming. `faults` holds answers to give instead, in order, to the next requests of a path:
    ("klines", "429", seconds), ("time", "503"), ... (see fault). `requests` notes (path, params, User-Agent)."""

    def __init__(self, now, markets=None, listed=LISTED, certificate=None):
        self.now, self.listed = now, listed
        self.markets = {symbol.replace("/", ""): (symbol, base) for symbol, base in
                        (markets or {"BTC/USDT": 100, "ETH/USDT": 10}).items()}
        self.faults, self.requests, self.weight, self.minute = [], [], 0, None
        self.released = threading.Event()  # a slow answer ends at once when the server stops
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                fake.handle(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False  # server_close joins every handler's thread: none is left behind
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certificate)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if certificate else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,))  # stops within 20 ms

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def time(self):
        return self.now() if callable(self.now) else self.now

    def handle(self, request):
        url = urllib.parse.urlsplit(request.path)  # a proxy is asked for the whole URL: its path is the same
        params, name = dict(urllib.parse.parse_qsl(url.query)), url.path.rsplit("/", 1)[-1]
        self.requests.append((name, params, request.headers.get("User-Agent")))
        fault = next((fault for fault in self.faults if fault[0] == name), None)
        if fault:
            self.faults.remove(fault)
            return self.fault(request, url.path, params, *fault[1:])
        return self.answer(request, url.path, params)

    def answer(self, request, path, params):
        now = self.time()
        if now // 60_000 != self.minute:
            self.minute, self.weight = now // 60_000, 0
        self.weight += {"/api/v3/klines": 2, "/api/v3/time": 1, "/api/v3/exchangeInfo": 20}.get(path, 1)
        if path == "/api/v3/time":
            return self.send(request, 200, {"serverTime": now})
        if path == "/api/v3/klines":
            return self.klines(request, params, now)
        if path == "/api/v3/exchangeInfo":
            return self.exchange_info(request, params, now)
        return self.send(request, 404, "<html><body><h1>404 Not Found</h1></body></html>", "text/html")

    def send(self, request, status, body, content_type="application/json;charset=UTF-8", headers=()):
        data = (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(data)))
            request.send_header("X-MBX-USED-WEIGHT-1M", str(self.weight))
            for name, value in headers:
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(data)
        except OSError:  # the client gave up waiting
            pass

    def klines(self, request, params, now):
        market, interval = self.markets.get(params.get("symbol")), params.get("interval")
        if market is None:
            return self.send(request, 400, {"code": -1121, "msg": "Invalid symbol."})
        if interval not in KLINE_MS and interval != "1M":
            return self.send(request, 400, {"code": -1120, "msg": "Invalid interval."})
        limit = min(int(params.get("limit", 500)), 1000)
        listed = kline_open(interval, self.listed)  # the market's first kline holds its listing
        latest = kline_open(interval, min(now, int(params.get("endTime", now))))  # the last open time served
        opens = []
        if "startTime" in params:  # the oldest opening from startTime on, else the latest up to endTime
            opened = kline_open(interval, int(params["startTime"]))
            opened = max(listed, opened if opened == int(params["startTime"]) else kline_after(interval, opened))
            while opened <= latest and len(opens) < limit:
                opens.append(opened)
                opened = kline_after(interval, opened)
        else:
            opened = latest
            while opened >= listed and len(opens) < limit:
                opens.insert(0, opened)
                opened = kline_open(interval, opened - 1)
        rows = []
        for opened in opens:
            cents = market[1] * 100 + opened % 86_400_000 // 60_000 * 100 + opened % 60_000 // 1000
            rows.append([opened, binance_price(cents), binance_price(cents + 150), binance_price(cents - 25),
                         binance_price(cents + 50), "12.50000000", kline_after(interval, opened) - 1, "1262.50000000",
                         7, "6.00000000", "606.00000000", "0"])
        self.send(request, 200, rows)

    def exchange_info(self, request, params, now):
        names = json.loads(params["symbols"]) if "symbols" in params else [params["symbol"]] if "symbol" in params \
            else list(self.markets)
        if any(name not in self.markets for name in names):
            return self.send(request, 400, {"code": -1121, "msg": "Invalid symbol."})
        self.send(request, 200, {"timezone": "UTC", "serverTime": now, "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}],
            "exchangeFilters": [], "symbols": [self.market_info(name) for name in names]})

    def market_info(self, name):
        """A symbol of exchangeInfo: BTC's with the NOTIONAL filter, the others with the older MIN_NOTIONAL."""
        base, quote = self.markets[name][0].split("/")
        notional = {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5} if base == "BTC" \
            else {"filterType": "MIN_NOTIONAL", "minNotional": "10.00000000", "applyToMarket": True, "avgPriceMins": 5}
        return {"symbol": name, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8, "quoteAsset": quote,
                "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                                                              "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": True,
                "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
                             "tickSize": "0.01000000"},
                            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                             "stepSize": "0.00001000"},
                            {"filterType": "ICEBERG_PARTS", "limit": 10}, notional,
                            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200}],
                "permissions": [], "permissionSets": [["SPOT", "MARGIN"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]}

    def fault(self, request, path, params, kind, argument=None):
        """An answer in place of the right one: 429 (Retry-After: argument, default 7), 418, 403 (its WAF's page), 503
        (Binance's -1008), 502 (a proxy's web page), drop (the connection closed, no answer), slow (the right answer,
        after argument seconds), html (200 with a web page), shape (200 with argument as the JSON), pass (the
        right answer: a fault for a later request)."""
        if kind == "429":
            return self.send(request, 429, {"code": -1003, "msg": "Too much request weight used; current limit is"
                             " 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to"
                             " avoid polling the API."}, headers=[("Retry-After", str(argument or 7))])
        if kind == "418":
            return self.send(request, 418, {"code": -1003, "msg": "Way too much request weight used; IP banned"
                             f" until {self.time() + 120_000}. Please use WebSocket Streams for live updates to avoid"
                             " bans."}, headers=[("Retry-After", "120")])
        if kind == "503":
            return self.send(request, 503, {"code": -1008, "msg": "Server is currently overloaded with other"
                             " requests. Please try again in a few minutes."})
        if kind == "403":  # Binance's web application firewall (AWS WAF behind CloudFront) answers with its page
            return self.send(request, 403, "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\">"
                             "<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>403"
                             " ERROR</H1><H2>The request could not be satisfied.</H2></BODY></HTML>", "text/html")
        if kind == "451":  # a request from a region Binance does not serve
            return self.send(request, 451, {"code": 0, "msg": "Service unavailable from a restricted location according"
                             " to 'b. Eligibility' in https://www.binance.com/en/terms. Please contact customer service"
                             " if you believe you received this message in error."})
        if kind == "502":
            return self.send(request, 502, "<html><head><title>502 Bad Gateway</title></head></html>", "text/html")
        if kind == "drop":
            return None
        if kind == "html":
            return self.send(request, 200, "<html><body>Welcome to the hotel wifi</body></html>", "text/html")
        if kind == "shape":
            return self.send(request, 200, argument)
        if kind == "slow":
            self.released.wait(argument)
        assert kind in ("slow", "pass"), kind
        return self.answer(request, path, params)


def binance_price(cents):
    return f"{cents // 100}.{cents % 100:02d}000000"


class Timeline:
    """A clock of the test's own for the fake exchange and paper's client (see exchange): a sleep moves it on
    at once and is noted in `slept`; `then(timeline)`, if set, runs after each sleep (to press Ctrl-C)."""

    def __init__(self, now):
        self.now, self.slept, self.then = now, [], None

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += round(seconds * 1000)
        if self.then:
            self.then(self)


@pytest.fixture
def exchange(monkeypatch):
    """The fake exchange at 2025-01-01 00:05:30 (five closed one-minute bars, the sixth forming), on a timeline
    of the test's own that paper's client shares: its waits take no time. No proxy, no PAPER_MARKET_URL."""
    timeline = Timeline(LISTED + 5 * 60_000 + 30_000)
    monkeypatch.setattr(paper.Exchange, "clock", lambda client: timeline.now)
    monkeypatch.setattr(paper.Exchange, "sleep", lambda client, seconds: timeline.sleep(seconds))
    for name in ("PAPER_MARKET_URL", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with FakeBinance(lambda: timeline.now) as fake:
        fake.timeline = timeline
        yield fake


def ctrl_c(timeline):
    os.kill(os.getpid(), signal.SIGINT)


SELF_SIGNED = """-----BEGIN CERTIFICATE-----
MIIBjzCCATagAwIBAgIUVMx/ET8IPJOOjIAKQ0dCjBqSkvAwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwNjAwMzcyMVoYDzIxMjYxMTEy
MDAzNzIxWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAR7gE2+S8YZxvUUolo9m7+NWlX7y5c5GszAFAoSCjCgjhU3MrSIPdPL
GpdoLQkORt3b5A7EG0bc2S03cFxZAYmso2QwYjAdBgNVHQ4EFgQUQ6NjtKkVZT4K
m23lcGji27ySO2AwHwYDVR0jBBgwFoAUQ6NjtKkVZT4Km23lcGji27ySO2AwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0cAMEQC
IBQc8A8CFAPqnSgzxCqDZjOtMJGyTeIvjWJ58e2LGT/GAiBFrI0Yu2RQl45z1qsA
uG+GHjiqHWsJD38jYx09EodC3A==
-----END CERTIFICATE-----
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeLlJ41lxcIqjMGrD
vhApL6JBPu6rGEO9M8cWkNU8eHehRANCAAR7gE2+S8YZxvUUolo9m7+NWlX7y5c5
GszAFAoSCjCgjhU3MrSIPdPLGpdoLQkORt3b5A7EG0bc2S03cFxZAYms
-----END PRIVATE KEY-----
"""  # a certificate for 127.0.0.1 (to 2126) that nobody vouches for, with its key


# --- Helpers used by several sections ---

HEADER = "type,amount,currency,description,ref\n"


def csv_file(tmp_path, *lines, header=HEADER):
    path = tmp_path / "rows.csv"
    path.write_text(header + "".join(line + "\n" for line in lines))
    return str(path)


def balances(run, acct):
    account = json.loads(ok(run("status", "--account-id", acct, "--json")))
    return {c: (b["available"], b["reserved"]) for c, b in account["balances"].items()}


def price(run, symbol, *bar, time):
    """tick a price (one value) or a bar (open, high, low, close) at a market time."""
    argv = ["--price", bar[0]] if len(bar) == 1 else ["--open", bar[0], "--high", bar[1], "--low", bar[2],
                                                      "--close", bar[3]]
    return json.loads(ok(run("tick", "--symbol", symbol, *argv, "--time", time, "--json")))


def place(run, acct, side, qty, *argv):
    return json.loads(ok(run("order", "--account-id", acct, "--side", side, "--symbol", "BTC/USDT", "--qty", qty,
                             *argv, "--json")))


def bar_file(path, bars, symbol="BTC/USDT"):
    path.write_text("time,symbol,open,high,low,close\n" + "".join(f"{t},{symbol},{o},{h},{l},{c}\n"
                                                                  for t, o, h, l, c in bars))
    return str(path)


def fills(db):
    """Each fill's market time, side, qty, price and fee, in order."""
    return query(db, "SELECT p.time, t.side, t.qty, t.price, t.fee FROM trades t JOIN prices p ON p.id = t.price_id"
                     " ORDER BY t.id")


def strategy_file(tmp_path, text, name="strategy.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- Input checks: amounts, currencies, text and times ---

BAD_AMOUNTS = ["", " ", "1 000", " 1", "1 ", "5 ", "\u00a05", "+1", "-1", "0", "0.0", "000", ".", "..5", "1e5",
               "1E400", "NaN", "nan", "inf", "-Infinity", "0x10", "1,000", "1_000", "１２", "٣", "½", "1/2", "1.2.3",
               "1." + "0" * 18 + "1", "0." + "1" * 19, "1" * 19, "1" * 19 + ".5", "abc", "5$"]  # test_faults.py too


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_bad_amounts_are_usage_errors_and_change_nothing(run, acct, db, amount):
    before = dump(db)
    for command in ("deposit", "withdraw"):
        err = refused(run(command, "--account-id", acct, "--amount", amount), code=2)
        assert "argument --amount:" in err
    assert dump(db) == before


@pytest.mark.parametrize("amount, why", [
    ("0", "greater than zero"), ("-1", "amount must be greater than zero, not -1"), ("1e5", "not a number"),
    ("0." + "1" * 19, "more than 18 decimal places"), ("1" * 19, "more than 18 digits"),
])
def test_bad_amounts_say_why(run, acct, amount, why):
    assert why in refused(run("deposit", "--account-id", acct, "--amount", amount), code=2)


def test_amounts_with_a_bare_point_leading_zeros_or_18_digits_are_taken(run, acct, db):
    for amount in ["5.", ".5", "007", "1." + "0" * 18, "1" * 18]:
        ok(run("deposit", "--account-id", acct, "--amount", amount))
    assert balance(db, acct) == (Decimal("5000") + 5 + Decimal(".5") + 7 + 1 + int("1" * 18), 0)


def test_currency_is_upper_cased_and_checked(run, acct, db):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "btc"))
    assert balance(db, acct, "BTC") == (1, 0)
    for currency in ["US D", "A", "ABCDEFGHIJK", "", "ÜSD", "US-D"]:
        refused(run("deposit", "--account-id", acct, "--amount", "1", "--currency", currency), code=2)


@pytest.mark.parametrize("argv, text", [
    (["deposit", "--amount", "00000000000000000001.5"], "balance 5001.50 USDT"),
    (["deposit", "--amount", "1.500000000000000000000000"], "balance 5001.50 USDT"),
    (["deposit", "--amount", "1", "--description", "family 👨‍👩‍👧 and 🏴󠁧󠁢󠁳󠁣󠁴󠁿"], "balance 5001.00 USDT"),
    (["trade", "--side", "BUY", "--symbol", "btc/usdt", "--qty", "1", "--price", "1"], "buy 1.00 BTC/USDT"),
])
def test_leading_and_trailing_zeros_emoji_and_lower_case_are_taken(run, acct, argv, text):
    assert text in ok(run(argv[0], "--account-id", acct, *argv[1:]))


@pytest.mark.parametrize("argv, why", [
    (["--ref", "rent "], "starts or ends with a space"),
    (["--ref", " rent"], "starts or ends with a space"),
    (["--description", "right-to-left \u202e override"], "printable characters"),
])
def test_a_ref_with_an_outer_space_or_a_description_with_a_bidi_override_is_a_usage_error(run, acct, db, argv, why):
    before = dump(db)
    assert why in refused(run("deposit", "--account-id", acct, "--amount", "1", *argv), code=2)
    assert dump(db) == before


@pytest.mark.parametrize("text", ["rent\u200d", "re\u200dnt", "\u200d", "a\U000e0041"])
def test_an_invisible_character_outside_an_emoji_is_refused(run, acct, text):
    assert "printable characters" in refused(run("deposit", "--account-id", acct, "--amount", "1", "--ref", text),
                                             code=2)


@pytest.mark.parametrize("given, stored", [
    ("2026-11-25T14:00-05:00", "2026-11-25T19:00:00.000000Z"),
    ("2026-11-25T14:00:00,5Z", "2026-11-25T14:00:00.500000Z"),
    ("2026-W48-3T14:00:00Z", "2026-11-25T14:00:00.000000Z"),
    ("2026-11-25T14:00:00.000+01:00", "2026-11-25T13:00:00.000000Z"),
])
def test_every_time_is_stored_in_one_form(run, acct, given, stored):
    assert price(run, "BTC/USDT", "1", time=given)["time"] == stored


def test_a_compact_iso_date_is_a_date(run, db, tmp_path):
    ok(run("init"))
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "5", "--time", "20261125"))
    assert query(db, "SELECT time FROM prices") == [("2026-11-25T00:00:00.000000Z",)]  # not 1970-08-23


@pytest.mark.parametrize("given, stored", [("2025", "2025-01-01T00:00:00.000000Z"),  # a year, not 1970's 2,025th second
                                           ("2025-06", "2025-06-01T00:00:00.000000Z")])
def test_a_year_or_a_month_alone_is_its_first_day(run, db, acct, given, stored):
    assert ok(run("tick", "--symbol", "BTC/USDT", "--price", "1", "--time", given)) == f"BTC/USDT 1.00 at {stored}\n"
    assert query(db, "SELECT time FROM prices") == [(stored,)]


# --- Accounts: init, status, account ids, close ---

def test_init_prints_an_id_and_status_shows_5000(run, acct, db):
    assert UUID.fullmatch(acct)
    out = ok(run("status", "--account-id", acct))
    assert f"id          {acct}" in out
    assert "status      ACTIVE" in out
    assert "leverage    1.00 (max 3.00)" in out
    assert re.search(r"^USDT\s+5000\.00\s+0\.00\s+5000\.00$", out, re.M)
    assert re.search(r"^ +1 +\S+Z +DEPOSIT +USDT +5000\.00 +5000\.00 +Initial deposit$", out, re.M)


def test_init_takes_a_balance_currency_name_and_leverage(run, db):
    out = ok(run("init", "--balance", "12.5", "--currency", "eur", "--name", "Swing 🚀",
                 "--leverage", "2", "--max-leverage", "5", "--json"))
    account = json.loads(out)
    assert account["name"] == "Swing 🚀"
    assert (account["leverage"], account["max_leverage"]) == ("2.00", "5.00")
    assert account["balances"] == {"EUR": {"available": "12.50", "reserved": "0.00", "total": "12.50"}}
    assert [tx["description"] for tx in account["transactions"]] == ["Initial deposit"]


def test_init_default_balance_is_5000_usdt(run):
    account = json.loads(ok(run("init", "--json")))
    assert account["balances"]["USDT"]["available"] == "5000.00"
    assert account["name"] == "Paper Trading Account"


def test_init_zero_balance_opens_an_empty_account(run, db):
    acct = ok(run("init", "--balance", "0")).strip()
    account = json.loads(ok(run("status", "--account-id", acct, "--json")))
    assert account["balances"] == {} and account["transactions"] == []
    assert "No balances." in ok(run("status", "--account-id", acct))


@pytest.mark.parametrize("argv", [
    ["--leverage", "4"],  # above the default max of 3
    ["--leverage", "2", "--max-leverage", "1.5"],
    ["--leverage", "0"],
    ["--max-leverage", "-1"],
    ["--balance", "-5"],
    ["--name", ""],
    ["--name", "x" * 10_000],
    ["--name", "tab\there"],
    ["--name", "line\nbreak"],
    ["--currency", "US D"],
    ["--currency", "ABCDEFGHIJK"],
    ["--currency", ""],
    ["--currency", "U"],
])
def test_init_refuses_bad_options_and_creates_nothing(run, db, argv):
    refused(run("init", *argv), code=2)
    assert not os.path.exists(db)


def test_status_json_has_every_field_in_order(run, acct):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--ref", "k"))
    account = json.loads(ok(run("status", "--account-id", acct, "--json")))
    assert list(account) == ["id", "name", "status", "currency", "leverage", "max_leverage", "created_at",
                             "closed_at", "balances", "transactions", "quote", "holdings", "equity", "unpriced",
                             "realized_pnl", "risk"]
    assert account["id"] == acct and account["status"] == "ACTIVE" and account["closed_at"] is None
    assert account["balances"]["USDT"] == {"available": "5001.00", "reserved": "0.00", "total": "5001.00"}
    newest = account["transactions"][0]
    assert set(newest) >= {"id", "type", "currency", "amount", "balance_after", "description",
                           "reference_id", "created_at"}
    assert (newest["type"], newest["amount"], newest["balance_after"], newest["reference_id"]) == (
        "DEPOSIT", "1.00", "5001.00", "k")


def test_status_shows_the_last_10_transactions(run, acct):
    for i in range(12):
        ok(run("deposit", "--account-id", acct, "--amount", "1"))
    account = json.loads(ok(run("status", "--account-id", acct, "--json")))
    assert [tx["id"] for tx in account["transactions"]] == list(range(13, 3, -1))
    assert "Last 10 transactions:" in ok(run("status", "--account-id", acct))


def test_status_lists_every_account(run, acct):
    other = ok(run("init", "--balance", "7", "--name", "Second")).strip()
    out = ok(run("status"))
    assert re.search(rf"^{acct}  ACTIVE  Paper Trading Account  5000\.00 USDT$", out, re.M)
    assert re.search(rf"^{other}  ACTIVE  Second +7\.00 USDT$", out, re.M)
    listed = json.loads(ok(run("status", "--json")))
    assert [a["id"] for a in listed] == [acct, other]
    assert all("transactions" not in a for a in listed)


def test_status_with_no_accounts(run, db):
    assert ok(run("status")) == f"No accounts yet in {db}: create one with `python paper.py init`.\n"
    assert not os.path.exists(db), "status must not create a database"
    assert json.loads(ok(run("status", "--json"))) == []
    paper.Ledger(db, create=True).close()
    assert "No accounts yet" in ok(run("status"))


def test_a_unique_prefix_of_an_account_id_in_any_case_names_it(run, acct, db):
    ok(run("deposit", "--account-id", acct[:4].upper(), "--amount", "1"))
    assert balance(db, acct) == (Decimal("5001"), 0)


def test_ambiguous_prefix_lists_the_matches(run, db, monkeypatch):
    ids = iter(["abcd0000-0000-4000-8000-000000000001", "abcd0000-0000-4000-8000-000000000002"])
    monkeypatch.setattr(paper, "new_id", lambda: next(ids))
    ok(run("init")), ok(run("init"))
    before = dump(db)
    err = refused(run("deposit", "--account-id", "abcd", "--amount", "1"))
    assert err == ("paper: error: account id 'abcd' is ambiguous: it matches"
                   " abcd0000-0000-4000-8000-000000000001, abcd0000-0000-4000-8000-000000000002\n")
    ok(run("deposit", "--account-id", "abcd0000-0000-4000-8000-000000000002", "--amount", "1"))
    assert dump(db) != before


@pytest.mark.parametrize("account_id, code", [
    ("abc", 2), ("", 2), ("' OR 1=1 --", 2), ("%", 2), ("____", 2), ("abcd%", 2), ("x" * 37, 2),
    ("0000", 1), ("00000000-0000-4000-8000-000000000000", 1),
])
def test_bad_or_unknown_account_ids(run, acct, db, account_id, code):
    before = dump(db)
    for argv in (["deposit", "--amount", "1"], ["history"], ["close"], ["status"], ["verify"]):
        refused(run(argv[0], "--account-id", account_id, *argv[1:]), code=code)
    assert dump(db) == before


def test_close_keeps_the_account_and_refuses_money(run, acct, db):
    assert ok(run("close", "--account-id", acct)) == f"account {acct} closed\n"
    account = json.loads(ok(run("status", "--account-id", acct, "--json")))
    assert account["status"] == "CLOSED" and account["closed_at"]
    assert "CLOSED" in ok(run("status"))
    with connection(db) as conn:
        assert conn.execute("SELECT is_active, closed_at IS NOT NULL FROM accounts").fetchone() == (0, 1)
    before = dump(db)
    assert "is closed" in refused(run("deposit", "--account-id", acct, "--amount", "1"))
    assert "is closed" in refused(run("withdraw", "--account-id", acct, "--amount", "1"))
    assert "is closed" in refused(run("close", "--account-id", acct))
    assert dump(db) == before


def test_a_usd_account_is_valued_in_usd_unless_told_otherwise(run):
    acct = ok(run("init", "--balance", "1000", "--currency", "USD")).strip()
    ok(run("tick", "--symbol", "BTC/USD", "--price", "100", "--time", "2026-11-01"))
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USD", "--qty", "2", "--fee-rate", "0"))
    ok(run("tick", "--symbol", "BTC/USD", "--price", "110", "--time", "2026-11-02"))
    ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USD", "--qty", "2", "--fee-rate", "0"))
    stats = json.loads(ok(run("stats", "--account-id", acct, "--json")))
    # 800 USD + 2 BTC at 100 = 1000, then 800 + 2 x 110 = 1020: +2%; the sell realises 2 x (110 - 100) = 20 USD
    assert (stats["quote"], stats["equity_final"], stats["return"], stats["best_trade"]) == ("USD", "1020.00",
                                                                                           pytest.approx(0.02), "20.00")
    assert json.loads(ok(run("status", "--account-id", acct, "--json")))["equity"] == "1020.00"
    text = ok(run("stats", "--account-id", acct, "--quote", "EUR"))  # nothing is priced in EUR
    assert re.search(r"^Max\. drawdown \[%\] +n/a$", text, re.M) and re.search(r"^Duration +n/a$", text, re.M)
    assert re.search(r"^Best trade \[USD\] +20\.00$", text, re.M)  # the trade's own currency, not EUR
    assert text.endswith("No equity points yet: USD has no price in EUR: record USD/EUR prices, or value in another"
                         " currency with --quote.\n")


# --- Money in and out: deposit, withdraw, history, import ---

def test_deposits_add_exactly_and_are_stored_as_text_to_18_places(run, acct, db):
    ok(run("init", "--balance", "0"))
    empty = json.loads(ok(run("status", "--json")))[1]["id"]
    ok(run("deposit", "--account-id", empty, "--amount", "0.1"))
    tx = json.loads(ok(run("deposit", "--account-id", empty, "--amount", "0.2", "--json")))
    assert tx["balance_after"] == "0.30"
    assert balance(db, empty) == (Decimal("0.3"), 0)
    ok(run("deposit", "--account-id", acct, "--amount", "0.000000000000000001", "--currency", "btc"))
    ok(run("deposit", "--account-id", acct, "--amount", "999999999999999998.999999999999999998",
           "--currency", "BTC"))
    assert balance(db, acct, "BTC") == (Decimal("999999999999999998.999999999999999999"), 0)
    with connection(db) as conn:
        assert conn.execute("SELECT available_amount, typeof(available_amount) FROM balances"
                            " WHERE currency = 'BTC'").fetchone() == ("999999999999999998.999999999999999999", "text")


def test_a_balance_that_would_reach_10_to_the_18_is_refused(run, acct, db):
    ok(run("deposit", "--account-id", acct, "--amount", "999999999999999999", "--currency", "XYZ"))
    before = dump(db)
    err = refused(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "XYZ"))
    assert "paper holds less than 10^18" in err
    assert dump(db) == before


def test_deposit_and_withdraw_text_and_json(run, acct, db):
    assert ok(run("deposit", "--account-id", acct, "--amount", "250.50")) == (
        "transaction 2: DEPOSIT 250.50 USDT, balance 5250.50 USDT\n")
    tx = json.loads(ok(run("withdraw", "--account-id", acct, "--amount", "100", "--description", "rent",
                           "--json")))
    assert tx["id"] == 3 and tx["type"] == "WITHDRAWAL" and tx["amount"] == "-100.00"
    assert tx["balance_after"] == "5150.50" and tx["description"] == "rent"
    assert balance(db, acct) == (Decimal("5150.50"), 0)


def test_withdraw_refuses_to_go_below_zero(run, acct, db):
    before = dump(db)
    err = refused(run("withdraw", "--account-id", acct, "--amount", "5000.01"))
    assert err == "paper: error: insufficient funds: 5000.00 USDT available, 5000.01 needed\n"
    assert dump(db) == before
    ok(run("withdraw", "--account-id", acct, "--amount", "5000"))
    assert balance(db, acct) == (0, 0)
    refused(run("withdraw", "--account-id", acct, "--amount", "1", "--currency", "EUR"))


def test_history_newest_first_with_limit_json_and_csv(run, acct):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--description", 'say "hi", ok'))
    ok(run("withdraw", "--account-id", acct, "--amount", "2"))
    out = ok(run("history", "--account-id", acct))
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["WITHDRAWAL", "DEPOSIT", "DEPOSIT"]
    assert [t["id"] for t in json.loads(ok(run("history", "--account-id", acct, "--json")))] == [3, 2, 1]
    assert len(json.loads(ok(run("history", "--account-id", acct, "--limit", "2", "--json")))) == 2
    lines = ok(run("history", "--account-id", acct, "--csv")).splitlines()
    assert lines[0] == "id,created_at,type,currency,amount,balance_after,description,reference_id,trade_id"
    assert lines[1].split(",")[2:6] == ["WITHDRAWAL", "USDT", "-2.00", "4999.00"]
    assert lines[2].endswith(',DEPOSIT,USDT,1.00,5001.00,"say ""hi"", ok",,')
    for limit in ("0", "-1", "x", "1.5"):
        refused(run("history", "--account-id", acct, "--limit", limit), code=2)


def test_import_records_every_row_with_its_balance_after(run, acct, db, tmp_path):
    path = csv_file(tmp_path, "DEPOSIT,100.5,,,", "withdrawal,0.25,USDT,rent,r1", "DEPOSIT,2,btc,from cold wallet,r2")
    assert ok(run("import", "--account-id", acct, path)) == "recorded 3 transactions\n"
    key = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]  # a row without a ref: the file's, and its line
    rows = json.loads(ok(run("history", "--account-id", acct, "--json")))
    assert [(t["type"], t["currency"], t["amount"], t["balance_after"], t["description"], t["reference_id"])
            for t in reversed(rows)] == [
        ("DEPOSIT", "USDT", "5000.00", "5000.00", "Initial deposit", None),
        ("DEPOSIT", "USDT", "100.50", "5100.50", "Deposit", f"{key} line 2"),
        ("WITHDRAWAL", "USDT", "-0.25", "5100.25", "rent", "r1"),
        ("DEPOSIT", "BTC", "2.00", "2.00", "from cold wallet", "r2")]
    assert balance(db, acct) == (Decimal("5100.25"), 0) and balance(db, acct, "BTC") == (2, 0)
    assert ok(run("verify")) == "OK\n"


def test_an_import_of_one_row_says_1_transaction(run, acct, tmp_path):
    assert ok(run("import", "--account-id", acct, csv_file(tmp_path, "DEPOSIT,1,,,"))) == "recorded 1 transaction\n"


def test_import_twice_records_once(run, acct, db, tmp_path):
    path = csv_file(tmp_path, "DEPOSIT,1,,,a", "DEPOSIT,2,,,b", "DEPOSIT,4,,,")
    assert json.loads(ok(run("import", "--account-id", acct, path, "--json"))) == {"recorded": 3, "skipped": 0}
    assert json.loads(ok(run("import", "--account-id", acct, path, "--json"))) == {"recorded": 0, "skipped": 3}
    assert ok(run("import", "--account-id", acct, path)) == "recorded 0 transactions, skipped 3 already recorded\n"
    assert balance(db, acct) == (Decimal("5007"), 0)  # 1 + 2 + 4, each once: the row without a ref too


@pytest.mark.parametrize("lines, why", [
    (["DEPOSIT,1,,,", "DEPOSIT,abc,,,"], "line 3: amount 'abc' is not a number"),
    (["DEPOSIT,1,,,", "TRANSFER,1,,,"], "line 3: type 'TRANSFER' must be DEPOSIT or WITHDRAWAL"),
    (["DEPOSIT,1,,"], "line 2: 4 columns, not 5"),
    (["DEPOSIT,1,,,", "WITHDRAWAL,5006.01,,,"], "line 3: insufficient funds: 5006.00 USDT available, 5006.01 needed"),
    (["DEPOSIT,1,US D,,"], "line 2: currency 'US D' must be 2-10 ASCII letters or digits"),
    (["DEPOSIT,1,,,x", "DEPOSIT,2,,,x"], "line 3: ref 'x' is on line 2 with other details"),
    (["DEPOSIT,1,,,x", "WITHDRAWAL,1,,,x"], "line 3: ref 'x' is on line 2 with other details"),
    (["DEPOSIT,1,,,init", "DEPOSIT,1,,,"], "line 2: ref 'init' was used for DEPOSIT 5.00 USDT"),
])
def test_a_bad_row_refuses_the_whole_file(run, acct, db, tmp_path, lines, why):
    ok(run("deposit", "--account-id", acct, "--amount", "5", "--ref", "init"))
    before = dump(db)
    assert why in refused(run("import", "--account-id", acct, csv_file(tmp_path, *lines)))
    assert dump(db) == before


def test_import_refuses_a_file_without_the_header(run, acct, db, tmp_path):
    before = dump(db)
    err = refused(run("import", "--account-id", acct, csv_file(tmp_path, "DEPOSIT,1,,,", header="kind,amount\n")))
    assert "the first line must be type,amount,currency,description,ref" in err
    assert "No such file or directory: " in refused(run("import", "--account-id", acct, str(tmp_path / "missing.csv")))
    assert dump(db) == before


def test_import_into_a_closed_account_is_refused(run, acct, db, tmp_path):
    ok(run("close", "--account-id", acct))
    before = dump(db)
    assert "is closed" in refused(run("import", "--account-id", acct, csv_file(tmp_path, "DEPOSIT,1,,,")))
    assert dump(db) == before


def test_a_long_import_is_one_transaction(run, acct, db, tmp_path):
    """Rows go to SQLite 500 at a time: refs repeat across those batches, and a refusal on row 1,201
    takes back the 1,200 rows before it."""
    lines = [f"DEPOSIT,0.01,,,r{i}" for i in range(1, 1201)]
    ok(run("import", "--account-id", acct, csv_file(tmp_path, *lines[:100])))
    again = [*lines, "DEPOSIT,0.01,,,r3", "DEPOSIT,0.01,,,r1000"]  # an earlier import's ref, this file's own
    assert ok(run("import", "--account-id", acct, csv_file(tmp_path, *again))) == (
        "recorded 1,100 transactions, skipped 102 already recorded\n")
    assert balance(db, acct) == (Decimal("5012.00"), 0)
    before = dump(db)
    more = [f"DEPOSIT,0.01,,,s{i}" for i in range(1, 1201)]
    err = refused(run("import", "--account-id", acct, csv_file(tmp_path, *more, "DEPOSIT,0.02,,,s700")))
    assert err == "paper: error: line 1202: ref 's700' is on line 701 with other details\n"
    err = refused(run("import", "--account-id", acct, csv_file(tmp_path, *more, "WITHDRAWAL,6000,,,")))
    assert err == "paper: error: line 1202: insufficient funds: 5024.00 USDT available, 6000.00 needed\n"
    assert dump(db) == before
    assert ok(run("verify")) == "OK\n"


def test_a_recorded_ref_is_found_in_any_batch(db):
    with paper.Ledger(db, create=True) as ledger:
        acct = ledger.create_account().id
        ledger.deposit(acct, "1", ref="late")
        rows = [("DEPOSIT", "1", "", "", f"n{i}") for i in range(600)]
        assert ledger.import_rows(acct, rows + [("DEPOSIT", "1", "", "", "late")]) == (600, 1)
        other = [("DEPOSIT", "1", "", "", f"m{i}") for i in range(600)] + [("DEPOSIT", "2", "", "", "late")]
        with pytest.raises(paper.PaperError, match=r"^line 602: ref 'late' was used for DEPOSIT 1\.00 USDT"):
            ledger.import_rows(acct, other)
        assert ledger.account(acct).balances["USDT"].total == Decimal("5601")


def test_import_reads_its_rows_before_it_writes(db):
    """Rows from a generator that writes too (here a deposit through the same ledger) are read to the
    end before the import's transaction begins: the deposit is neither lost nor overwritten."""
    with paper.Ledger(db, create=True) as ledger:
        acct = ledger.create_account().id

        def rows():
            for i in range(600):
                if i == 550:
                    ledger.deposit(acct, "10")
                yield "DEPOSIT", "1", "", "", ""
        assert ledger.import_rows(acct, rows()) == (600, 0)
        assert ledger.account(acct).balances["USDT"].total == Decimal("5610")
        assert ledger.verify() == []


def test_the_same_rows_in_another_file_are_new_money(run, acct, db, tmp_path):
    first = csv_file(tmp_path, "DEPOSIT,10,,,")
    ok(run("import", "--account-id", acct, first))
    (tmp_path / "march.csv").write_text(HEADER + "DEPOSIT,10,,,\nDEPOSIT,1,,,\n")
    assert ok(run("import", "--account-id", acct, str(tmp_path / "march.csv"))) == "recorded 2 transactions\n"
    assert ok(run("import", "--account-id", acct, str(tmp_path / "march.csv"))) == \
        "recorded 0 transactions, skipped 2 already recorded\n"
    assert balance(db, acct) == (Decimal("5021"), 0)


def test_import_takes_a_byte_order_mark_and_trailing_blank_lines(run, acct, db, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "DEPOSIT,1.5,,,\nDEPOSIT,2,,,x\n\n\n").encode())
    assert ok(run("import", "--account-id", acct, str(path))) == "recorded 2 transactions\n"
    assert balance(db, acct) == (Decimal("5003.5"), 0)


def test_import_names_the_line_with_a_bad_byte(run, acct, db, tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(HEADER.encode() + b"DEPOSIT,1,,,\n" * 20_000 + b"DEPOSIT,1,,caf\xe9,\n" + b"DEPOSIT,1,,,\n")
    before = dump(db)
    assert refused(run("import", "--account-id", acct, str(path))) == \
        f"paper: error: {path}: line 20002 is not UTF-8 text\n"
    assert dump(db) == before


def test_import_counts_lines_after_a_byte_order_mark_and_skips_blank_looking_ones(run, acct, db, tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"DEPOSIT,1,,,\n   \n\xffDEPOSIT,1,,,\n")
    assert refused(run("import", "--account-id", acct, str(path))) == f"paper: error: {path}: line 4 is not UTF-8 text\n"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"DEPOSIT,1,,,\n   \n,,,,\n")
    assert ok(run("import", "--account-id", acct, str(path))) == "recorded 1 transaction\n"


def test_money_moves_in_the_accounts_own_currency_unless_told(run, db):
    acct = ok(run("init", "--balance", "100", "--currency", "USD")).strip()
    ok(run("deposit", "--account-id", acct, "--amount", "5"))
    ok(run("withdraw", "--account-id", acct, "--amount", "1"))
    ok(run("reset", "--account-id", acct, "--balance", "50"))
    assert query(db, "SELECT DISTINCT currency FROM transactions") == [("USD",)]
    assert balance(db, acct, "USD") == (Decimal(50), 0)


# --- Refs and retries: the same ref records once ---

def test_same_ref_records_once_and_reports_the_original(run, acct, db):
    first = json.loads(ok(run("deposit", "--account-id", acct, "--amount", "0.20", "--ref", "order-77", "--json")))
    again = json.loads(ok(run("deposit", "--account-id", acct, "--amount", "0.2000", "--ref", "order-77", "--json")))
    assert again == first
    assert balance(db, acct) == (Decimal("5000.2"), 0)
    with connection(db) as conn:
        assert conn.execute("SELECT count(*) FROM transactions WHERE reference_id = 'order-77'").fetchone() == (1,)


@pytest.mark.parametrize("argv", [
    ["deposit", "--amount", "0.3"],
    ["deposit", "--amount", "0.2", "--currency", "EUR"],
    ["withdraw", "--amount", "0.2"],
])
def test_same_ref_with_other_details_is_refused(run, acct, db, argv):
    ok(run("deposit", "--account-id", acct, "--amount", "0.2", "--ref", "k1"))
    before = dump(db)
    err = refused(run(argv[0], "--account-id", acct, *argv[1:], "--ref", "k1"))
    assert "ref 'k1' was used for DEPOSIT 0.20 USDT" in err
    assert dump(db) == before


def test_refs_belong_to_an_account(run, acct, db):
    other = ok(run("init")).strip()
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--ref", "same"))
    ok(run("deposit", "--account-id", other, "--amount", "2", "--ref", "same"))
    assert balance(db, other) == (Decimal("5002"), 0)


def test_withdraw_retry_is_idempotent_even_when_funds_are_gone(run, acct, db):
    ok(run("withdraw", "--account-id", acct, "--amount", "5000", "--ref", "all"))
    assert "balance 0.00 USDT" in ok(run("withdraw", "--account-id", acct, "--amount", "5000", "--ref", "all"))
    assert balance(db, acct) == (0, 0)


def test_trade_ref_is_idempotent(run, acct, db):
    argv = ["trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "0.01", "--price",
            "65000", "--ref", "t-1", "--json"]
    first = json.loads(ok(run(*argv)))
    assert json.loads(ok(run(*argv[:-4], "65000.00", "--ref", "t-1", "--json"))) == first
    assert balances(run, acct)["USDT"] == ("4349.35", "0.00")
    before = dump(db)
    assert "ref 't-1' was used for buy 0.01 BTC/USDT @ 65000.00 (trade 1)" in refused(
        run(*argv[:-4], "64000", "--ref", "t-1"))
    assert "ref 't-1' was used for buy" in refused(run("deposit", "--account-id", acct, "--amount", "1", "--ref", "t-1"))
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--ref", "d-1"))
    assert "ref 'd-1' was used for DEPOSIT 1.00 USDT" in refused(run(*argv[:-4], "65000", "--ref", "d-1"))
    changed = [line for line in dump(db) if line not in before]  # the deposit d-1 and its balance, nothing else
    assert [line[:24] for line in changed] == ['INSERT INTO "balances" V', 'INSERT INTO "transaction'], changed
    assert "'d-1'" in changed[1]


def test_order_refs_are_idempotent(run, acct, db):
    argv = ["order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--limit-price",
            "100", "--ref", "dip-1"]
    first = ok(run(*argv))
    assert ok(run(*argv)) == first  # a retry: the same order, nothing reserved twice
    assert balance(db, acct) == (Decimal("4899.90"), Decimal("100.10"))
    assert "ref 'dip-1' was used for a limit order to buy 1.00 BTC/USDT" in refused(
        run(*argv[:-3], "101", "--ref", "dip-1"))


def test_a_trade_retried_with_slippage_is_the_same_trade(run, acct):
    argv = ["trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--price", "50",
            "--slippage", "0.01", "--ref", "s1"]
    assert ok(run(*argv)) == ok(run(*argv))  # the same trade: 50.50 both times


def test_an_order_retried_with_another_expiry_is_refused(run, acct):
    order = ["order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--limit-price",
             "10", "--ref", "o1"]
    ok(run(*order, "--expires", "2027-01-01"))
    assert "ref 'o1' was used for a limit order" in refused(run(*order, "--expires", "2028-01-01"))


def test_a_ref_names_one_operation_of_any_kind(run, acct, db):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--ref", "k"))
    before = dump(db)
    order = ["order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--limit-price", "1"]
    assert "ref 'k' was used for DEPOSIT 1.00 USDT (transaction 2)" in refused(run(*order, "--ref", "k"))
    ok(run(*order, "--ref", "o"))
    assert "ref 'o' was used for a limit order to buy 1.00 BTC/USDT" in refused(
        run("withdraw", "--account-id", acct, "--amount", "1", "--ref", "o"))
    changed = [line[:21] for line in dump(db) if line not in before]  # the order and its reserve, nothing else
    assert changed == ['INSERT INTO "balances', 'INSERT INTO "orders" '], changed


def test_a_retried_order_prints_the_same_document(run, acct):
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "100", "--time", "2026-11-25"))
    argv = ["order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--limit-price",
            "101", "--ref", "k", "--json"]
    first, again = ok(run(*argv)), ok(run(*argv))
    assert first == again and json.loads(first)["fills"][0]["price"] == "100.00"


def test_retries_of_an_order_say_what_the_first_call_said(run, acct):
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "100", "--time", "2026-11-01"))
    resting = ["order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--limit-price",
               "90", "--ref", "rest"]
    order_id = ok(run(*resting)).strip()
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "89", "--time", "2026-11-02"))  # fills it later
    assert ok(run(*resting)) == f"{order_id}\n"  # not "filled at once" on stderr: it was not
    hopeless = ["order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "60", "--type",
                "stop", "--stop-price", "80", "--ref", "gap"]  # reserves 4,804.80 at 80; fills at once at 89
    first, again = run(*hopeless), run(*hopeless)
    assert first == again and first[0] == 1 and "cancelled at once: not filled at 89.00: insufficient funds" in first[2]


# --- Trading: trades, fees, valuation and P&L, reset ---

def test_a_buy_then_a_sell_print_each_trade_record_its_legs_and_realize_the_pnl(run, acct, db):
    out = ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "0.01",
                 "--price", "65000", "--fee-rate", "0.001"))
    assert out == "trade 1: buy 0.01 BTC/USDT @ 65000.00, fee 0.65 USDT; balances 0.01 BTC, 4349.35 USDT\n"
    assert balances(run, acct) == {"BTC": ("0.01", "0.00"), "USDT": ("4349.35", "0.00")}
    sold = json.loads(ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "btc/usdt", "--qty",
                             "0.01", "--price", "70000", "--json")))
    assert (sold["side"], sold["symbol"], sold["fee"], sold["order_id"]) == ("sell", "BTC/USDT", "0.70", None)
    assert [(t["type"], t["currency"], t["amount"], t["balance_after"]) for t in sold["transactions"]] == [
        ("TRADE_SELL", "BTC", "-0.01", "0.00"), ("TRADE_SELL", "USDT", "700.00", "5049.35"),
        ("FEE", "USDT", "-0.70", "5048.65")]
    assert balances(run, acct) == {"BTC": ("0.00", "0.00"), "USDT": ("5048.65", "0.00")}
    value = json.loads(ok(run("status", "--account-id", acct, "--quote", "USDT", "--json")))
    assert (value["equity"], value["realized_pnl"]) == ("5048.65", {"BTC/USDT": "48.65"})
    assert ok(run("verify")) == "OK\n"


def test_trade_refuses_what_the_account_cannot_pay(run, acct, db):
    before = dump(db)
    err = refused(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                      "--price", "5000"))  # 5000 + 5 fee
    assert err == "paper: error: insufficient funds: 5000.00 USDT available, 5005.00 needed\n"
    err = refused(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "1",
                      "--price", "5000"))
    assert err == "paper: error: insufficient funds: 0.00 BTC available, 1.00 needed\n"
    assert dump(db) == before
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--price",
           "4995.004995", "--fee-rate", "0.001"))  # costs 4995.004995 + fee 4.99500500 = 5000.000000
    assert balances(run, acct)["USDT"] == ("0.00", "0.00")


def test_fees_round_up_to_8_places_and_products_stay_exact(run, acct):
    trade = json.loads(ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty",
                              "0.333", "--price", "0.000000001", "--fee-rate", "0.001", "--json")))
    assert trade["fee"] == "0.00000001"  # 0.000000000000333 rounded up
    assert trade["transactions"][0]["amount"] == "-0.000000000333"
    err = refused(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty",
                      "0.000000000000000001", "--price", "0.5"))
    assert "needs more than 18 decimal places" in err
    free = json.loads(ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1",
                             "--price", "1", "--fee-rate", "0", "--json")))
    assert free["fee"] == "0.00" and [t["type"] for t in free["transactions"]] == ["TRADE_BUY", "TRADE_BUY"]


def test_closed_accounts_refuse_trading_but_cancel_works(run, acct, db):
    order_id = ok(run("order", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1",
                      "--limit-price", "100")).strip()
    assert ok(run("close", "--account-id", acct)) == (  # its open orders go with it, their reserves released
        f"account {acct} closed\norder {order_id} cancelled (buy 1.00 ETH/USDT); its reserve is available again\n")
    assert balances(run, acct)["USDT"] == ("5000.00", "0.00")
    assert query(db, "SELECT status, reason FROM orders") == [("CANCELLED", "its account was closed")]
    before = dump(db)
    for argv in (["trade", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1",
                  "--price", "1"],
                 ["order", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1",
                  "--limit-price", "1"], ["reset", "--account-id", acct]):
        assert "is closed" in refused(run(*argv))
    for argv in (["fill", "--order-id", order_id], ["cancel", "--order-id", order_id]):
        assert refused(run(*argv)) == f"paper: error: order {order_id} is cancelled\n"
    assert dump(db) == before


def test_valuation_and_pnl_by_average_cost(run, acct):
    for side, qty, price in [("buy", "1", "100"), ("buy", "1", "200"), ("sell", "1", "300")]:
        ok(run("trade", "--account-id", acct, "--side", side, "--symbol", "ETH/USDT", "--qty", qty,
               "--price", price, "--fee-rate", "0"))
    ok(run("deposit", "--account-id", acct, "--amount", "2", "--currency", "SOL"))
    unpriced = json.loads(ok(run("status", "--account-id", acct, "--price", "ETH=250", "--json")))
    assert (unpriced["equity"], unpriced["unpriced"]) == (None, ["SOL"])
    assert unpriced["holdings"]["SOL"] == {"total": "2.00", "price": None, "value": None, "time": None}
    text = ok(run("status", "--account-id", acct, "--price", "ETH=250"))
    assert "SOL has no price in USDT: record SOL/USDT prices (tick, feed, fetch) or give --price SOL=PRICE\n" \
           "No equity is shown while a holding has no price." in text
    value = json.loads(ok(run("status", "--account-id", acct, "--price", "ETH=250", "--price", "sol=10", "--json")))
    assert value["holdings"] == {"ETH": {"total": "1.00", "price": "250.00", "value": "250.00", "time": None},
                                 "SOL": {"total": "2.00", "price": "10.00", "value": "20.00", "time": None},
                                 "USDT": {"total": "5000.00", "price": "1.00", "value": "5000.00", "time": None}}
    assert value["equity"] == "5270.00" and value["quote"] == "USDT"
    assert value["realized_pnl"] == {"ETH/USDT": "150.00"}  # sold at 300 what cost 150 on average
    out = ok(run("status", "--account-id", acct, "--price", "ETH=250", "--price", "SOL=10"))
    assert re.search(r"^equity +5270\.00$", out, re.M) and re.search(r"^ETH/USDT +150\.00$", out, re.M)
    # deposited coins sold beyond what was bought realise only their fee
    ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "SOL/USDT", "--qty", "2", "--price", "10"))
    value = json.loads(ok(run("status", "--account-id", acct, "--price", "ETH=250", "--json")))
    assert value["realized_pnl"]["SOL/USDT"] == "-0.02"
    in_eth = json.loads(ok(run("status", "--account-id", acct, "--quote", "ETH", "--price", "USDT=0.0004",
                               "--json")))
    assert in_eth["equity"] == "3.007992"  # 1 ETH + 5019.98 USDT x 0.0004


def test_pnl_with_an_average_cost_that_does_not_terminate(run, acct):
    for side, qty, price in [("buy", "3", "1"), ("sell", "1", "1")]:
        ok(run("trade", "--account-id", acct, "--side", side, "--symbol", "XY/USDT", "--qty", qty, "--price", price,
               "--fee-rate", "0.1"))
    # cost 3.3 for 3, one sold for 1 - 0.1 fee: 0.9 - 1.1 = -0.2
    value = json.loads(ok(run("status", "--account-id", acct, "--price", "XY=1", "--json")))
    assert value["realized_pnl"] == {"XY/USDT": "-0.20"}
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "XY/USDT", "--qty", "1", "--price", "2",
           "--fee-rate", "0"))  # 3 held at cost 2.2 + 2 = 4.2, 1.4 each
    ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "XY/USDT", "--qty", "3", "--price", "1",
           "--fee-rate", "0"))
    value = json.loads(ok(run("status", "--account-id", acct, "--json", "--quote", "USDT")))
    assert value["realized_pnl"] == {"XY/USDT": "-1.40"}  # -0.2 + 3 - 4.2


def test_reset_starts_over_and_keeps_the_past(run, acct, db):
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "0.01",
           "--price", "65000"))
    ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "0.005",
           "--price", "70000"))
    order_id = ok(run("order", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "0.005",
                      "--limit-price", "80000")).strip()
    assert ok(run("reset", "--account-id", acct, "--balance", "1000")) == f"account {acct} reset: 1000.00 USDT\n"
    assert balances(run, acct) == {"BTC": ("0.00", "0.00"), "USDT": ("1000.00", "0.00")}
    assert json.loads(ok(run("orders", "--account-id", acct, "--json")))[0]["status"] == "CANCELLED"
    history = json.loads(ok(run("history", "--account-id", acct, "--json")))
    assert [(t["type"], t["currency"], t["amount"]) for t in history[:3]] == [
        ("DEPOSIT", "USDT", "1000.00"), ("RESET", "USDT", "-4699.00"), ("RESET", "BTC", "-0.005")]
    assert len(history) == 10  # 1 deposit, 2 trades of 3 legs, 3 reset rows: nothing deleted
    value = json.loads(ok(run("status", "--account-id", acct, "--json", "--quote", "USDT")))
    assert value["realized_pnl"] == {} and value["equity"] == "1000.00"
    assert ok(run("verify")) == "OK\n"
    assert [o["status"] for o in json.loads(ok(run("orders", "--account-id", acct, "--json"))) if o["id"] == order_id] \
        == ["CANCELLED"]


BAD_TRADES = [
    ["--side", "hold"], ["--symbol", "BTCUSDT"], ["--symbol", "BTC/BTC"], ["--symbol", "B/USDT"],
    ["--symbol", "BTC/USDT/X"], ["--qty", "0"], ["--qty", "-1"], ["--price", "1e3"], ["--price", "0"],
    ["--fee-rate", "1"], ["--fee-rate", "-0.1"], ["--fee-rate", "NaN"], ["--qty", "1", "--qty", "2"],
]


@pytest.mark.parametrize("change", BAD_TRADES)
def test_bad_trade_input_is_a_usage_error(run, acct, db, change):
    argv = {"--side": "buy", "--symbol": "BTC/USDT", "--qty": "0.01", "--price": "100"}
    before = dump(db)
    extra = []
    if change[0] in argv and len(change) == 2:
        argv[change[0]] = change[1]
    else:
        extra = change
    refused(run("trade", "--account-id", acct, *[x for kv in argv.items() for x in kv], *extra), code=2)
    assert dump(db) == before


def test_pnl_never_holds_more_base_than_the_account(run, acct):
    """The repro: BTC bought through USDT but sold through EUR leaves the BTC/USDT position empty at
    its average cost, so the next BTC/USDT round trip realises its two fees and nothing else."""
    ok(run("deposit", "--account-id", acct, "--amount", "1000", "--currency", "EUR"))
    for side, symbol, price in [("buy", "BTC/USDT", "100"), ("sell", "BTC/EUR", "90"), ("buy", "BTC/USDT", "200"),
                                ("sell", "BTC/USDT", "200")]:
        ok(run("trade", "--account-id", acct, "--side", side, "--symbol", symbol, "--qty", "1", "--price", price))
    valued = json.loads(ok(run("status", "--account-id", acct, "--price", "EUR=1", "--json")))
    # BTC/EUR: 1 sold, none bought through EUR: it realises its fee only, -0.09.
    # BTC/USDT: the first BTC left through EUR (no P&L here); then 200 + 0.20 paid, 200 - 0.20 received: -0.40.
    assert valued["realized_pnl"] == {"BTC/EUR": "-0.09", "BTC/USDT": "-0.40"}
    text = ok(run("status", "--account-id", acct, "--price", "EUR=1"))
    assert re.search(r"^BTC/EUR +-0\.09\nBTC/USDT +-0\.40$", text, re.M)


def test_a_withdrawal_of_base_leaves_the_position_at_its_average_cost(run, acct):
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "2", "--price", "100",
           "--fee-rate", "0"))
    ok(run("withdraw", "--account-id", acct, "--amount", "1.5", "--currency", "ETH"))
    ok(run("deposit", "--account-id", acct, "--amount", "1.5", "--currency", "ETH"))
    ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "ETH/USDT", "--qty", "2", "--price", "130",
           "--fee-rate", "0"))
    # The position kept 0.5 ETH at 100 each; the 1.5 deposited later cost their sale price:
    # 0.5 x 130 - 0.5 x 100 = 15.
    valued = json.loads(ok(run("status", "--account-id", acct, "--quote", "USDT", "--json")))
    assert valued["realized_pnl"] == {"ETH/USDT": "15.00"}


def test_valuation_refuses_a_price_for_the_quote_and_takes_a_zero_price(run, acct):
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "DOGE/USDT", "--qty", "10", "--price", "1",
           "--fee-rate", "0"))
    err = refused(run("status", "--account-id", acct, "--price", "USDT=2", "--price", "DOGE=1"))
    assert "USDT is the quote currency, worth 1 by definition: give no price for it" in err
    valued = json.loads(ok(run("status", "--account-id", acct, "--price", "DOGE=0", "--json")))
    assert valued["equity"] == "4990.00" and valued["holdings"]["DOGE"]["value"] == "0.00"


def test_a_reset_to_nothing_a_zero_fee_and_a_fee_of_3_places_are_told_as_they_are(run, acct, db):
    assert ok(run("reset", "--account-id", acct, "--balance", "0")) == f"account {acct} reset: it holds nothing\n"
    ok(run("deposit", "--account-id", acct, "--amount", "10"))
    trade = json.loads(ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                              "--price", "5", "--fee-rate", "0", "--json")))
    assert [leg["type"] for leg in trade["transactions"]] == ["TRADE_BUY", "TRADE_BUY"]  # a zero fee: no FEE row
    sell = ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "1", "--price", "6"))
    assert sell == "trade 2: sell 1.00 BTC/USDT @ 6.00, fee 0.006 USDT; balances 0.00 BTC, 10.994 USDT\n"


# --- Orders: limit, stop, stop-limit, oco, trailing and market orders; reserves and fills ---

def test_limit_order_reserves_fills_in_parts_and_releases(run, acct, db):
    order_id = ok(run("order", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1",
                      "--limit-price", "3000")).strip()
    assert UUID.fullmatch(order_id)
    assert balances(run, acct)["USDT"] == ("1997.00", "3003.00")  # 3000 + the fee at the limit
    out = ok(run("fill", "--order-id", order_id[:8], "--qty", "0.4", "--price", "2900"))
    assert out == ("trade 1: buy 0.40 ETH/USDT @ 2900.00, fee 1.16 USDT; balances 0.40 ETH, 3838.84 USDT"
                   f" (order {order_id})\n")
    # the 0.6 left keeps 1800 + 1.80 reserved; the 40.04 saved on this part is available again
    assert balances(run, acct) == {"ETH": ("0.40", "0.00"), "USDT": ("2037.04", "1801.80")}
    assert ok(run("verify")) == "OK\n"
    orders = json.loads(ok(run("orders", "--account-id", acct, "--open", "--json")))
    assert [(o["id"], o["status"], o["filled_qty"], o["reserved"]) for o in orders] == [
        (order_id, "OPEN", "0.40", "1801.80")]
    ok(run("fill", "--order-id", order_id))  # the rest at the limit
    assert balances(run, acct) == {"ETH": ("1.00", "0.00"), "USDT": ("2037.04", "0.00")}
    assert json.loads(ok(run("orders", "--account-id", acct, "--open", "--json"))) == []
    assert "FILLED" in ok(run("orders", "--account-id", acct))
    assert "is filled" in refused(run("fill", "--order-id", order_id))
    assert "is filled" in refused(run("cancel", "--order-id", order_id))


def test_cancel_of_an_unknown_order_is_refused(run, acct):
    assert "no order" in refused(run("cancel", "--order-id", "abcd"))


def test_sell_order_reserves_base_and_cancel_releases_it(run, acct):
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "2", "--price", "100"))
    order_id = ok(run("order", "--account-id", acct, "--side", "sell", "--symbol", "ETH/USDT", "--qty", "1.5",
                      "--limit-price", "120")).strip()
    assert balances(run, acct)["ETH"] == ("0.50", "1.50")
    assert "cannot fill at 119.00" in refused(run("fill", "--order-id", order_id, "--price", "119"))
    ok(run("fill", "--order-id", order_id, "--qty", "0.5", "--price", "125"))
    assert balances(run, acct) == {"ETH": ("0.50", "1.00"), "USDT": ("4862.2375", "0.00")}
    cancelled = json.loads(ok(run("cancel", "--order-id", order_id, "--json")))
    assert (cancelled["status"], cancelled["reserved"], cancelled["filled_qty"]) == ("CANCELLED", "0.00", "0.50")
    assert balances(run, acct)["ETH"] == ("1.50", "0.00")
    assert ok(run("verify")) == "OK\n"


def test_buy_order_limits_and_quantities(run, acct, db):
    order_id = ok(run("order", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1",
                      "--limit-price", "3000")).strip()
    before = dump(db)
    assert "cannot fill at 3000.01" in refused(run("fill", "--order-id", order_id, "--price", "3000.01"))
    assert "more than the 1.00 left" in refused(run("fill", "--order-id", order_id, "--qty", "1.1"))
    assert "insufficient funds" in refused(run("order", "--account-id", acct, "--side", "buy", "--symbol",
                                               "ETH/USDT", "--qty", "1", "--limit-price", "2000"))
    assert dump(db) == before


def test_a_rounding_shortfall_on_the_last_fill_comes_from_available(run, db):
    acct = ok(run("init", "--balance", "10")).strip()
    order_id = ok(run("order", "--account-id", acct, "--side", "buy", "--symbol", "XY/USDT", "--qty", "3",
                      "--limit-price", "0.000000003", "--fee-rate", "0.5")).strip()
    # reserve: 0.000000009 + fee 0.0000000045 rounded up to 0.00000001
    assert balances(run, acct)["USDT"] == ("9.999999981", "0.000000019")
    for _ in range(3):  # each fill of 1 pays its own rounded-up fee: 0.000000003 + 0.00000001
        ok(run("fill", "--order-id", order_id, "--qty", "1"))
    assert balances(run, acct) == {"USDT": ("9.999999961", "0.00"), "XY": ("3.00", "0.00")}
    assert ok(run("verify")) == "OK\n"


FILL_RULES = [  # side, order options, bar (open, high, low, close), the fill price worked out by the rule
    ("buy", ["--limit-price", "100"], ("105", "106", "99", "101"), "100"),  # limit buy L >= low: min(O, L)
    ("buy", ["--limit-price", "100"], ("95", "97", "94", "96"), "95"),  # the bar opened below: the open
    ("buy", ["--limit-price", "100"], ("105", "106", "101", "102"), None),  # the low stayed above it
    ("sell", ["--limit-price", "110"], ("105", "111", "104", "108"), "110"),  # limit sell L <= high: max(O, L)
    ("sell", ["--limit-price", "110"], ("115", "116", "112", "113"), "115"),
    ("sell", ["--type", "stop", "--stop-price", "95"], ("100", "101", "94", "96"), "95"),  # low <= S: min(O, S)
    ("sell", ["--type", "stop", "--stop-price", "95"], ("90", "92", "89", "91"), "90"),
    ("sell", ["--type", "stop", "--stop-price", "95"], ("100", "101", "95.01", "96"), None),
    ("buy", ["--type", "stop", "--stop-price", "105"], ("100", "106", "99", "104"), "105"),  # high >= S: max(O, S)
    ("buy", ["--type", "stop", "--stop-price", "105"], ("110", "111", "108", "109"), "110"),
    ("sell", ["--type", "oco", "--limit-price", "110", "--stop-price", "90"], ("100", "112", "88", "100"), "90"),
    ("sell", ["--type", "oco", "--limit-price", "110", "--stop-price", "90"], ("100", "111", "95", "105"), "110"),
    ("buy", ["--type", "oco", "--limit-price", "90", "--stop-price", "110"], ("100", "111", "95", "105"), "110"),
    ("buy", ["--type", "oco", "--limit-price", "90", "--stop-price", "110"], ("100", "105", "89", "95"), "90"),
    ("buy", ["--type", "oco", "--limit-price", "90", "--stop-price", "110"], ("100", "112", "88", "95"), "110"),
]


@pytest.mark.parametrize("side, argv, bar, expected", FILL_RULES)
def test_each_order_type_fills_at_the_price_its_rule_gives_for_the_bar(run, acct, db, side, argv, bar, expected):
    if side == "sell":
        ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    order = place(run, acct, side, "1", *argv)
    assert order["status"] == "OPEN" and not order.get("fills")  # no price recorded yet: it rests
    tick = price(run, "BTC/USDT", *bar, time="2026-11-25T14:00:00Z")
    if expected is None:
        assert tick["fills"] == [] and balances(run, acct)["USDT"][1] != "0.00" or side == "sell"
        assert json.loads(ok(run("orders", "--account-id", acct, "--json")))[0]["status"] == "OPEN"
        return
    [fill] = tick["fills"]
    assert (fill["side"], fill["qty"], fill["price"], fill["order_id"]) == (side, "1.00", f"{expected}.00", order["id"])
    fee = Decimal(expected) * Decimal("0.001")  # exact: no rounding at 8 places for these prices
    usdt = 5000 - Decimal(expected) - fee if side == "buy" else 5000 + Decimal(expected) - fee
    assert balance(db, acct) == (usdt, 0)
    assert balance(db, acct, "BTC") == ((Decimal(1), 0) if side == "buy" else (0, 0))
    [after] = json.loads(ok(run("orders", "--account-id", acct, "--json")))
    assert (after["status"], after["filled_qty"], after["reserved"]) == ("FILLED", "1.00", "0.00")
    assert ok(run("verify")) == "OK\n"


def test_a_stop_limit_becomes_a_limit_order_from_the_next_price_on(run, acct, db):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    order = place(run, acct, "sell", "1", "--type", "stop-limit", "--stop-price", "95", "--limit-price", "94")
    first = ok(run("tick", "--symbol", "BTC/USDT", "--open", "100", "--high", "100", "--low", "93", "--close", "94",
                   "--time", "2026-11-25T14:00:00Z"))  # it reaches the stop, and the limit too, in the same bar
    assert first.splitlines()[1:] == [f"order {order['id']} triggered: a limit order at 94.00 from the next price on"]
    assert price(run, "BTC/USDT", "93.5", time="2026-11-25T14:01:00Z")["fills"] == []  # below its limit
    [fill] = price(run, "BTC/USDT", "94", "95", "93", "94", time="2026-11-25T14:02:00Z")["fills"]
    assert fill["price"] == "94.00"  # a sell limit at 94: max(open 94, limit 94)
    assert balance(db, acct) == (Decimal("5093.906"), 0)  # 5000 + 94 - 0.094


def test_a_gap_costs_more_than_the_reserve_and_available_pays_the_rest(run, acct, db):
    order = place(run, acct, "buy", "10", "--type", "stop", "--stop-price", "100")
    assert order["reserved"] == "1001.00"  # 10 x 100 + 1.00 fee, at the stop
    [fill] = price(run, "BTC/USDT", "120", "121", "119", "120", time="2026-11-25T14:00:00Z")["fills"]
    assert fill["price"] == "120.00"  # the open: the market jumped past the stop
    assert balance(db, acct) == (Decimal("3798.80"), 0)  # 5000 - 1200 - 1.20


def test_a_gap_that_available_cannot_pay_cancels_the_order(run, db):
    acct = ok(run("init", "--balance", "1010")).strip()
    order = place(run, acct, "buy", "10", "--type", "stop", "--stop-price", "100")  # reserves 1001.00
    before = balance(db, acct)
    assert before == (Decimal("9.00"), Decimal("1001.00"))
    out = ok(run("tick", "--symbol", "BTC/USDT", "--price", "120", "--time", "2026-11-25T14:00:00Z"))
    assert out == ("BTC/USDT 120.00 at 2026-11-25T14:00:00.000000Z\n"  # 1201.20 due, 1001.00 reserved, 9.00 free
                   f"order {order['id']} cancelled: not filled at 120.00: insufficient funds: 9.00 USDT available,"
                   " 200.20 needed; its reserve is available again\n")
    assert balance(db, acct) == (Decimal("1010.00"), 0) and balance(db, acct, "BTC") is None
    assert json.loads(ok(run("orders", "--account-id", acct, "--json")))[0]["status"] == "CANCELLED"
    assert ok(run("verify")) == "OK\n"


def test_an_order_expires_before_the_price_that_reaches_it_is_matched(run, acct, db):
    order = place(run, acct, "buy", "1", "--limit-price", "100", "--expires", "2026-11-25T15:00:00Z")
    assert price(run, "BTC/USDT", "101", time="2026-11-25T14:59:00Z")["cancelled"] == []
    tick = price(run, "BTC/USDT", "99", time="2026-11-25T15:00:00Z")  # at the expiry: it reaches the limit, too late
    assert tick["fills"] == [] and [(o["id"], o["status"]) for o in tick["cancelled"]] == [(order["id"], "EXPIRED")]
    assert balance(db, acct) == (Decimal("5000"), 0)
    assert "is not after the latest price of BTC/USDT (2026-11-25T15:00:00.000000Z)" in refused(run(
        "order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--limit-price", "1",
        "--expires", "2026-11-25T15:00:00Z"))


def test_an_order_the_latest_price_reaches_fills_at_once(run, acct, db):
    price(run, "BTC/USDT", "100", time="2026-11-25T14:00:00Z")
    code, out, err = run("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "2",
                         "--limit-price", "101")
    order_id = out.strip()  # stdout is the id alone, so O=$(python paper.py order ...) works
    assert code == 0 and UUID.fullmatch(order_id)
    assert err == (f"filled at once: trade 1: buy 2.00 BTC/USDT @ 100.00, fee 0.20 USDT; balances 2.00 BTC,"
                   f" 4799.80 USDT (order {order_id})\n")
    resting = place(run, acct, "buy", "1", "--limit-price", "99")  # below the market: it rests
    assert resting["status"] == "OPEN" and resting["fills"] == []
    assert balance(db, acct) == (Decimal("4700.701"), Decimal("99.099"))


def test_reserves_by_order_type(run, acct):
    reserves = [place(run, acct, "buy", "2", *argv)["reserved"] for argv in (
        ["--limit-price", "100"], ["--type", "stop", "--stop-price", "120"],
        ["--type", "stop-limit", "--stop-price", "120", "--limit-price", "125"],
        ["--type", "oco", "--limit-price", "90", "--stop-price", "130"])]
    assert reserves == ["200.20", "240.24", "250.25", "260.26"]  # qty x (limit, stop, limit, dearer leg) + fee
    ok(run("deposit", "--account-id", acct, "--amount", "3", "--currency", "BTC"))
    assert place(run, acct, "sell", "3", "--type", "oco", "--limit-price", "130", "--stop-price", "90")[
        "reserved"] == "3.00"


@pytest.mark.parametrize("argv, why", [
    (["--type", "limit"], "a limit order needs --limit-price"),
    (["--type", "stop", "--limit-price", "1"], "a stop order takes no --limit-price"),
    (["--type", "stop"], "a stop order needs --stop-price"),
    (["--type", "stop-limit", "--stop-price", "1"], "a stop-limit order needs --limit-price"),
    (["--type", "limit", "--limit-price", "1", "--stop-price", "1"], "a limit order takes no --stop-price"),
    (["--type", "oco", "--limit-price", "110", "--stop-price", "90"], "its limit must be below its stop"),
    (["--type", "oco", "--limit-price", "1"], "an oco order needs --stop-price"),
])
def test_an_order_has_the_prices_its_type_needs(run, acct, db, argv, why):
    before = dump(db)
    assert why in refused(run("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                              *argv), code=2)  # a usage error: found before the database is read
    assert dump(db) == before


def test_a_due_order_of_a_closed_account_is_cancelled(run, acct, db):
    order = place(run, acct, "buy", "1", "--limit-price", "100")
    shell(db, "UPDATE accounts SET is_active = 0, closed_at = updated_at")  # closed by a paper.py of version 2
    tick = price(run, "BTC/USDT", "99", time="2026-11-25T14:00:00Z")
    assert tick["fills"] == [] and tick["cancelled"][0]["reason"] == "its account is closed"
    assert balance(db, acct) == (Decimal("5000"), 0)


def test_an_order_placed_after_a_bar_is_matched_at_its_close_only(run, acct, db):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    price(run, "BTC/USDT", "100", "110", "90", "105", time="2026-01-01")  # the market is at 105 now
    stop = place(run, acct, "sell", "1", "--type", "stop", "--stop-price", "95")
    assert (stop["status"], stop["fills"]) == ("OPEN", [])  # the bar's low of 90 is history
    limit = place(run, acct, "buy", "1", "--limit-price", "106")
    assert [fill["price"] for fill in limit["fills"]] == ["105.00"]  # reached by the close: filled at it


def test_a_partial_fill_by_hand_is_seen_by_the_next_price(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="10000").id
        ledger.tick("BTC/USDT", "100", time="2026-01-01")
        order = ledger.place_order(account, "buy", "BTC/USDT", "10", "90")
        ledger.tick("BTC/USDT", "95", time="2026-01-02")  # the book of open orders is kept from here
        ledger.fill(order.id, price="90", qty="4")
        [fill] = ledger.tick("BTC/USDT", "89", time="2026-01-03")["fills"]
        assert fill.qty == Decimal(6)  # what was left, not the whole order again
        assert ledger.verify() == []


def test_a_stop_limit_triggered_when_placed_keeps_to_its_limit(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="10000").id
        ledger.tick("BTC/USDT", "100", time="2026-01-01")
        ledger.tick("BTC/USDT", "100", time="2026-01-02")  # the book is kept
        order = ledger.place_order(account, "buy", "BTC/USDT", "1", "99", type="stop-limit", stop_price="100")
        assert order.triggered == 1 and order.status == "OPEN"
        assert ledger.tick("BTC/USDT", "101", time="2026-01-03")["fills"] == []  # above its limit of 99
        assert [fill.price for fill in ledger.tick("BTC/USDT", "98", time="2026-01-04")["fills"]] == [Decimal(98)]
        assert ledger.verify() == []


def test_an_order_cancelled_at_once_is_a_refusal_that_names_why(run, db):
    acct = ok(run("init", "--balance", "110")).strip()
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "120", "--time", "2026-11-25"))
    # a stop buy at 100 reserves 100.10; the market is at 120 already: it fills at once at 120, which costs 120.12
    code, out, err = run("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                         "--type", "stop", "--stop-price", "100")
    [order_id] = [row[0] for row in query(db, "SELECT id FROM orders")]
    assert (code, out) == (1, "") and err == (
        f"paper: error: order {order_id} cancelled at once: not filled at 120.00: insufficient funds: 9.90 USDT"
        " available, 20.02 needed\n")
    assert query(db, "SELECT status FROM orders") == [("CANCELLED",)] and balance(db, acct) == (Decimal(110), 0)


def test_a_market_order_reserves_at_the_latest_close_and_fills_at_the_next_open(run, acct, db):
    assert "a market order reserves at the latest close" in refused(run(
        "order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "2", "--type", "market"))
    price(run, "BTC/USDT", "100", time="2026-11-25T14:00:00Z")
    order = place(run, acct, "buy", "2", "--type", "market")
    assert (order["status"], order["reserve_price"], order["reserved"], order["fills"]) == (
        "OPEN", "100.00", "200.20", [])  # 2 x 100 + 0.20 fee, and no fill at the close it was placed after
    assert ok(run("verify")) == "OK\n"
    [fill] = price(run, "BTC/USDT", "101", "102", "99", "100", time="2026-11-25T15:00:00Z")["fills"]
    assert (fill["qty"], fill["price"], fill["fee"]) == ("2.00", "101.00", "0.202")  # the open
    assert balance(db, acct) == (Decimal("4797.798"), 0)  # 5000 - 202 - 0.202: the gap from available
    assert json.loads(ok(run("orders", "--account-id", acct, "--json")))[0]["status"] == "FILLED"
    assert ok(run("verify")) == "OK\n"


def test_a_market_buy_of_an_amount_is_sized_at_its_fill(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="2002").id
        ledger.tick("BTC/USDT", "100", time="2026-11-25T14:00:00Z")
        up = ledger.place_order(account, "buy", "BTC/USDT", None, type="market", spend="1001")
        assert (up.qty, up.reserved, up.sized_at_fill) == (Decimal(10), Decimal(1001), 1)  # 1001 / (100 x 1.001)
        [fill] = ledger.tick("BTC/USDT", "125", time="2026-11-25T15:00:00Z")["fills"]  # a gap up: it buys less
        assert (fill.qty, fill.price, fill.fee) == (Decimal(8), Decimal(125), Decimal(1))  # 8 x 125.125 = 1001
        down = ledger.place_order(account, "buy", "BTC/USDT", None, type="market", spend="1001")
        assert down.qty == Decimal(8)  # 1001 / (125 x 1.001), what it buys at the latest close
        [fill] = ledger.tick("BTC/USDT", "50", time="2026-11-25T16:00:00Z")["fills"]  # a gap down: it buys more
        assert (fill.qty, fill.fee) == (Decimal(20), Decimal("1.00"))  # 20 x 50.05 = 1001
        assert [(o.qty, o.filled_qty, o.status) for o in ledger.orders(account)] == [
            (Decimal(20), Decimal(20), "FILLED"), (Decimal(8), Decimal(8), "FILLED")]  # qty: what it bought
        assert ledger.account(account).balances["USDT"].total == Decimal(0) and ledger.verify() == []
        for argv, why in [({"qty": "1", "spend": "5"}, "spend (an amount of QUOTE to buy with, instead of a qty) is"),
                          ({"qty": None, "spend": "5", "type": "limit", "limit_price": "1"}, "is for a market buy"),
                          ({"qty": "1", "slippage": "0.01", "type": "limit", "limit_price": "1"},
                           "slippage is for market orders"),
                          ({"qty": None, "spend": "0.00000001"}, "spend 0.00000001 buys no BTC/USDT at 50.00,")]:
            with pytest.raises(paper.PaperError, match=re.escape(why)):
                ledger.place_order(account, "buy", "BTC/USDT", **{"type": "market"} | argv)


def test_a_market_order_pays_its_slippage_and_a_gap_it_cannot_pay_cancels_it(run, db):
    acct = ok(run("init", "--balance", "1200")).strip()
    with paper.Ledger(db) as ledger:
        ledger.tick("BTC/USDT", "100", time="2026-11-25T14:00:00Z")
        slipped = ledger.place_order(acct, "buy", "BTC/USDT", "1", type="market", slippage="0.01")  # 100.10
        cancelled = ledger.place_order(acct, "buy", "BTC/USDT", "10", type="market")  # 1001.00; 98.90 left
        fills = ledger.tick("BTC/USDT", "110", time="2026-11-25T15:00:00Z")["fills"]
    # 110 x 1.01 = 111.10, fee 0.1111: 11.1111 more than its reserve, from available (87.7889 left)
    assert [(t.order_id, t.price, t.fee) for t in fills] == [(slipped.id, Decimal("111.1"), Decimal("0.1111"))]
    [row] = query(db, "SELECT status, reason FROM orders WHERE id = ?", cancelled.id)  # 1100 + 1.10 - 1001.00
    assert row == ("CANCELLED", "not filled at 110.00: insufficient funds: 87.7889 USDT available, 100.10 needed")
    assert balance(db, acct) == (Decimal("1088.7889"), 0)  # 1200 - 111.10 - 0.1111
    assert ok(run("verify")) == "OK\n"
    with connection(db) as conn:  # a market order's reserve is checked like any other's
        conn.execute("UPDATE orders SET status = 'OPEN', reserved_amount = '5.00' WHERE id = ?", (cancelled.id,))
    assert f"order {cancelled.id} reserves 5.00 but what is left of it needs 1001.00" in run("verify")[1]


def open_orders(run, acct):
    return [(o["type"], o["side"], o["qty"], o["limit_price"], o["stop_price"], o["mark"], o["reserved"])
            for o in json.loads(ok(run("orders", "--account-id", acct, "--open", "--json")))]


def test_a_trailing_sell_checks_the_stop_in_force_before_it_follows_the_bar(run, db):
    acct = ok(run("init", "--balance", "1000")).strip()
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    price(run, "BTC/USDT", "100", time="2026-11-01")
    order = place(run, acct, "sell", "1", "--type", "trailing-stop", "--trail", "10%", "--fee-rate", "0")
    assert (order["mark"], order["stop_price"]) == ("100.00", "90.00")  # the latest close, 10% below it
    # high 105 lifts the mark; the stop follows to 105 x 0.9 = 94.5 for the next price
    assert price(run, "BTC/USDT", "100", "105", "95", "104", time="2026-11-02")["fills"] == []
    assert open_orders(run, acct) == [("trailing-stop", "sell", "1.00", None, "94.50", "105.00", "1.00")]
    # the low 94 reaches the stop in force, 94.5; had the high 110 moved it first, it would have filled at 99
    [fill] = price(run, "BTC/USDT", "104", "110", "94", "95", time="2026-11-03")["fills"]
    assert (fill["price"], fill["order_id"]) == ("94.50", order["id"]) and ok(run("verify")) == "OK\n"


def test_a_trailing_buy_mirrors_it_and_its_reserve_follows_its_stop(run, db):
    acct = ok(run("init", "--balance", "1000")).strip()
    price(run, "BTC/USDT", "100", time="2026-11-01")
    order = place(run, acct, "buy", "1", "--type", "trailing-stop", "--trail-amount", "5", "--fee-rate", "0")
    assert (order["mark"], order["stop_price"], order["reserved"]) == ("100.00", "105.00", "105.00")
    price(run, "BTC/USDT", "100", "104", "96", "97", time="2026-11-02")  # the low 96: the stop comes down to 101
    assert open_orders(run, acct) == [("trailing-stop", "buy", "1.00", None, "101.00", "96.00", "101.00")]
    assert balance(db, acct) == (Decimal(899), Decimal(101)) and ok(run("verify")) == "OK\n"
    # the high 102 reaches 101 (had the low 90 moved it first to 95, it would have filled at the open, 97)
    [fill] = price(run, "BTC/USDT", "97", "102", "90", "91", time="2026-11-03")["fills"]
    assert fill["price"] == "101.00" and balance(db, acct) == (Decimal(899), 0)


# --- The market: tick, prices, feed, price files and standard input ---

def test_tick_records_a_price_and_refuses_what_goes_back(run, acct, db):
    first = price(run, "btc/usdt", "100", time="2026-11-25 14:00")
    assert {key: first[key] for key in ("symbol", "time", "open", "high", "low", "close", "fills", "cancelled")} == {
        "symbol": "BTC/USDT", "time": "2026-11-25T14:00:00.000000Z", "open": "100.00", "high": "100.00",
        "low": "100.00", "close": "100.00", "fills": [], "cancelled": []}
    assert ok(run("tick", "--symbol", "BTC/USDT", "--price", "100", "--time", "2026-11-25T14:00:00Z")) == \
        "BTC/USDT 100.00 at 2026-11-25T14:00:00.000000Z: recorded already, nothing new\n"  # a retry
    before = dump(db)
    assert "recorded already, with open 100.00 high 100.00 low 100.00 close 100.00" in refused(
        run("tick", "--symbol", "BTC/USDT", "--price", "101", "--time", "2026-11-25T14:00:00Z"))
    assert "time never goes back, so 2026-11-25T13:59:59.000000Z is refused" in refused(
        run("tick", "--symbol", "BTC/USDT", "--price", "101", "--time", "2026-11-25T13:59:59Z"))
    assert dump(db) == before
    ok(run("tick", "--symbol", "ETH/USDT", "--price", "5", "--time", "2026-11-25"))  # another symbol: its own time
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "102", "--time", "1795618800"))  # epoch seconds: 15:00Z
    ok(run("tick", "--symbol", "BTC/USDT", "--open", "102", "--high", "104", "--low", "101.5", "--close", "103",
           "--time", "2026-11-25T17:00:00+01:00"))  # 16:00Z
    assert [(p["symbol"], p["time"], p["open"], p["close"]) for p in json.loads(ok(run("prices", "--json")))] == [
        ("BTC/USDT", "2026-11-25T16:00:00.000000Z", "102.00", "103.00"),
        ("BTC/USDT", "2026-11-25T15:00:00.000000Z", "102.00", "102.00"),
        ("ETH/USDT", "2026-11-25T00:00:00.000000Z", "5.00", "5.00"),
        ("BTC/USDT", "2026-11-25T14:00:00.000000Z", "100.00", "100.00")]
    assert ok(run("prices", "--symbol", "btc/usdt", "--limit", "1", "--csv")) == (
        "symbol,time,open,high,low,close\nBTC/USDT,2026-11-25T16:00:00.000000Z,102.00,104.00,101.50,103.00\n")
    header, newest, *_ = ok(run("prices")).splitlines()
    assert header.split() == ["time", "symbol", "open", "high", "low", "close"]
    assert newest.split() == ["2026-11-25T16:00:00.000000Z", "BTC/USDT", "102.00", "104.00", "101.50", "103.00"]


@pytest.mark.parametrize("argv, why", [
    (["--open", "10", "--high", "12", "--low", "11", "--close", "11"], "the low must be at most the open"),
    (["--open", "10", "--high", "9", "--low", "8", "--close", "9"], "the high at least both"),
    (["--open", "10", "--high", "12", "--low", "8"], "a bar needs its open, high, low and close"),
    ([], "a bar needs its open, high, low and close (or give one price)"),
    (["--price", "10", "--open", "10", "--high", "10", "--low", "10", "--close", "10"], "not both"),
])
def test_a_bar_must_hold_together(run, db, argv, why):
    ok(run("init"))
    before = dump(db)
    assert why in refused(run("tick", "--symbol", "BTC/USDT", *argv), code=2)  # found before the database is read
    assert dump(db) == before


@pytest.mark.parametrize("argv", [["--price", "0"], ["--price", "-1"], ["--time", "yesterday"],
                                  ["--time", "2026-13-01"], ["--price", "1e3"], ["--symbol", "BTC"]])
def test_bad_ticks_are_usage_errors(run, acct, db, argv):
    before = dump(db)
    refused(run("tick", "--symbol", "BTC/USDT", "--price", "1", *argv), code=2)
    assert dump(db) == before


def test_a_market_trade_fills_at_the_latest_close_with_slippage(run, acct, db):
    assert "no recorded price for BTC/USDT" in refused(run("trade", "--account-id", acct, "--side", "buy", "--symbol",
                                                           "BTC/USDT", "--qty", "1"))
    price(run, "BTC/USDT", "1.23456789", time="2026-11-25T14:00:00Z")
    buy = json.loads(ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                            "--slippage", "0.001", "--fee-rate", "0", "--ref", "b", "--json")))
    assert buy["price"] == "1.23580246"  # 1.23456789 x 1.001 = 1.23580245789, up to 8 places: against the buyer
    sell = json.loads(ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "1",
                             "--slippage", "0.001", "--fee-rate", "0", "--json")))
    assert sell["price"] == "1.23333332"  # 1.23456789 x 0.999 = 1.23333332211, down: against the seller
    price(run, "BTC/USDT", "2", time="2026-11-25T14:01:00Z")
    retry = json.loads(ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                              "--slippage", "0.001", "--fee-rate", "0", "--ref", "b", "--json")))
    assert retry["id"] == buy["id"]  # a retry after the market moved: the first trade, not a second one
    assert balance(db, acct) == (Decimal("5000") - Decimal("1.23580246") + Decimal("1.23333332"), 0)


def test_status_values_holdings_at_recorded_prices(run, acct):
    ok(run("deposit", "--account-id", acct, "--amount", "0.5", "--currency", "BTC"))
    ok(run("deposit", "--account-id", acct, "--amount", "2", "--currency", "SOL"))
    price(run, "BTC/USDT", "60000", time="2026-11-25T14:00:00Z")
    price(run, "BTC/USDT", "62000", "63000", "61000", "62500", time="2026-11-25T15:00:00Z")
    unpriced = json.loads(ok(run("status", "--account-id", acct, "--json")))
    assert (unpriced["equity"], unpriced["unpriced"]) == (None, ["SOL"])
    assert unpriced["holdings"]["BTC"] == {"total": "0.50", "price": "62500.00", "value": "31250.00",
                                           "time": "2026-11-25T15:00:00.000000Z"}
    price(run, "SOL/USDT", "150", time="2026-11-25T15:00:00Z")
    valued = json.loads(ok(run("status", "--account-id", acct, "--json")))
    assert valued["equity"] == "36550.00"  # 5000 + 0.5 x 62500 + 2 x 150
    assert json.loads(ok(run("status", "--account-id", acct, "--price", "SOL=100", "--json")))["equity"] == "36450.00"
    text = ok(run("status", "--account-id", acct))
    assert re.search(r"^BTC +0\.50 +62500\.00 +31250\.00 +2026-11-25T15:00:00\.000000Z$", text, re.M)
    assert re.search(r"^equity +36550\.00$", text, re.M)


def test_feed_a_file_of_bars_fills_along_the_way(run, acct, db, tmp_path):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    bracket = place(run, acct, "sell", "1", "--type", "oco", "--limit-price", "110", "--stop-price", "90")
    path = tmp_path / "bars.csv"
    path.write_text("time,symbol,open,high,low,close,volume,trades\n"
                    "2026-11-25T14:00:00Z,BTC/USDT,100,105,99,104,12.5,7\n"
                    "2026-11-25T14:01:00Z,BTC/USDT,104,111,103,108,3,2\n"  # reaches the take-profit at 110
                    "2026-11-25T14:02:00Z,BTC/USDT,108,109,80,85,1,1\n")  # would have reached the stop: gone already
    out = ok(run("feed", str(path)))
    assert out == (f"trade 1: sell 1.00 BTC/USDT @ 110.00, fee 0.11 USDT; balances 0.00 BTC, 5109.89 USDT"
                   f" (order {bracket['id']})\nrecorded 3 prices; 1 fill, 0 cancelled\n")
    assert ok(run("feed", str(path))) == "recorded 0 prices, skipped 3 recorded already; 0 fills, 0 cancelled\n"
    assert len(json.loads(ok(run("prices", "--json")))) == 3
    assert balance(db, acct) == (Decimal("5109.89"), 0)


@pytest.mark.parametrize("content, argv, closes", [
    ("time,symbol,price\n2026-11-25,ETH/USDT,5\n2026-11-26,ETH/USDT,6\n", [], ["6.00", "5.00"]),
    ("time,price\n1795618800,5\n1795618860,6.5\n", ["--symbol", "ETH/USDT"], ["6.50", "5.00"]),
    ("\ufefftime,price\r\n2026-11-25,5\r\n\r\n", ["--symbol", "ETH/USDT"], ["5.00"]),  # BOM, CRLF, a blank line
    # Binance klines as downloaded: no header, open time in milliseconds (or microseconds from 2025 on)
    ("1700000000000,5.1,5.3,5.0,5.2,100,1700000059999,520,10,50,260,0\n"
     "1700000060000000,5.2,5.4,5.1,5.3,100,1700000119999999,530,10,50,265,0\n", ["--symbol", "ETH/USDT"],
     ["5.30", "5.20"]),
])
def test_feed_reads_the_usual_price_files(run, acct, tmp_path, content, argv, closes):
    path = tmp_path / "prices.csv"
    path.write_bytes(content.encode())
    ok(run("feed", str(path), *argv))
    assert [p["close"] for p in json.loads(ok(run("prices", "--json")))] == closes
    if content.startswith("1700"):
        assert [p["time"] for p in json.loads(ok(run("prices", "--json")))] == [
            "2023-11-14T22:14:20.000000Z", "2023-11-14T22:13:20.000000Z"]


@pytest.mark.parametrize("content, argv, why", [
    ("time,symbol,price\n2026-11-25,ETH/USDT,5\n2026-11-26,ETH/USDT,0\n", [], "line 3: price must be greater"),
    ("time,symbol,price\n2026-11-25,ETH/USDT,5\n2026-11-24,ETH/USDT,6\n", [], "line 3: ETH/USDT has a price at"),
    ("time,symbol,price\n2026-11-25,ETH/USDT,5\nsoon,ETH/USDT,6\n", [], "line 3: time 'soon' must be ISO-8601"),
    ("time,symbol,open,high,low,close\n2026-11-25,ETH/USDT,5,4,3,4\n", [], "line 2: bar open 5.00 high 4.00"),
    ("time,symbol,price\n2026-11-25,ETH/USDT\n", [], "line 2: 2 columns, the header has 3"),
    ("date,price\n2026-11-25,5\n", ["--symbol", "ETH/USDT"], "the first line must name the columns"),
    ("time,symbol,price\n2026-11-25,ETH/USDT,5\n", ["--symbol", "ETH/USDT"],
     "has a symbol column: --symbol is for a file without one"),
    ("1700000000000,5.1,5.3,5.0,5.2\n", [], "needs --symbol"),
    ("time,symbol,price\n2026-11-25,ETH/USDT,caf\xe9\n", [], "line 2 is not UTF-8 text"),
])
def test_a_bad_line_refuses_the_whole_price_file(run, acct, db, tmp_path, content, argv, why):
    path = tmp_path / "prices.csv"
    path.write_bytes(content.encode("latin-1"))
    before = dump(db)
    assert why in refused(run("feed", str(path), *argv))
    assert dump(db) == before


def test_feed_from_standard_input_commits_and_prints_as_lines_arrive(tmp_path):
    db = str(tmp_path / "p.db")
    acct = cli("init", "--db", db).stdout.strip()
    order = json.loads(cli("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                           "--limit-price", "100", "--db", db, "--json").stdout)
    feed = subprocess.Popen([*PAPER_RUN, "feed", "-", "--symbol", "BTC/USDT", "--db", db],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    feed.stdin.write("time,price\n2026-11-25T14:00:00Z,101\n2026-11-25T14:01:00Z,99\n")
    feed.stdin.flush()
    line = feed.stdout.readline()  # printed while the feed still waits for more
    assert line == f"trade 1: buy 1.00 BTC/USDT @ 99.00, fee 0.099 USDT; balances 1.00 BTC, 4900.901 USDT" \
                   f" (order {order['id']})\n"
    with connection(db) as conn:  # committed already, row by row
        assert conn.execute("SELECT count(*) FROM prices").fetchone() == (2,)
    feed.stdin.write("2026-11-25T14:02:00Z,98\nnot a time,1\n2026-11-25T14:03:00Z,97\n")
    out, err = feed.communicate(timeout=60)
    assert feed.returncode == 1 and out == ""
    assert err == "paper: error: standard input: line 5: time 'not a time' must be ISO-8601 (2026-11-25T14:00:00Z, 2026-11-25" \
                  " 14:00, 2026-11-25; no zone is UTC) or an epoch number (seconds, milliseconds or microseconds)\n"
    with connection(db) as conn:  # the rows before the bad line are kept
        assert conn.execute("SELECT close FROM prices ORDER BY id").fetchall() == [("101.00",), ("99.00",), ("98.00",)]


@pytest.mark.parametrize("first, stored", [
    ("1735689600", "2025-01-01T00:00:00.000000Z"),  # seconds (below 1e11), as a header-less row often has
    ("1735689600000", "2025-01-01T00:00:00.000000Z"),  # milliseconds (below 1e14): Binance's klines
    ("1735689600123456", "2025-01-01T00:00:00.123456Z"),  # microseconds (below 1e17): Binance's files from 2025
])
def test_a_header_less_row_takes_its_epoch_unit_from_its_size(run, db, tmp_path, first, stored):
    ok(run("init"))
    path = tmp_path / "klines.csv"
    path.write_text(f"{first},100,101,99,100.5,7\n")
    assert ok(run("feed", str(path), "--symbol", "BTC/USDT")) == "recorded 1 price; 0 fills, 0 cancelled\n"
    assert query(db, "SELECT time, open, close FROM prices") == [(stored, "100.00", "100.50")]


def test_an_epoch_number_too_large_for_any_unit_is_refused_with_its_line(run, db, tmp_path):
    ok(run("init"))
    path = tmp_path / "klines.csv"
    path.write_text("1735689600000,100,101,99,100.5,7\n100000000000000000,100,101,99,100.5,7\n")
    before = dump(db)
    assert refused(run("feed", str(path), "--symbol", "BTC/USDT")) == (
        f"paper: error: {path}: line 2: time '100000000000000000' is too large for an epoch number: below 1e11 is"
        " seconds, below 1e14 milliseconds, below 1e17 microseconds\n")
    assert dump(db) == before
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "1", "--time", "1735689600000"))  # --time: milliseconds too
    assert query(db, "SELECT time FROM prices") == [("2025-01-01T00:00:00.000000Z",)]


def test_a_refusal_names_the_librarys_arguments_from_python_and_the_flags_on_the_command_line(run, acct, db, capsys):
    with paper.Ledger(db) as ledger:
        with pytest.raises(paper.PaperError, match=r"give allow_future=True if the timeline is simulated$"):
            ledger.tick("BTC/USDT", "1", time="2062-11-25")
        with pytest.raises(paper.PaperError, match=r"^no recorded price for BTC/USDT: give a price, or record one with"
                                                   r" tick\(\)$"):
            ledger.trade(acct, "buy", "BTC/USDT", "1")
    assert refused(run("tick", "--symbol", "BTC/USDT", "--price", "1", "--time", "2062-11-25")).endswith(
        "give --allow-future if the timeline is simulated\n")
    assert refused(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1")) == (
        "paper: error: no recorded price for BTC/USDT: give --price, or record one with `tick`\n")
    with pytest.raises(paper.NoDatabase, match=r"create one with Ledger\(path, create=True\)$"):
        paper.Ledger(db + ".missing")
    assert paper.main(["status", "--account-id", acct, "--db", db + ".missing"]) == 1
    assert capsys.readouterr().err.endswith("create one with `python paper.py init`\n")
    with paper.Ledger(db) as ledger, pytest.raises(paper.PaperError, match=r"\(trail=\) or an amount \(trail_amount=\)"):
        ledger.place_order(acct, "sell", "BTC/USDT", "1", type="trailing-stop")
    assert "(--trail) or an amount (--trail-amount)" in refused(run(
        "order", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "1", "--type",
        "trailing-stop"), code=2)
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--ref", "give allow_future=True"))  # a ref is the user's:
    assert refused(run("deposit", "--account-id", acct, "--amount", "2", "--ref", "give allow_future=True")).startswith(
        "paper: error: ref 'give allow_future=True' was used for DEPOSIT 1.00 USDT")  # quoted as given


def test_odd_arguments_of_the_library_get_a_true_refusal(db, tmp_path):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account()
        import uuid
        assert ledger.deposit(uuid.UUID(account.id), "1").balance_after == Decimal("5001.00")  # a UUID is an id
    for timeout in ("x", None, -1, 1.5, True):
        with pytest.raises(paper.PaperError, match=r"^busy_timeout_ms .* must be a whole number of milliseconds, 0 or"
                                                   r" more$"):
            paper.Ledger(db, busy_timeout_ms=timeout)
    with pytest.raises(paper.PaperError, match=r"^No such file or directory: .*nofile\.csv$"):
        paper.backtest(str(EXAMPLES / "sma_cross.py"), str(tmp_path / "nofile.csv"))


def test_a_base_url_with_a_password_is_refused_without_echoing_it(run, acct, capsys):
    err = refused(run("fetch", "BTC/USDT", "--interval", "1h", "--base-url", "http://user:secret@127.0.0.1:1"), code=2)
    assert "base URL http://...@127.0.0.1: the market data API takes no user name or password" in err
    assert "secret" not in err and "user" not in err.replace("user name", "")
    assert "its port must be a number from 0 to 65535" in refused(run(
        "fetch", "BTC/USDT", "--interval", "1h", "--base-url", "http://127.0.0.1:99999"), code=2)
    assert paper.main(["--version"]) == 2 and capsys.readouterr().err.endswith(
        "paper: error: --version is not a command: a command comes first, its options after it (paper -h lists the"
        " commands)\n")


def test_the_command_lines_words_never_change_what_a_user_or_a_strategy_wrote(run, acct, tmp_path, capsys):
    for ref in ("x: constraint 'y'", "delete_prices('a', 'b') removes it first", "give allow_future=True"):
        ok(run("deposit", "--account-id", acct, "--amount", "5", "--ref", ref))
        assert f"ref {ref!r} was used for DEPOSIT 5.00 USDT" in refused(run("deposit", "--account-id", acct,
                                                                            "--amount", "6", "--ref", ref))
    strategy = strategy_file(tmp_path, "def on_bar(ctx, bar):\n    raise ValueError('give allow_future=True')\n")
    assert paper.main(["backtest", strategy, "--data", bar_file(tmp_path / "bars.csv", SMA_BARS)]) == 1
    assert capsys.readouterr().err.endswith("ValueError: give allow_future=True\n")  # Python's words, as raised


def test_the_orders_a_strategy_holds_are_its_own(db):
    """What place_order returns, and what ctx.orders() gives, may be changed by their holder: the market and
    the next ctx.orders() go by the order as stored; a cancel of one no longer open is NotFound."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000").id
        with ledger.batch():
            ledger.tick("BTC/USDT", "100", time="2026-01-01")
            placed = ledger.place_order(account, "buy", "BTC/USDT", "1", "90")
            placed.qty, placed.limit_price = Decimal(5), Decimal(95)  # the caller's object only
            ctx = paper.Context(ledger, account, {}, {})
            ctx._symbol, ctx.time = "BTC/USDT", "2026-01-01T00:00:00.000000Z"
            mine = ctx.orders()
            assert [(o.qty, o.limit_price) for o in mine] == [(Decimal("1.00"), Decimal("90.00"))]
            mine[0].fills.append("mine")
            assert ctx.orders()[0].fills == []
            fills = ledger.tick("BTC/USDT", open="95", high="95", low="89", close="92", time="2026-01-02")["fills"]
            assert [(trade.qty, trade.price) for trade in fills] == [(Decimal("1.00"), Decimal("90.00"))]  # as stored
            with pytest.raises(paper.NotFound, match=f"^no open order '{placed.id}' of account {account}$"):
                ctx.cancel(mine[0])
        assert ledger.verify() == []


def test_a_trade_worth_10_18_or_more_is_refused_in_one_line(run, acct, db):
    before = dump(db)
    assert refused(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty",
                       "100000000000000000", "--price", "100000")) == (
        "paper: error: buy 100000000000000000.00 ETH/USDT @ 100000.00 comes to 10010000000000000000000.00 USDT, its"
        " fee included: paper keeps every amount below 10^18\n")  # 10^22 + its fee 10^19
    with paper.Ledger(db) as ledger, pytest.raises(paper.InsufficientFunds):
        ledger.trade(acct, "buy", "ETH/USDT", "999999999999999999", price="999999999999999999")
    assert dump(db) == before and ok(run("verify")) == "OK\n"


def test_a_mistyped_future_time_is_refused_and_one_already_recorded_can_be_removed(run, acct, db):
    assert "more than 24 hours after the clock" in refused(run("tick", "--symbol", "BTC/USDT", "--price", "1",
                                                               "--time", "2062-11-25"))
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "3", "--time", "2026-10-31"))
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "1", "--time", "2062-11-25", "--allow-future"))  # a simulation
    assert "time never goes back" in refused(run("tick", "--symbol", "BTC/USDT", "--price", "2"))  # stuck
    ok(run("deposit", "--account-id", acct, "--amount", "7"))  # written while the typo was the newest price
    assert refused(run("prices", "--delete", "--symbol", "BTC/USDT"), code=2)  # --from is needed
    assert ok(run("prices", "--delete", "--symbol", "BTC/USDT", "--from", "2062-01-01")) == (
        "deleted 1 price of BTC/USDT at or after 2062-01-01T00:00:00.000000Z\n")
    assert query(db, "SELECT id, time FROM prices_deleted") == [(2, "2062-11-25T00:00:00.000000Z")]  # kept aside
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "2", "--time", "2026-11-01"))  # the real prices go in again
    assert query(db, "SELECT id FROM prices ORDER BY id") == [(1,), (3,)]  # a removed price's id is never reused
    # the deposit belongs to the market time of the newest price before the removed one: 2026-10-31
    assert [(p["time"][:10], p["equity"]) for p in json.loads(ok(run("equity", "--account-id", acct, "--json")))] \
        == [("2026-10-31", "5007.00"), ("2026-11-01", "5007.00")]
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1"))
    before = dump(db)  # a price a trade of the symbol was made at is part of the record
    assert refused(run("prices", "--delete", "--symbol", "BTC/USDT", "--from", "2026-11-01")) == (
        "paper: error: BTC/USDT's prices at or after 2026-11-01T00:00:00.000000Z are part of the record: trade 1 was"
        " made or ended while one of them was its latest price; nothing was removed\n")
    assert dump(db) == before
    assert ok(run("verify")) == "OK\n"
    with connection(db) as conn:  # the shell still may not delete a price
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM prices")


def test_only_what_a_removed_price_did_keeps_it(run, db, tmp_path):
    """An order a removed price cancelled keeps it; one an earlier price of the same file expired does not."""
    acct = ok(run("init", "--balance", "110")).strip()
    ok(run("tick", "--symbol", "AB/USDT", "--price", "10", "--time", "2026-11-01"))
    expiring = place_on(run, acct, "AB/USDT", "buy", "1", "--limit-price", "5", "--expires", "2026-11-02")
    path = tmp_path / "prices.csv"
    path.write_text("time,symbol,price\n2026-11-02,AB/USDT,9\n2062-01-01,AB/USDT,8\n")
    ok(run("feed", str(path), "--allow-future"))
    assert query(db, "SELECT status FROM orders WHERE id = ?", expiring) == [("EXPIRED",)]
    ok(run("prices", "--delete", "--symbol", "AB/USDT", "--from", "2062-01-01"))  # the expiry was 2026-11-02's
    stop = place_on(run, acct, "AB/USDT", "buy", "10", "--type", "stop", "--stop-price", "10.5")  # reserves 105.105
    ok(run("tick", "--symbol", "AB/USDT", "--price", "12", "--time", "2062-01-01", "--allow-future"))
    assert query(db, "SELECT status FROM orders WHERE id = ?", stop) == [("CANCELLED",)]  # 120.12 is more than 110
    assert refused(run("prices", "--delete", "--symbol", "AB/USDT", "--from", "2062-01-01")) == (
        f"paper: error: AB/USDT's prices at or after 2062-01-01T00:00:00.000000Z are part of the record: order {stop}"
        " was made or ended while one of them was its latest price; nothing was removed\n")
    assert ok(run("verify")) == "OK\n"


def test_a_trade_at_a_symbols_close_keeps_that_price_though_another_symbols_came_later(run, acct, db):
    """A trade's price_id is the newest price of any symbol: ETH's here, though it bought at BTC's close."""
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "100", "--time", "2026-12-01T00:00:00Z"))
    ok(run("tick", "--symbol", "ETH/USDT", "--price", "10", "--time", "2026-12-01T00:01:00Z"))
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1"))
    before = dump(db)
    assert refused(run("prices", "--delete", "--symbol", "BTC/USDT", "--from", "2026-12-01")) == (
        "paper: error: BTC/USDT's prices at or after 2026-12-01T00:00:00.000000Z are part of the record: trade 1 was"
        " made or ended while one of them was its latest price; nothing was removed\n")
    assert dump(db) == before
    assert ok(run("prices", "--delete", "--symbol", "ETH/USDT", "--from", "2026-12-01")).startswith("deleted 1 price")


def place_on(run, acct, symbol, side, qty, *argv):
    return json.loads(ok(run("order", "--account-id", acct, "--side", side, "--symbol", symbol, "--qty", qty, *argv,
                             "--json")))["id"]


@pytest.mark.parametrize("content, why", [
    ("time,symbol,price\n2026-01-01,AB/USDT,65,000.50\n", "line 2: 4 columns, the header has 3"),  # 65,000.50 split
    ("", "is empty: no header and no prices"),
    ("\ufeff", "is empty: no header and no prices"),
    ("\n\n", "is empty: no header and no prices"),
    ("time,symbol,price\n2026-01-01,AB/USDT,6\x005\n", "line 2: price '6\\x005' is not a number"),
    ("time,symbol,price\n2026-01-01,AB/USDT,6\r5\n", "line 2: a line break (a lone carriage return) inside a field"),
    ("time,symbol,price\n2026-01-01,AB/USDT," + "9" * 131073 + "\n", "line 2: field larger than field limit"),
])
def test_a_file_that_is_not_prices_is_refused_naming_the_file_and_line(run, db, tmp_path, content, why):
    ok(run("init"))
    path = tmp_path / "prices.csv"
    path.write_text(content)
    before = dump(db)
    err = refused(run("feed", str(path)))
    assert err.startswith(f"paper: error: {path}") and why in err and str(db) not in err
    assert dump(db) == before


def test_an_empty_standard_input_and_bad_bytes_on_it_are_named(tmp_path):
    db = str(tmp_path / "p.db")
    cli("init", "--db", db)
    result = subprocess.run([*PAPER_RUN, "feed", "-", "--symbol", "BTC/USDT", "--db", db], input=b"",
                            capture_output=True)
    assert (result.returncode, result.stderr) == (1, b"paper: error: standard input is empty: no header and no"
                                                     b" prices\n")
    result = subprocess.run([*PAPER_RUN, "feed", "-", "--symbol", "BTC/USDT", "--db", db],
                            input=b"time,price\n2026-01-01,1\xff0\n", capture_output=True)
    assert (result.returncode, result.stderr) == (1, b"paper: error: standard input: line 2 is not UTF-8 text\n")


def test_feed_reads_binance_files_as_downloaded(run, db, tmp_path):
    """A zip holding one kline CSV with its CHECKSUM beside it, a gzip file, a futures CSV with a header."""
    import gzip
    import hashlib
    import zipfile
    ok(run("init"))
    rows = "1735689600000,100,101,99,100.5,7,1735689659999,700,5,3,300,0\n"
    archive = tmp_path / "BTCUSDT-1m-2025-01-01.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("BTCUSDT-1m-2025-01-01.csv", rows)
    checksum = tmp_path / "BTCUSDT-1m-2025-01-01.zip.CHECKSUM"
    checksum.write_text(f"{'0' * 64}  BTCUSDT-1m-2025-01-01.zip\n")  # a damaged download: nothing recorded
    before = dump(db)
    assert "the download is damaged or not that file; nothing was recorded" in refused(
        run("feed", str(archive), "--symbol", "BTC/USDT"))
    assert dump(db) == before
    checksum.write_text(f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  BTCUSDT-1m-2025-01-01.zip\n")
    ok(run("feed", str(archive), "--symbol", "BTC/USDT"))
    packed = tmp_path / "ETHUSDT.csv.gz"
    packed.write_bytes(gzip.compress(b"1735689600000,10,11,9,10.5,7,1735689659999,70,5,3,30,0\n"))
    ok(run("feed", str(packed), "--symbol", "ETH/USDT"))
    futures = tmp_path / "SOLUSDT-1m.csv"
    futures.write_text("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                       "taker_buy_quote_volume,ignore\n1735689600000,1.5,1.6,1.4,1.55,9,1735689659999,14,3,4,6,0\n")
    ok(run("feed", str(futures), "--symbol", "SOL/USDT"))
    assert query(db, "SELECT symbol, time, close FROM prices ORDER BY id") == [
        ("BTC/USDT", "2025-01-01T00:00:00.000000Z", "100.50"), ("ETH/USDT", "2025-01-01T00:00:00.000000Z", "10.50"),
        ("SOL/USDT", "2025-01-01T00:00:00.000000Z", "1.55")]


def test_several_files_are_one_timeline(run, db, tmp_path):
    ok(run("init"))
    btc, eth = tmp_path / "btc.csv", tmp_path / "eth.csv"
    btc.write_text("time,symbol,price\n2025-01-01,BTC/USDT,100\n2025-01-03,BTC/USDT,102\n")
    eth.write_text("time,symbol,price\n2025-01-01,ETH/USDT,10\n2025-01-02,ETH/USDT,11\n")
    assert ok(run("feed", str(btc), str(eth))) == "recorded 4 prices; 0 fills, 0 cancelled\n"
    assert query(db, "SELECT symbol, substr(time, 1, 10) FROM prices ORDER BY id") == [
        ("BTC/USDT", "2025-01-01"), ("ETH/USDT", "2025-01-01"), ("ETH/USDT", "2025-01-02"), ("BTC/USDT", "2025-01-03")]


def test_feed_says_what_it_was_told_and_counts_expiries_apart(run, acct, db, tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("time,symbol,price\n2026-11-25,BTC/USDT,100\n")
    assert refused(run("feed", str(path), "--symbol", "BTC/USDT")) == (
        f"paper: error: {path} has a symbol column: --symbol is for a file without one\n")
    order = place(run, acct, "buy", "1", "--limit-price", "50", "--expires", "2026-11-25")
    assert ok(run("feed", str(path))) == (f"order {order['id']} expired; its reserve is available again\n"
                                          "recorded 1 price; 0 fills, 0 cancelled, 1 expired\n")


def test_a_stream_prints_json_lines_and_a_file_one_document(run, acct, tmp_path):
    order = place(run, acct, "buy", "1", "--limit-price", "99")
    path = tmp_path / "prices.csv"
    path.write_text("time,price\n2026-11-25T14:00:00Z,101\n2026-11-25T14:01:00Z,98\n")
    document = json.loads(ok(run("feed", str(path), "--symbol", "BTC/USDT", "--json")))
    assert (document["recorded"], [fill["order_id"] for fill in document["fills"]]) == (2, [order["id"]])


def test_feed_from_a_pipe_prints_json_lines(tmp_path):
    db = str(tmp_path / "p.db")
    acct = cli("init", "--db", db).stdout.strip()
    order = json.loads(cli("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                           "--limit-price", "99", "--db", db, "--json").stdout)
    result = subprocess.run([*PAPER_RUN, "feed", "-", "--symbol", "BTC/USDT", "--json", "--db", db],
                            input="time,price\n2026-11-25T14:00:00Z,101\n2026-11-25T14:01:00Z,98\n",
                            capture_output=True, text=True)
    event, summary = [json.loads(line) for line in result.stdout.splitlines()]  # JSON Lines: one object a line
    assert [fill["order_id"] for fill in event["fills"]] == [order["id"]] and event["time"].startswith("2026-11-25T14:01")
    assert summary == {"recorded": 2, "skipped": 0, "fills": 1, "cancelled": 0, "expired": 0, "triggered": 0}


def test_a_writer_gets_the_lock_while_a_fast_stream_runs(tmp_path):
    """A pipe that never pauses: the stream leaves the lock free each second for longer than SQLite's
    longest wait between tries, so a deposit waiting up to 3 s gets in (one waited 8.8 s on a loaded
    machine when each row took the lock at once again)."""
    db = str(tmp_path / "p.db")
    acct = cli("init", "--db", db).stdout.strip()
    source = subprocess.Popen([sys.executable, "-c", "import sys\nsys.stdout.write('time,price\\n')\n"
                               "for i in range(10**8):\n    print(f'{1735689600 + i},{100 + i % 7}', flush=i % 50 == 0)"],
                              stdout=subprocess.PIPE)
    feed = subprocess.Popen([*PAPER_RUN, "feed", "-", "--symbol", "BTC/USDT", "--db", db],
                            stdin=source.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not query(db, "SELECT count(*) FROM prices")[0][0]:
            time.sleep(0.05)
        for _ in range(3):
            assert cli("deposit", "--account-id", acct, "--amount", "1", "--db", db,
                       env={"PAPER_BUSY_TIMEOUT": "3000"}).returncode == 0
    finally:
        feed.kill(), source.kill()
        feed.communicate(), source.communicate()
    assert balance(db, acct) == (Decimal("5003"), 0)


def test_a_long_feed_shows_its_progress_on_a_terminal_only(run, acct, tmp_path, monkeypatch, capsys):
    path = tmp_path / "prices.csv"
    path.write_text("time,price\n" + "".join(f"{1735689600 + 60 * i},{100 + i % 3}\n" for i in range(3000)))
    ok(run("feed", str(path), "--symbol", "BTC/USDT"))  # stderr is not a terminal: not a byte of progress
    monkeypatch.setattr(paper.Progress, "after", 0)
    monkeypatch.setattr(paper.Progress, "every", 0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    path.write_text("time,price\n" + "".join(f"{1735869600 + 60 * i},{100 + i % 3}\n" for i in range(3000)))  # from 2025-01-03 02:00
    code, out, err = run("feed", str(path), "--symbol", "BTC/USDT")
    assert (code, out) == (0, "recorded 3,000 prices; 0 fills, 0 cancelled\n")
    shown = err.split("\r")  # each update rewrites the line in place; the last one takes it away
    assert re.fullmatch(r"3,000 prices, market time 2025-01-05 03:59:00, [0-9,]+ prices/s\x1b\[K", shown[-2])
    assert shown[-1] == "\x1b[K" and len(shown) > 100


@pytest.mark.parametrize("name, make, why", [
    ("two.zip", lambda path: write_zip(path, {"a.csv": "x", "b.csv": "y"}), "holds 2 files, not one CSV"),
    ("cut.csv.gz", lambda path: path.write_bytes(__import__("gzip").compress(b"time,price\n2025-01-01,1\n")[:20]),
     "cannot be read"),
    ("fake.zip", lambda path: path.write_bytes(b"PK\x03\x04 not a zip at all"), "cannot be read"),
])
def test_a_damaged_download_is_refused_naming_it(run, db, tmp_path, name, make, why):
    ok(run("init"))
    path = tmp_path / name
    make(path)
    before = dump(db)
    err = refused(run("feed", str(path), "--symbol", "BTC/USDT"))
    assert err.startswith(f"paper: error: {path}") and why in err, err
    assert dump(db) == before


def write_zip(path, members):
    import zipfile
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)


def test_a_refused_row_in_a_stream_keeps_the_rows_before_it_fast_or_slow(tmp_path):
    db = str(tmp_path / "p.db")
    cli("init", "--db", db)
    rows = "".join(f"{1735689600 + i},{100 + i % 7}\n" for i in range(3000))
    result = subprocess.run([*PAPER_RUN, "feed", "-", "--symbol", "BTC/USDT", "--db", db],
                            input="time,price\n" + rows + "1700000000,5\n" + rows, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (1, "")  # stopped at the refused row, in one line, no abort
    assert result.stderr == ("paper: error: standard input: line 3002: BTC/USDT has a price at"
                             " 2025-01-01T00:49:59.000000Z: time never goes back, so 2023-11-14T22:13:20.000000Z is"
                             " refused\n")
    assert query(db, "SELECT count(*) FROM prices") == [(3000,)]


@pytest.mark.parametrize("make, stdin, why", [
    (lambda rows: __import__("gzip").compress(rows), None, None),  # gzip on a pipe: taken apart as it comes
    (lambda rows: b"PK\x03\x04 a zip", None, "paper: error: standard input is a zip archive: give the file itself"
                                             " (feed FILE.zip)\n"),
    (None, subprocess.DEVNULL, "paper: error: standard input is empty: no header and no prices\n"),
])
def test_feed_from_standard_input_takes_gzip_and_names_a_zip_or_an_empty_input(tmp_path, make, stdin, why):
    db = str(tmp_path / "p.db")
    cli("init", "--db", db)
    rows = b"time,price\n2026-11-01,5\n"
    result = subprocess.run([*PAPER_RUN, "feed", "-", "--symbol", "BTC/USDT", "--db", db],
                            input=make(rows) if make else None, stdin=stdin, capture_output=True)
    assert (result.returncode, result.stderr.decode()) == ((1, why) if why else (0, ""))
    assert query(db, "SELECT count(*) FROM prices") == [(0 if why else 1,)]


def test_a_closed_standard_input_and_a_pipe_given_as_a_file(tmp_path):
    db = str(tmp_path / "p.db")
    cli("init", "--db", db)
    closed = subprocess.run(f"{sys.executable} {PAPER} feed - --symbol BTC/USDT --db {db} <&-", shell=True,
                            capture_output=True, text=True)
    assert (closed.returncode, closed.stderr) == (1, "paper: error: standard input is closed: pipe prices into"
                                                     " feed -, or give a file\n")
    piped = subprocess.run(["bash", "-c", f"{sys.executable} {PAPER} feed <(printf 'time,price\\n2026-11-01,5\\n' |"
                                          f" gzip) --symbol BTC/USDT --db {db}"], capture_output=True, text=True)
    assert (piped.returncode, piped.stdout) == (0, "recorded 1 price; 0 fills, 0 cancelled\n")


def test_a_stream_whose_reader_left_goes_on_recording(tmp_path):
    db = str(tmp_path / "p.db")
    acct = cli("init", "--db", db).stdout.strip()
    for price in ("99", "98", "97"):
        cli("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--limit-price",
            price, "--db", db)
    script = (f"python3 -c \"import time\nprint('time,price', flush=True)\nfor i in range(6):\n"
              f"    print(f'{{1735689600 + i}},{{100 - i}}', flush=True); time.sleep(0.3)\" |"
              f" {sys.executable} {PAPER} feed - --symbol BTC/USDT --db {db} | head -1; echo ${{PIPESTATUS[1]}}")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    first, code = result.stdout.splitlines()
    assert first.startswith("trade 1: buy 1.00 BTC/USDT @ 99.00") and code == "0" and "Error" not in result.stderr
    assert query(db, "SELECT count(*) FROM prices") == [(6,)] and query(db, "SELECT count(*) FROM trades") == [(3,)]


def test_many_files_are_read_a_few_at_a_time(tmp_path):
    """Thirty daily files with ten descriptors to spare: each is opened once the merge reaches it."""
    import resource
    db = str(tmp_path / "p.db")
    cli("init", "--db", db)
    paths = []
    for day in range(30):
        path = tmp_path / f"BTCUSDT-1h-{day:02d}.csv"
        path.write_text("".join(f"{1735689600 + day * 86400 + hour * 3600}000,1,2,0.5,1.5,9\n" for hour in range(24)))
        paths.append(str(path))

    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12))
    result = subprocess.run([*PAPER_RUN, "feed", *reversed(paths), "--symbol", "BTC/USDT", "--db", db],
                            capture_output=True, text=True, preexec_fn=few_descriptors)
    assert (result.returncode, result.stdout) == (0, "recorded 720 prices; 0 fills, 0 cancelled\n"), result.stderr
    assert query(db, "SELECT min(time), max(time) FROM prices") == [("2025-01-01T00:00:00.000000Z",
                                                                    "2025-01-30T23:00:00.000000Z")]


def test_prices_csv_is_oldest_first_and_feeds_back_as_it_is(run, acct, db, tmp_path):
    rows = [(f"2025-03-01T{hour:02d}:00:00Z", "10.00", "11.00", "9.00", f"10.{hour}0") for hour in range(3)]
    ok(run("feed", bar_file(tmp_path / "bars.csv", rows)))
    out = ok(run("prices", "--csv"))
    assert out.splitlines()[1:] == [f"BTC/USDT,2025-03-01T0{hour}:00:00.000000Z,10.00,11.00,9.00,10.{hour}0"
                                    for hour in range(3)]
    assert ok(run("prices", "--csv", "--limit", "2")).splitlines()[1:] == out.splitlines()[2:]  # the newest 2
    (tmp_path / "back.csv").write_text(out)
    copy = str(tmp_path / "copy.db")
    assert paper.main(["init", "--db", copy]) == 0 and paper.main(["feed", str(tmp_path / "back.csv"), "--db", copy]) == 0
    assert query(copy, "SELECT symbol, time, open, high, low, close FROM prices ORDER BY id") == query(
        db, "SELECT symbol, time, open, high, low, close FROM prices ORDER BY id")


# --- verify: the balances, the log, the orders and the prices agree ---

def test_verify_says_ok_as_text_and_json(run, acct):
    assert ok(run("verify")) == "OK\n"
    assert json.loads(ok(run("verify", "--account-id", acct, "--json"))) == {"ok": True, "mismatches": []}


def test_verify_reports_a_tampered_balance(run, acct, db):
    other = ok(run("init")).strip()
    with connection(db) as conn:
        conn.execute("UPDATE balances SET available_amount = '5000.01' WHERE account_id = ?", (acct,))
    code, out, err = run("verify")
    assert (code, err) == (1, "")
    assert out == (f"MISMATCH account {acct} USDT: balance 5000.01 but the log sums to 5000.00\nFAILED\n")
    assert run("verify", "--account-id", other)[0] == 0
    report = json.loads(run("verify", "--json")[1])
    assert report == {"ok": False, "mismatches": [
        {"account_id": acct, "currency": "USDT", "problem": "balance 5000.01 but the log sums to 5000.00"}]}


def test_verify_checks_orders_against_reserves(run, acct, db):
    order_id = ok(run("order", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1",
                      "--limit-price", "3000")).strip()
    with connection(db) as conn:
        conn.execute("UPDATE orders SET reserved_amount = '3000.00'")
    out = run("verify")[1]
    assert f"MISMATCH account {acct} USDT: order {order_id} reserves 3000.00 but what is left of it needs 3003.00" in out
    assert f"MISMATCH account {acct} USDT: reserved 3003.00 but open orders reserve 3000.00" in out


@pytest.mark.parametrize("sql, currency, problem", [
    ("UPDATE trades SET fee = '0.01' WHERE id = 1", "USDT",
     "trade 1: fee 0.01, but 2.00 x 10.00 at fee rate 0.001 makes 0.02"),
    ("UPDATE trades SET qty = '3.00' WHERE id = 1", "BTC",
     "trade 1: its BTC legs in the log are [TRADE_BUY 2.00 BTC], but buy 3.00 BTC/USDT @ 10.00 makes"
     " [TRADE_BUY 3.00 BTC]"),
    ("UPDATE transactions SET amount = '-19.00', balance_after = '4981.00' WHERE id = 2", "USDT",
     "trade 1: its USDT legs in the log are [TRADE_BUY -19.00 USDT, FEE -0.02 USDT], but buy 2.00 BTC/USDT @ 10.00"
     " makes [TRADE_BUY -20.00 USDT, FEE -0.02 USDT]"),
    ("UPDATE transactions SET balance_after = '4979.99' WHERE id = 3", "USDT",
     "transaction 3 says balance 4979.99 after it, but the row before it says 4980.00 and this one adds -0.02"),
])
def test_verify_checks_each_trade_against_its_legs(run, acct, db, sql, currency, problem):
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "2", "--price", "10"))
    with connection(db) as conn:
        conn.executescript("DROP TRIGGER trades_append_only_update; DROP TRIGGER transactions_append_only_update;"
                           f" {sql};")
    code, out, _ = run("verify")
    assert code == 1 and f"MISMATCH account {acct} {currency}: {problem}\n" in out, out


def test_a_bad_amount_that_gets_in_is_named_by_verify(run, acct, db):
    other = ok(run("init", "--balance", "7")).strip()
    with connection(db) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")  # as if the CHECKs had been dropped
        conn.execute("UPDATE balances SET available_amount = '1.23.45' WHERE account_id = ?", (acct,))
        conn.executescript(f"DROP TRIGGER transactions_append_only_update; UPDATE transactions SET amount = 'abc'"
                           f" WHERE account_id = '{acct}'")
    code, out, _ = run("verify")
    assert code == 1
    assert f"MISMATCH account {acct} USDT: transaction 1: amount holds 'abc', not an amount\n" in out
    assert f"MISMATCH account {acct} USDT: balance {acct}/USDT: available_amount holds '1.23.45', not an amount\n" \
        in out
    assert re.search(r"^USDT +7\.00 +0\.00 +7\.00$", ok(run("status", "--account-id", other)), re.M)
    err = refused(run("status", "--account-id", acct))
    assert "'1.23.45'" in err and "verify" in err


def test_verify_checks_each_open_orders_reserve_against_its_type(run, acct, db):
    order = place(run, acct, "buy", "1", "--type", "stop", "--stop-price", "120")
    with connection(db) as conn:  # as if it reserved at a limit of 100
        conn.execute("UPDATE orders SET reserved_amount = '100.10' WHERE id = ?", (order["id"],))
        conn.execute("UPDATE balances SET reserved_amount = '100.10', available_amount = '4899.90'")
        conn.commit()
    code, out, _ = run("verify")
    assert code == 1 and f"order {order['id']} reserves 100.10 but what is left of it needs 120.12" in out


def test_verify_finds_rows_no_trigger_stops(run, acct, db):
    other = ok(run("init", "--balance", "0")).strip()
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--price", "100"))
    order = place(run, acct, "buy", "1", "--limit-price", "50")
    with connection(db) as conn:  # every statement here passes the triggers and CHECKs
        conn.execute("INSERT INTO transactions (account_id, transaction_type, currency, amount, balance_after,"
                     " description, created_at) VALUES (?, 'WITHDRAWAL', 'EUR', '50.00', '50.00', 'x', 't')", (acct,))
        conn.execute("INSERT INTO balances VALUES (?, 'EUR', '50.00', '0.00', 't', 't')", (acct,))
        conn.execute("UPDATE orders SET filled_qty = '0.40' WHERE id = ?", (order["id"],))
        conn.commit()
    code, out, _ = run("verify")
    assert code == 1
    assert f"MISMATCH account {acct} EUR: transaction 5: a WITHDRAWAL of 50.00 cannot be\n" in out
    assert f"MISMATCH account {acct} USDT: order {order['id']} is OPEN with 0.40 of 1.00 filled, but its trades fill" \
           " 0.00\n" in out
    with connection(db) as conn:  # a leg moved to another account, its balance too
        conn.executescript(f"DROP TRIGGER transactions_append_only_update; UPDATE transactions SET account_id ="
                           f" '{other}' WHERE trade_id = 1 AND currency = 'BTC'; UPDATE balances SET account_id ="
                           f" '{other}' WHERE account_id = '{acct}' AND currency = 'BTC';")
    assert f"MISMATCH account {acct} BTC: trade 1: its BTC legs in the log are [TRADE_BUY 1.00 BTC in account" \
           f" {other}], but buy 1.00 BTC/USDT @ 100.00 makes [TRADE_BUY 1.00 BTC]\n" in run("verify")[1]


def test_verify_finds_prices_out_of_time_order_and_missing_ones(run, acct, db):
    price(run, "BTC/USDT", "100", time="2026-11-25T14:00:00Z")
    ok(run("deposit", "--account-id", acct, "--amount", "1"))  # its place in market time: price 1
    with connection(db) as conn:  # REPLACE is not blocked for prices: verify sees it
        conn.execute("REPLACE INTO prices (symbol, time, open, high, low, close, created_at) VALUES ('BTC/USDT',"
                     " '2026-11-25T14:00:00.000000Z', '99.00', '99.00', '99.00', '99.00', 't')")
        conn.execute("INSERT INTO prices (symbol, time, open, high, low, close, created_at) VALUES ('BTC/USDT',"
                     " '2026-11-25T13:00:00.000000Z', '99.00', '99.00', '99.00', '99.00', 't')")
        conn.commit()
    code, out, _ = run("verify")
    assert code == 1 and "MISMATCH transaction 2 refers to price 1, which is not in prices\n" in out
    assert "MISMATCH price 3 at 2026-11-25T13:00:00.000000Z is not after the one before it" \
           " (2026-11-25T14:00:00.000000Z)\n" in out


def test_verify_checks_fill_prices_against_limits_and_time_forms(run, acct, db):
    order = place(run, acct, "buy", "1", "--limit-price", "100")
    ok(run("fill", "--order-id", order["id"]))
    price(run, "BTC/USDT", "1", time="2026-01-01")
    with connection(db) as conn:
        conn.executescript("DROP TRIGGER trades_append_only_update; UPDATE trades SET price = '101.00', fee = '0.101';"
                           " DROP TRIGGER prices_append_only_update; UPDATE prices SET time = '2026-W01-1';")
    out = run("verify")[1]
    assert f"trade 1 filled order {order['id']} at 101.00, beyond its limit 100.00" in out
    assert "price 1: time holds '2026-W01-1', not a market time" in out


def test_verify_checks_a_trailing_stop_against_its_mark(run, db):
    acct = ok(run("init", "--balance", "1000")).strip()
    price(run, "BTC/USDT", "100", time="2026-11-01")
    order = place(run, acct, "buy", "1", "--type", "trailing-stop", "--trail", "3%")
    shell(db, "UPDATE orders SET stop_price = '120.00', reserved_amount = '120.12'",
          "UPDATE balances SET available_amount = '879.88', reserved_amount = '120.12'")
    assert f"trailing stop {order['id']}: its stop 120.00 is not its trail from its mark 100.00" in run("verify")[1]


# --- The database: its file, folder, schema checks, lock and backup ---

@pytest.mark.parametrize("argv", [
    ["deposit", "--account-id", "abcd", "--amount", "1"],
    ["withdraw", "--account-id", "abcd", "--amount", "1"],
    ["history", "--account-id", "abcd"],
    ["close", "--account-id", "abcd"],
    ["verify"],
    ["status", "--account-id", "abcd"],
])
def test_commands_other_than_init_never_create_a_database(run, db, argv):
    err = refused(run(*argv))
    assert "no database at" in err
    assert not os.path.exists(db)


def test_the_readmes_sqlite3_queries_read_text_amounts_from_a_wal_database(acct, db, run):
    ok(run("deposit", "--account-id", acct, "--amount", "0.1"))
    with connection(db) as conn:
        assert conn.execute("SELECT id, name, is_active FROM accounts;").fetchall() == [
            (acct, "Paper Trading Account", 1)]
        row = conn.execute("SELECT * FROM balances WHERE currency='USDT';").fetchone()
        assert row[:4] == (acct, "USDT", "5000.10", "0.00")
        rows = conn.execute("SELECT * FROM transactions ORDER BY created_at DESC;").fetchall()
        assert [r[4] for r in rows] == ["0.10", "5000.00"]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (paper.SCHEMA_VERSION,)


def test_database_path_from_flag_environment_or_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAPER_DB", raising=False)
    assert paper.main(["init"]) == 0
    assert (tmp_path / "data" / "paper.db").is_file()
    assert stat.S_IMODE(os.stat(tmp_path / "data" / "paper.db").st_mode) == 0o600
    monkeypatch.setenv("PAPER_DB", str(tmp_path / "env" / "deep" / "e.db"))
    assert paper.main(["init"]) == 0
    assert (tmp_path / "env" / "deep" / "e.db").is_file()
    assert paper.main(["init", "--db", "flag/f.db"]) == 0
    assert (tmp_path / "flag" / "f.db").is_file()
    capsys.readouterr()
    paper.main(["status", "--json"])
    assert len(json.loads(capsys.readouterr().out)) == 1  # PAPER_DB's database


def test_paths_with_uri_characters(tmp_path, capsys):
    path = str(tmp_path / "we?ird#na%me.db")
    assert paper.main(["init", "--db", path]) == 0
    assert paper.main(["status", "--db", path]) == 0
    names = os.listdir(tmp_path)  # the file by its own name (and its -wal, -shm): no name cut at ? or #
    assert "we?ird#na%me.db" in names and all(name.startswith("we?ird#na%me.db") for name in names), names


def real_database(tmp_path):
    path = tmp_path / "real.db"
    assert paper.main(["init", "--db", str(path)]) == 0
    return path


def test_dropped_tables_and_newer_versions_give_one_line_errors(tmp_path, capsys):
    path = real_database(tmp_path)
    with connection(path) as conn:
        conn.execute("DROP TABLE transactions")
    before = dump(path)
    for argv in (["status"], ["verify"], ["init"]):
        assert paper.main([*argv, "--db", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.endswith("real.db is damaged: table transactions is missing\n") and err.count("\n") == 1
    assert dump(path) == before


def test_a_folder_that_cannot_be_created(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert paper.main(["init", "--db", str(tmp_path / "file" / "sub" / "p.db")]) == 1
    assert capsys.readouterr().err.startswith("paper: error: ")


@pytest.mark.parametrize("value", ["1.23.45", "05.00", "1.5", "1.100", "1e3", "-1.00", " 1.00", "1.0a", "", 1.5, 2,
                                   b"1.00"])
def test_amount_checks_take_exactly_the_documented_form(acct, db, value):
    with connection(db) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE balances SET available_amount = ?", (value,))
        conn.execute("UPDATE balances SET available_amount = '4999.50'")  # the form itself is taken


def test_init_makes_its_folder_owner_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        result = cli("init", "--db", str(tmp_path / "data" / "paper.db"))
    finally:
        os.umask(old)
    assert result.returncode == 0
    assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "data" / "paper.db").st_mode) == 0o600


def test_init_removes_what_a_killed_init_left(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / "data").mkdir()
    litter = [tmp_path / "data" / f"paper.db.{pid}.0a1b2c3d.new{end}" for end in ("", "-wal", "-shm", "-journal")]
    for path in litter:
        path.write_text("half a database")
    alive = tmp_path / "data" / f"paper.db.{os.getpid()}.0a1b2c3d.new"  # this process is building it
    alive.write_text("in progress")
    assert cli("init", "--db", str(tmp_path / "data" / "paper.db")).returncode == 0
    assert sorted(os.listdir(tmp_path / "data")) == sorted(["paper.db", alive.name])


def test_status_names_where_it_looked(run, db, tmp_path):
    assert ok(run("status")) == f"No accounts yet in {db}: create one with `python paper.py init`.\n"
    result = cli("status", cwd=tmp_path, env={"PAPER_DB": ""})
    assert result.stdout == f"No accounts yet in {os.path.join('data', 'paper.db')}: create one with" \
                            " `python paper.py init`.\n"


def test_reading_a_database_in_a_folder_you_cannot_write(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    db = str(folder / "p.db")
    acct = cli("init", "--db", db).stdout.strip()
    os.chmod(db, 0o644)
    os.chmod(folder, 0o555)
    try:
        result = subprocess.run([*PAPER_RUN, "status", "--account-id", acct, "--db", db],
                                capture_output=True, text=True, preexec_fn=without_root_powers)
    finally:
        os.chmod(folder, 0o755)
    assert result.returncode == 1 and result.stdout == ""
    owner = pwd.getpwuid(os.getuid()).pw_name
    assert result.stderr == (f"paper: error: cannot read {db}: SQLite must create p.db-shm beside it (the database"
                             f" is in WAL mode), and you may not write to {folder} (owner {owner}, mode 555): its"
                             " owner can give you write access to the folder, or a copy made with `python paper.py"
                             " backup`\n")


def test_backup_is_a_consistent_copy_even_while_others_write(run, acct, db, tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import paper
with paper.Ledger({db!r}) as ledger:
    for i in range(300):
        ledger.deposit({acct!r}, "0.01")
"""])
    copies = []
    while writer.poll() is None or len(copies) < 2:  # copies taken while it writes
        copies.append(str(tmp_path / f"copy{len(copies)}.db"))
        assert ok(run("backup", "--to", copies[-1])).startswith(f"copied {db} to {copies[-1]} (")
    assert writer.wait() == 0
    copies.append(str(tmp_path / "last.db"))  # and one once it is done
    ok(run("backup", "--to", copies[-1]))
    for copy in copies:
        assert not os.path.exists(copy + "-wal") or os.path.getsize(copy + "-wal") == 0
        assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
        with paper.Ledger(copy) as ledger:
            assert ledger.verify() == []
    assert balance(copies[-1], acct) == (Decimal("5003.00"), 0)
    before = Path(copies[0]).read_bytes()
    assert "exists already: backup never overwrites a file" in refused(run("backup", "--to", copies[0]))
    assert Path(copies[0]).read_bytes() == before


def test_a_held_lock_is_a_paper_error_in_the_api(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with paper.Ledger(db, busy_timeout_ms=50) as ledger:
            with pytest.raises(paper.Busy, match="database is busy: another process held .* for more than 50 ms"):
                ledger.deposit(account.id, "1")
    finally:
        holder.close()


def test_a_library_user_catches_refusals_by_kind(db):
    """Each kind is a PaperError with the message the command line prints."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="100").id
        ledger.deposit(account, "5", ref="r1")
        with pytest.raises(paper.NotFound, match="^no account 'ffff'$"):
            ledger.deposit("ffff", "1")
        with pytest.raises(paper.NotFound, match="^no order '0000'$"):
            ledger.cancel("0000")
        with pytest.raises(paper.InsufficientFunds, match="^insufficient funds: 105.00 USDT available, 106.00 needed$"):
            ledger.withdraw(account, "106")
        with pytest.raises(paper.RefConflict, match="^ref 'r1' was used for DEPOSIT 5.00 USDT"):
            ledger.deposit(account, "6", ref="r1")
        assert issubclass(paper.Busy, paper.PaperError) and ledger.account(account).balances["USDT"].available == 105
        assert sorted(paper.__all__) == sorted(set(paper.__all__)) and all(hasattr(paper, name) for name in paper.__all__)


@pytest.mark.parametrize("value", ["899.90\x00junk", "1" * 19 + ".00", "1." + "1" * 19])
def test_amount_checks_refuse_hidden_text_and_too_many_digits(acct, db, value):
    with connection(db) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE balances SET available_amount = ?", (value,))


def test_init_makes_every_missing_folder_owner_only(tmp_path):
    old = os.umask(0)
    try:
        assert cli("init", "--db", str(tmp_path / "a" / "b" / "c" / "p.db")).returncode == 0
    finally:
        os.umask(old)
    for folder in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE(os.stat(tmp_path / folder).st_mode) == 0o700, folder


def test_backup_makes_its_folder_and_names_refused_paths_truly(run, acct, db, tmp_path):
    assert ok(run("backup", "--to", str(tmp_path / "backups" / "p.db"))).startswith("copied")
    assert stat.S_IMODE(os.stat(tmp_path / "backups").st_mode) == 0o700
    assert "argument --to: needs a file name" in refused(run("backup", "--to", ""), code=2)
    typo = cli("status", "--db", str(tmp_path / "typo") + "/")
    assert (typo.returncode, typo.stderr) == (1, f"paper: error: {tmp_path / 'typo'}/ ends with a slash: give the"
                                                 " database file's name\n")


# --- The database: upgrades from schema versions 1 and 2 ---

# Made by the version-1 paper.py (commit d36cefd) through its API: two accounts and a closed one;
# deposits and withdrawals with refs, market trades, an open order, a partly filled open order, a
# filled one, a cancelled one, a zero-fee trade, a reset; then dumped with the sqlite3 module.
V1_DATABASE = """
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,                         -- a UUID
    name TEXT NOT NULL,
    leverage DECIMAL_TEXT NOT NULL,              -- a stored setting: trades are spot, cash only
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    closed_at TEXT,
    max_leverage DECIMAL_TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    pnl_after_trade INTEGER NOT NULL DEFAULT 0,  -- P&L counts trades with a higher id (set by reset)
    CHECK ((is_active = 1) = (closed_at IS NULL))
);
INSERT INTO "accounts" VALUES('968691bf-a106-4d99-82db-b706afc4a26b','Swing 🚀','1.00',1,NULL,'3.00','2026-11-26T07:05:20.425518Z','2026-11-26T07:05:20.425518Z',0);
INSERT INTO "accounts" VALUES('f99d367a-c8ea-4c50-a8e8-68822cd08e47','Paper Trading Account','1.00',1,NULL,'3.00','2026-11-26T07:05:20.427918Z','2026-11-26T07:05:20.440133Z',5);
INSERT INTO "accounts" VALUES('b3e01e51-651f-401b-90ba-ca37016b3aa1','Paper Trading Account','1.00',0,'2026-11-26T07:05:20.443272Z','3.00','2026-11-26T07:05:20.442274Z','2026-11-26T07:05:20.443272Z',0);
CREATE TABLE balances (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    currency TEXT NOT NULL,
    available_amount DECIMAL_TEXT NOT NULL
        CHECK (available_amount GLOB '[0-9]*.[0-9][0-9]*' AND available_amount NOT GLOB '*[^0-9.]*'),
    reserved_amount DECIMAL_TEXT NOT NULL
        CHECK (reserved_amount GLOB '[0-9]*.[0-9][0-9]*' AND reserved_amount NOT GLOB '*[^0-9.]*'),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_id, currency)
) WITHOUT ROWID;
INSERT INTO "balances" VALUES('968691bf-a106-4d99-82db-b706afc4a26b','BTC','0.00','0.00','2026-11-26T07:05:20.431438Z','2026-11-26T07:05:20.436336Z');
INSERT INTO "balances" VALUES('968691bf-a106-4d99-82db-b706afc4a26b','ETH','0.20','0.00','2026-11-26T07:05:20.434704Z','2026-11-26T07:05:20.434704Z');
INSERT INTO "balances" VALUES('968691bf-a106-4d99-82db-b706afc4a26b','USDT','838.227998','3873.87','2026-11-26T07:05:20.425618Z','2026-11-26T07:05:20.436366Z');
INSERT INTO "balances" VALUES('b3e01e51-651f-401b-90ba-ca37016b3aa1','USDT','1.00','0.00','2026-11-26T07:05:20.442302Z','2026-11-26T07:05:20.442302Z');
INSERT INTO "balances" VALUES('f99d367a-c8ea-4c50-a8e8-68822cd08e47','BTC','0.00','0.00','2026-11-26T07:05:20.439400Z','2026-11-26T07:05:20.440046Z');
INSERT INTO "balances" VALUES('f99d367a-c8ea-4c50-a8e8-68822cd08e47','ETH','0.10','0.00','2026-11-26T07:05:20.441222Z','2026-11-26T07:05:20.441222Z');
INSERT INTO "balances" VALUES('f99d367a-c8ea-4c50-a8e8-68822cd08e47','EUR','449.75','0.00','2026-11-26T07:05:20.430442Z','2026-11-26T07:05:20.441183Z');
CREATE TABLE orders (
    id TEXT PRIMARY KEY,                         -- a UUID
    account_id TEXT NOT NULL REFERENCES accounts (id),
    symbol TEXT NOT NULL,                        -- BASE/QUOTE
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty DECIMAL_TEXT NOT NULL,
    limit_price DECIMAL_TEXT NOT NULL,
    fee_rate DECIMAL_TEXT NOT NULL,
    filled_qty DECIMAL_TEXT NOT NULL,
    reserved_amount DECIMAL_TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'FILLED', 'CANCELLED')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO "orders" VALUES('1a4f676f-b073-4fc5-b41c-7c737b6c1436','968691bf-a106-4d99-82db-b706afc4a26b','ETH/USDT','buy','1.00','3000.00','0.001','0.00','3003.00','OPEN','2026-11-26T07:05:20.433015Z','2026-11-26T07:05:20.433015Z');
INSERT INTO "orders" VALUES('d1732943-e07c-407c-8f07-8e4da5013340','968691bf-a106-4d99-82db-b706afc4a26b','ETH/USDT','buy','0.50','2900.00','0.001','0.20','870.87','OPEN','2026-11-26T07:05:20.433775Z','2026-11-26T07:05:20.434722Z');
INSERT INTO "orders" VALUES('58da84ce-e963-4d92-b59f-78c408a54e96','968691bf-a106-4d99-82db-b706afc4a26b','BTC/USDT','sell','0.006','70000.00','0.001','0.006','0.00','FILLED','2026-11-26T07:05:20.435462Z','2026-11-26T07:05:20.436401Z');
INSERT INTO "orders" VALUES('efcaefe9-af02-4e41-98ff-c1834e04467d','f99d367a-c8ea-4c50-a8e8-68822cd08e47','BTC/EUR','buy','0.001','60000.00','0.001','0.00','0.00','CANCELLED','2026-11-26T07:05:20.437368Z','2026-11-26T07:05:20.438291Z');
CREATE TABLE trades (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    order_id TEXT REFERENCES orders (id),
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty DECIMAL_TEXT NOT NULL,
    price DECIMAL_TEXT NOT NULL,
    fee_rate DECIMAL_TEXT NOT NULL,
    fee DECIMAL_TEXT NOT NULL,                   -- in the quote currency
    reference_id TEXT,                           -- the client's --ref
    created_at TEXT NOT NULL
);
INSERT INTO "trades" VALUES(1,'968691bf-a106-4d99-82db-b706afc4a26b',NULL,'BTC/USDT','buy','0.01','65000.00','0.001','0.65','t1','2026-11-26T07:05:20.431324Z');
INSERT INTO "trades" VALUES(2,'968691bf-a106-4d99-82db-b706afc4a26b',NULL,'BTC/USDT','sell','0.004','66000.50','0.001','0.264002',NULL,'2026-11-26T07:05:20.432275Z');
INSERT INTO "trades" VALUES(3,'968691bf-a106-4d99-82db-b706afc4a26b','d1732943-e07c-407c-8f07-8e4da5013340','ETH/USDT','buy','0.20','2850.00','0.001','0.57',NULL,'2026-11-26T07:05:20.434636Z');
INSERT INTO "trades" VALUES(4,'968691bf-a106-4d99-82db-b706afc4a26b','58da84ce-e963-4d92-b59f-78c408a54e96','BTC/USDT','sell','0.006','70000.00','0.001','0.42',NULL,'2026-11-26T07:05:20.436311Z');
INSERT INTO "trades" VALUES(5,'f99d367a-c8ea-4c50-a8e8-68822cd08e47',NULL,'BTC/EUR','buy','0.002','61000.00','0.00','0.00',NULL,'2026-11-26T07:05:20.439349Z');
INSERT INTO "trades" VALUES(6,'f99d367a-c8ea-4c50-a8e8-68822cd08e47',NULL,'ETH/EUR','buy','0.10','2500.00','0.001','0.25',NULL,'2026-11-26T07:05:20.441153Z');
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    transaction_type TEXT NOT NULL
        CHECK (transaction_type IN ('DEPOSIT', 'WITHDRAWAL', 'TRADE_BUY', 'TRADE_SELL', 'FEE', 'RESET')),
    currency TEXT NOT NULL,
    amount DECIMAL_TEXT NOT NULL CHECK (amount GLOB '[0-9-]*.[0-9][0-9]*' AND amount NOT GLOB '?*[^0-9.]*'),
    balance_after DECIMAL_TEXT NOT NULL
        CHECK (balance_after GLOB '[0-9]*.[0-9][0-9]*' AND balance_after NOT GLOB '*[^0-9.]*'),
    description TEXT NOT NULL,
    reference_id TEXT,                           -- the client's --ref (idempotency key)
    created_at TEXT NOT NULL,
    trade_id INTEGER REFERENCES trades (id)
);
INSERT INTO "transactions" VALUES(1,'968691bf-a106-4d99-82db-b706afc4a26b','DEPOSIT','USDT','5000.00','5000.00','Initial deposit',NULL,'2026-11-26T07:05:20.425618Z',NULL);
INSERT INTO "transactions" VALUES(2,'968691bf-a106-4d99-82db-b706afc4a26b','DEPOSIT','USDT','250.50','5250.50','Salary','salary-1','2026-11-26T07:05:20.428926Z',NULL);
INSERT INTO "transactions" VALUES(3,'968691bf-a106-4d99-82db-b706afc4a26b','WITHDRAWAL','USDT','-0.50','5250.00','Withdrawal','fee-1','2026-11-26T07:05:20.429681Z',NULL);
INSERT INTO "transactions" VALUES(4,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','DEPOSIT','EUR','1000.00','1000.00','Deposit',NULL,'2026-11-26T07:05:20.430442Z',NULL);
INSERT INTO "transactions" VALUES(5,'968691bf-a106-4d99-82db-b706afc4a26b','TRADE_BUY','USDT','-650.00','4600.00','buy 0.01 BTC/USDT @ 65000.00','t1','2026-11-26T07:05:20.431393Z',1);
INSERT INTO "transactions" VALUES(6,'968691bf-a106-4d99-82db-b706afc4a26b','FEE','USDT','-0.65','4599.35','buy 0.01 BTC/USDT @ 65000.00','t1','2026-11-26T07:05:20.431393Z',1);
INSERT INTO "transactions" VALUES(7,'968691bf-a106-4d99-82db-b706afc4a26b','TRADE_BUY','BTC','0.01','0.01','buy 0.01 BTC/USDT @ 65000.00','t1','2026-11-26T07:05:20.431438Z',1);
INSERT INTO "transactions" VALUES(8,'968691bf-a106-4d99-82db-b706afc4a26b','TRADE_SELL','BTC','-0.004','0.006','sell 0.004 BTC/USDT @ 66000.50',NULL,'2026-11-26T07:05:20.432304Z',2);
INSERT INTO "transactions" VALUES(9,'968691bf-a106-4d99-82db-b706afc4a26b','TRADE_SELL','USDT','264.002','4863.352','sell 0.004 BTC/USDT @ 66000.50',NULL,'2026-11-26T07:05:20.432343Z',2);
INSERT INTO "transactions" VALUES(10,'968691bf-a106-4d99-82db-b706afc4a26b','FEE','USDT','-0.264002','4863.087998','sell 0.004 BTC/USDT @ 66000.50',NULL,'2026-11-26T07:05:20.432343Z',2);
INSERT INTO "transactions" VALUES(11,'968691bf-a106-4d99-82db-b706afc4a26b','TRADE_BUY','USDT','-570.00','4293.087998','buy 0.20 ETH/USDT @ 2850.00',NULL,'2026-11-26T07:05:20.434665Z',3);
INSERT INTO "transactions" VALUES(12,'968691bf-a106-4d99-82db-b706afc4a26b','FEE','USDT','-0.57','4292.517998','buy 0.20 ETH/USDT @ 2850.00',NULL,'2026-11-26T07:05:20.434665Z',3);
INSERT INTO "transactions" VALUES(13,'968691bf-a106-4d99-82db-b706afc4a26b','TRADE_BUY','ETH','0.20','0.20','buy 0.20 ETH/USDT @ 2850.00',NULL,'2026-11-26T07:05:20.434704Z',3);
INSERT INTO "transactions" VALUES(14,'968691bf-a106-4d99-82db-b706afc4a26b','TRADE_SELL','BTC','-0.006','0.00','sell 0.006 BTC/USDT @ 70000.00',NULL,'2026-11-26T07:05:20.436336Z',4);
INSERT INTO "transactions" VALUES(15,'968691bf-a106-4d99-82db-b706afc4a26b','TRADE_SELL','USDT','420.00','4712.517998','sell 0.006 BTC/USDT @ 70000.00',NULL,'2026-11-26T07:05:20.436366Z',4);
INSERT INTO "transactions" VALUES(16,'968691bf-a106-4d99-82db-b706afc4a26b','FEE','USDT','-0.42','4712.097998','sell 0.006 BTC/USDT @ 70000.00',NULL,'2026-11-26T07:05:20.436366Z',4);
INSERT INTO "transactions" VALUES(17,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','TRADE_BUY','EUR','-122.00','878.00','buy 0.002 BTC/EUR @ 61000.00',NULL,'2026-11-26T07:05:20.439373Z',5);
INSERT INTO "transactions" VALUES(18,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','TRADE_BUY','BTC','0.002','0.002','buy 0.002 BTC/EUR @ 61000.00',NULL,'2026-11-26T07:05:20.439400Z',5);
INSERT INTO "transactions" VALUES(19,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','RESET','BTC','-0.002','0.00','Reset to zero',NULL,'2026-11-26T07:05:20.440046Z',NULL);
INSERT INTO "transactions" VALUES(20,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','RESET','EUR','-878.00','0.00','Reset to zero',NULL,'2026-11-26T07:05:20.440091Z',NULL);
INSERT INTO "transactions" VALUES(21,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','DEPOSIT','EUR','700.00','700.00','Reset deposit',NULL,'2026-11-26T07:05:20.440115Z',NULL);
INSERT INTO "transactions" VALUES(22,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','TRADE_BUY','EUR','-250.00','450.00','buy 0.10 ETH/EUR @ 2500.00',NULL,'2026-11-26T07:05:20.441183Z',6);
INSERT INTO "transactions" VALUES(23,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','FEE','EUR','-0.25','449.75','buy 0.10 ETH/EUR @ 2500.00',NULL,'2026-11-26T07:05:20.441183Z',6);
INSERT INTO "transactions" VALUES(24,'f99d367a-c8ea-4c50-a8e8-68822cd08e47','TRADE_BUY','ETH','0.10','0.10','buy 0.10 ETH/EUR @ 2500.00',NULL,'2026-11-26T07:05:20.441222Z',6);
INSERT INTO "transactions" VALUES(25,'b3e01e51-651f-401b-90ba-ca37016b3aa1','DEPOSIT','USDT','1.00','1.00','Initial deposit',NULL,'2026-11-26T07:05:20.442302Z',NULL);
CREATE INDEX orders_by_account ON orders (account_id, status);
CREATE INDEX trades_by_account ON trades (account_id);
CREATE UNIQUE INDEX trades_by_ref ON trades (account_id, reference_id)
    WHERE reference_id IS NOT NULL;
CREATE INDEX transactions_by_account ON transactions (account_id);
CREATE UNIQUE INDEX transactions_by_ref ON transactions (account_id, reference_id)
    WHERE reference_id IS NOT NULL AND trade_id IS NULL;
CREATE TRIGGER transactions_append_only_update BEFORE UPDATE ON transactions
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER transactions_append_only_delete BEFORE DELETE ON transactions
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER trades_append_only_update BEFORE UPDATE ON trades
BEGIN SELECT RAISE(ABORT, 'trades are append-only'); END;
CREATE TRIGGER trades_append_only_delete BEFORE DELETE ON trades
BEGIN SELECT RAISE(ABORT, 'trades are append-only'); END;
"""


def v1_database(path):
    with connection(path) as conn:
        conn.executescript(V1_DATABASE)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    return str(path)


def rows(db, table):
    with connection(db) as conn:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        return columns, conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def test_a_version_1_database_is_upgraded_in_place_with_every_row(tmp_path, capsys):
    db = v1_database(tmp_path / "v1.db")
    before = {table: rows(db, table) for table in paper.TABLES if table not in ("prices", "strategy_runs")}  # added
    # by versions 2 and 3
    assert paper.main(["verify", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("OK\n", f"paper: upgraded {db} from schema version 1 to {paper.SCHEMA_VERSION}\n")
    for table, (columns, old) in before.items():
        new_columns, new = rows(db, table)
        assert [row[:len(columns)] for row in new] == old and new_columns[:len(columns)] == columns, table
    with connection(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (paper.SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        with pytest.raises(sqlite3.IntegrityError):  # the new CHECKs are in force
            conn.execute("UPDATE balances SET available_amount = '1.23.45'")
    assert paper.main(["status", "--account-id", "9686", "--db", db]) == 0  # once: no second upgrade
    out, err = capsys.readouterr()
    assert err == "" and re.search(r"^USDT +838\.227998 +3873\.87 +4712\.097998$", out, re.M)
    assert paper.main(["orders", "--account-id", "9686", "--open", "--json", "--db", db]) == 0
    assert [o["reserved"] for o in json.loads(capsys.readouterr().out)] == ["870.87", "3003.00"]


def test_an_upgrade_that_cannot_finish_changes_nothing(tmp_path, capsys):
    db = v1_database(tmp_path / "v1.db")
    with connection(db) as conn:  # v1 had no CHECK against this
        conn.execute("UPDATE balances SET available_amount = '0.200' WHERE currency = 'ETH'")
        conn.commit()
    before = dump(db)
    assert paper.main(["status", "--db", db]) == 1
    assert "CHECK constraint failed" in capsys.readouterr().err
    assert dump(db) == before
    with connection(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)


# Made by the version-2 paper.py (commit 3a6fac1) through its API: a USDT account with BTC deposited,
# market trades (one at a zero fee), a limit buy filled by a price, an open stop, a stop-limit
# triggered and filled, an open oco, an expired order, a cancelled one, a partly filled one; an EUR
# account that traded BTC/EUR and was reset; an empty account with a later EUR deposit; a closed one;
# prices of three symbols. Dumped with the sqlite3 module.
V2_DATABASE = """
BEGIN TRANSACTION;
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,                         -- a UUID
    name TEXT NOT NULL,
    leverage DECIMAL_TEXT NOT NULL CHECK (
        typeof(leverage) = 'text' AND length(CAST(leverage AS BLOB)) = length(leverage)
        AND leverage GLOB '[0-9]*.[0-9][0-9]*' AND NOT (leverage GLOB '*[^0-9.]*' OR leverage GLOB '*.*.*'
        OR leverage GLOB '0[0-9]*' OR leverage GLOB '*.[0-9][0-9]*0')
        AND instr(leverage, '.') <= 19 AND length(leverage) - instr(leverage, '.') <= 18),  -- a stored setting: trades are spot, cash only
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    closed_at TEXT,
    max_leverage DECIMAL_TEXT NOT NULL CHECK (
        typeof(max_leverage) = 'text' AND length(CAST(max_leverage AS BLOB)) = length(max_leverage)
        AND max_leverage GLOB '[0-9]*.[0-9][0-9]*' AND NOT (max_leverage GLOB '*[^0-9.]*' OR max_leverage GLOB '*.*.*'
        OR max_leverage GLOB '0[0-9]*' OR max_leverage GLOB '*.[0-9][0-9]*0')
        AND instr(max_leverage, '.') <= 19 AND length(max_leverage) - instr(max_leverage, '.') <= 18),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    pnl_after_trade INTEGER NOT NULL DEFAULT 0,  -- P&L counts trades with a higher id (set by reset)
    price_id INTEGER,                            -- its equity curve starts after this price
    CHECK ((is_active = 1) = (closed_at IS NULL))
);
INSERT INTO "accounts" VALUES('2ada1077-fb3e-4ebc-9c5a-84b2de190c27','Version two','1.00',1,NULL,'3.00','2026-12-06T00:07:50.889974Z','2026-12-06T00:07:50.889974Z',0,NULL);
INSERT INTO "accounts" VALUES('2f2aba77-eecc-49b5-8663-18f8c2a065cd','Euro account','1.00',1,NULL,'3.00','2026-12-06T00:07:50.890777Z','2026-12-06T00:07:50.899583Z',6,NULL);
INSERT INTO "accounts" VALUES('8877d3f4-a8f5-4456-b16e-fba1949a7767','Empty','1.00',1,NULL,'3.00','2026-12-06T00:07:50.891073Z','2026-12-06T00:07:50.891073Z',0,NULL);
INSERT INTO "accounts" VALUES('60b18bf2-ea49-45bb-b3e4-e691b020c825','Closed','1.00',0,'2026-12-06T00:07:50.891553Z','3.00','2026-12-06T00:07:50.891263Z','2026-12-06T00:07:50.891553Z',0,NULL);
CREATE TABLE balances (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    currency TEXT NOT NULL,
    available_amount DECIMAL_TEXT NOT NULL CHECK (
        typeof(available_amount) = 'text' AND length(CAST(available_amount AS BLOB)) = length(available_amount)
        AND available_amount GLOB '[0-9]*.[0-9][0-9]*' AND NOT (available_amount GLOB '*[^0-9.]*' OR available_amount GLOB '*.*.*'
        OR available_amount GLOB '0[0-9]*' OR available_amount GLOB '*.[0-9][0-9]*0')
        AND instr(available_amount, '.') <= 19 AND length(available_amount) - instr(available_amount, '.') <= 18),
    reserved_amount DECIMAL_TEXT NOT NULL CHECK (
        typeof(reserved_amount) = 'text' AND length(CAST(reserved_amount AS BLOB)) = length(reserved_amount)
        AND reserved_amount GLOB '[0-9]*.[0-9][0-9]*' AND NOT (reserved_amount GLOB '*[^0-9.]*' OR reserved_amount GLOB '*.*.*'
        OR reserved_amount GLOB '0[0-9]*' OR reserved_amount GLOB '*.[0-9][0-9]*0')
        AND instr(reserved_amount, '.') <= 19 AND length(reserved_amount) - instr(reserved_amount, '.') <= 18),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_id, currency)
) WITHOUT ROWID;
INSERT INTO "balances" VALUES('2ada1077-fb3e-4ebc-9c5a-84b2de190c27','BTC','0.44','0.10','2026-12-06T00:07:50.891883Z','2026-12-06T00:07:50.896451Z');
INSERT INTO "balances" VALUES('2ada1077-fb3e-4ebc-9c5a-84b2de190c27','ETH','0.40','0.30','2026-12-06T00:07:50.893573Z','2026-12-06T00:07:50.897080Z');
INSERT INTO "balances" VALUES('2ada1077-fb3e-4ebc-9c5a-84b2de190c27','USDT','3935.858','1651.65','2026-12-06T00:07:50.890113Z','2026-12-06T00:07:50.897021Z');
INSERT INTO "balances" VALUES('2f2aba77-eecc-49b5-8663-18f8c2a065cd','BTC','0.00','0.00','2026-12-06T00:07:50.897677Z','2026-12-06T00:07:50.899450Z');
INSERT INTO "balances" VALUES('2f2aba77-eecc-49b5-8663-18f8c2a065cd','EUR','3000.00','0.00','2026-12-06T00:07:50.890815Z','2026-12-06T00:07:50.899550Z');
INSERT INTO "balances" VALUES('60b18bf2-ea49-45bb-b3e4-e691b020c825','USDT','100.00','0.00','2026-12-06T00:07:50.891291Z','2026-12-06T00:07:50.891291Z');
INSERT INTO "balances" VALUES('8877d3f4-a8f5-4456-b16e-fba1949a7767','EUR','5.00','0.00','2026-12-06T00:07:50.898940Z','2026-12-06T00:07:50.898940Z');
CREATE TABLE orders (
    id TEXT PRIMARY KEY,                         -- a UUID
    account_id TEXT NOT NULL REFERENCES accounts (id),
    symbol TEXT NOT NULL,                        -- BASE/QUOTE
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty DECIMAL_TEXT NOT NULL CHECK (
        typeof(qty) = 'text' AND length(CAST(qty AS BLOB)) = length(qty)
        AND qty GLOB '[0-9]*.[0-9][0-9]*' AND NOT (qty GLOB '*[^0-9.]*' OR qty GLOB '*.*.*'
        OR qty GLOB '0[0-9]*' OR qty GLOB '*.[0-9][0-9]*0')
        AND instr(qty, '.') <= 19 AND length(qty) - instr(qty, '.') <= 18 AND qty <> '0.00'),
    limit_price DECIMAL_TEXT CHECK (limit_price IS NULL OR
        typeof(limit_price) = 'text' AND length(CAST(limit_price AS BLOB)) = length(limit_price)
        AND limit_price GLOB '[0-9]*.[0-9][0-9]*' AND NOT (limit_price GLOB '*[^0-9.]*' OR limit_price GLOB '*.*.*'
        OR limit_price GLOB '0[0-9]*' OR limit_price GLOB '*.[0-9][0-9]*0')
        AND instr(limit_price, '.') <= 19 AND length(limit_price) - instr(limit_price, '.') <= 18 AND limit_price <> '0.00'),
    fee_rate DECIMAL_TEXT NOT NULL CHECK (
        typeof(fee_rate) = 'text' AND length(CAST(fee_rate AS BLOB)) = length(fee_rate)
        AND fee_rate GLOB '[0-9]*.[0-9][0-9]*' AND NOT (fee_rate GLOB '*[^0-9.]*' OR fee_rate GLOB '*.*.*'
        OR fee_rate GLOB '0[0-9]*' OR fee_rate GLOB '*.[0-9][0-9]*0')
        AND instr(fee_rate, '.') <= 19 AND length(fee_rate) - instr(fee_rate, '.') <= 18),
    filled_qty DECIMAL_TEXT NOT NULL CHECK (
        typeof(filled_qty) = 'text' AND length(CAST(filled_qty AS BLOB)) = length(filled_qty)
        AND filled_qty GLOB '[0-9]*.[0-9][0-9]*' AND NOT (filled_qty GLOB '*[^0-9.]*' OR filled_qty GLOB '*.*.*'
        OR filled_qty GLOB '0[0-9]*' OR filled_qty GLOB '*.[0-9][0-9]*0')
        AND instr(filled_qty, '.') <= 19 AND length(filled_qty) - instr(filled_qty, '.') <= 18),
    reserved_amount DECIMAL_TEXT NOT NULL CHECK (
        typeof(reserved_amount) = 'text' AND length(CAST(reserved_amount AS BLOB)) = length(reserved_amount)
        AND reserved_amount GLOB '[0-9]*.[0-9][0-9]*' AND NOT (reserved_amount GLOB '*[^0-9.]*' OR reserved_amount GLOB '*.*.*'
        OR reserved_amount GLOB '0[0-9]*' OR reserved_amount GLOB '*.[0-9][0-9]*0')
        AND instr(reserved_amount, '.') <= 19 AND length(reserved_amount) - instr(reserved_amount, '.') <= 18),
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'FILLED', 'CANCELLED', 'EXPIRED')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    type TEXT NOT NULL DEFAULT 'limit' CHECK (type IN ('limit', 'stop', 'stop-limit', 'oco')),
    stop_price DECIMAL_TEXT CHECK (stop_price IS NULL OR
        typeof(stop_price) = 'text' AND length(CAST(stop_price AS BLOB)) = length(stop_price)
        AND stop_price GLOB '[0-9]*.[0-9][0-9]*' AND NOT (stop_price GLOB '*[^0-9.]*' OR stop_price GLOB '*.*.*'
        OR stop_price GLOB '0[0-9]*' OR stop_price GLOB '*.[0-9][0-9]*0')
        AND instr(stop_price, '.') <= 19 AND length(stop_price) - instr(stop_price, '.') <= 18 AND stop_price <> '0.00'),
    expires_at TEXT,                             -- market time
    reference_id TEXT,                           -- the client's --ref
    triggered INTEGER NOT NULL DEFAULT 0 CHECK (triggered IN (0, 1)),
    CHECK ((limit_price IS NULL) = (type = 'stop') AND (stop_price IS NULL) = (type = 'limit'))
);
INSERT INTO "orders" VALUES('ad28774b-0b29-425c-b536-1bc5d264d3c0','2ada1077-fb3e-4ebc-9c5a-84b2de190c27','BTC/USDT','buy','0.02','58000.00','0.001','0.02','0.00','FILLED','2026-12-06T00:07:50.893821Z','2026-12-06T00:07:50.896491Z','limit',NULL,NULL,'o1',0);
INSERT INTO "orders" VALUES('35c8d73a-5a78-4f54-bced-af5ce77e3b18','2ada1077-fb3e-4ebc-9c5a-84b2de190c27','BTC/USDT','sell','0.10',NULL,'0.001','0.00','0.10','OPEN','2026-12-06T00:07:50.894172Z','2026-12-06T00:07:50.894172Z','stop','57000.00',NULL,NULL,0);
INSERT INTO "orders" VALUES('b45c868d-0580-42f4-af6c-d67c9fbe5663','2ada1077-fb3e-4ebc-9c5a-84b2de190c27','ETH/USDT','buy','0.20','3050.00','0.001','0.20','0.00','FILLED','2026-12-06T00:07:50.894388Z','2026-12-06T00:07:50.897111Z','stop-limit','3040.00',NULL,NULL,1);
INSERT INTO "orders" VALUES('d69ec536-b71b-4f0f-a21b-f0fd477eb794','2ada1077-fb3e-4ebc-9c5a-84b2de190c27','ETH/USDT','sell','0.30','3300.00','0.001','0.00','0.30','OPEN','2026-12-06T00:07:50.894618Z','2026-12-06T00:07:50.894618Z','oco','2800.00',NULL,NULL,0);
INSERT INTO "orders" VALUES('866779e4-d5b3-4b5b-9eaf-d79248a0689f','2ada1077-fb3e-4ebc-9c5a-84b2de190c27','ETH/USDT','buy','0.10','2000.00','0.001','0.00','0.00','EXPIRED','2026-12-06T00:07:50.894874Z','2026-12-06T00:07:50.896937Z','limit',NULL,'2026-11-20T00:03:00.000000Z',NULL,0);
INSERT INTO "orders" VALUES('e87785d6-f271-49c9-882b-c7f70b795876','2ada1077-fb3e-4ebc-9c5a-84b2de190c27','BTC/USDT','buy','0.01','50000.00','0.001','0.00','0.00','CANCELLED','2026-12-06T00:07:50.895109Z','2026-12-06T00:07:50.895386Z','limit',NULL,NULL,NULL,0);
INSERT INTO "orders" VALUES('8c01675b-bb1a-4b41-9aeb-904b76e54d60','2ada1077-fb3e-4ebc-9c5a-84b2de190c27','BTC/USDT','buy','0.04','55000.00','0.001','0.01','1651.65','OPEN','2026-12-06T00:07:50.895650Z','2026-12-06T00:07:50.896068Z','limit',NULL,NULL,NULL,0);
CREATE TABLE prices (
    id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,                        -- BASE/QUOTE
    time TEXT NOT NULL,                          -- market time
    open DECIMAL_TEXT NOT NULL CHECK (typeof(open) = 'text' AND open GLOB '[0-9]*.[0-9][0-9]*' AND NOT open GLOB '*[^0-9.]*'),
    high DECIMAL_TEXT NOT NULL CHECK (typeof(high) = 'text' AND high GLOB '[0-9]*.[0-9][0-9]*' AND NOT high GLOB '*[^0-9.]*'),
    low DECIMAL_TEXT NOT NULL CHECK (typeof(low) = 'text' AND low GLOB '[0-9]*.[0-9][0-9]*' AND NOT low GLOB '*[^0-9.]*'),
    close DECIMAL_TEXT NOT NULL CHECK (typeof(close) = 'text' AND close GLOB '[0-9]*.[0-9][0-9]*' AND NOT close GLOB '*[^0-9.]*'),
    created_at TEXT NOT NULL
);
INSERT INTO "prices" VALUES(1,'BTC/USDT','2026-11-20T00:00:00.000000Z','60000.00','60000.00','60000.00','60000.00','2026-12-06T00:07:50.892245Z');
INSERT INTO "prices" VALUES(2,'ETH/USDT','2026-11-20T00:00:00.000000Z','3000.00','3000.00','3000.00','3000.00','2026-12-06T00:07:50.892823Z');
INSERT INTO "prices" VALUES(3,'BTC/USDT','2026-11-20T00:01:00.000000Z','60000.00','60500.00','57900.00','58100.00','2026-12-06T00:07:50.896261Z');
INSERT INTO "prices" VALUES(4,'ETH/USDT','2026-11-20T00:01:00.000000Z','3000.00','3045.00','2990.00','3044.00','2026-12-06T00:07:50.896710Z');
INSERT INTO "prices" VALUES(5,'ETH/USDT','2026-11-20T00:03:00.000000Z','3010.00','3010.00','3010.00','3010.00','2026-12-06T00:07:50.896900Z');
INSERT INTO "prices" VALUES(6,'BTC/EUR','2026-11-20T00:02:00.000000Z','56000.00','56000.00','56000.00','56000.00','2026-12-06T00:07:50.898217Z');
CREATE TABLE trades (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    order_id TEXT REFERENCES orders (id),
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty DECIMAL_TEXT NOT NULL CHECK (
        typeof(qty) = 'text' AND length(CAST(qty AS BLOB)) = length(qty)
        AND qty GLOB '[0-9]*.[0-9][0-9]*' AND NOT (qty GLOB '*[^0-9.]*' OR qty GLOB '*.*.*'
        OR qty GLOB '0[0-9]*' OR qty GLOB '*.[0-9][0-9]*0')
        AND instr(qty, '.') <= 19 AND length(qty) - instr(qty, '.') <= 18 AND qty <> '0.00'),
    price DECIMAL_TEXT NOT NULL CHECK (
        typeof(price) = 'text' AND length(CAST(price AS BLOB)) = length(price)
        AND price GLOB '[0-9]*.[0-9][0-9]*' AND NOT (price GLOB '*[^0-9.]*' OR price GLOB '*.*.*'
        OR price GLOB '0[0-9]*' OR price GLOB '*.[0-9][0-9]*0')
        AND instr(price, '.') <= 19 AND length(price) - instr(price, '.') <= 18 AND price <> '0.00'),
    fee_rate DECIMAL_TEXT NOT NULL CHECK (
        typeof(fee_rate) = 'text' AND length(CAST(fee_rate AS BLOB)) = length(fee_rate)
        AND fee_rate GLOB '[0-9]*.[0-9][0-9]*' AND NOT (fee_rate GLOB '*[^0-9.]*' OR fee_rate GLOB '*.*.*'
        OR fee_rate GLOB '0[0-9]*' OR fee_rate GLOB '*.[0-9][0-9]*0')
        AND instr(fee_rate, '.') <= 19 AND length(fee_rate) - instr(fee_rate, '.') <= 18),
    fee DECIMAL_TEXT NOT NULL CHECK (
        typeof(fee) = 'text' AND length(CAST(fee AS BLOB)) = length(fee)
        AND fee GLOB '[0-9]*.[0-9][0-9]*' AND NOT (fee GLOB '*[^0-9.]*' OR fee GLOB '*.*.*'
        OR fee GLOB '0[0-9]*' OR fee GLOB '*.[0-9][0-9]*0')
        AND instr(fee, '.') <= 19 AND length(fee) - instr(fee, '.') <= 18),  -- in the quote currency
    reference_id TEXT,                           -- the client's --ref
    created_at TEXT NOT NULL,
    price_id INTEGER                             -- its place in market time
);
INSERT INTO "trades" VALUES(1,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27',NULL,'BTC/USDT','buy','0.01','60000.00','0.001','0.60','t1','2026-12-06T00:07:50.893026Z',2);
INSERT INTO "trades" VALUES(2,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27',NULL,'ETH/USDT','buy','0.50','2990.50','0.00','0.00','t2','2026-12-06T00:07:50.893486Z',2);
INSERT INTO "trades" VALUES(3,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','8c01675b-bb1a-4b41-9aeb-904b76e54d60','BTC/USDT','buy','0.01','54000.00','0.001','0.54',NULL,'2026-12-06T00:07:50.895909Z',2);
INSERT INTO "trades" VALUES(4,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','ad28774b-0b29-425c-b536-1bc5d264d3c0','BTC/USDT','buy','0.02','58000.00','0.001','1.16',NULL,'2026-12-06T00:07:50.896337Z',3);
INSERT INTO "trades" VALUES(5,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','b45c868d-0580-42f4-af6c-d67c9fbe5663','ETH/USDT','buy','0.20','3010.00','0.001','0.602',NULL,'2026-12-06T00:07:50.896990Z',5);
INSERT INTO "trades" VALUES(6,'2f2aba77-eecc-49b5-8663-18f8c2a065cd',NULL,'BTC/EUR','buy','0.01','55000.00','0.001','0.55',NULL,'2026-12-06T00:07:50.897572Z',5);
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    transaction_type TEXT NOT NULL
        CHECK (transaction_type IN ('DEPOSIT', 'WITHDRAWAL', 'TRADE_BUY', 'TRADE_SELL', 'FEE', 'RESET')),
    currency TEXT NOT NULL,
    amount DECIMAL_TEXT NOT NULL CHECK (
        typeof(amount) = 'text' AND length(CAST(amount AS BLOB)) = length(amount)
        AND substr(amount, 1 + (amount GLOB '-*')) GLOB '[0-9]*.[0-9][0-9]*' AND NOT (substr(amount, 1 + (amount GLOB '-*')) GLOB '*[^0-9.]*' OR substr(amount, 1 + (amount GLOB '-*')) GLOB '*.*.*'
        OR substr(amount, 1 + (amount GLOB '-*')) GLOB '0[0-9]*' OR substr(amount, 1 + (amount GLOB '-*')) GLOB '*.[0-9][0-9]*0')
        AND instr(substr(amount, 1 + (amount GLOB '-*')), '.') <= 19 AND length(substr(amount, 1 + (amount GLOB '-*'))) - instr(substr(amount, 1 + (amount GLOB '-*')), '.') <= 18),
    balance_after DECIMAL_TEXT NOT NULL CHECK (
        typeof(balance_after) = 'text' AND length(CAST(balance_after AS BLOB)) = length(balance_after)
        AND balance_after GLOB '[0-9]*.[0-9][0-9]*' AND NOT (balance_after GLOB '*[^0-9.]*' OR balance_after GLOB '*.*.*'
        OR balance_after GLOB '0[0-9]*' OR balance_after GLOB '*.[0-9][0-9]*0')
        AND instr(balance_after, '.') <= 19 AND length(balance_after) - instr(balance_after, '.') <= 18),
    description TEXT NOT NULL,
    reference_id TEXT,                           -- the client's --ref (idempotency key)
    created_at TEXT NOT NULL,
    trade_id INTEGER REFERENCES trades (id),
    price_id INTEGER                             -- its place in market time
);
INSERT INTO "transactions" VALUES(1,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','DEPOSIT','USDT','10000.00','10000.00','Initial deposit',NULL,'2026-12-06T00:07:50.890113Z',NULL,NULL);
INSERT INTO "transactions" VALUES(2,'2f2aba77-eecc-49b5-8663-18f8c2a065cd','DEPOSIT','EUR','2500.00','2500.00','Initial deposit',NULL,'2026-12-06T00:07:50.890815Z',NULL,NULL);
INSERT INTO "transactions" VALUES(3,'60b18bf2-ea49-45bb-b3e4-e691b020c825','DEPOSIT','USDT','100.00','100.00','Initial deposit',NULL,'2026-12-06T00:07:50.891291Z',NULL,NULL);
INSERT INTO "transactions" VALUES(4,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','DEPOSIT','BTC','0.50','0.50','Deposit','coins-in','2026-12-06T00:07:50.891883Z',NULL,NULL);
INSERT INTO "transactions" VALUES(5,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','WITHDRAWAL','USDT','-12.34','9987.66','Withdrawal','rent','2026-12-06T00:07:50.892078Z',NULL,NULL);
INSERT INTO "transactions" VALUES(6,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','USDT','-600.00','9387.66','buy 0.01 BTC/USDT @ 60000.00','t1','2026-12-06T00:07:50.893173Z',1,2);
INSERT INTO "transactions" VALUES(7,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','FEE','USDT','-0.60','9387.06','buy 0.01 BTC/USDT @ 60000.00','t1','2026-12-06T00:07:50.893173Z',1,2);
INSERT INTO "transactions" VALUES(8,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','BTC','0.01','0.51','buy 0.01 BTC/USDT @ 60000.00','t1','2026-12-06T00:07:50.893246Z',1,2);
INSERT INTO "transactions" VALUES(9,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','USDT','-1495.25','7891.81','buy 0.50 ETH/USDT @ 2990.50','t2','2026-12-06T00:07:50.893521Z',2,2);
INSERT INTO "transactions" VALUES(10,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','ETH','0.50','0.50','buy 0.50 ETH/USDT @ 2990.50','t2','2026-12-06T00:07:50.893573Z',2,2);
INSERT INTO "transactions" VALUES(11,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','USDT','-540.00','7351.81','buy 0.01 BTC/USDT @ 54000.00',NULL,'2026-12-06T00:07:50.895953Z',3,2);
INSERT INTO "transactions" VALUES(12,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','FEE','USDT','-0.54','7351.27','buy 0.01 BTC/USDT @ 54000.00',NULL,'2026-12-06T00:07:50.895953Z',3,2);
INSERT INTO "transactions" VALUES(13,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','BTC','0.01','0.52','buy 0.01 BTC/USDT @ 54000.00',NULL,'2026-12-06T00:07:50.896028Z',3,2);
INSERT INTO "transactions" VALUES(14,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','USDT','-1160.00','6191.27','buy 0.02 BTC/USDT @ 58000.00',NULL,'2026-12-06T00:07:50.896371Z',4,3);
INSERT INTO "transactions" VALUES(15,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','FEE','USDT','-1.16','6190.11','buy 0.02 BTC/USDT @ 58000.00',NULL,'2026-12-06T00:07:50.896371Z',4,3);
INSERT INTO "transactions" VALUES(16,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','BTC','0.02','0.54','buy 0.02 BTC/USDT @ 58000.00',NULL,'2026-12-06T00:07:50.896451Z',4,3);
INSERT INTO "transactions" VALUES(17,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','USDT','-602.00','5588.11','buy 0.20 ETH/USDT @ 3010.00',NULL,'2026-12-06T00:07:50.897021Z',5,5);
INSERT INTO "transactions" VALUES(18,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','FEE','USDT','-0.602','5587.508','buy 0.20 ETH/USDT @ 3010.00',NULL,'2026-12-06T00:07:50.897021Z',5,5);
INSERT INTO "transactions" VALUES(19,'2ada1077-fb3e-4ebc-9c5a-84b2de190c27','TRADE_BUY','ETH','0.20','0.70','buy 0.20 ETH/USDT @ 3010.00',NULL,'2026-12-06T00:07:50.897080Z',5,5);
INSERT INTO "transactions" VALUES(20,'2f2aba77-eecc-49b5-8663-18f8c2a065cd','TRADE_BUY','EUR','-550.00','1950.00','buy 0.01 BTC/EUR @ 55000.00',NULL,'2026-12-06T00:07:50.897614Z',6,5);
INSERT INTO "transactions" VALUES(21,'2f2aba77-eecc-49b5-8663-18f8c2a065cd','FEE','EUR','-0.55','1949.45','buy 0.01 BTC/EUR @ 55000.00',NULL,'2026-12-06T00:07:50.897614Z',6,5);
INSERT INTO "transactions" VALUES(22,'2f2aba77-eecc-49b5-8663-18f8c2a065cd','TRADE_BUY','BTC','0.01','0.01','buy 0.01 BTC/EUR @ 55000.00',NULL,'2026-12-06T00:07:50.897677Z',6,5);
INSERT INTO "transactions" VALUES(23,'8877d3f4-a8f5-4456-b16e-fba1949a7767','DEPOSIT','EUR','5.00','5.00','Deposit',NULL,'2026-12-06T00:07:50.898940Z',NULL,6);
INSERT INTO "transactions" VALUES(24,'2f2aba77-eecc-49b5-8663-18f8c2a065cd','RESET','BTC','-0.01','0.00','Reset to zero',NULL,'2026-12-06T00:07:50.899450Z',NULL,6);
INSERT INTO "transactions" VALUES(25,'2f2aba77-eecc-49b5-8663-18f8c2a065cd','RESET','EUR','-1949.45','0.00','Reset to zero',NULL,'2026-12-06T00:07:50.899511Z',NULL,6);
INSERT INTO "transactions" VALUES(26,'2f2aba77-eecc-49b5-8663-18f8c2a065cd','DEPOSIT','EUR','3000.00','3000.00','Reset deposit',NULL,'2026-12-06T00:07:50.899550Z',NULL,6);
CREATE INDEX orders_by_account ON orders (account_id, status);
CREATE INDEX orders_open ON orders (symbol) WHERE status = 'OPEN';
CREATE UNIQUE INDEX orders_by_ref ON orders (account_id, reference_id) WHERE reference_id IS NOT NULL;
CREATE INDEX trades_by_account ON trades (account_id);
CREATE UNIQUE INDEX trades_by_ref ON trades (account_id, reference_id)
    WHERE reference_id IS NOT NULL;
CREATE INDEX transactions_by_account ON transactions (account_id);
CREATE UNIQUE INDEX transactions_by_ref ON transactions (account_id, reference_id)
    WHERE reference_id IS NOT NULL AND trade_id IS NULL;
CREATE INDEX transactions_out ON transactions (account_id)
    WHERE trade_id IS NOT NULL OR transaction_type IN ('WITHDRAWAL', 'RESET');
CREATE UNIQUE INDEX prices_by_symbol ON prices (symbol, time);
CREATE TRIGGER transactions_append_only_update BEFORE UPDATE ON transactions
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER transactions_append_only_delete BEFORE DELETE ON transactions
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER transactions_append_only_replace BEFORE INSERT ON transactions
WHEN EXISTS (SELECT 1 FROM transactions WHERE id = NEW.id) OR NEW.reference_id IS NOT NULL AND NEW.trade_id IS NULL
    AND EXISTS (SELECT 1 FROM transactions WHERE account_id = NEW.account_id AND reference_id = NEW.reference_id
                AND trade_id IS NULL)
BEGIN SELECT RAISE(ABORT, 'transactions are append-only: that id or ref is recorded already'); END;
CREATE TRIGGER trades_append_only_update BEFORE UPDATE ON trades
BEGIN SELECT RAISE(ABORT, 'trades are append-only'); END;
CREATE TRIGGER trades_append_only_delete BEFORE DELETE ON trades
BEGIN SELECT RAISE(ABORT, 'trades are append-only'); END;
CREATE TRIGGER trades_append_only_replace BEFORE INSERT ON trades
WHEN EXISTS (SELECT 1 FROM trades WHERE id = NEW.id) OR NEW.reference_id IS NOT NULL
    AND EXISTS (SELECT 1 FROM trades WHERE account_id = NEW.account_id AND reference_id = NEW.reference_id)
BEGIN SELECT RAISE(ABORT, 'trades are append-only: that id or ref is recorded already'); END;
CREATE TRIGGER prices_append_only_update BEFORE UPDATE ON prices
BEGIN SELECT RAISE(ABORT, 'prices are append-only'); END;
CREATE TRIGGER prices_append_only_delete BEFORE DELETE ON prices
BEGIN SELECT RAISE(ABORT, 'prices are append-only'); END;
COMMIT;
"""


def v2_database(path):
    with connection(path) as conn:
        conn.executescript(V2_DATABASE)
        conn.execute("PRAGMA user_version = 2")
        conn.execute("PRAGMA journal_mode = WAL")
    return str(path)


def test_a_version_2_database_is_upgraded_in_place_with_every_row(tmp_path, capsys):
    db = v2_database(tmp_path / "v2.db")
    before = {table: rows(db, table) for table in paper.TABLES if table != "strategy_runs"}  # version 3 added it
    assert paper.main(["verify", "--db", db]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("OK\n", f"paper: upgraded {db} from schema version 2 to {paper.SCHEMA_VERSION}\n")
    for table, (columns, old) in before.items():
        new_columns, new = rows(db, table)
        assert [row[:len(columns)] for row in new] == old and new_columns[:len(columns)] == columns, table
    with connection(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (paper.SCHEMA_VERSION,)
        # each account's own currency is its first transaction's (init's deposit), else USDT
        assert dict(conn.execute("SELECT name, currency FROM accounts")) == {
            "Version two": "USDT", "Euro account": "EUR", "Empty": "EUR", "Closed": "USDT"}
        assert conn.execute("SELECT count(*) FROM orders WHERE reason IS NOT NULL").fetchone() == (0,)
        # version 3's market orders: no old order is one, none has slippage or is sized at its fill
        assert conn.execute("SELECT reserve_price, slippage, sized_at_fill, count(*) FROM orders GROUP BY 1, 2, 3"
                            ).fetchall() == [(None, "0.00", 0, 7)]
        assert rows(db, "strategy_runs") == (["id", "account_id", "strategy", "params", "options", "mode", "state",
                                              "handled", "bars", "created_at", "updated_at"], [])
    assert paper.main(["status", "--account-id", "2ada", "--db", db]) == 0  # once: no second upgrade
    out, err = capsys.readouterr()
    assert err == "" and re.search(r"^USDT +3935\.858 +1651\.65 +5587\.508$", out, re.M)
    assert paper.main(["orders", "--account-id", "2ada", "--open", "--json", "--db", db]) == 0
    assert [(o["type"], o["reserved"]) for o in json.loads(capsys.readouterr().out)] == [
        ("limit", "1651.65"), ("oco", "0.30"), ("stop", "0.10")]


def test_an_upgrade_keeps_a_users_own_views_and_indexes(tmp_path, capsys):
    db = v1_database(tmp_path / "v1.db")
    with connection(db) as conn:
        conn.executescript("CREATE VIEW deposits AS SELECT * FROM transactions WHERE transaction_type = 'DEPOSIT';"
                           " CREATE INDEX by_time ON transactions (created_at);")
    assert paper.main(["verify", "--db", db]) == 0
    with connection(db) as conn:
        assert conn.execute("SELECT count(*) FROM deposits").fetchone() == (5,)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'by_time'").fetchone() == (1,)


# --- The Python API ---

def test_the_ledger_takes_prefixes_decimals_and_retries_and_refuses_a_float(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="100")
        tx = ledger.deposit(account.id[:8], Decimal("0.1"), ref="a")
        assert (tx.amount, tx.balance_after) == (Decimal("0.1"), Decimal("100.1"))
        assert ledger.deposit(account.id, "0.10", ref="a") == tx
        ledger.withdraw(account.id, 50, "USDT")
        assert ledger.account(account.id).balances["USDT"].total == Decimal("50.1")
        with pytest.raises(paper.PaperError, match="not float"):
            ledger.deposit(account.id, 0.1)
        with pytest.raises(paper.PaperError, match="insufficient funds"):
            ledger.withdraw(account.id, 51)
        assert ledger.verify() == []


def test_records_show_and_compare_by_their_fields(db):
    with paper.Ledger(db, create=True) as ledger:
        acct = ledger.create_account().id
        tx = ledger.deposit(acct, "1.5", ref="r")  # its amounts as the database gives them back (1.50)
        assert repr(tx).startswith(f"Transaction(id=2, account_id='{acct}', type='DEPOSIT', currency='USDT',"
                                   " amount=Decimal('1.50'), balance_after=Decimal('5001.50'), description='Deposit',"
                                   " reference_id='r', created_at='")
        newest, first = ledger.transactions(acct)
        assert tx == newest and tx != first and newest != (2, acct)
        assert tx == mock.ANY and [tx, first] == [mock.ANY, mock.ANY]  # other types get their say


def test_trading_through_the_library(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance=Decimal(1000))
        trade = ledger.trade(account.id, "buy", "ETH/USDT", Decimal("0.5"), Decimal(1000), fee_rate=0)
        assert [tx.amount for tx in trade.transactions] == [Decimal(-500), Decimal("0.5")]
        order = ledger.place_order(account.id, "sell", "ETH/USDT", "0.5", "1200", fee_rate="0.001")
        ledger.fill(order.id, price="1300")
        valued = ledger.valuation(account.id, {})
        assert valued["equity"] == Decimal("1149.35") and valued["realized_pnl"] == {"ETH/USDT": Decimal("149.35")}
        assert ledger.orders(account.id, open_only=True) == []
        assert ledger.verify() == []


def test_the_api_refuses_as_the_command_line_does(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account()
        with pytest.raises(paper.PaperError, match="description must be 1-200 printable"):
            ledger.deposit(account.id, "1", description="")
        for huge in (Decimal("1e100000000"), Decimal("1e999999999999999"), 10**5000, Decimal("1e-100000000")):
            with pytest.raises(paper.PaperError) as refusal:
                ledger.deposit(account.id, huge)
            assert len(str(refusal.value)) < 120
        with pytest.raises(paper.PaperError, match="must be greater than zero, not Decimal"):
            ledger.deposit(account.id, Decimal("-5"))
        with ledger:  # nested in itself: the inner `with` leaves it open
            ledger.deposit(account.id, "1")
        assert ledger.account(account.id).balances["USDT"].total == Decimal("5001")
    with pytest.raises(paper.PaperError, match="the ledger of .* is closed"):
        ledger.account(account.id)  # the outer `with` closed it
    with paper.Ledger(db) as ledger:
        for limit in (0, -1, 2**70 * -1, "ten", 1.5, True):
            with pytest.raises(paper.PaperError, match="limit must be a whole number above zero"):
                ledger.transactions(account.id, limit)
        assert len(ledger.transactions(account.id, 2**70)) == 2


def test_the_market_through_the_library(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000")
        order = ledger.place_order(account.id, "buy", "ETH/USDT", "1", stop_price="110", type="stop", ref="breakout")
        assert ledger.tick("ETH/USDT", "105", time="2026-11-25T14:00:00Z")["fills"] == []
        result = ledger.tick("ETH/USDT", open="108", high="112", low="107", close="111", time="2026-11-25T14:01:00Z")
        [fill] = result["fills"]
        assert (fill.order_id, fill.price, fill.fee) == (order.id, Decimal(110), Decimal("0.11"))
        trade = ledger.trade(account.id, "sell", "ETH/USDT", "1")  # at the latest close, 111
        assert trade.price == Decimal(111) and ledger.prices("ETH/USDT", limit=1)[0]["close"] == Decimal(111)
        with pytest.raises(RuntimeError):
            with ledger.batch():  # one transaction: an exception leaves none of it
                ledger.tick("ETH/USDT", "120", time="2026-11-25T14:02:00Z")
                ledger.deposit(account.id, "5")
                raise RuntimeError
        # 1000 - 110 - 0.11 (the stop's fill) + 111 - 0.111 (the sale)
        assert len(ledger.prices()) == 2 and ledger.account(account.id).balances["USDT"].total == Decimal("1000.779")
        with ledger.batch():  # a refused operation inside a batch leaves nothing of itself
            with pytest.raises(paper.PaperError, match="insufficient funds"):
                ledger.trade(account.id, "buy", "ETH/USDT", "100")
            ledger.deposit(account.id, "5")
        assert ledger.account(account.id).balances["USDT"].total == Decimal("1005.779")
        assert ledger.verify() == []


def test_a_nested_batch_that_fails_leaves_no_price(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000").id
        order = ledger.place_order(account, "buy", "BTC/USDT", "1", "1", expires="2026-01-02")
        with ledger.batch():
            ledger.tick("ETH/USDT", "5", time="2026-01-01")
            with contextlib.suppress(ValueError):
                with ledger.batch():
                    ledger.tick("BTC/USDT", "100", time="2026-01-03")  # it expires the order, then all is undone
                    raise ValueError
        assert [(p["symbol"], p["close"]) for p in ledger.prices()] == [("ETH/USDT", Decimal(5))]
        assert ledger.orders(account)[0].status == "OPEN" and ledger.verify() == []


def test_a_trade_undone_inside_a_batch_leaves_the_balances_the_batch_goes_on_from(db):
    """A batch keeps the balances it reads and writes: an operation it undoes must not leave them behind."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000").id
        with ledger.batch():
            ledger.tick("BTC/USDT", "100", time="2026-01-01")
            with contextlib.suppress(ValueError):
                with ledger.batch():
                    ledger.trade(account, "buy", "BTC/USDT", "1", fee_rate="0")  # 900 USDT, 1 BTC, then undone
                    raise ValueError
            trade = ledger.trade(account, "buy", "BTC/USDT", "2", fee_rate="0")  # from 1000: 800 left
        assert [leg.balance_after for leg in trade.transactions] == [Decimal("800.00"), Decimal("2.00")]
        held = ledger.account(account).balances
        assert (held["USDT"].available, held["BTC"].available) == (Decimal(800), Decimal(2)) and ledger.verify() == []


def test_an_undone_savepoint_keeps_the_prices_queued_before_it_and_only_those(db):
    """A batch writes its prices in bulk, late: an operation undone inside it takes the prices it recorded
    with it (written or not), and leaves those recorded before it (even if it wrote them)."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000").id
        with ledger.batch():
            ledger.tick("BTC/USDT", "100", time="2026-01-01")
            with pytest.raises(paper.PaperError, match="insufficient funds"):  # undone before anything is written
                ledger.trade(account, "buy", "BTC/USDT", "100")
            with contextlib.suppress(ValueError):
                with ledger.batch():
                    ledger.tick("ETH/USDT", "5", time="2026-01-02")
                    with contextlib.suppress(ValueError):
                        with ledger.batch():
                            ledger.tick("ETH/USDT", "6", time="2026-01-03")
                            assert len(ledger.prices()) == 3  # read: all three are written now
                            raise ValueError
                    assert [p["close"] for p in ledger.prices()] == [Decimal(5), Decimal(100)]
                    raise ValueError
            assert [p["close"] for p in ledger.prices()] == [Decimal(100)]
            ledger.tick("ETH/USDT", "7", time="2026-01-02")  # its time is free again
            ledger.trade(account, "buy", "BTC/USDT", "1", fee_rate="0")
        assert [(p["symbol"], p["time"], p["close"]) for p in ledger.prices()] == [
            ("ETH/USDT", "2026-01-02T00:00:00.000000Z", Decimal(7)),
            ("BTC/USDT", "2026-01-01T00:00:00.000000Z", Decimal(100))]
        assert ledger.account(account).balances["USDT"].total == Decimal(900) and ledger.verify() == []


def test_writes_held_back_in_a_batch_land_once_with_the_ids_sqlite_would_give(db):
    """A batch holds its writes back and writes them in bulk: an undone operation takes its own, written or
    not, and leaves those made before it (written inside it or not); ids follow on with no gap or repeat."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000").id  # transaction 1
        with ledger.batch():
            ledger.deposit(account, "1", ref="a")  # 2, held
            with contextlib.suppress(ValueError):
                with ledger.batch():
                    ledger.deposit(account, "10", ref="b")  # 3, held
                    assert ledger.account(account).balances["USDT"].total == Decimal(1011)  # a read: written now
                    ledger.deposit(account, "100", ref="c")  # 4, held
                    raise ValueError
            assert ledger.account(account).balances["USDT"].total == Decimal(1001)
            ledger.tick("BTC/USDT", "100", time="2026-01-01")
            stale = ledger.place_order(account, "buy", "BTC/USDT", "1", "50", fee_rate="0")
            assert ledger.orders(account)[0].status == "OPEN"  # a read: written now
            ledger.cancel(stale.id)  # its UPDATE held, before the next order's INSERT
            gone = ledger.place_order(account, "buy", "BTC/USDT", "1", "60", fee_rate="0")
            ledger.cancel(gone.id)  # its UPDATE held after its INSERT, and after the stale one's UPDATE
            order = ledger.place_order(account, "buy", "BTC/USDT", "2", "90", fee_rate="0")  # reserves 180
            ledger.tick("BTC/USDT", "89", time="2026-01-02")  # fills it: its INSERT and UPDATE held after that
            ledger.deposit(account, "1000", ref="d")
        # the fill at 89 (a limit of 90 reached by a price under it): -178 USDT, +2 BTC, no fee row
        assert [(tx.id, tx.type, tx.currency, tx.amount, tx.reference_id) for tx in ledger.transactions(account)] == [
            (5, "DEPOSIT", "USDT", Decimal(1000), "d"), (4, "TRADE_BUY", "BTC", Decimal(2), None),
            (3, "TRADE_BUY", "USDT", Decimal(-178), None), (2, "DEPOSIT", "USDT", Decimal(1), "a"),
            (1, "DEPOSIT", "USDT", Decimal(1000), None)]
        assert [(o.id, o.status, o.filled_qty, o.reserved) for o in ledger.orders(account)] == [
            (order.id, "FILLED", Decimal(2), 0), (gone.id, "CANCELLED", 0, 0), (stale.id, "CANCELLED", 0, 0)]
        held = ledger.account(account).balances
        assert (held["USDT"].total, held["BTC"].total) == (Decimal(1823), Decimal(2)) and ledger.verify() == []


def test_what_a_ledger_keeps_between_transactions_goes_when_another_connection_writes(db):
    """A ledger keeps balances, account rows and the next ids from one transaction to the next: another
    connection's write makes it read them again."""
    with paper.Ledger(db, create=True) as one, paper.Ledger(db) as other:
        account = one.create_account(balance="100").id  # transaction 1
        assert one.deposit(account, "1").id == 2  # one keeps 101 USDT, the account, the next id
        assert other.deposit(account, "10").id == 3
        assert one.deposit(account, "1").id == 4 and one.account(account).balances["USDT"].total == Decimal(112)
        other.close_account(account)
        with pytest.raises(paper.PaperError, match=f"account {account} is closed"):
            one.deposit(account, "1")
        assert [tx.balance_after for tx in one.transactions(account)] == [Decimal(112), Decimal(111), Decimal(101),
                                                                          Decimal(100)]
        assert one.verify() == []


def test_a_write_inside_a_half_read_history_takes_the_write_lock_at_once(db):
    """A read left open (a history half-read) is no write transaction: a batch inside it holds nothing back,
    so it takes the write lock with its first write, and another connection waits for it."""
    with paper.Ledger(db, create=True, busy_timeout_ms=0) as ledger, paper.Ledger(db, busy_timeout_ms=0) as other:
        account = ledger.create_account(balance="1000").id
        ledger.deposit(account, "1")
        reading = ledger.history(account)
        assert next(reading).amount == Decimal(1)
        with ledger.batch():
            assert ledger.deposit(account, "2").balance_after == Decimal(1003)
            with pytest.raises(paper.Busy):
                other.deposit(account, "100")
            ledger.tick("BTC/USDT", "100", time="2020-01-01T00:00:00Z")
        assert [tx.amount for tx in reading] == [Decimal(1000)]
        assert [tx.amount for tx in other.transactions(account)] == [Decimal(2), Decimal(1), Decimal(1000)]
        assert other.verify() == []


def test_an_account_prefix_that_a_new_account_makes_ambiguous_is_refused(db, monkeypatch):
    ids = iter(["abcd0000-0000-4000-8000-000000000001", "abcd0000-0000-4000-8000-000000000002"])
    monkeypatch.setattr(paper, "new_id", lambda: next(ids))  # two random ids that share a prefix
    with paper.Ledger(db, create=True) as ledger:
        ledger.create_account(balance="10")
        assert ledger.deposit("abcd", "1").account_id == "abcd0000-0000-4000-8000-000000000001"
        ledger.create_account(balance="20")
        with pytest.raises(paper.PaperError, match="account id 'abcd' is ambiguous"):
            ledger.deposit("abcd", "1")


def test_a_full_disk_in_a_batch_is_a_paper_error_and_ends_the_batch(db):
    """Held writes that fail (SQLite's page limit stands for a full disk) reach the batch's code as a
    PaperError, from tick too; a nested batch that caught it leaves quietly, and the batch ends with ENDED."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000").id
        pages = ledger.db.execute("PRAGMA page_count").fetchone()[0]
        ledger.db.execute(f"PRAGMA max_page_count = {pages + 2}")
        caught = []
        with pytest.raises(paper.PaperError) as ended:
            with ledger.batch():
                ledger.deposit(account, "1")
                with ledger.batch():
                    for _ in range(300):
                        ledger.deposit(account, "2", description="x" * 200)
                    try:
                        ledger.tick("ETH/USDT", "5", time="2020-01-01T00:00:00Z")  # a read first: all is written
                    except paper.PaperError as error:
                        caught.append(str(error))
        assert len(caught) == 1 and "full" in caught[0] and str(ended.value) == paper.ENDED
        ledger.db.execute(f"PRAGMA max_page_count = {2 ** 30}")
        assert [tx.amount for tx in ledger.transactions(account)] == [Decimal(1000)] and ledger.verify() == []


def test_after_a_failed_write_nothing_of_the_batch_lands_on_its_own(db):
    """A full disk as held writes are written ends the transaction: the matching that goes on (an order
    that cannot fill is cancelled) and a nested batch that caught the error write nothing on their own."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000").id
        ledger.tick("BTC/USDT", "100", time="2020-01-01T00:00:00Z")
        orders = [ledger.place_order(account, "buy", "BTC/USDT", "1", price) for price in ("95", "94", "93")]
        pages = ledger.db.execute("PRAGMA page_count").fetchone()[0]
        ledger.db.execute(f"PRAGMA max_page_count = {pages + 3}")
        said = []
        with pytest.raises(paper.PaperError, match="ended its transaction"):
            with ledger.batch():
                ledger.deposit(account, "1")
                for _ in range(300):
                    ledger.deposit(account, "2", description="x" * 200)
                with ledger.batch():
                    try:
                        ledger.tick("BTC/USDT", "90", time="2020-01-01T00:02:00Z")  # reaches all three orders
                    except paper.PaperError as error:
                        said.append(str(error))
                    with pytest.raises(paper.PaperError, match="ended its transaction"):
                        ledger.deposit(account, "3", ref="d3")
        assert len(said) == 1
        ledger.db.execute(f"PRAGMA max_page_count = {2 ** 30}")
        assert [(o.id, o.status) for o in reversed(ledger.orders(account))] == [(o.id, "OPEN") for o in orders]
        held = ledger.account(account).balances["USDT"]
        assert (held.available, held.reserved) == (Decimal("717.718"), Decimal("282.282"))  # 3 reserves with fees
        assert len(ledger.transactions(account)) == 1 and ledger.verify() == []


def test_readers_and_writes_made_while_they_read(db):
    """A reader (prices oldest first, a history) gives what was recorded when it began, and what was
    written while it was read stays when it is closed early; a write from a stale reading says why."""
    with paper.Ledger(db, create=True) as ledger, paper.Ledger(db) as other:
        account = ledger.create_account(balance="1000").id
        for hour in range(3):
            ledger.tick("BTC/USDT", "100", time=f"2020-01-01T0{hour}:00:00Z")
        seen = 0
        for seen, _ in enumerate(ledger.newest_prices(oldest_first=True), 1):
            ledger.tick("ETH/USDT", "5", time=f"2020-01-02T0{seen}:00:00Z")
        assert seen == 3 and len(ledger.prices()) == 6
        reading = ledger.history(account)
        next(reading)
        assert ledger.deposit(account, "7").id == 2
        reading.close()
        assert [tx.amount for tx in other.transactions(account)] == [Decimal(7), Decimal(1000)]
        with ledger.snapshot():
            ledger.account(account)
            other.deposit(account, "5")
            with pytest.raises(paper.Busy, match="wrote to .* while this connection was reading it"):
                ledger.deposit(account, "1")
        assert ledger.account(account).balances["USDT"].total == Decimal(1012) and ledger.verify() == []


def test_closing_the_ledger_inside_a_batch_is_refused_and_the_batch_goes_on(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="10").id
        with ledger.batch():
            ledger.deposit(account, "1")
            with pytest.raises(paper.PaperError, match="inside a batch: leave the batch first"):
                ledger.close()
            ledger.deposit(account, "2")
        assert ledger.account(account).balances["USDT"].total == Decimal(13)
        reading = ledger.history(account)
        next(reading)
    with paper.Ledger(db) as again:  # closed with a reader open: allowed, and nothing was lost
        assert [tx.amount for tx in again.transactions(account)] == [Decimal(2), Decimal(1), Decimal(10)]


def test_a_protected_fill_after_every_price_is_deleted(db):
    """The protection's risk event has no market time when no price is left: it is still recorded."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="1000").id
        ledger.tick("ETH/USDT", "100", time="2020-01-01T00:00:00Z")
        order = ledger.place_order(account, "buy", "ETH/USDT", "1", "90", sl="80")
        assert ledger.delete_prices("ETH/USDT", "2020-01-01T00:00:00Z") == 1
        assert ledger.fill(order.id, price="90").price == Decimal(90)
        protection = ledger.orders(account, open_only=True)[0]
        assert (protection.type, protection.stop_price, protection.qty) == ("stop", Decimal(80), Decimal(1))
        assert ledger.verify() == []


def test_a_cancelled_trailing_stop_comes_back_as_stored(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="10000").id
        ledger.tick("BTC/USDT", "100", time="2020-01-01T00:00:00Z")
        ledger.trade(account, "buy", "BTC/USDT", "1")
        order = ledger.place_order(account, "sell", "BTC/USDT", "1", type="trailing-stop", trail="0.05")
        ledger.tick("BTC/USDT", "103", time="2020-01-01T00:01:00Z")  # the mark 103, the stop 103 x 0.95
        cancelled = ledger.cancel(order.id)
        assert (str(cancelled.mark), str(cancelled.stop_price), cancelled.status) == ("103.00", "97.85", "CANCELLED")
        with ledger.batch(), pytest.raises(paper.PaperError, match="backup copies what is committed"):
            ledger.backup(db + ".copy")


def test_a_batch_sees_a_currency_and_a_closing_it_made_itself(db):
    """A batch keeps an account's row and its balances once read: what it changes itself must show."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="10000").id
        with ledger.batch():
            ledger.tick("BTC/USDT", "100", time="2026-01-01")
            # risk sizes by the equity: 10000 x 0.01 / (90 - 80) = 10
            first = ledger.place_order(account, "buy", "BTC/USDT", None, "90", fee_rate="0", sl="80", risk="0.01")
            ledger.deposit(account, "1", currency="ETH")  # a new currency, with no price yet
            with pytest.raises(paper.PaperError, match="no value in USDT: ETH has no price"):
                ledger.place_order(account, "buy", "BTC/USDT", None, "90", fee_rate="0", sl="80", risk="0.01")
            ledger.tick("ETH/USDT", "1000", time="2026-01-01T01:00")
            # (9100 available + 900 reserved + 1 ETH x 1000) x 0.01 / 10 = 11
            second = ledger.place_order(account, "buy", "BTC/USDT", None, "90", fee_rate="0", sl="80", risk="0.01")
            ledger.close_account(account)
            with pytest.raises(paper.PaperError, match=f"account {account} is closed"):
                ledger.deposit(account, "5")
        assert (first.qty, second.qty) == (Decimal(10), Decimal(11))
        assert ledger.account(account).is_active == 0 and ledger.verify() == []

# --- Results: equity, stats, round trips, the chart and the report (each worked out by hand) ---

def hand_worked_account(run):
    """1000 USDT; BTC/USDT at 00:00 UTC on five days: 100, 120, 90, 110, 130. On day 1 it buys 5 BTC at
    100, after day 3's price it deposits 100 USDT, on day 4 it sells the 5 BTC at 110; no fees.
    Equity (USDT + 5 BTC x price): 500 + 500 = 1000, 500 + 600 = 1100, 600 + 450 = 1050 (the deposit of
    100 is in it, not a gain), 600 + 550 = 1150, then 1150 in cash."""
    acct = ok(run("init", "--balance", "1000", "--name", "Hand <worked> & checked")).strip()
    for day, close in enumerate(["100", "120", "90", "110", "130"], 1):
        ok(run("tick", "--symbol", "BTC/USDT", "--price", close, "--time", f"2026-01-0{day}"))
        if day == 1:
            ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "5", "--fee-rate", "0"))
        if day == 3:
            ok(run("deposit", "--account-id", acct, "--amount", "100"))
        if day == 4:
            ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "5",
                   "--fee-rate", "0"))
    return acct


def test_equity_curve_by_hand(run):
    acct = hand_worked_account(run)
    points = json.loads(ok(run("equity", "--account-id", acct, "--json")))
    assert [(p["time"][:10], p["equity"]) for p in points] == [
        ("2026-01-01", "1000.00"), ("2026-01-02", "1100.00"), ("2026-01-03", "1050.00"), ("2026-01-04", "1150.00"),
        ("2026-01-05", "1150.00")]
    # growth of 1: 1, 1.1, 1.1 x (1050 - 100) / 1100 = 0.95, 0.95 x 1150 / 1050, the same; peak 1.1
    assert [p["drawdown"] for p in points] == pytest.approx([0, 0, 0.95 / 1.1 - 1, 0.95 * 1150 / 1050 / 1.1 - 1,
                                                             0.95 * 1150 / 1050 / 1.1 - 1])
    assert ok(run("equity", "--account-id", acct, "--csv")).splitlines()[:4] == [
        "time,equity,drawdown", "2026-01-01T00:00:00.000000Z,1000.00,0.000000",
        "2026-01-02T00:00:00.000000Z,1100.00,0.000000", "2026-01-03T00:00:00.000000Z,1050.00,-0.136364"]


def test_stats_by_hand(run):
    acct = hand_worked_account(run)
    stats = json.loads(ok(run("stats", "--account-id", acct, "--json")))
    returns = [1100 / 1000 - 1, (1050 - 100) / 1100 - 1, 1150 / 1050 - 1, 1150 / 1150 - 1]  # one a day after the first
    mean = sum(returns) / 4
    deviation = (sum((r - mean) ** 2 for r in returns) / 3) ** 0.5
    cagr = ((1 + returns[0]) * (1 + returns[1]) * (1 + returns[2]) * (1 + returns[3])) ** (365 / 4) - 1
    assert {key: stats[key] for key in ("start", "end", "duration", "equity_start", "equity_final", "equity_peak",
                                        "trades", "closed_trades", "best_trade", "worst_trade", "avg_trade", "fees",
                                        "max_drawdown_duration", "win_rate", "profit_factor")} == {
        "start": "2026-01-01T00:00:00.000000Z", "end": "2026-01-05T00:00:00.000000Z", "duration": 4 * 86400,
        "equity_start": "1000.00", "equity_final": "1150.00", "equity_peak": "1150.00", "trades": 2, "closed_trades": 1,
        "best_trade": "50.00", "worst_trade": "50.00", "avg_trade": "50.00", "fees": {"USDT": "0.00"},
        "max_drawdown_duration": 3 * 86400,  # from day 2's peak to the end: it never got back to 1.1
        "win_rate": 1.0, "profit_factor": None}  # the sale: 5 x 110 - 5 x 100 = 50; no losing trade
    assert stats["return"] == pytest.approx(0.95 * 1150 / 1050 - 1)  # time-weighted: the deposit is no gain
    assert stats["buy_and_hold_return"] == pytest.approx(130 / 100 - 1)
    assert stats["max_drawdown"] == pytest.approx(0.95 / 1.1 - 1)
    assert stats["exposure"] == pytest.approx(3 / 5)  # BTC held after day 1's, 2's and 3's prices
    assert stats["volatility"] == pytest.approx(deviation * 365 ** 0.5)
    assert stats["sharpe"] == pytest.approx(mean / deviation * 365 ** 0.5)
    assert stats["sortino"] == pytest.approx(mean * 365 / ((returns[1] ** 2 / 4) ** 0.5 * 365 ** 0.5))
    assert stats["cagr"] == pytest.approx(cagr)
    assert stats["calmar"] == pytest.approx(cagr / (1 - 0.95 / 1.1))
    text = ok(run("stats", "--account-id", acct))
    assert "Return [%]                  4.05\n" in text and "Max. drawdown duration      3 days 00:00:00\n" in text
    assert "Profit factor               n/a\n" in text


def test_ratios_that_cannot_be_computed_are_null(run, acct):
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "100", "--time", "2026-01-01"))
    stats = json.loads(ok(run("stats", "--account-id", acct, "--json")))  # one point, one day
    assert stats["equity_start"] == stats["equity_final"] == "5000.00"
    assert [stats[key] for key in ("cagr", "volatility", "sharpe", "sortino", "calmar", "win_rate", "best_trade")] == \
        [None] * 7
    assert (stats["return"], stats["max_drawdown"], stats["trades"], stats["exposure"]) == (0, 0, 0, 0)
    empty = ok(run("init")).strip()  # opened after the only price: no point at all
    assert json.loads(ok(run("equity", "--account-id", empty, "--json"))) == []
    assert json.loads(ok(run("stats", "--account-id", empty, "--json")))["start"] is None


def test_the_chart_is_svg_with_one_point_per_equity_point(run, tmp_path, monkeypatch):
    acct = hand_worked_account(run)
    monkeypatch.chdir(tmp_path)
    assert ok(run("chart", "--account-id", acct)).startswith(f"wrote equity-{acct[:8]}.svg (")
    svg = (tmp_path / f"equity-{acct[:8]}.svg").read_text()
    root = svg_root(svg)
    assert (root.get("width"), root.get("height"), root.get("viewBox")[:8]) == ("100%", None, "0 0 720 ")
    equity, drawdown, btc = panel(root, "equity"), panel(root, "drawdown"), panel(root, "price")
    assert label_of(equity) == "equity (USDT)" and label_of(btc) == "BTC/USDT close (USDT)"
    xs = [x for x, _ in points_of(equity.find(f"{SVG}polyline[@class='equity']"))]
    assert len(xs) == 5 and xs == sorted(xs)  # one point per equity point, left to right in time
    # equity: 1000, 1100, 1050 (the deposit of 100 is in it), 1150, 1150; buy and hold of 1000 in BTC at 100:
    # 1000, 1200, 900, 1100, 1300; the axis from 900 to 1300 in steps of 100
    assert ticks_of(equity) == ["900", "1,000", "1,100", "1,200", "1,300"]
    assert values_on(equity, "equity") == pytest.approx([1000, 1100, 1050, 1150, 1150], abs=1)
    assert values_on(equity, "hold") == pytest.approx([1000, 1200, 900, 1100, 1300], abs=1)
    assert ticks_of(drawdown) == ["-15%", "-10%", "-5%", "0%"]  # the deepest: 0.95 / 1.1 - 1 = -13.64%
    assert drawdown.findall(f"{SVG}polygon[@class='drawdown']")
    [deposit] = equity.findall(f"{SVG}path[@class='deposit']")
    assert not equity.findall(f"{SVG}path[@class='withdrawal']")
    # the round trip: bought at 100 on day 1, sold at 110 on day 4, P&L +50: green, from entry to exit
    [trip] = btc.findall(f"{SVG}path[@class='trips gain']")
    (x1, y1), (x2, y2) = re.findall(r"([0-9.]+),([0-9.]+)", trip.get("d"))
    assert value_at(btc, float(y1)) == pytest.approx(100, abs=0.2) and value_at(btc, float(y2)) == pytest.approx(110, abs=0.2)
    assert (float(x1), float(x2)) == pytest.approx((xs[0], xs[3]), abs=0.1)
    assert legend_of(root) == ["equity", "buy & hold BTC/USDT", "drawdown", "close", "round trip, gain", "deposit"]
    assert time_axis_of(root) == (["2026", "Jan 2", "Jan 3", "Jan 4", "Jan 5"], None)
    assert root.find(f"{SVG}title").text == "Hand <worked> & checked: return +4.05%, max drawdown -13.64% (USDT)"
    assert "<script" not in svg and "href" not in svg.replace('url(#trip-', '')
    assert ok(run("chart", "--account-id", acct, "--output", "-")) == svg  # the same data, the same bytes


def test_a_curve_back_at_its_peak_after_a_deposit_has_no_drawdown(run):
    acct = ok(run("init", "--balance", "86132")).strip()
    price(run, "BTC/USDT", "353", time="2025-01-01T00:00Z")
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "244", "--fee-rate", "0"))
    price(run, "BTC/USDT", "288", time="2025-01-01T01:00Z")
    price(run, "BTC/USDT", "288", time="2025-01-01T02:00Z")
    ok(run("deposit", "--account-id", acct, "--amount", "38592"))
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "134", "--fee-rate", "0"))
    price(run, "BTC/USDT", "353", time="2025-01-01T03:00Z")  # back where it started: growth back at its peak
    price(run, "BTC/USDT", "353", time="2025-01-05T00:00Z")
    assert [p["drawdown"] for p in json.loads(ok(run("equity", "--account-id", acct, "--json")))][-2:] == [0, 0]
    stats = json.loads(ok(run("stats", "--account-id", acct, "--json")))
    assert (stats["return"], stats["max_drawdown_duration"]) == (0, 3 * 3600)


def test_a_deposit_inside_a_day_does_not_make_that_day_a_loss(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="10000").id
        ledger.tick("BTC/USDT", "100", time="2026-01-01T00:00:00Z")
        ledger.deposit(account, "100000", description="at the start of day 2")
        ledger.tick("BTC/USDT", "100", time="2026-01-02T00:00:00Z")
        ledger.trade(account, "buy", "BTC/USDT", "1000", fee_rate="0")  # 100000 of BTC at 100
        ledger.tick("BTC/USDT", "50", time="2026-01-02T12:00:00Z")  # 10000 + 50000 = 60000
        ledger.tick("BTC/USDT", "50", time="2026-01-03T00:00:00Z")
        ledger.tick("BTC/USDT", "55", time="2026-01-04T00:00:00Z")  # 10000 + 55000
        stats = ledger.stats(account)
    # growth: 1 through day 1; at day 1's point the deposit comes in (no gain); day 2 ends at 60000 / 110000
    assert stats["return"] == pytest.approx(65000 / 110000 - 1)
    daily = [60000 / 110000 - 1, 0, 65000 / 60000 - 1]
    mean = sum(daily) / 3
    assert stats["volatility"] == pytest.approx((sum((r - mean) ** 2 for r in daily) / 2) ** 0.5 * 365 ** 0.5)


def test_an_account_opened_after_prices_counts_its_own_first_trades(run):
    ok(run("init", "--balance", "0", "--name", "other"))
    price(run, "BTC/USDT", "100", time="2025-01-01")
    acct = ok(run("init", "--balance", "1000")).strip()  # opened after that price
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "5"))  # at 100, fee 0.50
    ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "5", "--price", "120"))
    price(run, "BTC/USDT", "100", time="2025-01-02")
    stats = json.loads(ok(run("stats", "--account-id", acct, "--json")))
    # 1000 - 500.50 + 600 - 0.60 = 1098.90, all of it made after the 1000 came in
    assert (stats["trades"], stats["closed_trades"], stats["fees"]) == (2, 1, {"USDT": "1.10"})
    assert (stats["equity_start"], stats["equity_final"]) == ("1000.00", "1098.90")
    assert stats["return"] == pytest.approx(0.0989)


def test_the_curve_follows_market_time_when_files_were_fed_one_after_the_other(run, tmp_path):
    """BTC's file, then ETH's: each price counts at its own market time, and the user is told once that
    the fills happened in the order recorded."""
    acct = ok(run("init", "--balance", "0")).strip()
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    ok(run("deposit", "--account-id", acct, "--amount", "10", "--currency", "ETH"))
    for symbol, closes in (("BTC/USDT", (100, 110, 120)), ("ETH/USDT", (10, 5, 20))):
        path = tmp_path / f"{symbol[:3]}.csv"
        path.write_text("time,close\n" + "".join(f"2025-01-0{day},{close}\n" for day, close in enumerate(closes, 1)))
        ok(run("feed", str(path), "--symbol", symbol))
    code, out, err = run("equity", "--account-id", acct, "--quote", "USDT", "--json")
    # by hand: 1 BTC + 10 ETH at each market time, once both have a price
    assert [(p["time"][:10], p["equity"]) for p in json.loads(out)] == [
        ("2025-01-01", "200.00"), ("2025-01-02", "210.00"), ("2025-01-02", "160.00"), ("2025-01-03", "170.00"),
        ("2025-01-03", "320.00")]
    assert code == 0 and err.count("paper: note: prices were recorded out of market-time order") == 1, err
    stats = json.loads(run("stats", "--account-id", acct, "--quote", "USDT", "--json")[1])
    assert stats["max_drawdown"] == pytest.approx(160 / 210 - 1) and stats["duration"] == 2 * 86400


def test_a_chart_that_cannot_be_written_names_its_file_and_keeps_the_old_one(run, db, tmp_path):
    import resource
    acct = hand_worked_account(run)
    assert refused(run("chart", "--account-id", acct, "--output", "/dev/full")) == \
        "paper: error: could not write the chart to /dev/full: No space left on device\n"
    assert "could not write the chart to" in refused(run("chart", "--account-id", acct, "--output", str(tmp_path)))
    folder = tmp_path / "charts"
    folder.mkdir()
    old = folder / "old.svg"
    old.write_text("the chart from before")
    folder.chmod(0o555)  # the chart cannot be written beside it: the old one stays whole
    try:
        result = subprocess.run([*PAPER_RUN, "chart", "--account-id", acct, "--output", str(old), "--db", db],
                                capture_output=True, text=True, preexec_fn=without_root_powers)
    finally:
        folder.chmod(0o755)
    assert (result.returncode, result.stderr) == (1, f"paper: error: could not write the chart to {old}: Permission"
                                                     " denied\n")
    assert old.read_text() == "the chart from before" and os.listdir(folder) == ["old.svg"]


def test_a_long_or_odd_name_leaves_the_chart_title_whole(db):
    with paper.Ledger(db, create=True) as ledger:
        wide = ledger.create_account(name="W" * 200).id
        narrow = ledger.create_account(name="i" * 200).id
        japanese = ledger.create_account(name="日本語の口座名" * 20).id
        ledger.tick("BTC/USDT", "1", time="2025-01-01")
        charts = {account: svg_root(ledger.chart(account)) for account in (wide, narrow, japanese)}
    titles = {account: "".join(chart.find(f"{SVG}text[@class='title']").itertext()) for account, chart in charts.items()}
    figures = "…: return +0.00%, max drawdown 0.00% (USDT)"
    assert all(title.endswith(figures) for title in titles.values())
    whole = {account: chart.find(f"{SVG}title").text for account, chart in charts.items()}  # the tooltip: all of it
    assert whole == {wide: "W" * 200 + figures[1:], narrow: "i" * 200 + figures[1:],
                     japanese: "日本語の口座名" * 20 + figures[1:]}
    # cut by width, not by count: shrunk to 12 px (the least), 696 units hold at most 52 W (1.1 em in DejaVu Sans
    # Bold, the widest common sans), and the figures take 306 of them; as many ideographs (1 em) at most; i is a
    # third as wide as W
    kept = {account: len(title) - len(figures) for account, title in titles.items()}
    assert 20 < kept[wide] < 30 and 20 < kept[japanese] < 35 and kept[narrow] > 2.5 * kept[wide]
    assert all(chart.find(f"{SVG}text[@class='title']").get("font-size") == "12" for chart in charts.values())
    with connection(db) as conn:  # a name no command takes, written with SQL
        conn.execute("UPDATE accounts SET name = 'a\ufffeb'")
    with paper.Ledger(db) as ledger:
        assert svg_root(ledger.chart(wide)).find(f"{SVG}title").text.startswith("a b: return")


SVG = "{http://www.w3.org/2000/svg}"


def svg_root(text):
    import xml.etree.ElementTree as ElementTree
    return ElementTree.fromstring(text)


def panel(root, kind, number=0):
    return root.findall(f".//{SVG}g[@class='panel {kind}']")[number]


def label_of(group):
    return group.find(f"{SVG}text[@class='panel-label']").text


def ticks_of(group):
    """A panel's tick labels, bottom to top."""
    return [text.text for text in group.find(f"{SVG}g[@class='ticks']")]


def value_at(group, y):
    """The value at height y on a panel's linear axis, from its first and last tick labels and where they are."""
    labels = list(group.find(f"{SVG}g[@class='ticks']"))
    (low, low_y), (high, high_y) = [(float(t.text.rstrip("%").replace(",", "")), float(t.get("y")) - 4)
                                    for t in (labels[0], labels[-1])]
    return low + (y - low_y) * (high - low) / (high_y - low_y)


def points_of(polyline):
    return [tuple(map(float, pair.split(","))) for pair in polyline.get("points").split()]


def values_on(group, kind):
    return [value_at(group, y) for _, y in points_of(group.find(f"{SVG}polyline[@class='{kind}']"))]


def legend_of(root):
    return [text.text for text in root.find(f"{SVG}g[@class='legend']").iter(f"{SVG}text")]


def time_axis_of(root):
    """(the time labels, the context shown once under them, if any)."""
    context = root.find(f"{SVG}text[@class='context']")
    return ([text.text for text in root.find(f"{SVG}g[@class='time-axis']")],
            None if context is None else context.text)


def round_trip_account(run):
    """10000 USDT, a fee of 0.1%. BTC/USDT: buy 10 at 100 on day 1 (fee 1.00: the book holds 10 at a cost of
    1001), sell 4 at 110 on day 2 (440 - 0.44 - 1001 x 4/10 = 39.16), buy 2 at 90 on day 3 (8 held at 600.60 +
    180.18 = 780.78), sell 8 at 120 on day 4 (960 - 0.96 - 780.78 = 178.26): flat, one round trip of 4 fills.
    Day 5: 3 ETH deposited and sold at 50 (no buy: no round trip; the sale realises its fee, -0.15); 2 SOL bought
    at 10 and withdrawn (flat by a withdrawal: a round trip with no exit price, nothing realised); 10 XRP bought
    at 1; 1 BTC bought at 100 (fee 0.10), valued at day 6's close of 105."""
    acct = ok(run("init", "--balance", "10000", "--name", "Round trips")).strip()
    for day, close, side, qty in ((1, "100", "buy", "10"), (2, "110", "sell", "4"), (3, "90", "buy", "2"),
                                  (4, "120", "sell", "8")):
        price(run, "BTC/USDT", close, time=f"2026-01-0{day}")
        ok(run("trade", "--account-id", acct, "--side", side, "--symbol", "BTC/USDT", "--qty", qty))
    price(run, "ETH/USDT", "50", time="2026-01-05")
    ok(run("deposit", "--account-id", acct, "--amount", "3", "--currency", "ETH"))
    ok(run("trade", "--account-id", acct, "--side", "sell", "--symbol", "ETH/USDT", "--qty", "3"))
    price(run, "SOL/USDT", "10", time="2026-01-05")
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "SOL/USDT", "--qty", "2"))
    ok(run("withdraw", "--account-id", acct, "--amount", "2", "--currency", "SOL"))
    price(run, "XRP/USDT", "1", time="2026-01-05")
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "XRP/USDT", "--qty", "10"))
    price(run, "BTC/USDT", "100", time="2026-01-05")
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1"))
    price(run, "BTC/USDT", "105", time="2026-01-06")
    return acct


def test_round_trips_by_hand(run):
    acct = round_trip_account(run)
    trips = json.loads(ok(run("trades", "--account-id", acct, "--json")))
    day = "2026-01-0{}T00:00:00.000000Z".format
    assert trips == [
        {"symbol": "BTC/USDT", "status": "CLOSED", "entry_time": day(1), "exit_time": day(4), "qty": "10.00",
         "entry_price": "98.333333333333333333", "exit_price": "116.666666666666666667",  # (1000 + 180) / 12, 1400 / 12
         "pnl": "217.42", "return": pytest.approx(217.42 / 1180), "duration": 3 * 86400, "fills": 4},
        {"symbol": "SOL/USDT", "status": "CLOSED", "entry_time": day(5), "exit_time": day(5), "qty": "2.00",
         "entry_price": "10.00", "exit_price": None, "pnl": "0.00", "return": 0, "duration": 0, "fills": 1},
        {"symbol": "BTC/USDT", "status": "OPEN", "entry_time": day(5), "exit_time": day(6), "qty": "1.00",
         "entry_price": "100.00", "exit_price": "105.00", "pnl": "4.90", "return": pytest.approx(0.049),
         "duration": 86400, "fills": 1},  # 105 - (100 + 0.10)
        {"symbol": "XRP/USDT", "status": "OPEN", "entry_time": day(5), "exit_time": day(5), "qty": "10.00",
         "entry_price": "1.00", "exit_price": "1.00", "pnl": "-0.01", "return": pytest.approx(-0.001),
         "duration": 0, "fills": 1}]
    stats = json.loads(ok(run("stats", "--account-id", acct, "--json")))
    assert (stats["closed_trades"], stats["best_trade"], stats["worst_trade"]) == (3, "178.26", "-0.15")  # ETH's fee
    assert [trip["symbol"] for trip in json.loads(ok(run("trades", "--account-id", acct, "--symbol", "btc/usdt",
                                                         "--json")))] == ["BTC/USDT", "BTC/USDT"]
    text = ok(run("trades", "--account-id", acct)).splitlines()
    assert text[0].split() == ["symbol", "entry", "time", "exit", "time", "qty", "entry", "price", "exit", "price",
                               "pnl", "return", "%", "duration", "fills"]
    assert text[1].split() == ["BTC/USDT", day(1), day(4), "10.00", "98.333333333333333333", "116.666666666666666667",
                               "217.42", "18.43", "3", "days", "00:00:00", "4"]
    assert text[2].split()[5:7] == ["n/a", "0.00"]  # the withdrawn SOL has no exit price
    assert text[3].split()[:3] == ["BTC/USDT", day(5), "open"]
    assert ok(run("trades", "--account-id", acct, "--csv")).splitlines()[:2] == [
        "symbol,status,entry_time,exit_time,qty,entry_price,exit_price,pnl,return,duration,fills",
        f"BTC/USDT,CLOSED,{day(1)},{day(4)},10.00,98.333333333333333333,116.666666666666666667,217.42,0.184254,"
        "259200.0,4"]
    empty = ok(run("init")).strip()
    assert ok(run("trades", "--account-id", empty)).startswith("No round trips yet")
    assert json.loads(ok(run("trades", "--account-id", empty, "--json"))) == []


def test_the_chart_draws_three_traded_symbols_with_their_round_trips(run, db):
    acct = round_trip_account(run)
    root = svg_root(ok(run("chart", "--account-id", acct, "--output", "-")))
    # BTC/USDT has 5 fills, ETH, SOL and XRP one each: the first three by count, then by name
    assert [label_of(panel(root, "price", n)) for n in range(3)] == [
        "BTC/USDT close (USDT)", "ETH/USDT close (USDT)", "SOL/USDT close (USDT)"]
    assert root.find(f"{SVG}text[@class='hidden']").text == "also traded, not drawn: XRP/USDT"
    btc = panel(root, "price")
    assert len(re.findall("M", btc.find(f"{SVG}path[@class='trips gain']").get("d"))) == 1
    assert len(re.findall("M", btc.find(f"{SVG}path[@class='trips gain open']").get("d"))) == 1  # +4.90, dashed
    assert btc.find(f"{SVG}path[@class='trips gain open']").get("stroke-dasharray")
    assert legend_of(root) == ["equity", "buy & hold BTC/USDT", "drawdown", "close", "round trip, gain",
                               "open round trip", "deposit", "withdrawal"]  # the ETH in, the SOL out


def test_the_time_axis_has_4_to_8_ticks_on_any_span():
    for first, last, labels, context in [
            ("2025-03-04T10:20:00.5Z", "2025-03-04T10:20:40.5Z", [f"10:20:{s:02d}" for s in range(5, 41, 5)],
             "2025-03-04"),
            ("2025-01-01", "2025-01-02", ["2025", "04:00", "08:00", "12:00", "16:00", "20:00", "Jan 2"], "2025-01-01"),
            ("2025-01-01", "2026-01-01", ["2025", "Mar", "May", "Jul", "Sep", "Nov", "2026"], None),
            ("1995-01-01", "2025-01-01", [str(year) for year in range(1996, 2025, 4)], None)]:
        ticks, shown = paper.time_ticks(paper.seconds(paper.to_time(first)), paper.seconds(paper.to_time(last)))
        assert ([label for _, label, _ in ticks], shown) == (labels, context)
    spans = [0.5 * 1.1 ** n for n in range(230)]  # half a second to 160 years, from starts of every kind
    counts = {len(paper.time_ticks(start, start + span)[0]) for span in spans for start in (1735689600, 1741083600.25)}
    assert min(counts) >= 4 and max(counts) <= 8


@pytest.mark.parametrize("first, last, shown", [
    ("2025-03-04T10:20:00.5Z", "2025-03-04T10:20:40.5Z", (8, "2025-03-04 (UTC)")),  # 40 seconds
    ("2025-01-01", "2025-01-02", (7, "2025-01-01 (UTC)")), ("2025-01-01", "2026-01-01", (7, None)),  # a day, a year
    ("1995-01-01", "2025-01-01", (8, None))])  # 30 years
def test_the_chart_shows_the_time_axis_of_its_span(db, first, last, shown):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="0").id
        ledger.deposit(account, "1", "BTC")
        for time, close in ((first, "100"), (last, "150")):
            ledger.tick("BTC/USDT", close, time=time)
        root = svg_root(ledger.chart(account))
    labels, context = time_axis_of(root)
    assert (len(labels), context) == shown
    assert len(ticks_of(panel(root, "drawdown"))) >= 3


def test_percent_and_log_scales(run, db):
    acct = hand_worked_account(run)
    root = svg_root(ok(run("chart", "--account-id", acct, "--percent", "--output", "-")))
    equity = panel(root, "equity")
    # growth: 1, 1.1, 0.95, 0.95 x 1150 / 1050 (twice); buy and hold 0%, +20%, -10%, +10%, +30%
    assert (label_of(equity), legend_of(root)[0]) == ("return", "return")
    assert ticks_of(equity) == ["-10%", "0%", "+10%", "+20%", "+30%"]
    assert values_on(equity, "equity") == pytest.approx([0, 10, -5, 4.05, 4.05], abs=0.2)
    assert values_on(equity, "hold") == pytest.approx([0, 20, -10, 10, 30], abs=0.2)
    lost = ok(run("init", "--balance", "0", "--name", "Lost 90%")).strip()
    ok(run("deposit", "--account-id", lost, "--amount", "10", "--currency", "ETH"))
    for day, close in enumerate(("1000", "400", "100"), 1):
        price(run, "ETH/USDT", close, time=f"2026-02-0{day}")
    root = svg_root(ok(run("chart", "--account-id", lost, "--log", "--output", "-")))
    assert root.find(f"{SVG}title").text == "Lost 90%: return -90.00%, max drawdown -90.00% (USDT)"
    equity = panel(root, "equity")
    assert label_of(equity) == "equity (USDT, log scale)" and ticks_of(equity) == ["1,000", "2,000", "5,000", "10,000"]
    ys = [float(text.get("y")) for text in equity.find(f"{SVG}g[@class='ticks']")]
    assert (ys[0] - ys[1]) / (ys[0] - ys[3]) == pytest.approx(0.30103, abs=0.005)  # log10(2) of a decade


def test_the_empty_chart_says_why_and_what_to_do(run):
    ok(run("init", "--name", "first"))
    price(run, "BTC/USDT", "100", time="2026-01-01")
    acct = ok(run("init", "--name", "Late")).strip()  # opened after the only price
    root = svg_root(ok(run("chart", "--account-id", acct, "--output", "-")))
    assert root.find(f"{SVG}title").text == "Late: return n/a, max drawdown n/a (USDT)"
    said = " ".join(text.text for text in root.find(f"{SVG}g[@class='empty']"))
    assert said.startswith("No equity points yet: no price has been recorded since the account opened: record")
    assert "tick" in said and "0.00%" not in ET_text(root)


def ET_text(root):
    return " ".join(root.itertext())


def test_a_chart_of_many_points_keeps_two_a_column(db):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="0").id
        ledger.deposit(account, "1", "BTC")
        with ledger.batch():  # 50,000 minutes of a saw: 1000, 1001, ..., 1999, 1000, ...
            for minute in range(50_000):
                ledger.tick("BTC/USDT", str(1000 + minute % 1000), time=str(1735689600 + 60 * minute))
        ledger.trade(account, "sell", "BTC/USDT", "0.5")
        svg = ledger.chart(account)
        assert ledger.chart(account) == svg
    root = svg_root(svg)
    assert len(svg) < 200_000
    for group, kind in ((panel(root, "equity"), "equity"), (panel(root, "price"), "close")):
        xs = [int(x) for x, _ in points_of(group.find(f"{SVG}polyline[@class='{kind}']"))]
        assert max(xs.count(x) for x in set(xs)) <= 3  # two a column (a column's edge can fall on a whole number)
        assert 560 <= len(xs) <= 2 * 700
    values = values_on(panel(root, "price"), "close")
    assert (min(values), max(values)) == pytest.approx((1000, 1999), abs=3)  # the extremes are kept


def html_parts(page):
    """A page as the tests read it: {"h2": [titles], "tables": [[row cells]], "stats": {label: value},
    "cells": [(text, style)], "tags": {tag: count}}."""
    from html.parser import HTMLParser

    class Parts(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found = {"h2": [], "tables": [], "stats": {}, "cells": [], "tags": {}}
            self.text, self.style, self.dt = None, None, None

        def handle_starttag(self, tag, attrs):
            self.found["tags"][tag] = self.found["tags"].get(tag, 0) + 1
            if tag == "table":
                self.found["tables"].append([])
            elif tag == "tr":
                self.found["tables"][-1].append([])
            if tag in ("h2", "td", "th", "dt", "dd"):
                self.text, self.style = "", dict(attrs).get("style")

        def handle_data(self, data):
            if self.text is not None:
                self.text += data

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.found["tables"][-1][-1].append(self.text)
                self.found["cells"].append((self.text, self.style))
            elif tag == "h2":
                self.found["h2"].append(self.text)
            elif tag == "dt":
                self.dt = self.text
            elif tag == "dd":
                self.found["stats"][self.dt] = self.text
            if tag in ("h2", "td", "th", "dt", "dd"):
                self.text = None

    parts = Parts()
    parts.feed(page)
    return parts.found


def monthly_account(db):
    """10 BTC in a USDT account, so the growth is the close / 100: closes 100 (Jan 5), 120 (Jan 20), 90 (Feb 10), 99
    (Feb 25), 110 (Apr 15), 130 (Apr 28), 104 (May 10) of 2025."""
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="0", name="Months").id
        ledger.deposit(account, "10", "BTC")
        for date, close in (("01-05", "100"), ("01-20", "120"), ("02-10", "90"), ("02-25", "99"), ("04-15", "110"),
                            ("04-28", "130"), ("05-10", "104")):
            ledger.tick("BTC/USDT", close, time=f"2025-{date}")
    return account


def test_the_report_by_hand(run, db, tmp_path, monkeypatch):
    account = monthly_account(db)
    monkeypatch.chdir(tmp_path)
    assert ok(run("report", "--account-id", account)) == \
        f"wrote report-{account[:8]}.html ({(tmp_path / f'report-{account[:8]}.html').stat().st_size:,} bytes)\n"
    page = (tmp_path / f"report-{account[:8]}.html").read_text()
    parts = html_parts(page)
    assert parts["h2"] == ["Statistics", "Chart", "Round trips", "Monthly returns (%)", "Worst drawdowns"]
    assert parts["tags"].get("svg") == 1 and "script" not in parts["tags"] and "link" not in parts["tags"]
    assert not re.search(r"(src|href)=", page) and set(re.findall(r"url\((.)", page)) <= {"#"}  # nothing outside
    months, drawdowns = parts["tables"]
    # Jan 1.2 / 1 - 1; Feb 0.99 / 1.2 - 1; Mar without a point; Apr 1.3 / 0.99 - 1; May 1.04 / 1.3 - 1; the year 1.04
    assert months[1] == ["2025", "+20.00", "-17.50", "+0.00", "+31.31", "-20.00", "", "", "", "", "", "", "", "+4.00"]
    styles = {text: style for text, style in parts["cells"] if style}
    assert "26,127,55" in styles["+20.00"] and "207,34,46" in styles["-17.50"]  # green up, red down
    strength = {text: float(re.search(r",([0-9.]+)\)", style)[1]) for text, style in styles.items()}
    assert strength["+31.31"] > strength["+20.00"] > strength["-17.50"]  # the larger, the stronger
    # from the peak of Jan 20 (1.2) to 0.9 on Feb 10, back at 1.3 on Apr 28 (98 days); then down to 1.04 by May 10
    assert drawdowns[1:] == [
        ["1", "2025-01-20 00:00:00", "2025-02-10 00:00:00", "2025-04-28 00:00:00", "-25.00", "98 days 00:00:00"],
        ["2", "2025-04-28 00:00:00", "2025-05-10 00:00:00", "not recovered", "-20.00", "12 days 00:00:00"]]
    stats = ok(run("stats", "--account-id", account)).splitlines()
    assert parts["stats"]["Max. drawdown [%]"] == "-25.00" and parts["stats"]["Return [%]"] == "4.00"
    assert [parts["stats"][line[:28].strip()] for line in stats[2:]] == [line[28:] for line in stats[2:]]
    assert parts["stats"]["Start"] == "2025-01-05 00:00:00"
    assert ok(run("report", "--account-id", account, "--output", "-")) == page  # the same data, the same bytes
    assert refused(run("report", "--account-id", account, "--output", "/dev/full")) == \
        "paper: error: could not write the report to /dev/full: No space left on device\n"
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".new")]  # nothing left aside


def test_a_report_of_round_trips_with_sections_of_its_own(run, db, tmp_path):
    acct = round_trip_account(run)
    with paper.Ledger(db) as ledger:
        size = paper.write_report(ledger, acct, str(tmp_path / "r.html"), sections=[
            ("Risk events", [{"time": "2026-01-04T00:00:00.000000Z", "rule": "max drawdown", "limit": Decimal("0.2")}])])
    page = (tmp_path / "r.html").read_text()
    assert size == len(page.encode())
    parts = html_parts(page)
    assert parts["h2"][-1] == "Risk events" and parts["tables"][-1] == [
        ["time", "rule", "limit"], ["2026-01-04T00:00:00.000000Z", "max drawdown", "0.20"]]
    trips = parts["tables"][0]
    assert trips[0] == ["#", "symbol", "entry", "exit", "qty", "entry price", "exit price", "P&L", "return %",
                        "duration", "fills"]
    assert trips[1] == ["1", "BTC/USDT", "2026-01-01 00:00:00", "2026-01-04 00:00:00", "10.00", "98.333333333333333333",
                        "116.666666666666666667", "217.42", "+18.43", "3 days 00:00:00", "4"]
    assert trips[3][3] == "2026-01-06 00:00:00 (open)" and trips[3][7] == "4.90"
    empty = ok(run("init")).strip()
    parts = html_parts(ok(run("report", "--account-id", empty, "--output", "-")))
    assert parts["stats"]["Max. drawdown [%]"] == "n/a" and len(parts["tables"]) == 0


def test_the_report_shows_the_risk_rules_and_what_they_did(run):
    acct = hand_worked_account(run)
    ok(run("risk", "--account-id", acct, "--max-position", "25%", "--cooldown", "3"))
    parts = html_parts(ok(run("report", "--account-id", acct, "--output", "-")))
    assert parts["h2"][-2:] == ["Risk rules", "Risk events"]
    rules, events = parts["tables"][-2:]
    assert rules == [["rules", "state"], ["max position 25%, cooldown 3 prices", "trading"]]
    assert events[0] == ["time", "rule", "action", "symbol", "detail"] and [row[2] for row in events[1:]] == ["set"]


# --- Strategies and run ---

def readme_section(title):
    text = (HERE / "README.md").read_text()
    return text[text.index(f"## {title}\n"):].split("\n## ")[0]


def test_the_readme_shows_the_example_strategy_as_it_is():
    shown = re.findall(r"```python\n(.*?)```", readme_section("Strategies"), re.S)[1]
    assert shown == (HERE / "examples" / "sma_cross.py").read_text()


EXAMPLES = HERE / "examples"
SMA_BARS = [  # time, open, high, low, close: the crossover of fast 2 / slow 3, worked out below
    ("2025-03-01T00:00:00Z", "10.00", "10.00", "10.00", "10.00"), ("2025-03-01T01:00:00Z", "10.00", "10.00", "10.00", "10.00"),
    ("2025-03-01T02:00:00Z", "10.00", "10.00", "10.00", "10.00"),  # fast 10 = slow 10: not above
    ("2025-03-01T03:00:00Z", "10.00", "11.00", "10.00", "11.00"),  # fast 10.5 > slow 10.33: up, buy 990 / 11 = 90
    ("2025-03-01T04:00:00Z", "10.50", "12.00", "10.50", "12.00"),  # fast 11.5 > slow 11: still above
    ("2025-03-01T05:00:00Z", "12.00", "12.00", "9.00", "9.00"),  # fast 10.5 < slow 10.67: down, sell all
    ("2025-03-01T06:00:00Z", "8.50", "9.00", "8.50", "9.00")]  # fast 9 < slow 10: still below
BRACKET_BARS = [
    ("2025-03-01T00:00:00Z", "125.00", "125.00", "125.00", "125.00"),  # entry at 125 x 0.8 = 100
    ("2025-03-01T01:00:00Z", "110.00", "112.00", "99.00", "101.00"),  # filled at 100; oco 102.00 / 99.00
    ("2025-03-01T02:00:00Z", "101.00", "103.00", "100.50", "102.50"),  # take profit at 102; entry at 82.00
    ("2025-03-01T03:00:00Z", "102.00", "102.00", "101.00", "101.00"),  # waited 1
    ("2025-03-01T04:00:00Z", "101.00", "101.00", "100.00", "100.00"),  # waited 2: cancelled
    ("2025-03-01T05:00:00Z", "100.00", "100.00", "100.00", "100.00"),  # entry at 80.00
    ("2025-03-01T06:00:00Z", "81.00", "81.00", "79.50", "80.50"),  # filled at 80; oco 81.60 / 79.20
    ("2025-03-01T07:00:00Z", "80.00", "80.20", "78.00", "78.50")]  # stop loss at 79.20; entry at 62.80
SMA_FILLS = {  # (time, side, qty, price, fee)
    "--on-close": [("2025-03-01T03:00:00.000000Z", "buy", "90.00", "11.00", "0.99"),  # at the close of the cross
                   ("2025-03-01T05:00:00.000000Z", "sell", "90.00", "9.00", "0.81")],
    "": [("2025-03-01T04:00:00.000000Z", "buy", "90.00", "10.50", "0.945"),  # at the next bar's open
         ("2025-03-01T06:00:00.000000Z", "sell", "90.00", "8.50", "0.765")]}
BRACKET_FILLS = [
    ("2025-03-01T01:00:00.000000Z", "buy", "50.00", "100.00", "5.00"),  # 5005 = 0.5 x 10010 buys 50 at 100.10
    ("2025-03-01T02:00:00.000000Z", "sell", "50.00", "102.00", "5.10"),
    # 0.5 x 10099.90 = 5049.95 buys 5049.95 / 80.08 = 63.06131368 (to 8 places): 5044.9050944 + 5.0449051 fee
    ("2025-03-01T06:00:00.000000Z", "buy", "63.06131368", "80.00", "5.0449051"),
    ("2025-03-01T07:00:00.000000Z", "sell", "63.06131368", "79.20", "4.99445605")]  # 4994.456043456 x 0.001, up


@pytest.mark.parametrize("on_close", ["--on-close", ""])
def test_the_crossover_example_by_hand(run, db, tmp_path, on_close):
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    out = ok(run("backtest", str(EXAMPLES / "sma_cross.py"), "--data", data, "--param", "fast=2", "--param", "slow=3",
                 "--balance", "1000", *[on_close] * bool(on_close)))
    account = query(db, "SELECT id, name FROM accounts")
    assert account[0][1] == "sma_cross.py fast=2 slow=3 size=0.0"
    assert out.endswith(f"\naccount {account[0][0]} in {db}\n")
    assert fills(db) == SMA_FILLS[on_close]
    final = {"--on-close": "818.20", "": "818.29"}[on_close]  # 1000 - 990.99 + 809.19; 1000 - 945.945 + 764.235
    assert re.search(rf"^Equity final \[USDT\] +{final}$", out, re.M) and balance(db, account[0][0]) == (Decimal(final), 0)
    assert query(db, "SELECT strategy, params, options, mode, state, handled, bars FROM strategy_runs") == [(
        "sma_cross.py", '{"fast": 2, "size": 0.0, "slow": 3}', '{"fee_rate": "0.001", "on_close": %s, "slippage": "0.00"}'
        % ("true" if on_close else "false"), "backtest", '{"above": false}', '{"BTC/USDT": "2025-03-01T06:00:00.000000Z"}',
        7)]
    assert ok(run("verify")) == "OK\n"


def test_the_bracket_example_by_hand(run, db, tmp_path):
    data = bar_file(tmp_path / "bars.csv", BRACKET_BARS)
    ok(run("backtest", str(EXAMPLES / "bracket.py"), "--data", data, "--param", "dip=0.2", "--param", "wait=2",
           "--balance", "10010"))
    assert fills(db) == BRACKET_FILLS
    assert query(db, "SELECT type, side, qty, limit_price, stop_price, status FROM orders ORDER BY rowid") == [
        ("limit", "buy", "50.00", "100.00", None, "FILLED"), ("oco", "sell", "50.00", "102.00", "99.00", "FILLED"),
        ("limit", "buy", "61.52323286", "82.00", None, "CANCELLED"),  # 5049.95 / 82.082
        ("limit", "buy", "63.06131368", "80.00", None, "FILLED"), ("oco", "sell", "63.06131368", "81.60", "79.20", "FILLED"),
        ("limit", "buy", "79.85176915", "62.80", None, "OPEN")]  # half of 10039.411587906, / 62.8628
    account = query(db, "SELECT id FROM accounts")[0][0]
    assert balance(db, account) == (Decimal("5019.705794176"), Decimal("5019.70579373"))  # 79.85176915 x 62.80 + fee
    assert ok(run("verify")) == "OK\n"


def test_an_order_a_strategy_changes_is_its_own_copy(run, db, tmp_path):
    """ctx.orders() gives the orders as the database holds them; changing one changes nothing in the market."""
    data = bar_file(tmp_path / "bars.csv", [("2025-01-01T00:00:00Z", "100", "100", "100", "100"),
                                            ("2025-01-01T01:00:00Z", "100", "100", "95", "96"),
                                            ("2025-01-01T02:00:00Z", "96", "96", "93", "94"),
                                            ("2025-01-01T03:00:00Z", "94", "94", "89", "90")])
    strategy = strategy_file(tmp_path, """from decimal import Decimal
def on_bar(ctx, bar):
    waiting = ctx.orders()
    if not waiting and not ctx.position():
        ctx.buy(1, limit=Decimal("90.5"))
    elif waiting:
        ctx.log(f"{waiting[0].limit_price} {waiting[0].qty} {waiting[0].status}")
        waiting[0].limit_price = Decimal(99)  # a strategy's own copy: the order still waits for 90.50
""")
    code, out, err = run("backtest", strategy, "--data", data, "--balance", "1000")
    assert code == 0 and err.splitlines() == ["2025-01-01T01:00:00.000000Z 90.50 1.00 OPEN",  # as stored, and
                                              "2025-01-01T02:00:00.000000Z 90.50 1.00 OPEN"]  # not as it was changed
    assert fills(db) == [("2025-01-01T03:00:00.000000Z", "buy", "1.00", "90.50", "0.0905")]


@pytest.mark.parametrize("strategy, bars, argv", [
    ("sma_cross.py", SMA_BARS, ["--param", "fast=2", "--param", "slow=3", "--balance", "1000"]),
    ("sma_cross.py", SMA_BARS, ["--param", "fast=2", "--param", "slow=3", "--balance", "1000", "--on-close"]),
    ("bracket.py", BRACKET_BARS, ["--param", "dip=0.2", "--param", "wait=2", "--balance", "10010"])])
def test_backtest_and_live_agree(tmp_path, capsys, strategy, bars, argv):
    """The prices a run records on a fresh account, backtested with the same strategy, params, balance and fee
    rate, give the same fills."""
    data, live, kept = bar_file(tmp_path / "bars.csv", bars), str(tmp_path / "live.db"), str(tmp_path / "kept.db")
    balance_at = argv.index("--balance")
    assert paper.main(["init", *argv[balance_at:balance_at + 2], "--db", live]) == 0
    account = capsys.readouterr().out.strip()
    run_argv = argv[:balance_at] + argv[balance_at + 2:]
    assert paper.main(["run", str(EXAMPLES / strategy), "--account-id", account, "--feed", data, *run_argv,
                       "--db", live]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.endswith(f"handled {len(bars)} bars; {len(fills(live))} fills\n")
    recorded = query(live, "SELECT time, symbol, open, high, low, close FROM prices ORDER BY id")
    (tmp_path / "recorded.csv").write_text("time,symbol,open,high,low,close\n" + "".join(
        ",".join(row) + "\n" for row in recorded))
    assert paper.main(["backtest", str(EXAMPLES / strategy), "--data", str(tmp_path / "recorded.csv"), *argv,
                       "--db", kept]) == 0
    assert capsys.readouterr().err == ""
    assert fills(live) == fills(kept) == (SMA_FILLS["--on-close" if "--on-close" in argv else ""]
                                          if strategy == "sma_cross.py" else BRACKET_FILLS)
    assert query(live, "SELECT state FROM strategy_runs") == query(kept, "SELECT state FROM strategy_runs")


RECORDER = '''
PARAMS = {"every": 2}


def on_bar(ctx, bar):
    ctx.state.setdefault("seen", []).append(bar.time[11:16])
    if len(ctx.state["seen"]) % ctx.params["every"] == 0:
        ctx.buy("1")
'''


def test_run_resumes_after_the_last_bar_it_handled(run, acct, db, tmp_path):
    rows = [(f"2025-03-01T{hour:02d}:00:00Z", "10.00", "10.00", "10.00", "10.00") for hour in range(6)]
    strategy = strategy_file(tmp_path, RECORDER)
    first, whole = bar_file(tmp_path / "first.csv", rows[:3]), bar_file(tmp_path / "whole.csv", rows)
    out = ok(run("run", strategy, "--account-id", acct, "--feed", first))
    assert out.endswith(f"strategy.py on account {acct}: handled 3 bars; 1 fill\n")  # bar 2's, at bar 3's open
    out = ok(run("run", strategy, "--account-id", acct, "--feed", whole))  # restarted over the whole file
    assert out.splitlines()[-1] == f"strategy.py on account {acct}: handled 3 bars, after 3 bars before; 1 fill"
    assert ok(run("run", strategy, "--account-id", acct, "--feed", whole)).endswith("handled 0 bars, after 6 bars"
                                                                                   " before; 0 fills\n")
    assert query(db, "SELECT state, bars FROM strategy_runs") == [(
        '{"seen": ["00:00", "01:00", "02:00", "03:00", "04:00", "05:00"]}', 6)]  # each bar once, in order
    assert query(db, "SELECT count(*), sum(status = 'FILLED') FROM orders") == [(3, 2)]  # bars 2, 4, 6: once each
    with connection(db) as conn:
        conn.execute("DELETE FROM strategy_runs")
    assert "recorded already, with open 10.00" in refused(run(  # a re-fed file must hold what was recorded
        "run", strategy, "--account-id", acct, "--feed", bar_file(tmp_path / "other.csv", [(rows[0][0], "10.00", "11.00", "10.00", "11.00")])))


def test_ctrl_c_stops_a_run_at_once_and_keeps_the_bars_it_committed(tmp_path):
    db = str(tmp_path / "p.db")
    account = cli("init", "--db", db).stdout.strip()
    live = subprocess.Popen([*PAPER_RUN, "run", strategy_file(tmp_path, RECORDER), "--account-id", account,
                             "--feed", "-", "--on-close", "--db", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    live.stdin.write("time,symbol,price\n2025-03-01T00:00:00Z,BTC/USDT,10\n2025-03-01T01:00:00Z,BTC/USDT,10\n")
    live.stdin.flush()
    assert live.stdout.readline() == ("trade 1: buy 1.00 BTC/USDT @ 10.00, fee 0.01 USDT; balances 1.00 BTC,"
                                      " 4989.99 USDT\n")  # the second bar's, printed once committed
    live.send_signal(signal.SIGINT)  # while it waits for the next bar
    out, err = live.communicate(timeout=60)
    assert (live.returncode, out, err) == (130, f"strategy.py on account {account}: handled 2 bars before the"
                                                 " interrupt; 1 fill\n",
                                           "paper: error: interrupted; every bar read is recorded\n")
    assert query(db, "SELECT bars, state FROM strategy_runs") == [(2, '{"seen": ["00:00", "01:00"]}')]


def test_a_run_from_standard_input_and_a_run_resumed_with_other_options(tmp_path):
    db = str(tmp_path / "p.db")
    account = cli("init", "--db", db).stdout.strip()
    strategy = strategy_file(tmp_path, RECORDER)
    lines = "time,symbol,price\n2025-03-01T00:00:00Z,BTC/USDT,10\n2025-03-01T01:00:00Z,BTC/USDT,10\n"
    result = subprocess.run([*PAPER_RUN, "run", strategy, "--account-id", account, "--feed", "-", "--db", db],
                            input=lines, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert query(db, "SELECT bars FROM strategy_runs") == [(2,)]
    result = cli("run", strategy, "--account-id", account, "--feed", "-", "--fee-rate", "0.002", "--db", db)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"paper: error: strategy run 1 (strategy.py on account {account}) was started with"
                             " --fee-rate 0.001 --slippage 0.00: resume it with the same options\n")


PROBE = '''
PARAMS = {"note": "probe"}


def init(ctx):
    ctx.state.setdefault("seen", [])
    try:
        ctx.buy("1")
    except Exception as error:
        ctx.state["init"] = str(error)


def on_bar(ctx, bar):
    ctx.state["seen"].append([bar.time[11:16], len(ctx.history()), ctx.closes(2), str(ctx.position()),
                              str(ctx.cash), str(ctx.equity), len(ctx.orders())])
    step = len(ctx.state["seen"])
    if step == 1:
        ctx.buy(fraction=1)  # all of the equity, sized at the fill
    elif step == 2:
        ctx.sell(fraction=0.5)
    elif step == 3:
        ctx.state["last2"] = [[b.time[11:16], str(b.open), str(b.close)] for b in ctx.history(n=2)]
        ctx.log(f"closing at {bar.close}")
        ctx.close()
'''


def test_a_strategy_sees_its_history_position_cash_and_equity_bar_by_bar(run, db, tmp_path):
    data = bar_file(tmp_path / "bars.csv", [("2025-03-01T00:00:00Z", "100.00", "100.00", "100.00", "100.00"),
                                            ("2025-03-01T01:00:00Z", "125.00", "126.00", "124.00", "125.00"),
                                            ("2025-03-01T02:00:00Z", "120.00", "120.00", "118.00", "119.00"),
                                            ("2025-03-01T03:00:00Z", "119.00", "119.00", "119.00", "119.00")])
    code, out, err = run("backtest", strategy_file(tmp_path, PROBE), "--data", data, "--balance", "1001")
    assert (code, err) == (0, "2025-03-01T02:00:00.000000Z closing at 119.00\n")
    state = json.loads(query(db, "SELECT state FROM strategy_runs")[0][0])
    assert state["init"] == ("orders are placed and cancelled in on_bar: init runs before the first bar, and again"
                             " when a run resumes")
    seen = [[*row[:3], *map(Decimal, row[3:6]), row[6]] for row in state["seen"]]  # position, cash, equity
    assert seen == [
        ["00:00", 1, [100.0], Decimal(0), Decimal(1001), Decimal(1001), 0],
        # fraction=1 of 1001 at a gap up to 125: 1001 / 125.125 = 8, fee 1.00 (at 100 it would have been 10)
        ["01:00", 2, [100.0, 125.0], Decimal(8), Decimal(0), Decimal(1000), 0],
        # half of 8 sold at 120: 480 - 0.48; the rest valued at the close, 119
        ["02:00", 3, [125.0, 119.0], Decimal(4), Decimal("479.52"), Decimal("955.52"), 0],
        ["03:00", 4, [119.0, 119.0], Decimal(0), Decimal("955.044"), Decimal("955.044"), 0]]  # + 476 - 0.476
    assert state["last2"] == [["01:00", "125.00", "125.00"], ["02:00", "120.00", "119.00"]]
    assert fills(db) == [("2025-03-01T01:00:00.000000Z", "buy", "8.00", "125.00", "1.00"),
                         ("2025-03-01T02:00:00.000000Z", "sell", "4.00", "120.00", "0.48"),
                         ("2025-03-01T03:00:00.000000Z", "sell", "4.00", "119.00", "0.476")]


FAILING = '''
def on_bar(ctx, bar):
    ctx.state["bars"] = ctx.state.get("bars", 0) + 1
    if ctx.state["bars"] == 3:
        check(bar)


def check(bar):
    raise ValueError(f"no bar like {bar.close}")
'''


def test_a_strategy_that_raises_stops_with_its_own_traceback(acct, db, tmp_path, capsys):
    import tempfile
    strategy, data = strategy_file(tmp_path, FAILING), bar_file(tmp_path / "bars.csv", SMA_BARS)
    for argv in (["backtest", strategy, "--data", data],
                 ["run", strategy, "--account-id", acct, "--feed", data, "--db", db]):
        assert paper.main(argv) == 1
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert out == "" and lines[0] == "Traceback (most recent call last):" and "paper.py" not in err  # its own
        assert [line for line in lines if line.startswith("  File")] == [
            f'  File "{strategy}", line 5, in on_bar', f'  File "{strategy}", line 9, in check']
        assert lines[-2:] == ["ValueError: no bar like 10.00",  # the third bar's close
                              f"paper: error: {strategy} line 9 in check: ValueError: no bar like 10.00"]
    assert query(db, "SELECT bars, state FROM strategy_runs") == [(2, '{"bars": 2}')]  # run: the bars before stay
    assert len(query(db, "SELECT id FROM prices")) == 2
    leftovers = [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(f"paper-backtest-{os.getpid()}-")]
    assert leftovers == []  # backtest: its temporary database is gone


def test_a_strategy_that_raises_keyboardinterrupt_itself_is_a_strategy_error(tmp_path, capsys):
    """On the command line Ctrl-C is paper's handler's, so a KeyboardInterrupt from on_bar is the strategy's
    own raise: its traceback and exit 1, not 'interrupted' and 130. From Python it stays a KeyboardInterrupt."""
    strategy = strategy_file(tmp_path, "def on_bar(ctx, bar):\n    raise KeyboardInterrupt('stop here')\n")
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    assert paper.main(["backtest", strategy, "--data", data]) == 1
    err = capsys.readouterr().err
    assert err.endswith(f"KeyboardInterrupt: stop here\npaper: error: {strategy} line 2 in on_bar: KeyboardInterrupt:"
                        " stop here\n") and "paper.py" not in err
    with pytest.raises(KeyboardInterrupt):
        paper.backtest(strategy, data)


@pytest.mark.parametrize("text, why", [
    ("def on_bar(ctx, bar)\n    pass\n", "strategy.py line 1: expected ':'"),
    ("x = 1\n", "strategy.py line 1: no on_bar(ctx, bar) function: a strategy defines one"),
    ("PARAMS = {'size': [1]}\ndef on_bar(ctx, bar): pass\n", "strategy.py: PARAMS must be a dict of names to int,"
                                                              " float, bool or str defaults"),
    ("init = 1\ndef on_bar(ctx, bar): pass\n", "strategy.py: init must be a function init(ctx)"),
    (None, "paper: error: cannot read the strategy {}: No such file or directory"),
])
def test_a_strategy_file_that_cannot_run_is_one_line(acct, db, tmp_path, capsys, text, why):
    strategy = strategy_file(tmp_path, text) if text else str(tmp_path / "strategy.py")
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    before = dump(db)
    for argv in (["backtest", strategy, "--data", data, "--db", str(tmp_path / "kept.db")],
                 ["run", strategy, "--account-id", acct, "--feed", data, "--db", db]):
        assert paper.main(argv) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("paper: error: ") and err.count("\n") == 1
        assert why.format(strategy) in err
    assert dump(db) == before and not os.path.exists(tmp_path / "kept.db")


@pytest.mark.parametrize("argv, why", [
    (["--param", "fast"], "--param 'fast' must be NAME=VALUE"),
    (["--param", "fastest=2"], "--param fastest: {} has no param 'fastest' (its PARAMS: fast, slow, size)"),
    (["--param", "fast=2.5"], "--param fast=2.5: fast is an int (its default is 24)"),
    (["--param", "fast=2", "--param", "fast=3"], "--param fast is given twice"),
    (["--param", "fast=5:1:1"], "--param fast=5:1:1: a range is FROM:TO:STEP, FROM at most TO, STEP above 0"),
    (["--param", "fast=1:100000:1"], "--param fast=1:100000:1 gives 100,000 values: at most 10,000"),
    (["--csv"], "--csv is for a sweep: give a --param several values (FROM:TO:STEP or A,B,C)"),
    (["--jobs", "2"], "--jobs is for a sweep"),
    (["--param", "fast=1,2", "--db", "{tmp}/x.db"], "--db is for one backtest: a sweep keeps no database"),
    (["--param", "fast=1:10000", "--param", "slow=1:11"], "the params give 110,000 combinations: at most 100,000"),
    (["--param", "fast=1,2", "--chart", "{tmp}/x.svg"], "--chart is for one backtest"),
    (["--param", "fast=1,2", "--constraint", "fast.__class__"], "Attribute is not allowed"),
    (["--param", "fast=1,2", "--constraint", "__import__('os')"], "Call is not allowed"),
    (["--param", "fast=1,2", "--constraint", "fast < speed"], "'speed' is not a param of the strategy"),
    (["--param", "fast=1,2", "--constraint", "fast <"], "is not an expression"),
    (["--param", "fast=1,2", "--constraint", "fast ** 99 > 1"], "Pow is not allowed"),
    (["--param", "fast=1,2", "--constraint", "fast > 5"], "--constraint 'fast > 5' leaves no combination"),
    (["--param", "fast=0,2", "--constraint", "slow / fast > 1"], "fails for {{'fast': 0, 'slow': 120, 'size': 0.0}}: ZeroDivision"),
])
def test_params_the_strategy_does_not_take_are_usage_errors(tmp_path, capsys, argv, why):
    strategy, data = str(EXAMPLES / "sma_cross.py"), bar_file(tmp_path / "bars.csv", SMA_BARS)
    assert paper.main(["backtest", strategy, "--data", data, *[arg.format(tmp=tmp_path) for arg in argv]]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("paper: error: ") and err.count("\n") == 1
    assert why.format(strategy) in err
    assert sorted(os.listdir(tmp_path)) == ["bars.csv"]


def test_run_takes_one_value_a_param_and_needs_its_bars(run, acct, tmp_path):
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    assert refused(run("run", str(EXAMPLES / "sma_cross.py"), "--account-id", acct, "--feed", data, "--param",
                       "fast=1,2"), 2) == "paper: error: run takes one value for each --param (a sweep is backtest's)\n"
    assert "run needs the bars from one source: --feed FILE (or - for standard input), or --fetch SYMBOL ... --interval I" in refused(
        run("run", str(EXAMPLES / "sma_cross.py"), "--account-id", acct), 2)


def test_the_state_keeps_json_values_only(run, acct, db, tmp_path):
    data = bar_file(tmp_path / "bars.csv", SMA_BARS[:1])
    for value, why in [("Decimal(1)", "Object of type Decimal is not JSON serializable"), ("(1, 2)", ""),
                       ("{1: 2}", ""), ("float('nan')", "a float that is nan or infinite, or a list or dict inside itself")]:
        strategy = strategy_file(tmp_path, f"from decimal import Decimal\ndef on_bar(ctx, bar):\n"
                                           f"    ctx.state['x'] = {value}\n")
        assert refused(run("run", strategy, "--account-id", acct, "--feed", data)) == (
            "paper: error: ctx.state keeps JSON values only (str, int, float, bool, None, lists, dicts with str keys)"
            + (f": {why}" if why else "") + "\n")
    assert query(db, "SELECT count(*) FROM prices") == [(0,)]  # the bar and its state commit together, or neither


def test_a_run_skips_bars_recorded_before_it_and_hands_on_the_newest(run, acct, db, tmp_path):
    """Fed before, bars 00:00 and 01:00 have a later price of their symbol: an order placed on them would
    fill at 02:00's, so the run checks them and hands on 02:00 only, then every bar after it."""
    rows = [(f"2025-03-01T{hour:02d}:00:00Z", "10.00", "10.00", "10.00", "10.00") for hour in range(4)]
    ok(run("feed", bar_file(tmp_path / "old.csv", rows[:3])))
    out = ok(run("run", strategy_file(tmp_path, RECORDER.replace('"every": 2', '"every": 9')), "--account-id", acct,
                 "--feed", bar_file(tmp_path / "all.csv", rows)))
    assert out == (f"strategy.py on account {acct}: handled 2 bars; 0 fills; skipped 2 bars recorded before it (an"
                   " order now would fill at a later price)\n")
    assert query(db, "SELECT state, bars FROM strategy_runs") == [('{"seen": ["02:00", "03:00"]}', 2)]


EXPIRING = '''
def on_bar(ctx, bar):
    print("seen", bar.time)
    if not ctx.state.get("placed"):
        ctx.state["placed"] = ctx.buy("1", limit="5", expires="2025-03-01T01:30:00Z").id
'''


@pytest.mark.parametrize("as_json", [False, True])
def test_a_run_prints_the_orders_a_bar_cancelled_and_the_strategys_prints_go_to_stderr(run, acct, db, tmp_path,
                                                                                       as_json):
    rows = [(f"2025-03-01T{hour:02d}:00:00Z", "10.00", "10.00", "10.00", "10.00") for hour in range(3)]
    code, out, err = run("run", strategy_file(tmp_path, EXPIRING), "--account-id", acct, "--feed",
                         bar_file(tmp_path / "bars.csv", rows), *["--json"] * as_json)
    [(order, status)] = query(db, "SELECT id, status FROM orders")
    assert code == 0 and status == "EXPIRED" and err == "".join(f"seen {time[:19]}.000000Z\n" for time, *_ in rows)
    if not as_json:  # expired by 02:00's price
        assert out == (f"order {order} expired; its reserve is available again\n"
                       f"strategy.py on account {acct}: handled 3 bars; 0 fills\n")
    else:  # JSON Lines: the order, then the summary
        lines = [json.loads(line) for line in out.splitlines()]
        assert [line.get("id") for line in lines[:-1]] == [order] and lines[0]["status"] == "EXPIRED"
        assert lines[-1] == {"strategy_run": 1, "account_id": acct, "bars": 3, "handled_before": 0, "fills": 0,
                             "history": 0}


@pytest.mark.parametrize("body, message", [
    ("raise GeneratorExit", "strategy.py line 3 in on_bar: GeneratorExit"),
    ("ctx.buy(fraction=float('nan'))", "fraction nan must be above 0 and at most 1"),
    ("ctx.buy(fraction=1e-12)", "fraction 1e-12 of the equity (0.00) buys no BTC/USDT at 10.00, fee included"),
    ("ctx.sell(fraction=0.5)", "fraction 0.5 of the 0.00 BTC held is nothing to sell"),
    ("ctx.history(n=0)", "n must be a whole number above zero, not 0"),
    ("ctx.closes(-1)", "n must be a whole number above zero, not -1"),
    ("ctx.state['x'] = 10 ** 5000", "ctx.state keeps JSON values only (str, int, float, bool, None, lists, dicts"
                                    " with str keys): an int of more than 4,300 digits"),
])
def test_what_a_strategy_did_wrong_is_named(run, acct, tmp_path, body, message):
    strategy = strategy_file(tmp_path, f"def on_bar(ctx, bar):\n    x = 1\n    {body}\n")
    code, out, err = run("run", strategy, "--account-id", acct, "--feed",
                         bar_file(tmp_path / "bars.csv", [("2025-03-01T00:00:00Z", "10", "10", "10", "10")]))
    assert code == 1 and out == "" and err.splitlines()[-1].endswith(message), err


def test_a_bar_in_the_future_is_taken_by_run_with_allow_future(run, acct, db, tmp_path):
    data = bar_file(tmp_path / "bars.csv", [("2099-03-01T00:00:00Z", "10", "10", "10", "10")])
    strategy = strategy_file(tmp_path, "def on_bar(ctx, bar):\n    pass\n")
    assert "give --allow-future" in refused(run("run", strategy, "--account-id", acct, "--feed", data))
    assert ok(run("run", strategy, "--account-id", acct, "--feed", data, "--allow-future")).endswith(
        "handled 1 bar; 0 fills\n")
    assert query(db, "SELECT time FROM prices") == [("2099-03-01T00:00:00.000000Z",)]


def test_a_strategy_imports_a_module_beside_it(run, acct, tmp_path):
    (tmp_path / "signals_of_mine.py").write_text("def up(bar):\n    return bar.close > 5\n")
    strategy = strategy_file(tmp_path, "from signals_of_mine import up\n\ndef on_bar(ctx, bar):\n"
                                       "    if up(bar):\n        ctx.buy('1')\n")
    out = ok(run("run", strategy, "--account-id", acct, "--on-close", "--feed",
                 bar_file(tmp_path / "bars.csv", [("2025-03-01T00:00:00Z", "10", "10", "10", "10")])))
    assert out.startswith("trade 1: buy 1.00 BTC/USDT @ 10.00, fee 0.01 USDT")


@pytest.mark.parametrize("value", ["5_000", "١٢", "0x10", "7.0"])
def test_an_int_param_is_as_typed_in_ascii_digits(run, tmp_path, value):
    data = bar_file(tmp_path / "bars.csv", [("2025-03-01T00:00:00Z", "10", "10", "10", "10")])
    err = refused(run("backtest", str(EXAMPLES / "sma_cross.py"), "--data", data, "--param", f"fast={value}"), code=2)
    assert "fast" in err


# --- Backtests and sweeps ---

def test_the_readme_backtest_runs_as_shown_and_twice_the_same(tmp_path):
    section = readme_section("Backtest")
    make_bars = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    command, shown = re.search(r"```console\n\$ python make_bars.py && python paper.py (backtest [^\n]*)\n(.*?)```",
                               section, re.S).groups()
    (tmp_path / "make_bars.py").write_text(make_bars)
    (tmp_path / "examples").symlink_to(HERE / "examples")
    assert subprocess.run([sys.executable, "make_bars.py"], cwd=tmp_path).returncode == 0
    runs = []
    for _ in range(2):
        result = subprocess.run([sys.executable, PAPER, *command.split()], cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)
        assert (result.returncode, result.stderr) == (0, "")
        runs.append((result.stdout, (tmp_path / "backtest.svg").read_bytes(), (tmp_path / "report.html").read_bytes()))
    assert runs[0] == runs[1]  # a fresh database each time: the same figures, the same bytes
    assert runs[0][0] == shown  # what the README shows is what it prints
    assert runs[0][1] == (HERE / "images" / "backtest.svg").read_bytes()  # and the chart it embeds is this one
    assert runs[0][2] == (HERE / "images" / "report.html").read_bytes()  # and the report it links to


def test_backtest_keeps_its_database_only_when_asked_and_never_over_a_file(run, db, tmp_path, capsys):
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    argv = ["backtest", str(EXAMPLES / "sma_cross.py"), "--data", data, "--param", "fast=2", "--param", "slow=3",
            "--balance", "1000", "--json"]
    assert paper.main(argv) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["database"], done["params"], done["stats"]["equity_final"], done["stats"]["trades"]) == (
        None, {"fast": 2, "slow": 3, "size": 0.0}, "818.29", 2)
    assert UUID.fullmatch(done["account_id"])
    kept = json.loads(ok(run(*argv)))  # --db: the test's database, a new file
    assert kept["database"] == db and kept["stats"] == done["stats"] and kept["account_id"] != done["account_id"]
    before = dump(db)
    assert refused(run(*argv)) == f"paper: error: {db} exists already: a backtest writes a new database\n"
    assert dump(db) == before
    assert ok(run("stats", "--account-id", kept["account_id"])).splitlines()[4] == "Equity final [USDT]         818.29"


def sweep_rows(out):
    return [line.split() for line in out.splitlines()]


def test_a_sweep_prints_one_row_a_combination_the_same_for_any_jobs(tmp_path, capsys):
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    argv = ["backtest", str(EXAMPLES / "sma_cross.py"), "--data", data, "--param", "fast=1:2:1", "--param",
            "slow=3,4", "--constraint", "slow - fast != 3", "--maximize", "return", "--balance", "1000"]
    two = cli(*argv, "--jobs", "2")  # a pool of 2 worker processes
    assert paper.main([*argv, "--jobs", "1"]) == 0  # this process
    one = subprocess.CompletedProcess(argv, 0, *capsys.readouterr())
    assert (one.stderr, two.returncode, two.stderr) == ("", 0, "")
    assert one.stdout == two.stdout
    # fast 1 / slow 3 trades as fast 2 / slow 3 does (worked out above): 1000 -> 818.29, and from its high, 54.055
    # + 90 x 12 = 1134.055, down 27.84%; fast 2 / slow 4 never trades (its one cross is down, with nothing held).
    assert sweep_rows(one.stdout) == [
        ["fast", "slow", "return", "[%]", "max", "drawdown", "[%]", "sharpe", "trades", "win", "rate", "[%]"],
        ["2", "4", "0.00", "0.00", "n/a", "0", "n/a"],
        ["1", "3", "-18.17", "-27.84", "n/a", "2", "0.00"],  # a tie: by params
        ["2", "3", "-18.17", "-27.84", "n/a", "2", "0.00"]]
    assert paper.main([*argv, "--jobs", "1", "--csv"]) == 0
    csv_out = capsys.readouterr().out.splitlines()
    assert csv_out[0] == "fast,slow,return,max_drawdown,sharpe,trades,win_rate" and csv_out[1] == "2,4,0.0,0.0,,0,"
    assert paper.main([*argv, "--jobs", "1", "--json"]) == 0
    assert [row["params"] for row in json.loads(capsys.readouterr().out)] == [
        {"fast": 2, "slow": 4, "size": 0.0}, {"fast": 1, "slow": 3, "size": 0.0}, {"fast": 2, "slow": 3, "size": 0.0}]


def test_a_sweeps_table_names_each_param_as_it_is_typed(tmp_path, capsys):
    data = bar_file(tmp_path / "bars.csv", BRACKET_BARS)
    assert paper.main(["backtest", str(EXAMPLES / "bracket.py"), "--data", data, "--param", "take_profit=0.02,0.03",
                       "--param", "stop_loss=0.01,0.02", "--jobs", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split("  ")[:2] == ["take_profit", "stop_loss"]  # not "take profit"


def test_a_sweep_from_python_on_any_executor(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    with ThreadPoolExecutor(2) as executor:
        results = paper.sweep(str(EXAMPLES / "sma_cross.py"), [data], {"fast": range(1, 3), "slow": [3, 4]},
                              constraint="slow - fast != 3", maximize="return", executor=executor, balance="1000")
    assert [(r["params"], r["stats"]["equity_final"]) for r in results] == [
        ({"fast": 2, "slow": 4, "size": 0.0}, Decimal(1000)), ({"fast": 1, "slow": 3, "size": 0.0}, Decimal("818.29")),
        ({"fast": 2, "slow": 3, "size": 0.0}, Decimal("818.29"))]
    result = paper.backtest(str(EXAMPLES / "sma_cross.py"), data, {"fast": 2, "slow": 3}, balance="1000")
    assert (result["database"], result["params"], result["stats"]) == (None, {"fast": 2, "slow": 3, "size": 0.0},
                                                                         results[2]["stats"])
    with pytest.raises(paper.PaperError, match="param fast is an int, not '2'"):
        paper.backtest(str(EXAMPLES / "sma_cross.py"), data, {"fast": "2"})


def test_backtest_reads_several_files_in_turn_and_kline_files(run, db, tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("time,open,high,low,close\n" + "".join(f"{t},{o},{h},{l},{c}\n" for t, o, h, l, c in SMA_BARS[:4]))
    second.write_text("".join(f"{int(paper.seconds(paper.to_time(t))) * 1000},{o},{h},{l},{c},1.5\n"  # Binance's
                              for t, o, h, l, c in SMA_BARS[4:]))  # klines: open time in ms, no header
    ok(run("backtest", str(EXAMPLES / "sma_cross.py"), "--data", str(first), str(second), "--symbol", "BTC/USDT",
           "--param", "fast=2", "--param", "slow=3", "--balance", "1000"))
    assert fills(db) == SMA_FILLS[""]  # as from one file


def test_a_list_param_gives_each_value_once(tmp_path, capsys):
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    assert paper.main(["backtest", str(EXAMPLES / "sma_cross.py"), "--data", data, "--param", "fast=2,2,1,2",
                       "--param", "slow=3"]) == 0
    out = capsys.readouterr().out
    assert sorted(line.split()[0] for line in out.splitlines()[1:]) == ["1", "2"]  # the table: fast, stats


def test_a_sweeps_refusal_names_the_combination(tmp_path, capsys):
    strategy = strategy_file(tmp_path, 'PARAMS = {"q": 1}\n\ndef on_bar(ctx, bar):\n    ctx.buy(str(ctx.params["q"]))\n')
    data = bar_file(tmp_path / "bars.csv", SMA_BARS)
    assert paper.main(["backtest", strategy, "--data", data, "--param", "q=1,-1", "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"paper: error: q=-1: {strategy} line 4 in on_bar: qty must be greater than"
                                    " zero, not -1")


# --- Risk: the account's rules and the exchange's ---

def risk_events(db, account):
    return query(db, "SELECT rule, action, symbol, detail FROM risk_events WHERE account_id = ? AND action <> 'set'"
                     " ORDER BY id", account)


def test_max_position_refuses_a_buy_and_cancels_a_resting_one(run, db):
    acct = ok(run("init", "--balance", "10000")).strip()
    ok(run("risk", "--account-id", acct, "--max-position", "25%"))
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "110", "--time", "2026-11-01"))
    buy = ["--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--fee-rate", "0"]
    before = query(db, "SELECT * FROM trades")
    # 30 x 110 = 3300 of an equity of 10000 is 33%
    assert refused(run("trade", *buy, "--qty", "30")) == (
        "paper: error: risk: max position 25%: BTC would be 33.00% of equity 10000.00\n")
    assert query(db, "SELECT * FROM trades") == before  # nothing of it, but the refusal is on the record:
    assert risk_events(db, acct) == [("max-position", "refused", "BTC/USDT",
                                      "risk: max position 25%: BTC would be 33.00% of equity 10000.00")]
    order = ok(run("order", *buy, "--qty", "20", "--limit-price", "100")).strip()  # 2000 at 100: 20%, taken
    ok(run("trade", *buy, "--qty", "5"))  # 550 at 110: 5.5%
    # At 100 the order would make 25 BTC x 100 = 2500 of an equity of 9450 USDT + 5 BTC x 100 = 9950: 25.13%
    tick = json.loads(ok(run("tick", "--symbol", "BTC/USDT", "--price", "100", "--time", "2026-11-02", "--json")))
    assert (tick["fills"], tick["cancelled"][0]["id"], tick["cancelled"][0]["reason"]) == (
        [], order, "risk: max position 25%: BTC would be 25.13% of equity 9950.00")
    assert risk_events(db, acct)[1:] == [  # one row: the order it cancelled
        ("max-position", "cancelled", "BTC/USDT", "risk: max position 25%: BTC would be 25.13% of equity 9950.00")]
    assert balance(db, acct) == (Decimal("9450"), 0) and ok(run("verify")) == "OK\n"


def test_max_open_positions_and_a_cooldown_after_a_stop(run, db):
    acct = ok(run("init", "--balance", "10000")).strip()
    ok(run("risk", "--account-id", acct, "--max-open-positions", "1", "--cooldown", "2"))
    for symbol, price in (("BTC/USDT", "100"), ("ETH/USDT", "10")):
        ok(run("tick", "--symbol", symbol, "--price", price, "--time", "2026-11-01"))
    buy = ["--account-id", acct, "--side", "buy", "--fee-rate", "0"]
    ok(run("trade", *buy, "--symbol", "BTC/USDT", "--qty", "1"))
    assert refused(run("trade", *buy, "--symbol", "ETH/USDT", "--qty", "1")) == (
        "paper: error: risk: max open positions 1: BTC held; ETH would be one more\n")
    ok(run("trade", *buy, "--symbol", "BTC/USDT", "--qty", "1"))  # more of a position held is no new one
    ok(run("order", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "2", "--type", "stop",
           "--stop-price", "95", "--fee-rate", "0"))
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "94", "--time", "2026-11-02"))  # the stop fills
    for left, time_ in (("2 more prices", "2026-11-02"), ("1 more price", "2026-11-03")):
        if time_ != "2026-11-02":
            ok(run("tick", "--symbol", "BTC/USDT", "--price", "96", "--time", time_))
        assert refused(run("trade", *buy, "--symbol", "BTC/USDT", "--qty", "1")) == (
            "paper: error: risk: cooldown 2 prices: a stop filled on BTC/USDT at 2026-11-02T00:00:00.000000Z;"
            f" {left} of it before a buy\n")
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "97", "--time", "2026-11-04"))
    ok(run("trade", *buy, "--symbol", "BTC/USDT", "--qty", "1"))  # two prices since the stop: buys again
    assert [event[:2] for event in risk_events(db, acct)] == [
        ("max-open-positions", "refused"), ("cooldown", "cooldown"), ("cooldown", "refused"), ("cooldown", "refused")]


def test_a_drawdown_halt_counts_from_the_peak_with_deposits_taken_out(run, db):
    """10,000 USDT, 50 BTC bought at 100; at 90 (equity 9,500, index 0.95) 1,000 USDT comes in and buys
    units at that index: 10,000 x 10,500 / 9,500 = 11,052.63 units, so it moves nothing. The index is
    then 10,000 / 11,052.63 = 0.9048 at 80, 0.8595 at 70, 0.8143 at 60 (-18.57%), and 8,750 / 11,052.63
    = 0.7917 at 55: 20.83% below the peak of 1, past the rule's 20%, as stats counts drawdown too."""
    acct = ok(run("init", "--balance", "10000")).strip()
    ok(run("risk", "--account-id", acct, "--max-drawdown", "20%"))
    day = iter(range(1, 10))

    def tick(price):
        return ok(run("tick", "--symbol", "BTC/USDT", "--price", price, "--time", f"2026-11-0{next(day)}"))
    tick("100")
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "50", "--fee-rate", "0"))
    tick("90")
    ok(run("deposit", "--account-id", acct, "--amount", "1000"))
    for price in ("80", "70"):
        tick(price)
    buy_order = ok(run("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1",
                       "--limit-price", "50", "--fee-rate", "0")).strip()
    stop = ok(run("order", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "50",
                  "--type", "stop", "--stop-price", "40", "--fee-rate", "0")).strip()
    tick("60")
    assert "HALTED" not in ok(run("risk", "--account-id", acct))  # -19%: not yet
    halt = "risk: halted at drawdown -20.83% on 2026-11-06T00:00:00.000000Z; risk --resume to trade again"
    assert f"order {buy_order} cancelled: {halt}" in tick("55")
    assert query(db, "SELECT id, status FROM orders ORDER BY rowid") == [(buy_order, "CANCELLED"), (stop, "OPEN")]
    assert refused(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1")) == (
        f"paper: error: {halt}\n")
    assert "state: HALTED at drawdown -20.83% on 2026-11-06T00:00:00.000000Z" in ok(run("risk", "--account-id", acct))
    assert json.loads(ok(run("stats", "--account-id", acct, "--json")))["max_drawdown"] == pytest.approx(
        8750 / 10000 * 9500 / 10500 - 1)
    ok(run("risk", "--account-id", acct, "--resume"))
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--fee-rate", "0"))
    tick("50")  # 5,945 + 51 x 50 = 8,495: 0.7686, 2.9% below the peak it resumed at (0.7917): trading
    assert [event[:2] for event in risk_events(db, acct)] == [
        ("max-drawdown", "halted"), ("max-drawdown", "cancelled"), ("max-drawdown", "refused"),
        ("max-drawdown", "resumed")]
    assert ok(run("verify")) == "OK\n"


def test_exchange_rules_refuse_prices_and_quantities_they_do_not_take(run, acct, db):
    assert ok(run("symbol", "BTC/USDT", "--tick-size", "0.01", "--step-size", "0.001", "--min-qty", "0.002",
                  "--min-notional", "5")) == (
        "BTC/USDT: tick size 0.01, step size 0.001, min qty 0.002, min notional 5.00\n")
    order = ["order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT"]
    before = dump(db)
    for argv, why in (
            (["--qty", "0.01", "--limit-price", "100.005"], "price 100.005 is not a multiple of BTC/USDT's PRICE_FILTER"
                                                            " tick size 0.01: the nearest are 100.00 and 100.01"),
            (["--qty", "0.0125", "--limit-price", "1000"], "qty 0.0125 is not a multiple of BTC/USDT's LOT_SIZE step"
                                                           " size 0.001: the nearest are 0.012 and 0.013"),
            (["--qty", "0.001", "--limit-price", "10000"], "qty 0.001 is below BTC/USDT's LOT_SIZE min qty 0.002"),
            (["--qty", "0.004", "--limit-price", "1000"], "0.004 x 1000.00 = 4.00 is below BTC/USDT's NOTIONAL min"
                                                          " notional 5.00")):
        assert refused(run(*order, *argv)) == f"paper: error: {why}\n"
    assert dump(db) == before
    ok(run(*order, "--qty", "0.005", "--limit-price", "1000"))


def test_a_share_must_say_what_it_is(run, acct):
    assert "is ambiguous: write a percentage like 5% or a fraction like 0.05" in refused(
        run("risk", "--account-id", acct, "--stop-loss", "5"), code=2)
    ok(run("risk", "--account-id", acct, "--stop-loss", "0.05", "--take-profit", "10%"))
    assert ok(run("risk", "--account-id", acct)).startswith(
        "Risk rules of Paper Trading Account (" + acct[:8] + "): stop loss 5%, take profit 10%\n")


def test_a_buy_sized_by_risk_and_protected_by_a_bracket(run, db):
    """Equity 10,000, entry 100, stop loss 95, risk 1%: 100 / 5 = 20 BTC; then an oco at 110 / 95."""
    acct = ok(run("init", "--balance", "10000")).strip()
    price(run, "BTC/USDT", "100", time="2026-11-01")
    assert refused(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--risk", "1%"),
                   code=2).endswith("risk sizes a buy by its stop loss instead of a qty: give a stop loss and no"
                                    " qty\n")
    trade = json.loads(ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--risk", "1%",
                              "--sl", "95", "--tp", "110", "--json")))
    assert (trade["qty"], trade["price"], trade["fee"]) == ("20.00", "100.00", "2.00")
    assert open_orders(run, acct) == [("oco", "sell", "20.00", "110.00", "95.00", None, "20.00")]
    [row] = query(db, "SELECT entry_trade_id FROM orders")
    assert row == (trade["id"],)
    assert risk_events(db, acct) == [("protection", "protected", "BTC/USDT",
                                      f"trade {trade['id']}: oco sell 20.00 BTC/USDT (limit 110.00, stop 95.00)")]


def test_risk_sizing_stops_at_what_the_available_balance_pays(run, db):
    acct = ok(run("init", "--balance", "1000")).strip()
    ok(run("deposit", "--account-id", acct, "--amount", "90", "--currency", "BTC"))
    price(run, "BTC/USDT", "100", time="2026-11-01")  # equity 1,000 + 90 x 100 = 10,000: 1% at 5 a BTC is 20 BTC,
    ok(run("risk", "--account-id", acct, "--risk-per-trade", "1%"))  # but 1,000 USDT buys 10 (at no fee)
    trade = json.loads(ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--sl", "95",
                              "--fee-rate", "0", "--json")))
    assert trade["qty"] == "10.00"


def test_the_accounts_rules_protect_every_entry_that_gives_none(run, db):
    acct = ok(run("init", "--balance", "10000")).strip()
    ok(run("risk", "--account-id", acct, "--stop-loss", "5%", "--take-profit", "10%"))
    price(run, "BTC/USDT", "85", time="2026-11-01")
    order = ok(run("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "2",
                   "--limit-price", "80")).strip()
    ok(run("fill", "--order-id", order, "--qty", "0.5", "--price", "80"))  # each fill is protected on what it bought
    assert open_orders(run, acct) == [("oco", "sell", "0.50", "88.00", "76.00", None, "0.50"),
                                      ("limit", "buy", "2.00", "80.00", None, None, "120.12")]
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--sl", "82"))
    assert open_orders(run, acct)[0] == ("oco", "sell", "1.00", "93.50", "82.00", None, "1.00")  # its own stop


def test_a_sell_by_hand_takes_the_base_its_protections_hold(run, db):
    acct = ok(run("init", "--balance", "1000")).strip()
    price(run, "BTC/USDT", "100", time="2026-11-01")
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "2", "--sl", "90"))
    [stop] = [row[0] for row in query(db, "SELECT id FROM orders")]
    assert balance(db, acct, "BTC") == (0, Decimal(2))  # all of it held by the stop
    code, out, err = run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "1.5")
    assert code == 0 and err == (f"paper: note: order {stop} (stop sell 2.00 BTC/USDT (stop 90.00), protecting trade 1)"
                                 " keeps 0.50 BTC: this sell takes 1.50\n")  # told, not silent
    assert open_orders(run, acct) == [("stop", "sell", "0.50", None, "90.00", None, "0.50")]  # shrunk
    assert run("trade", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "0.5")[2] == (
        f"paper: note: order {stop} (stop sell 0.50 BTC/USDT (stop 90.00), protecting trade 1) is cancelled: this sell"
        " takes its 0.50 BTC\n")
    assert query(db, "SELECT status, reason FROM orders") == [("CANCELLED", "its BTC was sold another way")]
    assert [event[:2] for event in risk_events(db, acct)] == [("protection", "protected"), ("protection", "taken"),
                                                               ("protection", "taken")]
    assert balance(db, acct, "BTC") == (0, 0) and ok(run("verify")) == "OK\n"


def test_a_halt_that_flattens_sells_every_holding_at_the_next_price(run, db):
    acct = ok(run("init", "--balance", "1000")).strip()
    ok(run("risk", "--account-id", acct, "--max-drawdown", "10%", "--flatten"))
    price(run, "BTC/USDT", "100", time="2026-11-01")
    ok(run("trade", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "8", "--fee-rate", "0",
           "--tp", "150"))
    tick = price(run, "BTC/USDT", "87", time="2026-11-02")  # 200 + 8 x 87 = 896: -10.4%
    assert [order["type"] for order in tick["cancelled"]] == ["limit"]  # the take profit too: it holds the BTC
    assert open_orders(run, acct) == [("market", "sell", "8.00", None, None, None, "8.00")]
    [fill] = price(run, "BTC/USDT", "86", "90", "85", "88", time="2026-11-03")["fills"]
    assert (fill["side"], fill["qty"], fill["price"]) == ("sell", "8.00", "86.00")  # at the next price's open
    assert balance(db, acct, "BTC") == (0, 0) and ok(run("verify")) == "OK\n"
    assert [event[:2] for event in risk_events(db, acct)][-3:] == [
        ("max-drawdown", "halted"), ("max-drawdown", "cancelled"), ("max-drawdown", "flattened")]


# --- Market data from the exchange (a fake Binance on 127.0.0.1; its klines worked out in FakeBinance) ---

def fetch(run, exchange, *argv):
    return run("fetch", *argv, "--base-url", exchange.url)


def test_a_fetch_that_cannot_get_a_bar_says_why(run, acct, db, exchange):
    """A start after the exchange's clock (a mistyped year) is named, not 'no new closed bar'; the library's
    fetch checks its range and its symbols as the command line does."""
    before = dump(db)
    assert refused(fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2030-01-01")) == (
        "paper: error: start 2030-01-01 00:00:00 is after the exchange's clock (2025-01-01 00:05:30): no bar has"
        " closed then (follow waits for one)\n")
    with paper.Ledger(db) as ledger:
        with pytest.raises(paper.PaperError, match=r"^end 2025-01-01T00:00:00.000000Z is not after start"
                                                   r" 2025-01-02T00:00:00.000000Z$"):
            ledger.fetch("BTC/USDT", "1m", start="2025-01-02", end="2025-01-01", base_url=exchange.url)
        with pytest.raises(paper.PaperError, match=r"^BTC/USDT is given twice: give each symbol once$"):
            ledger.fetch(["BTC/USDT", "btc/usdt"], "1m", base_url=exchange.url)
    assert dump(db) == before


def klines_asked(exchange):
    return [params for name, params, _ in exchange.requests if name == "klines"]


def test_fetch_records_the_closed_bars_of_two_symbols_merged_by_market_time(run, acct, db, exchange):
    out = ok(fetch(run, exchange, "BTC/USDT", "ETH/USDT", "--interval", "1m", "--start", "2025-01-01"))
    assert out == ("recorded 10 prices; 0 fills, 0 cancelled; BTC/USDT 5 bars, ETH/USDT 5 bars, 2025-01-01 00:00:00"
                   " to 2025-01-01 00:04:00\n")
    rows = query(db, "SELECT symbol, time, open, high, low, close FROM prices ORDER BY id")
    assert len(rows) == 10  # at 00:05:30 the kline of 00:05 is still forming: not recorded
    assert rows[:3] == [("BTC/USDT", "2025-01-01T00:00:00.000000Z", "100.00", "101.50", "99.75", "100.50"),
                        ("ETH/USDT", "2025-01-01T00:00:00.000000Z", "10.00", "11.50", "9.75", "10.50"),
                        ("BTC/USDT", "2025-01-01T00:01:00.000000Z", "101.00", "102.50", "100.75", "101.50")]
    assert rows[-1] == ("ETH/USDT", "2025-01-01T00:04:00.000000Z", "14.00", "15.50", "13.75", "14.50")
    assert [row[:2] for row in rows[-2:]] == [("BTC/USDT", "2025-01-01T00:04:00.000000Z"),
                                               ("ETH/USDT", "2025-01-01T00:04:00.000000Z")]
    last_closed = str(LISTED + 4 * 60_000 + 30_000)  # the server's time less a minute: no forming kline is asked for
    assert klines_asked(exchange) == [
        {"symbol": symbol, "interval": "1m", "limit": "1000", "startTime": str(LISTED), "endTime": last_closed}
        for symbol in ("BTCUSDT", "ETHUSDT")]
    assert {agent for _, _, agent in exchange.requests} == {"paper (paper-trading ledger; Python urllib)"}
    exchange.requests.clear()
    before = dump(db)
    out = ok(fetch(run, exchange, "BTC/USDT", "ETH/USDT", "--interval", "1m", "--start", "2025-01-01"))
    assert out == ("recorded 0 prices; 0 fills, 0 cancelled; no new closed bar of BTC/USDT, ETH/USDT after the newest"
                   " recorded, 2025-01-01 00:04:00\n")
    assert dump(db) == before
    assert [params["startTime"] for params in klines_asked(exchange)] == [str(LISTED + 4 * 60_000 + 1)] * 2


def test_fetch_pages_through_a_long_range_each_page_one_transaction(db, exchange):
    exchange.timeline.now = LISTED + 2500 * 60_000 + 30_000  # 2,500 closed bars
    steps = []
    with paper.Ledger(db, create=True) as ledger:
        summary = ledger.fetch(["BTC/USDT"], "1m", start="2025-01-01", base_url=exchange.url,
                               each=lambda results: steps.append(len(results)))
    assert steps == [1000, 1000, 500]
    assert [int(params["startTime"]) for params in klines_asked(exchange)] == [
        LISTED, LISTED + 999 * 60_000 + 1, LISTED + 1999 * 60_000 + 1]  # the last open time + 1 ms
    assert (summary["recorded"], summary["skipped"], summary["fills"]) == (2500, 0, [])
    assert summary["symbols"] == {"BTC/USDT": {"recorded": 2500, "skipped": 0, "from": "2025-01-01T00:00:00.000000Z",
                                               "to": "2025-01-02T17:39:00.000000Z"}}
    assert query(db, "SELECT count(DISTINCT time), count(*) FROM prices") == [(2500, 2500)]
    assert query(db, "SELECT time, open, high, low, close FROM prices ORDER BY id DESC LIMIT 1") == [
        ("2025-01-02T17:39:00.000000Z", "1159.00", "1160.50", "1158.75", "1159.50")]  # minute 1059 of its day


def test_without_start_the_last_1000_closed_bars_then_on_from_the_newest(run, acct, db, exchange):
    exchange.timeline.now = LISTED + 2500 * 60_000 + 30_000
    out = ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m"))
    assert out == ("recorded 1,000 prices; 0 fills, 0 cancelled; BTC/USDT 1,000 bars, 2025-01-02 01:00:00 to"
                   " 2025-01-02 17:39:00\n")
    assert klines_asked(exchange) == [{"symbol": "BTCUSDT", "interval": "1m", "limit": "1000",
                                       "endTime": str(exchange.timeline.now - 60_000)}]
    exchange.timeline.now += 3 * 60_000
    out = ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m"))
    assert out == ("recorded 3 prices; 0 fills, 0 cancelled; BTC/USDT 3 bars, 2025-01-02 17:40:00 to"
                   " 2025-01-02 17:42:00\n")
    assert query(db, "SELECT count(DISTINCT time), count(*), min(time) FROM prices") == [
        (1003, 1003, "2025-01-02T01:00:00.000000Z")]


def test_start_and_end_take_the_bars_opening_between_and_a_rerun_goes_on_without_a_gap(run, acct, db, exchange):
    out = ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2025-01-01T00:01",
                   "--end", "2025-01-01T00:03"))
    assert out.endswith("; BTC/USDT 2 bars, 2025-01-01 00:01:00 to 2025-01-01 00:02:00\n")  # the end is not in
    assert ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m")).endswith(
        "; BTC/USDT 2 bars, 2025-01-01 00:03:00 to 2025-01-01 00:04:00\n")
    assert ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2025-01-01")).endswith(
        "; no new closed bar of BTC/USDT after the newest recorded, 2025-01-01 00:04:00\n")  # never before it
    assert [row[0] for row in query(db, "SELECT time FROM prices ORDER BY id")] == [
        f"2025-01-01T00:0{minute}:00.000000Z" for minute in range(1, 5)]


def test_fetched_bars_fill_resting_orders_as_feed_does(run, acct, db, exchange):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    order = json.loads(ok(run("order", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "1",
                              "--limit-price", "103", "--json")))
    out = ok(fetch(run, exchange, "BTC/USDT", "ETH/USDT", "--interval", "1m", "--start", "2025-01-01", "--json"))
    fetched = json.loads(out)
    # the bar of 00:02 (open 102.00, high 103.50) is the first to reach 103: filled there at 103.00
    assert [(fill["price"], fill["fee"], fill["order_id"]) for fill in fetched["fills"]] == [("103.00", "0.103",
                                                                                              order["id"])]
    assert {key: fetched[key] for key in ("recorded", "skipped", "cancelled", "expired", "triggered")} == {
        "recorded": 10, "skipped": 0, "cancelled": [], "expired": [], "triggered": []}
    assert fetched["symbols"] == {symbol: {"recorded": 5, "skipped": 0, "from": "2025-01-01T00:00:00.000000Z",
                                           "to": "2025-01-01T00:04:00.000000Z"} for symbol in ("BTC/USDT", "ETH/USDT")}
    assert balance(db, acct) == (Decimal("5102.897"), 0)
    assert query(db, "SELECT p.time FROM trades t JOIN prices p ON p.id = t.price_id") == [
        ("2025-01-01T00:02:00.000000Z",)]


def test_a_fill_is_printed_before_the_summary(run, acct, db, exchange):
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    order = json.loads(ok(run("order", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "1",
                              "--limit-price", "103", "--json")))
    assert ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2025-01-01")) == (
        f"trade 1: sell 1.00 BTC/USDT @ 103.00, fee 0.103 USDT; balances 0.00 BTC, 5102.897 USDT"
        f" (order {order['id']})\n"
        "recorded 5 prices; 1 fill, 0 cancelled; BTC/USDT 5 bars, 2025-01-01 00:00:00 to 2025-01-01 00:04:00\n")


SUMMARY_5 = "recorded 5 prices; 0 fills, 0 cancelled; BTC/USDT 5 bars, 2025-01-01 00:00:00 to 2025-01-01 00:04:00\n"
KLINES_URL = "{url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000&startTime=1735689600000&endTime=1735689870000"
KLINES = ("klines ([open time, open, high, low, close, volume, close time, ...] rows in time order, times in epoch ms"
          " inside the range asked for, prices as decimal strings)")


@pytest.mark.parametrize("faults, waits, said", [
    ([("klines", "429")], [7], ["{host} says too many requests (HTTP 429): waiting 7 s as it asks, then asking again"]),
    ([("klines", "503"), ("klines", "502"), ("klines", "drop"), ("klines", "slow", 1)], [5, 10, 20, 40], [
        "{host}: HTTP 503 Service Unavailable (-1008 Server is currently overloaded with other requests. Please try"
        " again in a few minutes.); trying again in 5 s",
        "{host}: HTTP 502 Bad Gateway; trying again in 10 s",
        "{host} dropped the connection before its answer was complete; trying again in 20 s",
        "{host} gave no complete answer within 0.05 s; trying again in 40 s"]),
    ([("time", "drop")], [5], ["{host} dropped the connection before its answer was complete; trying again in 5 s"]),
])
def test_the_exchange_is_asked_again_as_it_asks_and_each_wait_is_said(run, acct, db, exchange, monkeypatch, faults,
                                                                       waits, said):
    monkeypatch.setattr(paper, "TIMEOUT", 0.05)
    exchange.faults = faults
    code, out, err = fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2025-01-01")
    assert (code, out, err) == (0, SUMMARY_5, "".join(f"paper: {line.format(host=exchange.host)}\n" for line in said))
    assert exchange.timeline.slept == waits
    assert query(db, "SELECT count(*) FROM prices") == [(5,)]


@pytest.mark.parametrize("symbol, faults, waits, why", [
    ("BTC/XXX", [], [], "exchange refused BTC/XXX: -1121 Invalid symbol."),
    ("BTC/USDT", [("klines", "418")], [], "{host} has banned this IP address for 120 s (HTTP 418) after too many"
     " requests: wait that long, then run the same command"),
    ("BTC/USDT", [("klines", "403")], [], "{host} refused the request (HTTP 403 Forbidden): Binance answers 403 when"
     " its web application firewall (WAF) blocks a request, for too many requests or a security rule: wait a while,"
     " then run the same command"),
    ("BTC/USDT", [("klines", "451")], [], "{host} refuses this request for where it comes from (HTTP 451"
     " Unavailable For Legal Reasons, Service unavailable from a restricted location according to 'b. Eligibility'"
     " in https://www.binance.com/en/terms. Please contact customer service if you believe you received this message"
     " in error.): Binance does not serve the region it comes from; prices from a file can be recorded with feed"),
    ("BTC/USDT", [("klines", "429")] * 6, [7] * 5, "{host} still says too many requests (HTTP 429) after 5 waits:"
     " try later"),
    ("BTC/USDT", [("klines", "503")] * 5, [5, 10, 20, 40], "{host}: HTTP 503 Service Unavailable (-1008 Server is"
     " currently overloaded with other requests. Please try again in a few minutes.) (5 tries)"),
    ("BTC/USDT", [("klines", "drop")] * 5, [5, 10, 20, 40], "{host} dropped the connection before its answer was"
     " complete (5 tries)"),
    ("BTC/USDT", [("klines", "slow", 1)] * 5, [5, 10, 20, 40], "{host} gave no complete answer within 0.05 s (5 tries)"),
    ("BTC/USDT", [("klines", "html")], [], KLINES_URL + " answered, but not with JSON (found"
     " b'<html><body>Welcome to the hotel wifi</body></html>'): nothing of it was recorded"),
    ("BTC/USDT", [("klines", "shape", [[LISTED, 100.0, 101.5, 99.75, 100.5, "1", LISTED + 59_999]])], [],
     KLINES_URL + f" answered, but not with {KLINES} (found [[1735689600000, 100.0, 101.5, 99.75, 100.5, '1',"
     " 1735689659999]]): nothing of it was recorded"),
    ("BTC/USDT", [("klines", "shape", [[LISTED + 60_000, "1", "1", "1", "1", "1", LISTED + 119_999],
                                       [LISTED, "1", "1", "1", "1", "1", LISTED + 59_999]])], [],  # out of order
     KLINES_URL + f" answered, but not with {KLINES} (found [[1735689660000, '1', '1', '1', '1', '1',"
     " 1735689719999], [1735689600000, '...]): nothing of it was recorded"),  # the answer's first 75 characters
    *[("BTC/USDT", [("klines", "shape", rows)], [], KLINES_URL + f" answered, but not with {KLINES} (found {found}):"
       " nothing of it was recorded") for rows, found in [
        ([[LISTED, "1\n2", "1", "1", "1", "1", LISTED + 59_999]],
         "[[1735689600000, '1\\n2', '1', '1', '1', '1', 1735689659999]]"),
        ([[True, "1", "1", "1", "1", "1", LISTED + 59_999]], "[[True, '1', '1', '1', '1', '1', 1735689659999]]"),
        ([[LISTED, "1", "1", "1", "1", "1"]], "[[1735689600000, '1', '1', '1', '1', '1']]"),
        ([[LISTED - 60_000, "1", "1", "1", "1", "1", LISTED - 1]],  # before the start asked for
         "[[1735689540000, '1', '1', '1', '1', '1', 1735689599999]]"),
        ({"klines": []}, "{{'klines': []}}")]],  # (braces doubled for format)
    ("BTC/USDT", [("time", "shape", {"serverTime": "1735689930000"})], [], "{url}/api/v3/time answered, but not with"
     ' {{"serverTime": epoch milliseconds}} (found {{\'serverTime\': \'1735689930000\'}}): nothing of it was'
     " recorded"),
])
def test_what_the_exchange_refuses_or_fails_to_answer_is_one_line_and_records_nothing(run, acct, db, exchange,
                                                                                      monkeypatch, symbol, faults,
                                                                                      waits, why):
    monkeypatch.setattr(paper, "TIMEOUT", 0.05)
    exchange.faults = faults
    before = dump(db)
    code, out, err = fetch(run, exchange, symbol, "--interval", "1m", "--start", "2025-01-01")
    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == f"paper: error: {why.format(host=exchange.host, url=exchange.url)}"
    assert len(err.splitlines()) == len(waits) + 1 and "Traceback" not in err
    assert exchange.timeline.slept == waits
    assert dump(db) == before


def test_an_unreachable_host_is_named(run, acct, db, exchange):
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code, out, err = run("fetch", "BTC/USDT", "--interval", "1h", "--base-url", f"http://127.0.0.1:{port}")
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"paper: cannot reach 127.0.0.1:{port}: Connection refused; trying again in {wait} s"
                                for wait in (5, 10, 20, 40)] + [
        f"paper: error: cannot reach 127.0.0.1:{port}: Connection refused (5 tries)"]


def test_a_failure_after_some_pages_says_what_was_recorded_and_the_rerun_goes_on(run, acct, db, exchange):
    exchange.timeline.now = LISTED + 2500 * 60_000 + 30_000
    exchange.faults = [("klines", "pass"), ("klines", "pass")] + [("klines", "503")] * 5
    code, out, err = fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2025-01-01")
    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == (
        f"paper: error: {exchange.host}: HTTP 503 Service Unavailable (-1008 Server is currently overloaded with other"
        " requests. Please try again in a few minutes.) (5 tries); recorded before it: BTC/USDT 2,000 bars,"
        " 2025-01-01 00:00:00 to 2025-01-02 09:19:00; the same command goes on from there")
    assert query(db, "SELECT count(*) FROM prices") == [(2000,)]
    assert exchange.timeline.slept == [5, 10, 20, 40]  # 75 s: at 17:41:45 the bar of 17:40 is closed too
    assert ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2025-01-01")) == (
        "recorded 501 prices; 0 fills, 0 cancelled; BTC/USDT 501 bars, 2025-01-02 09:20:00 to 2025-01-02 17:40:00\n")
    assert query(db, "SELECT count(DISTINCT time), count(*) FROM prices") == [(2501, 2501)]


def test_past_half_the_request_weight_it_pauses_until_the_next_minute(run, acct, db, exchange):
    exchange.minute, exchange.weight = exchange.timeline.now // 60_000, 2978  # then exchangeInfo (20), the time (1)
    # and klines (2)
    code, out, err = fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2025-01-01")
    assert (code, out) == (0, SUMMARY_5)
    assert err == (f"paper: {exchange.host}: 3,001 of its 6,000 request weight a minute used; pausing 30 s until the"
                   " next minute\n")
    assert exchange.timeline.slept == [30]


def test_follow_records_each_bar_as_it_closes_until_ctrl_c(run, acct, db, exchange):
    """1s bars: at 00:00:10.5 ten are closed; then one a second, each asked for half a second after its close."""
    ok(run("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC"))
    order = json.loads(ok(run("order", "--account-id", acct, "--side", "sell", "--symbol", "BTC/USDT", "--qty", "1",
                              "--limit-price", "101.61", "--json")))  # the bar of 00:00:11 is the first that high
    exchange.timeline.now = LISTED + 10_500
    exchange.timeline.then = lambda timeline: ctrl_c(timeline) if len(timeline.slept) == 3 else None
    code, out, err = fetch(run, exchange, "BTC/USDT", "ETH/USDT", "--interval", "1s", "--start", "2025-01-01",
                           "--follow")
    assert (code, err) == (130, "paper: error: interrupted: what is summed up above is recorded, and the same command"
                                " goes on from there\n")
    assert out == (f"trade 1: sell 1.00 BTC/USDT @ 101.61, fee 0.10161 USDT; balances 0.00 BTC, 5101.50839 USDT"
                   f" (order {order['id']})\n"
                   "recorded 24 prices; 1 fill, 0 cancelled; BTC/USDT 12 bars, ETH/USDT 12 bars, 2025-01-01 00:00:00 to"
                   " 2025-01-01 00:00:11\n")
    assert exchange.timeline.slept == [1.0, 1.0, 1.0]
    assert query(db, "SELECT symbol, time, open, high, low, close FROM prices ORDER BY id DESC LIMIT 2") == [
        ("ETH/USDT", "2025-01-01T00:00:11.000000Z", "10.11", "11.61", "9.86", "10.61"),
        ("BTC/USDT", "2025-01-01T00:00:11.000000Z", "100.11", "101.61", "99.86", "100.61")]
    assert [int(params["startTime"]) - LISTED for params in klines_asked(exchange)] == [0, 0, 9001, 9001, 10_001,
                                                                                        10_001, 11_001, 11_001][:6]


def test_follow_outlasts_network_failures_waiting_at_most_a_minute(run, acct, db, exchange):
    exchange.timeline.now = LISTED + 10_500
    exchange.timeline.then = lambda timeline: ctrl_c(timeline) if len(timeline.slept) == 10 else None
    exchange.faults = [("klines", "pass")] + [("klines", "503")] * 7  # the second round's request fails 7 times
    code, out, err = fetch(run, exchange, "BTC/USDT", "--interval", "1s", "--start", "2025-01-01", "--follow")
    assert code == 130
    # waits: a second for the bar of 00:00:10; 255 s of failures (its bar then asked for, as that round's); half a
    # second, the 256 bars closed meanwhile in one step; then the next bar's 1.5 s, and Ctrl-C
    assert exchange.timeline.slept == [1.0, 5, 10, 20, 40, 60, 60, 60, 0.5, 1.5]
    assert err.splitlines() == [
        f"paper: {exchange.host}: HTTP 503 Service Unavailable (-1008 Server is currently overloaded with other"
        f" requests. Please try again in a few minutes.); trying again in {wait} s"
        for wait in (5, 10, 20, 40, 60, 60, 60)] + [
        "paper: error: interrupted: what is summed up above is recorded, and the same command goes on from there"]
    assert out == ("recorded 267 prices; 0 fills, 0 cancelled; BTC/USDT 267 bars, 2025-01-01 00:00:00 to"
                   " 2025-01-01 00:04:26\n")
    assert query(db, "SELECT count(DISTINCT time), max(time) FROM prices") == [(267, "2025-01-01T00:04:26.000000Z")]


def test_follow_with_json_prints_json_lines_the_summary_last(run, acct, db, exchange):
    exchange.timeline.now = LISTED + 10_500
    exchange.timeline.then = lambda timeline: ctrl_c(timeline) if len(timeline.slept) == 2 else None
    code, out, err = fetch(run, exchange, "BTC/USDT", "--interval", "1s", "--follow", "--json")
    assert code == 130  # the last 1,000 closed bars (ten: the market opened at 00:00), then the bar of 00:00:10
    assert [json.loads(line) for line in out.splitlines()] == [{
        "recorded": 11, "skipped": 0, "fills": 0, "cancelled": 0, "expired": 0, "triggered": 0, "symbols": {
            "BTC/USDT": {"recorded": 11, "skipped": 0, "from": "2025-01-01T00:00:00.000000Z",
                         "to": "2025-01-01T00:00:10.000000Z"}}}]


def test_the_steps_of_a_follow_are_one_time_of_every_symbol(exchange):
    exchange.timeline.now = LISTED + 10_500
    client = paper.Exchange(exchange.url)
    steps = paper.kline_steps(client, ["ETH/USDT", "BTC/USDT"], "1s", follow=True,
                              after={"BTC/USDT": "2025-01-01T00:00:08Z", "ETH/USDT": "2025-01-01T00:00:07.5Z"})
    first, second, third = itertools.islice(steps, 3)
    steps.close()
    assert first == [("ETH/USDT", "2025-01-01T00:00:08.000000Z", "10.08", "11.58", "9.83", "10.58"),
                     ("ETH/USDT", "2025-01-01T00:00:09.000000Z", "10.09", "11.59", "9.84", "10.59"),
                     ("BTC/USDT", "2025-01-01T00:00:09.000000Z", "100.09", "101.59", "99.84", "100.59")]
    assert second == [("ETH/USDT", "2025-01-01T00:00:10.000000Z", "10.10", "11.60", "9.85", "10.60"),
                      ("BTC/USDT", "2025-01-01T00:00:10.000000Z", "100.10", "101.60", "99.85", "100.60")]
    assert [bar[:2] for bar in third] == [("ETH/USDT", "2025-01-01T00:00:11.000000Z"),
                                          ("BTC/USDT", "2025-01-01T00:00:11.000000Z")]
    assert exchange.timeline.slept == [1.0, 1.0]


def test_kline_steps_refuses_bad_arguments_before_any_request(exchange):
    client = paper.Exchange(exchange.url)
    for args, kwargs, why in [((["BTC/USDT"], "2h30"), {}, "interval '2h30' must be one of Binance's: 1s 1m"),
                              ((["BTC"], "1h"), {}, "symbol 'BTC' must be BASE/QUOTE"),
                              ((["BTC/USDT", "btc/usdt"], "1h"), {}, "BTC/USDT is given twice: give each symbol once"),
                              (([], "1h"), {}, "give one or more symbols"),
                              ((["BTC/USDT"], "1h"), {"end": "2025-01-02", "follow": True}, "give an end, or follow"),
                              ((["BTC/USDT"], "1h"), {"start": "soon"}, "time 'soon' must be ISO-8601")]:
        with pytest.raises(paper.PaperError, match=re.escape(why)):
            paper.kline_steps(client, *args, **kwargs)
    assert exchange.requests == []


def test_the_symbols_trading_rules_from_exchange_info(db, exchange):
    client = paper.Exchange(exchange.url)
    rules = client.symbol_rules(["BTC/USDT", "ETH/USDT"])
    assert rules == {"BTC/USDT": {"tick_size": Decimal("0.01"), "step_size": Decimal("0.00001"),
                                  "min_qty": Decimal("0.00001"), "min_notional": Decimal("5")},
                     "ETH/USDT": {"tick_size": Decimal("0.01"), "step_size": Decimal("0.00001"),
                                  "min_qty": Decimal("0.00001"), "min_notional": Decimal("10")}}  # MIN_NOTIONAL's
    assert str(rules["BTC/USDT"]["tick_size"]) == "0.01000000"  # the exchange's own string, exactly
    with paper.Ledger(db, create=True) as ledger:  # as the ledger keeps them
        assert ledger.set_symbol("ETH/USDT", **rules["ETH/USDT"]) == rules["ETH/USDT"]
    assert exchange.requests[-1][:2] == ("exchangeInfo", {"symbols": '["BTCUSDT","ETHUSDT"]'})
    with pytest.raises(paper.PaperError, match=re.escape("exchange refused BTC/XXX, ETH/USDT: -1121 Invalid symbol.")):
        client.symbol_rules(["BTC/XXX", "ETH/USDT"])
    with pytest.raises(paper.PaperError, match=re.escape("the exchange's BTCUSDT is BTC/USDT, not BT/CUSDT")):
        client.symbol_rules(["BT/CUSDT"])
    btc = {"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT"}
    exchange.faults = [("exchangeInfo", "shape", {"symbols": [btc | {"filters": [{"filterType": "PRICE_FILTER",
                                                                                   "tickSize": 0.01}]}]}),
                       ("exchangeInfo", "shape", {"symbols": [btc | {"filters": [{"filterType": "PRICE_FILTER",
                                                                                   "tickSize": "0.00"}]}]})]
    with pytest.raises(paper.PaperError, match=r"exchangeInfo\?symbols=.* answered, but not with exchangeInfo .*"
                                               r"tick_size must be a decimal string"):
        client.symbol_rules(["BTC/USDT"])
    assert client.symbol_rules(["BTC/USDT"]) == {"BTC/USDT": dict.fromkeys(paper.SYMBOL_RULES)}  # 0: no such rule


@pytest.mark.parametrize("given, stored", [
    ("60012.34000000", "60012.34"), ("60012.30000000", "60012.30"), ("60012.00000000", "60012.00"),
    ("0.00012000", "0.00012"), ("0.00000001", "0.00000001"), ("1000000", "1000000.00"), ("100000000", "100000000.00"),
    ("5", "5.00"), ("5.1", "5.10"), ("1.000000", "1.00"), ("12.345000000", "12.345"), ("7.00000000000", "7.00"),
])
def test_the_exchanges_prices_in_papers_form(given, stored):
    assert paper.price_text(given) == stored


@pytest.mark.parametrize("interval, opened, after", [
    ("1m", "2025-01-01T00:04:00", "2025-01-01T00:05:00"),
    ("1w", "2024-12-30T00:00:00", "2025-01-06T00:00:00"),  # Binance's weeks open on Monday
    ("1M", "2024-12-01T00:00:00", "2025-01-01T00:00:00"),
    ("1M", "2025-01-01T00:00:00", "2025-02-01T00:00:00"),
    ("1M", "2024-02-01T00:00:00", "2024-03-01T00:00:00"),  # a leap year's February
])
def test_a_kline_closes_as_the_next_opens(interval, opened, after):
    opened, after = (paper.time_us(paper.to_time(text)) // 1000 for text in (opened, after))
    assert paper.next_open(opened, interval) == after
    assert paper.closed_before(after, interval) >= opened > paper.closed_before(after - 1, interval)
    assert paper.kline_open(opened, interval) == paper.kline_open(after - 1, interval) == opened  # as the fake's
    assert kline_open(interval, opened) == kline_open(interval, after - 1) == opened


@pytest.mark.parametrize("argv, why", [
    (["BTC/USDT", "--interval", "2h30"], "interval '2h30' must be one of Binance's: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h"
                                         " 12h 1d 3d 1w 1M"),
    (["BTC/USDT", "ETH/USDT", "btc/usdt", "--interval", "1h"], "BTC/USDT is given twice"),
    (["BTC/USDT", "--interval", "1h", "--start", "2025-02-01", "--end", "2025-01-01"],
     "--end 2025-01-01T00:00:00.000000Z is not after --start 2025-02-01T00:00:00.000000Z"),
    (["BTC/USDT", "--interval", "1h", "--end", "2025-01-01", "--follow"], "--follow goes on with no end"),
    (["BTC/USDT", "--interval", "1h", "--start", "yesterday"], "time 'yesterday' must be ISO-8601"),
    (["BTC/USDT", "--interval", "1h", "--base-url", "ftp://example.com"], "base URL 'ftp://example.com' must be"
                                                                          " http:// or https:// and a host"),
    (["BTC/USDT", "--interval", "1h", "--base-url", "http://127.0.0.1:port"], "base URL 'http://127.0.0.1:port'"),
    (["BTC/USDT", "--interval", "1h", "--base-url", "https://example.com/api?x=1"], "base URL"),
])
def test_fetch_usage_errors_ask_nothing_of_the_exchange(run, acct, db, exchange, argv, why):
    assert why in refused(fetch(run, exchange, *argv) if "--base-url" not in argv else run("fetch", *argv), code=2)
    assert exchange.requests == []


def test_a_bad_paper_market_url_is_a_usage_error_and_a_good_one_is_used(run, acct, db, exchange, monkeypatch):
    monkeypatch.setenv("PAPER_MARKET_URL", "data-api.binance.vision")
    assert "PAPER_MARKET_URL: base URL 'data-api.binance.vision' must be http:// or https://" in refused(
        run("fetch", "BTC/USDT", "--interval", "1m"), code=2)
    monkeypatch.setenv("PAPER_MARKET_URL", exchange.url + "/")
    assert ok(run("fetch", "BTC/USDT", "--interval", "1m", "--start", "2025-01-01")) == SUMMARY_5


def test_a_wrong_base_url_is_named_with_what_it_answered(run, acct, db, exchange):
    code, out, err = run("fetch", "BTC/USDT", "--interval", "1m", "--start", "2025-01-01", "--base-url",
                         exchange.url + "/v9")
    assert (code, out, err) == (1, "", f"paper: error: {exchange.url}/v9/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22"
                                       f"%5D: HTTP 404 Not Found, not an answer of Binance's API: is {exchange.url}/v9"
                                       " its address?\n")  # the first request: is each symbol listed?


def test_https_certificates_are_checked_and_proxies_honoured(run, acct, db, exchange, monkeypatch, tmp_path):
    certificate = tmp_path / "self-signed.pem"
    certificate.write_text(SELF_SIGNED)
    with FakeBinance(lambda: exchange.timeline.now, certificate=str(certificate)) as tls:
        assert refused(run("fetch", "BTC/USDT", "--interval", "1m", "--base-url", tls.url)) == (
            f"paper: error: {tls.host} shows no valid certificate (self-signed certificate): paper never turns the"
            " check off\n")
    # the fake exchange as the proxy (it is asked for the whole URL), in a process of its own: urllib reads the
    # proxy variables once a process
    result = cli("fetch", "BTC/USDT", "--interval", "1m", "--start", "2025-01-01", "--base-url",
                 "http://binance.invalid", "--db", db, env={"http_proxy": exchange.url, "no_proxy": ""})
    assert (result.returncode, result.stdout, result.stderr) == (0, SUMMARY_5, "")


def test_the_market_data_from_python(db, exchange):
    with paper.Ledger(db, create=True) as ledger:
        account = ledger.create_account(balance="0")
        ledger.deposit(account.id, "2", currency="BTC")
        order = ledger.place_order(account.id, "sell", "BTC/USDT", "2", "103")
        summary = ledger.fetch(["BTC/USDT"], "1m", start="2025-01-01", base_url=exchange.url)
        assert [(fill.order_id, fill.price, fill.qty) for fill in summary["fills"]] == [(order.id, Decimal("103"),
                                                                                          Decimal("2"))]
        assert ledger.account(account.id).balances["USDT"].available == Decimal("205.794")  # 206 less 0.206 fee
        assert ledger.fetch(iter(["btc/usdt"]), "1m", base_url=exchange.url)["recorded"] == 0  # after the newest
        with pytest.raises(paper.PaperError, match=r"^exchange refused BTC/XXX: -1121 Invalid symbol\.$"):
            ledger.fetch("BTC/XXX", "1m", base_url=exchange.url)  # one symbol may be given alone


def test_follow_in_a_real_process_with_one_second_bars_until_ctrl_c(tmp_path, monkeypatch):
    """The server's clock is the real one: a bar closes every second. Ctrl-C once one was recorded after the
    backfill."""
    monkeypatch.delenv("http_proxy", raising=False)
    listed = time.time_ns() // 10**9 * 1000 - 5000
    db = str(tmp_path / "p.db")
    paper.Ledger(db, create=True).close()
    with FakeBinance(lambda: time.time_ns() // 10**6, listed=listed) as fake:
        process = subprocess.Popen([*PAPER_RUN, "fetch", "BTC/USDT", "--interval", "1s", "--follow",
                                    "--base-url", fake.url, "--db", db], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        first = None
        for _ in range(600):  # until the backfill and a bar more are recorded (at most a minute)
            count = query(db, "SELECT count(*) FROM prices")[0][0]
            first = first or count
            if first and count > first:
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    times = [row[0] for row in query(db, "SELECT time FROM prices ORDER BY id")]
    assert process.returncode == 130
    assert err == "paper: error: interrupted: what is summed up above is recorded, and the same command goes on from" \
                  " there\n"
    assert out == f"recorded {len(times)} prices; 0 fills, 0 cancelled; BTC/USDT {len(times)} bars," \
                  f" {times[0][:19].replace('T', ' ')} to {times[-1][:19].replace('T', ' ')}\n"
    assert len(times) > first and times[0] == paper.epoch_time(listed)
    assert times == [paper.epoch_time(listed + 1000 * i) for i in range(len(times))]  # no gap, no duplicate


def test_ctrl_c_ends_a_long_wait_at_once_with_the_summary(tmp_path, monkeypatch):
    monkeypatch.delenv("http_proxy", raising=False)
    db = str(tmp_path / "p.db")
    paper.Ledger(db, create=True).close()
    with FakeBinance(LISTED + 5 * 60_000 + 30_000) as fake:
        fake.faults = [("klines", "429", 3600)]
        process = subprocess.Popen([*PAPER_RUN, "fetch", "BTC/USDT", "--interval", "1m", "--start",
                                    "2025-01-01", "--base-url", fake.url, "--db", db], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        line = process.stderr.readline()  # it waits an hour, as the exchange asks
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert line == f"paper: {fake.host} says too many requests (HTTP 429): waiting 3,600 s as it asks, then asking" \
                   " again\n"
    assert (process.returncode, out) == (130, "recorded 0 prices; 0 fills, 0 cancelled; no bar of BTC/USDT recorded"
                                              " before the interrupt\n")
    assert err == "paper: error: interrupted: what is summed up above is recorded, and the same command goes on from" \
                  " there\n"


def test_symbol_fetch_records_the_exchanges_rules(run, db, exchange):
    ok(run("init"))
    assert ok(run("symbol", "BTC/USDT", "ETH/USDT", "--fetch", "--base-url", exchange.url)) == (
        "BTC/USDT: tick size 0.01, step size 0.00001, min qty 0.00001, min notional 5.00\n"
        "ETH/USDT: tick size 0.01, step size 0.00001, min qty 0.00001, min notional 10.00\n")
    assert query(db, "SELECT symbol, tick_size, step_size, min_qty, min_notional FROM symbols ORDER BY symbol") == [
        ("BTC/USDT", "0.01", "0.00001", "0.00001", "5.00"), ("ETH/USDT", "0.01", "0.00001", "0.00001", "10.00")]
    assert "exchange refused" in refused(run("symbol", "BTC/XXX", "--fetch", "--base-url", exchange.url))
    ok(run("symbol", "BTC/USDT", "--tick-size", "0.1"))  # one rule changed by hand, the others kept
    assert ok(run("symbol", "BTC/USDT")) == "BTC/USDT: tick size 0.10, step size 0.00001, min qty 0.00001, min" \
                                           " notional 5.00\n"


RECORDER_LIVE = '''
def on_bar(ctx, bar):
    ctx.state.setdefault("seen", []).append(f"{bar.symbol} {bar.time[11:19]} {bar.close}")
'''


def test_run_fetch_hands_the_strategy_each_bar_as_it_closes(tmp_path, monkeypatch):
    """A real process and the real clock: a one-second bar closes every second. paper has BTC/USDT up to two
    seconds ago; the run goes on from there, bar by bar, with no gap and none twice, until Ctrl-C."""
    monkeypatch.delenv("http_proxy", raising=False)
    listed = time.time_ns() // 10**9 * 1000 - 5000
    db, strategy = str(tmp_path / "p.db"), tmp_path / "live.py"
    strategy.write_text(RECORDER_LIVE)
    acct = cli("init", "--db", db).stdout.strip()
    cli("tick", "--symbol", "BTC/USDT", "--price", "100", "--time", str(listed // 1000 + 2), "--db", db)
    with FakeBinance(lambda: time.time_ns() // 10**6, listed=listed) as fake:
        process = subprocess.Popen([*PAPER_RUN, "run", str(strategy), "--account-id", acct, "--fetch",
                                    "BTC/USDT", "--interval", "1s", "--base-url", fake.url, "--db", db],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(600):  # until the strategy saw three bars (at most a minute)
            if query(db, "SELECT count(*) FROM strategy_runs WHERE bars >= 3") == [(1,)]:
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err
    [(state,)] = query(db, "SELECT state FROM strategy_runs")
    seen = [line.split()[1] for line in json.loads(state)["seen"]]  # each bar of the fake: second s of its minute
    first = listed // 1000 + 3
    assert seen == [time.strftime("%H:%M:%S", time.gmtime(first + i)) for i in range(len(seen))] and len(seen) >= 3


def test_a_price_recorded_during_a_fetch_is_a_gap_the_message_names(db, exchange):
    """Another process records a later BTC/USDT price after the fetch's first page: the fetch cannot record
    the bars before it (time never goes back), and says so, with what to do, instead of promising to go on."""
    exchange.timeline.now = LISTED + 2500 * 60_000 + 30_000  # 2,500 closed bars: 3 pages

    def meanwhile(results):
        if len(results) == 1000 and results[0]["time"].startswith("2025-01-01T00:00"):
            with paper.Ledger(db) as other:
                other.tick("BTC/USDT", "5", time="2025-01-03")
    with paper.Ledger(db, create=True) as ledger, pytest.raises(paper.PaperError) as refusal:
        ledger.fetch(["BTC/USDT"], "1m", start="2025-01-01", base_url=exchange.url, each=meanwhile)
    assert str(refusal.value) == (
        "the exchange's BTC/USDT bar at 2025-01-01T16:40:00.000000Z: BTC/USDT has a price at"
        " 2025-01-03T00:00:00.000000Z: time never goes back, so 2025-01-01T16:40:00.000000Z is refused; recorded"
        " before it: BTC/USDT 1,000 bars, 2025-01-01 00:00:00 to 2025-01-01 16:39:00; the same command goes on after"
        " 2025-01-03T00:00:00.000000Z, and the bars before it are not recorded (time never goes back); if that price"
        " was a mistake, delete_prices('BTC/USDT', '2025-01-03T00:00:00.000000Z') removes it first")  # the API's
    assert query(db, "SELECT count(*) FROM prices") == [(1001,)]


def test_an_exchange_clock_a_day_ahead_is_named(run, acct, exchange, monkeypatch):
    monkeypatch.setattr(paper.Exchange, "clock", lambda client: exchange.timeline.now - 30 * 3_600_000)
    assert refused(fetch(run, exchange, "BTC/USDT", "--interval", "1m")) == (
        "paper: error: the exchange's clock (2025-01-01T00:05:30.000000Z) is 30.0 hours ahead of this machine's"
        " (2024-12-30T18:05:30.000000Z): paper takes no price more than 24 hours after this machine's clock; set"
        " its clock right\n")


def test_fetching_a_symbol_at_another_interval_warns(run, acct, db, exchange):
    ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m", "--start", "2025-01-01", "--end", "2025-01-01T00:02"))
    code, out, err = fetch(run, exchange, "BTC/USDT", "--interval", "3m")
    assert code == 0 and err == ("paper: BTC/USDT's newest two prices are 1m apart, these bars 3m: a symbol's bars of"
                                 " two lengths overlap or leave gaps (one interval a symbol keeps them apart)\n")
    assert ok(fetch(run, exchange, "BTC/USDT", "--interval", "1m")).endswith("2025-01-01 00:04:00\n")  # no warning
    code, out, err = fetch(run, exchange, "BTC/USDT", "--interval", "1M")  # a month has no one length: 28 to 31 days
    assert code == 0 and err.startswith("paper: BTC/USDT's newest two prices are 1m apart, these bars 1M: ")


def test_a_symbol_the_exchange_splits_otherwise_is_refused(run, acct, db, exchange):
    assert "BTCU/SDT" in refused(fetch(run, exchange, "BTCU/SDT", "--interval", "1m"))
    assert query(db, "SELECT count(*) FROM prices") == [(0,)]


def test_symbol_fetch_and_run_fetch_say_why_they_wait(run, acct, db, exchange, tmp_path):
    """As fetch does: each retry a line on stderr, so that a user sees why nothing happens for a while."""
    retry = (f"paper: {exchange.host}: HTTP 503 Service Unavailable (-1008 Server is currently overloaded with other"
             " requests. Please try again in a few minutes.); trying again in 5 s\n")
    exchange.faults = [("exchangeInfo", "503")]
    code, out, err = run("symbol", "BTC/USDT", "--fetch", "--base-url", exchange.url)
    assert (code, err) == (0, retry) and out.startswith("BTC/USDT: tick size 0.01")
    ok(run("tick", "--symbol", "BTC/USDT", "--price", "100", "--time", "2025-01-01"))  # the run goes on after it
    exchange.faults = [("exchangeInfo", "503"), ("klines", "418")]  # the run ends at the ban: no Ctrl-C needed
    code, out, err = run("run", strategy_file(tmp_path, RECORDER_LIVE), "--account-id", acct, "--fetch", "BTC/USDT",
                         "--interval", "1m", "--base-url", exchange.url)
    assert (code, out) == (1, "")
    assert err == retry + (f"paper: error: {exchange.host} has banned this IP address for 120 s (HTTP 418) after too"
                           " many requests: wait that long, then run the same command\n")
    assert exchange.timeline.slept == [5, 5]


@pytest.mark.parametrize("argv", [["symbol", "BTC/USDT", "btc/usdt", "--fetch"],
                                  ["run", "STRATEGY", "--account-id", "ACCOUNT", "--fetch", "BTC/USDT", "btc/usdt",
                                   "--interval", "1m"]])
def test_symbol_fetch_and_run_fetch_refuse_usage_as_fetch_does(run, acct, db, exchange, monkeypatch, tmp_path, argv):
    argv = [strategy_file(tmp_path, RECORDER_LIVE) if arg == "STRATEGY" else acct if arg == "ACCOUNT" else arg
            for arg in argv]
    assert refused(run(*argv, "--base-url", exchange.url), code=2).endswith(": error: BTC/USDT is given twice\n")
    unique = [arg for arg in argv if arg != "btc/usdt"]
    monkeypatch.setenv("PAPER_MARKET_URL", "data-api.binance.vision")
    assert refused(run(*unique), code=2).endswith(": error: PAPER_MARKET_URL: base URL 'data-api.binance.vision' must"
                                                  " be http:// or https:// and a host, like"
                                                  " https://data-api.binance.vision\n")
    assert exchange.requests == []


def test_an_https_address_of_a_server_without_tls_fails_at_once_saying_so(run, acct, db, exchange):
    """A TLS handshake that fails fails the same way again: no retries, and the message names TLS."""
    https = exchange.url.replace("http://", "https://")
    err = refused(run("fetch", "BTC/USDT", "--interval", "1m", "--base-url", https))
    assert re.fullmatch(rf"paper: error: {exchange.host} does not speak TLS \([A-Z_]+\), which an https:// address"
                        rf" asks for: is it {re.escape(exchange.url)}\?\n", err), err
    assert exchange.timeline.slept == []


def test_an_https_answer_is_read_whole(run, acct, db, exchange, monkeypatch, tmp_path):
    """The bounded reader (see the test below) over TLS: a server whose certificate is trusted answers in full."""
    certificate = tmp_path / "trusted.pem"
    certificate.write_text(SELF_SIGNED)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # OpenSSL's trusted certificates: this one
    with FakeBinance(lambda: exchange.timeline.now, certificate=str(certificate)) as tls:
        assert ok(run("fetch", "BTC/USDT", "--interval", "1m", "--start", "2025-01-01", "--base-url", tls.url)) == \
            SUMMARY_5


def closed_port():
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


@pytest.mark.parametrize("variable, scheme", [("http_proxy", "http"), ("HTTPS_PROXY", "https")])
def test_a_proxy_that_cannot_be_reached_is_named_not_the_exchange(run, acct, db, exchange, monkeypatch, variable,
                                                                  scheme):
    port = closed_port()
    monkeypatch.setenv(variable, f"http://user:secret@127.0.0.1:{port}")  # its password is never shown
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setenv("NO_PROXY", "")
    code, out, err = run("fetch", "BTC/USDT", "--interval", "1m", "--base-url", f"{scheme}://binance.invalid")
    why = f"cannot reach the proxy 127.0.0.1:{port} ({variable}) on the way to binance.invalid: Connection refused"
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"paper: {why}; trying again in {wait} s" for wait in (5, 10, 20, 40)] + [
        f"paper: error: {why} (5 tries)"]


class Trickle:
    """An HTTP server on 127.0.0.1 that answers each request a byte every 20 ms, for 5 s at most: in its
    headers (a header line that never ends) or in its body (of a million bytes, as its Content-Length says)."""

    def __init__(self, where):
        self.where, self.stop = where, threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.02)  # its accept sees the stop within 20 ms
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.threads = [threading.Thread(target=self.accept)]

    def __enter__(self):
        self.threads[0].start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()
        self.listener.close()

    def accept(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(5)
            thread = threading.Thread(target=self.answer, args=(connection,))
            self.threads.append(thread)
            thread.start()

    def answer(self, connection):
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096) or b"\r\n\r\n"
            start = b"HTTP/1.1 200 OK\r\nX-Padding: " if self.where == "headers" else \
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n["
            try:
                connection.sendall(start)
                for _ in range(250):
                    if self.stop.wait(0.02):
                        return
                    connection.sendall(b"a" if self.where == "headers" else b" ")
            except OSError:  # paper gave up and closed the connection
                return


@pytest.mark.parametrize("where", ["headers", "body"])
def test_an_answer_trickling_in_is_given_up_at_the_timeout(run, acct, db, exchange, monkeypatch, where):
    """TIMEOUT bounds the whole answer, not each wait for a byte: a byte every 20 ms does not hold paper."""
    monkeypatch.setattr(paper, "TIMEOUT", 0.2)
    monkeypatch.setattr(paper, "TRIES", 2)
    with Trickle(where) as server:
        code, out, err = run("fetch", "BTC/USDT", "--interval", "1m", "--base-url", f"http://{server.host}")
    assert (code, out) == (1, "")
    assert err == (f"paper: {server.host} gave no complete answer within 0.2 s; trying again in 5 s\n"
                   f"paper: error: {server.host} gave no complete answer within 0.2 s (2 tries)\n")


@pytest.mark.parametrize("interval, now, start, bars", [
    ("1w", "2025-02-01T00:05:30", "2025-01-01", ["2025-01-06", "2025-01-13", "2025-01-20"]),  # Mondays; not the 27th's:
    ("1w", "2025-02-01T00:05:30", None, ["2024-12-30", "2025-01-06", "2025-01-13", "2025-01-20"]),  # still forming
    ("1M", "2025-04-15T00:05:30", "2025-01-15", ["2025-02-01", "2025-03-01"]),  # the first opening from the start
    ("1M", "2025-04-15T00:05:30", None, ["2025-01-01", "2025-02-01", "2025-03-01"]),  # the listing's month first
])
def test_weekly_bars_open_on_monday_and_monthly_ones_on_the_first(run, acct, db, exchange, interval, now, start,
                                                                    bars):
    exchange.timeline.now = paper.time_us(paper.to_time(now)) // 1000
    ok(fetch(run, exchange, "BTC/USDT", "--interval", interval, *(["--start", start] if start else [])))
    assert query(db, "SELECT time, open, high, low, close FROM prices ORDER BY id") == [
        (f"{day}T00:00:00.000000Z", "100.00", "101.50", "99.75", "100.50") for day in bars]  # minute 0 of a day


@pytest.mark.parametrize("interval, after, first, slept", [
    ("1h", "2025-01-01T00:05:30Z", "2025-01-01T01:00:00", 6870.5),  # it closes at 02:00, 1 h 54 min 30 s away
    ("1w", "2025-01-01T00:05:30Z", "2025-01-06T00:00:00", 12 * 86400 - 330 + 0.5),  # Monday, closed on the 13th
    ("1M", "2025-01-01T00:05:30Z", "2025-02-01T00:00:00", 59 * 86400 - 330 + 0.5),  # closed on 1 March
    ("1m", "2025-01-01T00:04:30Z", "2025-01-01T00:05:00", 30.5),  # closed at 00:06, not 00:06:30
])
def test_follow_from_a_time_that_is_no_bars_open_wakes_when_the_first_bar_after_it_closes(exchange, interval, after,
                                                                                           first, slept):
    """run --fetch goes on from now for a symbol without a price: the first bar to hand on is the first that
    opens after it, and it is asked for once that bar has closed, not up to a bar's length later."""
    client = paper.Exchange(exchange.url)
    steps = paper.kline_steps(client, ["BTC/USDT"], interval, follow=True, after={"BTC/USDT": after})
    step = next(steps)
    steps.close()
    assert [bar[:2] for bar in step] == [("BTC/USDT", f"{first}.000000Z")]
    assert exchange.timeline.slept == [slept]


# --- The command line: usage, messages, CSV, output at 80 columns ---

def test_bad_status_prices_are_usage_errors(run, acct):
    refused(run("status", "--price", "ETH=1"), code=2)
    refused(run("status", "--account-id", acct, "--price", "ETH"), code=2)
    refused(run("status", "--account-id", acct, "--price", "ETH=1", "--price", "eth=2"), code=2)
    refused(run("status", "--account-id", acct, "--price", "ETH=-1"), code=2)


def test_a_price_given_for_a_currency_not_held_is_noted(run, acct):
    code, out, err = run("status", "--account-id", acct, "--price", "SOL=1")
    assert code == 0 and err == (f"paper: note: a price was given for SOL, which account {acct} does not hold: it"
                                 " values nothing\n")


@pytest.mark.parametrize("argv", [["close", "--account-id", "ACCT"], ["status", "--account-id", "ACCT",
                                                                      "--price", "BTC=1"]])
def test_close_and_a_priced_status_warn_nothing_under_python_w_error(tmp_path, argv):
    db = str(tmp_path / "p.db")
    acct = cli("init", "--db", db).stdout.strip()
    cli("deposit", "--account-id", acct, "--amount", "1", "--currency", "BTC", "--db", db)  # the price values it
    result = subprocess.run([sys.executable, "-W", "error", PAPER, *[acct if a == "ACCT" else a for a in argv],
                             "--db", db], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")


def test_csv_cells_that_a_spreadsheet_would_run_are_text(run, acct):
    for description, ref in [("=HYPERLINK(\"http://x\")", "+SUM(A1)"), ("@x", "-1+2"), ("-5 apples", "r")]:
        ok(run("deposit", "--account-id", acct, "--amount", "1", "--description", description, f"--ref={ref}"))
    ok(run("withdraw", "--account-id", acct, "--amount", "2.945"))
    lines = ok(run("history", "--account-id", acct, "--csv")).splitlines()
    assert lines[1].split(",")[4:6] == ["-2.945", "5000.055"]  # amounts stay numbers
    assert lines[2].endswith(",'-5 apples,r,")
    assert lines[3].endswith(",'@x,'-1+2,")
    assert lines[4].endswith(',"\'=HYPERLINK(""http://x"")",\'+SUM(A1),')


def test_csv_numbers_stay_numbers_whatever_their_form():
    # a drawdown such as -0.000640 keeps its trailing zero and is still a number, not text
    rows = [{"a": "-0.000640", "b": "-12", "c": "-1.5e3", "d": "-"}]
    assert paper.csv_text(rows, ["a", "b", "c", "d"]).splitlines()[1] == "-0.000640,-12,'-1.5e3,'-"


def test_tables_line_amounts_up_on_the_decimal_point(run, acct):
    ok(run("withdraw", "--account-id", acct, "--amount", "2.945"))
    ok(run("order", "--account-id", acct, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1", "--limit-price", "3"))
    header, *body = ok(run("history", "--account-id", acct)).splitlines()
    assert [line[header.index("currency"):header.index("description")] for line in body] == [
        "USDT        -2.945       4997.055  ",
        "USDT      5000.00        5000.00   "]
    header, row = ok(run("orders", "--account-id", acct)).splitlines()
    assert header.index("reserved") + len("reserved") == row.index("3.003") + len("3.003")  # right-aligned
    assert row[header.index("currency"):].startswith("USDT ")


def test_status_orders_and_history_fit_an_80_column_terminal(tmp_path):
    import fcntl
    import pty
    import struct
    import termios
    db = str(tmp_path / "p.db")
    acct = cli("init", "--name", "a long name " * 14, "--db", db).stdout.strip()  # 168 characters: cut with …
    cli("deposit", "--account-id", acct, "--amount", "11427.545201", "--description", "a long description " * 4,
        "--db", db)
    cli("order", "--account-id", acct, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "0.01", "--limit-price",
        "65000", "--expires", "2026-12-31", "--db", db)

    def on_terminal(*argv):
        main, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        process = subprocess.Popen([*PAPER_RUN, *argv, "--db", db], stdout=child, stderr=child)
        os.close(child)
        output = b""
        with contextlib.suppress(OSError):  # the end of the pseudo-terminal
            while chunk := os.read(main, 65536):
                output += chunk
        process.wait()
        os.close(main)
        return output.decode().replace("\r\n", "\n")
    for argv in (["status", "--account-id", acct], ["orders", "--account-id", acct], ["history", "--account-id", acct]):
        shown = on_terminal(*argv)
        assert max(map(len, shown.splitlines())) <= 80, shown
        assert "11427.545201" in shown or argv[0] == "orders"  # amounts whole, never wrapped
    assert "a long description" in cli("history", "--account-id", acct, "--db", db).stdout  # piped: every column
    assert max(map(len, on_terminal("orders", "--account-id", acct, "--wide").splitlines())) > 80


def test_csv_with_nothing_in_it_is_its_header(run, acct):
    assert ok(run("equity", "--account-id", acct, "--csv")) == "time,equity,drawdown\n"
    assert ok(run("prices", "--csv")) == "symbol,time,open,high,low,close\n"


def test_a_narrow_terminal_never_cuts_a_number():
    rows = [{"id": 1, "created_at": "2026-11-25T14:36:12.192948Z", "type": "DEPOSIT", "currency": "USDT",
             "amount": "123457.358024679135", "balance_after": "123457.358024679135", "description": "x" * 50}]
    shown = paper.table(rows, paper.HISTORY, 60, paper.HISTORY_NARROW)
    assert max(map(len, shown.splitlines())) <= 60 and shown.count("123457.358024679135") == 2


# --- Processes: the script, pipes, concurrent writers, Ctrl-C, closed streams ---

def test_a_new_user_in_an_empty_folder(tmp_path):
    init = cli("init", "--balance", "5000", cwd=tmp_path, script=True)
    assert (init.returncode, init.stderr) == (0, "")
    acct = init.stdout.strip()
    assert UUID.fullmatch(acct)
    status = cli("status", "--account-id", acct, cwd=tmp_path, script=True)
    assert status.returncode == 0 and re.search(r"^USDT +5000\.00 +0\.00 +5000\.00$", status.stdout, re.M)
    usage = cli("deposit", "--account-id", acct, "--amount", "abc", cwd=tmp_path, script=True)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr and usage.stdout == ""
    missing = cli("withdraw", "--account-id", acct, "--amount", "1", "--db", "nope.db", cwd=tmp_path, script=True)
    assert missing.returncode == 1 and missing.stderr.startswith("paper: error: no database at nope.db")


def test_python_m_paper_from_another_folder(tmp_path):
    """The README's way for a bot calling paper in a loop: `python -m paper`, paper's folder on PYTHONPATH."""
    def module(*argv):
        return subprocess.run([sys.executable, "-m", "paper", *argv, "--db", "p.db"], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(HERE)}, timeout=60)
    acct = module("init").stdout.strip()
    assert UUID.fullmatch(acct)
    deposit = module("deposit", "--account-id", acct, "--amount", "0.25", "--json")
    assert deposit.returncode == 0 and json.loads(deposit.stdout)["balance_after"] == "5000.25"
    status = module("status", "--account-id", acct)
    assert re.search(r"^USDT +5000\.25 +0\.00 +5000\.25$", status.stdout, re.M), status
    usage = module("deposit", "--account-id", acct, "--amount", "-1")
    assert usage.returncode == 2 and usage.stdout == "" and "Traceback" not in usage.stderr


def test_history_into_a_closed_pipe_is_quiet(tmp_path):
    db = str(tmp_path / "p.db")
    with paper.Ledger(db, create=True) as ledger:
        acct = ledger.create_account().id
        for _ in range(3000):
            ledger.deposit(acct, "1")
    shell = subprocess.run(f'"{sys.executable}" "{PAPER}" history --account-id {acct} --db "{db}" | head -1',
                           shell=True, capture_output=True, text=True, timeout=60)
    assert shell.stdout.split() == ["id", "created", "at", "type", "currency", "amount", "balance", "after", "description"]
    assert shell.stderr == ""


def test_concurrent_deposits_lose_nothing(tmp_path):
    db = str(tmp_path / "p.db")
    acct = cli("init", "--balance", "0", "--db", db).stdout.strip()
    procs = [subprocess.Popen([sys.executable, "-c", f"""
import sys; sys.path.insert(0, {str(HERE)!r}); import paper
for i in range(25):
    assert paper.main(["deposit", "--account-id", {acct!r}, "--amount", "0.01", "--db", {db!r}]) == 0
"""], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert errors == [""] * 6 and all(p.returncode == 0 for p in procs)
    assert balance(db, acct) == (Decimal("1.50"), 0)
    assert cli("verify", "--db", db).stdout == "OK\n"


INTERRUPTED = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import paper
name, when = sys.argv[2], sys.argv[3]
real = getattr(paper.Ledger, name)

def interrupted(self, *args, **kwargs):  # Ctrl-C just before or just after Ledger.<name>
    if when == "before":
        os.kill(os.getpid(), signal.SIGINT)
    result = real(self, *args, **kwargs)
    if when == "after":
        os.kill(os.getpid(), signal.SIGINT)
    return result

setattr(paper.Ledger, name, interrupted)
sys.exit(paper.main(sys.argv[4:]))
"""


def interrupted(name, when, *argv):
    return subprocess.run([sys.executable, "-c", INTERRUPTED, str(HERE), name, when, *argv], capture_output=True,
                          text=True, timeout=60)


def test_ctrl_c_in_a_change_records_nothing_and_says_so(acct, db):
    before = dump(db)
    result = interrupted("_move", "before", "deposit", "--account-id", acct, "--amount", "1", "--db", db)
    assert (result.returncode, result.stdout, result.stderr) == (130, "", "paper: error: interrupted; nothing was"
                                                                           " recorded\n")
    assert dump(db) == before


def test_ctrl_c_after_the_commit_waits_for_the_result(run, acct, db, tmp_path):
    path = csv_file(tmp_path, "DEPOSIT,1,,,", "DEPOSIT,2,,,")
    result = interrupted("import_rows", "after", "import", "--account-id", acct, path, "--db", db)
    assert (result.returncode, result.stdout) == (130, "recorded 2 transactions\n")
    assert result.stderr == "paper: error: interrupted after the command was done: its result is above\n"
    assert balance(db, acct) == (Decimal("5003"), 0)
    assert ok(run("import", "--account-id", acct, path)) == "recorded 0 transactions, skipped 2 already recorded\n"


def test_ctrl_c_at_any_moment_of_a_run_gives_no_traceback(tmp_path):
    """From paper.py's first line on; earlier, Python is still starting and its own handler applies."""
    db = str(tmp_path / "p.db")
    acct = cli("init", "--db", db).stdout.strip()
    codes, argv = set(), [sys.executable, "-S", PAPER, "deposit", "--account-id", acct, "--amount", "1", "--db", db]
    for i in range(200):  # moments spread over a whole run (measured again each round: a loaded machine varies),
        if i % 20 == 0:  # until one landed in paper's own handler
            if 130 in codes:
                break
            start = time.monotonic()
            subprocess.run(argv, capture_output=True)
            whole = time.monotonic() - start
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(whole * (i % 20) / 20)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert not re.search(r'paper\.py", line [1-9]', err), err  # no traceback from paper's own code
        if "paper: error:" in err:
            assert process.returncode == 130 and err.count("\n") == 1, err
        codes.add(process.returncode)
    assert 130 in codes
    assert cli("verify", "--db", db).stdout == "OK\n"


def test_ctrl_c_ignored_by_whoever_started_paper_stays_ignored(tmp_path):
    """nohup, or a shell's `trap '' INT`: Python keeps an inherited SIG_IGN, and so does paper."""
    db = str(tmp_path / "p.db")
    cli("init", "--db", db)
    feed = subprocess.Popen([*PAPER_RUN, "feed", "-", "--symbol", "BTC/USDT", "--db", db], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    feed.stdin.write("time,price\n2026-11-01T00:00:00Z,5\n")
    feed.stdin.flush()
    for _ in range(600):  # until the row is committed (at most a minute)
        if os.path.exists(db) and query(db, "SELECT count(*) FROM prices") == [(1,)]:
            break
        time.sleep(0.1)
    feed.send_signal(signal.SIGINT)  # ignored: the feed goes on
    out, err = feed.communicate("2026-11-01T01:00:00Z,6\n", timeout=60)
    assert (feed.returncode, err) == (0, "") and out.endswith("recorded 2 prices; 0 fills, 0 cancelled\n")
    assert query(db, "SELECT close FROM prices ORDER BY id") == [("5.00",), ("6.00",)]


def closed(stream, *argv):
    """python -m paper ARGV with standard output (stream 1) or standard error (2) closed, as `>&-` closes it."""
    return subprocess.run(["sh", "-c", f'"$@" {stream}>&-', "sh", *PAPER_RUN, *argv], capture_output=True, text=True,
                          timeout=60)


def test_a_closed_standard_output_is_named_before_anything_is_done(tmp_path):
    db = str(tmp_path / "p.db")
    for argv in (["init"], ["status"], ["--help"], ["status", "--account-id", "zz"]):
        result = closed(1, *argv, "--db", db)
        assert (result.returncode, result.stderr) == (1, "paper: error: standard output is closed: nothing was done"
                                                         " (paper writes its results there; >/dev/null discards"
                                                         " them)\n"), argv
    assert not os.path.exists(db)  # init opened no account whose id nobody could see


def test_a_closed_standard_error_keeps_stdout_for_results_and_the_exit_code_says_what_happened(tmp_path):
    db = str(tmp_path / "p.db")
    result = closed(2, "init", "--db", db)
    assert result.returncode == 0 and UUID.fullmatch(result.stdout.strip())
    for argv, code in ((["status", "--account-id", "zz"], 2), (["status", "--account-id", "0000"], 1),
                       (["frobnicate"], 2)):
        result = closed(2, *argv, "--db", db)
        assert (result.returncode, result.stdout) == (code, ""), argv  # no message on stdout, no traceback

"""Benchmark paper.py against minimal standard-library scripts doing the same SQL: `make bench`.

Every process is started as `sys.executable -S`, on both sides. Paired commands run
alternately (A B A B ...), PAIRS times each (default 40, env BENCH_PAIRS); a ratio is the
median of the pairs' ratios, so noise that slows a stretch of the run slows both sides of a
pair. Everything runs on temporary databases.

`python3 bench_paper.py 9 11` runs those rows only (env BENCH_ONLY too); `python3 bench_paper.py issue20`
(`make bench-20`) runs issue 20's: the feed (9), the crossover through the API (11) and paper's backtest
beside backtesting.py (17, 18). The rows of processes that take seconds run min(BENCH_PAIRS, 5) times a side.

Rows 17 and 18 run backtesting.py with the python of a venv of its own (`make bench-venv`: .venv-bench beside
this file, or env BENCH_BT_PYTHON); without it they say so and are skipped. backtesting.py is never a
dependency of paper, its tests or this file, which needs only the standard library.
"""

import csv
import json
import math
import os
import random
import py_compile
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import paper  # noqa: E402

PY = [sys.executable, "-S"]
PAPER = [*PY, str(HERE / "paper.py")]
MODULE = [*PY, "-m", "paper"]  # run with cwd=HERE, from paper's cached bytecode
PAIRS = int(os.environ.get("BENCH_PAIRS", "40"))
BIG = int(os.environ.get("BENCH_BIG", "1000000"))
REPEATS = min(PAIRS, 5)  # runs of each side in the rows of seconds-long processes (9-12, 17, 18)
FOUR = "import argparse, contextlib, io, itertools, math, operator, os, re, sqlite3, time, datetime, decimal\n"  # paper's own imports

STATUS_SQL = """import sqlite3
db = sqlite3.connect({db!r})
print(db.execute("SELECT * FROM balances WHERE account_id = ?", ({account!r},)).fetchall())
print(db.execute("SELECT * FROM transactions WHERE account_id = ? ORDER BY id DESC LIMIT 10", ({account!r},)).fetchall())
"""

DEPOSIT_SQL = """import sqlite3
db = sqlite3.connect({db!r}, isolation_level=None)
db.execute("PRAGMA synchronous=FULL")
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO transactions (account_id, transaction_type, currency, amount, balance_after, description,"
           " created_at) VALUES (?, 'DEPOSIT', 'USDT', '1.00', '1.00', 'Deposit', '2026-11-25T00:00:00.000000Z')",
           ({account!r},))
db.execute("UPDATE balances SET updated_at = '2026-11-25T00:00:00.000000Z' WHERE account_id = ?", ({account!r},))
db.execute("COMMIT")
"""


def run(argv):
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, cwd=HERE)
    return time.perf_counter() - start


def alternate(*commands, pairs=PAIRS):
    """Run the commands in turn, pairs times each: ratio(i, j), command i's median ratio to command j
    pair by pair, and every command's median time in ms."""
    times = [[] for _ in commands]
    for _ in range(pairs):
        for command, spent in zip(commands, times):
            spent.append(run(command))

    def ratio(i, j):
        return statistics.median(a / b for a, b in zip(times[i], times[j]))
    return ratio, " ".join(f"{statistics.median(spent) * 1e3:.1f}" for spent in times)


def script(folder, name, text):
    path = folder / name
    path.write_text(text)
    return [*PY, str(path)]


def new_account(db, balance="5000"):
    with paper.Ledger(str(db), create=True) as ledger:
        return ledger.create_account(balance=balance).id


def fill(db, account, count, chunk=100_000):
    """count deposits of 0.01 through the bulk import, in chunks."""
    with paper.Ledger(str(db)) as ledger:
        for start in range(0, count, chunk):
            ledger.import_rows(account, (("DEPOSIT", "0.01", "USDT", "", "")
                                         for _ in range(min(chunk, count - start))))


def checkpointed_size(db):
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return os.path.getsize(db)


def main(argv=None):
    wanted = chosen(sys.argv[1:] if argv is None else argv)
    rows = []

    def want(number):
        return wanted is None or number in wanted

    def row(what, value, bar=""):
        rows.append((what, value, bar))
        print(f"{what:<72} {value:>16}  {bar}", file=sys.stderr, flush=True)

    folder = Path(tempfile.mkdtemp(prefix="paper-bench-"))
    db = folder / "small.db"
    account = new_account(db)
    py_compile.compile(str(HERE / "paper.py"), doraise=True)  # for `python -m paper`, even if PYTHONDONTWRITEBYTECODE
    compiling = f"compile(open({str(HERE / 'paper.py')!r}).read(), 'paper.py', 'exec')\n"

    if want(1):
        # 1. status as a whole process / a script that does its SQL
        args = ["status", "--account-id", account, "--db", str(db)]
        same = STATUS_SQL.format(db=str(db), account=account)
        ratio, ms = alternate(
            [*PAPER, *args], script(folder, "status4.py", FOUR + same), script(folder, "status.py", same),
            [*MODULE, *args], script(folder, "status4c.py", FOUR + compiling + same))
        row("1a. status --account-id / script with paper's imports + compiling paper.py + the same SELECTs",
            f"{ratio(0, 4):.2f}", "bar <= 1.10")
        row("1b. python -m paper status (from its cached .pyc) / script: paper's imports + the same SELECTs",
            f"{ratio(3, 1):.2f}", "bar <= 1.15")
        row("    status --account-id / the script without compiling (issue 5's bar 1, was <= 1.4)",
            f"{ratio(0, 1):.2f}")
        row("    status --account-id / floor: interpreter + sqlite3 + the SELECTs", f"{ratio(0, 2):.2f}")
        row("    (medians: paper, script, floor, -m paper, script + compile, ms)", ms)

    if want(2):
        # 2. deposit as a whole process / BEGIN IMMEDIATE, INSERT, UPDATE, COMMIT with synchronous=FULL
        args = ["deposit", "--account-id", account, "--amount", "1", "--db", str(db)]
        same = DEPOSIT_SQL.format(db=str(db), account=account)
        ratio, ms = alternate([*PAPER, *args], script(folder, "deposit4.py", FOUR + same),
                              script(folder, "deposit.py", same), [*MODULE, *args],
                              script(folder, "deposit4c.py", FOUR + compiling + same))
        row("2a. deposit / script with paper's imports + compiling paper.py + BEGIN IMMEDIATE, INSERT, UPDATE, COMMIT",
            f"{ratio(0, 4):.2f}", "bar <= 1.10")
        row("2b. python -m paper deposit (from its cached .pyc) / script: paper's imports + the same SQL",
            f"{ratio(3, 1):.2f}", "bar <= 1.15")
        row("    deposit / the script without compiling (issue 5's bar 2, was <= 1.4)", f"{ratio(0, 1):.2f}")
        row("    deposit / floor: interpreter + sqlite3 + the same SQL", f"{ratio(0, 2):.2f}")
        row("    (medians: paper, script, floor, -m paper, script + compile, ms)", ms)

    big = folder / "big.db"  # for rows 3, 6 and 8
    if want(3) or want(6) or want(8):
        big_account = new_account(big, balance="0")
        start = time.perf_counter()
        fill(big, big_account, BIG)
        filled = time.perf_counter() - start

    if want(3):
        # 3. status on an account with BIG transactions / on one with 1
        one = folder / "one.db"
        one_account = new_account(one)
        ratio, ms = alternate([*PAPER, "status", "--account-id", big_account, "--db", str(big)],
                              [*PAPER, "status", "--account-id", one_account, "--db", str(one)])
        row(f"3. status with {BIG:,} transactions / with 1", f"{ratio(0, 1):.2f}", "bar <= 1.1")
        row("   (medians, ms)", ms)

    if want(4):
        # 4. 10,000 deposits through the Python API, each its own commit / the same statements in raw sqlite3
        api_db, raw_db = folder / "api.db", folder / "raw.db"
        api_account, raw_account = new_account(api_db), new_account(raw_db)
        n = 10_000
        with paper.Ledger(str(api_db)) as ledger:
            start = time.perf_counter()
            for _ in range(n):
                ledger.deposit(api_account, "1")
            api = time.perf_counter() - start
        raw = raw_deposits(raw_db, raw_account, n)
        row(f"4. {n:,} deposits through the API / the same statements in raw sqlite3", f"{api / raw:.2f}",
            "bar <= 1.5")
        row("   (API deposits per second)", f"{n / api:,.0f}")

    if want(5):
        # 5. import of 100,000 CSV rows / raw executemany of the same rows
        n = 100_000
        rows_csv = folder / "rows.csv"
        with open(rows_csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["type", "amount", "currency", "description", "ref"])
            writer.writerows([("DEPOSIT", f"{i % 1000 + 1}.{i % 97:02d}", "USDT", "bulk", f"r{i}") if i % 3 else
                              ("WITHDRAWAL", "0.01", "USDT", "", "") for i in range(1, n + 1)])
        imports, raws = [], []
        for k in range(7):
            imp_db, raw_db = folder / f"imp{k}.db", folder / f"rawimp{k}.db"
            imp_account, raw_account = new_account(imp_db), new_account(raw_db)
            imports.append(run([*PAPER, "import", "--account-id", imp_account, str(rows_csv), "--db", str(imp_db)]))
            raws.append(run([*PY, "-c", RAW_IMPORT, str(raw_db), raw_account, str(rows_csv)]))
        slower = statistics.median(a / b for a, b in zip(imports, raws))
        row(f"5. import of {n:,} CSV rows / raw csv + executemany of the same rows", f"{slower:.2f}", "bar <= 2.0")
        row("   (import rows per second, whole process)", f"{n / statistics.median(imports):,.0f}")

    if want(6):
        # 6. verify over BIG transactions
        spent = statistics.median(run([*PAPER, "verify", "--db", str(big)]) for _ in range(3))
        row(f"6. verify over {BIG:,} transactions: seconds", f"{spent:.2f}")
        row("   rows per second", f"{BIG / spent:,.0f}")

    if want(7):
        # 7. 8 concurrent writer processes / 1 writer: deposits per second
        one_rate = writers(folder / "w1.db", 1)
        eight_rate = writers(folder / "w8.db", 8)
        row("7. deposits per second: 1 writer process (each deposit its own commit)", f"{one_rate:,.0f}")
        row("   8 concurrent writer processes, in all", f"{eight_rate:,.0f}")
        row("   8 writers / 1 writer; errors: 0", f"{eight_rate / one_rate:.2f}")

    if want(8):
        # 8. database bytes per transaction
        row(f"8. database bytes per transaction at {BIG:,}", f"{checkpointed_size(big) / BIG:.0f}")
        row("   (building it through the bulk import took, seconds)", f"{filled:.1f}")

    bars = folder / "bars.csv"  # for rows 9 and 10
    if want(9) or want(10):
        write_bars(bars, FEED_BARS)

    if want(9):
        # 9. feed of 100,000 bars with 100 resting orders of 10 accounts that fill along the way, a whole process /
        # raw executemany
        filling = market_db(folder / "filling.db", 10, 10, reached=True)
        feeds, raws, bares, starts, fills = [], [], [], [], 0
        for k in range(REPEATS):
            fed, raw, bare = folder / f"fed{k}.db", folder / f"rawfeed{k}.db", folder / f"barefeed{k}.db"
            for copy in (fed, raw, bare):
                copy.write_bytes(filling.read_bytes())
            feeds.append(run([*PAPER, "feed", str(bars), "--db", str(fed)]))
            raws.append(run([*PY, "-c", RAW_FEED, str(raw), str(bars)]))
            bares.append(run([*PY, "-c", RAW_FEED.replace('synchronous=FULL")', 'synchronous=FULL");'
                              ' db.execute("PRAGMA ignore_check_constraints=ON")'), str(bare), str(bars)]))
            starts.append(run([*PAPER, "-h"]))
            with paper.Ledger(str(fed)) as ledger:
                assert ledger.verify() == [] and len(ledger.prices(limit=FEED_BARS + 1)) == FEED_BARS
            fills = sqlite3.connect(fed).execute("SELECT count(*) FROM trades WHERE order_id IS NOT NULL")
            fills = fills.fetchone()[0]
        spent = statistics.median(feeds)
        row(f"9. feed of {FEED_BARS:,} bars, 100 resting orders of 10 accounts ({fills} fill): bars/s, whole process",
            f"{FEED_BARS / spent:,.0f}", "bar >= 200,000")
        row("   feed / raw csv + executemany of the same rows (whole processes)",
            f"{statistics.median(a / b for a, b in zip(feeds, raws)):.2f}", "bar <= 2.5")
        row("   the floor: raw csv + executemany, CHECKs off as feed has them, whole process: bars/s",
            f"{FEED_BARS / statistics.median(bares):,.0f}")
        row("   (python paper.py -h, whole process: its start and compiling paper.py, ms)",
            f"{1000 * statistics.median(starts):.0f}")

    if want(10):
        # 10. the same bars with 10,000 resting orders that never fill / with none
        resting = market_db(folder / "resting.db", 100, 100, reached=False)
        empty = market_db(folder / "empty.db", 1, 0)
        with_orders, without = [], []
        for k in range(REPEATS):
            for template, times in ((resting, with_orders), (empty, without)):
                copy = folder / f"run{k}.db"
                copy.write_bytes(template.read_bytes())
                times.append(run([*PAPER, "feed", str(bars), "--db", str(copy)]))
                copy.unlink()
        row("10. feed with 10,000 resting orders that never fill / with none",
            f"{statistics.median(a / b for a, b in zip(with_orders, without)):.2f}", "bar <= 1.5")

    walk = folder / "walk.csv"  # for rows 11 and 12
    if want(11) or want(12):
        write_walk(walk, BACKTEST_BARS)

    if want(11):
        # 11. the crossover through the API (tick + trade in one batch) over 100,000 bars / the same loop without
        # paper; then the same strategy as a file, by the backtest command
        spent, floors, rows_alone, skeletons = [], [], [], []
        for _ in range(REPEATS):
            start = time.perf_counter()
            account = api_backtest(str(walk), str(folder / "backtest.db"))
            spent.append(time.perf_counter() - start)
            start = time.perf_counter()
            crosses = no_paper(walk, FAST, SLOW)
            floors.append(time.perf_counter() - start)
            rows_alone.append(price_rows_alone(walk, folder / "rows.db"))
            skeletons.append(skeleton(walk, folder / "skeleton.db"))
        with paper.Ledger(str(folder / "backtest.db")) as ledger:
            fills = len(ledger.db.execute("SELECT id FROM trades").fetchall())
            assert ledger.verify() == [] and len(ledger.prices(limit=BACKTEST_BARS + 1)) == BACKTEST_BARS
        row(f"11. the crossover through the API, {BACKTEST_BARS:,} bars in one batch ({fills} fills): bars/s",
            f"{BACKTEST_BARS / statistics.median(spent):,.0f}", "bar >= 140,000")
        row(f"    the same loop with no paper calls ({crosses} crosses): bars per second",
            f"{BACKTEST_BARS / statistics.median(floors):,.0f}")
        floor = (statistics.median(floors) + statistics.median(rows_alone)) / BACKTEST_BARS
        row("    the floor: that loop + its price rows by raw executemany (CHECKs off): us a bar",
            f"{floor * 1e6:.2f}")
        row("    left at 140,000 bars/s for checking and matching a bar and the trades: us a bar",
            f"{1e6 / 140_000 - floor * 1e6:.2f}")
        row("    a skeleton: the loop, paper's checks of each time and price, the rows in bulk; no trades: bars/s",
            f"{BACKTEST_BARS / statistics.median(skeletons):,.0f}")
        spent, loops = [], []
        for _ in range(REPEATS):
            kept = folder / "command.db"
            if kept.exists():
                kept.unlink()
            spent.append(run([*PAPER, "backtest", str(HERE / "examples" / "sma_cross.py"), "--data", str(walk),
                              "--symbol", "BTC/USDT", "--on-close", "--db", str(kept)]))
            loops.append(timed_loop(walk))
        assert sqlite3.connect(kept).execute("SELECT count(*) FROM trades").fetchone()[0] == fills  # the same fills
        row(f"11b. backtest examples/sma_cross.py --on-close, {BACKTEST_BARS:,} bars: bars per second, whole process",
            f"{BACKTEST_BARS / statistics.median(spent):,.0f}", "report")
        row("     its loop alone (paper.backtest less its stats): bars per second",
            f"{BACKTEST_BARS / statistics.median(loops):,.0f}", "report")

    if want(12):
        # 12. equity, stats, chart and report of that account (one point per bar) as whole processes
        if not want(11):
            account = api_backtest(str(walk), str(folder / "backtest.db"))
        for command in (["equity"], ["equity", "--json"], ["stats"], ["chart", "--output", str(folder / "c.svg")],
                        ["report", "--output", str(folder / "r.html")]):
            spent = statistics.median(run([*PAPER, *command, "--account-id", account, "--db",
                                           str(folder / "backtest.db")]) for _ in range(REPEATS))
            row(f"12. {' '.join(command[:2]).replace(' --output', '')} on {BACKTEST_BARS:,} points: seconds,"
                " whole process", f"{spent:.2f}", "bar <= 1")

    if want(14):
        # 14. a sweep of 16 combinations over a year of hourly bars: --jobs 1 / --jobs 2
        year = folder / "year.csv"
        write_walk(year, 365 * 24)
        sweep = [*PAPER, "backtest", str(HERE / "examples" / "sma_cross.py"), "--data", str(year), "--symbol",
                 "BTC/USDT", "--param", "fast=12:48:12", "--param", "slow=72,120,168,240"]
        ratio, times = alternate([*sweep, "--jobs", "1"], [*sweep, "--jobs", "2"], pairs=3)
        row(f"14. a sweep of 16 backtests of 8,760 bars, --jobs 1 / --jobs 2 ({os.cpu_count()} CPUs; ms: {times})",
            f"{ratio(0, 1):.2f}", "bar >= 1.7 with 2 CPUs")

    if want(15):
        # 15. memory: feed, prices, equity and stats of BIG bars, each a whole process: its peak RSS
        held_db, held_bars = folder / "held.db", folder / "held.csv"
        write_bars(held_bars, BIG)
        held = new_account(held_db, balance="0")
        with paper.Ledger(str(held_db)) as ledger:
            ledger.deposit(held, "1", currency="BTC")
        for command in (["feed", str(held_bars)], ["prices"], ["prices", "--csv"], ["prices", "--json"],
                        ["equity", "--account-id", held], ["equity", "--account-id", held, "--json"],
                        ["stats", "--account-id", held]):
            start = time.perf_counter()
            rss = peak_rss([*PAPER, *command, "--db", str(held_db)])
            shown = ' '.join(command[:2] if command[0] != 'equity' else [command[0], *command[3:]])
            row(f"15. {shown} of {BIG:,} bars: peak RSS MB (seconds)",
                f"{rss / 1024:.0f} ({time.perf_counter() - start:.1f})", "bar <= 150 MB")

    if want(16):
        # 16. fetch of a year of one-minute bars (525,600: 526 pages) of one symbol from a local exchange, a whole
        # process
        with YearOfKlines() as exchange:
            spent, peaks = [], []
            for k in range(3):
                db = folder / f"fetch{k}.db"
                new_account(db)
                start = time.perf_counter()
                peaks.append(peak_rss([*PAPER, "fetch", "BTC/USDT", "--interval", "1m", "--start", "2024-01-01",
                                       "--base-url", exchange.url, "--db", str(db)]))
                spent.append(time.perf_counter() - start)
                assert sqlite3.connect(db).execute("SELECT count(DISTINCT time) FROM prices").fetchone()[0] == YEAR
        row(f"16. fetch of a year of 1m bars ({YEAR:,}, {exchange.pages} pages) from 127.0.0.1: bars/s",
            f"{YEAR / statistics.median(spent):,.0f}", "bar >= 50,000")
        row("    its peak RSS, MB", f"{max(peaks) / 1024:.1f}", "bar <= 100")

    # 17. the crossover as a whole process, paper's backtest command / backtesting.py, over the same OHLC bars
    # 18. a bracket (limit entry, take-profit and stop-loss, an unfilled entry cancelled), the same way
    if want(17) or want(18):
        ohlc = folder / "ohlc.csv"
        write_ohlc(ohlc, BACKTEST_BARS)
        python, version = backtesting_py()
        row("17-18. backtesting.py beside paper (the bench venv's): its version", version,
            "" if python else "rows 17 and 18 skipped: make bench-venv, or BENCH_BT_PYTHON")
    if (want(17) or want(18)) and python:
        for number, strategy, options, twin, bar in (
                (17, "sma_cross.py", ["--param", "fast=20", "--param", "slow=50", "--param", "size=10", "--on-close"],
                 BT_CROSS, 0.75),
                (18, "bracket.py", [], BT_BRACKET, 0.5)):
            if not want(number):
                continue
            ours = [*PAPER, "backtest", str(HERE / "examples" / strategy), "--data", str(ohlc), "--symbol", "BTC/USDT",
                    "--balance", "100000", "--fee-rate", "0.001", *options, "--json"]
            theirs = [python, str(folder / f"bt_{strategy}"), str(ohlc)]
            (folder / f"bt_{strategy}").write_text(twin)
            spent, spent_bt = [], []
            for _ in range(REPEATS):
                took, printed = run_captured(ours)
                spent.append(took)
                stats = json.loads(printed)["stats"]
                took, printed = run_captured(theirs)
                spent_bt.append(took)
                stats_bt = json.loads(printed)
            what = "sma_cross.py 20/50, size 10, --on-close" if number == 17 else "bracket.py"
            row(f"{number}. backtest {what}, {BACKTEST_BARS:,} OHLC bars: bars/s, whole process",
                f"{BACKTEST_BARS / statistics.median(spent):,.0f}")
            row("    backtesting.py, the same strategy and bars: bars/s, whole process",
                f"{BACKTEST_BARS / statistics.median(spent_bt):,.0f}")
            ratio = statistics.median(b / a for a, b in zip(spent, spent_bt))
            row(f"    paper's bars/s / backtesting.py's (median of {REPEATS} pairs)", f"{ratio:.2f}",
                f"bar >= {bar}: {'met' if ratio >= bar else 'NOT MET'}")
            equity, equity_bt = Decimal(stats["equity_final"]), Decimal(repr(stats_bt["equity_final"]))
            if number == 17:  # the same fills at the same prices: the same equity, but for backtesting.py's floats
                same = abs(equity - equity_bt) < Decimal("0.000001")
                row("    final equity, paper / backtesting.py", f"{equity} / {equity_bt}",
                    "equal (to float error)" if same else "must be equal: THEY DIFFER")
            else:  # orders fill by other rules: reported, not compared
                row("    final equity, paper / backtesting.py", f"{equity:.2f} / {equity_bt:.2f}", "report")
            row("    round trips, paper / backtesting.py (paper's fills)",
                f"{stats['closed_trades']} / {stats_bt['trades']} ({stats['trades']})", "report")

    print(f"\n{'what':<72} {'figure':>16}  bar")
    for what, value, bar in rows:
        print(f"{what:<72} {value:>16}  {bar}")


ISSUE_20 = {9, 11, 17, 18}  # `python3 bench_paper.py issue20`: the rows of issue 20


def chosen(args):
    """The numbers of the rows to run, from the arguments or else env BENCH_ONLY (row numbers, or issue20);
    None: every row."""
    words = args or os.environ.get("BENCH_ONLY", "").replace(",", " ").split()
    if not words:
        return None
    numbers = set()
    for word in words:
        if word == "issue20":
            numbers |= ISSUE_20
        elif word.isdigit() and 1 <= int(word) <= 18 and int(word) != 13:
            numbers.add(int(word))
        else:
            print(f"usage: bench_paper.py [ROW ...] (1-12, 14-18, or issue20 for {sorted(ISSUE_20)});"
                  f" {word!r} is none of them", file=sys.stderr)
            raise SystemExit(2)
    return numbers


FEED_BARS = int(os.environ.get("BENCH_FEED_BARS", "100000"))
BACKTEST_BARS = int(os.environ.get("BENCH_BACKTEST_BARS", "100000"))


def write_walk(path, count):
    """count hourly closes, the README's random walk continued: time,close."""
    rng, close = random.Random(2025), 60000.0
    with open(path, "w") as bars:
        bars.write("time,close\n")
        for hour in range(count):
            close *= 1 + rng.gauss(0.00002, 0.006)
            bars.write(f"{1735689600 + hour * 3600},{close:.2f}\n")


FAST, SLOW = 24, 120  # hours


def api_backtest(bars_path, db_path):
    """The crossover through the API, as the README showed it before the backtest command: one batch, a tick
    a bar, a trade at the latest close on each cross; returns the account."""
    for stale in (db_path, db_path + "-wal", db_path + "-shm"):
        if os.path.exists(stale):
            os.remove(stale)
    with paper.Ledger(db_path, create=True) as ledger:
        account = ledger.create_account(balance="10000", name=f"MA crossover {FAST}/{SLOW}").id
        closes, fast, slow, above = [], 0.0, 0.0, None
        with open(bars_path, newline="") as bars, ledger.batch():
            rows = csv.reader(bars)
            next(rows)
            for moment, close in rows:
                ledger.tick("BTC/USDT", close, time=moment, allow_future=True)
                closes.append(float(close))
                fast += closes[-1] - (closes[-FAST - 1] if len(closes) > FAST else 0)
                slow += closes[-1] - (closes[-SLOW - 1] if len(closes) > SLOW else 0)
                if len(closes) < SLOW:
                    continue
                fast_above = fast / FAST > slow / SLOW
                if above is not None and fast_above != above:
                    held = ledger.account(account, transactions=0).balances
                    if fast_above:
                        qty = held["USDT"].available * Decimal("0.99") / Decimal(close)
                        ledger.trade(account, "buy", "BTC/USDT", qty.quantize(Decimal("0.000001"), ROUND_DOWN))
                    elif "BTC" in held and held["BTC"].available:
                        ledger.trade(account, "sell", "BTC/USDT", held["BTC"].available)
                above = fast_above
    return account


def timed_loop(walk):
    """Seconds paper.backtest of the crossover spends before its stats (which row 12 measures)."""
    stats, began, ended = paper.Ledger.stats, time.perf_counter(), []
    paper.Ledger.stats = lambda self, *args: ended.append(time.perf_counter()) or stats(self, *args)
    try:
        paper.backtest(str(HERE / "examples" / "sma_cross.py"), str(walk), symbol="BTC/USDT", on_close=True)
    finally:
        paper.Ledger.stats = stats
    return ended[0] - began


def raw_paper_db(db_path):
    """A new paper database at db_path, opened by raw sqlite3 as a batch writes: synchronous=FULL, CHECKs off."""
    for stale in (db_path, f"{db_path}-wal", f"{db_path}-shm"):
        if os.path.exists(stale):
            os.remove(stale)
    paper.Ledger(str(db_path), create=True).close()
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA ignore_check_constraints=ON")
    return db


def price_rows_alone(path, db_path):
    """Seconds raw sqlite3 takes to write the walk's price rows (as paper writes them: its own ids, times in
    its form, CHECKs off, 10,000 rows an executemany) into a new paper database, and commit: the floor of
    any tick loop that keeps every bar."""
    with open(path, newline="") as bars:
        rows = [(i, "BTC/USDT", paper.to_time(moment), close, close, close, close, "2026-12-06T00:00:00.000000Z")
                for i, (moment, close) in enumerate(list(csv.reader(bars))[1:], 1)]
    db = raw_paper_db(db_path)
    start = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    for first in range(0, len(rows), 10_000):
        db.executemany(paper.INSERT_PRICE, rows[first:first + 10_000])
    db.execute("COMMIT")
    spent = time.perf_counter() - start
    db.close()
    return spent


def skeleton(path, db_path):
    """Seconds a tick loop with only what no ledger can skip takes: the crossover's own loop, paper's checks
    of each bar's time and price (to_time, to_price_text, time never going back), its row queued and
    written in bulk as paper writes it; no order book, no latest price kept, no result, no trades."""
    db = raw_paper_db(db_path)
    for cache in (paper.PRICES, paper.CLOCKS, paper.DATES):
        cache.clear()
    start = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    held, latest, closes, fast, slow, above, crosses = [], "", [], 0.0, 0.0, None, 0
    with open(path, newline="") as bars:
        rows = csv.reader(bars)
        next(rows)
        for price_id, (moment, close) in enumerate(rows, 1):
            when, (_, text) = paper.to_time(moment), paper.to_price_text(close, "price")
            if when <= latest:
                raise AssertionError("time went back")
            latest = when
            held.append((price_id, "BTC/USDT", when, text, text, text, text, "2026-12-06T00:00:00.000000Z"))
            if len(held) >= 10_000:
                db.executemany(paper.INSERT_PRICE, held)
                held.clear()
            closes.append(float(close))
            fast += closes[-1] - (closes[-FAST - 1] if len(closes) > FAST else 0)
            slow += closes[-1] - (closes[-SLOW - 1] if len(closes) > SLOW else 0)
            if len(closes) >= SLOW:
                fast_above = fast / FAST > slow / SLOW
                crosses += above is not None and fast_above != above
                above = fast_above
    assert crosses == 1181  # the API loop's fills (row 11): the same walk, the same crosses
    db.executemany(paper.INSERT_PRICE, held)
    db.execute("COMMIT")
    spent = time.perf_counter() - start
    db.close()
    return spent


def no_paper(path, fast_n, slow_n):
    """The crossover's loop over the same file with every paper call taken out: the floor."""
    closes, fast, slow, above, crosses = [], 0.0, 0.0, None, 0
    with open(path, newline="") as bars:
        rows = csv.reader(bars)
        next(rows)
        for _, close in rows:
            closes.append(float(close))
            fast += closes[-1] - (closes[-fast_n - 1] if len(closes) > fast_n else 0)
            slow += closes[-1] - (closes[-slow_n - 1] if len(closes) > slow_n else 0)
            if len(closes) < slow_n:
                continue
            fast_above = fast / fast_n > slow / slow_n
            crosses += above is not None and fast_above != above
            above = fast_above
    return crosses


def write_ohlc(path, count):
    """count hourly OHLC bars around 100 (between about 50 and 350 over 100,000), a seeded random walk in whole
    cents, each bar opening at the previous close: time,open,high,low,close,volume."""
    rng, close = random.Random(20), 10000

    def price(cents):
        return f"{cents // 100}.{cents % 100:02d}"

    with open(path, "w") as bars:
        bars.write("time,open,high,low,close,volume\n")
        for hour in range(count):
            opened, close = close, max(100, round(close * (1 + rng.gauss(0, 0.003))))
            high = max(opened, close) + round(abs(rng.gauss(0, 0.002)) * opened)
            low = min(opened, close) - round(abs(rng.gauss(0, 0.002)) * opened)
            bars.write(f"{1735689600 + hour * 3600},{price(opened)},{price(high)},{price(low)},{price(close)},"
                       f"{rng.randint(1, 1000)}\n")


def backtesting_py():
    """(the python of the bench venv, backtesting.py's version), or (None, why not): env BENCH_BT_PYTHON, else
    .venv-bench/bin/python beside this file (`make bench-venv`). Never a dependency of paper or its tests."""
    python = os.environ.get("BENCH_BT_PYTHON") or str(HERE / ".venv-bench" / "bin" / "python")
    if not os.path.exists(python):
        return None, "not installed"
    found = subprocess.run([python, "-c", "import backtesting; print(backtesting.__version__)"], capture_output=True,
                           text=True)
    if found.returncode:
        return None, "not importable"
    return python, found.stdout.strip()


def run_captured(argv):
    """(seconds, stdout) of a whole run of argv; its stderr is shown only if it fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=HERE)
    spent = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return spent, done.stdout


# backtesting.py's side of rows 17 and 18, run by the bench venv's python: the bars read as Python reads them
# (round_trip), so both sides see the same floats.
BT_BARS = """import json, sys, warnings
import pandas as pd
from backtesting import Backtest, Strategy

warnings.simplefilter("ignore")  # open trades at the end; the bracket's same-bar SL/TP notices
bars = pd.read_csv(sys.argv[1], index_col="time", float_precision="round_trip")
bars.index = pd.to_datetime(bars.index, unit="s")
bars.columns = [name.capitalize() for name in bars.columns]
"""

# The crossover as examples/sma_cross.py decides it: fast above when sum(last fast closes) / fast > sum(last
# slow closes) / slow, in floats, by Python's sum (as the example does, so a tie rounds the same way on both
# sides: pandas' rolling mean makes 103.491 of an exact tie that sum makes 103.49100000000001, and the
# crossover exits a bar earlier); buy 10 on a cross up, close on a cross down, at the bar's close; fee 0.001
# of each fill's value (backtesting.py's commission, charged at entry and at exit, as paper charges each fill).
BT_CROSS = BT_BARS + """

def averages(closes, n):
    closes = closes.tolist()
    return [float("nan")] * (n - 1) + [sum(closes[i - n + 1:i + 1]) / n for i in range(n - 1, len(closes))]


class SmaCross(Strategy):
    fast, slow, size = 20, 50, 10

    def init(self):
        self.fast_ma = self.I(averages, self.data.Close, self.fast)
        self.slow_ma = self.I(averages, self.data.Close, self.slow)

    def next(self):
        above, was = self.fast_ma[-1] > self.slow_ma[-1], self.fast_ma[-2] > self.slow_ma[-2]
        if above and not was:
            self.buy(size=self.size)
        elif was and not above:
            self.position.close()


stats = Backtest(bars, SmaCross, cash=100_000, commission=0.001, trade_on_close=True, exclusive_orders=True).run()
print(json.dumps({"equity_final": stats["Equity Final [$]"], "trades": int(stats["# Trades"])}))
"""

# examples/bracket.py as backtesting.py has it: a limit buy of half the equity 1% under the close, its stop-loss
# 1% under and take-profit 2% over the entry (backtesting.py attaches them to the entry; paper's strategy places
# its oco on the bar the entry filled), cancelled after 5 bars unfilled. backtesting.py buys whole units.
BT_BRACKET = BT_BARS + """

class Bracket(Strategy):
    dip, take_profit, stop_loss, size, wait = 0.01, 0.02, 0.01, 0.5, 5

    def init(self):
        self.waited = 0

    def next(self):
        if not self.position and self.orders:
            self.waited += 1
            if self.waited >= self.wait:
                for order in self.orders:
                    order.cancel()
        elif not self.position:
            entry = round(self.data.Close[-1] * (1 - self.dip), 2)
            self.buy(size=self.size, limit=entry, sl=round(entry * (1 - self.stop_loss), 2),
                     tp=round(entry * (1 + self.take_profit), 2))
            self.waited = 0


stats = Backtest(bars, Bracket, cash=100_000, commission=0.001).run()
print(json.dumps({"equity_final": stats["Equity Final [$]"], "trades": int(stats["# Trades"])}))
"""


RAW_FEED = """import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA synchronous=FULL")
with open(sys.argv[2], newline="") as f:
    reader = csv.reader(f)
    next(reader)
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO prices (symbol, time, open, high, low, close, created_at) VALUES (?, ?, ?, ?, ?, ?,"
                   " '2026-11-25T00:00:00.000000Z')", reader)
    db.execute("COMMIT")
"""


def write_bars(path, count):
    """count one-minute bars of BTC/USDT in paper's own form: a slow wave between 60 and 140."""
    with open(path, "w", newline="") as f:
        f.write("symbol,time,open,high,low,close\n")
        for i in range(count):
            level = 100 + 40 * math.sin(i / 500)
            moment = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(1700000000 + 60 * i))
            f.write(f"BTC/USDT,{moment},{level:.2f},{level + 0.5:.2f},{level - 0.5:.2f},{level + 0.1:.2f}\n")


def market_db(path, accounts, orders, reached=True):
    """accounts accounts, each with orders resting on BTC/USDT: limit buys, stop sells and brackets the
    wave reaches (reached), or limits far away that it never does."""
    with paper.Ledger(str(path), create=True) as ledger, ledger.batch():
        for _ in range(accounts):
            account = ledger.create_account(balance="10000000").id
            ledger.deposit(account, "100000", currency="BTC")
            for i in range(orders):
                if not reached:
                    ledger.place_order(account, ("buy", "sell")[i % 2], "BTC/USDT", "1", ("1", "1000000")[i % 2])
                elif i % 3 == 0:
                    ledger.place_order(account, "buy", "BTC/USDT", "1", f"{70 + i}")
                elif i % 3 == 1:
                    ledger.place_order(account, "sell", "BTC/USDT", "1", type="stop", stop_price=f"{80 + i}")
                else:
                    ledger.place_order(account, "sell", "BTC/USDT", "1", f"{125 + i % 10}", type="oco",
                                       stop_price=f"{65 + i % 10}")
    checkpointed_size(path)
    return path


RAW_IMPORT = """import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA synchronous=FULL")
with open(sys.argv[3], newline="") as f:
    reader = csv.reader(f)
    next(reader)
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO transactions (account_id, transaction_type, currency, amount, balance_after,"
                   " description, reference_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, '2026-11-25T00:00:00.000000Z')",
                   ((sys.argv[2], kind, currency, amount, amount, description, ref or None)
                    for kind, amount, currency, description, ref in reader))
    db.execute("COMMIT")
"""


PEAK = "import resource, subprocess, sys\nsubprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n" \
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def peak_rss(argv):
    """The peak resident memory of a whole run of argv, in KB (from a process of its own that waits for it)."""
    return int(subprocess.run([*PY, "-c", PEAK, *argv], capture_output=True, text=True, check=True).stdout)


def raw_deposits(db, account, n):
    """What Ledger.deposit does, as plain SQL: one transaction per deposit."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    start = time.perf_counter()
    for _ in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT * FROM accounts WHERE id >= ? AND id < ? LIMIT 6", (account, account + "~")).fetchall()
        available = conn.execute("SELECT available_amount FROM balances WHERE account_id = ? AND currency = 'USDT'",
                                 (account,)).fetchone()[0]
        new = str(Decimal(available) + 1)
        conn.execute(paper.UPSERT_BALANCE, (account, "USDT", new, "0.00", "t", "t", "t"))
        conn.execute("INSERT INTO transactions (account_id, transaction_type, currency, amount, balance_after,"
                     " description, created_at) VALUES (?, 'DEPOSIT', 'USDT', '1.00', ?, 'Deposit', 't')", (account, new))
        conn.execute("COMMIT")
    spent = time.perf_counter() - start
    conn.close()
    return spent


WRITER = """import sys
sys.path.insert(0, sys.argv[1])
import paper
with paper.Ledger(sys.argv[2]) as ledger:
    for _ in range(int(sys.argv[4])):
        ledger.deposit(sys.argv[3], "1")
"""


def writers(db, count, each=2000):
    account = new_account(db)
    procs = [subprocess.Popen([*PY, "-c", WRITER, str(HERE), str(db), account, str(each * 8 // count)])
             for _ in range(count)]
    start = time.perf_counter()
    if any(p.wait() for p in procs):
        raise SystemExit("a writer failed")
    spent = time.perf_counter() - start
    with paper.Ledger(str(db)) as ledger:
        assert ledger.account(account).balances["USDT"].available == 5000 + each * 8
        assert ledger.verify() == []
    return each * 8 / spent


YEAR, MINUTE, YEAR_START = 525_600, 60_000, 1704067200000  # 2024-01-01T00:00:00Z, in epoch ms


class YearOfKlines:
    """Binance's GET /api/v3/time and /api/v3/klines for a year of one-minute bars of BTCUSDT (the server's
    time: just after the last one closed), on 127.0.0.1 in a thread; every page encoded before the first
    request, so the server is never what a fetch waits for."""

    def __init__(self):
        import http.server
        import threading
        self.now, self.encoded = YEAR_START + YEAR * MINUTE + 30_000, {}
        for first in range(0, YEAR, 1000):
            self.encoded[first] = kline_page(first, min(1000, YEAR - first))
        self.pages = len(self.encoded)
        exchange = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                exchange.answer(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def answer(self, request):
        import urllib.parse
        url = urllib.parse.urlsplit(request.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/api/v3/time":
            body = f'{{"serverTime":{self.now}}}'.encode()
        elif url.path == "/api/v3/exchangeInfo":  # fetch checks the symbol first: BTCUSDT, as Binance lists it
            body = (f'{{"timezone":"UTC","serverTime":{self.now},"rateLimits":[],"exchangeFilters":[],"symbols":'
                    '[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","filters":['
                    '{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000",'
                    '"tickSize":"0.01000000"},{"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":'
                    '"9000.00000000","stepSize":"0.00001000"},{"filterType":"NOTIONAL","minNotional":"5.00000000",'
                    '"applyMinToMarket":true,"maxNotional":"9000000.00000000","applyMaxToMarket":false,'
                    '"avgPriceMins":5}]}]}').encode()
        else:  # the page that starts at startTime (or the year's first), up to endTime
            first = max(0, -(-(int(params.get("startTime", YEAR_START)) - YEAR_START) // MINUTE))
            last = min(YEAR - 1, (int(params.get("endTime", self.now)) - YEAR_START) // MINUTE)
            body = self.encoded[first] if first in self.encoded and last == YEAR - 1 else \
                kline_page(first, max(0, min(1000, last - first + 1)))
        request.send_response(200)
        request.send_header("Content-Type", "application/json;charset=UTF-8")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("X-MBX-USED-WEIGHT-1M", "2")
        request.end_headers()
        request.wfile.write(body)


def kline_page(first, count):
    """count klines of a minute from the year's minute first on, as Binance writes them (prices with 8
    decimals): a random-looking walk between 60,000 and 64,000."""
    rows = []
    for i in range(first, first + count):
        opened, cents = YEAR_START + i * MINUTE, 6_000_000 + i * 7919 % 400_000
        prices = [f"{c // 100}.{c % 100:02d}000000" for c in (cents, cents + 150, cents - 25, cents + 50)]
        rows.append(f'[{opened},"{prices[0]}","{prices[1]}","{prices[2]}","{prices[3]}","12.50000000",'
                    f'{opened + MINUTE - 1},"750000.00000000",321,"6.25000000","375000.00000000","0"]')
    return f"[{','.join(rows)}]".encode()


if __name__ == "__main__":
    main()

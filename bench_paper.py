"""Benchmark paper.py against minimal standard-library scripts doing the same SQL: `make bench`.

Every process is started as `sys.executable -S`, on both sides. Paired commands run
alternately (A B A B ...), PAIRS times each (default 40, env BENCH_PAIRS); a ratio is the
median of the pairs' ratios, so noise that slows a stretch of the run slows both sides of a
pair. Everything runs on temporary databases.
"""

import csv
import os
import py_compile
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import paper  # noqa: E402

PY = [sys.executable, "-S"]
PAPER = [*PY, str(HERE / "paper.py")]
MODULE = [*PY, "-m", "paper"]  # run with cwd=HERE, from paper's cached bytecode
PAIRS = int(os.environ.get("BENCH_PAIRS", "40"))
BIG = int(os.environ.get("BENCH_BIG", "1000000"))
FOUR = "import argparse, sqlite3, decimal, dataclasses\n"

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


def main():
    rows = []

    def row(what, value, bar=""):
        rows.append((what, value, bar))
        print(f"{what:<72} {value:>16}  {bar}", file=sys.stderr, flush=True)

    folder = Path(tempfile.mkdtemp(prefix="paper-bench-"))
    db = folder / "small.db"
    account = new_account(db)

    # 1. status as a whole process / a script that does its SQL
    py_compile.compile(str(HERE / "paper.py"), doraise=True)  # for `python -m paper`, even if PYTHONDONTWRITEBYTECODE
    compiling = f"compile(open({str(HERE / 'paper.py')!r}).read(), 'paper.py', 'exec')\n"
    args = ["status", "--account-id", account, "--db", str(db)]
    same = STATUS_SQL.format(db=str(db), account=account)
    ratio, ms = alternate(
        [*PAPER, *args], script(folder, "status4.py", FOUR + same), script(folder, "status.py", same), [*MODULE, *args],
        script(folder, "status4c.py", FOUR + compiling + same))
    row("1. status --account-id / script: 4 imports + the same SELECTs", f"{ratio(0, 1):.2f}", "bar <= 1.4")
    row("   status --account-id / floor: interpreter + sqlite3 + the SELECTs", f"{ratio(0, 2):.2f}")
    row("   python -m paper status (from its cached .pyc) / script", f"{ratio(3, 1):.2f}")
    row("   the script + compiling paper.py (and nothing else) / script", f"{ratio(4, 1):.2f}")
    row("   (medians: paper, script, floor, -m paper, script + compile, ms)", ms)

    # 2. deposit as a whole process / BEGIN IMMEDIATE, INSERT, UPDATE, COMMIT with synchronous=FULL
    args = ["deposit", "--account-id", account, "--amount", "1", "--db", str(db)]
    same = DEPOSIT_SQL.format(db=str(db), account=account)
    ratio, ms = alternate([*PAPER, *args], script(folder, "deposit4.py", FOUR + same), script(folder, "deposit.py", same),
                          [*MODULE, *args])
    row("2. deposit / script: 4 imports + BEGIN IMMEDIATE, INSERT, UPDATE, COMMIT", f"{ratio(0, 1):.2f}", "bar <= 1.4")
    row("   deposit / floor: interpreter + sqlite3 + the same SQL", f"{ratio(0, 2):.2f}")
    row("   python -m paper deposit (from its cached .pyc) / script", f"{ratio(3, 1):.2f}")
    row("   (medians: paper, script, floor, -m paper, ms)", ms)

    # 3. status on an account with BIG transactions / on one with 1
    big = folder / "big.db"
    big_account = new_account(big, balance="0")
    start = time.perf_counter()
    fill(big, big_account, BIG)
    filled = time.perf_counter() - start
    one = folder / "one.db"
    one_account = new_account(one)
    ratio, ms = alternate([*PAPER, "status", "--account-id", big_account, "--db", str(big)],
                          [*PAPER, "status", "--account-id", one_account, "--db", str(one)])
    row(f"3. status with {BIG:,} transactions / with 1", f"{ratio(0, 1):.2f}", "bar <= 1.1")
    row("   (medians, ms)", ms)

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
    row(f"4. {n:,} deposits through the API / the same statements in raw sqlite3", f"{api / raw:.2f}", "bar <= 1.5")
    row("   (API deposits per second)", f"{n / api:,.0f}")

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

    # 6. verify over BIG transactions
    spent = statistics.median(run([*PAPER, "verify", "--db", str(big)]) for _ in range(3))
    row(f"6. verify over {BIG:,} transactions: seconds", f"{spent:.2f}")
    row("   rows per second", f"{BIG / spent:,.0f}")

    # 7. 8 concurrent writer processes / 1 writer: deposits per second
    one_rate = writers(folder / "w1.db", 1)
    eight_rate = writers(folder / "w8.db", 8)
    row("7. deposits per second: 1 writer process (each deposit its own commit)", f"{one_rate:,.0f}")
    row("   8 concurrent writer processes, in all", f"{eight_rate:,.0f}")
    row("   8 writers / 1 writer; errors: 0", f"{eight_rate / one_rate:.2f}")

    # 8. database bytes per transaction
    row(f"8. database bytes per transaction at {BIG:,}", f"{checkpointed_size(big) / BIG:.0f}")
    row("   (building it through the bulk import took, seconds)", f"{filled:.1f}")

    print(f"\n{'what':<72} {'figure':>16}  bar")
    for what, value, bar in rows:
        print(f"{what:<72} {value:>16}  {bar}")


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


if __name__ == "__main__":
    main()

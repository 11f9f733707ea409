"""paper under attack: killed processes, concurrent writers, bad input, full disks, held locks, tampering.

Every figure the README reports under "Reliability" is printed by these tests as a line
starting `reliability:`. PAPER_FAULT_SEED replays a run (the seed is in every failure message).
"""

import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

import paper
from test_paper import (BAD_AMOUNTS, LISTED, PAPER_RUN, FakeBinance, cli, connection, dump, query, shell,
                        without_root_powers)

HERE = Path(__file__).resolve().parent
PAPER = str(HERE / "paper.py")
SEED = int(os.environ.get("PAPER_FAULT_SEED", "20261125"))
KILLS = int(os.environ.get("PAPER_FAULT_KILLS", "50"))  # of the kill loop below; more for a longer soak


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    monkeypatch.delenv("PAPER_DB", raising=False)
    monkeypatch.delenv("PAPER_BUSY_TIMEOUT", raising=False)


@pytest.fixture
def report(capsys):
    """Print a figure past pytest's capture, so `make test` shows it."""
    def report(line):
        with capsys.disabled():
            print(f"\nreliability: {line}")
    return report


def new_account(db, balance="1000000"):
    with paper.Ledger(str(db), create=True) as ledger:
        return ledger.create_account(balance=balance).id


def killed_after(child, seconds):
    """SIGKILL child after seconds: (whether the kill landed: it may have ended first, its stdout, its stderr)."""
    time.sleep(seconds)
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate()
    return child.returncode == -signal.SIGKILL, out, err


def assert_consistent(db, why=""):
    """verify passes, and independently of paper: every balance is the sum of its log."""
    with paper.Ledger(str(db)) as ledger:
        assert ledger.verify() == [], why
    with connection(db) as conn:
        sums = {}
        for account, currency, amount in conn.execute("SELECT account_id, currency, amount FROM transactions"):
            sums[account, currency] = sums.get((account, currency), 0) + Decimal(amount)
        for account, currency, available, reserved in conn.execute(
                "SELECT account_id, currency, available_amount, reserved_amount FROM balances"):
            assert Decimal(available) + Decimal(reserved) == sums.pop((account, currency), 0), why
        assert not any(sums.values()), why


def timed(argv):
    """How long a whole run of argv takes on this machine, in seconds: kills are spread over such a run,
    so that they land in its work whatever the machine's speed."""
    start = time.monotonic()
    subprocess.run(argv, capture_output=True, timeout=60)
    return time.monotonic() - start


def rows_with_ref(db, ref):
    with connection(db) as conn:
        return conn.execute("SELECT id FROM transactions WHERE reference_id = ? AND trade_id IS NULL",
                            (ref,)).fetchall()


# --- 1. SIGKILL mid-write ---

# A strategy loop through the Python API: says what it starts, and what is done once the call returned.
API_CHILD = r"""
import random, sys
sys.path.insert(0, sys.argv[1])
import paper
db, account, seed = sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
ledger = paper.Ledger(db)
for i in range(100000):
    op, ref = rng.choice(["deposit", "deposit", "withdraw", "trade", "order"]), f"api-{seed}-{i}"
    amount = f"{rng.randint(1, 5000)}.{rng.randint(0, 99999999):08d}"
    side, qty, price = rng.choice(["buy", "sell"]), f"0.{rng.randint(1, 999):03d}", str(rng.randint(100, 2000))
    print("start", op, amount if op in ("deposit", "withdraw") else f"{side}:{qty}:{price}", ref, flush=True)
    try:
        if op == "trade":
            print("done trade", ledger.trade(account, side, "ETH/USDT", qty, price, ref=ref).id, ref, flush=True)
        elif op == "order":
            order = ledger.place_order(account, side, "ETH/USDT", qty, price)
            print("done order", order.id, flush=True)
            if rng.random() < 0.5:
                print("done fill", ledger.fill(order.id, qty=f"{paper.Decimal(qty) / 2}").id, order.id, flush=True)
            else:
                print("done cancel", ledger.cancel(order.id).id, flush=True)
        else:
            print("done tx", getattr(ledger, op)(account, amount, ref=ref).id, ref, flush=True)
    except paper.PaperError:
        print("refused", ref, flush=True)
"""


def check_after_kill(db, output, why):
    """Everything the child reported done is in the database exactly once; refused ones are not."""
    started, done = None, 0
    with connection(db) as conn:
        def rows(sql, *params):
            return conn.execute(sql, params).fetchall()
        for line in output.splitlines():
            words = line.split()
            if words[:1] == ["start"] and len(words) == 4:
                started = words[1:]
            elif words[:2] == ["done", "tx"] and len(words) == 4:
                assert rows("SELECT id FROM transactions WHERE reference_id = ? AND trade_id IS NULL",
                            words[3]) == [(int(words[2]),)], why
            elif words[:2] == ["done", "trade"] and len(words) == 4:
                assert rows("SELECT id FROM trades WHERE reference_id = ?", words[3]) == [(int(words[2]),)], why
            elif words[:2] == ["done", "order"] and len(words) == 3:
                assert rows("SELECT count(*) FROM orders WHERE id = ?", words[2]) == [(1,)], why
            elif words[:2] == ["done", "fill"] and len(words) == 4:
                assert rows("SELECT order_id FROM trades WHERE id = ?", int(words[2])) == [(words[3],)], why
            elif words[:2] == ["done", "cancel"] and len(words) == 3:
                assert rows("SELECT status FROM orders WHERE id = ?", words[2]) == [("CANCELLED",)], why
            elif words[:1] == ["refused"] and len(words) == 2:
                assert rows("SELECT id FROM transactions WHERE reference_id = ? AND trade_id IS NULL",
                            words[1]) == [], why
                assert rows("SELECT id FROM trades WHERE reference_id = ?", words[1]) == [], why
            else:
                continue
            done += words[0] == "done"
            started = None if words[0] != "done" or words[1] in ("tx", "trade") else started
    return started, done


def test_sigkill_mid_write_loses_and_doubles_nothing(tmp_path, report):
    db = str(tmp_path / "kill.db")
    account = new_account(db)
    rng = random.Random(SEED)
    kills = retries = reported = 0
    for round_ in range(KILLS // 2):
        why = f"API kill {round_}, PAPER_FAULT_SEED={SEED}"
        child = subprocess.Popen([sys.executable, "-c", API_CHILD, str(HERE), db, account,
                                  str(SEED * 1000 + round_)], stdout=subprocess.PIPE, text=True)
        first = child.stdout.readline()  # its first operation has started: killed somewhere in the next ones
        time.sleep(rng.uniform(0, 0.06))
        child.send_signal(signal.SIGKILL)
        output = first + child.communicate()[0]
        kills += child.returncode == -signal.SIGKILL
        assert_consistent(db, why)
        started, done = check_after_kill(db, output, why)
        reported += done
        if started and started[0] != "order":  # the client never heard back: it retries with the same ref
            op, details, ref = started
            if op == "trade":
                side, qty, price = details.split(":")
                argv = ["--side", side, "--symbol", "ETH/USDT", "--qty", qty, "--price", price]
            else:
                argv = ["--amount", details]
            retry = cli(op, "--account-id", account, *argv, "--ref", ref, "--db", db)
            assert retry.returncode in (0, 1) and "Traceback" not in retry.stderr, why
            recorded = rows_with_ref(db, ref) if op != "trade" else query(
                db, "SELECT id FROM trades WHERE reference_id = ?", ref)
            assert len(recorded) == (retry.returncode == 0), why
            retries += 1
    whole = timed([*PAPER_RUN, "status", "--db", db])  # a run on this machine: kills spread over it
    for round_ in range(KILLS - KILLS // 2):
        why = f"CLI kill {round_}, PAPER_FAULT_SEED={SEED}"
        ref, amount = f"cli-{round_}", f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}"
        op = rng.choice(["deposit", "withdraw", "trade"])
        argv = [*PAPER_RUN, op, "--account-id", account, "--ref", ref, "--db", db, "--json"]
        argv += (["--side", rng.choice(["buy", "sell"]), "--symbol", "ETH/USDT", "--qty", "0.01", "--price", amount]
                 if op == "trade" else ["--amount", amount])
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        landed, output, errors = killed_after(child, rng.uniform(0.5, 1.2) * whole)
        assert "Traceback" not in errors, why
        kills += landed
        assert_consistent(db, why)
        def recorded():
            if op == "trade":
                return query(db, "SELECT id FROM trades WHERE reference_id = ?", ref)
            return rows_with_ref(db, ref)
        if child.returncode == 0:  # it finished before the kill: reported done
            reported += 1
            assert recorded() == [(json.loads(output)["id"],)], why
        retry = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert retry.returncode in (0, 1) and "Traceback" not in retry.stderr, (why, retry.stderr)
        assert recorded() == ([(json.loads(retry.stdout)["id"],)] if retry.returncode == 0 else []), why
        retries += 1
    assert_consistent(db)
    report(f"{kills} SIGKILLs survived (seed {SEED}) during deposits, withdrawals, trades, orders, fills and"
           f" cancels: {reported} operations reported done all present"
           f" exactly once, {retries} retries after a kill recorded once, verify OK after every kill")


def test_sigkill_during_init_and_backup_leaves_no_litter(tmp_path, report):
    """A file is built aside and linked into place: a kill leaves it whole or absent, and the next
    init or backup removes what the killed one left beside it."""
    rng = random.Random(SEED)
    folder = tmp_path / "data"
    db = str(folder / "p.db")
    account = cli("init", "--db", db).stdout.strip()
    assert cli("deposit", "--account-id", account, "--amount", "1", "--db", db).returncode == 0
    kills, whole = 0, timed([*PAPER_RUN, "backup", "--to", str(folder / "timed.db"), "--db", db])
    for round_ in range(30):
        why = f"init/backup kill {round_}, PAPER_FAULT_SEED={SEED}"
        fresh, copy = str(folder / f"new{round_}.db"), str(folder / f"copy{round_}.db")
        argv = ["init", "--db", fresh] if round_ % 2 else ["backup", "--to", copy, "--db", db]
        child = subprocess.Popen([*PAPER_RUN, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        landed, _, _ = killed_after(child, rng.uniform(0.5, 1.2) * whole)
        kills += landed
        for made in (fresh, copy):  # whole, or not there at all
            if os.path.exists(made):
                with paper.Ledger(made) as ledger:
                    assert ledger.verify() == [], why
    assert cli("init", "--db", str(folder / "last.db")).returncode == 0
    assert cli("backup", "--to", str(folder / "last-copy.db"), "--db", db).returncode == 0
    assert not [name for name in os.listdir(folder) if ".new" in name], os.listdir(folder)
    report(f"{kills} SIGKILLs during init and backup: every database and copy whole or absent,"
           " no litter after the next init and backup")


def bars_file(path, count, start=0, step=60):
    """count one-minute bars of BTC/USDT, a saw tooth between 90 and 110, as feed reads them."""
    lines = ["time,symbol,open,high,low,close"]
    for i in range(start, start + count):
        level = 90 + abs(i % 40 - 20)
        lines.append(f"{1795618800 + i * step},BTC/USDT,{level}.00,{level + 1}.00,{level - 1}.00,{level}.50")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def resting_orders(db, account, count):
    """count orders on BTC/USDT the saw tooth reaches: limit buys at 91, stop sells at 95, brackets."""
    with paper.Ledger(db) as ledger:
        ledger.deposit(account, "1000", currency="BTC")
        for i in range(count):
            kind = ("limit", "stop", "oco")[i % 3]
            side, limit, stop = {"limit": ("buy", "91", None), "stop": ("sell", None, "95"),
                                 "oco": ("sell", "109", "92")}[kind]
            ledger.place_order(account, side, "BTC/USDT", "0.5", limit, type=kind, stop_price=stop)


def fill_counts(db):
    """{order id: the number of trades that filled it} and the number of prices."""
    with connection(db) as conn:
        fills = dict(conn.execute("SELECT order_id, count(*) FROM trades WHERE order_id IS NOT NULL GROUP BY order_id"))
        return fills, conn.execute("SELECT count(*) FROM prices").fetchone()[0]


def test_sigkill_during_feed_keeps_a_file_whole_and_a_stream_row_by_row(tmp_path, report):
    rng = random.Random(SEED)
    db = str(tmp_path / "feed.db")
    account = new_account(db)
    resting_orders(db, account, 30)
    path = bars_file(tmp_path / "bars.csv", 3000)
    kills = 0
    for round_ in range(12):  # a file: every row or none
        why = f"feed file kill {round_}, PAPER_FAULT_SEED={SEED}"
        child = subprocess.Popen([*PAPER_RUN, "feed", path, "--db", db], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        landed, out, err = killed_after(child, rng.uniform(0.02, 0.3))
        kills += landed
        assert "Traceback" not in err, why
        assert_consistent(db, why)
        fills, prices = fill_counts(db)
        assert prices in (0, 3000), why  # all or nothing
        assert all(n == 1 for n in fills.values()), why
        if prices:
            break
    assert fill_counts(db)[1] in (0, 3000)
    for round_ in range(15):  # standard input: each row its own commit, each fill printed once it is
        why = f"feed stream kill {round_}, PAPER_FAULT_SEED={SEED}"
        child = subprocess.Popen([*PAPER_RUN, "feed", "-", "--db", db, "--json"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = Path(bars_file(tmp_path / "more.csv", 200, start=3000 + round_ * 200)).read_text()
        child.stdin.write(lines)
        child.stdin.flush()
        landed, out, err = killed_after(child, rng.uniform(0.02, 0.25))
        kills += landed
        assert_consistent(db, why)
        fills, prices = fill_counts(db)
        assert all(n == 1 for n in fills.values()), why
        for line in out.splitlines():  # every fill it printed is recorded, once
            for fill in json.loads(line)["fills"]:
                assert fills.get(fill["order_id"]) == 1, why
        with connection(db) as conn:  # the rows committed are the first ones of what it read, in order
            times = [row[0] for row in conn.execute("SELECT time FROM prices ORDER BY id")]
        assert times == sorted(times), why
    report(f"{kills} SIGKILLs during feed: a file recorded whole or not at all, a stream's committed rows"
           " kept in order, every fill exactly once, verify OK after each")


BATCH_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import paper
with paper.Ledger(sys.argv[2]) as ledger, ledger.batch():
    for i in range(int(sys.argv[4])):
        ledger.tick("BTC/USDT", str(100 + i % 50), time=1795618800 + 60 * i)
        if i % 25 == 0:
            ledger.trade(sys.argv[3], "buy" if i % 50 == 0 else "sell", "BTC/USDT", "1")
print("committed", flush=True)
"""


def test_sigkill_during_a_batch_leaves_all_of_it_or_none(tmp_path, report):
    rng = random.Random(SEED)
    kills = 0
    for round_ in range(10):
        why = f"batch kill {round_}, PAPER_FAULT_SEED={SEED}"
        db = str(tmp_path / f"batch{round_}.db")
        account = new_account(db)
        child = subprocess.Popen([sys.executable, "-c", BATCH_CHILD, str(HERE), db, account, "20000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        landed, out, _ = killed_after(child, rng.uniform(0.05, 0.4))
        kills += landed
        assert_consistent(db, why)
        with connection(db) as conn:
            counts = conn.execute("SELECT (SELECT count(*) FROM prices), (SELECT count(*) FROM trades)").fetchone()
        assert counts in ((0, 0), (20000, 800)) and (counts[0] or out != "committed\n"), (why, counts)
    report(f"{kills} SIGKILLs during a batch of 20,000 prices and 800 trades through the API: none of it"
           " recorded, or (after its commit) all of it")


RISK_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import paper
ledger, account = paper.Ledger(sys.argv[2]), sys.argv[3]
for i in range(int(sys.argv[4]), 100000):
    level = 100 + (i % 40 if i % 80 < 40 else 40 - i % 40) - i // 200  # a saw tooth, drifting down
    ledger.tick("BTC/USDT", open=f"{level}", high=f"{level + 2}", low=f"{level - 2}", close=f"{level + 1}",
                time=1735689600 + 60 * i)
    if i % 7 == 0:
        try:
            ledger.trade(account, "buy", "BTC/USDT", "1", sl=f"{level - 3}", tp=f"{level + 5}")
        except paper.PaperError:
            pass
    if i % 11 == 0:
        try:
            ledger.trade(account, "buy", "BTC/USDT", "0.5", trail="2%")
        except paper.PaperError:
            pass
    if i % 50 == 0:
        try:
            ledger.resume(account)
        except paper.PaperError:
            pass
    print(i, flush=True)
"""


def test_sigkill_during_protection_trailing_and_a_halt_leaves_each_whole(tmp_path, report):
    """Entries protected as they fill, trailing stops moving, a drawdown halt that flattens, each price
    a transaction of its own, killed at random: every protection belongs to one fill and each fill has
    at most one, a halt and its cancels and its market sells are there together or not at all."""
    rng = random.Random(SEED)
    db = str(tmp_path / "risk.db")
    account = new_account(db, balance="400")
    with paper.Ledger(db) as ledger:
        ledger.set_risk(account, max_drawdown="3%", flatten=True, cooldown=2)
    kills, start = 0, 0
    for round_ in range(8):
        why = f"risk kill {round_}, PAPER_FAULT_SEED={SEED}"
        child = subprocess.Popen([sys.executable, "-c", RISK_CHILD, str(HERE), db, account, str(start)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        child.stdout.readline()
        landed, out, err = killed_after(child, rng.uniform(0.05, 0.4))
        kills += landed
        assert "Traceback" not in err, (why, err)
        assert_consistent(db, why)
        with connection(db) as conn:
            start = conn.execute("SELECT count(*) FROM prices").fetchone()[0]
            assert conn.execute("SELECT count(*) FROM (SELECT entry_trade_id FROM orders WHERE entry_trade_id IS NOT"
                                " NULL GROUP BY entry_trade_id HAVING count(*) > 1)").fetchone() == (0,), why
            assert conn.execute("SELECT count(*) FROM orders o LEFT JOIN trades t ON t.id = o.entry_trade_id WHERE"
                                " o.entry_trade_id IS NOT NULL AND (t.id IS NULL OR t.side <> 'buy')").fetchone() == (0,)
            halts = conn.execute("SELECT count(*) FROM risk_events WHERE action = 'halted'").fetchone()[0]
            resumes = conn.execute("SELECT count(*) FROM risk_events WHERE action = 'resumed'").fetchone()[0]
            halted = conn.execute("SELECT halted_at IS NOT NULL FROM risk_rules").fetchone()[0]
            assert halts - resumes == halted, why  # each halt on the record, and the state it left
            if halted:  # halted: no buy is open, and every holding is on its way out at the next price
                assert conn.execute("SELECT count(*) FROM orders WHERE status = 'OPEN' AND side = 'buy'").fetchone() \
                    == (0,), why
    report(f"{kills} SIGKILLs during protected entries, trailing stops and a drawdown halt that flattens: every"
           " protection tied to one fill, every halt whole with its cancels and sells, verify OK after each")


DELETE_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import paper
ledger = paper.Ledger(sys.argv[2])
for i in range(int(sys.argv[3]), 100000):  # hour i: a price on the hour, one a minute later, that one deleted
    ledger.tick("SOL/USDT", f"{10 + i % 7}", time=1735689600 + 3600 * i)
    ledger.tick("SOL/USDT", "99", time=1735689600 + 3600 * i + 60)
    ledger.delete_prices("SOL/USDT", 1735689600 + 3600 * i + 60)
    ledger.set_symbol("SOL/USDT", tick_size="0.01", step_size=f"0.00{i % 9 + 1}", min_notional=f"{i % 5 + 1}")
    print(i, flush=True)
"""


def test_sigkill_during_prices_delete_and_symbol_rules_leaves_each_whole(tmp_path, report):
    """A price removed is in prices_deleted and nowhere else, with its hour's other price kept; a symbol's
    rules are one whole set of them, the last or the one before."""
    rng = random.Random(SEED)
    db = str(tmp_path / "delete.db")
    new_account(db)
    kills, cut_short = 0, set()  # hours killed between their first price and their second

    def late(hour):
        return paper.to_time(str(1735689600 + 3600 * hour + 60))
    for round_ in range(8):
        why = f"delete kill {round_}, PAPER_FAULT_SEED={SEED}"
        with connection(db) as conn:
            start = conn.execute("SELECT count(*) FROM prices WHERE time LIKE '%:00:00.000000Z'").fetchone()[0]
        child = subprocess.Popen([sys.executable, "-c", DELETE_CHILD, str(HERE), db, str(start)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        child.stdout.readline()
        landed, out, err = killed_after(child, rng.uniform(0, 0.2))
        kills += landed
        assert "Traceback" not in err, (why, err)
        assert_consistent(db, why)
        with connection(db) as conn:
            hours = conn.execute("SELECT count(*) FROM prices WHERE time LIKE '%:00:00.000000Z'").fetchone()[0]
            kept = [time for (time,) in conn.execute("SELECT time FROM prices WHERE time LIKE '%:01:00.000000Z'")]
            deleted = [time for (time,) in conn.execute("SELECT time FROM prices_deleted ORDER BY time")]
            rules = conn.execute("SELECT tick_size, step_size, min_notional FROM symbols").fetchall()
        assert kept in ([], [late(hours - 1)]), (why, kept)  # only the last hour's, killed before its delete
        if not kept and late(hours - 1) not in deleted:
            cut_short.add(hours - 1)  # killed after its first price
        assert deleted == [late(hour) for hour in range(hours) if hour not in cut_short and late(hour) not in kept]
        sets = [("0.01", f"0.00{hour % 9 + 1}", f"{hour % 5 + 1}.00") for hour in (hours - 1, hours - 2)]
        assert rules == [] and hours <= 1 or rules and rules[0] in sets, (why, rules, sets)
        if kept:  # the retry of the delete the kill cut off
            with paper.Ledger(db) as ledger:
                ledger.delete_prices("SOL/USDT", kept[0])
    report(f"{kills} SIGKILLs during prices being recorded and deleted and a symbol's rules being set: each"
           " removed price in prices_deleted only, each set of rules whole, verify OK after each")


def test_tick_fill_and_cancel_of_one_order_racing(tmp_path, report):
    """The same order, set off by a price, filled by hand and cancelled by three processes at once:
    it fills once or is cancelled, never both."""
    outcomes = {}
    for round_ in range(8):
        db = str(tmp_path / f"race{round_}.db")
        account = new_account(db)
        with paper.Ledger(db) as ledger:
            order = ledger.place_order(account, "buy", "BTC/USDT", "1", "100")
        argvs = [["tick", "--symbol", "BTC/USDT", "--price", "99", "--time", "2026-11-25T14:00:00Z"],
                 ["fill", "--order-id", order.id], ["cancel", "--order-id", order.id]]
        procs = [subprocess.Popen([*PAPER_RUN, *argv, "--db", db], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for argv in argvs[round_ % 3:] + argvs[:round_ % 3]]
        for p in procs:
            p.communicate(timeout=60)
        assert_consistent(db)
        with connection(db) as conn:
            status = conn.execute("SELECT status FROM orders").fetchone()[0]
            trades = conn.execute("SELECT count(*) FROM trades").fetchone()[0]
        assert (status, trades) in (("FILLED", 1), ("CANCELLED", 0)), (status, trades)
        outcomes[status] = outcomes.get(status, 0) + 1
    report(f"tick, fill and cancel of one order from 3 processes at once, 8 times: {outcomes}, never both")


def test_the_same_file_fed_by_two_processes_is_recorded_once(tmp_path, report):
    db = str(tmp_path / "twice.db")
    account = new_account(db)
    resting_orders(db, account, 9)
    path = bars_file(tmp_path / "bars.csv", 2000)
    procs = [subprocess.Popen([*PAPER_RUN, "feed", path, "--db", db], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sorted(out.splitlines()[-1] for out, _ in results) == [
        "recorded 0 prices, skipped 2,000 recorded already; 0 fills, 0 cancelled",
        "recorded 2,000 prices; 9 fills, 0 cancelled"]
    fills, prices = fill_counts(db)
    assert prices == 2000 and len(fills) == 9 and set(fills.values()) == {1}
    assert_consistent(db)
    report("the same 2,000-bar file fed by 2 processes at once: recorded once, 9 fills once each")


def fetch_orders(db, account, count):
    """count orders on BTC/USDT that the fake exchange's one-minute bars reach one after the other as they climb
    (1.00 a minute from 100.00 at midnight): limit sells and stop buys."""
    with paper.Ledger(db) as ledger:
        ledger.deposit(account, "1000", currency="BTC")
        for i in range(count):
            if i % 2:
                ledger.place_order(account, "buy", "BTC/USDT", "0.5", type="stop", stop_price=f"{220 + 40 * i}")
            else:
                ledger.place_order(account, "sell", "BTC/USDT", "0.5", f"{200 + 40 * i}")


def check_fetched(db, why, bars=None):
    """Each symbol's prices are its first bars from 2025-01-01 00:00 on, a minute apart (no gap, no duplicate),
    as many for both (whole steps) and, given bars, all of them; every order filled at most once."""
    counts = []
    for symbol in ("BTC/USDT", "ETH/USDT"):
        times = [row[0] for row in query(db, "SELECT time FROM prices WHERE symbol = ? ORDER BY id", symbol)]
        assert times == [paper.epoch_time(LISTED + 60_000 * i) for i in range(len(times))], why
        counts.append(len(times))
    assert counts[0] == counts[1] and counts[0] in (bars, *range(0, bars or 10**9, 1000)), (why, counts)
    fills, _ = fill_counts(db)
    assert all(n == 1 for n in fills.values()), why
    return counts[0], len(fills)


def test_sigkill_during_fetch_keeps_whole_steps_and_the_rerun_goes_on(tmp_path, report):
    rng = random.Random(SEED)
    db = str(tmp_path / "fetch.db")
    account = new_account(db)
    fetch_orders(db, account, 30)
    with FakeBinance(LISTED + 3000 * 60_000 + 30_000) as fake:  # 3,000 closed bars of each symbol: 3 steps
        argv = [*PAPER_RUN, "fetch", "BTC/USDT", "ETH/USDT", "--interval", "1m", "--start", "2025-01-01",
                "--base-url", fake.url]
        new_account(tmp_path / "timed.db")
        whole = timed([*argv, "--db", str(tmp_path / "timed.db")])  # a run on this machine: kills spread over it
        kills = recorded = 0
        for round_ in range(6):
            why = f"fetch kill {round_}, PAPER_FAULT_SEED={SEED}"
            child = subprocess.Popen([*argv, "--db", db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(rng.uniform(0.15, 0.7) * whole)  # most of a run is its start and its first step
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate()
            kills += child.returncode == -signal.SIGKILL
            assert "Traceback" not in err, why
            assert_consistent(db, why)
            recorded = check_fetched(db, why)[0]
        result = subprocess.run([*argv, "--db", db], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert result.stdout.splitlines()[-1].startswith(f"recorded {2 * (3000 - recorded):,} prices;")
        bars, fills = check_fetched(db, "the last run", bars=3000)
        assert_consistent(db)
    report(f"{kills} SIGKILLs during fetch of 2 x 3,000 bars with 30 resting orders: whole steps kept, each rerun"
           f" went on with no gap and no duplicate, {fills} fills once each, verify OK after each")


def test_ctrl_c_during_fetch_says_exactly_what_was_recorded(tmp_path, report):
    """A Ctrl-C at any moment of a fetch (once paper's code runs) ends it between two steps, or at once
    while it waits for the exchange: exit 130, and the summary counts what the database holds."""
    rng = random.Random(SEED)
    with FakeBinance(LISTED + 3000 * 60_000 + 30_000) as fake:
        argv = [*PAPER_RUN, "fetch", "BTC/USDT", "ETH/USDT", "--interval", "1m", "--start", "2025-01-01",
                "--base-url", fake.url]
        new_account(tmp_path / "timed.db")
        whole = timed([*argv, "--db", str(tmp_path / "timed.db")])
        stopped = 0
        for round_ in range(4):
            why = f"fetch Ctrl-C {round_}, PAPER_FAULT_SEED={SEED}"
            db = str(tmp_path / f"sigint{round_}.db")
            new_account(db)
            fake.requests.clear()
            child = subprocess.Popen([*argv, "--db", db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            while not fake.requests and child.poll() is None:  # paper's code runs: it asked the exchange's time
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.8) * whole)
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=60)
            recorded, _ = check_fetched(db, why)
            assert out.startswith(f"recorded {2 * recorded:,} prices; 0 fills, 0 cancelled; "), (why, out, err)
            if child.returncode == 130:
                stopped += 1
                assert err == ("paper: error: interrupted: what is summed up above is recorded, and the same command"
                               " goes on from there\n"), why
            else:
                assert (child.returncode, err, recorded) == (0, "", 3000), why
    report(f"{stopped} Ctrl-Cs during fetch: each ended it between two steps, exit 130, its summary true")

def test_the_same_fetch_by_two_processes_at_once_records_each_bar_once(tmp_path, report):
    db = str(tmp_path / "twice.db")
    account = new_account(db)
    fetch_orders(db, account, 9)
    with FakeBinance(LISTED + 3000 * 60_000 + 30_000) as fake:
        argv = [*PAPER_RUN, "fetch", "BTC/USDT", "ETH/USDT", "--interval", "1m", "--start", "2025-01-01",
                "--base-url", fake.url, "--db", db, "--json"]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    summaries = [json.loads(out) for out, _ in results]
    assert sum(summary["recorded"] for summary in summaries) == 6000  # the other skipped them, or went on after them
    assert sum(len(summary["fills"]) for summary in summaries) == check_fetched(db, "two at once", bars=3000)[1]
    assert_consistent(db)
    report("the same fetch of 2 x 3,000 bars by 2 processes at once: each bar recorded once, each fill once")


# A strategy that orders every third bar (a market buy, or all out) and keeps every bar's time in its state;
# pause makes each bar take at least that long, so that a kill lands mid-run however fast the machine is.
EVERY_THIRD = """
import time

PARAMS = {"every": 3, "pause": 0.0}


def on_bar(ctx, bar):
    time.sleep(ctx.params["pause"])
    seen = ctx.state.setdefault("seen", [])
    seen.append(bar.time)
    if len(seen) % ctx.params["every"] == 0:
        if ctx.position():
            ctx.close()
        else:
            ctx.buy("0.5")
"""


def strategy_run(db):
    """(bars handled, the times in its state, orders placed) of the one strategy run in db."""
    with connection(db) as conn:
        row = conn.execute("SELECT bars, state FROM strategy_runs").fetchone()
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    return (row[0], json.loads(row[1])["seen"], orders) if row else (0, [], orders)


def check_run(db, times, why, every=3):
    """verify OK, each bar handled once and in order, one order every third bar: none placed twice."""
    assert_consistent(db, why)
    bars, seen, orders = strategy_run(db)
    assert bars == len(seen) and seen == times[:len(seen)], why
    assert orders == len(seen) // every, why
    return bars


def test_sigkill_during_a_run_resumes_without_doing_anything_twice(tmp_path, report):
    rng = random.Random(SEED)
    db, strategy = str(tmp_path / "run.db"), tmp_path / "every_third.py"
    strategy.write_text(EVERY_THIRD)
    account = new_account(db)
    path = bars_file(tmp_path / "bars.csv", 300)
    times = [paper.to_time(line.split(",")[0]) for line in Path(path).read_text().splitlines()[1:]]
    argv = [*PAPER_RUN, "run", str(strategy), "--account-id", account, "--feed", path, "--db", db]
    kills, progress = 0, []
    for round_ in range(8):  # killed after 1-6 fills (one every 3 bars, each printed once committed) and a moment:
        # mid-run whatever the machine's speed, at most 8 x 18 bars in all
        why = f"run kill {round_}, PAPER_FAULT_SEED={SEED}"
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(rng.randint(1, 6)):
            child.stdout.readline()
        landed, out, err = killed_after(child, rng.uniform(0, 0.005))
        kills += landed
        assert "Traceback" not in err and child.returncode == -signal.SIGKILL, (why, err)
        progress.append(check_run(db, times, why))
    final = cli(*argv[len(PAPER_RUN):])
    assert final.returncode == 0 and check_run(db, times, "the last restart") == 300
    kept = str(tmp_path / "kept.db")  # backtest and live agree, however often the run was killed
    assert cli("backtest", str(strategy), "--data", path, "--balance", "1000000", "--db", kept).returncode == 0
    assert fill_history(db) == fill_history(kept) and strategy_run(db)[1:] == strategy_run(kept)[1:]
    assert kills == 8
    report(f"{kills} SIGKILLs during `run --feed` of 300 bars (handled before each restart: "
           f"{', '.join(map(str, progress[:kills]))}): each bar handled once, no order placed twice, the state and"
           " every fill as an unbroken backtest's, verify OK after each")


def fill_history(db):
    return query(db, "SELECT p.time, t.side, t.qty, t.price, t.fee FROM trades t JOIN prices p ON p.id = t.price_id"
                     " ORDER BY t.id")


def test_sigkill_during_a_backtest_leaves_all_of_its_database_or_none(tmp_path, report):
    rng = random.Random(SEED)
    strategy = tmp_path / "every_third.py"
    strategy.write_text(EVERY_THIRD)
    path = bars_file(tmp_path / "bars.csv", 8000)
    times = [paper.to_time(line.split(",")[0]) for line in Path(path).read_text().splitlines()[1:]]
    kills, whole = 0, 0
    for round_ in range(5):
        why = f"backtest kill {round_}, PAPER_FAULT_SEED={SEED}"
        kept = tmp_path / f"kept{round_}.db"
        child = subprocess.Popen([*PAPER_RUN, "backtest", str(strategy), "--data", path, "--balance",
                                  "1000000", "--param", "every=50", "--param", "pause=0.0001", "--db", str(kept)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # 0.8 s or more: killed mid-run
        landed, _, _ = killed_after(child, rng.uniform(0.1, 0.7))
        kills += landed
        if kept.exists():  # all of it
            whole += 1
            assert check_run(str(kept), times, why, every=50) == len(times) and fill_counts(str(kept))[1] == len(times)
    litter = [name for name in os.listdir(tmp_path) if name.endswith((".new", ".new-wal", ".new-shm"))]
    result = cli("backtest", str(strategy), "--data", path, "--param", "every=50", "--db", str(tmp_path / "last.db"))
    assert result.returncode == 0 and [name for name in os.listdir(tmp_path) if ".new" in name] == []
    assert check_run(str(tmp_path / "last.db"), times, "uncut", every=50) == len(times)  # all of it
    assert kills == 5, f"only {kills} backtests were killed mid-run"
    report(f"{kills} SIGKILLs during `backtest --db` of 8,000 bars: each database whole ({whole}) or absent"
           f" ({kills - whole}); what they left beside it ({len(litter)} files) removed by the next backtest, which"
           " wrote all of its own")


def test_the_same_run_started_twice_at_once_handles_each_bar_once(tmp_path, report):
    db, strategy = str(tmp_path / "twice.db"), tmp_path / "every_third.py"
    strategy.write_text(EVERY_THIRD)
    account = new_account(db)
    path = bars_file(tmp_path / "bars.csv", 300)
    times = [paper.to_time(line.split(",")[0]) for line in Path(path).read_text().splitlines()[1:]]
    argv = [*PAPER_RUN, "run", str(strategy), "--account-id", account, "--feed", path, "--db", db]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [child.communicate(timeout=120) for child in runs]
    refusals = [err for child, (_, err) in zip(runs, results) if child.returncode == 1]
    assert sorted(child.returncode for child in runs) in ([0, 1, 1], [0, 0, 1], [0, 0, 0]), results
    assert all(err.startswith("paper: error: every_third.py on account ") and err.endswith(
        "a strategy runs on an account once at a time\n") for err in refusals), refusals
    assert cli(*argv[len(PAPER_RUN):]).returncode == 0  # then once more, to the end
    assert check_run(db, times, "three runs at once") == 300
    report(f"the same strategy run started 3 times at once: {len(refusals)} refused as it saw another move the run"
           " on, each bar handled once, no order placed twice")


def test_a_sweep_interrupted_or_killed_leaves_no_worker_and_no_database(tmp_path, report):
    import tempfile
    strategy = tmp_path / "every_third.py"
    strategy.write_text(EVERY_THIRD)
    path = bars_file(tmp_path / "bars.csv", 2000)
    argv = [*PAPER_RUN, "backtest", str(strategy), "--data", path, "--param", "every=5,7,11,13",
            "--param", "pause=0.001", "--jobs", "2"]  # 2 s a combination or more: still running when stopped
    workers = []
    for stop in (signal.SIGINT, signal.SIGKILL):
        sweep = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children, waited = [], 0
        while len(children) < 2 and waited < 600:  # its 2 workers, once they are started (Linux's /proc)
            time.sleep(0.05)
            waited += 1
            children = Path(f"/proc/{sweep.pid}/task/{sweep.pid}/children").read_text().split()
        time.sleep(0.3)  # each in a backtest of its own
        sweep.send_signal(stop)
        out, err = sweep.communicate(timeout=60)
        assert (sweep.returncode, out) == ((130, "") if stop == signal.SIGINT else (-signal.SIGKILL, ""))
        assert err == ("paper: error: interrupted; nothing was recorded\n" if stop == signal.SIGINT else "")
        workers += [int(pid) for pid in children]
    deadline = time.time() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers), "a sweep's worker outlived it"
    left = [name for name in os.listdir(tempfile.gettempdir())
            if any(name.startswith(f"paper-backtest-{pid}-") for pid in workers)]
    assert cli("backtest", str(strategy), "--data", path, "--param", "every=500").returncode == 0  # which removes
    # what they left
    assert not any(name in os.listdir(tempfile.gettempdir()) for name in left)
    report(f"a sweep on 2 workers stopped by Ctrl-C and by SIGKILL: both workers end with it each time, and the"
           f" {len(left)} temporary databases they left are removed by the next backtest")


# --- 2. Concurrent writers and readers ---

WRITER = r"""
import random, sys
sys.path.insert(0, sys.argv[1])
import paper
db, accounts, seed = sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
rng = random.Random(seed)
for i in range(100):
    account, cents = rng.choice(accounts), rng.randint(1, 100000)
    op = rng.choice(["deposit", "deposit", "withdraw", "buy", "sell", "order"])
    amount, qty = f"{cents // 100}.{cents % 100:02d}", f"0.{rng.randint(1, 99):02d}"
    if op in ("deposit", "withdraw"):
        code = paper.main([op, "--account-id", account, "--amount", amount, "--db", db])
    elif op == "order":  # placed and cancelled: reserves and releases
        ledger = paper.Ledger(db)
        code = paper.main(["cancel", "--order-id", ledger.place_order(account, "buy", "ETH/USDT", qty, amount).id,
                           "--db", db])
        ledger.close()
    else:
        code = paper.main(["trade", "--account-id", account, "--side", op, "--symbol", "ETH/USDT", "--qty", qty,
                           "--price", amount, "--db", db])
    if code:
        sys.exit(code)
    print("done", op, account, amount, qty, flush=True)
"""

READER = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import paper
db, accounts, stop = sys.argv[2], sys.argv[3].split(","), sys.argv[4]
reads = 0
while not os.path.exists(stop):
    for account in accounts:
        for argv in (["status", "--account-id", account], ["history", "--account-id", account, "--limit", "20"]):
            if paper.main([*argv, "--db", db, "--json"]):
                sys.exit(1)
            reads += 1
print(reads, file=sys.stderr)
"""


def test_concurrent_writers_and_readers(tmp_path, report):
    db = str(tmp_path / "busy.db")
    accounts = [new_account(db, balance="10000000") for _ in range(3)]
    with paper.Ledger(db) as ledger:
        for account in accounts:
            ledger.deposit(account, "1000", "ETH")
    stop = str(tmp_path / "stop")
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(HERE), db, ",".join(accounts), stop],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(HERE), db, ",".join(accounts), str(SEED + n)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(8)]
    results = [w.communicate(timeout=300) for w in writers]
    Path(stop).touch()
    reads = [r.communicate(timeout=60)[1] for r in readers]
    assert [w.returncode for w in writers] == [0] * 8, [err for _, err in results]
    assert [err for _, err in results] == [""] * 8
    assert [r.returncode for r in readers] == [0, 0], reads
    expected = {(account, currency): Decimal(start) for account in accounts
                for currency, start in (("USDT", 10000000), ("ETH", 1000))}
    operations = 0
    for out, _ in results:
        for line in out.splitlines():
            if not line.startswith("done "):
                continue
            op, account, amount, qty = line.split()[1:]
            amount, qty = Decimal(amount), Decimal(qty)
            fee = amount * qty * Decimal("0.001")  # exact here: at most 7 decimal places
            expected[account, "USDT"] += {"deposit": amount, "withdraw": -amount, "buy": -amount * qty - fee,
                                          "sell": amount * qty - fee, "order": 0}[op]
            expected[account, "ETH"] += {"buy": qty, "sell": -qty}.get(op, 0)
            operations += 1
    assert operations == 800
    with paper.Ledger(db) as ledger:
        assert {(a, c): ledger.account(a).balances[c].available for a, c in expected} == expected
    assert_consistent(db)
    report(f"8 writer processes x 100 deposits, withdrawals, trades, orders and cancels with 2 readers"
           f" ({sum(map(int, reads))} reads):"
           " 0 errors, 0 'database is locked', final balances exact, verify OK")


INIT_AT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import paper
start = float(sys.argv[3])
while time.time() < start:
    pass
sys.exit(paper.main(["init", "--db", sys.argv[2]]))
"""


def test_six_inits_at_the_same_instant_create_the_schema_once(tmp_path, report):
    db = str(tmp_path / "new" / "p.db")
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, "-c", INIT_AT, str(HERE), db, str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, results
    assert all(err == "" for _, err in results)
    ids = {out.strip() for out, _ in results}
    with connection(db) as conn:
        assert {row[0] for row in conn.execute("SELECT id FROM accounts")} == ids and len(ids) == 6
        assert conn.execute("PRAGMA user_version").fetchone() == (paper.SCHEMA_VERSION,)
        assert {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} == {
            "accounts", "balances", "orders", "trades", "transactions", "prices", "prices_deleted", "symbols",
            "risk_rules", "risk_events", "strategy_runs"}
    assert_consistent(db)
    report("6 processes running init on a missing database at once: schema created once, 6 accounts")


# --- 3. Retries ---

def test_the_same_ref_from_8_processes_at_once_is_one_transaction(tmp_path, report):
    db = str(tmp_path / "ref.db")
    account = new_account(db)
    procs = [subprocess.Popen([*PAPER_RUN, "deposit", "--account-id", account, "--amount", "12.34",
                               "--ref", "same-key", "--db", db, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, results
    assert len({json.loads(out)["id"] for out, _ in results}) == 1
    assert len(rows_with_ref(db, "same-key")) == 1
    with paper.Ledger(db) as ledger:
        assert ledger.account(account).balances["USDT"].available == Decimal("1000012.34")
    trades = [subprocess.Popen([*PAPER_RUN, "trade", "--account-id", account, "--side", "buy", "--symbol",
                                "BTC/USDT", "--qty", "0.01", "--price", "65000", "--ref", "same-trade", "--db", db,
                                "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(8)]
    results = [p.communicate(timeout=60) for p in trades]
    assert [p.returncode for p in trades] == [0] * 8, results
    assert len({json.loads(out)["id"] for out, _ in results}) == 1
    with paper.Ledger(db) as ledger:
        assert ledger.account(account).balances["BTC"].available == Decimal("0.01")
        assert ledger.account(account).balances["USDT"].available == Decimal("1000012.34") - Decimal("650.65")
    report("the same --ref from 8 processes at once: 1 transaction; the same for a trade: 1 trade")


# --- 4. Bad input ---

A = "ACCOUNT"  # replaced by the funded account's id
E = "EXCHANGE"  # replaced by the fake exchange's address
SMA_CROSS = str(HERE / "examples" / "sma_cross.py")
BAD_INPUTS = [
    # amounts
    *[["deposit", "--account-id", A, "--amount", amount] for amount in BAD_AMOUNTS],
    ["withdraw", "--account-id", A, "--amount", "-0"],
    ["withdraw", "--account-id", A, "--amount", "1000000.01"],  # more than the account holds
    ["init", "--balance", "-1"], ["init", "--balance", "1e3"], ["init", "--balance", "1" * 19],
    ["--version"], ["--db", "x.db", "status"], ["init", "--db", "/proc/x.db"], ["backup", "--to", "/proc/x.db"],
    # ids
    ["deposit", "--account-id", "00000000-0000-4000-8000-000000000000", "--amount", "1"],
    ["deposit", "--account-id", "abc", "--amount", "1"],
    ["deposit", "--account-id", "'; DROP TABLE accounts; --", "--amount", "1"],
    ["history", "--account-id", "' OR '1'='1"], ["status", "--account-id", "%%%%"], ["close", "--account-id", "____"],
    ["verify", "--account-id", "0000"], ["history", "--account-id", A + "0"],
    # names, descriptions, refs
    ["init", "--name", "x" * 10_000], ["init", "--name", "bell\x07"], ["init", "--name", "two\nlines"],
    ["init", "--name", ""], ["deposit", "--account-id", A, "--amount", "1", "--description", "tab\t"],
    ["deposit", "--account-id", A, "--amount", "1", "--ref", "r" * 101],
    ["deposit", "--account-id", A, "--amount", "1", "--ref", ""],
    # currencies
    ["deposit", "--account-id", A, "--amount", "1", "--currency", "US D"],
    ["deposit", "--account-id", A, "--amount", "1", "--currency", "ABCDEFGHIJK"],
    ["deposit", "--account-id", A, "--amount", "1", "--currency", ""],
    ["deposit", "--account-id", A, "--amount", "1", "--currency", "€UR"],
    ["withdraw", "--account-id", A, "--amount", "1", "--currency", "EUR"],  # holds none
    ["init", "--currency", "X"],
    # flags
    ["deposit", "--account-id", A, "--amount"], ["deposit", "--account-id", A], ["deposit", "--amount", "1"],
    ["deposit", "--account-id", A, "--amount", "1", "--amount", "2"],
    ["deposit", "--account-id", A, "--amount", "1", "--bogus"], ["deposit", "--account-id", A, "--amo", "1"],
    ["history", "--account-id", A, "--limit", "0"], ["history", "--account-id", A, "--limit", "ten"],
    ["status", "--account-id", A, "--account-id", A], ["init", "--leverage", "5"], ["init", "--leverage", "0"],
    ["init", "--leverage", "2", "--max-leverage", "1"], ["frobnicate"], [], ["--db"], ["status", "extra"],
    # trading
    *[["trade", "--account-id", A, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1", "--price", "100", *extra]
      for extra in (["--qty", "0"], ["--price", "-1"], ["--fee-rate", "1.5"], ["--side", "long"], ["--symbol", "ETH"],
                    ["--symbol", "ETH/ETH"], ["--symbol", "ETH-USDT"], ["--price", "1e9"], ["--qty", "1000"],
                    ["--ref", "\x00"])],
    ["trade", "--account-id", A, "--side", "sell", "--symbol", "ETH/USDT", "--qty", "1", "--price", "100"],
    ["trade", "--account-id", A, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "0.1"],
    ["order", "--account-id", A, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1", "--limit-price", "0"],
    ["order", "--account-id", A, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1", "--limit-price", "2000000"],
    ["order", "--account-id", A, "--side", "sell", "--symbol", "ETH/USDT", "--qty", "1", "--limit-price", "1"],
    ["order", "--account-id", A, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1"],
    ["fill", "--order-id", "abcd"], ["fill", "--order-id", "abc"], ["fill", "--order-id", "x' OR 1=1"],
    ["fill"], ["cancel", "--order-id", "00000000"], ["cancel"], ["orders"], ["orders", "--account-id", "0000"],
    ["reset", "--account-id", A, "--balance", "-1"], ["reset", "--account-id", "0000"],
    ["reset", "--account-id", A, "--currency", "X"],
    ["status", "--account-id", A, "--price", "ETH"], ["status", "--account-id", A, "--price", "USDT=2"],
    ["status", "--price", "ETH=1"], ["status", "--account-id", A, "--quote", "ETH", "--price", "ETH=1"],
    ["deposit", "--account-id", A, "--amount", "1", "--ref", "rent "], ["backup"], ["backup", "--to", ""],
    ["backup", "--to", "/dev/null/folder/copy.db"], ["backup", "--to", "/dev/null"],
    ["deposit", "--account-id", A, "--amount", "1", "--description", "\u202e"],
    # the market
    *[["tick", "--symbol", "ETH/USDT", *argv] for argv in (
        ["--price", "0"], ["--price", "-1"], ["--price", "1e3"], ["--price", "NaN"], [], ["--price", "1", "--open", "1"],
        ["--open", "2", "--high", "1", "--low", "1", "--close", "1"], ["--open", "1", "--high", "2", "--low", "1"],
        ["--price", "1", "--time", "tomorrow"], ["--price", "1", "--time", "2026-02-30"],
        ["--price", "1", "--time", "1e9"], ["--price", "1", "--time", "-5"], ["--price", "1", "--time", ""])],
    ["tick", "--symbol", "ETH", "--price", "1"], ["tick", "--price", "1"],
    ["feed", "/nonexistent.csv"], ["feed", "-", "--symbol", "ETH"], ["prices", "--limit", "0"],
    ["prices", "--symbol", "ETH"],
    *[["order", "--account-id", A, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1", *argv] for argv in (
        ["--type", "stop"], ["--type", "market", "--limit-price", "1"], ["--type", "oco", "--limit-price", "2",
                                                                         "--stop-price", "1"],
        ["--type", "stop-limit", "--limit-price", "1"], ["--limit-price", "1", "--expires", "never"],
        ["--limit-price", "1", "--stop-price", "2"], ["--limit-price", "1", "--ref", " x"])],
    ["trade", "--account-id", A, "--side", "buy", "--symbol", "ETH/USDT", "--qty", "1", "--slippage", "1"],
    ["trade", "--account-id", A, "--side", "buy", "--symbol", "SOL/USDT", "--qty", "1"],  # no price recorded
    # results
    ["equity", "--account-id", "0000"], ["equity", "--account-id", A, "--quote", "U"], ["equity"],
    ["stats", "--account-id", A, "--quote", "€"], ["stats", "--account-id", A, "--csv"],
    ["chart", "--account-id", A, "--output", ""], ["chart", "--account-id", A, "--output", "/nonexistent/dir/c.svg"],
    ["chart", "--account-id", A, "--percent", "--percent"], ["chart", "--account-id", A, "--log", "x"],
    ["trades", "--account-id", "0000"], ["trades", "--account-id", A, "--symbol", "BTC"], ["trades"],
    ["report", "--account-id", A, "--output", ""], ["report", "--account-id", A, "--output", "/nonexistent/dir/r.html"],
    ["report", "--account-id", A, "--quote", "€"], ["report", "--account-id", "0000"],
    ["import", "--account-id", A, "/nonexistent.csv"], ["import", "--account-id", A],
    # risk and exchange rules
    *[["risk", "--account-id", A, *argv] for argv in (
        ["--max-position", "5"], ["--max-position", "1"], ["--max-position", "150%"], ["--max-position", "-5%"],
        ["--max-position", "0%"], ["--stop-loss", "5%", "--trailing-stop", "3%"],
        ["--take-profit", "10%", "--trailing-stop", "3%"], ["--flatten"], ["--cooldown", "0"],
        ["--cooldown", "2.5"], ["--max-open-positions", "-1"], ["--clear", "--resume"], ["--resume"],
        ["--max-drawdown", "20%", "--events"], ["--stop-loss", "abc"])],
    ["risk", "--account-id", "0000"], ["risk"],
    ["symbol", "BTC"], ["symbol", "BTC/USDT", "--tick-size", "0"], ["symbol", "BTC/USDT", "--step-size", "-1"],
    ["symbol"], ["symbol", "BTC/USDT", "--min-qty", "1e-3"], ["symbol", "BTC/XXX", "--fetch", "--base-url", E],
    ["symbol", "BTC/USDT", "--fetch", "--tick-size", "0.01", "--base-url", E], ["symbol", "BTC/USDT", "--clear",
                                                                                "--tick-size", "0.01"],
    ["prices", "--delete"], ["prices", "--delete", "--symbol", "ETH/USDT"],
    ["prices", "--delete", "--symbol", "ETH/USDT", "--from", "2999-01-01"],
    ["prices", "--delete", "--symbol", "ETH/USDT", "--from", "yesterday"], ["prices", "--from", "2025-01-01"],
    *[["trade", "--account-id", A, "--side", "buy", "--symbol", "ETH/USDT", "--price", "100", *argv] for argv in (
        ["--qty", "1", "--sl", "110"], ["--qty", "1", "--tp", "90"], ["--qty", "1", "--sl", "90", "--trail", "3%"],
        ["--qty", "1", "--tp", "110", "--trail", "3%"], ["--qty", "1", "--risk", "1%", "--sl", "90"], ["--risk", "1%"],
        [], ["--qty", "1", "--trail", "150%"], ["--qty", "1", "--trail", "5"], ["--sl", "90"],
        ["--qty", "1", "--sl", "0"], ["--risk", "1%", "--sl", "100"])],
    ["trade", "--account-id", A, "--side", "sell", "--symbol", "ETH/USDT", "--qty", "1", "--price", "100", "--sl", "90"],
    *[["order", "--account-id", A, "--side", "sell", "--symbol", "ETH/USDT", "--qty", "1", *argv] for argv in (
        ["--type", "trailing-stop"], ["--type", "trailing-stop", "--trail", "3%", "--trail-amount", "5"],
        ["--type", "limit", "--limit-price", "1", "--trail-amount", "5"], ["--type", "trailing-stop", "--trail", "3%"],
        ["--type", "trailing-stop", "--trail-amount", "5", "--stop-price", "1"], ["--type", "trailing-stop",
                                                                                "--trail", "100%"])],
    # market data from the exchange: all but the last two refused before any request
    *[["fetch", *argv] for argv in (
        ["BTC/USDT", "--interval", "2h30"], ["BTC/USDT", "--interval", "1H"], ["BTC/USDT"], ["--interval", "1h"],
        ["BTC", "--interval", "1h"], ["BTC/USDT", "btc/usdt", "--interval", "1h"],
        ["BTC/USDT", "--interval", "1h", "--start", "yesterday"],
        ["BTC/USDT", "--interval", "1h", "--end", "2025-02-30"],
        ["BTC/USDT", "--interval", "1h", "--start", "2025-02-01", "--end", "2025-01-01"],
        ["BTC/USDT", "--interval", "1h", "--end", "2025-01-01", "--follow"],
        ["BTC/USDT", "--interval", "1h", "--base-url", "ftp://example.com"],
        ["BTC/USDT", "--interval", "1h", "--base-url", "not a url"],
        ["BTC/USDT", "--interval", "1h", "--base-url", "http://127.0.0.1:99999"],
        ["BTC/USDT", "--interval", "1h", "--base-url", "https://"],
        ["BTC/USDT", "--interval", "1h", "--base-url", "http://user:secret@127.0.0.1:1"],
        ["BTC/USDT", "--interval", "1h", "--base-url", "http://127.0.0.1:1/?x=1"],
        ["BTC/XXX", "--interval", "1h", "--base-url", E], ["BTC/USDT", "--interval", "1h", "--base-url", E + "/v9"],
        ["BTCU/SDT", "--interval", "1h", "--base-url", E], ["BTC/USDT", "--interval", "1h", "--follow", "--base-url",
                                                            E + "/v9"])],
    # strategies (the --db every bad input gets is an existing file: backtest refuses to write over it)
    ["backtest"], ["backtest", SMA_CROSS], ["backtest", "/nonexistent.py", "--data", "x.csv"],
    ["backtest", "/dev/null", "--data", "x.csv"], ["backtest", str(HERE / "README.md"), "--data", "x.csv"],
    *[["backtest", SMA_CROSS, "--data", "/nonexistent.csv", *argv] for argv in (
        [], ["--param", "fast"], ["--param", "fast=1.5"], ["--param", "fast=x,y"], ["--param", "quick=1"],
        ["--param", "fast=1:9:0"], ["--param", "fast=1,2", "--constraint", "open('x')"], ["--jobs", "0"],
        ["--param", "fast=1,2", "--jobs", "-1"], ["--param", "fast=1,2", "--maximize", "luck"], ["--csv"],
        ["--balance", "-1"], ["--fee-rate", "1"], ["--slippage", "x"], ["--symbol", "BTC"], ["--chart", ""],
        ["--param", "fast=1,2", "--constraint", "fast >"])],
    ["run", SMA_CROSS, "--account-id", A], ["run", SMA_CROSS, "--account-id", A, "--feed", "/nonexistent.csv"],
    ["run", SMA_CROSS, "--account-id", "0000", "--feed", "-"], ["run", "/dev/null", "--account-id", A, "--feed", "-"],
    ["run", SMA_CROSS, "--account-id", A, "--feed", "-", "--param", "fast=1,2"],
    ["run", SMA_CROSS, "--account-id", A, "--feed", "-", "--param", "slow=2.5"], ["run", SMA_CROSS, "--feed", "-"],
    ["run", SMA_CROSS, "--account-id", A, "--fetch", "BTC/USDT"], ["run", SMA_CROSS, "--account-id", A, "--fetch",
                                                                    "BTC/USDT", "--interval", "7m"],
    ["run", SMA_CROSS, "--account-id", A, "--fetch", "BTC/XXX", "--interval", "1m", "--base-url", E],
    ["run", SMA_CROSS, "--account-id", A, "--feed", "-", "--fetch", "BTC/USDT", "--interval", "1m"],
    ["run", SMA_CROSS, "--account-id", A, "--feed", "-", "--interval", "1m"],
    ["run", SMA_CROSS, "--account-id", A, "--fetch", "BTC/USDT", "btc/usdt", "--interval", "1m", "--base-url", E],
    ["symbol", "BTC/USDT", "btc/usdt", "--fetch", "--base-url", E], ["symbol", "ETH/USDT", "ETH/USDT"],
]


@pytest.fixture(scope="module")
def funded(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("bad") / "bad.db")
    return db, new_account(db)


@pytest.fixture(scope="module")
def exchange_url():
    with FakeBinance(LISTED + 5 * 60_000 + 30_000) as fake:
        yield fake.url


@pytest.mark.parametrize("argv", BAD_INPUTS, ids=lambda argv: " ".join(argv)[:60])
def test_bad_input_is_refused_in_one_line_and_changes_nothing(funded, exchange_url, argv, capsys, monkeypatch):
    db, account = funded
    monkeypatch.setenv("PAPER_MARKET_URL", exchange_url)  # no bad input reaches the internet
    argv = [account if arg == A else arg.replace(E, exchange_url) for arg in argv]
    before = dump(db)
    code = paper.main([*argv, "--db", db])
    out, err = capsys.readouterr()
    assert code in (1, 2) and out == "" and "Traceback" not in err
    if code == 1:
        assert err.startswith("paper: error: ") and err.count("\n") == 1, err
    else:
        assert re.search(r"^paper( \w+)?: error: .+\n\Z", err, re.M), err  # argparse's usage message
    assert dump(db) == before


def test_bad_input_count(report):
    untried = set(paper.COMMANDS) - {argv[0] for argv in BAD_INPUTS if argv}
    assert not untried, f"no bad input tries {sorted(untried)}"
    report(f"{len(BAD_INPUTS)} bad inputs across every command, plus {len(BAD_DATABASES)} unusable database"
           " files: each refused in one line, exit 1 or 2, no traceback, database unchanged")


def test_bad_input_through_real_processes(funded):
    db, account = funded
    before = dump(db)
    for argv in (["deposit", "--account-id", account, "--amount", "１０"], ["init", "--name", "x" * 10_000],
                 ["history", "--account-id", "'; DROP TABLE accounts; --"], ["withdraw"]):
        result = cli(*argv, "--db", db)
        assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
        assert result.stderr.splitlines()[-1].startswith(f"paper {argv[0]}: error: ")
    assert dump(db) == before


@pytest.mark.parametrize("argv, code, why", [
    (["history", "--account-id", A, "--limit", "9223372036854775808"], 0, "Initial deposit"),
    (["deposit", "--account-id", A, "--amount", "1" + "0" * 18], 2, "more than 18 digits before"),
    (["status", "--db", ""], 2, "argument --db: needs a file name"),
])
def test_a_limit_past_64_bits_is_taken_and_a_19_digit_amount_or_an_empty_db_name_refused(funded, capsys, argv, code,
                                                                                         why):
    db, account = funded
    argv = [account if arg == A else arg for arg in argv]
    got = paper.main(argv if "--db" in argv else [*argv, "--db", db])
    out, err = capsys.readouterr()
    assert got == code and why in (out if code == 0 else err) and "Traceback" not in err


@pytest.mark.parametrize("timeout", ["3000000000", "99999999999999999999", "-1", "", "1e3"])
def test_busy_timeouts_out_of_range_are_usage_errors(funded, timeout):
    db, _ = funded
    result = cli("status", "--db", db, env={"PAPER_BUSY_TIMEOUT": timeout})
    assert result.returncode == 2 and "PAPER_BUSY_TIMEOUT must be a whole number" in result.stderr


def test_an_import_file_that_is_not_utf8_is_named_with_a_line(funded, tmp_path):
    db, account = funded
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"type,amount,currency,description,ref\nDEPOSIT,1,,caf\xe9,\n")
    before = dump(db)
    result = cli("import", "--account-id", account, str(path), "--db", db)
    assert result.returncode == 1 and result.stderr == f"paper: error: {path}: line 2 is not UTF-8 text\n"
    assert dump(db) == before


def test_order_reserves_are_exact_outside_a_transaction():
    order = paper.Order("id", "account", "ETH/USDT", "buy", Decimal(1), Decimal("999999999999999998.999999999999999999"),
                        Decimal("0.000001"), Decimal(0), Decimal(0), "OPEN", "", "")
    # 999999999999999998.999999999999999999 + a fee of 999999999999.99999900, to the last digit
    assert order.reserve_for(Decimal(1)) == Decimal("1000000999999999998.999998999999999999")


# --- 5. Database files paper cannot use ---

def truncated(path):
    real = path.parent / "real.db"
    new_account(real)
    path.write_bytes(real.read_bytes()[:6000])


def tables_dropped(path):
    new_account(path)
    shell(path, "DROP TABLE balances")


def read_only(path):
    new_account(path)
    path.chmod(0o444)
    path.parent.chmod(0o555)


BAD_DATABASES = {  # what makes it, what the refusal says
    "a folder": (lambda p: p.mkdir(), "is a folder, not a database file"),
    "a text file": (lambda p: p.write_text("not a database\n" * 200), "file is not a database"),
    "an empty file": (lambda p: p.write_bytes(b""), "is not a paper database"),
    "another program's database": (lambda p: shell(p, "CREATE TABLE other (x)"), "is not a paper database"),
    "a truncated copy": (truncated, "malformed"),
    "a newer user_version": (lambda p: shell(p, "CREATE TABLE accounts (id)",
                                             f"PRAGMA user_version = {paper.SCHEMA_VERSION + 1}"),
                             f"has schema version {paper.SCHEMA_VERSION + 1}, newer than this paper.py"),
    "dropped tables": (tables_dropped, "is damaged: table balances is missing"),
    "a read-only file": (read_only, "SQLite must create p.db-shm beside it"),  # in a read-only folder
    "a folder that cannot be created": (lambda p: p.parent.joinpath("file").write_text("x"), "Not a directory"),
}


@pytest.mark.parametrize("kind", BAD_DATABASES)
def test_unusable_database_files(tmp_path, kind):
    tmp_path.chmod(0o755)
    folder = tmp_path / "dbs"
    folder.mkdir(mode=0o755)
    path = folder / "p.db"
    make, why = BAD_DATABASES[kind]
    make(path)
    if kind == "a folder that cannot be created":
        path = folder / "file" / "sub" / "p.db"
    def snapshot():
        return {f.name: f.read_bytes() if f.is_file() else "dir" for f in folder.iterdir()}
    before = snapshot()
    if kind == "a read-only file":  # the child really cannot write it
        probe = subprocess.run([sys.executable, "-c", f"open({str(path)!r}, 'ab')"], capture_output=True,
                               text=True, preexec_fn=without_root_powers)
        assert "PermissionError" in probe.stderr, probe
    commands = [["status"], ["status", "--account-id", "abcd"], ["deposit", "--account-id", "abcd", "--amount", "1"],
                ["withdraw", "--account-id", "abcd", "--amount", "1"], ["verify"], ["history", "--account-id", "abcd"],
                ["close", "--account-id", "abcd"]]
    for argv in commands + [["init"]]:
        result = subprocess.run([*PAPER_RUN, *argv, "--db", str(path)], capture_output=True,
                                text=True, preexec_fn=without_root_powers if kind == "a read-only file" else None)
        expect = 0 if (kind, argv) == ("a folder that cannot be created", ["status"]) else 1
        assert result.returncode == expect, (argv, result)
        if expect:
            assert result.stdout == "" and result.stderr.startswith("paper: error: "), (argv, result)
            assert result.stderr.count("\n") == 1 and (why in result.stderr or argv[0] != "init" and kind ==
                                                        "a folder that cannot be created"), result.stderr
    after = snapshot()
    assert {name: after[name] for name in before} == before
    # A reader of a WAL database may leave SQLite's empty side files; nothing else appears.
    assert set(after) - set(before) <= {"p.db-wal", "p.db-shm"} and not after.get("p.db-wal")
    folder.chmod(0o755)


def test_a_refused_database_keeps_its_unflushed_log(tmp_path):
    """A newer paper left WAL frames behind (killed before its checkpoint): ours must not flush them."""
    db = str(tmp_path / "newer.db")
    new_account(db)
    writer = subprocess.run([sys.executable, "-c", f"""
import os, sqlite3
conn = sqlite3.connect({db!r}, isolation_level=None)
conn.execute("PRAGMA user_version = {paper.SCHEMA_VERSION + 1}")
conn.execute("CREATE TABLE newer_feature (x)")
os._exit(0)  # no close: the frames stay in the WAL
"""])
    assert writer.returncode == 0 and os.path.getsize(db + "-wal") > 0
    before = {name: Path(db + name).read_bytes() for name in ("", "-wal")}
    for argv in (["status"], ["verify"], ["deposit", "--account-id", "abcd", "--amount", "1"], ["init"]):
        result = cli(*argv, "--db", db)
        assert result.returncode == 1 and f"schema version {paper.SCHEMA_VERSION + 1}, newer than this paper.py" in result.stderr
    assert {name: Path(db + name).read_bytes() for name in ("", "-wal")} == before


@pytest.mark.parametrize("make, argv, why", [
    (lambda p: os.mkfifo(p), ["status"], "is not a regular file"),
    (lambda p: os.symlink(p.parent / "nowhere.db", p), ["init"], "is not a regular file"),
    (lambda p: None, ["init", "--db", "SLASH"], "ends with a slash: give the database file's name"),
    (lambda p: None, ["init", "--db", "DEEP"], "is a longer path than SQLite opens (500 bytes)"),
])
def test_a_fifo_a_dangling_symlink_a_trailing_slash_or_an_overlong_path_is_refused(tmp_path, make, argv, why):
    path = tmp_path / "odd.db"
    make(path)
    argv = [{"SLASH": str(tmp_path / "new") + "/", "DEEP": str(tmp_path) + "/d" * 2000 + "/p.db"}.get(a, a)
            for a in argv]
    result = cli(*argv, *([] if "--db" in argv else ["--db", str(path)]))
    assert result.returncode == 1 and result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith("paper: error: ") and why in result.stderr
    assert not (tmp_path / "new").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("sql", [
    "UPDATE balances SET available_amount = 'NaN'",
    "UPDATE balances SET available_amount = CAST(X'FF' AS TEXT)",
    "INSERT INTO balances VALUES ('ffff0000-0000-4000-8000-000000000000', 'USDT', '1.00', '0.00', 'x', 'x')",
])
def test_garbage_in_the_database_gives_one_line(tmp_path, sql):
    db = str(tmp_path / "g.db")
    account = new_account(db)
    shell(db, "PRAGMA ignore_check_constraints = ON", sql)
    for argv in (["status"], ["status", "--account-id", account], ["verify"],
                 ["deposit", "--account-id", account, "--amount", "1"]):
        result = cli(*argv, "--db", db)
        assert "Traceback" not in result.stderr and result.returncode in (0, 1), (argv, result)
        if result.returncode and argv[0] == "verify" and result.stderr == "":
            assert "MISMATCH" in result.stdout  # verify reports what it found on stdout
        elif result.returncode:
            assert result.stdout == "" and result.stderr.startswith("paper: error: ")
            assert result.stderr.count("\n") == 1


def test_a_foreign_database_with_a_hot_journal_is_not_rolled_back(tmp_path):
    """A program killed mid-transaction left a rollback journal: refusing its file must not replay it."""
    db = str(tmp_path / "hot.db")
    writer = subprocess.run([sys.executable, "-c", f"""
import os, sqlite3
conn = sqlite3.connect({db!r}, isolation_level=None)
conn.execute("CREATE TABLE notes (x)")
conn.execute("INSERT INTO notes VALUES (1)")
conn.execute("BEGIN")
conn.execute("INSERT INTO notes SELECT x + 1 FROM notes")
conn.execute("PRAGMA cache_spill = 1")
conn.executemany("INSERT INTO notes VALUES (?)", [(i,) for i in range(20000)])
os._exit(0)  # mid-transaction: the -journal stays, hot
"""])
    assert writer.returncode == 0 and os.path.getsize(db + "-journal") > 0
    before = {name: Path(db + name).read_bytes() for name in ("", "-journal")}
    for argv in (["deposit", "--account-id", "abcd", "--amount", "1"], ["init"], ["status"], ["verify"]):
        result = cli(*argv, "--db", db)
        assert result.returncode == 1 and result.stderr.startswith("paper: error: ") and "Traceback" not in result.stderr
    assert {name: Path(db + name).read_bytes() for name in ("", "-journal")} == before


# --- 6. Full disk ---

FILLER = r"""
import sys
sys.path.insert(0, sys.argv[1])
import paper
for i in range(5000):
    ref = f"fill-{i}"
    code = paper.main(["deposit", "--account-id", sys.argv[3], "--amount", "1.01", "--ref", ref,
                       "--description", "x" * 200, "--db", sys.argv[2], "--json"])
    if code:
        print("failed", ref, code, flush=True)
        break
"""


@pytest.mark.parametrize("headroom", [4096, 20000, 70000])
def test_a_full_disk_fails_cleanly_and_keeps_every_commit(tmp_path, headroom, report):
    db = str(tmp_path / "full.db")
    account = new_account(db)
    limit = os.path.getsize(db) + headroom

    def small_disk():  # EFBIG instead of SIGXFSZ: a write fails as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = subprocess.run([sys.executable, "-c", FILLER, str(HERE), db, account], capture_output=True,
                           text=True, preexec_fn=small_disk, timeout=120)
    assert "Traceback" not in child.stderr
    lines = child.stdout.splitlines()
    assert lines and lines[-1].startswith("failed ") and lines[-1].endswith(" 1"), child.stdout[-500:]
    assert child.stderr.count("\n") == 1 and child.stderr.startswith("paper: error: ")
    assert "(is the disk full?)" in child.stderr
    done = [json.loads(line) for line in child.stdout.split("failed")[0].replace("}\n{", "}\x00{").split("\x00")
            if line.strip()]
    failed_ref = lines[-1].split()[1]
    assert_consistent(db)
    for tx in done:
        assert rows_with_ref(db, tx["reference_id"]) == [(tx["id"],)]
    assert len(rows_with_ref(db, failed_ref)) <= 1
    # With room again, the retry records it exactly once.
    retry = cli("deposit", "--account-id", account, "--amount", "1.01", "--ref", failed_ref,
                "--description", "x" * 200, "--db", db)
    assert retry.returncode == 0, retry.stderr
    assert len(rows_with_ref(db, failed_ref)) == 1
    assert_consistent(db)
    message = child.stderr.split("full.db: ")[1].split(":")[0]
    report(f"disk full after {len(done)} deposits ({headroom} bytes free): exit 1 '{message}',"
           " every commit kept, verify OK, the retry recorded once")


HELD_BATCH = r"""
import sys
sys.path.insert(0, sys.argv[1])
import paper
ledger = paper.Ledger(sys.argv[2])
try:
    with ledger.batch():  # its writes are held back, and written in bulk when something reads
        for i in range(20000):
            try:
                ledger.deposit(sys.argv[3], "1.01", description="x" * 200)
                if i % 50 == 49:
                    ledger.account(sys.argv[3])  # a read: what is held is written now
            except Exception as error:  # a bulk write failed: caught, and the batch goes on
                print("failed at", i, type(error).__name__, flush=True)
                try:
                    ledger.deposit(sys.argv[3], "1", ref="after")
                except paper.PaperError as refusal:
                    print("refused:", refusal, flush=True)
                break
except paper.PaperError as error:
    print("batch:", error, flush=True)
"""


def test_a_batch_whose_held_writes_fail_on_a_full_disk_records_none_of_itself(tmp_path, report):
    """A batch holds its writes and writes them in bulk: when that fails (a full disk) the whole batch is
    rolled back, and what its code tries after catching the error is refused, not recorded on its own."""
    db = str(tmp_path / "full.db")
    account = new_account(db)
    before = query(db, "SELECT count(*), sum(amount) FROM transactions")
    limit = max(os.path.getsize(db), 32768) + 65536

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = subprocess.run([sys.executable, "-c", HELD_BATCH, str(HERE), db, account], capture_output=True, text=True,
                           preexec_fn=small_disk, timeout=120)
    assert "Traceback" not in child.stderr and child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("failed at ") and lines[0].endswith(" PaperError"), lines
    assert lines[1] == f"refused: {paper.ENDED}", lines
    assert lines[2] == f"batch: {paper.ENDED}", lines
    assert query(db, "SELECT count(*), sum(amount) FROM transactions") == before
    assert_consistent(db)
    report(f"a batch whose held writes hit a full disk (at deposit {lines[0].split()[2]}): none of it recorded, the"
           " code that caught the error refused, verify OK")


FULL_DISK_WRITES = {  # a write path: its argv (ACCOUNT, BARS and FOLDER filled in), and what it leaves, in SQL
    "feed": (["feed", "BARS"], "SELECT count(*), max(time) FROM prices WHERE symbol = 'BTC/USDT'"),
    "run": (["run", SMA_CROSS, "--account-id", "ACCOUNT", "--feed", "BARS", "--on-close", "--param", "fast=3",
             "--param", "slow=7"], "SELECT bars, state, (SELECT count(*) FROM trades) FROM strategy_runs"),
    "trade": (["trade", "--account-id", "ACCOUNT", "--side", "buy", "--symbol", "ETH/USDT", "--qty", "0.5",
               "--sl", "5", "--tp", "20", "--ref", "t1"], "SELECT qty, price FROM trades"),
    "order": (["order", "--account-id", "ACCOUNT", "--side", "buy", "--symbol", "ETH/USDT", "--qty", "2",
               "--limit-price", "9", "--ref", "o1"], "SELECT side, qty, status FROM orders"),
    "prices --delete": (["prices", "--delete", "--symbol", "ETH/USDT", "--from", "2026-11-01T02:00:00Z"],
                        "SELECT (SELECT count(*) FROM prices_deleted), (SELECT count(*) FROM prices)"),
    "risk": (["risk", "--account-id", "ACCOUNT", "--max-drawdown", "10%", "--cooldown", "3"],
             "SELECT max_drawdown, cooldown FROM risk_rules"),
    "symbol": (["symbol", "ETH/USDT", "--tick-size", "0.01", "--step-size", "0.001"],
               "SELECT symbol, tick_size, step_size FROM symbols"),
    "backtest --db": (["backtest", SMA_CROSS, "--data", "BARS", "--param", "fast=3", "--param", "slow=7", "--db",
                       "FOLDER/kept.db"], None),
}


@pytest.mark.parametrize("write", FULL_DISK_WRITES)
def test_every_write_path_on_a_full_disk_fails_in_one_line_and_the_retry_finishes_it(tmp_path, write, report):
    """Each file may grow 12 KB past the database's size (so the WAL file of a big write cannot): a write
    that fits is done; one that does not fails in one line, exit 1, with nothing of its transaction recorded
    (a run keeps the bars it committed before); with room again the same command leaves what it leaves on
    a roomy disk."""
    argv, leaves = FULL_DISK_WRITES[write]
    dbs = {name: str(tmp_path / f"{name}.db") for name in ("full", "roomy")}
    account = new_account(dbs["full"])
    with paper.Ledger(dbs["full"]) as ledger:
        for hour in range(4):
            ledger.tick("ETH/USDT", str(10 + hour), time=f"2026-11-01T{hour:02d}:00:00Z")
    shutil.copyfile(dbs["full"], dbs["roomy"])  # the same account on both
    bars = bars_file(tmp_path / "bars.csv", 3000)
    argv = [{"ACCOUNT": account, "BARS": bars}.get(arg, arg.replace("FOLDER", str(tmp_path))) for arg in argv]
    on = {name: [] if write == "backtest --db" else ["--db", db] for name, db in dbs.items()}  # backtest's own
    assert cli(*argv, *on["roomy"]).returncode == 0
    if write == "backtest --db":
        os.rename(tmp_path / "kept.db", tmp_path / "roomy-kept.db")
    before = query(dbs["full"], leaves) if leaves else None
    limit = max(os.path.getsize(dbs["full"]), 32768) + 12288  # the -shm file takes 32 KB at once

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = subprocess.run([*PAPER_RUN, *argv, *on["full"]], capture_output=True, text=True, preexec_fn=small_disk,
                           timeout=120)
    assert "Traceback" not in child.stderr and child.returncode in (0, 1), child.stderr
    assert_consistent(dbs["full"], write)
    if write == "backtest --db":  # its new file is whole or not there, and nothing is left beside it
        assert child.returncode == 1 and "disk" in child.stderr and child.stderr.count("\n") == 1, child.stderr
        assert sorted(os.listdir(tmp_path)) == ["bars.csv", "full.db", "roomy-kept.db", "roomy.db"]
    elif child.returncode:
        assert child.stderr.startswith("paper: error: ") and "disk" in child.stderr, child.stderr
        assert child.stderr.count("\n") == 1 or write == "run" and child.stderr.count("\n") == 2, child.stderr
        assert write == "run" or query(dbs["full"], leaves) == before, write
    else:
        assert query(dbs["full"], leaves) == query(dbs["roomy"], leaves), write
    retry = cli(*argv, *on["full"])
    if write == "prices --delete" and not child.returncode:  # done already: nothing is left to delete
        assert retry.returncode == 1 and "has no price at or after" in retry.stderr
    else:
        assert retry.returncode == 0, retry.stderr
    assert_consistent(dbs["full"], write)
    if write == "backtest --db":
        assert query(str(tmp_path / "kept.db"), "SELECT symbol, time, close FROM prices") == query(
            str(tmp_path / "roomy-kept.db"), "SELECT symbol, time, close FROM prices")
    else:
        assert query(dbs["full"], leaves) == query(dbs["roomy"], leaves), write
    said = child.stderr.strip().rsplit(": ", 1)[-1] if child.returncode else "done: it fit"
    report(f"{write} with 12 KB of disk left: exit {child.returncode} ({said}), verify OK, the retry finished it")


def test_a_backup_onto_a_full_disk_leaves_nothing(tmp_path):
    db = str(tmp_path / "p.db")
    account = new_account(db)
    with paper.Ledger(db) as ledger:
        ledger.import_rows(account, [("DEPOSIT", "1", "USDT", "x" * 200, "") for _ in range(2000)])

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    child = subprocess.run([*PAPER_RUN, "backup", "--to", str(tmp_path / "copy.db"), "--db", db],
                           capture_output=True, text=True, preexec_fn=small_disk, timeout=60)
    assert child.returncode == 1 and child.stdout == "" and child.stderr.startswith("paper: error: ")
    assert "Traceback" not in child.stderr and child.stderr.count("\n") == 1, child.stderr
    assert sorted(os.listdir(tmp_path)) == ["p.db", "p.db-shm", "p.db-wal"] or sorted(os.listdir(tmp_path)) == [
        "p.db"], os.listdir(tmp_path)
    assert_consistent(db)


# --- 7. A lock held too long ---

def test_a_lock_held_too_long_fails_cleanly(tmp_path, report):
    db = str(tmp_path / "lock.db")
    account = new_account(db)
    before = dump(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        start = time.monotonic()
        result = cli("deposit", "--account-id", account, "--amount", "1", "--db", db,
                     env={"PAPER_BUSY_TIMEOUT": "300"})
        waited = time.monotonic() - start
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("paper: error: database is busy: another process held")
        assert result.stderr.count("\n") == 1
        assert waited >= 0.3
        status = cli("status", "--account-id", account, "--db", db, env={"PAPER_BUSY_TIMEOUT": "300"})
        assert status.returncode == 0, "readers are never blocked by a writer in WAL mode"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert dump(db) == before
    assert_consistent(db)
    bad = cli("status", "--db", db, env={"PAPER_BUSY_TIMEOUT": "soon"})
    assert bad.returncode == 2 and "PAPER_BUSY_TIMEOUT must be a whole number" in bad.stderr
    report("a write lock held past PAPER_BUSY_TIMEOUT: exit 1 'database is busy', nothing half-written")


# --- 8. Tampering ---

@pytest.mark.parametrize("sql, problem", [
    (["UPDATE balances SET available_amount = '4999.99'"], "balance 4999.99 but the log sums to 5001.00"),
    (["UPDATE balances SET reserved_amount = '1.00'"], "reserved 1.00 but open orders reserve 0.00"),
    (["DROP TRIGGER transactions_append_only_update", "UPDATE transactions SET amount = '2.00' WHERE id = 2"],
     "transaction 2 says balance 5001.00 after it, but the row before it says 5000.00 and this one adds 2.00"),
    (["DROP TRIGGER transactions_append_only_delete", "DELETE FROM transactions WHERE id = 1"],
     "transaction 2 says balance 5001.00 after it, but the row before it says 0.00 and this one adds 1.00"),
    (["DROP TRIGGER transactions_append_only_update", "UPDATE transactions SET currency = 'EUR' WHERE id = 2"],
     "no balance row, but the log sums to 1.00"),
])
def test_tampering_is_reported_by_verify(tmp_path, sql, problem):
    db = str(tmp_path / "t.db")
    account = new_account(db, balance="5000")
    assert cli("deposit", "--account-id", account, "--amount", "1", "--db", db).returncode == 0
    shell(db, *sql)
    result = cli("verify", "--db", db)
    assert result.returncode == 1 and result.stderr == ""
    assert re.search(rf"^MISMATCH account {account} [A-Z]+: {re.escape(problem)}$", result.stdout, re.M), \
        result.stdout
    assert result.stdout.endswith("FAILED\n")


@pytest.mark.parametrize("sql", [
    "UPDATE transactions SET amount = '0.00'", "DELETE FROM transactions",
    "INSERT OR REPLACE INTO transactions (id, account_id, transaction_type, currency, amount, balance_after,"
    " description, created_at) VALUES (1, 'x', 'DEPOSIT', 'USDT', '1.00', '1.00', 'rewritten', 't')",
    "REPLACE INTO transactions (account_id, transaction_type, currency, amount, balance_after, description,"
    " reference_id, created_at) SELECT id, 'DEPOSIT', 'USDT', '9.00', '9.00', 'x', 'd', 't' FROM accounts",
    "UPDATE trades SET fee = '0.00'", "DELETE FROM trades",
    "REPLACE INTO trades (id, account_id, symbol, side, qty, price, fee_rate, fee, created_at)"
    " VALUES (1, 'x', 'BTC/USDT', 'buy', '1.00', '1.00', '0.00', '0.00', 't')",
    "INSERT OR REPLACE INTO trades (account_id, symbol, side, qty, price, fee_rate, fee, reference_id, created_at)"
    " SELECT id, 'BTC/USDT', 'buy', '1.00', '1.00', '0.00', '0.00', 't', 't' FROM accounts",
    "UPDATE prices SET close = '1.00'", "DELETE FROM prices",
])
def test_the_log_trades_and_prices_refuse_changes_from_the_shell(tmp_path, sql):
    db = str(tmp_path / "t.db")
    account = new_account(db)
    assert cli("deposit", "--account-id", account, "--amount", "1", "--ref", "d", "--db", db).returncode == 0
    assert cli("trade", "--account-id", account, "--side", "buy", "--symbol", "BTC/USDT", "--qty", "1", "--price", "10",
               "--ref", "t", "--db", db).returncode == 0
    assert cli("tick", "--symbol", "BTC/USDT", "--price", "10", "--db", db).returncode == 0
    before = dump(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        shell(db, sql)
    assert dump(db) == before
    assert_consistent(db)


# --- 9. Output that cannot be written ---

def test_output_that_cannot_be_written_is_not_mistaken_for_a_refusal(tmp_path):
    db = str(tmp_path / "o.db")
    account = new_account(db)
    full = subprocess.run(f'"{sys.executable}" "{PAPER}" deposit --account-id {account} --amount 1 --ref r1'
                          f' --db "{db}" > /dev/full', shell=True, capture_output=True, text=True)
    assert full.returncode == 1 and "Traceback" not in full.stderr
    assert full.stderr.startswith("paper: error: could not write the result to stdout (No space left on device);"
                                  " the command itself is done")
    closed = subprocess.run(f'"{sys.executable}" "{PAPER}" deposit --account-id {account} --amount 1 --ref r2'
                            f' --db "{db}" >&-', shell=True, capture_output=True, text=True)
    assert (closed.returncode, closed.stderr) == (1, "paper: error: standard output is closed: nothing was done"
                                                     " (paper writes its results there; >/dev/null discards them)\n")
    piped = subprocess.run(f'"{sys.executable}" "{PAPER}" deposit --account-id {account} --amount 1 --ref r3'
                           f' --db "{db}" | true', shell=True, capture_output=True, text=True)
    assert (piped.returncode, piped.stderr) == (0, "")
    with paper.Ledger(db) as ledger:
        assert ledger.account(account).balances["USDT"].available == Decimal("1000002")  # r1 and r3

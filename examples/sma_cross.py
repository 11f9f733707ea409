"""A moving-average crossover: all in when the fast average of the closes crosses above the slow one,
all out when it crosses back below.

    python paper.py backtest examples/sma_cross.py --data bars.csv --on-close
    python paper.py backtest examples/sma_cross.py --data bars.csv --param fast=10:50:10 --param slow=100,200
"""
from decimal import ROUND_DOWN, Decimal

PARAMS = {"fast": 24, "slow": 120}  # bars (hours, on hourly bars)


def on_bar(ctx, bar):
    fast, slow = ctx.params["fast"], ctx.params["slow"]
    closes = ctx.closes(slow)  # floats: a signal may be a float, money never is
    if len(closes) < slow:
        return
    fast_above = sum(closes[-fast:]) / fast > sum(closes) / slow
    above, ctx.state["above"] = ctx.state.get("above"), fast_above  # kept across restarts of a live run
    if above is None or fast_above == above:
        return
    if fast_above:  # crossed up: all in, keeping 1% for the fee and a price that moves
        qty = (ctx.cash * Decimal("0.99") / bar.close).quantize(Decimal("0.000001"), ROUND_DOWN)
        ctx.buy(qty)
    else:  # crossed down: all out
        ctx.close()

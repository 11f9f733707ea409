"""A bracket: a limit buy under the close; once it fills, a take-profit and a stop-loss on what it bought
as one oco order (whichever the market reaches first fills, and the other is gone with it). An entry
still unfilled after `wait` bars is cancelled, and the next bar places a new one.

    python paper.py backtest examples/bracket.py --data bars.csv --param dip=0.005
"""
from decimal import Decimal

PARAMS = {"dip": 0.01, "take_profit": 0.02, "stop_loss": 0.01, "size": 0.5, "wait": 5}


def level(price, ratio):
    """price x ratio (a float param, taken as the decimal it shows) to the cent: an order's price is money."""
    return (price * Decimal(repr(ratio))).quantize(Decimal("0.01"))


def on_bar(ctx, bar):
    p, held, waiting = ctx.params, ctx.position(), ctx.orders()
    if held and not waiting:  # the entry filled: bracket what it bought
        entry = Decimal(ctx.state.get("entry", bar.close))
        ctx.sell(held, limit=level(entry, 1 + p["take_profit"]), stop=level(entry, 1 - p["stop_loss"]), type="oco")
    elif not held and waiting:  # the entry is still waiting
        ctx.state["waited"] += 1
        if ctx.state["waited"] >= p["wait"]:
            ctx.cancel(waiting[0])
    elif not held:  # flat: the next entry, a share of the equity
        entry = level(bar.close, 1 - p["dip"])
        ctx.buy(fraction=p["size"], limit=entry)
        ctx.state.update(entry=str(entry), waited=0)

-- The paper database, created by `python paper.py init` (PRAGMA user_version = 3; a database of
-- version 1 or 2 is upgraded in place by the first command that opens it).
--
-- Money is exact decimal TEXT, never a floating-point number, in one form only: digits with no
-- leading zero, a point, two to eighteen decimals with no trailing zero after the second, at most
-- eighteen digits before the point, no exponent ('5000.00', '0.00000001', '-2.945'). Every amount
-- column CHECKs that form, so the sqlite3 shell cannot store '1.23.45' or 1.5 (a number) either.
-- Compare amounts by value, not as text. The type name DECIMAL_TEXT gives TEXT affinity, so SQLite
-- never turns one into a number.
--
-- Times are UTC ISO-8601 with microseconds ('2026-11-25T14:26:14.123456Z'), so they sort in time
-- order: created_at and updated_at are wall-clock times (the audit trail), prices.time is market time.
-- price_id (accounts, trades, transactions) is the newest price recorded when the row was written, so
-- every row has its place in market time; NULL: no price had been recorded yet.

-- One row per account. is_active is 0 once closed, and closed_at says when.
CREATE TABLE IF NOT EXISTS accounts (
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
    currency TEXT NOT NULL DEFAULT 'USDT',       -- its own currency (init --currency): what it is valued in
    CHECK ((is_active = 1) = (closed_at IS NULL))
);

-- What an account holds of a currency: total = available + reserved, and the
-- total always equals the sum of the account's transactions in that currency.
-- reserved is set aside for open orders and equals their reserved_amount.
CREATE TABLE IF NOT EXISTS balances (
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

-- Orders that rest until the market reaches them. An OPEN order keeps reserved_amount set aside:
-- quote currency for a buy (what the rest may cost, fee included, at its limit, at its stop for a
-- stop order, at the dearer leg for an oco, at reserve_price for a market order), base currency for
-- a sell. A stop-limit becomes a limit order once a price reaches its stop (triggered = 1). A market
-- order fills at the next price of its symbol (that bar's open). EXPIRED: still open when a price of
-- its symbol at or after expires_at was recorded.
CREATE TABLE IF NOT EXISTS orders (
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
    type TEXT NOT NULL DEFAULT 'limit' CHECK (type IN ('limit', 'stop', 'stop-limit', 'oco', 'market',
                                                       'trailing-stop')),
    stop_price DECIMAL_TEXT CHECK (stop_price IS NULL OR
        typeof(stop_price) = 'text' AND length(CAST(stop_price AS BLOB)) = length(stop_price)
        AND stop_price GLOB '[0-9]*.[0-9][0-9]*' AND NOT (stop_price GLOB '*[^0-9.]*' OR stop_price GLOB '*.*.*'
        OR stop_price GLOB '0[0-9]*' OR stop_price GLOB '*.[0-9][0-9]*0')
        AND instr(stop_price, '.') <= 19 AND length(stop_price) - instr(stop_price, '.') <= 18 AND stop_price <> '0.00'),
    expires_at TEXT,                             -- market time
    reference_id TEXT,                           -- the client's --ref
    triggered INTEGER NOT NULL DEFAULT 0 CHECK (triggered IN (0, 1)),
    reason TEXT,                                 -- why it ended unfilled (CANCELLED or EXPIRED)
    price_id INTEGER,                            -- the newest price when it was placed or last changed
    reserve_price DECIMAL_TEXT CHECK (reserve_price IS NULL OR
        typeof(reserve_price) = 'text' AND length(CAST(reserve_price AS BLOB)) = length(reserve_price)
        AND reserve_price GLOB '[0-9]*.[0-9][0-9]*' AND NOT (reserve_price GLOB '*[^0-9.]*' OR reserve_price GLOB '*.*.*'
        OR reserve_price GLOB '0[0-9]*' OR reserve_price GLOB '*.[0-9][0-9]*0')
        AND instr(reserve_price, '.') <= 19 AND length(reserve_price) - instr(reserve_price, '.') <= 18 AND reserve_price <> '0.00'),
                                                 -- a market order: the latest close when placed, which it reserves at
    slippage DECIMAL_TEXT NOT NULL DEFAULT '0.00' CHECK (
        typeof(slippage) = 'text' AND length(CAST(slippage AS BLOB)) = length(slippage)
        AND slippage GLOB '[0-9]*.[0-9][0-9]*' AND NOT (slippage GLOB '*[^0-9.]*' OR slippage GLOB '*.*.*'
        OR slippage GLOB '0[0-9]*' OR slippage GLOB '*.[0-9][0-9]*0')
        AND instr(slippage, '.') <= 19 AND length(slippage) - instr(slippage, '.') <= 18),
                                                 -- a market order's fill pays price x (1 + slippage), a sell gets x (1 - it)
    sized_at_fill INTEGER NOT NULL DEFAULT 0 CHECK (sized_at_fill IN (0, 1)),
                                                 -- a market buy of an amount: qty is what its reserve buys at
                                                 -- the fill price and fee (until it fills, what it buys at reserve_price)
    trail DECIMAL_TEXT CHECK (trail IS NULL OR
        typeof(trail) = 'text' AND length(CAST(trail AS BLOB)) = length(trail)
        AND trail GLOB '[0-9]*.[0-9][0-9]*' AND NOT (trail GLOB '*[^0-9.]*' OR trail GLOB '*.*.*'
        OR trail GLOB '0[0-9]*' OR trail GLOB '*.[0-9][0-9]*0')
        AND instr(trail, '.') <= 19 AND length(trail) - instr(trail, '.') <= 18 AND trail <> '0.00'),
                                                 -- a trailing stop's distance, a share of its mark (0.03: 3%)
    trail_amount DECIMAL_TEXT CHECK (trail_amount IS NULL OR
        typeof(trail_amount) = 'text' AND length(CAST(trail_amount AS BLOB)) = length(trail_amount)
        AND trail_amount GLOB '[0-9]*.[0-9][0-9]*' AND NOT (trail_amount GLOB '*[^0-9.]*' OR trail_amount GLOB '*.*.*'
        OR trail_amount GLOB '0[0-9]*' OR trail_amount GLOB '*.[0-9][0-9]*0')
        AND instr(trail_amount, '.') <= 19 AND length(trail_amount) - instr(trail_amount, '.') <= 18 AND trail_amount <> '0.00'),
                                                 -- or its distance in QUOTE
    mark DECIMAL_TEXT CHECK (mark IS NULL OR
        typeof(mark) = 'text' AND length(CAST(mark AS BLOB)) = length(mark)
        AND mark GLOB '[0-9]*.[0-9][0-9]*' AND NOT (mark GLOB '*[^0-9.]*' OR mark GLOB '*.*.*'
        OR mark GLOB '0[0-9]*' OR mark GLOB '*.[0-9][0-9]*0')
        AND instr(mark, '.') <= 19 AND length(mark) - instr(mark, '.') <= 18 AND mark <> '0.00'),
                                                 -- a trailing stop's high-water mark (a sell; a buy's is its low-water mark)
    protect_sl DECIMAL_TEXT CHECK (protect_sl IS NULL OR
        typeof(protect_sl) = 'text' AND length(CAST(protect_sl AS BLOB)) = length(protect_sl)
        AND protect_sl GLOB '[0-9]*.[0-9][0-9]*' AND NOT (protect_sl GLOB '*[^0-9.]*' OR protect_sl GLOB '*.*.*'
        OR protect_sl GLOB '0[0-9]*' OR protect_sl GLOB '*.[0-9][0-9]*0')
        AND instr(protect_sl, '.') <= 19 AND length(protect_sl) - instr(protect_sl, '.') <= 18 AND protect_sl <> '0.00'),
                                                 -- a buy's protection, placed on what fills: a stop loss,
    protect_tp DECIMAL_TEXT CHECK (protect_tp IS NULL OR
        typeof(protect_tp) = 'text' AND length(CAST(protect_tp AS BLOB)) = length(protect_tp)
        AND protect_tp GLOB '[0-9]*.[0-9][0-9]*' AND NOT (protect_tp GLOB '*[^0-9.]*' OR protect_tp GLOB '*.*.*'
        OR protect_tp GLOB '0[0-9]*' OR protect_tp GLOB '*.[0-9][0-9]*0')
        AND instr(protect_tp, '.') <= 19 AND length(protect_tp) - instr(protect_tp, '.') <= 18 AND protect_tp <> '0.00'),
                                                 -- a take profit (with a stop loss: an oco),
    protect_trail DECIMAL_TEXT CHECK (protect_trail IS NULL OR
        typeof(protect_trail) = 'text' AND length(CAST(protect_trail AS BLOB)) = length(protect_trail)
        AND protect_trail GLOB '[0-9]*.[0-9][0-9]*' AND NOT (protect_trail GLOB '*[^0-9.]*' OR protect_trail GLOB '*.*.*'
        OR protect_trail GLOB '0[0-9]*' OR protect_trail GLOB '*.[0-9][0-9]*0')
        AND instr(protect_trail, '.') <= 19 AND length(protect_trail) - instr(protect_trail, '.') <= 18 AND protect_trail <> '0.00'),
                                                 -- or a trailing stop of this share
    entry_trade_id INTEGER REFERENCES trades (id),  -- a protection: the fill of the entry it protects
    CHECK ((limit_price IS NULL) = (type IN ('stop', 'market', 'trailing-stop'))
           AND (stop_price IS NULL) = (type IN ('limit', 'market'))
           AND (reserve_price IS NULL) = (type <> 'market') AND (sized_at_fill = 0 OR type = 'market' AND side = 'buy')
           AND (slippage = '0.00' OR type = 'market')
           AND (mark IS NULL) = (type <> 'trailing-stop') AND (type = 'trailing-stop') = (trail IS NOT NULL OR
               trail_amount IS NOT NULL) AND (trail IS NULL OR trail_amount IS NULL))
);
CREATE INDEX IF NOT EXISTS orders_by_account ON orders (account_id, status);
-- A price loads the open orders of its symbol, and nothing else.
CREATE INDEX IF NOT EXISTS orders_open ON orders (symbol) WHERE status = 'OPEN';
CREATE UNIQUE INDEX IF NOT EXISTS orders_by_ref ON orders (account_id, reference_id) WHERE reference_id IS NOT NULL;

-- Every fill: a market trade, or a fill of an order (order_id set).
CREATE TABLE IF NOT EXISTS trades (
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
CREATE INDEX IF NOT EXISTS trades_by_account ON trades (account_id);
CREATE UNIQUE INDEX IF NOT EXISTS trades_by_ref ON trades (account_id, reference_id)
    WHERE reference_id IS NOT NULL;

-- The log. amount is signed (+ into the account, - out of it), so the log alone
-- rebuilds every balance; balance_after is the currency's total after the row,
-- so a drift shows on the row where it began. id is the sequence: it keeps the
-- exact order even within one instant. Trade legs carry trade_id.
CREATE TABLE IF NOT EXISTS transactions (
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
-- history reads: the index holds the rowid (id), so it serves ORDER BY id DESC too.
CREATE INDEX IF NOT EXISTS transactions_by_account ON transactions (account_id);
-- A --ref is recorded once per account (trade legs share their trade's ref).
CREATE UNIQUE INDEX IF NOT EXISTS transactions_by_ref ON transactions (account_id, reference_id)
    WHERE reference_id IS NOT NULL AND trade_id IS NULL;
-- The rows that can take coins out of a position (realised P&L reads only these, not every deposit).
CREATE INDEX IF NOT EXISTS transactions_out ON transactions (account_id)
    WHERE trade_id IS NOT NULL OR transaction_type IN ('WITHDRAWAL', 'RESET');

-- Each symbol's exchange rules (`symbol`, or `symbol --fetch` from the exchange), NULL where there is
-- none: a price must be a multiple of tick_size, a qty a multiple of step_size and at least min_qty,
-- and qty x price at least min_notional.
CREATE TABLE IF NOT EXISTS symbols (
    symbol TEXT PRIMARY KEY,                     -- BASE/QUOTE
    tick_size DECIMAL_TEXT CHECK (tick_size IS NULL OR
        typeof(tick_size) = 'text' AND length(CAST(tick_size AS BLOB)) = length(tick_size)
        AND tick_size GLOB '[0-9]*.[0-9][0-9]*' AND NOT (tick_size GLOB '*[^0-9.]*' OR tick_size GLOB '*.*.*'
        OR tick_size GLOB '0[0-9]*' OR tick_size GLOB '*.[0-9][0-9]*0')
        AND instr(tick_size, '.') <= 19 AND length(tick_size) - instr(tick_size, '.') <= 18 AND tick_size <> '0.00'),
    step_size DECIMAL_TEXT CHECK (step_size IS NULL OR
        typeof(step_size) = 'text' AND length(CAST(step_size AS BLOB)) = length(step_size)
        AND step_size GLOB '[0-9]*.[0-9][0-9]*' AND NOT (step_size GLOB '*[^0-9.]*' OR step_size GLOB '*.*.*'
        OR step_size GLOB '0[0-9]*' OR step_size GLOB '*.[0-9][0-9]*0')
        AND instr(step_size, '.') <= 19 AND length(step_size) - instr(step_size, '.') <= 18 AND step_size <> '0.00'),
    min_qty DECIMAL_TEXT CHECK (min_qty IS NULL OR
        typeof(min_qty) = 'text' AND length(CAST(min_qty AS BLOB)) = length(min_qty)
        AND min_qty GLOB '[0-9]*.[0-9][0-9]*' AND NOT (min_qty GLOB '*[^0-9.]*' OR min_qty GLOB '*.*.*'
        OR min_qty GLOB '0[0-9]*' OR min_qty GLOB '*.[0-9][0-9]*0')
        AND instr(min_qty, '.') <= 19 AND length(min_qty) - instr(min_qty, '.') <= 18 AND min_qty <> '0.00'),
    min_notional DECIMAL_TEXT CHECK (min_notional IS NULL OR
        typeof(min_notional) = 'text' AND length(CAST(min_notional AS BLOB)) = length(min_notional)
        AND min_notional GLOB '[0-9]*.[0-9][0-9]*' AND NOT (min_notional GLOB '*[^0-9.]*' OR min_notional GLOB '*.*.*'
        OR min_notional GLOB '0[0-9]*' OR min_notional GLOB '*.[0-9][0-9]*0')
        AND instr(min_notional, '.') <= 19 AND length(min_notional) - instr(min_notional, '.') <= 18 AND min_notional <> '0.00'),
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- An account's risk rules (`risk`), NULL where not set: shares as fractions ('0.25' is 25%), counts
-- as whole numbers. The drawdown state: units (the account's growth index is its equity / units; a
-- deposit or withdrawal buys or sells units at the index, so that it does not move it) and peak (the
-- highest index since the rule was set or the account resumed), floats as text: ratios, not money;
-- halted_at, the market time the account halted (NULL while it trades), halt_drawdown how far it fell.
CREATE TABLE IF NOT EXISTS risk_rules (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    max_position DECIMAL_TEXT CHECK (max_position IS NULL OR
        typeof(max_position) = 'text' AND length(CAST(max_position AS BLOB)) = length(max_position)
        AND max_position GLOB '[0-9]*.[0-9][0-9]*' AND NOT (max_position GLOB '*[^0-9.]*' OR max_position GLOB '*.*.*'
        OR max_position GLOB '0[0-9]*' OR max_position GLOB '*.[0-9][0-9]*0')
        AND instr(max_position, '.') <= 19 AND length(max_position) - instr(max_position, '.') <= 18 AND max_position <> '0.00'),
    stop_loss DECIMAL_TEXT CHECK (stop_loss IS NULL OR
        typeof(stop_loss) = 'text' AND length(CAST(stop_loss AS BLOB)) = length(stop_loss)
        AND stop_loss GLOB '[0-9]*.[0-9][0-9]*' AND NOT (stop_loss GLOB '*[^0-9.]*' OR stop_loss GLOB '*.*.*'
        OR stop_loss GLOB '0[0-9]*' OR stop_loss GLOB '*.[0-9][0-9]*0')
        AND instr(stop_loss, '.') <= 19 AND length(stop_loss) - instr(stop_loss, '.') <= 18 AND stop_loss <> '0.00'),
    take_profit DECIMAL_TEXT CHECK (take_profit IS NULL OR
        typeof(take_profit) = 'text' AND length(CAST(take_profit AS BLOB)) = length(take_profit)
        AND take_profit GLOB '[0-9]*.[0-9][0-9]*' AND NOT (take_profit GLOB '*[^0-9.]*' OR take_profit GLOB '*.*.*'
        OR take_profit GLOB '0[0-9]*' OR take_profit GLOB '*.[0-9][0-9]*0')
        AND instr(take_profit, '.') <= 19 AND length(take_profit) - instr(take_profit, '.') <= 18 AND take_profit <> '0.00'),
    trailing_stop DECIMAL_TEXT CHECK (trailing_stop IS NULL OR
        typeof(trailing_stop) = 'text' AND length(CAST(trailing_stop AS BLOB)) = length(trailing_stop)
        AND trailing_stop GLOB '[0-9]*.[0-9][0-9]*' AND NOT (trailing_stop GLOB '*[^0-9.]*' OR trailing_stop GLOB '*.*.*'
        OR trailing_stop GLOB '0[0-9]*' OR trailing_stop GLOB '*.[0-9][0-9]*0')
        AND instr(trailing_stop, '.') <= 19 AND length(trailing_stop) - instr(trailing_stop, '.') <= 18 AND trailing_stop <> '0.00'),
    risk_per_trade DECIMAL_TEXT CHECK (risk_per_trade IS NULL OR
        typeof(risk_per_trade) = 'text' AND length(CAST(risk_per_trade AS BLOB)) = length(risk_per_trade)
        AND risk_per_trade GLOB '[0-9]*.[0-9][0-9]*' AND NOT (risk_per_trade GLOB '*[^0-9.]*' OR risk_per_trade GLOB '*.*.*'
        OR risk_per_trade GLOB '0[0-9]*' OR risk_per_trade GLOB '*.[0-9][0-9]*0')
        AND instr(risk_per_trade, '.') <= 19 AND length(risk_per_trade) - instr(risk_per_trade, '.') <= 18 AND risk_per_trade <> '0.00'),
    max_drawdown DECIMAL_TEXT CHECK (max_drawdown IS NULL OR
        typeof(max_drawdown) = 'text' AND length(CAST(max_drawdown AS BLOB)) = length(max_drawdown)
        AND max_drawdown GLOB '[0-9]*.[0-9][0-9]*' AND NOT (max_drawdown GLOB '*[^0-9.]*' OR max_drawdown GLOB '*.*.*'
        OR max_drawdown GLOB '0[0-9]*' OR max_drawdown GLOB '*.[0-9][0-9]*0')
        AND instr(max_drawdown, '.') <= 19 AND length(max_drawdown) - instr(max_drawdown, '.') <= 18 AND max_drawdown <> '0.00'),
    flatten INTEGER NOT NULL DEFAULT 0 CHECK (flatten IN (0, 1)),  -- with max_drawdown: sell every holding
    cooldown INTEGER CHECK (cooldown IS NULL OR cooldown > 0),     -- prices of a symbol after its stop fills
    max_open_positions INTEGER CHECK (max_open_positions IS NULL OR max_open_positions > 0),
    units TEXT,
    peak TEXT,
    carried TEXT,                                -- the index of an account emptied by a withdrawal: the next money in
                                                 -- buys units at it
    halted_at TEXT,
    halt_drawdown TEXT,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- What the risk rules did, in market time: every refusal by a rule and every automatic action
-- (protection placed, halt, flatten, resume, cooldown, a resting order cancelled), with the figures
-- as the message said them. Append-only, like the log.
CREATE TABLE IF NOT EXISTS risk_events (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    price_id INTEGER,                            -- its place in market time (NULL before any price)
    time TEXT,                                   -- that price's market time
    rule TEXT NOT NULL,                          -- max-position, stop-loss, max-drawdown, cooldown, ...
    action TEXT NOT NULL CHECK (action IN ('refused', 'cancelled', 'protected', 'halted', 'flattened',
                                           'resumed', 'cooldown', 'set', 'cleared', 'taken', 'unpriced')),
    symbol TEXT,
    detail TEXT NOT NULL,
    order_id TEXT,                               -- the order it placed or cancelled, if any
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS risk_events_by_account ON risk_events (account_id, symbol);

-- A strategy run on an account (`backtest` or `run`): which strategy with which params and options,
-- its ctx.state and the last bar it handled of each symbol. A run writes its row with each bar's
-- price, fills and orders in one transaction, so a run killed and restarted resumes after the last
-- bar it handled: no bar handled twice, no order placed twice, the state as it was.
CREATE TABLE IF NOT EXISTS strategy_runs (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    strategy TEXT NOT NULL,                      -- the strategy file's name, like sma_cross.py
    params TEXT NOT NULL,                        -- JSON: every param's value, keys sorted
    options TEXT NOT NULL,                       -- JSON: fee_rate, slippage, on_close
    mode TEXT NOT NULL CHECK (mode IN ('backtest', 'run')),
    state TEXT NOT NULL,                         -- JSON: ctx.state after the last bar handled
    handled TEXT NOT NULL,                       -- JSON: {symbol: market time of the last bar handled}
    bars INTEGER NOT NULL DEFAULT 0,             -- how many bars it handled
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS strategy_runs_by_identity ON strategy_runs (account_id, strategy, params, mode);

-- Market prices, each a bar (a tick is a bar with open = high = low = close), in the order recorded
-- (id). Per symbol, time never goes back and is recorded once; low <= open, close <= high. Prices
-- are market data, not money held: their CHECK is lighter (digits and points, two decimals or more),
-- because the full one on four columns costs a feed or a backtest 4 us a price, as much as the rest
-- of recording it; verify checks each price's exact form.
CREATE TABLE IF NOT EXISTS prices (
    id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,                        -- BASE/QUOTE
    time TEXT NOT NULL,                          -- market time
    open DECIMAL_TEXT NOT NULL CHECK (typeof(open) = 'text' AND open GLOB '[0-9]*.[0-9][0-9]*' AND NOT open GLOB '*[^0-9.]*'),
    high DECIMAL_TEXT NOT NULL CHECK (typeof(high) = 'text' AND high GLOB '[0-9]*.[0-9][0-9]*' AND NOT high GLOB '*[^0-9.]*'),
    low DECIMAL_TEXT NOT NULL CHECK (typeof(low) = 'text' AND low GLOB '[0-9]*.[0-9][0-9]*' AND NOT low GLOB '*[^0-9.]*'),
    close DECIMAL_TEXT NOT NULL CHECK (typeof(close) = 'text' AND close GLOB '[0-9]*.[0-9][0-9]*' AND NOT close GLOB '*[^0-9.]*'),
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS prices_by_symbol ON prices (symbol, time);

-- Prices removed with `prices --delete` (a mistyped time that kept a symbol's real prices out), kept
-- with when they were removed: a price id is never given twice, and a row written while one of them
-- was the newest price belongs to the market time of the newest price before it.
CREATE TABLE IF NOT EXISTS prices_deleted (
    id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    time TEXT NOT NULL,
    open DECIMAL_TEXT NOT NULL,
    high DECIMAL_TEXT NOT NULL,
    low DECIMAL_TEXT NOT NULL,
    close DECIMAL_TEXT NOT NULL,
    created_at TEXT NOT NULL,
    deleted_at TEXT NOT NULL
);

-- The log and the trades are append-only, even for the sqlite3 shell: no UPDATE, no DELETE, and
-- no INSERT OR REPLACE over an existing row (REPLACE deletes without firing DELETE triggers).
-- Prices refuse UPDATE and DELETE; a REPLACE of one (not blocked: a check on every price would
-- cost a feed a third of its speed) breaks the time order or the price ids verify checks.
CREATE TRIGGER IF NOT EXISTS transactions_append_only_update BEFORE UPDATE ON transactions
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS transactions_append_only_delete BEFORE DELETE ON transactions
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS transactions_append_only_replace BEFORE INSERT ON transactions
WHEN EXISTS (SELECT 1 FROM transactions WHERE id = NEW.id) OR NEW.reference_id IS NOT NULL AND NEW.trade_id IS NULL
    AND EXISTS (SELECT 1 FROM transactions WHERE account_id = NEW.account_id AND reference_id = NEW.reference_id
                AND trade_id IS NULL)
BEGIN SELECT RAISE(ABORT, 'transactions are append-only: that id or ref is recorded already'); END;
CREATE TRIGGER IF NOT EXISTS trades_append_only_update BEFORE UPDATE ON trades
BEGIN SELECT RAISE(ABORT, 'trades are append-only'); END;
CREATE TRIGGER IF NOT EXISTS trades_append_only_delete BEFORE DELETE ON trades
BEGIN SELECT RAISE(ABORT, 'trades are append-only'); END;
CREATE TRIGGER IF NOT EXISTS trades_append_only_replace BEFORE INSERT ON trades
WHEN EXISTS (SELECT 1 FROM trades WHERE id = NEW.id) OR NEW.reference_id IS NOT NULL
    AND EXISTS (SELECT 1 FROM trades WHERE account_id = NEW.account_id AND reference_id = NEW.reference_id)
BEGIN SELECT RAISE(ABORT, 'trades are append-only: that id or ref is recorded already'); END;
CREATE TRIGGER IF NOT EXISTS prices_append_only_update BEFORE UPDATE ON prices
BEGIN SELECT RAISE(ABORT, 'prices are append-only'); END;
CREATE TRIGGER IF NOT EXISTS prices_append_only_delete BEFORE DELETE ON prices
BEGIN SELECT RAISE(ABORT, 'prices are append-only'); END;
CREATE TRIGGER IF NOT EXISTS risk_events_append_only_update BEFORE UPDATE ON risk_events
BEGIN SELECT RAISE(ABORT, 'risk events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS risk_events_append_only_delete BEFORE DELETE ON risk_events
BEGIN SELECT RAISE(ABORT, 'risk events are append-only'); END;

"""The bid statement the product ran until the Python bid engine replaced it: the baseline.

One SQL statement, its own transaction: lock the auction row, decide the rejection code
from that state and the database's clock, and for an accepted bid move the auction
forward and insert the bid and its events. Kept verbatim (from bidding/services.py as of
commit cc39b0a) so `bench.bid_designs` can measure today's engine against it.
"""

# auctions.formats.ISO_FORMAT's shape (2026-11-24T10:00:00.000000Z) from PostgreSQL's to_char().
SQL_ISO_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'

# Parameters are cast where used: the statement is prepared server-side, and
# PostgreSQL must deduce one type per parameter.
_LOCK_AND_DECIDE = """
WITH locked AS (
    SELECT id, status, end_time, max_end_time, creator_id, highest_bidder_id, bid_count,
           starting_price, current_price, min_increment, extension_seconds, last_seq,
           CASE WHEN bid_count = 0 THEN starting_price
                ELSE current_price + min_increment END AS min_next_bid
    FROM auctions_auction
    WHERE id = %(auction_id)s::uuid
    FOR UPDATE
),
-- The database's clock read once, after the lock is held: a bid is in time if it is
-- decided before end_time, and accepted bids' times rise with their seq.
decided AS (
    SELECT locked.*, clock_timestamp() AS decided_at FROM locked
),
-- Rule order: who you are, the auction's state, the amount.
decision AS (
    SELECT decided.*,
           CASE
               WHEN creator_id = %(bidder_id)s::uuid THEN 'own_auction'
               WHEN status IN ('pending', 'cancelled') THEN 'auction_not_active'
               WHEN status = 'ended' OR decided_at >= end_time THEN 'auction_ended'
               WHEN highest_bidder_id = %(bidder_id)s::uuid THEN 'already_highest'
               WHEN %(amount)s::numeric < min_next_bid THEN 'bid_too_low'
           END AS rejection,
           -- Soft close: a bid inside the window moves the end, up to the cap.
           CASE WHEN extension_seconds > 0
                 AND end_time - decided_at < make_interval(secs => extension_seconds)
                 AND LEAST(decided_at + make_interval(secs => extension_seconds), max_end_time)
                     > end_time
                THEN LEAST(decided_at + make_interval(secs => extension_seconds), max_end_time)
           END AS extended_end_time
    FROM decided
),
"""

# Idempotency: claim (bidder, request_id) with this outcome. A duplicate conflicts on
# the unique key (waiting for a concurrent one to commit) and changes nothing.
_CLAIM = """
claim AS (
    INSERT INTO bidding_bidrequest
        (id, bidder_id, request_id, auction_id, amount, outcome, bid_id, seq,
         current_price, min_next_bid, end_time, created_at)
    SELECT gen_random_uuid(), %(bidder_id)s::uuid, %(request_id)s::text, id,
           %(amount)s::numeric,
           COALESCE(rejection, 'accepted'),
           CASE WHEN rejection IS NULL THEN %(bid_id)s::uuid END,
           CASE WHEN rejection IS NULL THEN last_seq + 1 END,
           CASE WHEN rejection IS NULL THEN %(amount)s::numeric ELSE current_price END,
           CASE WHEN rejection IS NULL THEN %(amount)s::numeric + min_increment
                ELSE min_next_bid END,
           COALESCE(extended_end_time, end_time),
           decided_at
    FROM decision
    ON CONFLICT (bidder_id, request_id) DO NOTHING
    RETURNING 1
),
"""

_MOVE_AND_RECORD = f"""
moved AS (
    UPDATE auctions_auction AS a
    SET current_price = %(amount)s::numeric,
        highest_bidder_id = %(bidder_id)s::uuid,
        highest_bid_id = %(bid_id)s::uuid,
        bid_count = d.bid_count + 1,
        end_time = COALESCE(d.extended_end_time, d.end_time),
        last_seq = d.last_seq + CASE WHEN d.extended_end_time IS NULL THEN 1 ELSE 2 END,
        version = a.version + 1,
        updated_at = d.decided_at
    FROM decision AS d
    WHERE a.id = d.id AND d.rejection IS NULL {{claimed}}
    RETURNING d.last_seq + 1 AS seq, a.current_price, a.min_increment, a.bid_count,
              a.end_time, d.end_time AS previous_end_time,
              d.extended_end_time IS NOT NULL AS extended, d.decided_at
),
new_bid AS (
    INSERT INTO bidding_bid (id, auction_id, bidder_id, amount, request_id, seq, created_at)
    SELECT %(bid_id)s::uuid, %(auction_id)s::uuid, %(bidder_id)s::uuid, %(amount)s::numeric,
           {{request_id}}, seq, decided_at
    FROM moved
),
new_events AS (
    INSERT INTO auctions_auctionevent (id, auction_id, seq, type, payload, created_at)
    SELECT gen_random_uuid(), %(auction_id)s::uuid, seq, 'bid_placed',
           jsonb_build_object(
               'bid_id', %(bid_id)s::uuid::text,
               'amount', current_price::text,
               'bidder', jsonb_build_object('id', %(bidder_id)s::uuid::text,
                                            'name', %(bidder_name)s::text),
               'current_price', current_price::text,
               'min_next_bid', (current_price + min_increment)::text,
               'bid_count', bid_count,
               'end_time', to_char(end_time AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}')),
           decided_at
    FROM moved
    UNION ALL
    SELECT gen_random_uuid(), %(auction_id)s::uuid, seq + 1, 'auction_extended',
           jsonb_build_object(
               'end_time', to_char(end_time AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}'),
               'previous_end_time',
                   to_char(previous_end_time AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}')),
           decided_at
    FROM moved
    WHERE extended
    RETURNING id, seq, type, payload, created_at
)
SELECT d.rejection, d.current_price, d.min_next_bid,
       m.seq, m.current_price + m.min_increment, m.end_time, m.extended,
       {{duplicate}} AS duplicate,
       (SELECT json_agg(json_build_object(
                   'id', id, 'seq', seq, 'type', type, 'payload', payload,
                   'created_at', to_char(created_at AT TIME ZONE 'UTC', '{SQL_ISO_FORMAT}'))
               ORDER BY seq)::text
        FROM new_events) AS events
FROM decision AS d LEFT JOIN moved AS m ON true
"""

# Two variants, so a bid without a request id pays nothing for idempotency.
PLACE_BID_SQL = _LOCK_AND_DECIDE + _MOVE_AND_RECORD.format(
    claimed="", request_id="NULL::text", duplicate="false"
)
PLACE_BID_WITH_REQUEST_ID_SQL = (
    _LOCK_AND_DECIDE
    + _CLAIM
    + _MOVE_AND_RECORD.format(
        claimed="AND EXISTS (SELECT 1 FROM claim)",
        request_id="%(request_id)s::text",
        duplicate="NOT EXISTS (SELECT 1 FROM claim)",
    )
)

"""ping_cap_refusal: a capped vendor's caps, decided exactly under concurrency (PostgreSQL).

The ping's statement calls it (calls.ping.policies) when the vendor has caps. It takes the
vendor's transaction-scoped advisory lock, then counts: being VOLATILE, each of its queries sees
what was committed before it ran, after the lock, so the reservation the lock's previous holder
just committed is counted (the calling statement's own snapshot, taken before the wait, would
miss it). Returns the first cap reached and its retry hint, or NULLs; '' when the ping must be
decided by the transactional path instead (rare, below).

With a small cap (below max_connections) the lock is exclusive: the vendor's capped pings take
turns. With only large caps it is shared, and a ping is admitted only while its count leaves
room for a ping on every connection (count + max_connections below each cap), so such pings
never wait for each other and still never pass a cap: a shared-mode ping P admitted with count F
has at most max_connections - 1 pings in flight beside it at its count, and any that count after
it and commit before it were admitted with counts that include every earlier commit, so at P's
commit the total stays below F + max_connections < cap. A cap already reached answers at once;
within that room of a large cap the shared lock is not upgraded (two pings doing so would
deadlock): '' leaves the ping to the transactional path, which takes the lock exclusively, and
waits for every shared holder to commit, so its count is exact.

Concurrency: the vendor's live holds plus its calls in progress (records connected). Hourly and
daily: the reservations the statement counted in vendors_vendorreservationcount for the clock
hour, and for the day from midnight in the operator's zone. Daily caps are checked first, then
hourly, then concurrency: the first reached answers, with the longest wait of them.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION ping_cap_first_reached(
    p_slack integer, p_vendor bigint, p_state text, p_now timestamptz, p_zone text,
    p_at_once integer, p_per_hour integer, p_per_day integer,
    p_state_at_once integer, p_state_per_hour integer, p_state_per_day integer,
    p_default_retry integer, OUT reason text, OUT retry_after integer, OUT close boolean
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    scope record;
    held integer;
    soonest timestamptz;
    used integer;
    hour_start timestamptz := date_trunc('hour', p_now);
    day_start timestamptz := date_trunc('day', p_now AT TIME ZONE p_zone) AT TIME ZONE p_zone;
    day_end timestamptz :=
        (date_trunc('day', p_now AT TIME ZONE p_zone) + interval '1 day') AT TIME ZONE p_zone;
BEGIN
    close := false;
    -- Daily caps first, then hourly, then concurrency (each the vendor's, then its state's):
    -- the first reached is the answer, so its hint is the longest wait the others could add.
    FOR scope IN
        SELECT * FROM (VALUES
            (1, 'day', '', p_per_day), (2, 'day', p_state, p_state_per_day),
            (3, 'hour', '', p_per_hour), (4, 'hour', p_state, p_state_per_hour),
            (5, 'at_once', '', p_at_once), (6, 'at_once', p_state, p_state_at_once)
        ) AS s (n, kind, state, most)
        WHERE most IS NOT NULL
        ORDER BY n
    LOOP
        IF scope.kind = 'at_once' THEN
            -- Through reservation_vendor_active (routing 0013): the vendor's live holds only.
            SELECT count(*), min(r.expires_at) INTO held, soonest
            FROM routing_reservation r
            WHERE r.vendor_id = p_vendor AND r.status = 'active' AND r.expires_at > p_now
              AND (scope.state = '' OR r.state = scope.state);
            held := held + (
                SELECT count(*) FROM calls_callrecord c
                WHERE c.vendor_id = p_vendor AND c.outcome = 'connected'
                  AND (scope.state = '' OR c.state = scope.state)
            );
            close := close OR held + p_slack >= scope.most;
            IF held >= scope.most THEN
                reason := 'concurrency_cap';
                -- GREATEST ignores a NULL: none of its holds will end by itself.
                retry_after := CASE WHEN soonest IS NULL THEN p_default_retry
                    ELSE GREATEST(1, ceil(extract(epoch FROM soonest - p_now)))::integer END;
                RETURN;
            END IF;
        ELSE
            SELECT v.reservations INTO used FROM vendors_vendorreservationcount v
            WHERE v.vendor_id = p_vendor AND v.state = scope.state AND v.period = scope.kind
              AND v.starts_at = CASE WHEN scope.kind = 'hour' THEN hour_start ELSE day_start END;
            close := close OR COALESCE(used, 0) + p_slack >= scope.most;
            IF COALESCE(used, 0) >= scope.most THEN
                reason := CASE WHEN scope.kind = 'hour' THEN 'hourly_cap' ELSE 'daily_cap' END;
                retry_after := GREATEST(1, ceil(extract(epoch FROM CASE
                    WHEN scope.kind = 'hour' THEN hour_start + interval '1 hour'
                    ELSE day_end END - p_now)))::integer;
                RETURN;
            END IF;
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION ping_cap_refusal(
    p_lock text, p_vendor bigint, p_state text, p_now timestamptz, p_zone text,
    p_at_once integer, p_per_hour integer, p_per_day integer,
    p_state_at_once integer, p_state_per_hour integer, p_state_per_day integer,
    p_default_retry integer, OUT reason text, OUT retry_after integer
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- At most this many pings are in flight at once (one per connection).
    slack integer := current_setting('max_connections')::integer;
    close boolean;
BEGIN
    IF p_lock IS NULL THEN
        RETURN;
    END IF;
    IF LEAST(p_at_once, p_per_hour, p_per_day, p_state_at_once, p_state_per_hour,
             p_state_per_day) >= slack THEN
        -- Every cap large: the lock in shared mode, so pings never wait for each other while
        -- the counts leave room for a ping on every connection at once.
        PERFORM pg_advisory_xact_lock_shared(hashtextextended(p_lock, 0));
        SELECT f.reason, f.retry_after, f.close INTO reason, retry_after, close
        FROM ping_cap_first_reached(
            slack, p_vendor, p_state, p_now, p_zone, p_at_once, p_per_hour, p_per_day,
            p_state_at_once, p_state_per_hour, p_state_per_day, p_default_retry) AS f;
        IF reason IS NULL AND close THEN
            -- Within that room of a cap, and a shared lock is never upgraded (two pings doing
            -- so would deadlock): '' leaves the ping to the transactional path, whose lock is
            -- exclusive.
            reason := '';
        END IF;
        RETURN;
    END IF;
    -- A small cap: the lock exclusively (after every shared holder has committed), and the
    -- exact count.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_lock, 0));
    SELECT f.reason, f.retry_after INTO reason, retry_after FROM ping_cap_first_reached(
        0, p_vendor, p_state, p_now, p_zone, p_at_once, p_per_hour, p_per_day,
        p_state_at_once, p_state_per_hour, p_state_per_day, p_default_retry) AS f;
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS ping_cap_refusal(
    text, bigint, text, timestamptz, text, integer, integer, integer, integer, integer, integer,
    integer
);
DROP FUNCTION IF EXISTS ping_cap_first_reached(
    integer, bigint, text, timestamptz, text, integer, integer, integer, integer, integer,
    integer, integer
);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0017_outcome_choices_refused_and_released"),
        ("routing", "0013_index_of_a_vendors_live_holds"),
        ("vendors", "0003_ping_policies"),
    ]

    operations = [migrations.RunPython(create, drop)]

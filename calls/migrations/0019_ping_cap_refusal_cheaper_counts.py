"""ping_cap_refusal, cheaper: the same caps, decided as exactly, in one function.

What changed from 0018 (whose docstring explains the locks and the shared mode, unchanged):
- A concurrency cap no longer counts every live hold of the vendor on every ping. Each live hold
  holds an agent of its own (routing's reservation_one_live_per_agent), so a vendor's live holds
  are never more than the agents, nor more than the highest agent id: a cap above that id plus the
  vendor's calls in progress (and the shared mode's room) cannot be reached, and is not counted.
  Below it, the holds are counted only up to the cap, and their soonest end is read only to refuse.
- Hourly and daily counts are the sum of the window's slots (vendors 0005): the statement adds
  to one slot per connection, so a vendor's pings no longer queue for one row.
- A refusal first looks for a live hold of the caller (p_phone, new): one committed by a twin
  ping after the calling statement's snapshot, which its own live check cannot see but these
  counts (after the lock) do. Such a ping is a repeat, and '' leaves it to the transactional
  path. Admitted pings pay nothing for it.
- One function and two queries, one for every window count and one for the calls in progress
  and the highest agent id, instead of a function per count and a query per cap.
"""

import importlib

from django.db import migrations

CREATE = """
DROP FUNCTION IF EXISTS ping_cap_refusal(
    text, bigint, text, timestamptz, text, integer, integer, integer, integer, integer, integer,
    integer
);
DROP FUNCTION IF EXISTS ping_cap_first_reached(
    integer, bigint, text, timestamptz, text, integer, integer, integer, integer, integer,
    integer, integer
);

CREATE OR REPLACE FUNCTION ping_cap_refusal(
    p_lock text, p_vendor bigint, p_state text, p_phone text, p_now timestamptz, p_zone text,
    p_at_once integer, p_per_hour integer, p_per_day integer,
    p_state_at_once integer, p_state_per_hour integer, p_state_per_day integer,
    p_default_retry integer, OUT reason text, OUT retry_after integer
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- At most this many pings are in flight at once (one per connection).
    slack integer := current_setting('max_connections')::integer;
    shared boolean;
    close boolean;
    hour_start timestamptz := date_trunc('hour', p_now);
    day_start timestamptz := date_trunc('day', p_now AT TIME ZONE p_zone) AT TIME ZONE p_zone;
    day_used bigint := 0;
    state_day_used bigint := 0;
    hour_used bigint := 0;
    state_hour_used bigint := 0;
    calls bigint;
    state_calls bigint;
    top_agent bigint;
    scope text;
    most integer;
    used bigint;
    soonest timestamptz;
BEGIN
    IF p_lock IS NULL THEN
        RETURN;
    END IF;
    -- Every cap large: the lock in shared mode, so pings never wait for each other while the
    -- counts leave room for a ping on every connection at once. A small cap: exclusively (after
    -- every shared holder has committed), and the exact count.
    shared := LEAST(p_at_once, p_per_hour, p_per_day, p_state_at_once, p_state_per_hour,
                    p_state_per_day) >= slack;
    IF shared THEN
        PERFORM pg_advisory_xact_lock_shared(hashtextextended(p_lock, 0));
    ELSE
        slack := 0;
        PERFORM pg_advisory_xact_lock(hashtextextended(p_lock, 0));
    END IF;

    -- The windows: every slot of the vendor's and the state's day and hour, in one query.
    IF COALESCE(p_per_day, p_state_per_day, p_per_hour, p_state_per_hour) IS NOT NULL THEN
        SELECT
            COALESCE(sum(w.reservations) FILTER (WHERE w.state = '' AND w.period = 'day'), 0),
            COALESCE(sum(w.reservations) FILTER (WHERE w.state <> '' AND w.period = 'day'), 0),
            COALESCE(sum(w.reservations) FILTER (WHERE w.state = '' AND w.period = 'hour'), 0),
            COALESCE(sum(w.reservations) FILTER (WHERE w.state <> '' AND w.period = 'hour'), 0)
        INTO day_used, state_day_used, hour_used, state_hour_used
        FROM (
            SELECT v.state, v.period, v.reservations FROM vendors_vendorreservationcount v
            WHERE v.vendor_id = p_vendor AND v.state = ANY (ARRAY['', p_state])
              AND v.period = 'day' AND v.starts_at = day_start
            UNION ALL
            SELECT v.state, v.period, v.reservations FROM vendors_vendorreservationcount v
            WHERE v.vendor_id = p_vendor AND v.state = ANY (ARRAY['', p_state])
              AND v.period = 'hour' AND v.starts_at = hour_start
        ) AS w;
    END IF;
    close := COALESCE(day_used + slack >= p_per_day, false)
        OR COALESCE(state_day_used + slack >= p_state_per_day, false)
        OR COALESCE(hour_used + slack >= p_per_hour, false)
        OR COALESCE(state_hour_used + slack >= p_state_per_hour, false);
    -- Daily caps first, then hourly, then concurrency (each the vendor's, then its state's):
    -- the first reached is the answer, so its hint is the longest wait the others could add.
    IF day_used >= p_per_day OR state_day_used >= p_state_per_day THEN
        reason := 'daily_cap';
        retry_after := GREATEST(1, ceil(extract(epoch FROM
            (date_trunc('day', p_now AT TIME ZONE p_zone) + interval '1 day') AT TIME ZONE p_zone
            - p_now)))::integer;
    ELSIF hour_used >= p_per_hour OR state_hour_used >= p_state_per_hour THEN
        reason := 'hourly_cap';
        retry_after := GREATEST(1, ceil(extract(epoch FROM
            hour_start + interval '1 hour' - p_now)))::integer;
    ELSIF COALESCE(p_at_once, p_state_at_once) IS NOT NULL THEN
        -- Calls in progress (through callrecord_in_progress), and the highest agent id: no
        -- vendor holds more agents than that, each live hold holding one of its own.
        SELECT count(*), count(*) FILTER (WHERE c.state = p_state),
               (SELECT COALESCE(max(a.id), 0) FROM routing_agent a)
        INTO calls, state_calls, top_agent
        FROM calls_callrecord c WHERE c.vendor_id = p_vendor AND c.outcome = 'connected';
        FOR i IN 1..2 LOOP
            most := CASE i WHEN 1 THEN p_at_once ELSE p_state_at_once END;
            used := CASE i WHEN 1 THEN calls ELSE state_calls END;
            -- A cap that not even every agent held could reach: no hold needs counting.
            CONTINUE WHEN most IS NULL OR used + top_agent + slack < most;
            scope := CASE i WHEN 1 THEN '' ELSE p_state END;
            -- Through reservation_vendor_active (routing 0013): the vendor's live holds only,
            -- counted up to the cap.
            used := used + (SELECT count(*) FROM (
                SELECT 1 FROM routing_reservation r
                WHERE r.vendor_id = p_vendor AND r.status = 'active' AND r.expires_at > p_now
                  AND (scope = '' OR r.state = scope)
                LIMIT most) AS held);
            close := close OR used + slack >= most;
            IF used >= most THEN
                reason := 'concurrency_cap';
                soonest := (SELECT min(r.expires_at) FROM routing_reservation r
                            WHERE r.vendor_id = p_vendor AND r.status = 'active'
                              AND r.expires_at > p_now AND (scope = '' OR r.state = scope));
                -- GREATEST ignores a NULL: none of its holds will end by itself.
                retry_after := CASE WHEN soonest IS NULL THEN p_default_retry
                    ELSE GREATEST(1, ceil(extract(epoch FROM soonest - p_now)))::integer END;
                EXIT;
            END IF;
        END LOOP;
    END IF;

    IF reason IS NOT NULL AND EXISTS (
        -- The caller's live hold, through reservation_one_live_per_vendor_caller.
        SELECT 1 FROM routing_reservation r
        WHERE r.vendor_id = p_vendor AND r.phone_number = p_phone AND r.status = 'active'
          AND r.expires_at > p_now
    ) THEN
        -- Committed by a twin after the calling statement began: a repeat, not a refusal.
        reason := '';
        retry_after := NULL;
    ELSIF reason IS NULL AND shared AND close THEN
        -- Within that room of a cap, and a shared lock is never upgraded (two pings doing so
        -- would deadlock): '' leaves the ping to the transactional path, whose lock is exclusive.
        reason := '';
    END IF;
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS ping_cap_refusal(
    text, bigint, text, text, timestamptz, text, integer, integer, integer, integer, integer,
    integer, integer
);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def back_to_0018(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        previous = importlib.import_module("calls.migrations.0018_ping_cap_refusal_function")
        schema_editor.execute(DROP)
        schema_editor.execute(previous.CREATE)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0018_ping_cap_refusal_function"),
        ("vendors", "0005_reservation_counts_in_slots"),
    ]

    operations = [migrations.RunPython(create, back_to_0018)]

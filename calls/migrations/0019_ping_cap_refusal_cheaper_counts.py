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
- One function, its checks in a loop over arrays instead of a query of a VALUES list.
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
    close boolean := false;
    kinds text[] := ARRAY['day', 'day', 'hour', 'hour', 'at_once', 'at_once'];
    limits integer[] := ARRAY[p_per_day, p_state_per_day, p_per_hour, p_state_per_hour,
                              p_at_once, p_state_at_once];
    kind text;
    scope text;
    most integer;
    used bigint;
    soonest timestamptz;
    hour_start timestamptz := date_trunc('hour', p_now);
    day_start timestamptz := date_trunc('day', p_now AT TIME ZONE p_zone) AT TIME ZONE p_zone;
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
    -- Daily caps first, then hourly, then concurrency (each the vendor's, then its state's):
    -- the first reached is the answer, so its hint is the longest wait the others could add.
    FOR i IN 1..6 LOOP
        most := limits[i];
        CONTINUE WHEN most IS NULL;
        kind := kinds[i];
        scope := CASE WHEN mod(i, 2) = 1 THEN '' ELSE p_state END;
        IF kind = 'at_once' THEN
            used := (SELECT count(*) FROM calls_callrecord c
                     WHERE c.vendor_id = p_vendor AND c.outcome = 'connected'
                       AND (scope = '' OR c.state = scope));
            CONTINUE WHEN used + (SELECT COALESCE(max(a.id), 0) FROM routing_agent a) + slack
                          < most;
            -- Through reservation_vendor_active (routing 0013): the vendor's live holds only.
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
        ELSE
            used := (SELECT COALESCE(sum(v.reservations), 0) FROM vendors_vendorreservationcount v
                     WHERE v.vendor_id = p_vendor AND v.state = scope AND v.period = kind
                       AND v.starts_at = CASE WHEN kind = 'hour' THEN hour_start
                                              ELSE day_start END);
            close := close OR used + slack >= most;
            IF used >= most THEN
                reason := CASE WHEN kind = 'hour' THEN 'hourly_cap' ELSE 'daily_cap' END;
                retry_after := GREATEST(1, ceil(extract(epoch FROM CASE
                    WHEN kind = 'hour' THEN hour_start + interval '1 hour'
                    ELSE (date_trunc('day', p_now AT TIME ZONE p_zone) + interval '1 day')
                         AT TIME ZONE p_zone
                    END - p_now)))::integer;
                EXIT;
            END IF;
        END IF;
    END LOOP;
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

// Shipped migration: never edit. Its text is fixed (no helper is interpolated into it), `schema_migrations` holds
// its SHA-256, and `coordctl migrate` refuses a database whose applied text differs. A change is a new version.

extension EventStoreSchema {
    /// v4, bulk append with a precomputed chain. Bulk appends whose hash chain the importer computed: `coord_bulk_begin`, a COPY into `events`, `coord_bulk_finish`
/// (PostgreSQL re-checks the chain at the first event of every type before the head moves).
    static let v4 = #"""
    -- Takes the bulk lock exclusively and the head row, and checks every stream's stored version against the
    -- version the batch was decided on (p_bases, per stream of p_streams). Returns one row: the first stream
    -- whose version moved (nothing else is done then), or the head and the recorded time to chain from. The
    -- caller's prediction (p_position, p_hash, p_recorded) is kept when it is the head and p_recorded is
    -- neither before the last event's recorded time nor in the future; otherwise the caller chains again
    -- from the answer (clock_timestamp(), never before the last event's time).
    CREATE FUNCTION coord_bulk_begin(p_streams text[], p_bases bigint[], p_position bigint, p_hash text, p_recorded timestamptz)
    RETURNS TABLE (conflict text, head_position bigint, head_hash text, recorded_at timestamptz)
    LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    DECLARE
        bad text; pos bigint; h bytea; last_recorded timestamptz; now_ts timestamptz;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.coord_bulk_append', 11));
        SELECT u.stream INTO bad
        FROM unnest(p_streams, p_bases) AS u(stream, base) LEFT JOIN streams t ON t.stream = u.stream
        WHERE coalesce(t.version, 0) <> u.base
        LIMIT 1;
        IF bad IS NOT NULL THEN
            RETURN QUERY SELECT bad, NULL::bigint, NULL::text, NULL::timestamptz;
            RETURN;
        END IF;
        SELECT eh.position, eh.hash INTO pos, h FROM event_head eh FOR UPDATE;
        SELECT e.recorded_at INTO last_recorded FROM events e WHERE e.position = pos;
        now_ts := clock_timestamp();
        IF pos = p_position AND encode(h, 'hex') = p_hash AND p_recorded <= now_ts
           AND (last_recorded IS NULL OR p_recorded >= last_recorded) THEN
            RETURN QUERY SELECT NULL::text, pos, p_hash, p_recorded;
        ELSE
            RETURN QUERY SELECT NULL::text, pos, encode(h, 'hex'), greatest(now_ts, last_recorded);
        END IF;
    END
    $fn$;

    -- After the COPY of positions p_first..p_last: checks the chain at p_checks (the batch's first event, whose
    -- predecessor is the old head, and any event whose JSON text the importer rendered the long way) with
    -- PostgreSQL's own hash, moves the head to (p_last, p_hash), updates the streams (final version, first and
    -- last positions per stream) and notifies listeners. A check that fails raises data_corrupted: the
    -- transaction rolls back and the caller writes the batch the v3 way.
    CREATE FUNCTION coord_bulk_finish(p_first bigint, p_last bigint, p_hash text, p_checks bigint[],
                                      p_streams text[], p_versions bigint[], p_firsts bigint[], p_lasts bigint[])
    RETURNS void
    LANGUAGE plpgsql AS $fn$
    DECLARE
        bad bigint; ts timestamptz;
    BEGIN
        SELECT e.position INTO bad
        FROM events e
        WHERE e.position = ANY(p_checks)
          AND e.hash IS DISTINCT FROM coord_event_hash(
                  coalesce((SELECT p.hash FROM events p WHERE p.position = e.position - 1), decode(repeat('00', 32), 'hex')),
                  e.position, e.stream, e.version, e.id, e.type, e.data, e.metadata, e.occurred_at, e.recorded_at)
        LIMIT 1;
        IF bad IS NOT NULL OR NOT EXISTS (SELECT 1 FROM events e WHERE e.position = p_last AND encode(e.hash, 'hex') = p_hash) THEN
            RAISE EXCEPTION 'precomputed hash chain does not match at position %', coalesce(bad, p_last)
                USING ERRCODE = 'data_corrupted';
        END IF;
        SELECT e.recorded_at INTO ts FROM events e WHERE e.position = p_last;
        UPDATE event_head SET position = p_last, hash = decode(p_hash, 'hex') WHERE position = p_first - 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the head is not before position %', p_first USING ERRCODE = 'data_corrupted';
        END IF;
        INSERT INTO streams AS t (stream, version, first_position, last_position, updated_at)
        SELECT u.stream, u.version, u.first_position, u.last_position, ts
        FROM unnest(p_streams, p_versions, p_firsts, p_lasts) AS u(stream, version, first_position, last_position)
        ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE
            SET version = excluded.version, last_position = excluded.last_position, updated_at = excluded.updated_at;
        PERFORM pg_notify('coord_events', p_last::text);
    END
    $fn$;
    """#
}

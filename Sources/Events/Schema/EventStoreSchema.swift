/// The event store's own tables and functions, as migrations.
///
/// Design notes (docs/EVENT_STORE.md has the long form):
/// - `position` is assigned under the row lock of the single `event_head` row, taken by `coord_append`
///   after all version checks, and held until COMMIT. Commits therefore happen in position order and
///   a rolled-back append releases its numbers, so positions are gapless and a reader that asks for
///   `position > last` never skips an event that commits late.
/// - The hash chain is computed inside PostgreSQL (`sha256`), in the same statement that assigns
///   positions, so the chain is exactly the commit order. Bulk imports (v4) compute it in Swift under
///   the same locks, and PostgreSQL re-checks a sample of it before commit.
/// - Immutability: triggers refuse UPDATE, DELETE and TRUNCATE for every role. A superuser can bypass
///   them only deliberately (`SET session_replication_role = replica`); `coord_verify` then finds the edit.
public enum EventStoreSchema {
    public static let migrations = MigrationSet(component: "events", migrations: [
        Migration(version: 1, name: "event store", sql: v1),
        Migration(version: 2, name: "projection checkpoints", sql: v2),
        Migration(version: 3, name: "staged bulk append", sql: v3),
        Migration(version: 4, name: "bulk append with a precomputed chain", sql: v4),
    ])

    /// The advisory lock between ordinary appends (shared) and staged bulk appends (exclusive), per schema.
    /// One lock instead of one per stream: a bulk batch may touch tens of thousands of streams, more than
    /// PostgreSQL's lock table holds.
    static let bulkLockKey = "hashtextextended(current_schema() || '.coord_bulk_append', 11)"

    /// Bulk appends (`EventStore.appendStaged`): the caller COPYs the events, already numbered by stream
    /// version, into the session's temporary `coord_staging` table, then calls this function in the same
    /// transaction. Same guarantees as `coord_append`: no other append interleaves (the bulk lock), every
    /// stream's first staged version must follow its stored version, the head row is locked last, and the
    /// hash chain is computed here. v3 also replaces `coord_append` to take the bulk lock shared. Returns one row: ('ok', NULL, first, last), ('conflict', stream, ...) or
    /// ('duplicate', event id, ...); nothing is written unless 'ok'.
    static let v3 = #"""
    -- The request-by-request append of v1, kept for batches where requests depend on each other.
    \#(appendFunction(create: "CREATE FUNCTION", name: "coord_append_sequential", bulkLock: "PERFORM pg_advisory_xact_lock_shared(" + bulkLockKey + ");"))

    -- Same contract as v1's coord_append. When no stream and no event id appears twice in the batch (the
    -- group committer's usual batch: one request per stream), the requests are independent and are decided
    -- set-based, in a fixed number of statements; v1 ran several statements per request, so a batch of 22
    -- requests cost 5.8 ms. Other batches go to coord_append_sequential.
    CREATE OR REPLACE FUNCTION coord_append(batch jsonb)
    RETURNS TABLE (req int, stream text, outcome text, version bigint, first_position bigint, last_position bigint)
    LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    DECLARE
        -- one element per (request, stream), in (request, stream) order
        s_rq int[]; s_si int[]; s_stream text[]; s_expected text[]; s_nev int[]; s_cur bigint[]; s_bad boolean[];
        -- one element per event, in (request, stream, event) order
        e_rq int[]; e_stream text[]; e_id uuid[]; e_type text[]; e_data jsonb[]; e_meta jsonb[]; e_occ timestamptz[]; e_n int[];
        dup_rq int[] := '{}'; mismatch_rq int[] := '{}'; conflict_rq int[] := '{}';
        st_stream text[]; st_version bigint[]; st_id uuid[]; st_type text[]; st_data jsonb[]; st_meta jsonb[]; st_occ timestamptz[];
        hashes bytea[];
        head_pos bigint := 0; head_hash bytea; ts timestamptz; h bytea; i int; n int;
    BEGIN
        PERFORM pg_advisory_xact_lock_shared(\#(bulkLockKey));

        SELECT array_agg(r.rq::int ORDER BY r.rq, x.si), array_agg(x.si::int ORDER BY r.rq, x.si),
               array_agg(x.st->>'stream' ORDER BY r.rq, x.si), array_agg(x.st->>'expected' ORDER BY r.rq, x.si),
               array_agg(jsonb_array_length(x.st->'events') ORDER BY r.rq, x.si)
        INTO s_rq, s_si, s_stream, s_expected, s_nev
        FROM jsonb_array_elements(batch) WITH ORDINALITY AS r(v, rq), jsonb_array_elements(r.v->'streams') WITH ORDINALITY AS x(st, si);

        SELECT array_agg(r.rq::int ORDER BY r.rq, x.si, e.n), array_agg(x.st->>'stream' ORDER BY r.rq, x.si, e.n),
               array_agg((e.ev->>'id')::uuid ORDER BY r.rq, x.si, e.n), array_agg(e.ev->>'type' ORDER BY r.rq, x.si, e.n),
               array_agg(e.ev->'data' ORDER BY r.rq, x.si, e.n), array_agg(e.ev->'metadata' ORDER BY r.rq, x.si, e.n),
               array_agg((e.ev->>'occurred_at')::timestamptz ORDER BY r.rq, x.si, e.n), array_agg(e.n::int ORDER BY r.rq, x.si, e.n)
        INTO e_rq, e_stream, e_id, e_type, e_data, e_meta, e_occ, e_n
        FROM jsonb_array_elements(batch) WITH ORDINALITY AS r(v, rq), jsonb_array_elements(r.v->'streams') WITH ORDINALITY AS x(st, si),
             jsonb_array_elements(x.st->'events') WITH ORDINALITY AS e(ev, n);

        IF s_stream IS NULL OR e_id IS NULL
           OR (SELECT count(DISTINCT u) FROM unnest(s_stream) u) <> cardinality(s_stream)
           OR (SELECT count(DISTINCT u) FROM unnest(e_id) u) <> cardinality(e_id) THEN
            RETURN QUERY SELECT * FROM coord_append_sequential(batch);
            RETURN;
        END IF;

        PERFORM pg_advisory_xact_lock(k)
        FROM (SELECT DISTINCT hashtextextended(u, 7) AS k FROM unnest(s_stream) u ORDER BY 1) AS keys;

        SELECT array_agg(coalesce(t.version, 0) ORDER BY u.o) INTO s_cur
        FROM unnest(s_stream) WITH ORDINALITY AS u(stream, o) LEFT JOIN streams t ON t.stream = u.stream;

        -- Requests with stored ids: all stored with the same content is a duplicate, anything else a mismatch.
        SELECT coalesce(array_agg(q.rq) FILTER (WHERE q.same = q.total AND q.stored = q.total), '{}'),
               coalesce(array_agg(q.rq) FILTER (WHERE NOT (q.same = q.total AND q.stored = q.total)), '{}')
        INTO dup_rq, mismatch_rq
        FROM (SELECT u.rq, count(*) AS total, count(ev.id) AS stored,
                     count(ev.id) FILTER (WHERE ev.stream = u.stream AND ev.type = u.type AND ev.data = u.data) AS same
              FROM unnest(e_rq, e_id, e_stream, e_type, e_data) AS u(rq, id, stream, type, data)
              LEFT JOIN events ev ON ev.id = u.id
              GROUP BY u.rq) AS q
        WHERE q.stored > 0;

        -- Per (request, stream): does the stored version miss the expectation?
        SELECT array_agg((u.expected = 'no_stream' AND u.cur <> 0) OR (u.expected = 'exists' AND u.cur = 0)
                         OR (u.expected NOT IN ('any', 'no_stream', 'exists') AND u.cur <> u.expected::bigint) ORDER BY u.o)
        INTO s_bad
        FROM unnest(s_expected, s_cur) WITH ORDINALITY AS u(expected, cur, o);

        SELECT coalesce(array_agg(DISTINCT u.rq), '{}') INTO conflict_rq
        FROM unnest(s_rq, s_bad) AS u(rq, bad)
        WHERE u.bad AND NOT (u.rq = ANY(dup_rq) OR u.rq = ANY(mismatch_rq));

        -- The accepted events, in order, with their stream versions.
        SELECT array_agg(u.stream ORDER BY u.o), array_agg(c.cur + u.n ORDER BY u.o), array_agg(u.id ORDER BY u.o),
               array_agg(u.type ORDER BY u.o), array_agg(u.data ORDER BY u.o), array_agg(u.meta ORDER BY u.o), array_agg(u.occ ORDER BY u.o)
        INTO st_stream, st_version, st_id, st_type, st_data, st_meta, st_occ
        FROM unnest(e_rq, e_stream, e_id, e_type, e_data, e_meta, e_occ, e_n) WITH ORDINALITY AS u(rq, stream, id, type, data, meta, occ, n, o)
        JOIN unnest(s_stream, s_cur) AS c(stream, cur) ON c.stream = u.stream
        WHERE NOT (u.rq = ANY(dup_rq) OR u.rq = ANY(mismatch_rq) OR u.rq = ANY(conflict_rq));
        n := coalesce(cardinality(st_id), 0);

        IF n > 0 THEN
            \#(writeStaged)
        END IF;

        RETURN QUERY
        -- accepted: one row per stream with events, positions from the running count of accepted events
        SELECT a.rq, a.stream, 'ok'::text, a.cur + a.nev, head_pos + a.upto - a.nev + 1, head_pos + a.upto
        FROM (SELECT u.rq, u.si, u.stream, u.cur, u.nev, sum(u.nev) OVER (ORDER BY u.rq, u.si) AS upto
              FROM unnest(s_rq, s_si, s_stream, s_cur, s_nev) AS u(rq, si, stream, cur, nev)
              WHERE NOT (u.rq = ANY(dup_rq) OR u.rq = ANY(mismatch_rq) OR u.rq = ANY(conflict_rq))) AS a
        WHERE a.nev > 0
        UNION ALL
        -- conflicts: the streams whose version did not match
        SELECT u.rq, u.stream, 'conflict', u.cur, NULL, NULL
        FROM unnest(s_rq, s_stream, s_cur, s_bad) AS u(rq, stream, cur, bad)
        WHERE u.rq = ANY(conflict_rq) AND u.bad
        UNION ALL
        SELECT m, NULL, 'mismatch', NULL, NULL, NULL FROM unnest(mismatch_rq) AS m
        UNION ALL
        -- duplicates: the original versions and positions, per stream
        SELECT u.rq, u.stream, 'duplicate', max(ev.version), min(ev.position), max(ev.position)
        FROM unnest(e_rq, e_stream, e_id) AS u(rq, stream, id) JOIN events ev ON ev.id = u.id
        WHERE u.rq = ANY(dup_rq)
        GROUP BY u.rq, u.stream;
    END
    $fn$;

    CREATE FUNCTION coord_append_staged()
    RETURNS TABLE (outcome text, detail text, first_position bigint, last_position bigint)
    LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    DECLARE
        bad text; dup uuid; n bigint; lo bigint; hi bigint;
        head_pos bigint; head_hash bytea; ts timestamptz; h bytea; hashes bytea[]; r record;
    BEGIN
        -- Every coord_append holds the bulk lock shared until it commits: once this holds it exclusively, no
        -- append is between its version checks and its commit, and none starts until this one commits.
        PERFORM pg_advisory_xact_lock(\#(bulkLockKey));

        SELECT count(*), min(s.ord), max(s.ord) INTO n, lo, hi FROM coord_staging s;
        IF n = 0 OR lo <> 1 OR hi <> n THEN
            RAISE EXCEPTION 'coord_staging must number its rows 1..n' USING ERRCODE = 'invalid_parameter_value';
        END IF;

        SELECT g.stream INTO bad
        FROM (SELECT s.stream, min(s.version) AS v0, max(s.version) AS v1, count(*) AS c
              FROM coord_staging s GROUP BY s.stream) AS g
        LEFT JOIN streams t ON t.stream = g.stream
        WHERE g.v0 - 1 <> coalesce(t.version, 0) OR g.v1 - g.v0 + 1 <> g.c
        LIMIT 1;
        IF bad IS NOT NULL THEN
            RETURN QUERY SELECT 'conflict'::text, bad, NULL::bigint, NULL::bigint;
            RETURN;
        END IF;

        SELECT e.id INTO dup FROM coord_staging s JOIN events e ON e.id = s.id LIMIT 1;
        IF dup IS NOT NULL THEN
            RETURN QUERY SELECT 'duplicate'::text, dup::text, NULL::bigint, NULL::bigint;
            RETURN;
        END IF;

        SELECT eh.position, eh.hash INTO head_pos, head_hash FROM event_head eh FOR UPDATE;
        ts := clock_timestamp();
        h := head_hash;
        hashes := array_fill(NULL::bytea, ARRAY[n::int]);
        FOR r IN SELECT * FROM coord_staging s ORDER BY s.ord LOOP
            h := coord_event_hash(h, head_pos + r.ord, r.stream, r.version, r.id, r.type, r.data, r.metadata,
                                  r.occurred_at, ts);
            hashes[r.ord] := h;
        END LOOP;

        INSERT INTO events (position, stream, version, id, type, data, metadata, occurred_at, recorded_at, hash)
        SELECT head_pos + s.ord, s.stream, s.version, s.id, s.type, s.data, s.metadata, s.occurred_at, ts, x.hash
        FROM coord_staging s JOIN unnest(hashes) WITH ORDINALITY AS x(hash, o) ON x.o = s.ord;
        UPDATE event_head SET position = head_pos + n, hash = h;

        INSERT INTO streams AS t (stream, version, first_position, last_position, updated_at)
        SELECT s.stream, max(s.version), head_pos + min(s.ord), head_pos + max(s.ord), ts
        FROM coord_staging s GROUP BY s.stream
        ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE
            SET version = excluded.version, last_position = excluded.last_position, updated_at = excluded.updated_at;

        PERFORM pg_notify('coord_events', (head_pos + n)::text);
        RETURN QUERY SELECT 'ok'::text, NULL::text, head_pos + 1, head_pos + n;
    END
    $fn$;
    """#

    /// Bulk appends whose hash chain the importer computed (`EventStore.appendStaged` when `JSONBText` can
    /// render every event): in one transaction, `coord_bulk_begin`, a COPY straight into `events`, then
    /// `coord_bulk_finish`. The temporary table and the row-by-row hashing of v3 are skipped; v3's path
    /// stays for what JSONBText cannot render and as the fallback when a check below fails.
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
        PERFORM pg_advisory_xact_lock(\#(bulkLockKey));
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

    /// One row per projection: its checkpoint moves in the same transaction as its read-model writes.
    static let v2 = """
    CREATE TABLE projection_checkpoints (
        name            text        PRIMARY KEY,
        version         int         NOT NULL,
        position        bigint      NOT NULL DEFAULT 0,
        status          text        NOT NULL DEFAULT 'running',
        error           text,
        error_position  bigint,
        updated_at      timestamptz NOT NULL DEFAULT now(),
        rebuilt_at      timestamptz
    );
    """


    /// The last step of an append, shared by the append functions: with the accepted events in the arrays
    /// `st_*` (n of them), take the head row lock (held until COMMIT), number the events after the head,
    /// chain their hashes, insert them, move the head, update the streams and notify listeners. Sets
    /// `head_pos` to the position before the first event and `ts` to their recorded time.
    static let writeStaged = #"""
    SELECT eh.position, eh.hash INTO head_pos, head_hash FROM event_head eh FOR UPDATE;
    ts := clock_timestamp();
    h := head_hash;
    hashes := array_fill(NULL::bytea, ARRAY[n]);
    FOR i IN 1..n LOOP
        h := coord_event_hash(h, head_pos + i, st_stream[i], st_version[i], st_id[i], st_type[i],
                              st_data[i], st_meta[i], st_occ[i], ts);
        hashes[i] := h;
    END LOOP;
    INSERT INTO events (position, stream, version, id, type, data, metadata, occurred_at, recorded_at, hash)
    SELECT head_pos + o, u.stream, u.version, u.id, u.type, u.data, u.meta, u.occ, ts, u.hash
    FROM unnest(st_stream, st_version, st_id, st_type, st_data, st_meta, st_occ, hashes)
         WITH ORDINALITY AS u(stream, version, id, type, data, meta, occ, hash, o);
    UPDATE event_head SET position = head_pos + n, hash = h;
    INSERT INTO streams AS t (stream, version, first_position, last_position, updated_at)
    SELECT u.stream, max(u.version), min(head_pos + u.o), max(head_pos + u.o), ts
    FROM unnest(st_stream, st_version) WITH ORDINALITY AS u(stream, version, o)
    GROUP BY u.stream
    ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE
        SET version = excluded.version, last_position = excluded.last_position, updated_at = excluded.updated_at;
    PERFORM pg_notify('coord_events', (head_pos + n)::text);
    """#

    /// `coord_append`, as v1 created it and as v3 replaces it (v3 adds the shared bulk lock, see `bulkLockKey`).
    static func appendFunction(create: String, name: String = "coord_append", bulkLock: String) -> String {
        #"""
        \#(create) \#(name)(batch jsonb)
        RETURNS TABLE (req int, stream text, outcome text, version bigint, first_position bigint, last_position bigint)
        LANGUAGE plpgsql AS $fn$
        #variable_conflict use_column
        DECLARE
            r jsonb; s jsonb;
            ri int := 0;
            si int;
            cur jsonb := '{}';            -- stream -> current version, including this batch's accepted requests
            existing uuid[];
            staged_ids uuid[] := '{}';
            ids uuid[];
            n_stored int; n_same int; n_ev int;
            ok boolean;
            v bigint; expected text;
            staged int := 0;              -- events accepted so far; their positions are relative until the head is locked
            -- accepted (request, stream) chunks, in order
            acc_req int[] := '{}'; acc_sidx int[] := '{}'; acc_stream text[] := '{}'; acc_base bigint[] := '{}';
            -- staged events, built set-based once the requests are decided
            st_stream text[]; st_version bigint[]; st_id uuid[]; st_type text[]; st_data jsonb[]; st_meta jsonb[]; st_occ timestamptz[];
            hashes bytea[];
            -- per-request results
            res_req int[] := '{}'; res_stream text[] := '{}'; res_outcome text[] := '{}'; res_version bigint[] := '{}';
            res_first bigint[] := '{}'; res_last bigint[] := '{}';
            head_pos bigint; head_hash bytea; ts timestamptz; h bytea; i int; n int;
            pos_base bigint;
        BEGIN
            \#(bulkLock)
            -- 1. Serialise writers per stream, in a global order so that two batches never deadlock.
            PERFORM pg_advisory_xact_lock(k)
            FROM (SELECT DISTINCT hashtextextended(x #>> '{}', 7) AS k
                  FROM jsonb_path_query(batch, '$[*].streams[*].stream') AS x ORDER BY 1) AS keys;

            SELECT coalesce(jsonb_object_agg(t.stream, t.version), '{}') INTO cur
            FROM streams t
            WHERE t.stream IN (SELECT x #>> '{}' FROM jsonb_path_query(batch, '$[*].streams[*].stream') AS x);

            SELECT coalesce(array_agg(ev.id), '{}') INTO existing
            FROM events ev
            WHERE ev.id IN (SELECT (x #>> '{}')::uuid FROM jsonb_path_query(batch, '$[*].streams[*].events[*].id') AS x);

            -- 2. Decide each request in order against the versions the requests before it left.
            FOR r IN SELECT value FROM jsonb_array_elements(batch) LOOP
                ri := ri + 1;
                SELECT array_agg((x #>> '{}')::uuid) INTO ids FROM jsonb_path_query(r, '$.streams[*].events[*].id') AS x;
                ids := coalesce(ids, '{}');

                IF ids && staged_ids THEN
                    res_req := res_req || ri; res_stream := res_stream || NULL::text; res_outcome := res_outcome || 'retry'::text;
                    res_version := res_version || NULL::bigint; res_first := res_first || NULL::bigint; res_last := res_last || NULL::bigint;
                    CONTINUE;
                END IF;

                IF ids && existing THEN
                    SELECT count(*), count(*) FILTER (WHERE ev.stream = q.stream AND ev.type = q.type AND ev.data = q.data)
                    INTO n_stored, n_same
                    FROM (SELECT (ss->>'stream') AS stream, (ee->>'id')::uuid AS id, ee->>'type' AS type, ee->'data' AS data
                          FROM jsonb_array_elements(r->'streams') ss, jsonb_array_elements(ss->'events') ee) q
                    JOIN events ev ON ev.id = q.id;
                    IF n_same = cardinality(ids) AND n_stored = cardinality(ids) THEN
                        FOR s IN SELECT value FROM jsonb_array_elements(r->'streams') LOOP
                            res_req := res_req || ri; res_stream := res_stream || (s->>'stream'); res_outcome := res_outcome || 'duplicate'::text;
                            SELECT max(ev.version), min(ev.position), max(ev.position) INTO v, pos_base, head_pos
                            FROM events ev WHERE ev.id IN (SELECT (x->>'id')::uuid FROM jsonb_array_elements(s->'events') x);
                            res_version := res_version || v; res_first := res_first || pos_base; res_last := res_last || head_pos;
                        END LOOP;
                    ELSE
                        res_req := res_req || ri; res_stream := res_stream || NULL::text; res_outcome := res_outcome || 'mismatch'::text;
                        res_version := res_version || NULL::bigint; res_first := res_first || NULL::bigint; res_last := res_last || NULL::bigint;
                    END IF;
                    CONTINUE;
                END IF;

                ok := true;
                FOR s IN SELECT value FROM jsonb_array_elements(r->'streams') LOOP
                    v := coalesce((cur->>(s->>'stream'))::bigint, 0);
                    expected := s->>'expected';
                    IF (expected = 'no_stream' AND v <> 0)
                       OR (expected = 'exists' AND v = 0)
                       OR (expected NOT IN ('any', 'no_stream', 'exists') AND v <> expected::bigint) THEN
                        ok := false;
                        res_req := res_req || ri; res_stream := res_stream || (s->>'stream'); res_outcome := res_outcome || 'conflict'::text;
                        res_version := res_version || v; res_first := res_first || NULL::bigint; res_last := res_last || NULL::bigint;
                    END IF;
                END LOOP;
                CONTINUE WHEN NOT ok;

                si := 0;
                FOR s IN SELECT value FROM jsonb_array_elements(r->'streams') LOOP
                    si := si + 1;
                    v := coalesce((cur->>(s->>'stream'))::bigint, 0);
                    n_ev := jsonb_array_length(s->'events');
                    CONTINUE WHEN n_ev = 0;
                    acc_req := acc_req || ri; acc_sidx := acc_sidx || si; acc_stream := acc_stream || (s->>'stream'); acc_base := acc_base || v;
                    cur := jsonb_set(cur, ARRAY[s->>'stream'], to_jsonb(v + n_ev));
                    res_req := res_req || ri; res_stream := res_stream || (s->>'stream'); res_outcome := res_outcome || 'ok'::text;
                    res_version := res_version || (v + n_ev);
                    res_first := res_first || (staged + 1)::bigint; res_last := res_last || (staged + n_ev)::bigint;
                    staged := staged + n_ev;
                END LOOP;
                staged_ids := staged_ids || ids;
            END LOOP;

            IF staged > 0 THEN
                -- The accepted events, in order, with their stream versions: one set-based statement.
                SELECT array_agg(a.stream ORDER BY a.ord, e.n), array_agg(a.base + e.n ORDER BY a.ord, e.n),
                       array_agg((e.ev->>'id')::uuid ORDER BY a.ord, e.n), array_agg(e.ev->>'type' ORDER BY a.ord, e.n),
                       array_agg(e.ev->'data' ORDER BY a.ord, e.n), array_agg(e.ev->'metadata' ORDER BY a.ord, e.n),
                       array_agg((e.ev->>'occurred_at')::timestamptz ORDER BY a.ord, e.n)
                INTO st_stream, st_version, st_id, st_type, st_data, st_meta, st_occ
                FROM unnest(acc_req, acc_sidx, acc_stream, acc_base) WITH ORDINALITY AS a(rq, sidx, stream, base, ord),
                     jsonb_array_elements(batch->(a.rq - 1)->'streams'->(a.sidx - 1)->'events') WITH ORDINALITY AS e(ev, n);
                n := cardinality(st_id);

                -- 3. Last: take the head row lock (held until COMMIT), number the events and chain their hashes.
                \#(writeStaged)
                pos_base := head_pos;
            END IF;

            -- Positions of appended requests were relative to the batch; make them global.
            RETURN QUERY SELECT u.rq, u.st, u.oc, u.ver,
                                CASE WHEN u.oc = 'ok' THEN pos_base + u.f ELSE u.f END,
                                CASE WHEN u.oc = 'ok' THEN pos_base + u.l ELSE u.l END
                         FROM unnest(res_req, res_stream, res_outcome, res_version, res_first, res_last) AS u(rq, st, oc, ver, f, l);
        END
        $fn$;
        """#
    }

    static let v1 = #"""
    CREATE TABLE events (
        position     bigint      NOT NULL,
        stream       text        NOT NULL,
        version      bigint      NOT NULL,
        id           uuid        NOT NULL,
        type         text        NOT NULL,
        data         jsonb       NOT NULL,
        metadata     jsonb       NOT NULL,
        occurred_at  timestamptz NOT NULL,
        recorded_at  timestamptz NOT NULL,
        hash         bytea       NOT NULL,
        category     text        GENERATED ALWAYS AS (split_part(stream, '-', 1)) STORED,
        CONSTRAINT events_pkey PRIMARY KEY (position),
        CONSTRAINT events_id_key UNIQUE (id),
        CONSTRAINT events_stream_version_key UNIQUE (stream, version),
        CONSTRAINT events_position_positive CHECK (position > 0),
        CONSTRAINT events_version_positive CHECK (version > 0),
        CONSTRAINT events_hash_length CHECK (length(hash) = 32)
    );
    -- Read paths: by position (pkey), by stream and version (unique key), by type, by category
    -- (stream prefix before the first '-'), and by recorded time (as-of reads).
    CREATE INDEX events_type_position ON events (type, position);
    CREATE INDEX events_category_position ON events (category, position);
    CREATE INDEX events_recorded_at ON events (recorded_at, position);

    -- One row per stream with its current version: cheap version checks and stream listings.
    CREATE TABLE streams (
        stream          text        PRIMARY KEY,
        version         bigint      NOT NULL,
        first_position  bigint      NOT NULL,
        last_position   bigint      NOT NULL,
        updated_at      timestamptz NOT NULL
    );

    -- The single counter row. Its row lock serialises position assignment (see coord_append).
    CREATE TABLE event_head (
        singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
        position   bigint      NOT NULL,
        hash       bytea       NOT NULL
    );
    INSERT INTO event_head (position, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

    CREATE FUNCTION coord_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the event log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION coord_refuse_change();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION coord_refuse_change();
    -- The head may only move forward, and only together with inserted events.
    CREATE FUNCTION coord_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.position < OLD.position THEN
            RAISE EXCEPTION 'the event head never moves back' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER event_head_forward BEFORE UPDATE ON event_head
        FOR EACH ROW EXECUTE FUNCTION coord_head_forward();
    CREATE TRIGGER event_head_no_delete BEFORE DELETE ON event_head
        FOR EACH ROW EXECUTE FUNCTION coord_refuse_change();
    CREATE TRIGGER event_head_no_truncate BEFORE TRUNCATE ON event_head
        FOR EACH STATEMENT EXECUTE FUNCTION coord_refuse_change();

    -- Microseconds since the epoch: a time's canonical form, independent of DateStyle and TimeZone.
    CREATE FUNCTION coord_micros(t timestamptz) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT (extract(epoch FROM t) * 1000000)::bigint::text
    $$;

    -- Declared STABLE, not IMMUTABLE, because concat_ws and convert_to are: that lets the planner inline
    -- them into callers (10x faster in coord_append's loop than a function call). The result is fixed.
    -- hash = SHA-256(previous hash || canonical content). Fields are joined by the unit separator,
    -- which cannot occur in stream names or types (validated) and is escaped inside jsonb text.
    CREATE FUNCTION coord_event_hash(prev bytea, pos bigint, stream text, version bigint, id uuid, type text,
                                     data jsonb, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT sha256(prev || convert_to(concat_ws(E'\x1f', pos::text, stream, version::text, id::text, type,
                                                   data::text, metadata::text,
                                                   coord_micros(occurred_at), coord_micros(recorded_at)), 'UTF8'))
    $$;

    -- Appends a batch of requests (see EventStore.append for the JSON shape). Each request is checked
    -- on its own, in order, against the stream versions left by the requests before it, so a conflict
    -- refuses that request only. Returns one row per (request, stream):
    --   outcome 'ok'        appended; version = new stream version, positions of its events
    --           'duplicate' all its event ids were already stored with the same content: nothing written,
    --                       version and positions are the original ones
    --           'conflict'  expected version not met; version = the stream's actual version
    --           'mismatch'  an event id is stored with different content, or only some ids are stored
    --           'retry'     an event id repeats one earlier in this batch: submit it again alone
    \#(appendFunction(create: "CREATE FUNCTION", bulkLock: ""))
    -- Recomputes the hash chain, position contiguity and per-stream version contiguity for positions
    -- [p_from, p_from + p_limit). Returns the number checked, the last position checked, and the first
    -- broken position with the reason (NULL when the range is sound).
    CREATE FUNCTION coord_verify(p_from bigint, p_limit bigint)
    RETURNS TABLE (checked bigint, last_checked bigint, broken_at bigint, problem text)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        prev bytea;
        expect_pos bigint := p_from;
        ev record;
        n bigint := 0;
        computed bytea;
    BEGIN
        IF p_from <= 1 THEN
            prev := decode(repeat('00', 32), 'hex');
            expect_pos := 1;
        ELSE
            SELECT e.hash INTO prev FROM events e WHERE e.position = p_from - 1;
            IF prev IS NULL THEN
                RETURN QUERY SELECT 0::bigint, p_from - 1, p_from - 1, 'event missing'::text;
                RETURN;
            END IF;
        END IF;
        FOR ev IN SELECT * FROM events e WHERE e.position >= expect_pos ORDER BY e.position LIMIT p_limit LOOP
            IF ev.position <> expect_pos THEN
                RETURN QUERY SELECT n, expect_pos - 1, expect_pos, 'event missing'::text; RETURN;
            END IF;
            computed := coord_event_hash(prev, ev.position, ev.stream, ev.version, ev.id, ev.type, ev.data,
                                         ev.metadata, ev.occurred_at, ev.recorded_at);
            IF computed <> ev.hash THEN
                RETURN QUERY SELECT n, ev.position - 1, ev.position, 'hash mismatch'::text; RETURN;
            END IF;
            IF ev.version > 1 AND NOT EXISTS (SELECT 1 FROM events p WHERE p.stream = ev.stream
                                              AND p.version = ev.version - 1 AND p.position < ev.position) THEN
                RETURN QUERY SELECT n, ev.position - 1, ev.position, 'stream version gap'::text; RETURN;
            END IF;
            prev := ev.hash;
            expect_pos := expect_pos + 1;
            n := n + 1;
        END LOOP;
        -- At the end of the log, the head must agree: a deleted tail would otherwise go unnoticed.
        IF n < p_limit THEN
            IF NOT EXISTS (SELECT 1 FROM event_head eh WHERE eh.position = expect_pos - 1 AND eh.hash = prev) THEN
                RETURN QUERY SELECT n, expect_pos - 1, expect_pos, 'head does not match the last event'::text; RETURN;
            END IF;
        END IF;
        RETURN QUERY SELECT n, expect_pos - 1, NULL::bigint, NULL::text;
    END
    $fn$;
    """#
}

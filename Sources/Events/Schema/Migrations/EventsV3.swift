// Shipped migration: never edit. Its text is fixed (no helper is interpolated into it), `schema_migrations` holds
// its SHA-256, and `coordctl migrate` refuses a database whose applied text differs. A change is a new version.

extension EventStoreSchema {
    /// v3, staged bulk append. Staged bulk appends (`coord_append_staged`, under one bulk lock per schema), the set-based `coord_append` for
/// independent requests and the request-by-request one kept as `coord_append_sequential`.
    static let v3 = #"""
    -- The request-by-request append of v1, kept for batches where requests depend on each other.
    CREATE FUNCTION coord_append_sequential(batch jsonb)
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
        PERFORM pg_advisory_xact_lock_shared(hashtextextended(current_schema() || '.coord_bulk_append', 11));
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
            pos_base := head_pos;
        END IF;

        -- Positions of appended requests were relative to the batch; make them global.
        RETURN QUERY SELECT u.rq, u.st, u.oc, u.ver,
                            CASE WHEN u.oc = 'ok' THEN pos_base + u.f ELSE u.f END,
                            CASE WHEN u.oc = 'ok' THEN pos_base + u.l ELSE u.l END
                     FROM unnest(res_req, res_stream, res_outcome, res_version, res_first, res_last) AS u(rq, st, oc, ver, f, l);
    END
    $fn$;

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
        PERFORM pg_advisory_xact_lock_shared(hashtextextended(current_schema() || '.coord_bulk_append', 11));

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
        PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.coord_bulk_append', 11));

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
}

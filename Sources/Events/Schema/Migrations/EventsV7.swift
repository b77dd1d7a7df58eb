// Shipped migration: never edit. Its text is fixed (no helper is interpolated into it), `schema_migrations` holds
// its SHA-256, and `coordctl migrate` refuses a database whose applied text differs. A change is a new version.

extension EventStoreSchema {
    /// v7, a lean writer. `coord_write_arrays` takes the group committer's batch as typed arrays instead of one jsonb
    /// document, and decides it in a few statements: v5's `coord_write` parsed the document, ran `coord_append`
    /// (itself a guarded function) and some nineteen statements, or, when a stream appeared in several requests (a
    /// hot stock card), `coord_append_sequential`'s statements per request. Requests are decided in order, each
    /// against the versions the accepted requests before it left, exactly as there. The chain is still computed
    /// here, under the head's row lock, event by event. A batch it does not decide itself (an event id twice, or
    /// one already stored) comes back as one row with outcome 'resend', having written nothing, for `coord_write`,
    /// whose contract is the same.
    static let v7 = #"""
    -- One element per (request, stream) in s_*, in request order (s_rq ascending from 1); the events of each in
    -- e_*, in the same order (s_nev of them for each); s_expected is NULL for any, -1 for "exists", otherwise the
    -- version the stream must be at (0: no stream). r_* are the receipts of the requests that have one.
    CREATE FUNCTION coord_write_arrays(
        s_rq int[], s_stream text[], s_expected bigint[], s_nev int[],
        e_id uuid[], e_type text[], e_data jsonb[], e_meta jsonb[], e_occ timestamptz[],
        r_rq int[], r_id uuid[], r_hash text[], r_answer text[])
    RETURNS SETOF coord_append_result
    LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    DECLARE
        ns int := coalesce(cardinality(s_stream), 0);
        n int := coalesce(cardinality(e_id), 0);
        nr int := coalesce(cardinality(r_rq), 0);
        s_cur bigint[]; s_first int[]; s_base bigint[]; run bigint[]; stored boolean; conflict_rq int[] := '{}';
        ev_pos bigint[]; ev_stream text[]; ev_version bigint[]; hashes bytea[];
        res_outcome text[]; res_version bigint[]; res_first bigint[]; res_last bigint[];
        head_pos bigint := 0; head_hash bytea; ts timestamptz; h bytea; pos bigint; v bigint; ex bigint;
        i int := 0; si int; j int; k int; x int; rq int; nev int; accepted int := 0; ok boolean;
        notified text;
    BEGIN
        IF ns = 0 OR n = 0 OR coalesce(cardinality(s_rq), 0) <> ns OR coalesce(cardinality(s_expected), 0) <> ns
           OR coalesce(cardinality(s_nev), 0) <> ns OR coalesce(cardinality(e_type), 0) <> n
           OR coalesce(cardinality(e_data), 0) <> n OR coalesce(cardinality(e_meta), 0) <> n
           OR coalesce(cardinality(e_occ), 0) <> n OR coalesce(cardinality(r_id), 0) <> nr
           OR coalesce(cardinality(r_hash), 0) <> nr OR coalesce(cardinality(r_answer), 0) <> nr
           OR (SELECT sum(u) FROM unnest(s_nev) u) <> n OR (SELECT bool_or(u IS NULL OR u < 0) FROM unnest(s_nev) u)
           OR (SELECT bool_or(u IS NULL) FROM unnest(s_rq) u) THEN
            RAISE EXCEPTION 'coord_write_arrays: the arrays do not describe one batch' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- An id twice: coord_write answers 'retry' for the later request.
        IF (SELECT count(DISTINCT u) FROM unnest(e_id) u) <> n THEN
            RETURN QUERY SELECT NULL::int, NULL::text, 'resend'::text, NULL::bigint, NULL::bigint, NULL::bigint;
            RETURN;
        END IF;

        PERFORM pg_advisory_xact_lock_shared(hashtextextended(current_schema() || '.coord_bulk_append', 11));
        PERFORM pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(u, 7) AS k FROM unnest(s_stream) u ORDER BY 1) AS keys;

        -- Each stream's stored version, where it first appears in the batch, and whether an id is stored.
        SELECT array_agg(c.cur ORDER BY c.o), array_agg(c.f ORDER BY c.o), EXISTS (SELECT 1 FROM events ev WHERE ev.id = ANY(e_id))
        INTO s_cur, s_first, stored
        FROM (SELECT u.o, coalesce(t.version, 0) AS cur, min(u.o) OVER (PARTITION BY u.stream) AS f
              FROM unnest(s_stream) WITH ORDINALITY AS u(stream, o) LEFT JOIN streams t ON t.stream = u.stream) AS c;

        -- An id already stored: a duplicate or a mismatch, which coord_write tells apart.
        IF stored THEN
            RETURN QUERY SELECT NULL::int, NULL::text, 'resend'::text, NULL::bigint, NULL::bigint, NULL::bigint;
            RETURN;
        END IF;

        res_outcome := array_fill(NULL::text, ARRAY[ns]); res_version := array_fill(NULL::bigint, ARRAY[ns]);
        res_first := array_fill(NULL::bigint, ARRAY[ns]); res_last := array_fill(NULL::bigint, ARRAY[ns]);
        s_base := array_fill(NULL::bigint, ARRAY[ns]);

        -- Decide each request in order against the versions the accepted requests before it left (run, kept at
        -- each stream's first appearance): all its expectations met, or a conflict on the streams that missed.
        run := s_cur;
        si := 1;
        WHILE si <= ns LOOP
            rq := s_rq[si];
            IF si > 1 AND rq <= s_rq[si - 1] THEN
                RAISE EXCEPTION 'coord_write_arrays: requests out of order' USING ERRCODE = 'invalid_parameter_value';
            END IF;
            j := si; ok := true;
            WHILE j <= ns AND s_rq[j] = rq LOOP
                v := run[s_first[j]]; ex := s_expected[j];
                IF ex IS NOT NULL AND ((ex < 0 AND v = 0) OR (ex >= 0 AND v <> ex)) THEN
                    ok := false; res_outcome[j] := 'conflict'; res_version[j] := v;
                END IF;
                j := j + 1;
            END LOOP;
            IF ok THEN
                FOR x IN si..j - 1 LOOP
                    v := run[s_first[x]];
                    s_base[x] := v;
                    IF s_nev[x] > 0 THEN
                        res_outcome[x] := 'ok'; res_version[x] := v + s_nev[x]; accepted := accepted + s_nev[x];
                    END IF;
                    run[s_first[x]] := v + s_nev[x];
                END LOOP;
            ELSE
                conflict_rq := conflict_rq || rq;
            END IF;
            si := j;
        END LOOP;

        IF accepted > 0 THEN
            -- Last: the head's row lock (held until COMMIT), then number the accepted events and chain their hashes.
            ev_pos := array_fill(NULL::bigint, ARRAY[n]); ev_stream := array_fill(NULL::text, ARRAY[n]);
            ev_version := array_fill(NULL::bigint, ARRAY[n]); hashes := array_fill(NULL::bytea, ARRAY[n]);
            SELECT eh.position, eh.hash INTO head_pos, head_hash FROM event_head eh FOR UPDATE;
            ts := clock_timestamp();
            h := head_hash;
            pos := head_pos;
            FOR si IN 1..ns LOOP
                nev := s_nev[si];
                IF res_outcome[si] IS DISTINCT FROM 'ok' THEN
                    i := i + nev;
                    CONTINUE;
                END IF;
                res_first[si] := pos + 1; res_last[si] := pos + nev;
                FOR k IN 1..nev LOOP
                    i := i + 1; pos := pos + 1;
                    h := coord_event_hash(h, pos, s_stream[si], s_base[si] + k, e_id[i], e_type[i], e_data[i], e_meta[i], e_occ[i], ts);
                    ev_pos[i] := pos; ev_stream[i] := s_stream[si]; ev_version[i] := s_base[si] + k; hashes[i] := h;
                END LOOP;
            END LOOP;

            -- The events, the head, the streams and the receipts of the accepted requests: one statement.
            WITH ins AS (
                INSERT INTO events (position, stream, version, id, type, data, metadata, occurred_at, recorded_at, hash)
                SELECT u.pos, u.stream, u.version, u.id, u.type, u.data, u.meta, u.occ, ts, u.hash
                FROM unnest(ev_pos, ev_stream, ev_version, e_id, e_type, e_data, e_meta, e_occ, hashes)
                     AS u(pos, stream, version, id, type, data, meta, occ, hash)
                WHERE u.pos IS NOT NULL
            ), hd AS (
                UPDATE event_head SET position = pos, hash = h
            ), st AS (
                INSERT INTO streams AS t (stream, version, first_position, last_position, updated_at)
                SELECT u.stream, max(u.version), min(u.f), max(u.l), ts
                FROM unnest(s_stream, res_outcome, res_version, res_first, res_last) AS u(stream, outcome, version, f, l)
                WHERE u.outcome = 'ok'
                GROUP BY u.stream
                ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE
                    SET version = excluded.version, last_position = excluded.last_position, updated_at = excluded.updated_at
            ), rc AS (
                INSERT INTO command_receipts (id, request_hash, answer)
                SELECT u.id, u.hash, u.answer FROM unnest(r_rq, r_id, r_hash, r_answer) AS u(rq, id, hash, answer)
                WHERE NOT (u.rq = ANY(conflict_rq))
                ON CONFLICT (id) DO NOTHING
            )
            SELECT pg_notify('coord_events', pos::text) INTO notified;
        END IF;

        RETURN QUERY SELECT u.rq, u.stream, u.outcome, u.version, u.f, u.l
                     FROM unnest(s_rq, s_stream, res_outcome, res_version, res_first, res_last) AS u(rq, stream, outcome, version, f, l)
                     WHERE u.outcome IS NOT NULL;
    END
    $fn$;

    DO $do$
    BEGIN
        EXECUTE format('ALTER FUNCTION coord_write_arrays(int[], text[], bigint[], int[], uuid[], text[], jsonb[], jsonb[], timestamptz[], int[], uuid[], text[], text[]) SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
        REVOKE EXECUTE ON FUNCTION coord_write_arrays(int[], text[], bigint[], int[], uuid[], text[], jsonb[], jsonb[], timestamptz[], int[], uuid[], text[], text[]) FROM PUBLIC;
    END
    $do$;
    """#
}

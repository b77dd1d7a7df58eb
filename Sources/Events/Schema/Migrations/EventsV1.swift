// Shipped migration: never edit. Its text is fixed (no helper is interpolated into it), `schema_migrations` holds
// its SHA-256, and `coordctl migrate` refuses a database whose applied text differs. A change is a new version.

extension EventStoreSchema {
    /// v1, event store. The log: `events` (positions gapless and in commit order under the `event_head` row lock), `streams`, the head,
/// the triggers that refuse UPDATE, DELETE and TRUNCATE, `coord_event_hash`, `coord_append` (request by request) and
/// `coord_verify`.
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
    CREATE FUNCTION coord_append(batch jsonb)
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

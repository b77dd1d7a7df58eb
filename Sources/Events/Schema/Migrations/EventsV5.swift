// Shipped migration: never edit. Its text is fixed (no helper is interpolated into it), `schema_migrations` holds
// its SHA-256, and `coordctl migrate` refuses a database whose applied text differs. A change is a new version.

extension EventStoreSchema {
    /// v5, receipts and a guarded writer. Receipts keep the first answer to an idempotent request, written in the
    /// transaction of its events (`coord_write`) or alone for a refusal (`coord_record_receipt`). Every function
    /// that writes the log runs with its owner's rights and a pinned `search_path`, and `PUBLIC` may not call
    /// them: a role granted only EXECUTE (`coordctl db grant`) appends through them and cannot insert a row of
    /// its own. `coord_verify_state` checks what the hash chain does not cover: streams, head, checkpoints.
    static let v5 = #"""
    CREATE TABLE command_receipts (
        id           uuid        PRIMARY KEY,
        request_hash text        NOT NULL,
        answer       text        NOT NULL,
        recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp()
    );

    CREATE TYPE coord_append_result AS (req int, stream text, outcome text, version bigint, first_position bigint, last_position bigint);

    -- coord_append, and the receipts of the requests it accepted ({"receipt": {"id", "hash", "answer"}} beside a
    -- request's "streams"), in the same transaction: an acknowledged write and its first answer commit together.
    CREATE FUNCTION coord_write(batch jsonb) RETURNS SETOF coord_append_result
    LANGUAGE plpgsql AS $fn$
    DECLARE
        results coord_append_result[];
    BEGIN
        results := ARRAY(SELECT ROW(a.req, a.stream, a.outcome, a.version, a.first_position, a.last_position)::coord_append_result
                         FROM coord_append(batch) a);
        INSERT INTO command_receipts (id, request_hash, answer)
        SELECT (b.v->'receipt'->>'id')::uuid, b.v->'receipt'->>'hash', b.v->'receipt'->>'answer'
        FROM jsonb_array_elements(batch) WITH ORDINALITY AS b(v, rq)
        WHERE b.v ? 'receipt' AND b.rq IN (SELECT (x).req FROM unnest(results) AS x WHERE (x).outcome = 'ok')
        ON CONFLICT (id) DO NOTHING;
        RETURN QUERY SELECT * FROM unnest(results);
    END
    $fn$;

    -- A receipt without events (a refusal): the first answer stands; returns the one that does.
    CREATE FUNCTION coord_record_receipt(p_id uuid, p_hash text, p_answer text)
    RETURNS TABLE (request_hash text, answer text)
    LANGUAGE plpgsql AS $fn$
    BEGIN
        INSERT INTO command_receipts (id, request_hash, answer) VALUES (p_id, p_hash, p_answer) ON CONFLICT (id) DO NOTHING;
        RETURN QUERY SELECT r.request_hash, r.answer FROM command_receipts r WHERE r.id = p_id;
    END
    $fn$;

    -- What the chain does not cover: each stream row against its events, the head against the last event, and the
    -- projections' checkpoints against the head. One row per problem.
    CREATE FUNCTION coord_verify_state(p_limit int)
    RETURNS TABLE (problem text, subject text)
    LANGUAGE sql STABLE AS $fn$
        (SELECT 'stream row does not match its events', coalesce(s.stream, e.stream)
         FROM streams s
         FULL JOIN (SELECT ev.stream, max(ev.version) AS version, min(ev.position) AS first_position, max(ev.position) AS last_position,
                           count(*) AS n
                    FROM events ev GROUP BY ev.stream) e ON e.stream = s.stream
         WHERE s.stream IS NULL OR e.stream IS NULL OR s.version <> e.version OR e.n <> e.version
            OR s.first_position <> e.first_position OR s.last_position <> e.last_position
         LIMIT p_limit)
        UNION ALL
        SELECT 'head does not match the last event', h.position::text
        FROM event_head h
        WHERE h.position <> coalesce((SELECT max(ev.position) FROM events ev), 0)
           OR h.hash <> coalesce((SELECT ev.hash FROM events ev ORDER BY ev.position DESC LIMIT 1), decode(repeat('00', 32), 'hex'))
        UNION ALL
        SELECT 'projection checkpoint is past the head', p.name
        FROM projection_checkpoints p, event_head h WHERE p.position > h.position
    $fn$;

    DO $do$
    DECLARE
        f text;
    BEGIN
        FOREACH f IN ARRAY ARRAY['coord_write(jsonb)', 'coord_append(jsonb)', 'coord_append_sequential(jsonb)', 'coord_append_staged()',
                                 'coord_bulk_begin(text[], bigint[], bigint, text, timestamptz)',
                                 'coord_bulk_finish(bigint, bigint, text, bigint[], text[], bigint[], bigint[], bigint[])',
                                 'coord_record_receipt(uuid, text, text)'] LOOP
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', f, current_schema());
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        END LOOP;
    END
    $do$;
    """#
}

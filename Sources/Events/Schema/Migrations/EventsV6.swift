// Shipped migration: never edit. Its text is fixed (no helper is interpolated into it), `schema_migrations` holds
// its SHA-256, and `coordctl migrate` refuses a database whose applied text differs. A change is a new version.

extension EventStoreSchema {
    /// v6, redaction (docs/EVENT_STORE.md, "Redaction"; docs/PRIVACY.md, "Erasure"). An event's data may be replaced
    /// once by a redacted form, through `coord_redact` only, when a later event of the log lists the redaction in its
    /// data (`"redactions": [{"position": P, "digest": hex}]`, the SHA-256 of the redacted event's content). The
    /// stored hash is kept: the next event's hash still chains from it, and `coord_verify` checks a redacted event's
    /// content against the digest its redacting event recorded (which the chain covers) instead of against its hash.
    static let v6 = #"""
    CREATE TABLE event_redactions (
        position        bigint      PRIMARY KEY,
        content_digest  bytea       NOT NULL CHECK (length(content_digest) = 32),
        by_position     bigint      NOT NULL,
        redacted_at     timestamptz NOT NULL DEFAULT now(),
        CHECK (by_position > position)
    );
    CREATE TRIGGER event_redactions_no_change BEFORE UPDATE OR DELETE ON event_redactions
        FOR EACH ROW EXECUTE FUNCTION coord_refuse_change();
    CREATE TRIGGER event_redactions_no_truncate BEFORE TRUNCATE ON event_redactions
        FOR EACH STATEMENT EXECUTE FUNCTION coord_refuse_change();

    -- What an event's hash covers after the previous hash: the content a redaction's digest is of.
    CREATE FUNCTION coord_event_content(pos bigint, stream text, version bigint, id uuid, type text,
                                        data jsonb, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT convert_to(concat_ws(E'\x1f', pos::text, stream, version::text, id::text, type,
                                    data::text, metadata::text,
                                    coord_micros(occurred_at), coord_micros(recorded_at)), 'UTF8')
    $$;

    -- Whether the event at p_by lists the redaction of p_position with p_digest.
    CREATE FUNCTION coord_redaction_listed(p_position bigint, p_digest bytea, p_by bigint) RETURNS boolean
    LANGUAGE sql STABLE AS $$
        SELECT EXISTS (SELECT 1 FROM events b WHERE b.position = p_by AND b.position > p_position
                       AND b.data->'redactions' @> jsonb_build_array(jsonb_build_object('position', p_position, 'digest', encode(p_digest, 'hex'))))
    $$;

    -- Still append-only, except the one change coord_redact makes: an event's data, to the content its registered
    -- redaction names, nothing else.
    CREATE OR REPLACE FUNCTION coord_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Nested: NEW is not assigned for DELETE and TRUNCATE.
        IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'events' THEN
            IF current_setting('coord.redacting', true) = 'on'
               AND NEW.position = OLD.position AND NEW.stream = OLD.stream AND NEW.version = OLD.version AND NEW.id = OLD.id
               AND NEW.type = OLD.type AND NEW.metadata = OLD.metadata AND NEW.occurred_at = OLD.occurred_at
               AND NEW.recorded_at = OLD.recorded_at AND NEW.hash = OLD.hash
               AND EXISTS (SELECT 1 FROM event_redactions r WHERE r.position = NEW.position
                           AND r.content_digest = sha256(coord_event_content(NEW.position, NEW.stream, NEW.version, NEW.id, NEW.type,
                                                                             NEW.data, NEW.metadata, NEW.occurred_at, NEW.recorded_at))) THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION 'the event log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END $$;

    -- Replaces the data of the event at p_position by p_data, when the event at p_by (later) lists that redaction
    -- with the digest of the content it makes. Done once: again with the same data is a no-op, with other data refused.
    CREATE FUNCTION coord_redact(p_position bigint, p_data jsonb, p_by bigint) RETURNS void
    LANGUAGE plpgsql AS $fn$
    DECLARE
        ev events;
        digest bytea;
        existing bytea;
    BEGIN
        SELECT * INTO ev FROM events e WHERE e.position = p_position FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no event at position %', p_position USING ERRCODE = 'no_data_found';
        END IF;
        digest := sha256(coord_event_content(ev.position, ev.stream, ev.version, ev.id, ev.type, p_data, ev.metadata,
                                             ev.occurred_at, ev.recorded_at));
        IF NOT coord_redaction_listed(p_position, digest, p_by) THEN
            RAISE EXCEPTION 'the redaction of position % is not listed by the event at position %', p_position, p_by
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT r.content_digest INTO existing FROM event_redactions r WHERE r.position = p_position;
        IF existing IS NOT NULL THEN
            IF existing = digest THEN RETURN; END IF;
            RAISE EXCEPTION 'the event at position % was redacted already', p_position USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO event_redactions (position, content_digest, by_position) VALUES (p_position, digest, p_by);
        PERFORM set_config('coord.redacting', 'on', true);
        UPDATE events SET data = p_data WHERE position = p_position;
        PERFORM set_config('coord.redacting', 'off', true);
    END
    $fn$;

    -- coord_verify as in v1, and a redacted event: its content must be what its redaction recorded (digest listed
    -- by the redacting event, which the chain covers); the chain runs on from its stored hash.
    CREATE OR REPLACE FUNCTION coord_verify(p_from bigint, p_limit bigint)
    RETURNS TABLE (checked bigint, last_checked bigint, broken_at bigint, problem text)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        prev bytea;
        expect_pos bigint := p_from;
        ev record;
        n bigint := 0;
        computed bytea;
        red record;
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
                SELECT r.content_digest, r.by_position INTO red FROM event_redactions r WHERE r.position = ev.position;
                IF red.content_digest IS NULL
                   OR red.content_digest <> sha256(coord_event_content(ev.position, ev.stream, ev.version, ev.id, ev.type, ev.data,
                                                                      ev.metadata, ev.occurred_at, ev.recorded_at))
                   OR NOT coord_redaction_listed(ev.position, red.content_digest, red.by_position) THEN
                    RETURN QUERY SELECT n, ev.position - 1, ev.position, 'hash mismatch'::text; RETURN;
                END IF;
            END IF;
            IF ev.version > 1 AND NOT EXISTS (SELECT 1 FROM events p WHERE p.stream = ev.stream
                                              AND p.version = ev.version - 1 AND p.position < ev.position) THEN
                RETURN QUERY SELECT n, ev.position - 1, ev.position, 'stream version gap'::text; RETURN;
            END IF;
            prev := ev.hash;
            expect_pos := expect_pos + 1;
            n := n + 1;
        END LOOP;
        IF n < p_limit THEN
            IF NOT EXISTS (SELECT 1 FROM event_head eh WHERE eh.position = expect_pos - 1 AND eh.hash = prev) THEN
                RETURN QUERY SELECT n, expect_pos - 1, expect_pos, 'head does not match the last event'::text; RETURN;
            END IF;
        END IF;
        RETURN QUERY SELECT n, expect_pos - 1, NULL::bigint, NULL::text;
    END
    $fn$;

    DO $do$
    BEGIN
        EXECUTE format('ALTER FUNCTION coord_redact(bigint, jsonb, bigint) SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
        REVOKE EXECUTE ON FUNCTION coord_redact(bigint, jsonb, bigint) FROM PUBLIC;
    END
    $do$;
    """#
}

-- Least-privilege roles for coord. Run as a superuser (or the database owner) in the coord database,
-- once after creating it and again after every `coordctl migrate` (it is idempotent):
--   psql -v ON_ERROR_STOP=1 -d coord -f deploy/postgres/roles.sql
-- Set passwords afterwards: ALTER ROLE coord_app PASSWORD '...'; (never commit them).
--
--   coord_owner     owns the schema; runs `coordctl migrate`.
--   coord_app       what coordd runs as: appends and reads events, writes read models and checkpoints.
--                   It can never UPDATE, DELETE or TRUNCATE the event log (privileges, on top of the triggers).
--   coord_readonly  BI tools and auditors: SELECT on everything, nothing else.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coord_owner') THEN CREATE ROLE coord_owner LOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coord_app') THEN CREATE ROLE coord_app LOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coord_readonly') THEN CREATE ROLE coord_readonly LOGIN; END IF;
END $$;

ALTER SCHEMA public OWNER TO coord_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO coord_app, coord_readonly;
-- The app creates and swaps the read-model tables (rm_*) it owns.
GRANT CREATE ON SCHEMA public TO coord_app;

-- The log: append and read only.
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO coord_app;
-- Bookkeeping the append and the runner move forward (the head's trigger refuses moving it back).
-- (Tables that do not exist yet, before the first migration, are skipped.)
DO $$
DECLARE t text;
BEGIN
    IF to_regclass('public.events') IS NOT NULL THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON TABLE public.events FROM coord_app;
    END IF;
    FOREACH t IN ARRAY ARRAY['streams', 'event_head', 'projection_checkpoints', 'api_tokens'] LOOP
        IF to_regclass('public.' || t) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON TABLE public.%I TO coord_app', t);
        END IF;
    END LOOP;
END $$;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO coord_app;

-- Read-only: everything that exists, and the read models the app creates later.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO coord_readonly;
ALTER DEFAULT PRIVILEGES FOR ROLE coord_app IN SCHEMA public GRANT SELECT ON TABLES TO coord_readonly;
ALTER DEFAULT PRIVILEGES FOR ROLE coord_owner IN SCHEMA public GRANT SELECT ON TABLES TO coord_readonly;
ALTER DEFAULT PRIVILEGES FOR ROLE coord_owner IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO coord_app;

-- Sessions of the app role never sit idle inside a transaction (they would hold back vacuum and the log).
ALTER ROLE coord_app SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE coord_readonly SET default_transaction_read_only = on;

-- The roles coord runs as. Run once as a superuser in the coord database, before the first `coordctl migrate`:
--   psql -v ON_ERROR_STOP=1 -v app_password="$COORD_APP_PASSWORD" -v owner_password="$COORD_OWNER_PASSWORD" \
--        -d coord -f deploy/postgres/roles.sql
-- Privileges come afterwards, from the migrations' own list, once the tables exist:
--   coordctl migrate --app-role coord_app --readonly-role coord_readonly      (as coord_owner)
--
--   coord_owner     owns the schema and every object of the log; runs `coordctl migrate`, imports and restores.
--   coord_app       what coordd runs as: appends only through the log's functions (it has no INSERT, UPDATE or
--                   DELETE on events, streams or the head), moves checkpoints, creates and owns the read models.
--   coord_readonly  BI tools and auditors: SELECT on everything, read-only sessions.
-- Each role once, even when two databases of one cluster are set up at the same moment.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['coord_owner', 'coord_app', 'coord_readonly'] LOOP
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                EXECUTE format('CREATE ROLE %I LOGIN', r);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created by a concurrent run
        END;
    END LOOP;
END $$;

-- Passwords from psql variables (psql quotes them; they never appear in this file). Unset variables are skipped.
\if :{?owner_password}
ALTER ROLE coord_owner PASSWORD :'owner_password';
\endif
\if :{?app_password}
ALTER ROLE coord_app PASSWORD :'app_password';
\endif
\if :{?readonly_password}
ALTER ROLE coord_readonly PASSWORD :'readonly_password';
\endif

-- Sessions of the app role never sit idle inside a transaction (they would hold back vacuum and the log);
-- read-only sessions are read-only whatever they ask.
ALTER ROLE coord_app SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE coord_readonly SET default_transaction_read_only = on;

ALTER SCHEMA public OWNER TO coord_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
-- The read models coordd creates (and re-creates on rebuilds) are readable by the read-only role.
ALTER DEFAULT PRIVILEGES FOR ROLE coord_app IN SCHEMA public GRANT SELECT ON TABLES TO coord_readonly;

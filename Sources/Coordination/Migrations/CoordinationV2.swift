// Shipped migration: never edit. Its text is fixed, `schema_migrations` holds its SHA-256, and `coordctl migrate`
// refuses a database whose applied text differs. A change is a new version.

extension CoordinationSchema {
    /// v2, browser sessions: a signed-in token's session, held as the SHA-256 of its cookie (the cookie itself is
    /// never stored), with the CSRF value the console sends on writes, and when it lapses.
    static let v2 = #"""
    CREATE TABLE api_sessions (
        digest      text        PRIMARY KEY,
        token_id    text        NOT NULL REFERENCES api_tokens (id),
        csrf        text        NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        expires_at  timestamptz NOT NULL
    );
    CREATE INDEX api_sessions_expiry ON api_sessions (expires_at);
    """#
}

// Shipped migration: never edit. Its text is fixed, `schema_migrations` holds its SHA-256, and `coordctl migrate`
// refuses a database whose applied text differs. A change is a new version.

extension CoordinationSchema {
    /// v1, api tokens: stored as SHA-256 digests only.
    static let v1 = #"""
    CREATE TABLE api_tokens (
        id          text        PRIMARY KEY,
        subject     text        NOT NULL,
        role        text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        digest      text        NOT NULL UNIQUE,
        created_at  timestamptz NOT NULL DEFAULT now(),
        revoked_at  timestamptz
    );
    """#
}

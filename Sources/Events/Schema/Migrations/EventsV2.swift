// Shipped migration: never edit. Its text is fixed (no helper is interpolated into it), `schema_migrations` holds
// its SHA-256, and `coordctl migrate` refuses a database whose applied text differs. A change is a new version.

extension EventStoreSchema {
    /// v2, projection checkpoints. Projection checkpoints: each moves in the same transaction as its read-model writes.
    static let v2 = #"""
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
    """#
}

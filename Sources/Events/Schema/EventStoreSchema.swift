/// The event store's own tables and functions, as migrations.
///
/// Design notes (docs/EVENT_STORE.md has the long form):
/// - `position` is assigned under the row lock of the single `event_head` row, taken by `coord_append`
///   after all version checks, and held until COMMIT. Commits therefore happen in position order and
///   a rolled-back append releases its numbers, so positions are gapless and a reader that asks for
///   `position > last` never skips an event that commits late.
/// - The hash chain is computed inside PostgreSQL (`sha256`), in the same statement that assigns
///   positions, so the chain is exactly the commit order. Bulk imports (v4) compute it in Swift under
///   the same locks, and PostgreSQL re-checks a sample of it before commit.
/// - Immutability: triggers refuse UPDATE, DELETE and TRUNCATE for every role. A superuser can bypass
///   them only deliberately (`SET session_replication_role = replica`); `coord_verify` then finds the edit.
public enum EventStoreSchema {
    /// The store's migrations, one file each under `Migrations/`, frozen once shipped.
    public static let migrations = MigrationSet(component: "events", migrations: [
        Migration(version: 1, name: "event store", sql: v1),
        Migration(version: 2, name: "projection checkpoints", sql: v2),
        Migration(version: 3, name: "staged bulk append", sql: v3),
        Migration(version: 4, name: "bulk append with a precomputed chain", sql: v4),
        Migration(version: 5, name: "receipts and a guarded writer", sql: v5),
        Migration(version: 6, name: "redaction", sql: v6),
        Migration(version: 7, name: "a lean writer for independent requests", sql: v7),
    ], appGrants: [
        ("SELECT", "TABLE events, streams, event_head, command_receipts, schema_migrations, event_redactions"),
        ("SELECT, INSERT, UPDATE", "TABLE projection_checkpoints"),
        ("EXECUTE", "FUNCTION coord_write(jsonb), coord_record_receipt(uuid, text, text), "
            + "coord_write_arrays(int[], text[], bigint[], int[], uuid[], text[], jsonb[], jsonb[], timestamptz[], int[], uuid[], text[], text[])"),
    ])
}

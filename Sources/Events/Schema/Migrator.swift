import Foundation

/// One schema change, applied once, in its own transaction. Once shipped its text is fixed: the database
/// records its checksum, and a binary whose text differs is refused (`MigrationError.altered`).
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    /// Constant SQL shipped with the binary (may hold several statements).
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// SHA-256 of the SQL text, hex.
    public var checksum: String {
        var text = sql
        return text.withUTF8 { Hex.string(SHA256.hash($0)) }
    }
}

/// The migrations of one component (`events`, `coordination`, ...), each with its own version sequence.
public struct MigrationSet: Sendable {
    public let component: String
    public let migrations: [Migration]
    /// What the application role (coordd) may do with this component's objects, as `GRANT <privileges> ON <object>`
    /// pairs: the least that runs it. (The read-only role gets SELECT on every table.)
    public let appGrants: [(privileges: String, object: String)]

    public init(component: String, migrations: [Migration], appGrants: [(privileges: String, object: String)] = []) {
        precondition(zip(migrations, migrations.dropFirst()).allSatisfy { $0.version + 1 == $1.version },
                     "migration versions must be contiguous")
        self.component = component
        self.migrations = migrations
        self.appGrants = appGrants
    }

    public var latestVersion: Int { migrations.last?.version ?? 0 }
}

public enum MigrationError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The database was migrated by a newer binary: this one must not write to it.
    case schemaTooNew(component: String, database: Int, known: Int)
    /// The database has not been migrated to what this binary needs.
    case schemaBehind(component: String, database: Int, required: Int)
    /// A migration the database applied is not the text this binary ships for that version: one of the two was
    /// edited after release, and what the schema holds is not what the code expects.
    case altered(component: String, version: Int)

    public var description: String {
        switch self {
        case let .schemaTooNew(component, database, known):
            return "the database schema for \(component) is at version \(database), newer than this binary knows (\(known)): upgrade coord"
        case let .schemaBehind(component, database, required):
            return "the database schema for \(component) is at version \(database), this binary needs \(required): run `coordctl migrate`"
        case let .altered(component, version):
            return "migration \(component) v\(version) applied to this database differs from the one this binary ships (checksum mismatch): "
                + "a shipped migration was edited; restore the released text and add a new version instead"
        }
    }
}

/// Applies migrations. Safe when several processes migrate at once: they serialise on a session
/// advisory lock, and each sees what the one before it applied.
public enum Migrator {
    public struct Applied: Sendable, Equatable {
        public let component: String
        public let version: Int
        public let name: String
    }

    /// Creates the configured schema if needed and applies every pending migration of `sets`, in order.
    /// Returns what it applied (empty when the database was current).
    public static func migrate(_ pool: PostgresPool, _ sets: [MigrationSet]) async throws -> [Applied] {
        let schema = pool.configuration.schema
        return try await pool.withConnection { connection in
            try migrate(connection: connection, schema: schema, sets)
        }
    }

    /// Same as `migrate(_:_:)` on one connection.
    public static func migrate(connection: PostgresConnection, schema: String?, _ sets: [MigrationSet]) throws -> [Applied] {
        // A current schema is left alone with reads only: coordd runs as the application role, which may not
        // create or alter anything, after the owner migrated (the systemd unit's ExecStartPre, compose's one-shot).
        if try isCurrent(connection: connection, sets) { return [] }
        let lockName = "coord.migrations." + (schema ?? "(default)")
        try connection.query("SELECT pg_advisory_lock(hashtextextended(\(lockName), 0))")
        defer { _ = try? connection.query("SELECT pg_advisory_unlock(hashtextextended(\(lockName), 0))") }
        if let schema {
            // `schema` is a validated plain identifier (PostgresConfiguration), never request input.
            try connection.execute(unsafe: "CREATE SCHEMA IF NOT EXISTS \(schema)")
        }
        try connection.execute(unsafe: """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component  text        NOT NULL,
                version    int         NOT NULL,
                name       text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            );
            ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text
            """)
        var applied: [Applied] = []
        for set in sets {
            let current = try version(connection: connection, component: set.component)
            if current > set.latestVersion {
                throw MigrationError.schemaTooNew(component: set.component, database: current, known: set.latestVersion)
            }
            try recordOrCheckChecksums(connection: connection, set)
            for migration in set.migrations where migration.version > current {
                try connection.transaction { c in
                    try c.execute(unsafe: migration.sql)
                    try c.query("""
                        INSERT INTO schema_migrations (component, version, name, checksum)
                        VALUES (\(set.component), \(migration.version), \(migration.name), \(migration.checksum))
                        """)
                }
                applied.append(Applied(component: set.component, version: migration.version, name: migration.name))
            }
        }
        return applied
    }

    /// True when every set's migrations are applied, each with this binary's checksum: nothing to do. Reads only.
    static func isCurrent(connection: PostgresConnection, _ sets: [MigrationSet]) throws -> Bool {
        let table = try connection.query("""
            SELECT count(*) FROM pg_attribute
            WHERE attrelid = to_regclass('schema_migrations') AND attname = 'checksum' AND NOT attisdropped
            """)
        guard try table.decode(0, 0, as: Int.self) == 1 else { return false }
        for set in sets {
            let rows = try connection.query("SELECT version, checksum FROM schema_migrations WHERE component = \(set.component) ORDER BY version")
            let applied = try rows.rows.map { (try $0.decode(0, as: Int.self), try $0.decodeOptional(1, as: String.self)) }
            guard applied.count == set.migrations.count else { return false }
            for ((version, checksum), migration) in zip(applied, set.migrations) {
                guard version == migration.version, checksum == migration.checksum else { return false }
            }
        }
        return true
    }

    /// Refuses a database whose applied migrations are not this binary's texts. Rows applied before checksums
    /// were kept (NULL) get this binary's checksum: the versions they name are the same releases.
    static func recordOrCheckChecksums(connection: PostgresConnection, _ set: MigrationSet) throws {
        let rows = try connection.query("SELECT version, checksum FROM schema_migrations WHERE component = \(set.component) ORDER BY version")
        for row in rows.rows {
            let version: Int = try row.decode(0)
            guard let migration = set.migrations.first(where: { $0.version == version }) else { continue }
            if let stored: String = try row.decodeOptional(1) {
                if stored != migration.checksum { throw MigrationError.altered(component: set.component, version: version) }
            } else {
                try connection.query("""
                    UPDATE schema_migrations SET checksum = \(migration.checksum)
                    WHERE component = \(set.component) AND version = \(version) AND checksum IS NULL
                    """)
            }
        }
    }

    /// The highest applied version of `component`, 0 when none (or no migrations table).
    public static func version(connection: PostgresConnection, component: String) throws -> Int {
        let exists = try connection.query("SELECT to_regclass('schema_migrations') IS NOT NULL")
        guard try exists.decode(0, 0, as: Bool.self) else { return 0 }
        let result = try connection.query("SELECT coalesce(max(version), 0) FROM schema_migrations WHERE component = \(component)")
        return try result.decode(0, 0)
    }

    /// Throws unless every set is exactly at its latest version: a binary must not run against a
    /// schema that is behind (missing tables) or ahead (unknown meaning) of it.
    public static func requireCurrent(_ pool: PostgresPool, _ sets: [MigrationSet]) async throws {
        try await pool.withConnection(retryOnConnectionFailure: true) { connection in
            for set in sets {
                let current = try version(connection: connection, component: set.component)
                let kept: Bool = try connection.query("""
                    SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations') AND attname = 'checksum')
                    """).decode(0, 0)
                let altered = !kept ? nil : try connection.query("""
                    SELECT m.version FROM schema_migrations m
                    JOIN unnest(\(set.migrations.map(\.version))::int[], \(set.migrations.map(\.checksum))::text[]) AS s(version, checksum)
                      ON s.version = m.version
                    WHERE m.component = \(set.component) AND m.checksum IS NOT NULL AND m.checksum <> s.checksum LIMIT 1
                    """)
                if let row = altered?.first { throw MigrationError.altered(component: set.component, version: try row.decode(0)) }
                if current > set.latestVersion {
                    throw MigrationError.schemaTooNew(component: set.component, database: current, known: set.latestVersion)
                }
                if current < set.latestVersion {
                    throw MigrationError.schemaBehind(component: set.component, database: current, required: set.latestVersion)
                }
            }
        }
    }
}

extension Migrator {
    /// Grants the application role (coordd's) the least that runs it and the read-only role SELECT on every table,
    /// on the objects the migrations created: run after them (`coordctl migrate --app-role R --readonly-role R`),
    /// by the schema's owner. The app role appends only through the store's functions (it has no INSERT on
    /// `events`), moves checkpoints, and creates and owns the read models. Idempotent.
    public static func grant(_ pool: PostgresPool, _ sets: [MigrationSet], app: String?, readonly: String?) async throws {
        for role in [app, readonly].compactMap({ $0 }) where !PostgresConfiguration.isPlainIdentifier(role) {
            throw PostgresError(kind: .encoding, serverMessage: "role names must match [a-z_][a-z0-9_]{0,62}")
        }
        let schema = pool.configuration.schema
        try await pool.withConnection { c in
            try c.transaction { c in
                // Role names are validated plain identifiers; object names are this binary's constants.
                let here = try c.query("SELECT current_schema()").decode(0, 0, as: String.self)
                let quoted = try c.quoteIdentifier(schema ?? here)
                if let app {
                    try c.execute(unsafe: "GRANT USAGE, CREATE ON SCHEMA \(quoted) TO \(app)")
                    for set in sets {
                        for g in set.appGrants { try c.execute(unsafe: "GRANT \(g.privileges) ON \(g.object) TO \(app)") }
                    }
                }
                if let readonly {
                    try c.execute(unsafe: "GRANT USAGE ON SCHEMA \(quoted) TO \(readonly)")
                    try c.execute(unsafe: "GRANT SELECT ON ALL TABLES IN SCHEMA \(quoted) TO \(readonly)")
                    // Tables the owner creates later; the read models the app creates are covered by roles.sql (a
                    // default for another role's objects needs a superuser or that role).
                    try c.execute(unsafe: "ALTER DEFAULT PRIVILEGES IN SCHEMA \(quoted) GRANT SELECT ON TABLES TO \(readonly)")
                }
            }
        }
    }

    /// Whether coordd can write through `pool`: not when the server is a streaming standby, nor when the connected
    /// role cannot append or move checkpoints. `/readyz` says not ready then, rather than answering 500 (or 503) to
    /// every write.
    public enum WriteAccess: Sendable, Equatable {
        case writable
        /// The server is in recovery: it serves reads and refuses every write.
        case standby
        /// The role lacks EXECUTE on coord_write or INSERT/UPDATE on projection_checkpoints.
        case roleCannotWrite
    }

    /// Both checks in one statement (one round trip for each `/readyz`).
    public static func writeAccess(_ pool: PostgresPool) async throws -> WriteAccess {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            // By oid, through what this role can see: a schema it may not use resolves to nothing (false), not an error.
            let r = try c.query("""
                SELECT pg_is_in_recovery(),
                       coalesce((SELECT bool_or(has_function_privilege(p.oid, 'EXECUTE')) FROM pg_proc p
                                 WHERE p.proname = 'coord_write' AND pg_function_is_visible(p.oid)), false)
                   AND coalesce(has_table_privilege(to_regclass('projection_checkpoints'), 'INSERT, UPDATE'), false)
                """)
            if try r.decode(0, 0) as Bool { return .standby }
            return try r.decode(0, 1) as Bool ? .writable : .roleCannotWrite
        }
    }
}

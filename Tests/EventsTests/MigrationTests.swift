import Foundation
import Testing
import Coordination
@testable import Events
import TestSupport

/// The events schema's newest migration.
private let latest = EventStoreSchema.migrations.latestVersion

/// The SHA-256 of every shipped migration's text. A shipped migration is never edited: this list only grows.
private let shipped: [String: String] = [
    "events v1": "bdd64bede8571588ff0e1004a04ed14e86fe2e32260c4fd353f2fcf34bc464cb",
    "events v2": "9ca22cc54529303fe9ad647c5c3adad098867137a360efd1da045cbde53bd7f2",
    "events v3": "f6c7f62d8bbd0f7ac21522b9f03c92784e20174153a3e2c99cb83d56adda7074",
    "events v4": "7b13b5f2ca7039816f18abf094629a840d5ff372f7b78b78cb5e7ae0fc744667",
    "events v5": "4a9811d6bd2e9a8ba062d865eff1ed5b8376d2670b8e6f6c669652cadfbc426b",
    "events v6": "3fa4c7f7b580d144cf98e0518c3667451b02f784aee50c3bb35abfaf18cee22d",
    "events v7": "b835940b294c3a1cc3b88f46d9f37e643f0563263b36c68d73a1b4ab08a2030a",
    "coordination v1": "187d83b1bad513505633ff1abd8d20a5fa66022ed51d8add5f01c7f232279c22",
    "coordination v2": "0ff5750e4b22c3b81f211c046d46ab8525c42681c6fa011b4951b4da2b00eda8",
    "coordination v3": "afc40f91d9739ffef9a91585caef7042ac5aaea77be2ba731fb2fe2cd027f134",
    "coordination v4": "81d6082dcc6fe407f458b81453afd28688fd685bd9220cec710fc4b6f08f7a4e",
    "coordination v5": "f84996c355328907a8b5df5bed82e5dbc1a22f336d2a727420a888b8ab314d6e",
]

@Suite("Migrations")
struct MigrationTests {
    @Test("migrating twice applies nothing the second time")
    func idempotent() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let first = try await Migrator.migrate(pool, [EventStoreSchema.migrations])
        #expect(first.map(\.version) == Array(1...latest))
        #expect(try await Migrator.migrate(pool, [EventStoreSchema.migrations]).isEmpty)
        try await Migrator.requireCurrent(pool, [EventStoreSchema.migrations])
    }

    @Test("processes migrating at once serialise: each migration applied exactly once")
    func concurrent() async throws {
        let pool = try await TestDatabase.makePool(poolSize: 8, migrate: false)
        defer { pool.close() }
        let applied = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    // Separate connections, as separate processes would have.
                    let connection = try TestDatabase.connection(like: pool)
                    defer { connection.close() }
                    return try await runBlocking {
                        try Migrator.migrate(connection: connection, schema: pool.configuration.schema, [EventStoreSchema.migrations]).count
                    }
                }
            }
            var total = 0
            for try await n in group { total += n }
            return total
        }
        #expect(applied == latest)
        let rows = try await pool.withConnection { c in try c.query("SELECT count(*) FROM schema_migrations").decode(0, 0, as: Int.self) }
        #expect(rows == latest)
        #expect(try await Migrator.migrate(pool, [EventStoreSchema.migrations]).isEmpty)
    }

    @Test("shipped migrations are frozen: their texts hash as released, and a database that applied another text is refused")
    func frozen() async throws {
        for set in [EventStoreSchema.migrations] + Coordination.migrationSets {
            for m in set.migrations {
                let key = "\(set.component) v\(m.version)"
                if let released = shipped[key] { #expect(m.checksum == released, "\(key) was edited after release: \(m.checksum)") }
            }
        }
        let present = Set(([EventStoreSchema.migrations] + Coordination.migrationSets).flatMap { set in set.migrations.map { "\(set.component) v\($0.version)" } })
        #expect(Set(shipped.keys).isSubset(of: present), "no shipped migration is removed")
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        _ = try await Migrator.migrate(pool, [EventStoreSchema.migrations])
        let recorded = try await pool.withConnection { c in
            try c.query("SELECT checksum FROM schema_migrations WHERE component = 'events' ORDER BY version").rows.map { try $0.decode(0, as: String.self) }
        }
        #expect(recorded == EventStoreSchema.migrations.migrations.map(\.checksum))
        // What an edited shipped migration looks like from the database's side: its applied text differs.
        try await pool.withConnection { c in try c.query("UPDATE schema_migrations SET checksum = 'edited' WHERE component = 'events' AND version = 2") }
        await #expect(throws: MigrationError.altered(component: "events", version: 2)) { try await Migrator.migrate(pool, [EventStoreSchema.migrations]) }
        await #expect(throws: MigrationError.altered(component: "events", version: 2)) { try await Migrator.requireCurrent(pool, [EventStoreSchema.migrations]) }
        // A database migrated before checksums were kept gets them recorded on its next migration.
        try await pool.withConnection { c in try c.query("UPDATE schema_migrations SET checksum = NULL WHERE component = 'events'") }
        #expect(try await Migrator.migrate(pool, [EventStoreSchema.migrations]).isEmpty)
        try await Migrator.requireCurrent(pool, [EventStoreSchema.migrations])
    }

    @Test("a schema newer than the binary is refused, and one behind is reported")
    func versionGuards() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        await #expect(throws: MigrationError.schemaBehind(component: "events", database: 0, required: latest)) {
            try await Migrator.requireCurrent(pool, [EventStoreSchema.migrations])
        }
        _ = try await Migrator.migrate(pool, [EventStoreSchema.migrations])
        try await pool.withConnection { c in
            try c.query("INSERT INTO schema_migrations (component, version, name) VALUES ('events', \(latest + 1), 'from the future')")
        }
        await #expect(throws: MigrationError.schemaTooNew(component: "events", database: latest + 1, known: latest)) {
            try await Migrator.migrate(pool, [EventStoreSchema.migrations])
        }
        await #expect(throws: MigrationError.self) {
            try await Migrator.requireCurrent(pool, [EventStoreSchema.migrations])
        }
    }

    @Test("reads by stream and by position use indexes, not sequential scans")
    func indexedReads() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        for i in 0..<20 { try await store.append(sampleEvents(50), to: "idx-\(i)") }
        let plans = try await store.pool.withConnection { c -> [String] in
            try c.execute(unsafe: "ANALYZE events")
            try c.execute(unsafe: "SET enable_seqscan = off")  // what a large table would choose
            let queries: [SQL] = [
                EventStore.readAllSQL(after: 500, limit: 100, filter: .all, until: .none),
                EventStore.readAllSQL(after: 0, limit: 100, filter: EventFilter(categories: ["idx"]), until: .none),
                EventStore.readAllSQL(after: 0, limit: 100, filter: EventFilter(types: ["thing.happened"]), until: .none),
                EventStore.columns + " WHERE stream = \("idx-3") AND version >= \(Int64(10)) ORDER BY version LIMIT \(10)",
            ]
            return try queries.map { q in
                try c.query("EXPLAIN " + q).rows.map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
            }
        }
        for plan in plans {
            #expect(!plan.contains("Seq Scan"), "\(plan)")
        }
        // And with the planner free to choose, a by-position read on a realistic table stays indexed.
        let plan = try await store.pool.withConnection { c in
            try c.query("EXPLAIN " + EventStore.readAllSQL(after: 990, limit: 10, filter: .all, until: .none)).rows
                .map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
        }
        #expect(plan.contains("events_pkey"), "\(plan)")
    }
}

import Foundation
import Testing
@testable import Events
import TestSupport

/// The events schema's newest migration.
private let latest = 4

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

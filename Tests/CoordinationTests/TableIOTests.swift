@testable import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Read-model table writes")
struct TableIOTests {
    static let columns = "key, warehouse, on_hand"

    @Test("replaced rows are updated in place (HOT), never deleted and re-inserted, and hold the last values")
    func replaceKeepsTablesSmall() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let c = try TestDatabase.connection(like: pool)
        defer { c.close() }
        try c.execute(unsafe: "CREATE TABLE rm_t (key text PRIMARY KEY, warehouse text NOT NULL, on_hand bigint NOT NULL); CREATE INDEX rm_t_warehouse_idx ON rm_t (warehouse)")
        let keys = (0..<8).map { "W\($0 % 2)/I\($0)" }
        func lines(_ n: Int) -> [String] { keys.enumerated().map { "\($1)\tW\($0 % 2)\t\(n * 10 + $0)" } }
        // Replacing existing rows updates them (no delete, no insert), as heap-only tuples while the page has
        // room: no new index entries. Deleting and re-inserting left a dead tuple and a dead entry in every
        // index per replacement, and rm_stock had hundreds of dead index entries per live row under load.
        func changes(_ c: PostgresConnection) throws -> [Int64] {
            let r = try c.query("""
                SELECT pg_stat_get_xact_tuples_inserted(o), pg_stat_get_xact_tuples_deleted(o),
                       pg_stat_get_xact_tuples_updated(o), pg_stat_get_xact_tuples_hot_updated(o)
                FROM (SELECT 'rm_t'::regclass::oid AS o) x
                """)
            return try (0..<4).map { try r.decode(0, $0, as: Int64.self) }
        }
        for n in 0..<2_000 {
            // The counters are the session's changes not yet reported, so the difference across the call is taken.
            let counts = try c.transaction { c in
                let before = try changes(c)
                try TableIO.replace(c, table: "rm_t", suffix: "", columns: Self.columns, keyColumn: "key", keys: keys, lines: lines(n))
                return zip(try changes(c), before).map { $0 - $1 }
            }
            // (PostgreSQL also counts an insert for each ON CONFLICT DO UPDATE, so inserts are not checked after the first.)
            if n == 0 { #expect(counts == [8, 0, 0, 0], "first flush inserts") }
            if n == 1 { #expect(counts[1...] == [0, 8, 8], "then updates in place (deleted, updated, HOT)") }
            if n > 1 { #expect(counts[1] == 0 && counts[2] == 8, "\(n): \(counts)") }
        }
        let rows = try c.query("SELECT key, warehouse, on_hand FROM rm_t ORDER BY on_hand").rows
        #expect(rows.count == keys.count)
        #expect(try rows.map { try $0.decode(2, as: Int64.self) } == keys.indices.map { Int64(19_990 + $0) })
        // Two replacements of the same rows in one transaction: the second sees only its own lines.
        try c.transaction { c in
            try TableIO.replace(c, table: "rm_t", suffix: "", columns: Self.columns, keyColumn: "key", keys: keys, lines: lines(5_000))
            try TableIO.replace(c, table: "rm_t", suffix: "", columns: Self.columns, keyColumn: "key", keys: keys, lines: lines(6_000))
        }
        #expect(try c.query("SELECT min(on_hand) FROM rm_t").decode(0, 0, as: Int64.self) == 60_000)
        // A key without a line is deleted; outside a transaction rows are deleted and copied.
        try c.transaction { c in
            try TableIO.replace(c, table: "rm_t", suffix: "", columns: Self.columns, keyColumn: "key", keys: [keys[0], "gone"], lines: ["\(keys[0])\tW0\t1"])
        }
        try TableIO.replace(c, table: "rm_t", suffix: "", columns: Self.columns, keyColumn: "key", keys: [keys[1]], lines: ["\(keys[1])\tW1\t2"])
        let after = try c.query("SELECT on_hand FROM rm_t WHERE key = ANY(\([keys[0], keys[1]])::text[]) ORDER BY key").rows
        #expect(try after.map { try $0.decode(0, as: Int64.self) } == [1, 2])
    }
}

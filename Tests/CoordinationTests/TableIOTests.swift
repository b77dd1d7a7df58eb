@testable import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Read-model table writes")
struct TableIOTests {
    struct Row: Sendable, Equatable {
        var key = "", warehouse = ""
        var onHand: Int64 = 0
        var minimum: Int64?
        var tags: [String] = []
        var at: Date?
        var day: Day?
        var status: String { onHand < (minimum ?? 0) ? "below" : "ok" }
    }
    static let table = ReadModelTable<Row>("rm_t", key: "key", indexes: ["(warehouse)"], empty: { Row() }, [
        Column("key", \.key), Column("warehouse", \.warehouse), Column("on_hand", \.onHand), Column("minimum", \.minimum),
        Column("tags", \.tags), Column("at", \.at), Column("day", \.day), Column("status", derived: \.status),
    ])

    @Test("a table declared once: its DDL types and nullability follow the Swift properties, rows load back as written")
    func declaredOnce() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let c = try TestDatabase.connection(like: pool)
        defer { c.close() }
        #expect(Self.table.createStatements(suffix: "") == [
            "CREATE TABLE rm_t (key text NOT NULL, warehouse text NOT NULL, on_hand bigint NOT NULL, minimum bigint, tags jsonb NOT NULL, "
                + "at timestamptz, day date, status text NOT NULL, PRIMARY KEY (key))",
            "CREATE INDEX ON rm_t (warehouse)",
        ])
        for ddl in Self.table.createStatements(suffix: "") { try c.execute(unsafe: ddl) }
        let rows = [Row(key: "a", warehouse: "W\t1", onHand: 5, minimum: 10, tags: ["x", "y\"z"], at: Date(timeIntervalSince1970: 1_790_000_000.25),
                        day: Day("2026-11-08")),
                    Row(key: "b", warehouse: "W2", onHand: 0)]
        try Self.table.copy(c, suffix: "", rows: rows)
        let loaded = try Self.table.load(c, suffix: "").sorted { $0.key < $1.key }
        #expect(loaded == rows)
        #expect(try c.query("SELECT status FROM rm_t ORDER BY key").rows.map { try $0.decode(0, as: String.self) } == ["below", "ok"])
    }

    struct Card: Sendable, Equatable {
        var position: Int64 = 0
        var text = ""
        var note: String?
        var amount: Int64?
        var flag = false
        var at = Date(timeIntervalSince1970: 0)
        var until: Date?
        var kind: String { flag ? "flagged" : "plain" }
    }
    static let card = ReadModelTable<Card>("rm_card", key: nil, primaryKey: "position", empty: { Card() }, [
        Column("position", \.position), Column("text", \.text), Column("note", \.note), Column("amount", \.amount), Column("flag", \.flag),
        Column("at", \.at), Column("until", \.until), Column("kind", derived: \.kind),
    ])

    @Test("a table of text, integers, booleans and times COPYs in binary, and its rows load back as written, edge values included; the stock card is such a table")
    func binaryCopy() async throws {
        #expect(Self.card.copiesBinary && StockProjection.ledger.copiesBinary && StockProjection.stock.copiesBinary)
        #expect(!Self.table.copiesBinary, "a jsonb array or a date column keeps the text format")
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let c = try TestDatabase.connection(like: pool)
        defer { c.close() }
        for ddl in Self.card.createStatements(suffix: "") { try c.execute(unsafe: ddl) }
        let rows = [
            Card(position: 1, text: "tab\tnew\nline \\ back", note: "café ☂︎ \u{1F600}", amount: -42, flag: true,
                 at: Date(timeIntervalSince1970: 1_790_000_000.123456), until: Date(timeIntervalSince1970: -1_000_000_000.5)),
            Card(position: 2, text: "", note: nil, amount: nil, flag: false, at: Date(timeIntervalSince1970: 946_684_800), until: nil),
            Card(position: Int64.max, text: String(repeating: "x", count: 70_000), note: "\\N", amount: Int64.min, flag: false,
                 at: Date(timeIntervalSince1970: 0.000001), until: Date(timeIntervalSince1970: 4_102_444_800)),
        ]
        try Self.card.copy(c, suffix: "", rows: rows)
        let loaded = try Self.card.load(c, suffix: "").sorted { $0.position < $1.position }
        #expect(loaded.count == rows.count)
        for (got, want) in zip(loaded, rows) {
            #expect(got.position == want.position && got.text == want.text && got.note == want.note && got.amount == want.amount
                    && got.flag == want.flag, "row \(want.position)")
            // Times as the text format stores them: to the microsecond.
            #expect(Timestamp.format(got.at) == Timestamp.format(want.at) && got.until.map(Timestamp.format) == want.until.map(Timestamp.format))
        }
        #expect(try c.query("SELECT kind FROM rm_card ORDER BY position").rows.map { try $0.decode(0, as: String.self) } == ["flagged", "plain", "plain"])
        #expect(try c.query("SELECT at::text FROM rm_card WHERE position = 1").decode(0, 0, as: String.self) == "2026-09-21 14:13:20.123456+00")
        // A value the server refuses (a NUL in text) fails the whole COPY, which writes nothing.
        #expect(throws: PostgresError.self) { try Self.card.copy(c, suffix: "", rows: [Card(position: 9, text: "a\u{0}b")]) }
        #expect(try c.query("SELECT count(*) FROM rm_card").decode(0, 0, as: Int64.self) == 3)
    }

    @Test("replaced rows are updated in place (HOT), never deleted and re-inserted, and hold the last values")
    func replaceKeepsTablesSmall() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let c = try TestDatabase.connection(like: pool)
        defer { c.close() }
        for ddl in Self.table.createStatements(suffix: "") { try c.execute(unsafe: ddl) }
        let keys = (0..<8).map { "W\($0 % 2)/I\($0)" }
        func lines(_ n: Int) -> [Row] { keys.enumerated().map { Row(key: $1, warehouse: "W\($0 % 2)", onHand: Int64(n * 10 + $0)) } }
        func replace(_ c: PostgresConnection, _ keys: [String], _ rows: [Row]) throws { try Self.table.replace(c, suffix: "", keys: keys, rows: rows) }
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
                try replace(c, keys, lines(n))
                return zip(try changes(c), before).map { $0 - $1 }
            }
            // (PostgreSQL also counts an insert for each ON CONFLICT DO UPDATE, so inserts are not checked after the first.)
            if n == 0 { #expect(counts == [8, 0, 0, 0], "first flush inserts") }
            if n == 1 { #expect(counts[1...] == [0, 8, 8], "then updates in place (deleted, updated, HOT)") }
            if n > 1 { #expect(counts[1] == 0 && counts[2] == 8, "\(n): \(counts)") }
        }
        // The stage is empty between transactions, and its deleted rows do not pile up: 2,000 flushes of 8 rows
        // would leave ~100 pages of dead rows in it without the periodic truncation (autovacuum skips temp tables).
        let stage = Self.table.stage(suffix: "")
        #expect(try c.query(SQL(unsafe: "SELECT count(*) FROM \(stage)")).decode(0, 0, as: Int64.self) == 0)
        let stagePages = try c.query("SELECT pg_relation_size(\(stage)::regclass) / 8192").decode(0, 0, as: Int64.self)
        #expect(stagePages <= 12, "the stage has \(stagePages) pages")
        let rows = try c.query("SELECT key, warehouse, on_hand FROM rm_t ORDER BY on_hand").rows
        #expect(rows.count == keys.count)
        #expect(try rows.map { try $0.decode(2, as: Int64.self) } == keys.indices.map { Int64(19_990 + $0) })
        // Two replacements of the same rows in one transaction: the second sees only its own lines.
        try c.transaction { c in
            try replace(c, keys, lines(5_000))
            try replace(c, keys, lines(6_000))
        }
        #expect(try c.query("SELECT min(on_hand) FROM rm_t").decode(0, 0, as: Int64.self) == 60_000)
        // A key without a line is deleted; outside a transaction rows are deleted and copied.
        try c.transaction { c in
            try replace(c, [keys[0], "gone"], [Row(key: keys[0], warehouse: "W0", onHand: 1)])
        }
        try replace(c, [keys[1]], [Row(key: keys[1], warehouse: "W1", onHand: 2)])
        let after = try c.query("SELECT on_hand FROM rm_t WHERE key = ANY(\([keys[0], keys[1]])::text[]) ORDER BY key").rows
        #expect(try after.map { try $0.decode(0, as: Int64.self) } == [1, 2])
    }

    @Test("a replace in a transaction that rolls back, on a new session, leaves the next one able to stage its rows")
    func replaceAfterRollback() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let c = try TestDatabase.connection(like: pool)
        defer { c.close() }
        for ddl in Self.table.createStatements(suffix: "") { try c.execute(unsafe: ddl) }
        struct Refused: Error {}
        // The first use creates the stage; the rollback takes its creation back with the rest.
        #expect(throws: Refused.self) {
            try c.transaction { c in
                try Self.table.replace(c, suffix: "", keys: ["a"], rows: [Row(key: "a", warehouse: "W0", onHand: 1)])
                throw Refused()
            }
        }
        #expect(try c.query("SELECT to_regclass(\(Self.table.stage(suffix: ""))) IS NULL").decode(0, 0, as: Bool.self))
        for n in 1...3 {
            try c.transaction { c in try Self.table.replace(c, suffix: "", keys: ["a"], rows: [Row(key: "a", warehouse: "W0", onHand: Int64(n))]) }
        }
        #expect(try c.query("SELECT on_hand FROM rm_t WHERE key = 'a'").decode(0, 0, as: Int64.self) == 3)
    }
}

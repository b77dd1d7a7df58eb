import Events
import Foundation

/// Builds one line of `COPY ... FROM STDIN` text format.
struct CopyLine {
    private(set) var text = ""
    private var first = true

    private mutating func field(_ raw: String) {
        if !first { text += "\t" }
        first = false
        text += raw
    }

    mutating func add(_ value: String?) { field(CopyText.escape(value)) }
    mutating func add(_ value: Int64?) { field(value.map { String($0) } ?? "\\N") }
    mutating func add(_ value: Int) { field(String(value)) }
    mutating func add(_ value: Double?) { field(value.map { String($0) } ?? "\\N") }
    mutating func add(_ value: Date?) { field(value.map(Timestamp.format) ?? "\\N") }
    mutating func add(_ value: Day?) { field(value?.description ?? "\\N") }
}

/// Table writes shared by the projections: replace rows by key and append rows.
enum TableIO {
    /// Makes the rows whose single-column key is in `keys` exactly `lines` (one line per key; `columns`
    /// must name every column of the table).
    ///
    /// Inside a transaction, the lines go to a temporary staging table and are upserted from there:
    /// rows that exist are updated in place, which PostgreSQL can do as heap-only (HOT) updates while
    /// no indexed column changes, so a row updated thousands of times between two vacuums does not
    /// leave thousands of dead index entries for readers to step over (as delete-then-insert did).
    /// Outside a transaction, and when a key has no line, the rows are deleted and copied in.
    static func replace(_ c: PostgresConnection, table: String, suffix: String, columns: String, keyColumn: String,
                        keys: [String], lines: [String]) throws {
        guard !keys.isEmpty else { return }
        // Table and column names are constants of the projection definitions, never input.
        guard c.inTransaction, lines.count == keys.count else {
            try c.query(SQL(unsafe: "DELETE FROM \(table)\(suffix) WHERE \(keyColumn) = ANY(") + "\(keys)::text[])")
            try copy(c, table: table, suffix: suffix, columns: columns, lines: lines)
            return
        }
        // A name no table of the schema has (pg_temp comes first in the search path), with a digest of the
        // column list: a connection that outlives a change of the table's columns gets a new stage.
        let stage = "coord_stage_\(table)\(suffix)_\(String(fnv1a(columns), radix: 16))"
        try c.execute(unsafe: "CREATE TEMP TABLE IF NOT EXISTS \(stage) (LIKE \(table)\(suffix)) ON COMMIT DELETE ROWS")
        try c.copyIn(SQL(unsafe: "COPY \(stage) (\(columns)) FROM STDIN"), rows: lines)
        let updates = columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0 != keyColumn }.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        // The statement empties the stage as it reads it, so a second call in the same transaction starts clean.
        try c.query(SQL(unsafe: """
            WITH staged AS (DELETE FROM \(stage) RETURNING \(columns))
            INSERT INTO \(table)\(suffix) (\(columns)) SELECT \(columns) FROM staged
            ON CONFLICT (\(keyColumn)) DO UPDATE SET \(updates)
            """))
    }

    private static func fnv1a(_ text: String) -> UInt32 {
        text.utf8.reduce(2_166_136_261 as UInt32) { ($0 ^ UInt32($1)) &* 16_777_619 }
    }

    static func copy(_ c: PostgresConnection, table: String, suffix: String, columns: String, lines: [String]) throws {
        guard !lines.isEmpty else { return }
        try c.copyIn(SQL(unsafe: "COPY \(table)\(suffix) (\(columns)) FROM STDIN"), rows: lines)
    }
}

extension PostgresResult.Row {
    func day(_ column: String) throws -> Day? {
        guard let text: String = try decodeOptional(column) else { return nil }
        return Day(text)
    }
}

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

/// Table writes shared by the projections: replace rows by key (delete, then COPY) and append rows.
enum TableIO {
    /// Deletes the rows whose single-column key is in `keys`, then copies `lines` in.
    static func replace(_ c: PostgresConnection, table: String, suffix: String, columns: String, keyColumn: String,
                        keys: [String], lines: [String]) throws {
        guard !keys.isEmpty else { return }
        // Table and column names are constants of the projection definitions, never input.
        try c.query(SQL(unsafe: "DELETE FROM \(table)\(suffix) WHERE \(keyColumn) = ANY(") + "\(keys)::text[])")
        try copy(c, table: table, suffix: suffix, columns: columns, lines: lines)
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

import Events
import Foundation

/// Rows of a read-model query: column names and text values (nil = NULL), ready to render as JSON, CSV,
/// HXL or an aligned table. jsonb columns (arrays, objects) keep their shape in JSON and flatten in CSV.
public struct ResultTable: Sendable, Equatable {
    public let columns: [String]
    public internal(set) var rows: [[String?]]
    /// Columns holding numbers or booleans (rendered unquoted in JSON).
    public var numeric: Set<String> = []
    public var boolean: Set<String> = []
    /// Columns holding JSON documents (jsonb): embedded as they are in JSON answers.
    public var documents: Set<String> = []

    init(_ result: PostgresResult) throws {
        columns = result.columnNames
        for (name, oid) in zip(result.columnNames, result.columnTypes) {
            if [20, 21, 23, 700, 701, 1700].contains(oid) { numeric.insert(name) }
            if oid == 16 { boolean.insert(name) }
            if oid == 114 || oid == 3802 { documents.insert(name) }
        }
        // timestamptz (1184) columns in RFC 3339 UTC, as the API promises, not PostgreSQL's ISO style.
        let times = Set(result.columnTypes.enumerated().filter { $0.element == 1184 }.map(\.offset))
        rows = try (0..<result.count).map { r in
            try (0..<result.columnCount).map { c in
                if times.contains(c), let date = try result.decodeOptional(r, c, as: Date.self) { return Timestamp.format(date) }
                return try result.decodeOptional(r, c, as: String.self)
            }
        }
    }

    public init(columns: [String], rows: [[String?]], numeric: Set<String> = [], boolean: Set<String> = [], documents: Set<String> = []) {
        (self.columns, self.rows, self.numeric, self.boolean, self.documents) = (columns, rows, numeric, boolean, documents)
    }

    /// A JSON array of objects, numbers and booleans typed, documents embedded.
    public var jsonArray: String {
        var out: [UInt8] = []
        appendJSONArray(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `jsonArray` as UTF-8, appended to `out`: each list answer is written straight into its body. The column
    /// kinds and the quoted keys are worked out once per table, not once per cell.
    public func appendJSONArray(to out: inout [UInt8]) {
        let layout = jsonLayout
        out.reserveCapacity(out.count + rows.count * columns.count * 24)
        out.append(0x5b)  // [
        for (r, row) in rows.enumerated() {
            if r > 0 { out.append(0x2c) }
            appendJSONObject(row, layout, to: &out)
        }
        out.append(0x5d)  // ]
    }

    /// One row as a JSON object.
    public func jsonObject(_ row: [String?]) -> String {
        var out: [UInt8] = []
        appendJSONObject(row, jsonLayout, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func appendJSONObject(_ row: [String?], _ layout: (kinds: [JSONCell], keys: [[UInt8]]), to out: inout [UInt8]) {
        out.append(0x7b)  // {
        for i in columns.indices {
            if i > 0 { out.append(0x2c) }
            out.append(contentsOf: layout.keys[i])
            guard var v = row[i] else { out.append(contentsOf: Self.null); continue }
            switch layout.kinds[i] {
            case .raw: v.withUTF8 { out.append(contentsOf: $0) }
            case .boolean: out.append(contentsOf: v == "t" ? Self.true : Self.false)
            case .text: JSONWriter.appendQuoted(v, to: &out)
            }
        }
        out.append(0x7d)  // }
    }

    /// How each column is written, and its key quoted with the colon after it.
    private var jsonLayout: (kinds: [JSONCell], keys: [[UInt8]]) {
        let kinds = columns.map { c in
            numeric.contains(c) || documents.contains(c) ? JSONCell.raw : boolean.contains(c) ? .boolean : .text
        }
        let keys = columns.map { c in
            var key: [UInt8] = []
            JSONWriter.appendQuoted(c, to: &key)
            key.append(0x3a)  // :
            return key
        }
        return (kinds, keys)
    }

    private enum JSONCell { case raw, boolean, text }
    private static let null = Array("null".utf8), `true` = Array("true".utf8), `false` = Array("false".utf8)

    public func column(_ name: String) -> [String?] {
        guard let i = columns.firstIndex(of: name) else { return [] }
        return rows.map { $0[i] }
    }

    /// A row's value as CSV shows it: booleans `true`/`false`, arrays `a;b;c` (an object `key=value,...`).
    public func csvValue(_ row: [String?], _ i: Int) -> String? {
        guard let v = row[i] else { return nil }
        let column = columns[i]
        if boolean.contains(column) { return v == "t" ? "true" : "false" }
        if documents.contains(column), let parsed = try? JSONValue.parse(Data(v.utf8)) { return CSV.flatten(parsed) }
        return v
    }

    /// The header line, and the HXL hashtag line under it when `hxl` is given (a column without a tag is a bug
    /// that `ListTests` catch).
    public func csvHeader(hxl: [String: String]?) -> String {
        var out = CSV.line(columns)
        if let hxl { out += CSV.line(columns.map { hxl[$0] ?? "" }) }
        return out
    }

    /// The rows as CSV lines, without a header.
    public var csvRows: String {
        rows.map { row in CSV.line(columns.indices.map { csvValue(row, $0) }, guardFormulas: true) }.joined()
    }

    /// CSV with a header row, and the HXL hashtag row under it when `hxl` is given.
    public func csv(hxl: [String: String]?) -> String { csvHeader(hxl: hxl) + csvRows }
}

/// CSV (RFC 4180) lines, shared by every export.
public enum CSV {
    /// One line with CRLF. `guardFormulas` prefixes a cell that a spreadsheet would run as a formula with `'`
    /// (a leading `=`, `+`, `-` or `@` that is not a number): data rows, never the header or hashtag rows.
    public static func line(_ cells: [String?], guardFormulas: Bool = false) -> String {
        cells.map { cell($0 ?? "", guardFormulas: guardFormulas) }.joined(separator: ",") + "\r\n"
    }

    static func cell(_ value: String, guardFormulas: Bool) -> String {
        var text = value
        if guardFormulas, let first = text.first, "=+-@".contains(first), Double(text) == nil { text = "'" + text }
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }

    /// A JSON value in one cell: arrays as `a;b;c`, objects as `key=value,key=value`.
    static func flatten(_ value: JSONValue) -> String {
        switch value {
        case .null: return ""
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n
        case .string(let s): return s
        case .array(let items): return items.map(flatten).joined(separator: ";")
        case .object(let fields): return fields.map { "\($0.0)=\(flatten($0.1))" }.joined(separator: ",")
        }
    }
}

import Events
import Foundation

/// A value a read-model column holds: its PostgreSQL type, its COPY text and how it is read back.
protocol ColumnValue {
    static var sqlType: String { get }
    /// NULL allowed (optionals); the DDL says `NOT NULL` otherwise.
    static var isNullable: Bool { get }
    /// The value in COPY text format (`\N` for NULL).
    var copyText: String { get }
    /// `copyText`'s bytes appended to `out` (what a rebuild's COPY writes: no String per value where it can).
    func appendCopy(to out: inout [UInt8])
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> Self
}

/// A value COPY can also take in its binary format (what the columns of the stock card and of stock on hand are).
protocol BinaryColumnValue: ColumnValue {
    func appendBinary(to out: inout [UInt8])
}

extension String: BinaryColumnValue { func appendBinary(to out: inout [UInt8]) { CopyBinary.append(self, to: &out) } }
extension Int64: BinaryColumnValue { func appendBinary(to out: inout [UInt8]) { CopyBinary.append(self, to: &out) } }
extension Bool: BinaryColumnValue { func appendBinary(to out: inout [UInt8]) { CopyBinary.append(self, to: &out) } }
extension Date: BinaryColumnValue { func appendBinary(to out: inout [UInt8]) { CopyBinary.append(self, to: &out) } }
extension Optional: BinaryColumnValue where Wrapped: BinaryColumnValue {
    func appendBinary(to out: inout [UInt8]) {
        if let value = self { value.appendBinary(to: &out) } else { CopyBinary.appendNull(to: &out) }
    }
}

extension ColumnValue {
    static var isNullable: Bool { false }
    func appendCopy(to out: inout [UInt8]) { out.append(contentsOf: copyText.utf8) }
}

extension String: ColumnValue {
    static var sqlType: String { "text" }
    var copyText: String { CopyText.escape(self) }
    func appendCopy(to out: inout [UInt8]) { CopyText.append(self, to: &out) }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> String { try row.decode(column) }
}

extension Int64: ColumnValue {
    static var sqlType: String { "bigint" }
    var copyText: String { String(self) }
    func appendCopy(to out: inout [UInt8]) { CopyText.append(self, to: &out) }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> Int64 { try row.decode(column) }
}

extension Int: ColumnValue {
    static var sqlType: String { "int" }
    var copyText: String { String(self) }
    func appendCopy(to out: inout [UInt8]) { CopyText.append(Int64(self), to: &out) }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> Int { try row.decode(column) }
}

extension Double: ColumnValue {
    static var sqlType: String { "float8" }
    var copyText: String { String(self) }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> Double { try row.decode(column) }
}

extension Bool: ColumnValue {
    static var sqlType: String { "boolean" }
    var copyText: String { self ? "t" : "f" }
    func appendCopy(to out: inout [UInt8]) { out.append(self ? 0x74 : 0x66) }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> Bool { try row.decode(column) }
}

extension Date: ColumnValue {
    static var sqlType: String { "timestamptz" }
    var copyText: String { Timestamp.format(self) }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> Date { try row.decode(column) }
}

extension Day: ColumnValue {
    static var sqlType: String { "date" }
    var copyText: String { description }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> Day {
        let text: String = try row.decode(column)
        guard let day = Day(text) else { throw PostgresError(kind: .decoding, serverMessage: "cannot decode a date") }
        return day
    }
}

/// Arrays (of strings, of objects) are jsonb, so a list answers them as the JSON arrays a POST answer has.
extension Array: ColumnValue where Element: Codable {
    static var sqlType: String { "jsonb" }
    var copyText: String { CopyText.escape((try? JSONWriter.encode(self)) ?? "[]") }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> [Element] {
        let text: String = try row.decode(column)
        do { return try JSONWriter.makeDecoder().decode([Element].self, from: Data(text.utf8)) } catch {
            throw PostgresError(kind: .decoding, serverMessage: "cannot decode a jsonb array")
        }
    }
}

extension Optional: ColumnValue where Wrapped: ColumnValue {
    static var sqlType: String { Wrapped.sqlType }
    static var isNullable: Bool { true }
    var copyText: String { map(\.copyText) ?? "\\N" }
    func appendCopy(to out: inout [UInt8]) {
        if let value = self { value.appendCopy(to: &out) } else { out.append(0x5c); out.append(0x4e) }
    }
    static func read(_ row: PostgresResult.Row, _ column: Int) throws -> Wrapped? {
        row.isNull(column) ? nil : try Wrapped.read(row, column)
    }
}

/// One column of a read-model table: its name, its type (from the Swift property it maps) and how a row
/// writes and loads it. Declared once, in the table, from a key path.
struct Column<Row>: Sendable {
    let name: String
    let definition: String
    let copy: @Sendable (Row, inout [UInt8]) -> Void
    /// For a stored property: its COPY text from the row's bytes at the property's offset (`MemoryLayout.offset(of:)`),
    /// which a rebuild's COPY calls for every column of every row. A key-path read goes through the runtime's generic
    /// key-path walk each time (a quarter of a stock-heavy rebuild's client CPU).
    let copyStored: (@Sendable (UnsafeRawPointer, inout [UInt8]) -> Void)?
    /// Nil for a derived column (computed from others, written but never loaded).
    let load: (@Sendable (inout Row, PostgresResult.Row, Int) throws -> Void)?
    /// The value as a binary COPY field, for the types that have one (`BinaryColumnValue`); nil otherwise.
    let binary: (@Sendable (Row, inout [UInt8]) -> Void)?
    /// `binary` from the row's bytes, for a stored property (as `copyStored`).
    let binaryStored: (@Sendable (UnsafeRawPointer, inout [UInt8]) -> Void)?

    private static func stored<V: ColumnValue>(_ keyPath: KeyPath<Row, V>, _: V.Type) -> (@Sendable (UnsafeRawPointer, inout [UInt8]) -> Void)? {
        guard let offset = MemoryLayout<Row>.offset(of: keyPath) else { return nil }
        // Borrowed where it lies (`pointee`), not loaded out: no retain and release of every string.
        return { base, out in (base + offset).assumingMemoryBound(to: V.self).pointee.appendCopy(to: &out) }
    }

    private static func storedBinary<V: BinaryColumnValue>(_ keyPath: KeyPath<Row, V>, _: V.Type) -> (@Sendable (UnsafeRawPointer, inout [UInt8]) -> Void)? {
        guard let offset = MemoryLayout<Row>.offset(of: keyPath) else { return nil }
        return { base, out in (base + offset).assumingMemoryBound(to: V.self).pointee.appendBinary(to: &out) }
    }

    private init<V: ColumnValue>(_ name: String, _ keyPath: KeyPath<Row, V> & Sendable, _: V.Type,
                                 load: (@Sendable (inout Row, PostgresResult.Row, Int) throws -> Void)?,
                                 binary: (@Sendable (Row, inout [UInt8]) -> Void)?, binaryStored: (@Sendable (UnsafeRawPointer, inout [UInt8]) -> Void)?) {
        self.name = name
        self.definition = name + " " + V.sqlType + (V.isNullable ? "" : " NOT NULL")
        self.copy = { row, out in row[keyPath: keyPath].appendCopy(to: &out) }
        self.copyStored = Self.stored(keyPath, V.self)
        self.load = load
        (self.binary, self.binaryStored) = (binary, binaryStored)
    }

    /// A stored column: written from and loaded into `keyPath`.
    init<V: ColumnValue>(_ name: String, _ keyPath: WritableKeyPath<Row, V> & Sendable) {
        self.init(name, keyPath, V.self, load: { row, result, column in row[keyPath: keyPath] = try V.read(result, column) },
                  binary: nil, binaryStored: nil)
    }

    /// A stored column whose type COPY also takes in binary.
    init<V: BinaryColumnValue>(_ name: String, _ keyPath: WritableKeyPath<Row, V> & Sendable) {
        self.init(name, keyPath, V.self, load: { row, result, column in row[keyPath: keyPath] = try V.read(result, column) },
                  binary: { row, out in row[keyPath: keyPath].appendBinary(to: &out) }, binaryStored: Self.storedBinary(keyPath, V.self))
    }

    /// A derived column (a status, a key): written for queries, recomputed from the others on load.
    init<V: ColumnValue>(_ name: String, derived keyPath: KeyPath<Row, V> & Sendable) {
        self.init(name, keyPath, V.self, load: nil, binary: nil, binaryStored: nil)
    }

    /// A derived column whose type COPY also takes in binary.
    init<V: BinaryColumnValue>(_ name: String, derived keyPath: KeyPath<Row, V> & Sendable) {
        self.init(name, keyPath, V.self, load: nil, binary: { row, out in row[keyPath: keyPath].appendBinary(to: &out) },
                  binaryStored: Self.storedBinary(keyPath, V.self))
    }
}

/// A read-model table declared once: its columns, key and indexes. Its DDL, the COPY lines, the load of a
/// projection's state after a restart and the upsert of changed rows are all derived from this declaration,
/// so a column cannot be written in one place and forgotten in another.
struct ReadModelTable<Row>: Sendable {
    let name: String
    let columns: [Column<Row>]
    /// The key rows are replaced by (text, the primary key); nil for an append-only table.
    let key: String?
    /// The primary key when it is not `key` (the append-only stock card's).
    let primaryKey: String?
    /// Index definitions after `ON <table>`, e.g. `(warehouse, item)` or `(due) WHERE status = 'open'`.
    let indexes: [String]
    /// A row every load starts from before its stored columns are set.
    let empty: @Sendable () -> Row

    init(_ name: String, key: String?, primaryKey: String? = nil, indexes: [String] = [], empty: @escaping @Sendable () -> Row,
         _ columns: [Column<Row>]) {
        (self.name, self.key, self.primaryKey, self.indexes, self.empty, self.columns) = (name, key, primaryKey, indexes, empty, columns)
    }

    /// `name, name, ...` in declaration order.
    var columnList: String { columns.map(\.name).joined(separator: ", ") }

    /// Its DDL, with `suffix` after the table name (shadow tables of a rebuild). Constant text only: names are
    /// this declaration's.
    func createStatements(suffix: String) -> [String] {
        var parts = columns.map(\.definition)
        if let pk = primaryKey ?? key { parts.append("PRIMARY KEY (\(pk))") }
        return ["CREATE TABLE \(name)\(suffix) (\(parts.joined(separator: ", ")))"]
            + indexes.map { "CREATE INDEX ON \(name)\(suffix) \($0)" }
    }

    /// The row as one line of COPY text (without its newline), appended to `out`.
    func appendLine(_ row: Row, to out: inout [UInt8]) {
        withUnsafeBytes(of: row) { base in
            for (i, column) in columns.enumerated() {
                if i > 0 { out.append(0x09) }
                if let stored = column.copyStored { stored(base.baseAddress!, &out) } else { column.copy(row, &out) }
            }
        }
    }

    /// Every row, as stored.
    func load(_ c: PostgresConnection, suffix: String) throws -> [Row] {
        let result = try c.query(SQL(unsafe: "SELECT \(columnList) FROM \(name)\(suffix)"))
        return try result.rows.map { stored in
            var row = empty()
            for (i, column) in columns.enumerated() { try column.load?(&row, stored, i) }
            return row
        }
    }

    /// Whether every column has a binary COPY field, so `copy` sends binary.
    var copiesBinary: Bool { columns.allSatisfy { $0.binary != nil } }

    /// The row as one binary COPY tuple, appended to `out`.
    func appendBinaryRow(_ row: Row, to out: inout [UInt8]) {
        CopyBinary.appendFieldCount(columns.count, to: &out)
        withUnsafeBytes(of: row) { base in
            for column in columns {
                if let stored = column.binaryStored { stored(base.baseAddress!, &out) } else { column.binary!(row, &out) }
            }
        }
    }

    /// Appends `rows` with COPY (a rebuild's fresh tables, or the append-only stock card): in binary when every
    /// column has a binary field, as text otherwise.
    func copy(_ c: PostgresConnection, suffix: String, rows: some Collection<Row>) throws {
        guard !rows.isEmpty else { return }  // no COPY for nothing
        if copiesBinary {
            try c.copyInBinary(SQL(unsafe: "COPY \(name)\(suffix) (\(columnList)) FROM STDIN (FORMAT binary)"), rows: rows) { [self] row, out in
                appendBinaryRow(row, to: &out)
            }
        } else {
            try c.copyIn(SQL(unsafe: "COPY \(name)\(suffix) (\(columnList)) FROM STDIN"), rows: rows) { [self] row, out in appendLine(row, to: &out) }
        }
    }

    /// Makes the rows with these keys exactly `rows` (upserts; a key without a row is deleted).
    ///
    /// Inside a transaction, the rows go to a temporary staging table and are upserted from there: rows that
    /// exist are updated in place, which PostgreSQL can do as heap-only (HOT) updates while no indexed column
    /// changes, so a row updated thousands of times between two vacuums does not leave thousands of dead index
    /// entries for readers to step over (as delete-then-insert did). Outside a transaction, the rows are
    /// deleted and copied in.
    func replace(_ c: PostgresConnection, suffix: String, keys: [String], rows: [Row]) throws {
        guard let key, !keys.isEmpty else { return }
        guard c.inTransaction, rows.count == keys.count else {
            try c.query(SQL(unsafe: "DELETE FROM \(name)\(suffix) WHERE \(key) = ANY(") + "\(keys)::text[])")
            try copy(c, suffix: suffix, rows: rows)
            return
        }
        let stage = stage(suffix: suffix)
        // The stage is created once per session (again after a rollback, which may have undone it), and is empty
        // between transactions: the upsert below deletes what it reads, and a rollback takes back the COPY. Not
        // ON COMMIT DELETE ROWS: that truncates every stage of the session at every commit, which was 5% of the
        // machine's CPU under command load. Autovacuum does not reach temporary tables, so the deleted rows are
        // truncated away every `stageTruncateUses`th use instead.
        let use = c.use(stage)
        if use == 1 { try c.execute(unsafe: "CREATE TEMP TABLE IF NOT EXISTS \(stage) (LIKE \(name)\(suffix))") }
        else if use % Self.stageTruncateUses == 0 { try c.execute(unsafe: "TRUNCATE \(stage)") }
        try c.copyIn(SQL(unsafe: "COPY \(stage) (\(columnList)) FROM STDIN"), rows: rows) { [self] row, out in appendLine(row, to: &out) }
        let updates = columns.map(\.name).filter { $0 != key }.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        // The statement empties the stage as it reads it, so a second call in the same transaction starts clean.
        try c.query(SQL(unsafe: """
            WITH staged AS (DELETE FROM \(stage) RETURNING \(columnList))
            INSERT INTO \(name)\(suffix) (\(columnList)) SELECT \(columnList) FROM staged
            ON CONFLICT (\(key)) DO UPDATE SET \(updates)
            """))
    }

    static var stageTruncateUses: Int { 500 }

    /// The temporary table `replace` stages rows in: a name no table of the schema has (pg_temp comes first in the
    /// search path), with a digest of the column list, so a connection that outlives a change of the table's
    /// columns gets a new stage.
    func stage(suffix: String) -> String { "coord_stage_\(name)\(suffix)_\(String(Self.fnv1a(columnList), radix: 16))" }

    private static func fnv1a(_ text: String) -> UInt32 {
        text.utf8.reduce(2_166_136_261 as UInt32) { ($0 ^ UInt32($1)) &* 16_777_619 }
    }
}

/// A read model's tables, whatever their row types: what the projection runner needs (names and DDL).
protocol AnyReadModelTable: Sendable {
    var name: String { get }
    func createStatements(suffix: String) -> [String]
}

extension ReadModelTable: AnyReadModelTable {}

/// Keeps a keyed table's changed rows until the next flush: `touch` marks a key, `flush` upserts the marked
/// rows and forgets them, `copyAll` writes every row into a rebuild's fresh table.
struct DirtyKeys {
    private(set) var keys = Set<String>()
    mutating func touch(_ key: String) { keys.insert(key) }
    mutating func clear() { keys.removeAll(keepingCapacity: true) }

    func flush<Row>(_ table: ReadModelTable<Row>, _ c: PostgresConnection, suffix: String, rows: [String: Row]) throws {
        let present = keys.filter { rows[$0] != nil }
        try table.replace(c, suffix: suffix, keys: Array(present), rows: present.map { rows[$0]! })
    }
}

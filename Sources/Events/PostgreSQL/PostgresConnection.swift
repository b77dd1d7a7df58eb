import CLibPQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection.
///
/// Every call blocks the calling thread until PostgreSQL answers, so a connection is used from
/// threads outside Swift's cooperative pool: `PostgresPool` runs each borrower on a dispatch
/// queue. A connection is not safe to use from two threads at once; the pool lends it to one
/// borrower at a time, which is what `@unchecked Sendable` relies on.
public final class PostgresConnection: @unchecked Sendable {
    private var conn: OpaquePointer?
    /// Whether a transaction is open (set by `transaction`).
    public private(set) var inTransaction = false

    /// A notification received on a channel this connection listens to.
    public struct Notification: Sendable, Equatable {
        public let channel: String
        public let payload: String
    }

    /// Connects with `configuration` (a `postgres://` URI or libpq key/value string, merged with `PG*`
    /// environment variables by libpq). Sets UTF-8, ISO dates and UTC for the session, so decoding is
    /// independent of the server's defaults. What the user set wins: their `options` (or `PGOPTIONS`) come after
    /// coord's, so a `-c default_transaction_read_only=on` holds; their `application_name` and `connect_timeout`
    /// (or `PGAPPNAME`, `PGCONNECT_TIMEOUT`) replace coord's defaults.
    public init(configuration: PostgresConfiguration) throws {
        let (keys, values) = Self.parameters(configuration, environment: ProcessInfo.processInfo.environment)
        conn = withCStringArray(keys) { k in
            withCStringArray(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            if let conn { PQfinish(conn) }
            self.conn = nil
            throw PostgresError(kind: .connection, serverMessage: message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // Server notices (warnings on shutdown, NOTICEs from DDL) would go to stderr by default and could
        // quote values; errors reach callers as PostgresError instead.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
    }

    deinit { close() }

    /// The keywords and values `PQconnectdbParams` gets for `configuration`: the user's connection string first
    /// (expanded by libpq), then coord's session settings, merged with what the user set rather than over it.
    static func parameters(_ configuration: PostgresConfiguration, environment: [String: String]) -> (keys: [String], values: [String]) {
        let given = userParameters(configuration.connectionString)
        var options = "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3 -c client_min_messages=warning"
        if let schema = configuration.schema {
            // Validated to a plain identifier by PostgresConfiguration, so no escaping is needed here.
            options += " -c search_path=\(schema)"
        }
        // Later -c settings win in the server, so the user's come last.
        if let theirs = given["options"] ?? environment["PGOPTIONS"], !theirs.isEmpty { options += " " + theirs }
        var keys = ["client_encoding", "options", "fallback_application_name"]
        var values = ["UTF8", options, configuration.applicationName]
        if given["connect_timeout"] == nil && (environment["PGCONNECT_TIMEOUT"] ?? "").isEmpty {
            keys.append("connect_timeout")
            values.append(String(configuration.connectTimeoutSeconds))
        }
        if !configuration.connectionString.isEmpty {
            keys.insert("dbname", at: 0)
            values.insert(configuration.connectionString, at: 0)
        }
        return (keys, values)
    }

    /// The keywords a connection string sets, with their values (libpq's own parser, URIs and key=value alike).
    static func userParameters(_ connectionString: String) -> [String: String] {
        guard !connectionString.isEmpty else { return [:] }
        var error: UnsafeMutablePointer<CChar>?
        guard let parsed = PQconninfoParse(connectionString, &error) else {
            if let error { PQfreemem(error) }
            return [:]
        }
        defer { PQconninfoFree(parsed) }
        var out: [String: String] = [:]
        var option = parsed
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { out[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        return out
    }

    /// Closes the connection; further calls fail with a connection error.
    public func close() {
        if let conn { PQfinish(conn) }
        conn = nil
    }

    /// False once the connection broke or was closed: the pool then replaces it.
    public var isUsable: Bool {
        guard let conn, !broken else { return false }
        return PQstatus(conn) == CONNECTION_OK
    }

    /// Set once libpq reported a failure of the connection itself; it is not used again.
    private var broken = false

    /// The server's process id for this session (for `pg_terminate_backend` in tests and operations).
    public var backendPID: Int32 { conn.map { PQbackendPID($0) } ?? 0 }

    private func handle() throws -> OpaquePointer {
        guard let conn else { throw PostgresError(kind: .connection, serverMessage: "connection closed") }
        return conn
    }

    /// Runs one parameterised statement and returns its rows.
    @discardableResult
    public func query(_ sql: SQL) throws -> PostgresResult {
        let conn = try handle()
        for value in sql.binds {
            if let value, value.utf8.contains(0) {
                throw PostgresError(kind: .encoding, serverMessage: "text contains a NUL character")
            }
        }
        let count = Int32(sql.binds.count)
        let name = preparesStatements ? try preparedName(for: sql.text, on: conn) : nil
        let result = withOptionalCStringArray(sql.binds) { values in
            name.map { PQexecPrepared(conn, $0, count, values, nil, nil, 0) } ?? PQexecParams(conn, sql.text, count, nil, values, nil, nil, 0)
        }
        guard let name else { return try check(result) }
        do {
            return try check(result)
        } catch let error as PostgresError where error.sqlState == "0A000" || error.sqlState?.hasPrefix("42") == true {
            // A table the statement uses was redefined since it was prepared: "cached plan must not change
            // result type" (0A000), or a parameter type inferred then no longer fits (42804, 42883...).
            // Forget the statement so the next call prepares it afresh; this call fails as it would have.
            // (Inside a failed transaction the DEALLOCATE fails too; the name is never reused.)
            prepared[sql.text] = nil
            _ = PQexec(conn, "DEALLOCATE \(name)").map { PQclear($0) }
            throw error
        }
    }

    /// Named server-side statements for this session, by SQL text: a statement is parsed and analysed
    /// once per connection instead of at every call, and PostgreSQL's plan cache chooses between
    /// custom and generic plans (invalidated by DDL and ANALYZE, re-planned when `search_path`
    /// changes). Only plannable statements are prepared; the texts are the code's constants, and the
    /// cache is bounded in case a caller builds many (past the bound, statements run unnamed).
    private var prepared: [String: String] = [:]
    /// False runs every statement unnamed, parsed and planned at each call (the benchmarks' baseline
    /// of a client that does not prepare, like `pgbench -M extended`).
    public var preparesStatements = true
    private var statementsNamed = 0
    private static let preparedLimit = 256

    private func preparedName(for text: String, on conn: OpaquePointer) throws -> String? {
        if let name = prepared[text] { return name }
        guard prepared.count < Self.preparedLimit, Self.isPlannable(text) else { return nil }
        statementsNamed += 1
        let name = "coord_s\(statementsNamed)"
        _ = try check(PQprepare(conn, name, text, 0, nil))
        prepared[text] = name
        return name
    }

    /// SELECT, INSERT, UPDATE, DELETE and WITH: the statements PostgreSQL plans (COPY, SET, BEGIN and
    /// DDL are run unnamed).
    static func isPlannable(_ text: String) -> Bool {
        var utf8 = text.utf8.drop { $0 == 0x20 || $0 == 0x0a || $0 == 0x09 || $0 == 0x0d }
        var word: [UInt8] = []
        while let b = utf8.first, word.count < 7, (b | 0x20) >= 0x61, (b | 0x20) <= 0x7a {
            word.append(b | 0x20); utf8 = utf8.dropFirst()
        }
        switch String(decoding: word, as: UTF8.self) {
        case "select", "insert", "update", "delete", "with": return true
        default: return false
        }
    }

    /// Runs constant SQL text that may hold several statements (migrations, `BEGIN`).
    /// Never pass text derived from input: nothing in it is a bind.
    @discardableResult
    public func execute(unsafe text: String) throws -> PostgresResult {
        let conn = try handle()
        return try check(PQexec(conn, text))
    }

    private func check(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else {
            throw PostgresError(kind: .connection, serverMessage: lastErrorMessage)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN:
            return PostgresResult(handle: result)
        default:
            let error = errorFrom(result)
            PQclear(result)
            throw error
        }
    }

    private var lastErrorMessage: String {
        guard let conn else { return "connection closed" }
        return String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func errorFrom(_ result: OpaquePointer) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let p = PQresultErrorField(result, code) else { return nil }
            return String(cString: p)
        }
        let sqlState = field(Int32(UInt8(ascii: "C")))
        let constraint = field(Int32(UInt8(ascii: "n")))
        let message = field(Int32(UInt8(ascii: "M"))) ?? lastErrorMessage
        let detail = field(Int32(UInt8(ascii: "D")))
        let text = detail.map { "\(message) (\($0))" } ?? message
        // No SQLSTATE: the error is libpq's own, not the server's ("server closed the connection unexpectedly",
        // "could not send data"), and libpq does not always mark the connection bad by then.
        if sqlState == nil {
            broken = true
            return PostgresError(kind: .connection, serverMessage: text)
        }
        // A write refused as read-only: this server is a standby now (or the URL chose one). The session is not
        // used again, so the pool's next connection goes looking for the primary.
        if sqlState == "25006" { broken = true }
        return PostgresError(kind: .server, sqlState: sqlState, constraint: constraint, serverMessage: text)
    }

    /// Runs `body` between BEGIN and COMMIT on this connection; rolls back when it throws.
    /// The closure is synchronous, so nothing else can run on the connection in between.
    /// `beforeCommit` runs after `body`, just before `COMMIT` is sent (not when `body` throws).
    public func transaction<T>(isolation: String = "READ COMMITTED", beforeCommit: () -> Void = {},
                               _ body: (PostgresConnection) throws -> T) throws -> T {
        precondition(!inTransaction, "nested transaction")
        switch isolation {
        case "SERIALIZABLE": try execute(unsafe: "BEGIN ISOLATION LEVEL SERIALIZABLE")
        case "REPEATABLE READ": try execute(unsafe: "BEGIN ISOLATION LEVEL REPEATABLE READ")
        default: try execute(unsafe: "BEGIN")
        }
        inTransaction = true
        defer { inTransaction = false }
        do {
            let value = try body(self)
            beforeCommit()
            try execute(unsafe: "COMMIT")
            return value
        } catch {
            if isUsable { _ = try? execute(unsafe: "ROLLBACK") }
            sessionUses.removeAll()
            throw error
        }
    }

    /// Counts of uses a caller keeps for this session under its own key, as `use(_:)` returns them. A
    /// rolled-back transaction sets every count back to zero, as it may have undone what a first use did
    /// (create a temporary table). A new connection is a new session, and starts from zero.
    private var sessionUses: [String: Int] = [:]

    /// One more use of `key` in this session: 1 the first time, and again after a rollback.
    public func use(_ key: String) -> Int {
        sessionUses[key, default: 0] += 1
        return sessionUses[key]!
    }

    /// Streams rows into `COPY ... FROM STDIN` (text format). Each element of `rows` is one line
    /// without its newline; use `CopyText.escape` for field values. Returns the number of rows copied.
    @discardableResult
    public func copyIn(_ sql: SQL, rows: some Sequence<String>) throws -> Int {
        try copyIn(sql, rows: rows) { row, out in out.append(contentsOf: row.utf8) }
    }

    /// `copyIn` with each row written as COPY text bytes by `write` (fields escaped with `CopyText`, no final
    /// newline): no String per line. The chunks are made as the COPY sends them, so the server parses one while
    /// the next is written.
    @discardableResult
    public func copyIn<Rows: Sequence>(_ sql: SQL, rows: Rows, write: @escaping (Rows.Element, inout [UInt8]) -> Void) throws -> Int {
        try copyIn(sql, chunks: CopyLines(rows: rows, write: write))
    }

    /// `copyIn` in COPY's binary format (`sql` ends `FROM STDIN (FORMAT binary)`): `write` appends each row's field
    /// count and fields (`CopyBinary`), and the file header and trailer are added here. No value is printed as text
    /// for the server to parse back (timestamps and integers are most of a stock card's parsing).
    @discardableResult
    public func copyInBinary<Rows: Sequence>(_ sql: SQL, rows: Rows, write: @escaping (Rows.Element, inout [UInt8]) -> Void) throws -> Int {
        try copyIn(sql, chunks: CopyBinaryChunks(rows: rows, write: write), binary: true)
    }

    /// Sends `chunks` of COPY text (64 KiB or so each) and ends the COPY; a NUL anywhere in text aborts it.
    private func copyIn<C: Collection<UInt8>>(_ sql: SQL, chunks: some Sequence<C>, binary: Bool = false) throws -> Int {
        let conn = try handle()
        let start = try query(sql)
        guard PQresultStatus(start.handle) == PGRES_COPY_IN else {
            throw PostgresError(kind: .server, serverMessage: "statement is not COPY FROM STDIN")
        }
        var copyError: Error?
        for chunk in chunks {
            let status: Int32? = chunk.withContiguousStorageIfAvailable { b in
                if !binary, memchr(b.baseAddress!, 0, b.count) != nil { return -2 }
                return b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { PQputCopyData(conn, $0, Int32(b.count)) }
            }
            if status == -2 || status == nil {
                copyError = PostgresError(kind: .encoding, serverMessage: "text contains a NUL character")
                break
            }
            guard status == 1 else { throw PostgresError(kind: .connection, serverMessage: lastErrorMessage) }
        }
        let endStatus: Int32 = copyError == nil ? PQputCopyEnd(conn, nil) : PQputCopyEnd(conn, "aborted by client")
        guard endStatus == 1 else { throw PostgresError(kind: .connection, serverMessage: lastErrorMessage) }
        var copied = 0
        var serverError: Error?
        while let result = PQgetResult(conn) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                copied = Int(String(cString: PQcmdTuples(result))) ?? 0
                PQclear(result)
            } else {
                serverError = errorFrom(result)
                PQclear(result)
            }
        }
        if let copyError { throw copyError }
        if let serverError { throw serverError }
        return copied
    }

    /// `copyIn` for COPY text already assembled: lines ending in a newline, fields escaped (`CopyText`).
    @discardableResult
    public func copyIn(_ sql: SQL, text: [UInt8]) throws -> Int {
        let chunk = 1 << 16
        return try copyIn(sql, chunks: stride(from: 0, to: text.count, by: chunk).lazy.map { text[$0..<min(text.count, $0 + chunk)] })
    }

    /// Starts listening on `channel` (a plain identifier).
    public func listen(_ channel: String) throws {
        guard PostgresConfiguration.isPlainIdentifier(channel) else {
            throw PostgresError(kind: .encoding, serverMessage: "invalid channel name")
        }
        try execute(unsafe: "LISTEN \(channel)")
    }

    /// Waits up to `timeout` seconds for notifications and returns those received (possibly none).
    /// Throws a connection error when the connection is lost.
    public func waitForNotifications(timeout: Double) throws -> [Notification] {
        let conn = try handle()
        var out = drainNotifications(conn)
        if !out.isEmpty { return out }
        let socket = PQsocket(conn)
        guard socket >= 0 else { throw PostgresError(kind: .connection, serverMessage: "no socket") }
        var fds = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let rc = poll(&fds, 1, Int32(max(0, timeout * 1000)))
        if rc < 0 && errno != EINTR {
            throw PostgresError(kind: .connection, serverMessage: "poll failed")
        }
        if rc > 0 {
            guard PQconsumeInput(conn) == 1 else {
                throw PostgresError(kind: .connection, serverMessage: lastErrorMessage)
            }
            out = drainNotifications(conn)
        }
        if !isUsable { throw PostgresError(kind: .connection, serverMessage: lastErrorMessage) }
        return out
    }

    private func drainNotifications(_ conn: OpaquePointer) -> [Notification] {
        var out: [Notification] = []
        while let n = PQnotifies(conn) {
            out.append(Notification(channel: String(cString: n.pointee.relname),
                                    payload: String(cString: n.pointee.extra)))
            PQfreemem(n)
        }
        return out
    }

    /// Escapes an identifier with libpq's own rules (for configuration values such as a schema name;
    /// never for request input).
    public func quoteIdentifier(_ identifier: String) throws -> String {
        let conn = try handle()
        guard let p = PQescapeIdentifier(conn, identifier, identifier.utf8.count) else {
            throw PostgresError(kind: .encoding, serverMessage: "invalid identifier")
        }
        defer { PQfreemem(p) }
        return String(cString: p)
    }
}

/// COPY rows as 64 KiB chunks of lines.
private struct CopyLines<Rows: Sequence>: Sequence {
    let rows: Rows
    let write: (Rows.Element, inout [UInt8]) -> Void
    func makeIterator() -> AnyIterator<[UInt8]> {
        var it = rows.makeIterator()
        var done = false
        return AnyIterator {
            guard !done else { return nil }
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 16 + 1024)
            while buffer.count < 1 << 16 {
                guard let row = it.next() else { done = true; break }
                write(row, &buffer)
                buffer.append(10)
            }
            return buffer.isEmpty ? nil : buffer
        }
    }
}

/// A binary COPY's chunks: the header, the rows (about 64 KiB a chunk), the trailer.
private struct CopyBinaryChunks<Rows: Sequence>: Sequence {
    let rows: Rows
    let write: (Rows.Element, inout [UInt8]) -> Void
    func makeIterator() -> AnyIterator<[UInt8]> {
        var it = rows.makeIterator()
        var state = 0  // 0: header not sent, 1: rows, 2: done
        return AnyIterator {
            guard state < 2 else { return nil }
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 16 + 1024)
            if state == 0 {
                buffer.append(contentsOf: CopyBinary.header)
                state = 1
            }
            while buffer.count < 1 << 16 {
                guard let row = it.next() else {
                    buffer.append(0xff); buffer.append(0xff)  // the trailer: a field count of -1
                    state = 2
                    break
                }
                write(row, &buffer)
            }
            return buffer
        }
    }
}

/// COPY's binary format (PostgreSQL's "Binary Format" of COPY): each row an int16 field count, each field an int32
/// byte length (-1 for NULL) and the type's binary representation, all big-endian.
public enum CopyBinary {
    /// The signature, the flags (none) and the header extension's length (none).
    static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xff, 0x0d, 0x0a, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]
    /// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
    static let postgresEpochMicros: Int64 = 946_684_800_000_000

    public static func appendFieldCount(_ count: Int, to out: inout [UInt8]) { appendBigEndian(Int16(count), to: &out) }
    public static func appendNull(to out: inout [UInt8]) { appendBigEndian(Int32(-1), to: &out) }

    /// A `text` field: its UTF-8 bytes.
    public static func append(_ value: String, to out: inout [UInt8]) {
        let done: Void? = value.utf8.withContiguousStorageIfAvailable { bytes in
            appendBigEndian(Int32(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
        if done == nil {
            let bytes = Array(value.utf8)
            appendBigEndian(Int32(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
    }

    /// A `bigint` field.
    public static func append(_ value: Int64, to out: inout [UInt8]) {
        appendBigEndian(Int32(8), to: &out)
        appendBigEndian(value, to: &out)
    }

    /// A `boolean` field.
    public static func append(_ value: Bool, to out: inout [UInt8]) {
        appendBigEndian(Int32(1), to: &out)
        out.append(value ? 1 : 0)
    }

    /// A `timestamptz` field: microseconds since 2000-01-01, rounded as `Timestamp.format` rounds them. A time
    /// beyond PostgreSQL's range is sent as one the server refuses (as it refuses the text of one), never as
    /// `infinity`.
    public static func append(_ value: Date, to out: inout [UInt8]) {
        appendBigEndian(Int32(8), to: &out)
        appendBigEndian(Timestamp.micros(value).map { $0 &- postgresEpochMicros } ?? (Int64.max - 1), to: &out)
    }

    static func appendBigEndian<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }
}

/// Escaping for `COPY ... FROM STDIN` text format.
public enum CopyText {
    /// Escapes backslash, tab, newline and carriage return; `nil` is `\N` (NULL).
    public static func escape(_ value: String?) -> String {
        guard let value else { return "\\N" }
        if !value.utf8.contains(where: needsEscape) { return value }
        var out: [UInt8] = []
        append(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `escape(text)`'s bytes appended to `out`.
    public static func append(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            if !bytes.contains(where: needsEscape) {
                out.append(contentsOf: bytes)
                return
            }
            for b in bytes {
                switch b {
                case 0x5c: out.append(0x5c); out.append(0x5c)
                case 0x09: out.append(0x5c); out.append(0x74)
                case 0x0a: out.append(0x5c); out.append(0x6e)
                case 0x0d: out.append(0x5c); out.append(0x72)
                default: out.append(b)
                }
            }
        }
    }

    /// An integer's decimal digits appended to `out`.
    public static func append(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(0x2d) }
        var v = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[19 - n] = UInt8(0x30 + v % 10); v /= 10; n += 1 } while v > 0
            out.append(contentsOf: d[(20 - n)...])
        }
    }

    private static func needsEscape(_ b: UInt8) -> Bool { b == 0x5c || b == 0x09 || b == 0x0a || b == 0x0d }
}

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let duplicated: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    defer { duplicated.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = duplicated.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// The strings as C strings (nil stays a null pointer, SQL NULL); no strings is a null array.
private func withOptionalCStringArray<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let duplicated: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
    defer { duplicated.forEach { free($0) } }
    let pointers: [UnsafePointer<CChar>?] = duplicated.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body(pointers.isEmpty ? nil : $0.baseAddress) }
}

import CLibPQ
import Foundation

/// A Swift type decoded from a PostgreSQL text-format value.
public protocol PostgresDecodable {
    /// Decodes the value's text bytes; throws `PostgresError(kind: .decoding)` on a mismatch.
    init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws
}

@inline(__always)
func decodingError(_ type: Any.Type) -> PostgresError {
    PostgresError(kind: .decoding, serverMessage: "cannot decode \(type)")
}

extension String: PostgresDecodable {
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        self = String(decoding: bytes, as: UTF8.self)
    }
}

extension Int64: PostgresDecodable {
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        var value: Int64 = 0
        var negative = false
        var i = 0
        if bytes.count > 0, bytes[0] == UInt8(ascii: "-") { negative = true; i = 1 }
        guard i < bytes.count else { throw decodingError(Int64.self) }
        while i < bytes.count {
            let c = bytes[i]
            guard c >= 48, c <= 57 else { throw decodingError(Int64.self) }
            // Accumulated towards the sign, so Int64.min (whose magnitude no Int64 holds) decodes too.
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = negative ? m.subtractingReportingOverflow(Int64(c - 48)) : m.addingReportingOverflow(Int64(c - 48))
            guard !o1, !o2 else { throw decodingError(Int64.self) }
            value = a
            i += 1
        }
        self = value
    }
}

extension Int: PostgresDecodable {
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        self = Int(try Int64(postgresBytes: bytes))
    }
}

extension Int32: PostgresDecodable {
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        guard let v = Int32(exactly: try Int64(postgresBytes: bytes)) else { throw decodingError(Int32.self) }
        self = v
    }
}

extension Bool: PostgresDecodable {
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        guard bytes.count == 1 else { throw decodingError(Bool.self) }
        switch bytes[0] {
        case UInt8(ascii: "t"): self = true
        case UInt8(ascii: "f"): self = false
        default: throw decodingError(Bool.self)
        }
    }
}

extension Double: PostgresDecodable {
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        guard let v = Double(String(decoding: bytes, as: UTF8.self)) else { throw decodingError(Double.self) }
        self = v
    }
}

extension UUID: PostgresDecodable {
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        guard let v = UUID.parse(bytes: bytes) else { throw decodingError(UUID.self) }
        self = v
    }
}

extension Date: PostgresDecodable {
    /// Decodes `timestamptz` in ISO output style (the client sets `DateStyle=ISO` and `TimeZone=UTC`).
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        guard let v = Timestamp.parse(bytes: bytes) else { throw decodingError(Date.self) }
        self = v
    }
}

extension JSONText: PostgresDecodable {
    public init(postgresBytes bytes: UnsafeBufferPointer<UInt8>) throws {
        self.init(String(decoding: bytes, as: UTF8.self))
    }
}

/// `bytea` in hex output format (`\x0a1b...`).
public struct ByteA: PostgresDecodable, Sendable, Hashable {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(postgresBytes b: UnsafeBufferPointer<UInt8>) throws {
        guard b.count >= 2, b[0] == UInt8(ascii: "\\"), b[1] == UInt8(ascii: "x"), let decoded = Hex.bytes(b.dropFirst(2)) else {
            throw decodingError(ByteA.self)
        }
        bytes = decoded
    }

    /// Lower-case hexadecimal.
    public var hex: String { Hex.string(bytes) }
}

/// The rows of one statement's result. Values are decoded on access, straight from libpq's buffer.
public final class PostgresResult: @unchecked Sendable {
    // Immutable after creation; libpq's read accessors are safe from any thread.
    let handle: OpaquePointer
    /// Number of rows.
    public let count: Int
    /// Number of columns.
    public let columnCount: Int

    init(handle: OpaquePointer) {
        self.handle = handle
        self.count = Int(PQntuples(handle))
        self.columnCount = Int(PQnfields(handle))
    }

    deinit { PQclear(handle) }

    /// Rows changed by an INSERT, UPDATE or DELETE.
    public var affectedRows: Int {
        Int(String(cString: PQcmdTuples(handle))) ?? 0
    }

    public var columnNames: [String] {
        (0..<columnCount).map { String(cString: PQfname(handle, Int32($0))) }
    }

    /// Each column's PostgreSQL type OID (20 bigint, 23 int, 701 float8, 16 bool, 1700 numeric, ...).
    public var columnTypes: [UInt32] {
        (0..<columnCount).map { UInt32(PQftype(handle, Int32($0))) }
    }

    public func columnIndex(_ name: String) -> Int? {
        let i = PQfnumber(handle, name)
        return i < 0 ? nil : Int(i)
    }

    public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(handle, Int32(row), Int32(column)) == 1
    }

    /// Decodes one value; NULL throws.
    public func decode<T: PostgresDecodable>(_ row: Int, _ column: Int, as type: T.Type = T.self) throws -> T {
        guard row < count, column < columnCount, !isNull(row, column) else { throw decodingError(T.self) }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let pointer = PQgetvalue(handle, Int32(row), Int32(column))!
        return try pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            try T(postgresBytes: UnsafeBufferPointer(start: $0, count: length))
        }
    }

    /// Decodes one value; NULL is `nil`.
    public func decodeOptional<T: PostgresDecodable>(_ row: Int, _ column: Int, as type: T.Type = T.self) throws -> T? {
        if isNull(row, column) { return nil }
        return try decode(row, column, as: T.self)
    }

    /// The rows, for `for row in result.rows`.
    public var rows: [Row] { (0..<count).map { Row(result: self, index: $0) } }

    /// The first row, if any.
    public var first: Row? { count > 0 ? Row(result: self, index: 0) : nil }

    public struct Row: Sendable {
        public let result: PostgresResult
        public let index: Int

        public func decode<T: PostgresDecodable>(_ column: Int, as type: T.Type = T.self) throws -> T {
            try result.decode(index, column, as: T.self)
        }
        public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
            guard let i = result.columnIndex(column) else { throw decodingError(T.self) }
            return try result.decode(index, i, as: T.self)
        }
        public func decodeOptional<T: PostgresDecodable>(_ column: Int, as type: T.Type = T.self) throws -> T? {
            try result.decodeOptional(index, column, as: T.self)
        }
        public func isNull(_ column: Int) -> Bool { result.isNull(index, column) }
        public func decodeOptional<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T? {
            guard let i = result.columnIndex(column) else { throw decodingError(T.self) }
            return try result.decodeOptional(index, i, as: T.self)
        }
    }
}

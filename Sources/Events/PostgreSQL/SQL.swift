import Foundation

/// A parameterised SQL statement.
///
/// Built by string interpolation: every interpolated value becomes a `$n` bind parameter and is
/// sent to PostgreSQL separately from the query text, so no value can change the statement.
/// A runtime `String` does not convert to `SQL`; raw text needs the deliberately loud
/// `SQL(unsafe:)`, meant for constant statements such as migrations.
///
///     let sql: SQL = "SELECT * FROM events WHERE stream = \(stream) AND version > \(version)"
public struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement text with `$1`, `$2`, ... placeholders.
    public private(set) var text: String
    /// The bind values, in placeholder order; `nil` is SQL NULL.
    public private(set) var binds: [String?]

    /// Raw SQL text, sent as is. Never pass text derived from input.
    public init(unsafe text: String) {
        self.text = text
        self.binds = []
    }

    public init(stringLiteral value: StaticString) {
        self.text = value.description
        self.binds = []
    }

    public init(stringInterpolation: Interpolation) {
        self.text = stringInterpolation.text
        self.binds = stringInterpolation.binds
    }

    /// The statement text only: bind values are never part of a description (they may hold personal data).
    public var description: String { text }

    public struct Interpolation: StringInterpolationProtocol, Sendable {
        public typealias StringLiteralType = StaticString
        var text = ""
        var binds: [String?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: StaticString) {
            text += literal.description
        }

        /// Appends a bind parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresText)
            text += "$\(binds.count)"
        }

        /// Appends a bind parameter, or NULL for `nil`.
        public mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
            binds.append(value?.postgresText)
            text += "$\(binds.count)"
        }

        /// Appends a nested statement, renumbering its placeholders.
        public mutating func appendInterpolation(_ fragment: SQL) {
            let offset = binds.count
            binds.append(contentsOf: fragment.binds)
            if offset == 0 || fragment.binds.isEmpty {
                text += fragment.text
            } else {
                text += SQL.renumber(fragment.text, by: offset)
            }
        }
    }

    /// Concatenates two statements (for optional clauses), keeping every value a bind.
    public static func + (lhs: SQL, rhs: SQL) -> SQL {
        var result = lhs
        let offset = lhs.binds.count
        result.binds.append(contentsOf: rhs.binds)
        result.text += offset == 0 ? rhs.text : renumber(rhs.text, by: offset)
        return result
    }

    /// Shifts `$n` placeholders by `offset`. Placeholders inside string literals are not expected:
    /// fragments built by interpolation never put them there.
    static func renumber(_ text: String, by offset: Int) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        var chars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = chars.next()
        while let c = pending {
            pending = chars.next()
            guard c == "$", let first = pending, ("0"..."9").contains(first) else {
                out.unicodeScalars.append(c)
                continue
            }
            var digits = ""
            while let d = pending, ("0"..."9").contains(d) {
                digits.unicodeScalars.append(d)
                pending = chars.next()
            }
            out += "$\(Int(digits)! + offset)"
        }
        return out
    }
}

/// A Swift value that can be sent to PostgreSQL as a text-format bind parameter.
public protocol PostgresEncodable: Sendable {
    /// The value's PostgreSQL text representation.
    var postgresText: String { get }
}

extension String: PostgresEncodable {
    public var postgresText: String { self }
}

extension Substring: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension Int: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension Int64: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension Int32: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension Bool: PostgresEncodable {
    public var postgresText: String { self ? "t" : "f" }
}

extension Double: PostgresEncodable {
    public var postgresText: String { String(self) }
}

extension UUID: PostgresEncodable {
    public var postgresText: String { lowercasedString }
}

extension Date: PostgresEncodable {
    /// RFC 3339 in UTC with microseconds, PostgreSQL's own precision.
    public var postgresText: String { Timestamp.format(self) }
}

/// A JSON document sent as `jsonb`/`json` text.
public struct JSONText: PostgresEncodable, Hashable, CustomStringConvertible {
    public let text: String
    /// Set for text this module's encoders wrote (`CanonicalJSON`, `JSONWriter.encode`): well-formed by
    /// construction, so the event store checks only its shape instead of parsing it again. Not part of
    /// equality.
    public let isEncoded: Bool
    public init(_ text: String) { self.text = text; isEncoded = false }
    /// Wraps the output of `CanonicalJSON.encode` or `JSONWriter.encode`, and nothing else.
    public init(encoded text: String) { self.text = text; isEncoded = true }
    public var postgresText: String { text }
    public var description: String { text }
    public static func == (a: JSONText, b: JSONText) -> Bool { a.text == b.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
}

extension Array: PostgresEncodable where Element: PostgresEncodable {
    /// A PostgreSQL array literal; every element is quoted and escaped.
    public var postgresText: String {
        var literal = PostgresArrayLiteral(capacity: count * 16)
        for element in self { literal.append(element.postgresText) }
        return literal.postgresText
    }
}

/// A PostgreSQL array literal built element by element, sent as one text bind parameter: each element is quoted
/// and its `"` and `\` escaped, so no element can end the literal or the statement; `appendNull` adds SQL NULL.
public struct PostgresArrayLiteral: PostgresEncodable {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]
    private var empty = true

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity + 2) }

    public mutating func append(_ text: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        for b in text.utf8 {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
            bytes.append(b)
        }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func append(_ value: some BinaryInteger) {
        separate()
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func appendNull() {
        separate()
        bytes.append(contentsOf: "NULL".utf8)
    }

    private mutating func separate() {
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
    }

    public var postgresText: String { String(decoding: bytes + [UInt8(ascii: "}")], as: UTF8.self) }
}

import Foundation

/// Decodes `Decodable` values from JSON the way `JSONWriter.makeDecoder()` does (snake_case keys, RFC 3339
/// dates), for the common case only, several times faster than Foundation's decoder. It refuses (throws)
/// anything it is not sure about: numbers that are not plain integers where an integer is wanted, any type
/// mismatch or missing key. Callers then decode again with Foundation's decoder, whose answer (value or
/// error message) is the reference; so this decoder changes speed, never results.
public enum FastJSONDecoder {
    struct Refused: Error {}

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try decode(T.self, from: try JSONValue.parse(data))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        if T.self == Date.self {
            guard case .string(let text) = value, let date = Timestamp.parse(text) else { throw Refused() }
            return date as! T
        }
        return try T(from: Containers.Decoding(value: value))
    }

    typealias Value = JSONValue

    /// The Decoder and its containers over a parsed `JSONValue`.
    enum Containers {
        /// Foundation's `convertFromSnakeCase`: `lead_org` -> `leadOrg`; leading and trailing underscores kept.
        static func camelCase(_ key: String) -> String {
            guard key.utf8.contains(UInt8(ascii: "_")) else { return key }
            return camelCache.value(key, convert)
        }

        private static let camelCache = StringMemo()

        private static func convert(_ key: String) -> String {
            let chars = Array(key)
            guard let first = chars.firstIndex(where: { $0 != "_" }) else { return key }
            let last = chars.lastIndex(where: { $0 != "_" })!
            let words = String(chars[first...last]).split(separator: "_")
            var out = String(chars[..<first]) + (words.first.map(String.init) ?? "")
            for word in words.dropFirst() { out += word.prefix(1).uppercased() + word.dropFirst().lowercased() }
            return out + String(chars[(last + 1)...])
        }

        struct Decoding: Decoder {
            let value: Value
            var codingPath: [any CodingKey] { [] }
            var userInfo: [CodingUserInfoKey: Any] { [:] }

            func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
                guard case .object(let fields) = value else { throw Refused() }
                return KeyedDecodingContainer(Keyed<Key>(fields: fields.map { (Containers.camelCase($0.0), $0.1) }))
            }
            func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
                guard case .array(let items) = value else { throw Refused() }
                return Unkeyed(items: items)
            }
            func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(value: value) }
        }

        static func int<T: FixedWidthInteger>(_ value: Value) throws -> T {
            guard case .number(let text) = value, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }),
                  let n = T(text) else { throw Refused() }
            return n
        }
        static func double(_ value: Value) throws -> Double {
            guard case .number(let text) = value, let d = Double(text), d.isFinite else { throw Refused() }
            return d
        }
        static func string(_ value: Value) throws -> String {
            guard case .string(let s) = value else { throw Refused() }
            return s
        }
        static func bool(_ value: Value) throws -> Bool {
            guard case .bool(let b) = value else { throw Refused() }
            return b
        }

        struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
            let fields: [(String, Value)]
            var codingPath: [any CodingKey] { [] }
            var allKeys: [Key] { fields.compactMap { Key(stringValue: $0.0) } }

            func find(_ key: Key) throws -> Value {
                guard let v = fields.first(where: { $0.0 == key.stringValue })?.1 else { throw Refused() }
                return v
            }
            func contains(_ key: Key) -> Bool { fields.contains { $0.0 == key.stringValue } }
            func decodeNil(forKey key: Key) throws -> Bool {
                if case .null = try find(key) { return true }
                return false
            }
            func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Containers.bool(find(key)) }
            func decode(_ type: String.Type, forKey key: Key) throws -> String { try Containers.string(find(key)) }
            func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Containers.double(find(key)) }
            func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw Refused() }
            func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Containers.int(find(key)) }
            func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try Containers.int(find(key)) }
            func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try Containers.int(find(key)) }
            func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try Containers.int(find(key)) }
            func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Containers.int(find(key)) }
            func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try Containers.int(find(key)) }
            func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try Containers.int(find(key)) }
            func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try Containers.int(find(key)) }
            func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try Containers.int(find(key)) }
            func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try Containers.int(find(key)) }
            func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
                try FastJSONDecoder.decode(T.self, from: find(key))
            }
            func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
                try Decoding(value: find(key)).container(keyedBy: type)
            }
            func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
                try Decoding(value: find(key)).unkeyedContainer()
            }
            func superDecoder() throws -> any Decoder { throw Refused() }
            func superDecoder(forKey key: Key) throws -> any Decoder { throw Refused() }
        }

        struct Unkeyed: UnkeyedDecodingContainer {
            let items: [Value]
            var currentIndex = 0
            var codingPath: [any CodingKey] { [] }
            var count: Int? { items.count }
            var isAtEnd: Bool { currentIndex >= items.count }

            mutating func next() throws -> Value {
                guard currentIndex < items.count else { throw Refused() }
                defer { currentIndex += 1 }
                return items[currentIndex]
            }
            mutating func decodeNil() throws -> Bool {
                guard currentIndex < items.count else { throw Refused() }
                if case .null = items[currentIndex] { currentIndex += 1; return true }
                return false
            }
            mutating func decode(_ type: Bool.Type) throws -> Bool { try Containers.bool(next()) }
            mutating func decode(_ type: String.Type) throws -> String { try Containers.string(next()) }
            mutating func decode(_ type: Double.Type) throws -> Double { try Containers.double(next()) }
            mutating func decode(_ type: Float.Type) throws -> Float { throw Refused() }
            mutating func decode(_ type: Int.Type) throws -> Int { try Containers.int(next()) }
            mutating func decode(_ type: Int8.Type) throws -> Int8 { try Containers.int(next()) }
            mutating func decode(_ type: Int16.Type) throws -> Int16 { try Containers.int(next()) }
            mutating func decode(_ type: Int32.Type) throws -> Int32 { try Containers.int(next()) }
            mutating func decode(_ type: Int64.Type) throws -> Int64 { try Containers.int(next()) }
            mutating func decode(_ type: UInt.Type) throws -> UInt { try Containers.int(next()) }
            mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try Containers.int(next()) }
            mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try Containers.int(next()) }
            mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try Containers.int(next()) }
            mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try Containers.int(next()) }
            mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try FastJSONDecoder.decode(T.self, from: next()) }
            mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
                try Decoding(value: next()).container(keyedBy: type)
            }
            mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try Decoding(value: next()).unkeyedContainer() }
            mutating func superDecoder() throws -> any Decoder { throw Refused() }
        }

        struct Single: SingleValueDecodingContainer {
            let value: Value
            var codingPath: [any CodingKey] { [] }
            func decodeNil() -> Bool { if case .null = value { return true } else { return false } }
            func decode(_ type: Bool.Type) throws -> Bool { try Containers.bool(value) }
            func decode(_ type: String.Type) throws -> String { try Containers.string(value) }
            func decode(_ type: Double.Type) throws -> Double { try Containers.double(value) }
            func decode(_ type: Float.Type) throws -> Float { throw Refused() }
            func decode(_ type: Int.Type) throws -> Int { try Containers.int(value) }
            func decode(_ type: Int8.Type) throws -> Int8 { try Containers.int(value) }
            func decode(_ type: Int16.Type) throws -> Int16 { try Containers.int(value) }
            func decode(_ type: Int32.Type) throws -> Int32 { try Containers.int(value) }
            func decode(_ type: Int64.Type) throws -> Int64 { try Containers.int(value) }
            func decode(_ type: UInt.Type) throws -> UInt { try Containers.int(value) }
            func decode(_ type: UInt8.Type) throws -> UInt8 { try Containers.int(value) }
            func decode(_ type: UInt16.Type) throws -> UInt16 { try Containers.int(value) }
            func decode(_ type: UInt32.Type) throws -> UInt32 { try Containers.int(value) }
            func decode(_ type: UInt64.Type) throws -> UInt64 { try Containers.int(value) }
            func decode<T: Decodable>(_ type: T.Type) throws -> T { try FastJSONDecoder.decode(T.self, from: value) }
        }
    }
}

/// An object's fields, read by name for a type that decodes itself from them without the `Decoder` machinery (the
/// containers, boxes and generic calls of `Decodable` were most of a rebuild's decoding). Each accessor answers
/// nil where `FastJSONDecoder` would refuse, so a caller that gives up on nil and falls back to `Decodable` accepts
/// and refuses exactly what `Decodable` does. Keys are the JSON's own (snake_case).
public struct JSONFields {
    let fields: [(String, JSONValue)]

    /// Nil for anything but an object.
    public init?(_ value: JSONValue) {
        guard case .object(let fields) = value else { return nil }
        self.fields = fields
    }

    func find(_ key: String) -> JSONValue? {
        for field in fields where field.0 == key { return field.1 }
        return nil
    }

    /// A required string: nil when absent, null or not a string.
    public func string(_ key: String) -> String? {
        if case .string(let s)? = find(key) { return s }
        return nil
    }

    /// A required integer: nil when absent or not an integer that fits.
    public func int64(_ key: String) -> Int64? {
        guard let value = find(key) else { return nil }
        return try? FastJSONDecoder.Containers.int(value)
    }

    /// An optional string: `.some(nil)` when absent or null, nil when it holds anything but a string.
    public func optionalString(_ key: String) -> String?? {
        switch find(key) {
        case nil, .null?: return .some(nil)
        case .string(let s)?: return .some(s)
        default: return nil
        }
    }

    /// Whether the field is absent or null.
    public func isAbsent(_ key: String) -> Bool {
        switch find(key) {
        case nil, .null?: return true
        default: return false
        }
    }
}

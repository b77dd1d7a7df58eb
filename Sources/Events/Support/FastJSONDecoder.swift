import Foundation
import Synchronization

/// Decodes `Decodable` values from JSON the way `JSONWriter.makeDecoder()` does (snake_case keys, RFC 3339
/// dates), for the common case only, several times faster than Foundation's decoder. It refuses (throws)
/// anything it is not sure about: escapes it does not handle, numbers that are not plain, duplicate keys,
/// any type mismatch. Callers then decode again with Foundation's decoder, whose answer (value or error
/// message) is the reference; so this decoder changes speed, never results.
public enum FastJSONDecoder {
    struct Refused: Error {}

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        var reader = Reader(bytes: bytes.bindMemory(to: UInt8.self))
        let value = try reader.document()
        return try decodeValue(T.self, value)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try data.withUnsafeBytes { try decode(T.self, from: $0) }
    }

    static func decodeValue<T: Decodable>(_ type: T.Type, _ value: Value) throws -> T {
        if T.self == Date.self {
            guard case .string(let text) = value, let date = Timestamp.parse(text) else { throw Refused() }
            return date as! T
        }
        return try T(from: Reader.Decoding(value: value))
    }

    /// A parsed JSON value. Numbers keep their text; objects keep their order.
    enum Value {
        case null, bool(Bool), number(Substring), string(String), array([Value]), object([(String, Value)])
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func document() throws -> Value {
            let v = try value(depth: 0)
            skipSpace()
            guard i == bytes.count else { throw Refused() }
            return v
        }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
        }

        mutating func value(depth: Int) throws -> Value {
            guard depth < 32 else { throw Refused() }
            skipSpace()
            guard i < bytes.count else { throw Refused() }
            switch bytes[i] {
            case 0x7b:  // {
                i += 1
                var fields: [(String, Value)] = []
                skipSpace()
                if i < bytes.count, bytes[i] == 0x7d { i += 1; return .object(fields) }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == 0x3a else { throw Refused() }
                    i += 1
                    if fields.contains(where: { $0.0 == key }) { throw Refused() }
                    fields.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < bytes.count else { throw Refused() }
                    if bytes[i] == 0x2c { i += 1; continue }
                    guard bytes[i] == 0x7d else { throw Refused() }
                    i += 1
                    return .object(fields)
                }
            case 0x5b:  // [
                i += 1
                var items: [Value] = []
                skipSpace()
                if i < bytes.count, bytes[i] == 0x5d { i += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw Refused() }
                    if bytes[i] == 0x2c { i += 1; continue }
                    guard bytes[i] == 0x5d else { throw Refused() }
                    i += 1
                    return .array(items)
                }
            case 0x22: return .string(try string())
            case 0x74: try literal("true"); return .bool(true)
            case 0x66: try literal("false"); return .bool(false)
            case 0x6e: try literal("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func literal(_ word: StaticString) throws {
            let n = word.utf8CodeUnitCount
            guard i + n <= bytes.count else { throw Refused() }
            for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw Refused() }
            i += n
        }

        /// A string without escapes or control characters (anything else is refused).
        mutating func string() throws -> String {
            guard i < bytes.count, bytes[i] == 0x22 else { throw Refused() }
            let start = i + 1
            var j = start
            while j < bytes.count, bytes[j] != 0x22 {
                if bytes[j] == 0x5c || bytes[j] < 0x20 { throw Refused() }
                j += 1
            }
            guard j < bytes.count else { throw Refused() }
            i = j + 1
            guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<j]), as: UTF8.self) else { throw Refused() }
            return s
        }

        /// A number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        mutating func number() throws -> Substring {
            let start = i
            func digits() -> Int {
                let s = i
                while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
                return i - s
            }
            if i < bytes.count, bytes[i] == 0x2d { i += 1 }
            guard i < bytes.count else { throw Refused() }
            if bytes[i] == 0x30 { i += 1 } else if digits() == 0 { throw Refused() }
            if i < bytes.count, bytes[i] == 0x2e { i += 1; guard digits() > 0 else { throw Refused() } }
            if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
                i += 1
                if i < bytes.count, bytes[i] == 0x2b || bytes[i] == 0x2d { i += 1 }
                guard digits() > 0 else { throw Refused() }
            }
            return Substring(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        }

        /// Foundation's `convertFromSnakeCase`: `lead_org` -> `leadOrg`; leading and trailing underscores kept.
        static func camelCase(_ key: String) -> String {
            guard key.utf8.contains(UInt8(ascii: "_")) else { return key }
            if let cached = camelCache.withLock({ $0[key] }) { return cached }
            let converted = convert(key)
            camelCache.withLock { cache in
                if cache.count < 10_000 { cache[key] = converted }
            }
            return converted
        }

        private static let camelCache = Mutex<[String: String]>([:])

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
                return KeyedDecodingContainer(Keyed<Key>(fields: fields.map { (Reader.camelCase($0.0), $0.1) }))
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
            func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Reader.bool(find(key)) }
            func decode(_ type: String.Type, forKey key: Key) throws -> String { try Reader.string(find(key)) }
            func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Reader.double(find(key)) }
            func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw Refused() }
            func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Reader.int(find(key)) }
            func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try Reader.int(find(key)) }
            func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try Reader.int(find(key)) }
            func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try Reader.int(find(key)) }
            func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Reader.int(find(key)) }
            func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try Reader.int(find(key)) }
            func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try Reader.int(find(key)) }
            func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try Reader.int(find(key)) }
            func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try Reader.int(find(key)) }
            func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try Reader.int(find(key)) }
            func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
                try FastJSONDecoder.decodeValue(T.self, find(key))
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
            mutating func decode(_ type: Bool.Type) throws -> Bool { try Reader.bool(next()) }
            mutating func decode(_ type: String.Type) throws -> String { try Reader.string(next()) }
            mutating func decode(_ type: Double.Type) throws -> Double { try Reader.double(next()) }
            mutating func decode(_ type: Float.Type) throws -> Float { throw Refused() }
            mutating func decode(_ type: Int.Type) throws -> Int { try Reader.int(next()) }
            mutating func decode(_ type: Int8.Type) throws -> Int8 { try Reader.int(next()) }
            mutating func decode(_ type: Int16.Type) throws -> Int16 { try Reader.int(next()) }
            mutating func decode(_ type: Int32.Type) throws -> Int32 { try Reader.int(next()) }
            mutating func decode(_ type: Int64.Type) throws -> Int64 { try Reader.int(next()) }
            mutating func decode(_ type: UInt.Type) throws -> UInt { try Reader.int(next()) }
            mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try Reader.int(next()) }
            mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try Reader.int(next()) }
            mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try Reader.int(next()) }
            mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try Reader.int(next()) }
            mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try FastJSONDecoder.decodeValue(T.self, next()) }
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
            func decode(_ type: Bool.Type) throws -> Bool { try Reader.bool(value) }
            func decode(_ type: String.Type) throws -> String { try Reader.string(value) }
            func decode(_ type: Double.Type) throws -> Double { try Reader.double(value) }
            func decode(_ type: Float.Type) throws -> Float { throw Refused() }
            func decode(_ type: Int.Type) throws -> Int { try Reader.int(value) }
            func decode(_ type: Int8.Type) throws -> Int8 { try Reader.int(value) }
            func decode(_ type: Int16.Type) throws -> Int16 { try Reader.int(value) }
            func decode(_ type: Int32.Type) throws -> Int32 { try Reader.int(value) }
            func decode(_ type: Int64.Type) throws -> Int64 { try Reader.int(value) }
            func decode(_ type: UInt.Type) throws -> UInt { try Reader.int(value) }
            func decode(_ type: UInt8.Type) throws -> UInt8 { try Reader.int(value) }
            func decode(_ type: UInt16.Type) throws -> UInt16 { try Reader.int(value) }
            func decode(_ type: UInt32.Type) throws -> UInt32 { try Reader.int(value) }
            func decode(_ type: UInt64.Type) throws -> UInt64 { try Reader.int(value) }
            func decode<T: Decodable>(_ type: T.Type) throws -> T { try FastJSONDecoder.decodeValue(T.self, value) }
        }
    }
}

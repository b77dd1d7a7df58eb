import Foundation
import Synchronization

/// A parsed JSON document, for request bodies and import lines: read once, then its top-level keys checked,
/// path parameters merged in, and the command decoded from it (`FastJSONDecoder`) without parsing again.
/// Objects keep their order; numbers keep their text. A repeated key is refused: which of two values a
/// client meant is not ours to guess (RFC 8259 §4 leaves it open), and one object with thousands of keys
/// is checked in linear time.
public enum JSONValue: Sendable {
    case null, bool(Bool), number(String), string(String), array([JSONValue]), object([(String, JSONValue)])

    /// The text is not one JSON value (RFC 8259), nests deeper than 512, or repeats a key in an object.
    public struct Invalid: Error, CustomStringConvertible {
        /// Safe to show: names at most a key (cut to 64 characters), never a value.
        public let reason: String
        init(_ reason: String = "malformed JSON") { self.reason = reason }
        public var description: String { reason }
    }

    public static func parse(_ data: Data) throws -> JSONValue {
        try data.withUnsafeBytes { raw in
            var parser = Parser(bytes: raw.bindMemory(to: UInt8.self))
            let value = try parser.value(depth: 0)
            parser.skipSpace()
            guard parser.i == parser.bytes.count else { throw Invalid() }
            return value
        }
    }

    /// `parse` over a string's bytes, without copying them into a `Data` first.
    public static func parse(_ text: String) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { bytes in
            var parser = Parser(bytes: bytes)
            let value = try parser.value(depth: 0)
            parser.skipSpace()
            guard parser.i == parser.bytes.count else { throw Invalid() }
            return value
        }
    }

    /// An object's keys, in order; nil for anything else.
    public var keys: [String]? {
        if case .object(let fields) = self { return fields.map(\.0) }
        return nil
    }

    /// An object's field.
    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields.first { $0.0 == key }?.1 }
        return nil
    }

    /// The object with `key` set to `value` (replaced in place, or added at the end).
    public func setting(_ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var fields) = self else { return self }
        if let i = fields.firstIndex(where: { $0.0 == key }) { fields[i].1 = value } else { fields.append((key, value)) }
        return .object(fields)
    }

    /// Compact JSON text.
    public var json: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): JSONWriter.appendQuoted(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                JSONWriter.appendQuoted(key, to: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
        }

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < 512 else { throw Invalid("nested deeper than 512") }
            skipSpace()
            guard i < bytes.count else { throw Invalid() }
            switch bytes[i] {
            case 0x7b:  // {
                i += 1
                var fields: [(String, JSONValue)] = []
                // Repeated keys: a scan of the few keys before for small objects (no hashing), a set from 16 on.
                var seen: Set<String>?
                skipSpace()
                if i < bytes.count, bytes[i] == 0x7d { i += 1; return .object(fields) }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == 0x3a else { throw Invalid() }
                    i += 1
                    let v = try value(depth: depth + 1)
                    let repeated: Bool
                    if seen != nil {
                        repeated = !seen!.insert(key).inserted
                    } else if fields.count < 16 {
                        repeated = fields.contains { $0.0 == key }
                    } else {
                        seen = Set(fields.map(\.0))
                        repeated = !seen!.insert(key).inserted
                    }
                    guard !repeated else { throw Invalid("the key \"\(key.prefix(64))\" appears twice in one object") }
                    fields.append((key, v))
                    skipSpace()
                    guard i < bytes.count else { throw Invalid() }
                    if bytes[i] == 0x2c { i += 1; continue }
                    guard bytes[i] == 0x7d else { throw Invalid() }
                    i += 1
                    return .object(fields)
                }
            case 0x5b:  // [
                i += 1
                var items: [JSONValue] = []
                skipSpace()
                if i < bytes.count, bytes[i] == 0x5d { i += 1; return .array(items) }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw Invalid() }
                    if bytes[i] == 0x2c { i += 1; continue }
                    guard bytes[i] == 0x5d else { throw Invalid() }
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
            guard i + n <= bytes.count else { throw Invalid() }
            for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw Invalid() }
            i += n
        }

        /// A string at `i`, its escapes decoded; raw control characters, bad escapes and invalid UTF-8 refused.
        mutating func string() throws -> String {
            guard i < bytes.count, bytes[i] == 0x22 else { throw Invalid() }
            i += 1
            let start = i
            var high: UInt8 = 0
            while i < bytes.count, bytes[i] != 0x22, bytes[i] != 0x5c, bytes[i] >= 0x20 { high |= bytes[i]; i += 1 }
            guard i < bytes.count else { throw Invalid() }
            if bytes[i] == 0x22 {  // the common case: no escapes
                defer { i += 1 }
                let text = UnsafeBufferPointer(rebasing: bytes[start..<i])
                // ASCII is valid UTF-8 as it stands; only other bytes need checking.
                if high < 0x80 { return String(decoding: text, as: UTF8.self) }
                guard let s = String(validating: text, as: UTF8.self) else { throw Invalid() }
                return s
            }
            var out = Array(bytes[start..<i])
            guard JSONValue.decodeString(bytes, &i, into: &out), let s = String(validating: out, as: UTF8.self) else { throw Invalid() }
            return s
        }

        /// A number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        mutating func number() throws -> String {
            let start = i
            func digits() -> Int {
                let s = i
                while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
                return i - s
            }
            if i < bytes.count, bytes[i] == 0x2d { i += 1 }
            guard i < bytes.count else { throw Invalid() }
            if bytes[i] == 0x30 { i += 1 } else if digits() == 0 { throw Invalid() }
            if i < bytes.count, bytes[i] == 0x2e { i += 1; guard digits() > 0 else { throw Invalid() } }
            if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
                i += 1
                if i < bytes.count, bytes[i] == 0x2b || bytes[i] == 0x2d { i += 1 }
                guard digits() > 0 else { throw Invalid() }
            }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        }
    }
}

extension JSONValue {
    /// Decodes the rest of a JSON string from `i` (inside the quotes) through its closing quote, escapes
    /// resolved, appending the bytes to `out`; false for raw control characters, bad escapes or a lone
    /// surrogate. The bytes are not checked to be UTF-8.
    static func decodeString(_ bytes: UnsafeBufferPointer<UInt8>, _ i: inout Int, into out: inout [UInt8]) -> Bool {
        func hex4() -> UInt32? {
            guard i + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[i]
                let d: UInt8
                switch b {
                case 0x30...0x39: d = b - 0x30
                case 0x41...0x46: d = b - 0x41 + 10
                case 0x61...0x66: d = b - 0x61 + 10
                default: return nil
                }
                v = v << 4 | UInt32(d)
                i += 1
            }
            return v
        }
        while true {
            guard i < bytes.count else { return false }
            let b = bytes[i]
            if b == 0x22 { i += 1; return true }
            guard b >= 0x20 else { return false }
            guard b == 0x5c else { out.append(b); i += 1; continue }
            guard i + 1 < bytes.count else { return false }
            i += 2
            switch bytes[i - 1] {
            case 0x22: out.append(0x22)
            case 0x5c: out.append(0x5c)
            case 0x2f: out.append(0x2f)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0c)
            case 0x6e: out.append(0x0a)
            case 0x72: out.append(0x0d)
            case 0x74: out.append(0x09)
            case 0x75:
                guard var scalar = hex4() else { return false }
                if (0xd800..<0xdc00).contains(scalar) {  // a high surrogate needs its low half
                    guard i + 1 < bytes.count, bytes[i] == 0x5c, bytes[i + 1] == 0x75 else { return false }
                    i += 2
                    guard let low = hex4(), (0xdc00..<0xe000).contains(low) else { return false }
                    scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                }
                guard let u = Unicode.Scalar(scalar) else { return false }
                out.append(contentsOf: String(Character(u)).utf8)
            default: return false
            }
        }
    }
}

/// A bounded memo of string conversions (JSON key case), shared by all threads.
final class StringMemo: Sendable {
    private let entries = Mutex<[String: String]>([:])
    private let limit: Int

    init(limit: Int = 10_000) { self.limit = limit }

    func value(_ key: String, _ compute: (String) -> String) -> String {
        if let known = entries.withLock({ $0[key] }) { return known }
        let converted = compute(key)
        entries.withLock { e in
            if e.count < limit { e[key] = converted }
        }
        return converted
    }
}

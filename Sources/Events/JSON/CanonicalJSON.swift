import Foundation

/// Encodes `Encodable` values to exactly the text `JSONWriter.makeEncoder()` produces (snake_case keys,
/// sorted keys, RFC 3339 UTC dates, slashes unescaped, `14.0` as `14`), without Foundation's encoder.
/// Foundation's JSONEncoder was the largest cost of deciding a command (about 16 µs of the 48 µs per
/// imported command); this one builds a small tree of pre-rendered scalars and writes it once.
/// A test compares both encoders' output over every command, event payload and state of the demo scenario.
public enum CanonicalJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let root = Node()
        try encodeValue(value, into: root, path: [])
        var out = ""
        out.reserveCapacity(256)
        root.write(to: &out)
        return out
    }

    static func encodeValue<T: Encodable>(_ value: T, into node: Node, path: [any CodingKey]) throws {
        if let date = value as? Date {
            node.kind = .scalar(JSONWriter.quote(Timestamp.format(date)))
            return
        }
        try value.encode(to: Writer(node: node, codingPath: path))
    }

    /// One value being built: a scalar already rendered as JSON, an object or an array.
    final class Node {
        enum Kind { case empty, scalar(String), object([(String, Node)]), array([Node]) }
        var kind = Kind.empty

        func write(to out: inout String) {
            switch kind {
            case .empty: out += "{}"
            case .scalar(let text): out += text
            case .object(let fields):
                out += "{"
                let sorted = fields.count < 2 ? fields : fields.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
                var previous: String?
                var first = true
                for (key, node) in sorted where key != previous {
                    if !first { out += "," }
                    first = false
                    JSONWriter.appendQuoted(key, to: &out)
                    out += ":"
                    node.write(to: &out)
                    previous = key
                }
                out += "}"
            case .array(let items):
                out += "["
                for (i, node) in items.enumerated() {
                    if i > 0 { out += "," }
                    node.write(to: &out)
                }
                out += "]"
            }
        }
    }

    static func render(_ value: Double, _ path: [any CodingKey]) throws -> String {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "\(value) is not valid JSON"))
        }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    private static let snakeCache = StringMemo()

    /// Foundation's `convertToSnakeCase`: words start at an upper-case letter; a run of capitals is one
    /// word (its last capital starts the next word when a lower-case letter follows); all lower-cased.
    static func snakeCase(_ key: String) -> String {
        if !key.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5a }) && key.utf8.allSatisfy({ $0 < 0x80 }) { return key }
        return snakeCache.value(key, convertToSnakeCase)
    }

    private static func convertToSnakeCase(_ key: String) -> String {
        let chars = Array(key)
        var words: [String] = []
        var wordStart = 0
        var i = 1
        while i < chars.count {
            guard let upper = (i..<chars.count).first(where: { chars[$0].isUppercase }) else { break }
            words.append(String(chars[wordStart..<upper]))
            guard let lower = ((upper)..<chars.count).first(where: { chars[$0].isLowercase }) else {
                wordStart = upper
                i = chars.count
                break
            }
            if lower == upper + 1 {
                wordStart = upper
            } else {
                words.append(String(chars[upper..<(lower - 1)]))
                wordStart = lower - 1
            }
            i = lower + 1
        }
        words.append(String(chars[min(wordStart, chars.count)...]))
        return chars.isEmpty ? key : words.map { $0.lowercased() }.joined(separator: "_")
    }

    struct Writer: Encoder {
        let node: Node
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if case .object = node.kind {} else { node.kind = .object([]) }
            return KeyedEncodingContainer(Keyed<Key>(node: node, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if case .array = node.kind {} else { node.kind = .array([]) }
            return Unkeyed(node: node, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(node: node, codingPath: codingPath) }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        let codingPath: [any CodingKey]

        private func add(_ key: Key, _ child: Node) {
            guard case .object(var fields) = node.kind else { return }
            node.kind = .empty  // keeps `fields` uniquely referenced while appending
            fields.append((CanonicalJSON.snakeCase(key.stringValue), child))
            node.kind = .object(fields)
        }
        private func scalar(_ key: Key, _ text: String) {
            let child = Node()
            child.kind = .scalar(text)
            add(key, child)
        }

        mutating func encodeNil(forKey key: Key) throws { scalar(key, "null") }
        mutating func encode(_ value: Bool, forKey key: Key) throws { scalar(key, value ? "true" : "false") }
        mutating func encode(_ value: String, forKey key: Key) throws { scalar(key, JSONWriter.quote(value)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { scalar(key, try CanonicalJSON.render(value, codingPath + [key])) }
        mutating func encode(_ value: Float, forKey key: Key) throws { scalar(key, try CanonicalJSON.render(Double(value), codingPath + [key])) }
        mutating func encode(_ value: Int, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { scalar(key, String(value)) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            let child = Node()
            try CanonicalJSON.encodeValue(value, into: child, path: codingPath + [key])
            add(key, child)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let child = Node()
            add(key, child)
            return Writer(node: child, codingPath: codingPath + [key]).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let child = Node()
            add(key, child)
            return Writer(node: child, codingPath: codingPath + [key]).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            let child = Node()
            add(key, child)
            return Writer(node: child, codingPath: codingPath + [key])
        }
    }

    struct IndexKey: CodingKey {
        let intValue: Int?
        var stringValue: String { "Index \(intValue ?? 0)" }
        init(_ index: Int) { intValue = index }
        init?(stringValue: String) { nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        var count: Int {
            if case .array(let items) = node.kind { return items.count }
            return 0
        }

        private func add(_ child: Node) {
            guard case .array(var items) = node.kind else { return }
            node.kind = .empty
            items.append(child)
            node.kind = .array(items)
        }
        private func scalar(_ text: String) {
            let child = Node()
            child.kind = .scalar(text)
            add(child)
        }

        mutating func encodeNil() throws { scalar("null") }
        mutating func encode(_ value: Bool) throws { scalar(value ? "true" : "false") }
        mutating func encode(_ value: String) throws { scalar(JSONWriter.quote(value)) }
        mutating func encode(_ value: Double) throws { scalar(try CanonicalJSON.render(value, codingPath + [IndexKey(count)])) }
        mutating func encode(_ value: Float) throws { scalar(try CanonicalJSON.render(Double(value), codingPath + [IndexKey(count)])) }
        mutating func encode(_ value: Int) throws { scalar(String(value)) }
        mutating func encode(_ value: Int8) throws { scalar(String(value)) }
        mutating func encode(_ value: Int16) throws { scalar(String(value)) }
        mutating func encode(_ value: Int32) throws { scalar(String(value)) }
        mutating func encode(_ value: Int64) throws { scalar(String(value)) }
        mutating func encode(_ value: UInt) throws { scalar(String(value)) }
        mutating func encode(_ value: UInt8) throws { scalar(String(value)) }
        mutating func encode(_ value: UInt16) throws { scalar(String(value)) }
        mutating func encode(_ value: UInt32) throws { scalar(String(value)) }
        mutating func encode(_ value: UInt64) throws { scalar(String(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            let child = Node()
            try CanonicalJSON.encodeValue(value, into: child, path: codingPath + [IndexKey(count)])
            add(child)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let child = Node()
            let path = codingPath + [IndexKey(count)]
            add(child)
            return Writer(node: child, codingPath: path).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let child = Node()
            let path = codingPath + [IndexKey(count)]
            add(child)
            return Writer(node: child, codingPath: path).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder {
            let child = Node()
            let path = codingPath + [IndexKey(count)]
            add(child)
            return Writer(node: child, codingPath: path)
        }
    }

    struct Single: SingleValueEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { node.kind = .scalar("null") }
        mutating func encode(_ value: Bool) throws { node.kind = .scalar(value ? "true" : "false") }
        mutating func encode(_ value: String) throws { node.kind = .scalar(JSONWriter.quote(value)) }
        mutating func encode(_ value: Double) throws { node.kind = .scalar(try CanonicalJSON.render(value, codingPath)) }
        mutating func encode(_ value: Float) throws { node.kind = .scalar(try CanonicalJSON.render(Double(value), codingPath)) }
        mutating func encode(_ value: Int) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: Int8) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: Int16) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: Int32) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: Int64) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: UInt) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: UInt8) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: UInt16) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: UInt32) throws { node.kind = .scalar(String(value)) }
        mutating func encode(_ value: UInt64) throws { node.kind = .scalar(String(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws { try CanonicalJSON.encodeValue(value, into: node, path: codingPath) }
    }
}

/// One JSON object written field by field, for a value that renders itself instead of going through `Encodable`
/// and `CanonicalJSON` (a payload written by the hundred thousand: the tree of nodes and the key sort cost several
/// times the text). The caller passes its keys already snake_case, in byte order and needing no escapes; a nil
/// value is left out, as `encodeIfPresent` leaves it out. The output is `CanonicalJSON.encode`'s, byte for byte,
/// which a test checks over thousands of values per type.
public struct CanonicalObject {
    private var text = "{"
    #if DEBUG
    private var lastKey = ""
    #endif

    public init(capacity: Int = 160) { text.reserveCapacity(capacity) }

    private mutating func key(_ key: String) {
        #if DEBUG
        precondition(lastKey.isEmpty || lastKey.utf8.lexicographicallyPrecedes(key.utf8), "keys out of order: \(lastKey), \(key)")
        lastKey = key
        #endif
        if text.utf8.count > 1 { text += "," }
        text += "\""
        text += key
        text += "\":"
    }

    public mutating func field(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        JSONWriter.appendQuoted(value, to: &text)
    }

    public mutating func field(_ name: String, _ value: Int64?) {
        guard let value else { return }
        key(name)
        text += String(value)
    }

    /// A time, as `CanonicalJSON` writes a `Date`: RFC 3339 UTC.
    public mutating func field(_ name: String, _ value: Date?) {
        field(name, value.map { Timestamp.format($0) })
    }

    /// A value that encodes as one JSON string (a date, a code), given as that string.
    public mutating func field<T: CustomStringConvertible>(_ name: String, described value: T?) {
        field(name, value.map(\.description))
    }

    public consuming func finish() -> String {
        text += "}"
        return text
    }
}

import Events
import Foundation
import Synchronization

/// A command's body, field by field: name, JSON type, whether it is required, and the bounds its validation
/// applies. Derived from the command itself, never written by hand: the fields and their types from its
/// `Decodable` conformance (a recording decoder), the bounds from its `validate` (a recording validator). The
/// decoder checks bodies against it before decoding (so `1e1` is not taken for a whole number), and the OpenAPI
/// document is generated from it, so neither can drift from what the handlers decode.
public struct FieldSchema: Sendable, Equatable {
    public indirect enum Kind: Sendable, Equatable {
        case string, integer, number, boolean
        /// `YYYY-MM-DD`.
        case date
        /// RFC 3339.
        case time
        case array(Kind)
        case object([FieldSchema])
    }

    /// The JSON name (snake_case).
    public let name: String
    public var kind: Kind
    public var required: Bool
    public var allowed: [String]?
    public var minimum: Int64?
    public var maximum: Int64?
    public var minimumNumber: Double?
    public var maximumNumber: Double?
    public var maxLength: Int?
    public var pattern: String?
    public var format: String?
    public var help: String?
}

public enum CommandSchema {
    private static let cache = Mutex<[String: [FieldSchema]]>([:])

    /// The body fields of `type`, in declaration order.
    public static func fields<C: DomainCommand>(of type: C.Type) -> [FieldSchema] {
        if let hit = cache.withLock({ $0[C.name] }) { return hit }
        let recorder = Recorder()
        var fields: [FieldSchema] = []
        if let sample = try? C(from: RecordingDecoder(recorder: recorder, path: [])) {
            fields = recorder.fields
            var v = Validator()
            v.recording = true
            sample.validate(&v)
            for constraint in v.recorded {
                guard let i = fields.firstIndex(where: { $0.name == constraint.field }) else { continue }
                constraint.apply(&fields[i])
            }
        }
        cache.withLock { $0[C.name] = fields }
        return fields
    }

    /// Problems with `value`'s fields against the schema: a JSON type that is not the field's (a number with a
    /// fraction or an exponent where a whole number is wanted, a string for a number...), a required field
    /// missing. Unknown fields are refused by the caller. Every problem names its field.
    static func problems(_ value: JSONValue, _ fields: [FieldSchema], prefix: String = "") -> [FieldError] {
        var out: [FieldError] = []
        for f in fields {
            let path = prefix + f.name
            guard let v = value[f.name], !isNull(v) else {
                if f.required { out.append(FieldError(path, "is required")) }
                continue
            }
            out += problems(v, f.kind, path: path)
        }
        return out
    }

    private static func isNull(_ v: JSONValue) -> Bool { if case .null = v { return true }; return false }

    private static func problems(_ v: JSONValue, _ kind: FieldSchema.Kind, path: String) -> [FieldError] {
        switch (kind, v) {
        case (.string, .string), (.date, .string), (.time, .string), (.boolean, .bool): return []
        case (.integer, .number(let n)):
            let digits = n.utf8.drop { $0 == 0x2d }
            return !digits.isEmpty && digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) && n.utf8.count <= 20 && Int64(n) != nil
                ? [] : [FieldError(path, "must be a whole number (no fraction or exponent) within 64 bits")]
        case (.number, .number(let n)): return Double(n)?.isFinite == true ? [] : [FieldError(path, "must be a finite number")]
        case (.array(let element), .array(let items)):
            return items.enumerated().flatMap { problems($1, element, path: "\(path)[\($0)]") }
        case (.object(let fields), .object):
            let known = Set(fields.map(\.name))
            let unknown = (v.keys ?? []).filter { !known.contains($0) }.map { FieldError("\(path).\($0)", "unknown field") }
            return unknown + problems(v, fields, prefix: path + ".")
        default: return [FieldError(path, "must be " + describe(kind))]
        }
    }

    static func describe(_ kind: FieldSchema.Kind) -> String {
        switch kind {
        case .string: return "a string"
        case .integer: return "a whole number"
        case .number: return "a number"
        case .boolean: return "true or false"
        case .date: return "a date YYYY-MM-DD"
        case .time: return "an RFC 3339 time"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// What a recording decode noted: the fields of the top level.
    final class Recorder: @unchecked Sendable {
        var fields: [FieldSchema] = []
    }

    /// A Decoder that answers every decode with a plausible value (so the command's own `init(from:)` runs to the
    /// end) and notes each key with its type and whether it was optional.
    struct RecordingDecoder: Decoder {
        let recorder: Recorder
        let path: [any CodingKey]
        var codingPath: [any CodingKey] { path }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        /// Where nested fields go (an array element's object, a nested object).
        var sink: ((FieldSchema) -> Void)?

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(Keyed<Key>(decoder: self))
        }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(decoder: self) }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single() }

        func note(_ field: FieldSchema) {
            if let sink { sink(field) } else { recorder.fields.append(field) }
        }

        /// Decodes `T` as a value of `kind` noted under `key`; nested types are recorded through their own decode.
        func value<T: Decodable>(_ type: T.Type, key: String, required: Bool) throws -> T {
            let (kind, sample) = try Self.sample(T.self, recorder: recorder)
            note(FieldSchema(name: key, kind: kind, required: required))
            return sample
        }

        static func sample<T: Decodable>(_ type: T.Type, recorder: Recorder) throws -> (FieldSchema.Kind, T) {
            switch type {
            case is String.Type: return (.string, "x" as! T)
            case is Int64.Type: return (.integer, Int64(1) as! T)
            case is Int.Type: return (.integer, 1 as! T)
            case is Double.Type: return (.number, 1.0 as! T)
            case is Bool.Type: return (.boolean, true as! T)
            case is Date.Type: return (.time, Date() as! T)
            case is Day.Type: return (.date, Day(Date()) as! T)
            default:
                // An array or an object: decoded by its own init, whose keys or elements note what they are.
                let nested = NestedFields()
                var decoder = RecordingDecoder(recorder: recorder, path: [])
                decoder.sink = { nested.fields.append($0) }
                let probe = ElementProbe()
                let value = try T(from: ArrayAwareDecoder(base: decoder, probe: probe))
                if let element = probe.element { return (.array(element), value) }
                return (.object(nested.fields), value)
            }
        }
    }

    /// The fields a nested object's decode notes.
    final class NestedFields: @unchecked Sendable { var fields: [FieldSchema] = [] }

    /// Notes the element kind when the value being decoded turns out to be an array.
    final class ElementProbe: @unchecked Sendable { var element: FieldSchema.Kind? }

    struct ArrayAwareDecoder: Decoder {
        let base: RecordingDecoder
        let probe: ElementProbe
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> { try base.container(keyedBy: type) }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(decoder: base, probe: probe) }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single() }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let decoder: RecordingDecoder
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try decoder.value(T.self, key: CommandCatalog.snake(key.stringValue), required: true)
        }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            try decoder.value(T.self, key: CommandCatalog.snake(key.stringValue), required: false)
        }
        // The scalar forms have defaults in the protocol that would call `decode` (and note the field as required).
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try optional(type, key) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try optional(type, key) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try optional(type, key) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try optional(type, key) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try optional(type, key) }
        private func optional<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
            try decoder.value(T.self, key: CommandCatalog.snake(key.stringValue), required: false)
        }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> { try decoder.container(keyedBy: N.self) }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { Unkeyed(decoder: decoder) }
        func superDecoder() throws -> any Decoder { decoder }
        func superDecoder(forKey key: Key) throws -> any Decoder { decoder }
    }

    /// One element, then the end: enough for the element's type to be noted.
    final class Unkeyed: UnkeyedDecodingContainer {
        let decoder: RecordingDecoder
        let probe: ElementProbe?
        var currentIndex = 0
        init(decoder: RecordingDecoder, probe: ElementProbe? = nil) { (self.decoder, self.probe) = (decoder, probe) }
        var codingPath: [any CodingKey] { [] }
        var count: Int? { 1 }
        var isAtEnd: Bool { currentIndex >= 1 }
        func decodeNil() throws -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            currentIndex += 1
            let (kind, sample) = try RecordingDecoder.sample(T.self, recorder: decoder.recorder)
            probe?.element = kind
            return sample
        }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> { try decoder.container(keyedBy: N.self) }
        func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(decoder: decoder) }
        func superDecoder() throws -> any Decoder { decoder }
    }

    struct Single: SingleValueDecodingContainer {
        var codingPath: [any CodingKey] { [] }
        func decodeNil() -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            switch type {
            case is String.Type: return "x" as! T
            case is Bool.Type: return true as! T
            case is Int64.Type: return Int64(1) as! T
            case is Int.Type: return 1 as! T
            case is Double.Type: return 1.0 as! T
            default: throw DecodingError.typeMismatch(T.self, .init(codingPath: [], debugDescription: "not recorded"))
            }
        }
    }
}

/// A bound `validate` applies to a field, as the recording validator notes it.
struct FieldConstraint {
    let field: String
    let apply: (inout FieldSchema) -> Void
}

import Events
import Foundation

public enum EventCodecError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownType(String)
    /// Written by a newer coord: this binary must not guess what the data means.
    case newerSchema(type: String, version: Int, known: Int)
    case malformed(type: String, position: Int64)

    public var description: String {
        switch self {
        case .unknownType(let t): return "unknown event type \(t)"
        case let .newerSchema(t, v, k): return "event \(t) has schema version \(v); this binary knows up to \(k): upgrade coord"
        case let .malformed(t, p): return "event \(t) at position \(p) does not match its schema"
        }
    }
}

/// Turns domain events into stored events and back. The one place where old event shapes are upcast to the
/// current one, so handlers, projections and replay only ever see current shapes.
public enum EventCodec {
    /// Every event type name the domain writes.
    public static var eventTypes: [String] { DomainEvent.eventTypes }

    /// A new event for `event`, stamped with its schema version.
    public static func event(_ event: DomainEvent, id: UUID, metadata: EventMetadata, occurredAt: Date) throws -> EventData {
        try Self.event(event.payload, id: id, metadata: metadata, occurredAt: occurredAt)
    }

    public static func event<P: EventPayload>(_ payload: P, id: UUID, metadata: EventMetadata, occurredAt: Date) throws -> EventData {
        var metadata = metadata
        metadata.schemaVersion = P.schemaVersion == 1 ? nil : P.schemaVersion
        let data = try canonicalJSON(payload)
        return EventData(id: id, type: P.eventType, data: JSONText(encoded: data), metadata: metadata, occurredAt: occurredAt)
    }

    /// The canonical text of a value: its own rendering when it has one (`DirectlyEncoded`), else `CanonicalJSON`'s.
    static func canonicalJSON<T: Encodable>(_ value: T) throws -> String {
        try (value as? any DirectlyEncoded)?.canonicalJSON ?? CanonicalJSON.encode(value)
    }

    /// The event of a stored row, upcast to the current schema.
    public static func decode(_ event: RecordedEvent) throws -> DomainEvent {
        guard let entry = DomainEvent.registry[event.type] else { throw EventCodecError.unknownType(event.type) }
        let version = schemaVersion(ofMetadata: event.metadata.text)
        return try entry.decode(event.data.text, version, event.position)
    }

    static func decode<P: EventPayload>(_ type: P.Type, data: Data, version: Int, position: Int64) throws -> P {
        if version > P.schemaVersion {
            throw EventCodecError.newerSchema(type: P.eventType, version: version, known: P.schemaVersion)
        }
        var bytes = data
        if version < P.schemaVersion {
            guard var object = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
                throw EventCodecError.malformed(type: P.eventType, position: position)
            }
            try upcast(P.eventType, from: version, to: P.schemaVersion, &object, position: position)
            bytes = try JSONSerialization.data(withJSONObject: object)
        }
        if let payload = try? FastJSONDecoder.decode(P.self, from: bytes) { return payload }
        do {
            return try JSONWriter.makeDecoder().decode(P.self, from: bytes)
        } catch {
            throw EventCodecError.malformed(type: P.eventType, position: position)
        }
    }

    /// Rewrites an old shape into the next one, step by step. Add a case when a payload's schemaVersion is bumped.
    static func upcast(_ type: String, from: Int, to: Int, _ object: inout [String: Any], position: Int64) throws {
        var version = from
        while version < to {
            switch (type, version) {
            case ("task.created", 1):
                // v1 stored priority as 1 (urgent) ... 4 (low).
                let names = [1: "urgent", 2: "high", 3: "normal", 4: "low"]
                guard let n = object["priority"] as? Int, let name = names[n] else {
                    throw EventCodecError.malformed(type: type, position: position)
                }
                object["priority"] = name
            default:
                throw EventCodecError.malformed(type: type, position: position)
            }
            version += 1
        }
    }

    /// Reads `schema_version` from metadata text without a JSON parse, on bytes (this runs once per event read:
    /// with Foundation's string search it was a fifth of a rebuild's client CPU).
    static func schemaVersion(ofMetadata text: String) -> Int {
        var text = text
        return text.withUTF8 { bytes -> Int in
            guard let at = ByteSearch.find(schemaVersionKey, in: bytes) else { return 1 }
            var value = 0
            var seen = false
            for b in bytes[(at + schemaVersionKey.count)...] {
                if b == 0x3a || b == 0x20 { if seen { break }; continue }
                guard b >= 0x30, b <= 0x39, value < 1_000_000 else { break }
                value = value * 10 + Int(b - 0x30)
                seen = true
            }
            return seen ? value : 1
        }
    }

    private static let schemaVersionKey = Array("\"schema_version\"".utf8)
}

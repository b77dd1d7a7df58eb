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

/// Turns domain payloads into stored events and back. The one place where old event shapes are
/// upcast to the current one, so handlers, projections and replay only ever see current shapes.
public enum EventCodec {
    static let payloadTypes: [any EventPayload.Type] = [
        ResponseDeclared.self, ResponseSeverityChanged.self, ResponseAreasAdded.self, ResponsePhaseChanged.self, ResponseClosed.self,
        WarehouseRegistered.self, ItemRegistered.self,
        StockLevelsSet.self, StockReceived.self, StockDispatched.self, StockAdjusted.self, StockCounted.self,
        StockTransferSent.self, StockTransferReceived.self, StockTransferReturned.self,
        TransferCreated.self, TransferReceived.self, TransferCancelled.self,
        PersonRegistered.self, PersonUnavailabilityAdded.self, PersonBooked.self, PersonBookingExtended.self, PersonBookingReleased.self,
        DeploymentRequested.self, DeploymentConfirmed.self, DeploymentArrived.self, DeploymentExtended.self,
        DeploymentCompleted.self, DeploymentCancelled.self,
        TaskCreated.self, TaskAssigned.self, TaskStarted.self, TaskBlocked.self, TaskCompleted.self, TaskVerified.self,
        TaskCancelled.self, TaskReopened.self, TaskCommented.self,
    ]

    static let byName: [String: any EventPayload.Type] = Dictionary(uniqueKeysWithValues: payloadTypes.map { ($0.eventType, $0) })

    /// Every event type name the domain writes.
    public static var eventTypes: [String] { payloadTypes.map { $0.eventType } }

    /// A new event for `payload`, stamped with its schema version.
    public static func event<P: EventPayload>(_ payload: P, id: UUID, metadata: EventMetadata, occurredAt: Date) throws -> EventData {
        var metadata = metadata
        metadata.schemaVersion = P.schemaVersion == 1 ? nil : P.schemaVersion
        let data = try CanonicalJSON.encode(payload)
        return EventData(id: id, type: P.eventType, data: JSONText(encoded: data), metadata: metadata, occurredAt: occurredAt)
    }

    /// The payload of a stored event, upcast to the current schema.
    public static func decode(_ event: RecordedEvent) throws -> any EventPayload {
        guard let type = byName[event.type] else { throw EventCodecError.unknownType(event.type) }
        let version = schemaVersion(ofMetadata: event.metadata.text)
        return try decode(type, data: event.data.text, version: version, position: event.position)
    }

    static func decode<P: EventPayload>(_ type: P.Type, data: String, version: Int, position: Int64) throws -> P {
        if version > P.schemaVersion {
            throw EventCodecError.newerSchema(type: P.eventType, version: version, known: P.schemaVersion)
        }
        var bytes = Data(data.utf8)
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

    /// Reads `schema_version` from metadata text without a full JSON parse (this runs once per event read).
    static func schemaVersion(ofMetadata text: String) -> Int {
        guard let range = text.range(of: "\"schema_version\"") else { return 1 }
        var digits = 0
        var seen = false
        for ch in text[range.upperBound...] {
            if ch == ":" || ch == " " { if seen { break }; continue }
            guard let d = ch.wholeNumberValue else { break }
            digits = digits * 10 + d
            seen = true
        }
        return seen ? digits : 1
    }
}

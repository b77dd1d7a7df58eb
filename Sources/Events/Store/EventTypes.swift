import Foundation

/// Who caused an event and why. Stored as the event's `metadata` jsonb.
public struct EventMetadata: Sendable, Equatable, Codable {
    /// The token subject or operator that issued the command.
    public var actor: String?
    /// Groups every event caused by one user intent (one HTTP request, one import line).
    public var correlationID: String?
    /// The command or event that directly caused this one.
    public var causationID: String?
    /// Where the command came from: `api`, `coordctl`, `import`, `demo`, ...
    public var source: String?
    /// The client's idempotency key for the command that produced the event.
    public var idempotencyKey: String?
    /// A digest of that command's body: a retry with the same key but another body is refused.
    public var requestHash: String?
    /// The version of the event's data schema (see the domain's upcasters); nil means 1.
    public var schemaVersion: Int?

    public init(actor: String? = nil, correlationID: String? = nil, causationID: String? = nil, source: String? = nil,
                idempotencyKey: String? = nil, requestHash: String? = nil, schemaVersion: Int? = nil) {
        self.actor = actor
        self.correlationID = correlationID
        self.causationID = causationID
        self.source = source
        self.idempotencyKey = idempotencyKey
        self.requestHash = requestHash
        self.schemaVersion = schemaVersion
    }

    enum CodingKeys: String, CodingKey {
        case actor
        case correlationID = "correlation_id"
        case causationID = "causation_id"
        case source
        case idempotencyKey = "idempotency_key"
        case requestHash = "request_hash"
        case schemaVersion = "schema_version"
    }

    /// Compact JSON with keys in a fixed order.
    public var json: String {
        var out = "{"
        out.reserveCapacity(256)
        var first = true
        func field(_ key: String, _ value: String?) {
            guard let value else { return }
            if !first { out += "," }
            first = false
            JSONWriter.appendQuoted(key, to: &out)
            out += ":"
            JSONWriter.appendQuoted(value, to: &out)
        }
        field("actor", actor)
        field("causation_id", causationID)
        field("correlation_id", correlationID)
        field("idempotency_key", idempotencyKey)
        field("request_hash", requestHash)
        if let schemaVersion {
            if !first { out += "," }
            first = false
            out += "\"schema_version\":\(schemaVersion)"
        }
        field("source", source)
        return out + "}"
    }

    /// `json` as PostgreSQL prints it back from jsonb (`JSONBText`): keys by length, then bytewise.
    public func appendJSONB(to out: inout [UInt8]) {
        var first = true
        out.append(0x7b)
        func field(_ key: StaticString, _ value: String?) {
            guard let value else { return }
            if !first { out.append(0x2c); out.append(0x20) }
            first = false
            out.append(0x22)
            out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            out.append(contentsOf: [0x22, 0x3a, 0x20])
            JSONWriter.appendQuoted(value, to: &out)
        }
        field("actor", actor)
        field("source", source)
        field("causation_id", causationID)
        field("request_hash", requestHash)
        field("correlation_id", correlationID)
        if let schemaVersion {
            if !first { out.append(0x2c); out.append(0x20) }
            first = false
            out.append(contentsOf: "\"schema_version\": \(schemaVersion)".utf8)
        }
        field("idempotency_key", idempotencyKey)
        out.append(0x7d)
    }
}

/// An event to append.
public struct EventData: Sendable, Equatable {
    /// Unique forever. Re-appending the same id with the same content is a no-op (idempotency).
    public var id: UUID
    /// A stable name such as `stock.dispatched`; see `EventStore.isValidType`.
    public var type: String
    /// A JSON object.
    public var data: JSONText
    public var metadata: EventMetadata { didSet { metadataJSON = metadata.json } }
    /// `metadata` as stored, rendered once.
    public private(set) var metadataJSON: String
    /// When it happened in the field; the store adds when it was recorded.
    public var occurredAt: Date

    public init(id: UUID = UUID.random(), type: String, data: JSONText, metadata: EventMetadata = EventMetadata(), occurredAt: Date = Date()) {
        self.id = id
        self.type = type
        self.data = data
        self.metadata = metadata
        self.metadataJSON = metadata.json
        self.occurredAt = occurredAt
    }

    /// Encodes `payload` with snake_case keys and RFC 3339 dates.
    public init<T: Encodable>(id: UUID = UUID.random(), type: String, payload: T, metadata: EventMetadata = EventMetadata(), occurredAt: Date = Date()) throws {
        self.init(id: id, type: type, data: JSONText(encoded: try JSONWriter.encode(payload)), metadata: metadata, occurredAt: occurredAt)
    }
}

/// The version a writer expects a stream to be at. Versions start at 1; a stream without events is at 0.
public enum ExpectedVersion: Sendable, Equatable, CustomStringConvertible {
    /// No check.
    case any
    /// The stream must have no events.
    case noStream
    /// The stream must have at least one event.
    case streamExists
    /// The stream's last event must have this version (0 means no events).
    case exact(Int64)

    var wire: String {
        switch self {
        case .any: return "any"
        case .noStream: return "no_stream"
        case .streamExists: return "exists"
        case .exact(let v): return String(v)
        }
    }

    public var description: String {
        switch self {
        case .any: return "any"
        case .noStream: return "no stream"
        case .streamExists: return "stream exists"
        case .exact(let v): return "version \(v)"
        }
    }
}

/// Events for one stream within an append.
public struct StreamAppend: Sendable {
    public var stream: String
    public var expected: ExpectedVersion
    public var events: [EventData]

    public init(stream: String, expected: ExpectedVersion = .any, events: [EventData]) {
        self.stream = stream
        self.expected = expected
        self.events = events
    }
}

/// The first answer to an idempotent request, kept by the store beside (or, for a refusal, instead of) its
/// events. `id` is the request's own (derived from its idempotency key); `answer` is the caller's, opaque here.
public struct AppendReceipt: Sendable, Equatable {
    public let id: UUID
    public let requestHash: String
    public let answer: String

    public init(id: UUID, requestHash: String, answer: String) { (self.id, self.requestHash, self.answer) = (id, requestHash, answer) }
}

/// What an append wrote (or, for a duplicate, what the original append wrote).
public struct AppendResult: Sendable, Equatable {
    public struct Stream: Sendable, Equatable {
        public let stream: String
        /// The stream's version after its last event of this append.
        public let version: Int64
        public let firstPosition: Int64
        public let lastPosition: Int64
    }

    public let streams: [Stream]
    /// True when every event was already stored with the same content: nothing was written.
    public let duplicate: Bool

    /// The global position of the last event of the append.
    public var position: Int64 { streams.map(\.lastPosition).max() ?? 0 }

    public func version(of stream: String) -> Int64? { streams.first { $0.stream == stream }?.version }
}

/// An event as stored.
public struct RecordedEvent: Sendable, Equatable {
    /// Global, gapless, in commit order, from 1.
    public let position: Int64
    public let stream: String
    /// Per stream, contiguous, from 1.
    public let version: Int64
    public let id: UUID
    public let type: String
    public let data: JSONText
    public let metadata: JSONText
    public let occurredAt: Date
    public let recordedAt: Date
    /// SHA-256 chain link, lower-case hex.
    public let hash: String

    public init(position: Int64, stream: String, version: Int64, id: UUID, type: String, data: JSONText, metadata: JSONText,
                occurredAt: Date, recordedAt: Date, hash: String) {
        (self.position, self.stream, self.version, self.id, self.type) = (position, stream, version, id, type)
        (self.data, self.metadata, self.occurredAt, self.recordedAt, self.hash) = (data, metadata, occurredAt, recordedAt, hash)
    }

    /// The event as a JSON object (the API's and the export's shape); `hash` is included when asked.
    public func json(includingHash: Bool = false) -> String {
        var out = "{\"position\":\(position),\"stream\":" + JSONWriter.quote(stream) + ",\"version\":\(version)"
        out += ",\"id\":\"\(id.lowercasedString)\",\"type\":" + JSONWriter.quote(type)
        out += ",\"data\":\(data.text),\"metadata\":\(metadata.text)"
        out += ",\"occurred_at\":\"\(Timestamp.format(occurredAt))\",\"recorded_at\":\"\(Timestamp.format(recordedAt))\""
        if includingHash { out += ",\"hash\":\"\(hash)\"" }
        return out + "}"
    }

    /// The stream's category: its name up to the first `-` (`stock-MNL` → `stock`).
    public var category: String { EventStore.category(of: stream) }

    /// The metadata decoded; unknown keys are ignored.
    public var decodedMetadata: EventMetadata {
        (try? JSONDecoder().decode(EventMetadata.self, from: Data(metadata.text.utf8))) ?? EventMetadata()
    }
}

/// Errors of the event store. `description` is safe to show a user.
public enum EventStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The stream's version did not match the expectation.
    case wrongExpectedVersion(stream: String, expected: ExpectedVersion, actual: Int64)
    /// An event id is already stored with different content (or a retry does not match the original append).
    case idempotencyMismatch(eventID: UUID)
    /// The input cannot be stored; names the offending field.
    case invalidInput(field: String, reason: String)
    /// The store's schema is not what this binary needs.
    case unavailable(String)
    /// An append built on another queued append (a `Speculation`) that was not written as requested: decide again.
    case speculationFailed

    public var description: String {
        switch self {
        case let .wrongExpectedVersion(stream, expected, actual):
            return "stream \(stream) is at version \(actual), expected \(expected)"
        case let .idempotencyMismatch(id):
            return "event \(id.lowercasedString) was already appended with different content"
        case let .invalidInput(field, reason):
            return "\(field): \(reason)"
        case let .unavailable(reason):
            return "event store unavailable: \(reason)"
        case .speculationFailed:
            return "an append this one was decided on was not written"
        }
    }
}

/// Which events a read or subscription returns.
public struct EventFilter: Sendable, Equatable {
    /// Only these event types.
    public var types: [String]?
    /// Only streams of these categories (`stock` matches `stock-*`).
    public var categories: [String]?
    /// Only these streams.
    public var streams: [String]?
    /// Only events whose metadata names one of these actors (no index: an audit query, not a hot path).
    public var actors: [String]?
    /// Not a filter of events but of what a read returns of their metadata: only these top-level keys (nil: all).
    /// A fold that reads only `actor` and `schema_version` spares the server rendering the rest of every event's
    /// jsonb (correlation and causation ids, request digests): 28% of a full read's server time on an imported log.
    /// The metadata is then an object of those keys that the event has, as jsonb would print it. A live feed ignores it.
    public var metadataKeys: [String]?

    public init(types: [String]? = nil, categories: [String]? = nil, streams: [String]? = nil, actors: [String]? = nil,
                metadataKeys: [String]? = nil) {
        self.types = types
        self.categories = categories
        self.streams = streams
        self.actors = actors
        self.metadataKeys = metadataKeys
    }

    /// Whether `event` passes the filter (as the store's reads decide it).
    public func matches(_ event: RecordedEvent) -> Bool {
        if let types, !types.contains(event.type) { return false }
        if let categories, !categories.contains(EventStore.category(of: event.stream)) { return false }
        if let streams, !streams.contains(event.stream) { return false }
        if let actors, !actors.contains(event.decodedMetadata.actor ?? "") { return false }
        return true
    }

    public static let all = EventFilter()
}

/// Where a read of all events stops.
public enum ReadLimit: Sendable, Equatable {
    case none
    /// Up to and including this position.
    case position(Int64)
    /// Events recorded up to and including this time ("what was known then").
    case recordedAt(Date)
}

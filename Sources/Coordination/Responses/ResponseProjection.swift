import Events
import Foundation

/// Responses with their current severity (and its history), phase, areas and status.
public struct ResponseProjection: ReadModelProjection {
    public init() {}
    public let name = "responses"
    /// 2: amendments; areas and severity history as jsonb arrays (the shape of the API's answers).
    public let version = 2
    public let eventTypes: [String]? = [
        ResponseDeclared.eventType, ResponseAmended.eventType, ResponseSeverityChanged.eventType, ResponseAreasAdded.eventType,
        ResponsePhaseChanged.eventType, ResponseClosed.eventType,
    ]

    static let responses = ReadModelTable<ResponseReadModel.Response>("rm_responses", key: "id", empty: { ResponseReadModel.Response() }, [
        Column("id", \.id), Column("name", \.name), Column("country", \.country), Column("hazard", \.hazard), Column("glide", \.glide),
        Column("severity", \.severity), Column("phase", \.phase), Column("status", \.status), Column("areas", \.areas),
        Column("declared_at", \.declaredAt), Column("closed_at", \.closedAt), Column("severity_history", \.severityHistory),
    ])

    var readModelTables: [any AnyReadModelTable] { [Self.responses] }

    public func makeState() -> any ProjectionState { ResponseReadModel() }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = ResponseReadModel()
        for r in try Self.responses.load(c, suffix: s) { m.responses[r.id] = r }
        return m
    }
}

public final class ResponseReadModel: DecodingProjectionState {
    public struct SeverityChange: Codable, Sendable, Equatable {
        public var severity: String
        public var at: Date
    }

    public struct Response: Sendable, Equatable {
        public var id = "", name = "", country = "", hazard = ""
        public var glide: String?
        public var severity = "", phase = "", status = ""
        /// P-codes, in the order they were added.
        public var areas: [String] = []
        public var declaredAt = Date(timeIntervalSince1970: 0)
        public var closedAt: Date?
        public var severityHistory: [SeverityChange] = []
    }

    public var responses: [String: Response] = [:]
    private var dirty = DirtyKeys()

    public init() {}

    public static func decode(_ event: RecordedEvent) throws -> DomainEvent { try EventCodec.decode(event) }

    public func apply(_ domainEvent: DomainEvent, _ event: RecordedEvent) throws {
        func update(_ id: String, _ change: (inout Response) -> Void) throws {
            guard var r = responses[id] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            change(&r)
            responses[id] = r
            dirty.touch(id)
        }
        switch domainEvent {
        case .responseDeclared(let e):
            responses[e.response] = Response(id: e.response, name: e.name, country: e.country, hazard: e.hazard, glide: e.glide,
                                             severity: e.severity, phase: "response", status: "open", declaredAt: e.declaredAt,
                                             severityHistory: [SeverityChange(severity: e.severity, at: e.declaredAt)])
            dirty.touch(e.response)
        case .responseAmended(let e):
            try update(e.response) { r in
                if let v = e.name { r.name = v }
                if let v = e.glide { r.glide = v }
                if let v = e.country { r.country = v }
            }
        case .responseSeverityChanged(let e):
            try update(e.response) { $0.severity = e.severity; $0.severityHistory.append(SeverityChange(severity: e.severity, at: event.occurredAt)) }
        case .responseAreasAdded(let e):
            try update(e.response) { r in for p in e.pcodes where !r.areas.contains(p) { r.areas.append(p) } }
        case .responsePhaseChanged(let e): try update(e.response) { $0.phase = e.phase }
        case .responseClosed(let e): try update(e.response) { $0.status = "closed"; $0.closedAt = event.occurredAt }
        default: break
        }
    }

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        try dirty.flush(ResponseProjection.responses, c, suffix: s, rows: responses)
        dirty.clear()
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        try ResponseProjection.responses.copy(c, suffix: s, rows: responses.values)
        dirty.clear()
    }
}

extension Coordination {
    /// Every read model coord keeps.
    public static let projections: [any ProjectionDefinition] = [StockProjection(), SurgeProjection(), TaskProjection(), ResponseProjection(), AlertProjection()]
}

import Events
import Foundation

public enum ResponseVocabulary {
    public static let hazards = ["typhoon", "earthquake", "flood", "cyclone", "drought", "volcano", "conflict", "epidemic", "other"]
    public static let severities = ["yellow", "orange", "red"]
    public static let phases = ["alert", "response", "recovery"]
}

struct ResponseState: AggregateState {
    struct SeverityChange: Encodable, Sendable { var severity: String; var at: Date }
    var id = ""
    var name = ""
    var country = ""
    var hazard = ""
    var glide: String?
    var severity = ""
    var severityHistory: [SeverityChange] = []
    var areas: [String] = []
    var phase = "response"
    var status = "open"
    var declaredAt = Date(timeIntervalSince1970: 0)
    var closedAt: Date?
    /// The latest lifecycle step's business time (declaration, severity or phase change): the next may not precede it.
    var lastStepAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, name, country, hazard, glide, severity, severityHistory, areas, phase, status, declaredAt, closedAt
    }

    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent) {
        switch event {
        case .responseDeclared(let e):
            (id, name, country, hazard, glide, severity, declaredAt) = (e.response, e.name, e.country, e.hazard, e.glide, e.severity, e.declaredAt)
            severityHistory = [SeverityChange(severity: e.severity, at: e.declaredAt)]
        case .responseAmended(let e):
            if let v = e.name { name = v }
            if let v = e.glide { glide = v }
            if let v = e.country { country = v }
        case .responseSeverityChanged(let e):
            severity = e.severity
            severityHistory.append(SeverityChange(severity: e.severity, at: recorded.occurredAt))
        case .responseAreasAdded(let e):
            for p in e.pcodes where !areas.contains(p) { areas.append(p) }
        case .responsePhaseChanged(let e): phase = e.phase
        case .responseClosed: status = "closed"; closedAt = recorded.occurredAt
        default: return
        }
        if case .responseAmended = event { return }
        lastStepAt = max(lastStepAt ?? recorded.occurredAt, recorded.occurredAt, declaredAt)
    }
}

extension CoordinationService {
    /// The response exists and is not closed: new deployments, tasks and dispatches may reference it.
    func requireOpenResponse(_ id: String) async throws {
        let (state, version) = try await runner.load(Streams.response(id), as: ResponseState.self, fresh: true)
        guard version > 0 else { throw DomainError.notFound(kind: "response", id: id) }
        if state.status == "closed" { throw DomainError.rule("response \(id) is closed") }
    }

    /// A step of an open response's lifecycle, dated no earlier than the step before it.
    func responseStep<C: DomainCommand>(_ command: C, _ ctx: CommandContext, id: String, occurredAt: Date?, action: String,
                                        _ decide: @escaping @Sendable (ResponseState) throws -> [DomainEvent]) async throws -> CommandResult {
        try await step(command, ctx, kind: "response", id: id, stream: Streams.response(id), state: ResponseState.self, occurredAt: occurredAt) { state, _, at in
            if state.status == "closed" { throw DomainError.invalidTransition(kind: "response", id: id, current: "closed", action: action) }
            try Validator.requireOrder(at, notBefore: state.lastStepAt, state.lastStepAt == state.declaredAt ? "the declaration" : "the response's last change")
            return try decide(state)
        }
    }
}

/// Declares a response to an emergency.
public struct DeclareResponse: DomainCommand {
    public var createdStream: String? { id.map(Streams.response) }
    public static let name = "response.declare"
    public static let creates = true
    public var id: String?
    public var name: String
    public var country: String
    public var hazard: String
    public var glide: String?
    public var severity: String
    public var declaredAt: Date
    public var occurredAt: Date?

    public init(id: String? = nil, name: String, country: String, hazard: String, glide: String? = nil, severity: String,
                declaredAt: Date, occurredAt: Date? = nil) {
        (self.id, self.name, self.country, self.hazard, self.glide) = (id, name, country, hazard, glide)
        (self.severity, self.declaredAt, self.occurredAt) = (severity, declaredAt, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(name, "name")
        v.country(country, "country")
        v.oneOf(hazard, "hazard", ResponseVocabulary.hazards)
        if let glide, !Self.isGlide(glide) { v.fail("glide", "must be a GLIDE number such as TC-2026-000187-PHL") }
        v.oneOf(severity, "severity", ResponseVocabulary.severities)
        v.time(declaredAt, "declared_at")
        v.time(occurredAt, "occurred_at")
    }

    /// `XX-YYYY-NNNNNN-CCC`.
    static func isGlide(_ s: String) -> Bool {
        let p = s.split(separator: "-")
        return p.count == 4 && p[0].count == 2 && p[0].allSatisfy(\.isUppercase) && p[1].count == 4 && p[1].allSatisfy(\.isNumber)
            && p[2].count == 6 && p[2].allSatisfy(\.isNumber) && Countries.iso3.contains(String(p[3]))
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id ?? UUID.random().lowercasedString
        let e = ResponseDeclared(response: id, name: name, country: country, hazard: hazard, glide: glide, severity: severity, declaredAt: declaredAt)
        return try await s.create(self, ctx, kind: "response", id: id, stream: Streams.response(id), state: ResponseState.self,
                                  occurredAt: occurredAt ?? declaredAt) { .responseDeclared(e) }
    }
}

/// The response's severity changes (its history is kept).
public struct ChangeSeverity: DomainCommand {
    public static let name = "response.severity"
    public var id: String
    public var severity: String
    public var occurredAt: Date?

    public init(id: String, severity: String, occurredAt: Date? = nil) { (self.id, self.severity, self.occurredAt) = (id, severity, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.oneOf(severity, "severity", ResponseVocabulary.severities)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, severity) = (self.id, self.severity)
        return try await s.responseStep(self, ctx, id: id, occurredAt: occurredAt, action: "change the severity of") { state in
            if state.severity == severity { throw DomainError.rule("response \(id) is already \(severity)") }
            return [.responseSeverityChanged(ResponseSeverityChanged(response: id, severity: severity, previous: state.severity))]
        }
    }
}

/// Closes the response: it takes no new deployments, tasks or dispatches.
public struct CloseResponse: StepCommand {
    public static let name = "response.close"
    public var id: String
    public var occurredAt: Date?

    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await s.responseStep(self, ctx, id: id, occurredAt: occurredAt, action: "close") { _ in [.responseClosed(ResponseClosed(response: id))] }
    }
}

/// Adds affected areas (P-codes) to a response.
public struct AddAreas: DomainCommand {
    public static let name = "response.areas"
    public var id: String
    public var pcodes: [String]
    public var occurredAt: Date?

    public init(id: String, pcodes: [String], occurredAt: Date? = nil) { (self.id, self.pcodes, self.occurredAt) = (id, pcodes, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        if pcodes.isEmpty || pcodes.count > 500 { v.fail("pcodes", "must list 1 to 500 P-codes") }
        for (i, p) in pcodes.enumerated() { v.pcode(p, "pcodes[\(i)]") }
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, pcodes) = (self.id, self.pcodes)
        return try await s.responseStep(self, ctx, id: id, occurredAt: occurredAt, action: "add areas to") { state in
            let new = pcodes.filter { !state.areas.contains($0) }
            if new.isEmpty { throw DomainError.rule("response \(id) already lists these areas") }
            return [.responseAreasAdded(ResponseAreasAdded(response: id, pcodes: new))]
        }
    }
}

/// Moves a response to another phase.
public struct ChangePhase: DomainCommand {
    public static let name = "response.phase"
    public var id: String
    public var phase: String
    public var occurredAt: Date?

    public init(id: String, phase: String, occurredAt: Date? = nil) { (self.id, self.phase, self.occurredAt) = (id, phase, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.oneOf(phase, "phase", ResponseVocabulary.phases)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, phase) = (self.id, self.phase)
        return try await s.responseStep(self, ctx, id: id, occurredAt: occurredAt, action: "change the phase of") { state in
            if state.phase == phase { throw DomainError.rule("response \(id) is already in phase \(phase)") }
            return [.responsePhaseChanged(ResponsePhaseChanged(response: id, phase: phase, previous: state.phase))]
        }
    }
}

/// Corrects what the declaration said: its name, GLIDE number (which often arrives days later) or country.
public struct AmendResponse: DomainCommand {
    public static let name = "response.amend"
    public var id: String
    public var name: String?
    public var glide: String?
    public var country: String?
    public var reason: String?
    /// When the correction was made (default: when the command arrived).
    public var occurredAt: Date?

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(name, "name")
        if let glide, !DeclareResponse.isGlide(glide) { v.fail("glide", "must be a GLIDE number such as TC-2026-000187-PHL") }
        v.country(country, "country")
        v.text(reason, "reason", max: 1000)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let c = self
        return try await s.step(self, ctx, kind: "response", id: id, stream: Streams.response(id), state: ResponseState.self,
                                occurredAt: occurredAt) { r, version, at in
            try Validator.requireOrder(at, notBefore: r.declaredAt, "the declaration")
            let e = ResponseAmended(response: c.id, name: Amend.changed(c.name, r.name), glide: Amend.changed(c.glide, r.glide),
                                    country: Amend.changed(c.country, r.country), reason: c.reason, amends: version)
            try Amend.requireChange([e.name, e.glide, e.country])
            return [.responseAmended(e)]
        }
    }
}

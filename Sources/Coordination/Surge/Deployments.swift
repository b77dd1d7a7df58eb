import Events
import Foundation

/// One deployment, folded from `deployment-<id>`: its lifecycle and the business time of each step.
struct DeploymentState: AggregateState {
    var id = ""
    var person = ""
    var response = ""
    var profile = ""
    var cluster: String?
    var start = Day(daysSinceEpoch: 0)
    var end = Day(daysSinceEpoch: 0)
    var dutyStation: String?
    var status = ""
    var requestedAt: Date?
    var confirmedAt: Date?
    var arrivedAt: Date?
    var completedAt: Date?
    var cancelledAt: Date?
    var cancelReason: String?
    var extensions = 0
    /// The latest step, by name and business time: the next may not be dated before it.
    var lastStep: (name: String, at: Date)?

    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent) {
        let at = recorded.occurredAt
        switch event {
        case .deploymentRequested(let e):
            (id, person, response, profile, cluster, start, end, dutyStation) = (e.deployment, e.person, e.response, e.profile, e.cluster, e.start, e.end, e.dutyStation)
            (status, requestedAt) = ("requested", at)
            lastStep = ("the request", at)
        case .deploymentAmended(let e):
            if let v = e.start { start = v }
            if let v = e.end { end = v }
            if let v = e.dutyStation { dutyStation = v }
            if let v = e.profile { profile = v }
            if let v = e.cluster { cluster = v }
        case .deploymentConfirmed: (status, confirmedAt, lastStep) = ("confirmed", at, ("the confirmation", at))
        case .deploymentArrived: (status, arrivedAt, lastStep) = ("deployed", at, ("the arrival", at))
        case .deploymentExtended(let e): (end, extensions, lastStep) = (e.end, extensions + 1, ("the last extension", at))
        case .deploymentCompleted: (status, completedAt, lastStep) = ("completed", at, ("the completion", at))
        case .deploymentCancelled(let e): (status, cancelledAt, cancelReason, lastStep) = ("cancelled", at, e.reason, ("the cancellation", at))
        default: break
        }
    }

    /// Still deployed after its planned end: someone should extend or complete it.
    func overdueEnd(today: Day = Day(Date())) -> Bool { status == "deployed" && end < today }

    func requireAfterLastStep(_ at: Date) throws {
        try Validator.requireOrder(at, notBefore: lastStep?.at, lastStep?.name ?? "the request")
    }

    enum CodingKeys: String, CodingKey {
        case id, person, response, profile, cluster, start, end, dutyStation, status, requestedAt, confirmedAt, arrivedAt, completedAt
        case cancelledAt, cancelReason, extensions, overdueEnd
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(person, forKey: .person)
        try c.encode(response, forKey: .response)
        try c.encode(profile, forKey: .profile)
        try c.encodeIfPresent(cluster, forKey: .cluster)
        try c.encode(start, forKey: .start)
        try c.encode(end, forKey: .end)
        try c.encodeIfPresent(dutyStation, forKey: .dutyStation)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(requestedAt, forKey: .requestedAt)
        try c.encodeIfPresent(confirmedAt, forKey: .confirmedAt)
        try c.encodeIfPresent(arrivedAt, forKey: .arrivedAt)
        try c.encodeIfPresent(completedAt, forKey: .completedAt)
        try c.encodeIfPresent(cancelledAt, forKey: .cancelledAt)
        try c.encodeIfPresent(cancelReason, forKey: .cancelReason)
        try c.encode(extensions, forKey: .extensions)
        try c.encode(overdueEnd(), forKey: .overdueEnd)
    }
}

/// A deployment request: status `requested`. Refused when the person holds an overlapping deployment or is
/// unavailable; decided on the person's stream, so concurrent requests cannot both pass.
public struct RequestDeployment: DomainCommand {
    public var createdStream: String? { id.map(Streams.deployment) }
    public static let name = "deployment.request"
    public static let creates = true
    public var id: String?
    public var person: String
    public var response: String
    public var profile: String
    public var cluster: String?
    public var start: Day
    public var end: Day
    public var dutyStation: String?
    public var occurredAt: Date?

    public init(id: String? = nil, person: String, response: String, profile: String, cluster: String? = nil, start: Day, end: Day,
                dutyStation: String? = nil, occurredAt: Date? = nil) {
        (self.id, self.person, self.response, self.profile, self.cluster) = (id, person, response, profile, cluster)
        (self.start, self.end, self.dutyStation, self.occurredAt) = (start, end, dutyStation, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.id(person, "person")
        v.id(response, "response")
        v.oneOf(profile, "profile", SurgeVocabulary.profiles)
        v.oneOf(cluster, "cluster", Clusters.all)
        Self.validatePeriod(&v, start: start, end: end)
        v.text(dutyStation, "duty_station")
        v.time(occurredAt, "occurred_at")
    }

    static func validatePeriod(_ v: inout Validator, start: Day, end: Day) {
        if start > end { v.fail("end", "must not be before start") }
        if end.daysSinceEpoch - start.daysSinceEpoch > 366 { v.fail("end", "a deployment lasts at most a year") }
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id ?? UUID.random().lowercasedString
        let (personID, response, profile, cluster, start, end, dutyStation) = (person, self.response, self.profile, self.cluster, self.start, self.end, self.dutyStation)
        try await s.requireOpenResponse(response)
        let runner = s.runner
        let personStream = Streams.person(personID)
        let deployment = Streams.deployment(id)
        return try await runner.run(self, ctx: ctx, occurredAt: occurredAt, locks: [personStream, deployment], state: DeploymentState.self) {
            let (_, dv) = try await runner.load(deployment, as: DeploymentState.self)
            if dv > 0 { throw DomainError.alreadyExists(kind: "deployment", id: id) }
            let (p, pv) = try await runner.load(personStream, as: PersonState.self)
            guard pv > 0 else { throw DomainError.notFound(kind: "person", id: personID) }
            if !p.profiles.contains(profile) { throw DomainError.rule("person \(personID) is not rostered for profile \(profile)") }
            if let conflict = p.conflict(start: start, end: end) { throw conflict }
            return .init(appends: [
                (deployment, .noStream, [.deploymentRequested(DeploymentRequested(deployment: id, person: personID, response: response, profile: profile,
                                                                                  cluster: cluster, start: start, end: end, dutyStation: dutyStation))]),
                (personStream, .exact(pv), [.personBooked(PersonBooked(person: personID, deployment: id, start: start, end: end))]),
            ], primary: deployment, kind: "deployment", id: id, created: true)
        }
    }
}

/// The steps of a deployment's lifecycle.
struct DeploymentStep {
    /// A step on the deployment's stream alone, allowed from `allowed` states and dated after the last step.
    static func run<C: DomainCommand>(_ command: C, _ s: CoordinationService, _ ctx: CommandContext, id: String, occurredAt: Date?,
                                      action: String, from allowed: [String], event: @escaping @Sendable () -> DomainEvent) async throws -> CommandResult {
        try await s.step(command, ctx, kind: "deployment", id: id, stream: Streams.deployment(id), state: DeploymentState.self,
                         occurredAt: occurredAt) { d, _, at in
            guard allowed.contains(d.status) else {
                throw DomainError.invalidTransition(kind: "deployment", id: id, current: d.status, action: action)
            }
            try d.requireAfterLastStep(at)
            return [event()]
        }
    }

    /// Steps that may also change the person's booking (amend, extend, complete, cancel): both streams, both
    /// expected versions. `decide` gets the step's business time and returns the deployment's event and, when
    /// the booking changes, the person's.
    static func withBooking<C: DomainCommand>(
        _ command: C, _ s: CoordinationService, _ ctx: CommandContext, id: String, occurredAt: Date?,
        decide: @escaping @Sendable (DeploymentState, Int64, PersonState, Date) throws -> (DomainEvent, DomainEvent?)
    ) async throws -> CommandResult {
        try await s.pairedStep(command, ctx, kind: "deployment", id: id, stream: Streams.deployment(id), state: DeploymentState.self,
                               partner: { Streams.person($0.person) }, partnerState: PersonState.self, occurredAt: occurredAt) { d, dv, p, at in
            let (own, person) = try decide(d, dv, p, at)
            return ([own], person.map { [$0] } ?? [])
        }
    }
}

/// Corrects a deployment request: its dates and profile before arrival (the overlap rules apply to new
/// dates), its duty station and cluster until it ends.
public struct AmendDeployment: DomainCommand {
    public static let name = "deployment.amend"
    public var id: String
    public var start: Day?
    public var end: Day?
    public var dutyStation: String?
    public var profile: String?
    public var cluster: String?
    public var reason: String?
    /// When the correction was made (default: when the command arrived).
    public var occurredAt: Date?

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.time(occurredAt, "occurred_at")
        v.text(dutyStation, "duty_station")
        v.oneOf(profile, "profile", SurgeVocabulary.profiles)
        v.oneOf(cluster, "cluster", Clusters.all)
        if let start, let end { RequestDeployment.validatePeriod(&v, start: start, end: end) }
        v.text(reason, "reason", max: 1000)
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let c = self
        return try await DeploymentStep.withBooking(self, s, ctx, id: id, occurredAt: occurredAt) { d, version, p, at in
            guard !["completed", "cancelled"].contains(d.status) else {
                throw DomainError.invalidTransition(kind: "deployment", id: c.id, current: d.status, action: "amend")
            }
            try Validator.requireOrder(at, notBefore: d.requestedAt, "the request")
            let e = DeploymentAmended(deployment: c.id, start: Amend.changed(c.start, d.start), end: Amend.changed(c.end, d.end),
                                      dutyStation: Amend.changed(c.dutyStation, d.dutyStation), profile: Amend.changed(c.profile, d.profile),
                                      cluster: Amend.changed(c.cluster, d.cluster), reason: c.reason, amends: version)
            try Amend.requireChange([e.start, e.end, e.dutyStation, e.profile, e.cluster])
            if (e.start != nil || e.end != nil || e.profile != nil) && d.status == "deployed" {
                throw DomainError.rule("deployment \(c.id) has arrived: its dates change by extension or completion, its profile no longer")
            }
            if let profile = e.profile, !p.profiles.contains(profile) {
                throw DomainError.rule("person \(d.person) is not rostered for profile \(profile)")
            }
            guard e.start != nil || e.end != nil else { return (.deploymentAmended(e), nil) }
            let (start, end) = (e.start ?? d.start, e.end ?? d.end)
            var v = Validator()
            RequestDeployment.validatePeriod(&v, start: start, end: end)
            try v.check()
            if let conflict = p.conflict(start: start, end: end, except: c.id) { throw conflict }
            return (.deploymentAmended(e), .personBookingChanged(PersonBookingChanged(person: d.person, deployment: c.id, start: start, end: end)))
        }
    }
}

/// A deployment step with only an id and an optional `occurred_at`.
public protocol DeploymentStepCommand: StepCommand {}

public struct ConfirmDeployment: DeploymentStepCommand {
    public static let name = "deployment.confirm"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await DeploymentStep.run(self, s, ctx, id: id, occurredAt: occurredAt, action: "confirm", from: ["requested"]) {
            .deploymentConfirmed(DeploymentConfirmed(deployment: id))
        }
    }
}

/// The person is on the ground (status `deployed`).
public struct ArriveDeployment: DeploymentStepCommand {
    public static let name = "deployment.arrive"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await DeploymentStep.run(self, s, ctx, id: id, occurredAt: occurredAt, action: "arrive", from: ["confirmed"]) {
            .deploymentArrived(DeploymentArrived(deployment: id))
        }
    }
}

/// The mission ended. Before its planned end, the rest of the booked dates are freed for another deployment.
public struct CompleteDeployment: DeploymentStepCommand {
    public static let name = "deployment.complete"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await DeploymentStep.withBooking(self, s, ctx, id: id, occurredAt: occurredAt) { d, _, _, at in
            guard d.status == "deployed" else { throw DomainError.invalidTransition(kind: "deployment", id: id, current: d.status, action: "complete") }
            try d.requireAfterLastStep(at)
            let last = max(d.start, Day(at))
            let freed: DomainEvent? = last < d.end
                ? .personBookingChanged(PersonBookingChanged(person: d.person, deployment: id, start: d.start, end: last)) : nil
            return (.deploymentCompleted(DeploymentCompleted(deployment: id)), freed)
        }
    }
}

/// Before arrival only, with an optional reason; frees the person's dates.
public struct CancelDeployment: DomainCommand {
    public static let name = "deployment.cancel"
    public var id: String
    public var reason: String?
    public var occurredAt: Date?
    public init(id: String, reason: String? = nil, occurredAt: Date? = nil) { (self.id, self.reason, self.occurredAt) = (id, reason, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(reason, "reason", max: 1000)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, reason) = (self.id, self.reason)
        return try await DeploymentStep.withBooking(self, s, ctx, id: id, occurredAt: occurredAt) { d, _, p, at in
            guard ["requested", "confirmed"].contains(d.status) else {
                throw DomainError.invalidTransition(kind: "deployment", id: id, current: d.status, action: "cancel")
            }
            try d.requireAfterLastStep(at)
            return (.deploymentCancelled(DeploymentCancelled(deployment: id, reason: reason)),
                    .personBookingReleased(PersonBookingReleased(person: p.id, deployment: id)))
        }
    }
}

/// Only while deployed, only later, never into another booking.
public struct ExtendDeployment: DomainCommand {
    public static let name = "deployment.extend"
    public var id: String
    public var end: Day
    public var occurredAt: Date?

    public init(id: String, end: Day, occurredAt: Date? = nil) { (self.id, self.end, self.occurredAt) = (id, end, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, end) = (self.id, self.end)
        return try await DeploymentStep.withBooking(self, s, ctx, id: id, occurredAt: occurredAt) { d, _, p, at in
            guard d.status == "deployed" else {
                throw DomainError.invalidTransition(kind: "deployment", id: id, current: d.status, action: "extend")
            }
            try d.requireAfterLastStep(at)
            guard end > d.end else { throw DomainError.invalid("end", "must be after the current end \(d.end)") }
            if end.daysSinceEpoch - d.start.daysSinceEpoch > 366 { throw DomainError.invalid("end", "a deployment lasts at most a year") }
            if let conflict = p.conflict(start: d.end.adding(days: 1), end: end, except: id) { throw conflict }
            return (.deploymentExtended(DeploymentExtended(deployment: id, end: end, previousEnd: d.end)),
                    .personBookingExtended(PersonBookingExtended(person: p.id, deployment: id, end: end)))
        }
    }
}

import Events
import Foundation

public enum SurgeVocabulary {
    public static let profiles = ["CCCM", "SHELTER_NFI", "WASH", "DTM", "IM", "PROTECTION", "GBV", "LOGISTICS", "HEALTH",
                                  "MHPSS", "COORDINATION", "CBI"]
}

public enum Clusters {
    /// Global cluster codes, with protection's areas of responsibility.
    public static let all = ["CCM", "SHL", "WSH", "HEA", "PRO", "PRO-GBV", "PRO-CPN", "PRO-HLP", "PRO-MIN", "LOG", "FSC",
                             "NUT", "EDU", "ERY", "TEL"]
}

struct PersonState: AggregateState {
    struct Period: Codable, Sendable { var from: Day; var to: Day; var reason: String? }
    struct Booking: Codable, Sendable { var deployment: String; var start: Day; var end: Day }
    var id = ""
    var name = ""
    var email: String?
    var profiles: [String] = []
    var homeCountry: String?
    var unavailability: [Period] = []
    /// Deployments not cancelled.
    var bookings: [Booking] = []

    mutating func apply(_ payload: any EventPayload, _ event: RecordedEvent) {
        switch payload {
        case let e as PersonRegistered: (id, name, email, profiles, homeCountry) = (e.person, e.name, e.email, e.profiles, e.homeCountry)
        case let e as PersonUnavailabilityAdded: unavailability.append(Period(from: e.from, to: e.to, reason: e.reason))
        case let e as PersonBooked: bookings.append(Booking(deployment: e.deployment, start: e.start, end: e.end))
        case let e as PersonBookingExtended:
            if let i = bookings.firstIndex(where: { $0.deployment == e.deployment }) { bookings[i].end = e.end }
        case let e as PersonBookingReleased: bookings.removeAll { $0.deployment == e.deployment }
        default: break
        }
    }

    /// The first booking or unavailability overlapping [start, end] (inclusive), other than `except`.
    func conflict(start: Day, end: Day, except: String? = nil) -> DomainError? {
        if let b = bookings.first(where: { $0.deployment != except && $0.start <= end && start <= $0.end }) {
            return .deploymentOverlap(person: id, conflicting: b.deployment, kind: "deployment")
        }
        if let u = unavailability.first(where: { $0.from <= end && start <= $0.to }) {
            return .deploymentOverlap(person: id, conflicting: "unavailable \(u.from) to \(u.to)", kind: "unavailability")
        }
        return nil
    }
}

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
    var arrivedAt: Date?

    mutating func apply(_ payload: any EventPayload, _ event: RecordedEvent) {
        switch payload {
        case let e as DeploymentRequested:
            (id, person, response, profile, cluster, start, end, dutyStation) = (e.deployment, e.person, e.response, e.profile, e.cluster, e.start, e.end, e.dutyStation)
            status = "requested"
            requestedAt = event.occurredAt
        case is DeploymentConfirmed: status = "confirmed"
        case is DeploymentArrived: status = "deployed"; arrivedAt = event.occurredAt
        case let e as DeploymentExtended: end = e.end
        case is DeploymentCompleted: status = "completed"
        case is DeploymentCancelled: status = "cancelled"
        default: break
        }
    }
}

/// `POST /v1/people`: a roster member.
public struct RegisterPerson: DomainCommand {
    public var createdStream: String? { Streams.person(id) }
    public static let name = "person.register"
    public static let fields = ["id", "name", "email", "profiles", "home_country", "occurred_at"]
    public var id: String
    public var name: String
    public var email: String?
    public var profiles: [String]
    public var homeCountry: String?
    public var occurredAt: Date?

    public init(id: String, name: String, email: String? = nil, profiles: [String], homeCountry: String? = nil, occurredAt: Date? = nil) {
        (self.id, self.name, self.email, self.profiles, self.homeCountry, self.occurredAt) = (id, name, email, profiles, homeCountry, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(name, "name")
        v.email(email, "email")
        if profiles.isEmpty { v.fail("profiles", "must list at least one profile") }
        for (i, p) in profiles.enumerated() { v.oneOf(p, "profiles[\(i)]", SurgeVocabulary.profiles) }
        if Set(profiles).count != profiles.count { v.fail("profiles", "lists a profile twice") }
        v.country(homeCountry, "home_country")
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let e = PersonRegistered(person: id, name: name, email: email, profiles: profiles, homeCountry: homeCountry)
        return try await s.create(self, ctx, kind: "person", id: id, stream: Streams.person(id), state: PersonState.self, occurredAt: occurredAt) { e }
    }
}

/// `POST /v1/people/{id}/unavailability`: refused when it overlaps a deployment the person holds.
public struct AddUnavailability: DomainCommand {
    public static let name = "person.unavailability"
    public static let fields = ["id", "from", "to", "reason", "occurred_at"]
    public var id: String
    public var from: Day
    public var to: Day
    public var reason: String?
    public var occurredAt: Date?

    public init(id: String, from: Day, to: Day, reason: String? = nil, occurredAt: Date? = nil) {
        (self.id, self.from, self.to, self.reason, self.occurredAt) = (id, from, to, reason, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        if from > to { v.fail("to", "must not be before from") }
        v.text(reason, "reason", max: 200)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, from, to, reason) = (self.id, self.from, self.to, self.reason)
        return try await s.step(self, ctx, kind: "person", id: id, stream: Streams.person(id), state: PersonState.self, occurredAt: occurredAt) { person, _ in
            if let b = person.bookings.first(where: { $0.start <= to && from <= $0.end }) {
                throw DomainError.deploymentOverlap(person: id, conflicting: b.deployment, kind: "deployment")
            }
            return [PersonUnavailabilityAdded(person: id, from: from, to: to, reason: reason)]
        }
    }
}

/// `POST /v1/deployments`: status `requested`. Refused when the person holds an overlapping deployment
/// or is unavailable; decided on the person's stream, so concurrent requests cannot both pass.
public struct RequestDeployment: DomainCommand {
    public var createdStream: String? { id.map(Streams.deployment) }
    public static let name = "deployment.request"
    public static let fields = ["id", "person", "response", "profile", "cluster", "start", "end", "duty_station", "occurred_at"]
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
        if start > end { v.fail("end", "must not be before start") }
        if end.daysSinceEpoch - start.daysSinceEpoch > 366 { v.fail("end", "a deployment lasts at most a year") }
        v.text(dutyStation, "duty_station")
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id ?? UUID.random().lowercasedString
        let (personID, response, profile, cluster, start, end, dutyStation) = (person, self.response, self.profile, self.cluster, self.start, self.end, self.dutyStation)
        try await s.requireOpenResponse(response)
        let runner = s.runner
        let personStream = Streams.person(personID)
        let deployment = Streams.deployment(id)
        return try await runner.run(command: Self.name, body: CoordinationService.canonical(self), ctx: ctx, occurredAt: occurredAt,
                                    locks: [personStream, deployment], state: DeploymentState.self) {
            let (_, dv) = try await runner.load(deployment, as: DeploymentState.self)
            if dv > 0 { throw DomainError.alreadyExists(kind: "deployment", id: id) }
            let (p, pv) = try await runner.load(personStream, as: PersonState.self)
            guard pv > 0 else { throw DomainError.notFound(kind: "person", id: personID) }
            if !p.profiles.contains(profile) { throw DomainError.rule("person \(personID) is not rostered for profile \(profile)") }
            if let conflict = p.conflict(start: start, end: end) { throw conflict }
            return .init(appends: [
                (deployment, .noStream, [DeploymentRequested(deployment: id, person: personID, response: response, profile: profile,
                                                             cluster: cluster, start: start, end: end, dutyStation: dutyStation)]),
                (personStream, .exact(pv), [PersonBooked(person: personID, deployment: id, start: start, end: end)]),
            ], primary: deployment, kind: "deployment", id: id, created: true)
        }
    }
}

/// The steps of a deployment's lifecycle that touch only its own stream.
struct DeploymentStep {
    static func run(_ command: some DomainCommand, _ s: CoordinationService, _ ctx: CommandContext, id: String, occurredAt: Date?,
                    action: String, from allowed: [String], event: @escaping @Sendable () -> any EventPayload) async throws -> CommandResult {
        try await s.step(command, ctx, kind: "deployment", id: id, stream: Streams.deployment(id), state: DeploymentState.self,
                         occurredAt: occurredAt) { d, _ in
            guard allowed.contains(d.status) else {
                throw DomainError.invalidTransition(kind: "deployment", id: id, current: d.status, action: action)
            }
            return [event()]
        }
    }

    /// Steps that also change the person's booking (extend, cancel): both streams, both expected versions.
    static func withBooking(_ command: some DomainCommand, _ s: CoordinationService, _ ctx: CommandContext, id: String, occurredAt: Date?,
                            decide: @escaping @Sendable (DeploymentState, PersonState) throws -> (any EventPayload, any EventPayload)) async throws -> CommandResult {
        let runner = s.runner
        let deployment = Streams.deployment(id)
        let (initial, iv) = try await runner.load(deployment, as: DeploymentState.self)
        guard iv > 0 else { throw DomainError.notFound(kind: "deployment", id: id) }
        let personStream = Streams.person(initial.person)
        return try await runner.run(command: type(of: command).name, body: CoordinationService.canonical(command), ctx: ctx,
                                    occurredAt: occurredAt, locks: [personStream, deployment], state: DeploymentState.self) {
            let (d, dv) = try await runner.load(deployment, as: DeploymentState.self)
            try CoordinationService.checkIfMatch(ctx, kind: "deployment", id: id, version: dv)
            let (p, pv) = try await runner.load(personStream, as: PersonState.self)
            let (onDeployment, onPerson) = try decide(d, p)
            return .init(appends: [(deployment, .exact(dv), [onDeployment]), (personStream, .exact(pv), [onPerson])],
                         primary: deployment, kind: "deployment", id: id, created: false)
        }
    }
}

/// A deployment step with only an id and an optional `occurred_at`.
public protocol DeploymentStepCommand: StepCommand {}

/// `POST /v1/deployments/{id}/confirm`
public struct ConfirmDeployment: DeploymentStepCommand {
    public static let name = "deployment.confirm"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await DeploymentStep.run(self, s, ctx, id: id, occurredAt: occurredAt, action: "confirm", from: ["requested"]) {
            DeploymentConfirmed(deployment: id)
        }
    }
}

/// `POST /v1/deployments/{id}/arrive`: the person is on the ground (status `deployed`).
public struct ArriveDeployment: DeploymentStepCommand {
    public static let name = "deployment.arrive"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await DeploymentStep.run(self, s, ctx, id: id, occurredAt: occurredAt, action: "arrive", from: ["confirmed"]) {
            DeploymentArrived(deployment: id)
        }
    }
}

/// `POST /v1/deployments/{id}/complete`
public struct CompleteDeployment: DeploymentStepCommand {
    public static let name = "deployment.complete"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await DeploymentStep.run(self, s, ctx, id: id, occurredAt: occurredAt, action: "complete", from: ["deployed"]) {
            DeploymentCompleted(deployment: id)
        }
    }
}

/// `POST /v1/deployments/{id}/cancel`: before arrival only; frees the person's dates.
public struct CancelDeployment: DeploymentStepCommand {
    public static let name = "deployment.cancel"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await DeploymentStep.withBooking(self, s, ctx, id: id, occurredAt: occurredAt) { d, p in
            guard ["requested", "confirmed"].contains(d.status) else {
                throw DomainError.invalidTransition(kind: "deployment", id: id, current: d.status, action: "cancel")
            }
            return (DeploymentCancelled(deployment: id), PersonBookingReleased(person: p.id, deployment: id))
        }
    }
}

/// `POST /v1/deployments/{id}/extend`: only while deployed, only later, never into another booking.
public struct ExtendDeployment: DomainCommand {
    public static let name = "deployment.extend"
    public static let fields = ["id", "end", "occurred_at"]
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
        return try await DeploymentStep.withBooking(self, s, ctx, id: id, occurredAt: occurredAt) { d, p in
            guard d.status == "deployed" else {
                throw DomainError.invalidTransition(kind: "deployment", id: id, current: d.status, action: "extend")
            }
            guard end > d.end else { throw DomainError.invalid("end", "must be after the current end \(d.end)") }
            if end.daysSinceEpoch - d.start.daysSinceEpoch > 366 { throw DomainError.invalid("end", "a deployment lasts at most a year") }
            if let conflict = p.conflict(start: d.end.adding(days: 1), end: end, except: id) { throw conflict }
            return (DeploymentExtended(deployment: id, end: end, previousEnd: d.end), PersonBookingExtended(person: p.id, deployment: id, end: end))
        }
    }
}

import Events
import Foundation

/// A roster member, folded from `person-<id>`: profile, unavailability and bookings. "No double booking" is
/// decided here: every deployment request, date change and unavailability is checked against `bookings`.
struct PersonState: AggregateState {
    struct Period: Codable, Sendable, Equatable { var from: Day; var to: Day; var reason: String? }
    struct Booking: Codable, Sendable, Equatable { var deployment: String; var start: Day; var end: Day }
    var id = ""
    var name = ""
    var email: String?
    var profiles: [String] = []
    var homeCountry: String?
    var unavailability: [Period] = []
    /// Deployments not cancelled, with the dates they hold (cut short by an early completion).
    var bookings: [Booking] = []
    /// When the person was registered (business time): a correction is not dated before it.
    var registeredAt: Date?
    /// Their personal data was erased: nothing more of it is recorded.
    var erased = false

    enum CodingKeys: String, CodingKey { case id, name, email, profiles, homeCountry, unavailability, bookings }

    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent) {
        switch event {
        case .personRegistered(let e):
            (id, name, email, profiles, homeCountry, registeredAt) = (e.person, e.name, e.email, e.profiles, e.homeCountry, recorded.occurredAt)
        case .personAmended(let e):
            if let v = e.name { name = v }
            if let v = e.email { email = v }
            if let v = e.profiles { profiles = v }
            if let v = e.homeCountry { homeCountry = v }
        case .personUnavailabilityAdded(let e): unavailability.append(Period(from: e.from, to: e.to, reason: e.reason))
        case .personBooked(let e): bookings.append(Booking(deployment: e.deployment, start: e.start, end: e.end))
        case .personBookingExtended(let e):
            if let i = bookings.firstIndex(where: { $0.deployment == e.deployment }) { bookings[i].end = e.end }
        case .personBookingChanged(let e):
            if let i = bookings.firstIndex(where: { $0.deployment == e.deployment }) { (bookings[i].start, bookings[i].end) = (e.start, e.end) }
        case .personBookingReleased(let e): bookings.removeAll { $0.deployment == e.deployment }
        case .personErased:
            erased = true
            name = PersonalData.erasedMark
            if email != nil { email = PersonalData.erasedMark }
            for i in unavailability.indices where unavailability[i].reason != nil { unavailability[i].reason = PersonalData.erasedMark }
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

/// A roster member.
public struct RegisterPerson: DomainCommand {
    public var createdStream: String? { Streams.person(id) }
    public static let name = "person.register"
    public static let creates = true
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
        Self.validateProfiles(&v, profiles)
        v.country(homeCountry, "home_country")
        v.time(occurredAt, "occurred_at")
    }

    static func validateProfiles(_ v: inout Validator, _ profiles: [String]?) {
        guard let profiles else { return }
        if profiles.isEmpty { v.fail("profiles", "must list at least one profile") }
        for (i, p) in profiles.enumerated() { v.oneOf(p, "profiles[\(i)]", SurgeVocabulary.profiles) }
        if Set(profiles).count != profiles.count { v.fail("profiles", "lists a profile twice") }
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let e = PersonRegistered(person: id, name: name, email: email, profiles: profiles, homeCountry: homeCountry)
        return try await s.create(self, ctx, kind: "person", id: id, stream: Streams.person(id), state: PersonState.self,
                                  occurredAt: occurredAt) { .personRegistered(e) }
    }
}

/// Corrects a roster member's name, email, profiles or home country.
public struct AmendPerson: DomainCommand {
    public static let name = "person.amend"
    public var id: String
    public var name: String?
    public var email: String?
    public var profiles: [String]?
    public var homeCountry: String?
    public var reason: String?
    /// When the correction was made (default: when the command arrived).
    public var occurredAt: Date?

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(name, "name")
        v.email(email, "email")
        RegisterPerson.validateProfiles(&v, profiles)
        v.country(homeCountry, "home_country")
        v.text(reason, "reason", max: 1000)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let c = self
        return try await s.step(self, ctx, kind: "person", id: id, stream: Streams.person(id), state: PersonState.self, occurredAt: occurredAt) { p, version, at in
            try Validator.requireOrder(at, notBefore: p.registeredAt, "the registration")
            if p.erased && (c.name != nil || c.email != nil || c.reason != nil) { throw PersonalData.erasedRefusal(c.id) }
            let e = PersonAmended(person: c.id, name: Amend.changed(c.name, p.name), email: Amend.changed(c.email, p.email),
                                  profiles: Amend.changed(c.profiles, p.profiles), homeCountry: Amend.changed(c.homeCountry, p.homeCountry),
                                  reason: c.reason, amends: version)
            try Amend.requireChange([e.name, e.email, e.profiles, e.homeCountry])
            return [.personAmended(e)]
        }
    }
}

/// A period a roster member is not available (leave, another assignment); refused when it overlaps a
/// deployment the person holds.
public struct AddUnavailability: DomainCommand {
    public static let name = "person.unavailability"
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
        if to.daysSinceEpoch - from.daysSinceEpoch > 3 * 366 { v.fail("to", "an unavailability lasts at most three years") }
        v.text(reason, "reason", max: 200)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, from, to, reason) = (self.id, self.from, self.to, self.reason)
        return try await s.step(self, ctx, kind: "person", id: id, stream: Streams.person(id), state: PersonState.self, occurredAt: occurredAt) { person, _, _ in
            if person.erased && reason != nil { throw PersonalData.erasedRefusal(id) }
            if let b = person.bookings.first(where: { $0.start <= to && from <= $0.end }) {
                throw DomainError.deploymentOverlap(person: id, conflicting: b.deployment, kind: "deployment")
            }
            return [.personUnavailabilityAdded(PersonUnavailabilityAdded(person: id, from: from, to: to, reason: reason))]
        }
    }
}

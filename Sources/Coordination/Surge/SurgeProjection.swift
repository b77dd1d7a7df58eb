import Events
import Foundation

/// Roster members, their unavailability, and deployments: who is where, arriving and leaving, unfilled
/// requests, who is free for a period.
public struct SurgeProjection: ReadModelProjection {
    public init() {}
    public let name = "surge"
    /// 2: amendments, unavailability, booked dates (early completion frees the rest), profiles as jsonb.
    public let version = 2
    public let eventTypes: [String]? = [
        PersonRegistered.eventType, PersonAmended.eventType, PersonUnavailabilityAdded.eventType,
        DeploymentRequested.eventType, DeploymentAmended.eventType, DeploymentConfirmed.eventType, DeploymentArrived.eventType,
        DeploymentExtended.eventType, DeploymentCompleted.eventType, DeploymentCancelled.eventType,
    ]

    typealias M = SurgeReadModel
    static let people = ReadModelTable<M.Person>("rm_people", key: "id", empty: { M.Person() }, [
        Column("id", \.id), Column("name", \.name), Column("email", \.email), Column("profiles", \.profiles),
        Column("home_country", \.homeCountry),
    ])
    static let unavailability = ReadModelTable<M.Unavailability>("rm_unavailability", key: "id", indexes: ["(person)"],
                                                                 empty: { M.Unavailability() }, [
        Column("id", \.id), Column("person", \.person), Column("from_date", \.from), Column("to_date", \.to), Column("reason", \.reason),
    ])
    static let deployments = ReadModelTable<M.Deployment>(
        "rm_deployments", key: "id", indexes: ["(response, status)", "(person)", "(start_date, end_date)"], empty: { M.Deployment() }, [
            Column("id", \.id), Column("person", \.person), Column("response", \.response), Column("profile", \.profile),
            Column("cluster", \.cluster), Column("start_date", \.start), Column("end_date", \.end), Column("duty_station", \.dutyStation),
            Column("status", \.status), Column("requested_at", \.requestedAt), Column("confirmed_at", \.confirmedAt),
            Column("arrived_at", \.arrivedAt), Column("completed_at", \.completedAt), Column("cancelled_at", \.cancelledAt),
            Column("cancel_reason", \.cancelReason), Column("extensions", \.extensions), Column("booked_until", derived: \.bookedUntil),
            Column("updated_position", \.updatedPosition),
        ])

    var readModelTables: [any AnyReadModelTable] { [Self.people, Self.unavailability, Self.deployments] }

    public func makeState() -> any ProjectionState { SurgeReadModel() }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = SurgeReadModel()
        for p in try Self.people.load(c, suffix: s) { m.people[p.id] = p }
        for u in try Self.unavailability.load(c, suffix: s) { m.unavailability[u.id] = u }
        for d in try Self.deployments.load(c, suffix: s) { m.deployments[d.id] = d }
        return m
    }
}

public final class SurgeReadModel: DecodingProjectionState {
    public struct Person: Sendable, Equatable {
        public var id = "", name = ""
        public var email: String?
        public var profiles: [String] = []
        public var homeCountry: String?
    }

    public struct Unavailability: Sendable, Equatable {
        /// The id of the event that recorded it.
        public var id = "", person = ""
        public var from = Day(daysSinceEpoch: 0), to = Day(daysSinceEpoch: 0)
        public var reason: String?
    }

    public struct Deployment: Sendable, Equatable {
        public var id = "", person = "", response = "", profile = ""
        public var cluster: String?
        public var start = Day(daysSinceEpoch: 0), end = Day(daysSinceEpoch: 0)
        public var dutyStation: String?
        public var status = ""
        public var requestedAt = Date(timeIntervalSince1970: 0)
        public var confirmedAt, arrivedAt, completedAt, cancelledAt: Date?
        public var cancelReason: String?
        public var extensions = 0
        public var updatedPosition: Int64 = 0

        /// The last day the person is booked by it: none once cancelled; the completion day when it ended early.
        public var bookedUntil: Day? {
            switch status {
            case "cancelled": return nil
            case "completed": return completedAt.map { min(end, max(start, Day($0))) } ?? end
            default: return end
            }
        }

        /// On the ground on `day`: from arrival to completion, or to the planned end while deployed.
        public func isActive(on day: Day) -> Bool {
            guard let arrivedAt, Day(arrivedAt) <= day else { return false }
            switch status {
            case "deployed": return day <= end
            case "completed": return completedAt.map { day <= Day($0) } ?? false
            default: return false
            }
        }
    }

    public var people: [String: Person] = [:]
    public var unavailability: [String: Unavailability] = [:]
    public var deployments: [String: Deployment] = [:]
    private var dirtyPeople = DirtyKeys(), dirtyUnavailability = DirtyKeys(), dirtyDeployments = DirtyKeys()

    public init() {}

    public static func decode(_ event: RecordedEvent) throws -> DomainEvent { try EventCodec.decode(event) }

    public func apply(_ domainEvent: DomainEvent, _ event: RecordedEvent) throws {
        let at = event.occurredAt
        func update(_ id: String, _ change: (inout Deployment) -> Void) throws {
            guard var d = deployments[id] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            change(&d)
            d.updatedPosition = event.position
            deployments[id] = d
            dirtyDeployments.touch(id)
        }
        switch domainEvent {
        case .personRegistered(let e):
            people[e.person] = Person(id: e.person, name: e.name, email: e.email, profiles: e.profiles, homeCountry: e.homeCountry)
            dirtyPeople.touch(e.person)
        case .personAmended(let e):
            guard var p = people[e.person] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            if let v = e.name { p.name = v }
            if let v = e.email { p.email = v }
            if let v = e.profiles { p.profiles = v }
            if let v = e.homeCountry { p.homeCountry = v }
            people[e.person] = p
            dirtyPeople.touch(e.person)
        case .personErased(let e):
            if var p = people[e.person] {
                p.name = PersonalData.erasedMark
                if p.email != nil { p.email = PersonalData.erasedMark }
                people[e.person] = p
                dirtyPeople.touch(e.person)
            }
            for (id, u) in unavailability where u.person == e.person && u.reason != nil {
                unavailability[id]?.reason = PersonalData.erasedMark
                dirtyUnavailability.touch(id)
            }
        case .personUnavailabilityAdded(let e):
            let id = event.id.lowercasedString
            unavailability[id] = Unavailability(id: id, person: e.person, from: e.from, to: e.to, reason: e.reason)
            dirtyUnavailability.touch(id)
        case .deploymentRequested(let e):
            deployments[e.deployment] = Deployment(id: e.deployment, person: e.person, response: e.response, profile: e.profile, cluster: e.cluster,
                                                   start: e.start, end: e.end, dutyStation: e.dutyStation, status: "requested",
                                                   requestedAt: at, updatedPosition: event.position)
            dirtyDeployments.touch(e.deployment)
        case .deploymentAmended(let e):
            try update(e.deployment) { d in
                if let v = e.start { d.start = v }
                if let v = e.end { d.end = v }
                if let v = e.dutyStation { d.dutyStation = v }
                if let v = e.profile { d.profile = v }
                if let v = e.cluster { d.cluster = v }
            }
        case .deploymentConfirmed(let e): try update(e.deployment) { $0.status = "confirmed"; $0.confirmedAt = at }
        case .deploymentArrived(let e): try update(e.deployment) { $0.status = "deployed"; $0.arrivedAt = at }
        case .deploymentExtended(let e): try update(e.deployment) { $0.end = e.end; $0.extensions += 1 }
        case .deploymentCompleted(let e): try update(e.deployment) { $0.status = "completed"; $0.completedAt = at }
        case .deploymentCancelled(let e): try update(e.deployment) { $0.status = "cancelled"; $0.cancelledAt = at; $0.cancelReason = e.reason }
        default: break
        }
    }

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        typealias P = SurgeProjection
        try dirtyPeople.flush(P.people, c, suffix: s, rows: people)
        try dirtyUnavailability.flush(P.unavailability, c, suffix: s, rows: unavailability)
        try dirtyDeployments.flush(P.deployments, c, suffix: s, rows: deployments)
        clearDirty()
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        typealias P = SurgeProjection
        try P.people.copy(c, suffix: s, rows: people.values)
        try P.unavailability.copy(c, suffix: s, rows: unavailability.values)
        try P.deployments.copy(c, suffix: s, rows: deployments.values)
        clearDirty()
    }

    private func clearDirty() { dirtyPeople.clear(); dirtyUnavailability.clear(); dirtyDeployments.clear() }
}

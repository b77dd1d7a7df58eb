import Events
import Foundation

// Events of a person's stream, `person-<id>` (profile, unavailability and bookings: "no double booking" is a
// per-stream invariant), and of a deployment's, `deployment-<id>`.

public struct PersonRegistered: EventPayload {
    public static let eventType = "person.registered"
    public var person: String
    public var name: String
    public var email: String?
    public var profiles: [String]
    public var homeCountry: String?
}

/// A correction of a roster member's registration: the fields present replace the registered ones.
public struct PersonAmended: EventPayload {
    public static let eventType = "person.amended"
    public var person: String
    public var name: String?
    public var email: String?
    public var profiles: [String]?
    public var homeCountry: String?
    public var reason: String?
    public var amends: Int64
}

public struct PersonUnavailabilityAdded: EventPayload {
    public static let eventType = "person.unavailability_added"
    public var person: String
    public var from: Day
    public var to: Day
    public var reason: String?
}

/// A person's personal data was erased (docs/PRIVACY.md, "Erasure"): every earlier event of theirs that held it now
/// holds `[erased]` in its place. `redactions` lists them with the digest of their redacted content, which is how
/// `coordctl verify` still proves the log; `reason` is why (a request's reference, not the data).
public struct PersonErased: EventPayload {
    public static let eventType = "person.erased"
    public struct Redaction: Codable, Sendable, Equatable { public var position: Int64; public var digest: String }
    public var person: String
    public var reason: String
    public var redactions: [Redaction]
}

public struct PersonBooked: EventPayload {
    public static let eventType = "person.booked"
    public var person: String
    public var deployment: String
    public var start: Day
    public var end: Day
}

public struct PersonBookingExtended: EventPayload {
    public static let eventType = "person.booking_extended"
    public var person: String
    public var deployment: String
    public var end: Day
}

/// A booking's dates changed: amended before arrival, or cut short by an early completion (the rest is free).
public struct PersonBookingChanged: EventPayload {
    public static let eventType = "person.booking_changed"
    public var person: String
    public var deployment: String
    public var start: Day
    public var end: Day
}

public struct PersonBookingReleased: EventPayload {
    public static let eventType = "person.booking_released"
    public var person: String
    public var deployment: String
}

public struct DeploymentRequested: EventPayload {
    public static let eventType = "deployment.requested"
    public var deployment: String
    public var person: String
    public var response: String
    public var profile: String
    public var cluster: String?
    public var start: Day
    public var end: Day
    public var dutyStation: String?
}

/// A correction of a request before arrival (a flight delay moves the start): the fields present replace the
/// requested ones; `amends` is the deployment's stream version it was decided on.
public struct DeploymentAmended: EventPayload {
    public static let eventType = "deployment.amended"
    public var deployment: String
    public var start: Day?
    public var end: Day?
    public var dutyStation: String?
    public var profile: String?
    public var cluster: String?
    public var reason: String?
    public var amends: Int64
}

public struct DeploymentConfirmed: EventPayload {
    public static let eventType = "deployment.confirmed"
    public var deployment: String
}

public struct DeploymentArrived: EventPayload {
    public static let eventType = "deployment.arrived"
    public var deployment: String
}

public struct DeploymentExtended: EventPayload {
    public static let eventType = "deployment.extended"
    public var deployment: String
    public var end: Day
    public var previousEnd: Day
}

public struct DeploymentCompleted: EventPayload {
    public static let eventType = "deployment.completed"
    public var deployment: String
}

public struct DeploymentCancelled: EventPayload {
    public static let eventType = "deployment.cancelled"
    public var deployment: String
    public var reason: String?
}

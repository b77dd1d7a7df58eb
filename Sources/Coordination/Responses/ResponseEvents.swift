import Events
import Foundation

// Events of a response's stream, `response-<id>`.

public struct ResponseDeclared: EventPayload {
    public static let eventType = "response.declared"
    public var response: String
    public var name: String
    public var country: String
    public var hazard: String
    public var glide: String?
    public var severity: String
    public var declaredAt: Date
}

/// A correction of what the declaration said (a GLIDE number that arrives on day 3, a misspelt name). Only
/// the fields present change; `amends` is the stream version the correction was decided on.
public struct ResponseAmended: EventPayload {
    public static let eventType = "response.amended"
    public var response: String
    public var name: String?
    public var glide: String?
    public var country: String?
    public var reason: String?
    public var amends: Int64
}

public struct ResponseSeverityChanged: EventPayload {
    public static let eventType = "response.severity_changed"
    public var response: String
    public var severity: String
    public var previous: String
}

public struct ResponseAreasAdded: EventPayload {
    public static let eventType = "response.areas_added"
    public var response: String
    public var pcodes: [String]
}

public struct ResponsePhaseChanged: EventPayload {
    public static let eventType = "response.phase_changed"
    public var response: String
    public var phase: String
    public var previous: String
}

public struct ResponseClosed: EventPayload {
    public static let eventType = "response.closed"
    public var response: String
}

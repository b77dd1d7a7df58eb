import Events
import Foundation

/// An event's data. `eventType` is its stable name in the log; `schemaVersion` the shape of its data,
/// bumped when the shape changes, with an upcaster from the previous shape in `EventCodec.upcast`.
public protocol EventPayload: Codable, Sendable, Equatable {
    static var eventType: String { get }
    static var schemaVersion: Int { get }
}

extension EventPayload {
    public static var schemaVersion: Int { 1 }
}

// MARK: Responses

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

// MARK: Reference data

public struct WarehouseRegistered: EventPayload {
    public static let eventType = "warehouse.registered"
    public var code: String
    public var name: String
    public var country: String
    public var kind: String
    public var pcode: String?
    public var lat: Double?
    public var lon: Double?
    public var capacityM3: Int64?
}

public struct KitComponent: Codable, Sendable, Equatable {
    public var item: String
    public var quantity: Int64
    public init(item: String, quantity: Int64) { (self.item, self.quantity) = (item, quantity) }
}

public struct ItemRegistered: EventPayload {
    public static let eventType = "item.registered"
    public var code: String
    public var name: String
    public var unit: String
    public var category: String?
    public var kit: [KitComponent]?
}

// MARK: Stock (stream stock-<warehouse>:<item>)

public struct StockLevelsSet: EventPayload {
    public static let eventType = "stock.levels_set"
    public var warehouse: String
    public var item: String
    public var minimum: Int64
    public var target: Int64
}

public struct StockReceived: EventPayload {
    public static let eventType = "stock.received"
    public var warehouse: String
    public var item: String
    public var quantity: Int64
    public var source: String
    public var reference: String?
    public var donor: String?
    public var expiry: Day?
}

public struct StockDispatched: EventPayload {
    public static let eventType = "stock.dispatched"
    public var warehouse: String
    public var item: String
    public var quantity: Int64
    public var destination: String
    public var response: String?
    public var reference: String?
    public var transport: String?
}

public struct StockAdjusted: EventPayload {
    public static let eventType = "stock.adjusted"
    public var warehouse: String
    public var item: String
    public var delta: Int64
    public var reason: String
    public var note: String?
}

public struct StockCounted: EventPayload {
    public static let eventType = "stock.counted"
    public var warehouse: String
    public var item: String
    public var counted: Int64
    /// On hand by the book before the count.
    public var book: Int64
    /// counted - book: the adjustment the count makes.
    public var variance: Int64
}

public struct StockTransferSent: EventPayload {
    public static let eventType = "stock.transfer_sent"
    public var transfer: String
    public var warehouse: String
    public var item: String
    public var quantity: Int64
    public var to: String
}

public struct StockTransferReceived: EventPayload {
    public static let eventType = "stock.transfer_received"
    public var transfer: String
    public var warehouse: String
    public var item: String
    public var quantity: Int64
    public var from: String
}

public struct StockTransferReturned: EventPayload {
    public static let eventType = "stock.transfer_returned"
    public var transfer: String
    public var warehouse: String
    public var item: String
    public var quantity: Int64
}

// MARK: Transfers (stream transfer-<id>)

public struct TransferCreated: EventPayload {
    public static let eventType = "transfer.created"
    public var transfer: String
    public var from: String
    public var to: String
    public var item: String
    public var quantity: Int64
    public var reference: String?
    public var transport: String?
    public var response: String?
}

public struct TransferReceived: EventPayload {
    public static let eventType = "transfer.received"
    public var transfer: String
    public var received: Int64
    /// sent - received: lost in transit.
    public var lost: Int64
}

public struct TransferCancelled: EventPayload {
    public static let eventType = "transfer.cancelled"
    public var transfer: String
}

// MARK: People (stream person-<id>)

public struct PersonRegistered: EventPayload {
    public static let eventType = "person.registered"
    public var person: String
    public var name: String
    public var email: String?
    public var profiles: [String]
    public var homeCountry: String?
}

public struct PersonUnavailabilityAdded: EventPayload {
    public static let eventType = "person.unavailability_added"
    public var person: String
    public var from: Day
    public var to: Day
    public var reason: String?
}

/// Bookkeeping on the person's stream that makes "no double booking" a per-stream invariant.
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

public struct PersonBookingReleased: EventPayload {
    public static let eventType = "person.booking_released"
    public var person: String
    public var deployment: String
}

// MARK: Deployments (stream deployment-<id>)

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

/// confirmed, arrived, completed and cancelled: a step with no data beyond the deployment.
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
}

// MARK: Cluster tasks (stream task-<id>)

public struct TaskCreated: EventPayload {
    public static let eventType = "task.created"
    /// v2: `priority` is a name (`urgent`...`low`); v1 stored a number 1-4 (see EventCodec.upcast).
    public static let schemaVersion = 2
    public var task: String
    public var response: String
    public var cluster: String
    public var title: String
    public var description: String?
    public var priority: String
    public var due: Day?
    public var pcode: String?
    public var leadOrg: String?
    public var assignee: String?
}

public struct TaskAssigned: EventPayload {
    public static let eventType = "task.assigned"
    public var task: String
    public var assignee: String
}

public struct TaskStarted: EventPayload {
    public static let eventType = "task.started"
    public var task: String
}

public struct TaskBlocked: EventPayload {
    public static let eventType = "task.blocked"
    public var task: String
    public var reason: String
}

public struct TaskCompleted: EventPayload {
    public static let eventType = "task.completed"
    public var task: String
}

public struct TaskVerified: EventPayload {
    public static let eventType = "task.verified"
    public var task: String
}

public struct TaskCancelled: EventPayload {
    public static let eventType = "task.cancelled"
    public var task: String
}

public struct TaskReopened: EventPayload {
    public static let eventType = "task.reopened"
    public var task: String
}

public struct TaskCommented: EventPayload {
    public static let eventType = "task.commented"
    public var task: String
    public var text: String
}

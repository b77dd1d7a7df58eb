import Events
import Foundation

/// Which events concern one response: the one definition used by replay (timeline, review) and by the live
/// feed's `?response=` filter.
///
/// Its own stream's events; deployments requested for it and their later steps; tasks created for it and their
/// later steps (comments and corrections included); dispatches naming it and their reversals; transfers made
/// for it and their receipts and cancellation. Membership is learnt while reading the log in order, so a step
/// is attributed by the creation event that came before it. The switch is exhaustive: a new event type must
/// say here whether it belongs to a response.
public struct ResponseMembership: Sendable {
    public let response: String
    private(set) var deployments = Set<String>()
    private(set) var tasks = Set<String>()
    private(set) var transfers = Set<String>()

    public init(response: String) { self.response = response }

    /// Whether `event` concerns the response; creation events it names make their later steps concern it too.
    public mutating func concerns(_ event: DomainEvent) -> Bool {
        switch event {
        case .responseDeclared(let p): return p.response == response
        case .responseAmended(let p): return p.response == response
        case .responseSeverityChanged(let p): return p.response == response
        case .responseAreasAdded(let p): return p.response == response
        case .responsePhaseChanged(let p): return p.response == response
        case .responseClosed(let p): return p.response == response
        case .deploymentRequested(let p):
            guard p.response == response else { return false }
            deployments.insert(p.deployment)
            return true
        case .deploymentAmended(let p): return deployments.contains(p.deployment)
        case .deploymentConfirmed(let p): return deployments.contains(p.deployment)
        case .deploymentArrived(let p): return deployments.contains(p.deployment)
        case .deploymentExtended(let p): return deployments.contains(p.deployment)
        case .deploymentCompleted(let p): return deployments.contains(p.deployment)
        case .deploymentCancelled(let p): return deployments.contains(p.deployment)
        case .taskCreated(let p):
            guard p.response == response else { return false }
            tasks.insert(p.task)
            return true
        case .taskAmended(let p): return tasks.contains(p.task)
        case .taskAssigned(let p): return tasks.contains(p.task)
        case .taskStarted(let p): return tasks.contains(p.task)
        case .taskBlocked(let p): return tasks.contains(p.task)
        case .taskCompleted(let p): return tasks.contains(p.task)
        case .taskVerified(let p): return tasks.contains(p.task)
        case .taskCancelled(let p): return tasks.contains(p.task)
        case .taskReopened(let p): return tasks.contains(p.task)
        case .taskCommented(let p): return tasks.contains(p.task)
        case .stockDispatched(let p): return p.response == response
        case .stockMovementReversed(let p): return p.response == response
        case .transferCreated(let p):
            guard p.response == response else { return false }
            transfers.insert(p.transfer)
            return true
        case .transferReceived(let p): return transfers.contains(p.transfer)
        case .transferCancelled(let p): return transfers.contains(p.transfer)
        // A transfer's stock-card side tells what its transfer stream tells: the transfer's events stand for it.
        case .stockTransferSent, .stockTransferReceived, .stockTransferReturned: return false
        // Reference data, stock without a response, and people's own records belong to no response.
        case .warehouseRegistered, .warehouseAmended, .itemRegistered, .itemAmended, .stockLevelsSet, .stockReceived, .stockAdjusted,
             .stockCounted, .personRegistered, .personAmended, .personUnavailabilityAdded, .personBooked, .personBookingExtended,
             .personBookingChanged, .personBookingReleased, .personErased, .clockTicked:
            return false
        }
    }

    /// The event types that make later events concern a response.
    static let creationTypes = [DeploymentRequested.eventType, TaskCreated.eventType, TransferCreated.eventType]

    /// Membership as learnt from the log up to and including `position`: what a live feed resuming after
    /// `position` needs to know of earlier creations. Reads only the creation events.
    public static func learnt(response: String, from store: EventStore, through position: Int64) async throws -> ResponseMembership {
        var membership = ResponseMembership(response: response)
        guard position > 0 else { return membership }
        try await store.forEach(filter: EventFilter(types: creationTypes), until: .position(position)) { event in
            if let decoded = try? EventCodec.decode(event) { _ = membership.concerns(decoded) }
        }
        return membership
    }
}

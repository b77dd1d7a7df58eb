import Events
import Foundation

/// An event's data. `eventType` is its stable name in the log; `schemaVersion` the shape of its data,
/// bumped when the shape changes, with an upcaster from the previous shape in `EventCodec.upcast`.
/// Each payload lives in its feature's folder (`Stock/StockEvents.swift`, ...).
public protocol EventPayload: Codable, Sendable, Equatable {
    static var eventType: String { get }
    static var schemaVersion: Int { get }
}

extension EventPayload {
    public static var schemaVersion: Int { 1 }
}

/// A payload that decodes itself from an object's fields, for the events a rebuild reads by the hundred thousand
/// (stock receipts and dispatches): `Decodable`'s containers cost several times the parse. `init(fields:)` answers
/// nil wherever `Decodable` might decode differently or refuse, and the codec then asks `Decodable`
/// (`ImportTests.directPayloads` compares the two over thousands of shapes).
protocol DirectlyDecodedPayload: EventPayload {
    init?(fields: JSONFields)
}

/// A value that renders its own canonical JSON (`CanonicalObject`): the events every command and import line writes
/// most (stock receipts and dispatches) and their commands, whose canonical text is the idempotency digest. The text
/// is `CanonicalJSON.encode`'s, byte for byte (`ImportTests.directEncoding` compares the two), at a fraction of the
/// cost.
protocol DirectlyEncoded: Encodable {
    var canonicalJSON: String { get }
}

/// Every event the domain writes, one case per event type: what decisions produce, what folds, replay and the
/// live feed consume. Adding an event type means its payload struct in its feature folder, a case here with
/// its entry in `registry`, and the compiler then points at every exhaustive switch that must decide what the
/// new event means (`payload`, `ResponseMembership`, the timeline's wording).
public enum DomainEvent: Sendable, Equatable {
    // Responses (stream response-<id>)
    case responseDeclared(ResponseDeclared)
    case responseAmended(ResponseAmended)
    case responseSeverityChanged(ResponseSeverityChanged)
    case responseAreasAdded(ResponseAreasAdded)
    case responsePhaseChanged(ResponsePhaseChanged)
    case responseClosed(ResponseClosed)
    // Reference data (warehouse-<code>, item-<code>)
    case warehouseRegistered(WarehouseRegistered)
    case warehouseAmended(WarehouseAmended)
    case itemRegistered(ItemRegistered)
    case itemAmended(ItemAmended)
    // Stock (stock-<warehouse>:<item>)
    case stockLevelsSet(StockLevelsSet)
    case stockReceived(StockReceived)
    case stockDispatched(StockDispatched)
    case stockAdjusted(StockAdjusted)
    case stockCounted(StockCounted)
    case stockMovementReversed(StockMovementReversed)
    case stockTransferSent(StockTransferSent)
    case stockTransferReceived(StockTransferReceived)
    case stockTransferReturned(StockTransferReturned)
    // Transfers (transfer-<id>)
    case transferCreated(TransferCreated)
    case transferReceived(TransferReceived)
    case transferCancelled(TransferCancelled)
    // People (person-<id>)
    case personRegistered(PersonRegistered)
    case personAmended(PersonAmended)
    case personUnavailabilityAdded(PersonUnavailabilityAdded)
    case personBooked(PersonBooked)
    case personBookingExtended(PersonBookingExtended)
    case personBookingChanged(PersonBookingChanged)
    case personBookingReleased(PersonBookingReleased)
    case personErased(PersonErased)
    // Deployments (deployment-<id>)
    case deploymentRequested(DeploymentRequested)
    case deploymentAmended(DeploymentAmended)
    case deploymentConfirmed(DeploymentConfirmed)
    case deploymentArrived(DeploymentArrived)
    case deploymentExtended(DeploymentExtended)
    case deploymentCompleted(DeploymentCompleted)
    case deploymentCancelled(DeploymentCancelled)
    // Cluster tasks (task-<id>)
    case taskCreated(TaskCreated)
    case taskAmended(TaskAmended)
    case taskAssigned(TaskAssigned)
    case taskStarted(TaskStarted)
    case taskBlocked(TaskBlocked)
    case taskCompleted(TaskCompleted)
    case taskVerified(TaskVerified)
    case taskCancelled(TaskCancelled)
    case taskReopened(TaskReopened)
    case taskCommented(TaskCommented)
    // The clock (stream clock-<day>)
    case clockTicked(ClockTicked)

    /// The payload this case carries (what is encoded into the log).
    public var payload: any EventPayload {
        switch self {
        case .responseDeclared(let p): return p
        case .responseAmended(let p): return p
        case .responseSeverityChanged(let p): return p
        case .responseAreasAdded(let p): return p
        case .responsePhaseChanged(let p): return p
        case .responseClosed(let p): return p
        case .warehouseRegistered(let p): return p
        case .warehouseAmended(let p): return p
        case .itemRegistered(let p): return p
        case .itemAmended(let p): return p
        case .stockLevelsSet(let p): return p
        case .stockReceived(let p): return p
        case .stockDispatched(let p): return p
        case .stockAdjusted(let p): return p
        case .stockCounted(let p): return p
        case .stockMovementReversed(let p): return p
        case .stockTransferSent(let p): return p
        case .stockTransferReceived(let p): return p
        case .stockTransferReturned(let p): return p
        case .transferCreated(let p): return p
        case .transferReceived(let p): return p
        case .transferCancelled(let p): return p
        case .personRegistered(let p): return p
        case .personAmended(let p): return p
        case .personUnavailabilityAdded(let p): return p
        case .personBooked(let p): return p
        case .personBookingExtended(let p): return p
        case .personBookingChanged(let p): return p
        case .personBookingReleased(let p): return p
        case .personErased(let p): return p
        case .deploymentRequested(let p): return p
        case .deploymentAmended(let p): return p
        case .deploymentConfirmed(let p): return p
        case .deploymentArrived(let p): return p
        case .deploymentExtended(let p): return p
        case .deploymentCompleted(let p): return p
        case .deploymentCancelled(let p): return p
        case .taskCreated(let p): return p
        case .taskAmended(let p): return p
        case .taskAssigned(let p): return p
        case .taskStarted(let p): return p
        case .taskBlocked(let p): return p
        case .taskCompleted(let p): return p
        case .taskVerified(let p): return p
        case .taskCancelled(let p): return p
        case .taskReopened(let p): return p
        case .taskCommented(let p): return p
        case .clockTicked(let p): return p
        }
    }

    /// The stored type name.
    public var eventType: String { type(of: payload).eventType }

    /// How each stored type name becomes its case. One entry per case (`DomainEventTests` checks that every
    /// entry's type decodes to a case whose `payload` has that type).
    static let registry: [String: Entry] = Dictionary(uniqueKeysWithValues: [
        Entry(ResponseDeclared.self, DomainEvent.responseDeclared), Entry(ResponseAmended.self, DomainEvent.responseAmended),
        Entry(ResponseSeverityChanged.self, DomainEvent.responseSeverityChanged), Entry(ResponseAreasAdded.self, DomainEvent.responseAreasAdded),
        Entry(ResponsePhaseChanged.self, DomainEvent.responsePhaseChanged), Entry(ResponseClosed.self, DomainEvent.responseClosed),
        Entry(WarehouseRegistered.self, DomainEvent.warehouseRegistered), Entry(WarehouseAmended.self, DomainEvent.warehouseAmended),
        Entry(ItemRegistered.self, DomainEvent.itemRegistered), Entry(ItemAmended.self, DomainEvent.itemAmended),
        Entry(StockLevelsSet.self, DomainEvent.stockLevelsSet), Entry(StockReceived.self, DomainEvent.stockReceived),
        Entry(StockDispatched.self, DomainEvent.stockDispatched), Entry(StockAdjusted.self, DomainEvent.stockAdjusted),
        Entry(StockCounted.self, DomainEvent.stockCounted), Entry(StockMovementReversed.self, DomainEvent.stockMovementReversed),
        Entry(StockTransferSent.self, DomainEvent.stockTransferSent), Entry(StockTransferReceived.self, DomainEvent.stockTransferReceived),
        Entry(StockTransferReturned.self, DomainEvent.stockTransferReturned),
        Entry(TransferCreated.self, DomainEvent.transferCreated), Entry(TransferReceived.self, DomainEvent.transferReceived),
        Entry(TransferCancelled.self, DomainEvent.transferCancelled),
        Entry(PersonRegistered.self, DomainEvent.personRegistered), Entry(PersonAmended.self, DomainEvent.personAmended),
        Entry(PersonUnavailabilityAdded.self, DomainEvent.personUnavailabilityAdded), Entry(PersonBooked.self, DomainEvent.personBooked),
        Entry(PersonBookingExtended.self, DomainEvent.personBookingExtended), Entry(PersonBookingChanged.self, DomainEvent.personBookingChanged),
        Entry(PersonBookingReleased.self, DomainEvent.personBookingReleased),
        Entry(PersonErased.self, DomainEvent.personErased),
        Entry(DeploymentRequested.self, DomainEvent.deploymentRequested), Entry(DeploymentAmended.self, DomainEvent.deploymentAmended),
        Entry(DeploymentConfirmed.self, DomainEvent.deploymentConfirmed), Entry(DeploymentArrived.self, DomainEvent.deploymentArrived),
        Entry(DeploymentExtended.self, DomainEvent.deploymentExtended), Entry(DeploymentCompleted.self, DomainEvent.deploymentCompleted),
        Entry(DeploymentCancelled.self, DomainEvent.deploymentCancelled),
        Entry(TaskCreated.self, DomainEvent.taskCreated), Entry(TaskAmended.self, DomainEvent.taskAmended),
        Entry(TaskAssigned.self, DomainEvent.taskAssigned), Entry(TaskStarted.self, DomainEvent.taskStarted),
        Entry(TaskBlocked.self, DomainEvent.taskBlocked), Entry(TaskCompleted.self, DomainEvent.taskCompleted),
        Entry(TaskVerified.self, DomainEvent.taskVerified), Entry(TaskCancelled.self, DomainEvent.taskCancelled),
        Entry(TaskReopened.self, DomainEvent.taskReopened), Entry(TaskCommented.self, DomainEvent.taskCommented),
        Entry(ClockTicked.self, DomainEvent.clockTicked),
    ].map { ($0.type.eventType, $0) })

    /// A payload type and the case that carries it; decodes stored data (JSON text) into that case.
    struct Entry: Sendable {
        let type: any EventPayload.Type
        let decode: @Sendable (_ text: String, _ version: Int, _ position: Int64) throws -> DomainEvent

        init<P: EventPayload>(_ type: P.Type, _ wrap: @escaping @Sendable (P) -> DomainEvent) {
            self.type = type
            self.decode = { text, version, position in
                wrap(try EventCodec.decode(P.self, data: Data(text.utf8), version: version, position: position))
            }
        }

        /// A payload that reads itself from the parsed fields (the hot ones of a rebuild): `Decodable` only where it
        /// gives up, which then decodes, or names what is wrong, as for every other payload.
        init<P: DirectlyDecodedPayload>(_ type: P.Type, _ wrap: @escaping @Sendable (P) -> DomainEvent) {
            self.type = type
            self.decode = { text, version, position in
                if version == P.schemaVersion, let fields = (try? JSONValue.parse(text)).flatMap(JSONFields.init), let payload = P(fields: fields) {
                    return wrap(payload)
                }
                return wrap(try EventCodec.decode(P.self, data: Data(text.utf8), version: version, position: position))
            }
        }
    }

    /// Every event type name the domain writes.
    public static var eventTypes: [String] { registry.keys.sorted() }
}

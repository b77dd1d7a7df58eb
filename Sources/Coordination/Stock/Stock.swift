import Events
import Foundation

/// One item at one warehouse, folded from its `stock-<warehouse>:<item>` stream. The one rule of stock,
/// "on hand never goes below zero", is decided on it: every movement that takes stock out is checked against
/// `onHand` under the stream's lock and expected version (`CoordinationService.stockCommand`).
struct StockState: AggregateState {
    var warehouse = ""
    var item = ""
    var onHand: Int64 = 0
    var minimum: Int64?
    var target: Int64?
    var movements = 0
    /// Movements of this card already reversed (a movement is reversed once).
    var reversed = Set<String>()

    enum CodingKeys: String, CodingKey { case warehouse, item, onHand, minimum, target, movements }

    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent) {
        if let card = Self.card(event) { (warehouse, item) = card }
        guard let delta = Self.change(event) else {
            if case .stockLevelsSet(let e) = event { (warehouse, item, minimum, target) = (e.warehouse, e.item, e.minimum, e.target) }
            return
        }
        movements += 1
        onHand.add(delta)
        if case .stockMovementReversed(let e) = event { reversed.insert(e.movement) }
    }

    /// The card a movement belongs to; nil for events that are not movements.
    static func card(_ event: DomainEvent) -> (warehouse: String, item: String)? {
        switch event {
        case .stockReceived(let e): return (e.warehouse, e.item)
        case .stockDispatched(let e): return (e.warehouse, e.item)
        case .stockAdjusted(let e): return (e.warehouse, e.item)
        case .stockCounted(let e): return (e.warehouse, e.item)
        case .stockMovementReversed(let e): return (e.warehouse, e.item)
        case .stockTransferSent(let e): return (e.warehouse, e.item)
        case .stockTransferReceived(let e): return (e.warehouse, e.item)
        case .stockTransferReturned(let e): return (e.warehouse, e.item)
        default: return nil
        }
    }

    /// What a stock-card event does to on hand; nil for events that are not movements.
    static func change(_ event: DomainEvent) -> Int64? {
        switch event {
        case .stockReceived(let e): return e.quantity
        case .stockDispatched(let e): return -e.quantity
        case .stockAdjusted(let e): return e.delta
        case .stockCounted(let e): return e.variance
        case .stockMovementReversed(let e): return e.delta
        case .stockTransferSent(let e): return -e.quantity
        case .stockTransferReceived(let e): return e.quantity
        case .stockTransferReturned(let e): return e.quantity
        default: return nil
        }
    }
}

public enum StockVocabulary {
    public static let sources = ["donation", "procurement", "internal"]
    public static let reasons = ["lost", "found", "damaged", "expired", "count_correction"]
    /// `GET /v1/stock?status=`: against the levels, or `no_levels` when none are set.
    public static let statuses = ["below_minimum", "below_target", "ok", "no_levels"]
}

extension CoordinationService {
    /// Runs a movement on one warehouse-item stream. The decision sees the current on-hand figure and is
    /// made under the stream's lock and expected version, so concurrent movements can never take stock
    /// below zero: a competing write forces a re-read and a fresh decision.
    func stockCommand<C: DomainCommand>(_ command: C, _ ctx: CommandContext, warehouse: String, item: String, occurredAt: Date?,
                                        response: String? = nil, causation: String? = nil,
                                        _ decide: @escaping @Sendable (StockState) throws -> [DomainEvent]) async throws -> CommandResult {
        let stream = Streams.stock(warehouse, item)
        try await requireExists("warehouse", warehouse, stream: Streams.warehouse(warehouse))
        try await requireExists("item", item, stream: Streams.item(item))
        if let response { try await requireOpenResponse(response) }
        let runner = self.runner
        return try await runner.run(command, ctx: ctx, occurredAt: occurredAt, locks: [stream], state: StockState.self) {
            var (state, version) = try await runner.load(stream, as: StockState.self)
            try Self.checkIfMatch(ctx, kind: "stock", id: "\(warehouse):\(item)", version: version)
            (state.warehouse, state.item) = (warehouse, item)
            return .init(appends: [(stream, .exact(version), try decide(state))], primary: stream, kind: "stock",
                         id: "\(warehouse):\(item)", created: false, causation: causation)
        }
    }

    /// Refuses taking `quantity` out of what is on hand.
    static func requireAvailable(_ state: StockState, _ quantity: Int64) throws {
        if quantity > state.onHand {
            throw DomainError.insufficientStock(warehouse: state.warehouse, item: state.item, requested: quantity, available: state.onHand)
        }
    }
}

/// A goods received note.
public struct ReceiveStock: DomainCommand {
    public static let name = "stock.receive"
    public var warehouse: String
    public var item: String
    public var quantity: Int64
    public var source: String
    public var reference: String?
    public var donor: String?
    public var expiry: Day?
    public var occurredAt: Date?

    public init(warehouse: String, item: String, quantity: Int64, source: String, reference: String? = nil, donor: String? = nil,
                expiry: Day? = nil, occurredAt: Date? = nil) {
        (self.warehouse, self.item, self.quantity, self.source) = (warehouse, item, quantity, source)
        (self.reference, self.donor, self.expiry, self.occurredAt) = (reference, donor, expiry, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(warehouse, "warehouse")
        v.id(item, "item")
        v.quantity(quantity, "quantity")
        v.oneOf(source, "source", StockVocabulary.sources)
        v.text(reference, "reference", max: 64)
        v.text(donor, "donor", max: 200)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        try await s.stockCommand(self, ctx, warehouse: warehouse, item: item, occurredAt: occurredAt) { _ in
            [.stockReceived(StockReceived(warehouse: warehouse, item: item, quantity: quantity, source: source, reference: reference,
                                          donor: donor, expiry: expiry))]
        }
    }
}

/// A waybill out of the warehouse. Refused beyond what is on hand.
public struct DispatchStock: DomainCommand {
    public static let name = "stock.dispatch"
    public var warehouse: String
    public var item: String
    public var quantity: Int64
    public var destination: String
    public var response: String?
    public var reference: String?
    public var transport: String?
    public var occurredAt: Date?

    public init(warehouse: String, item: String, quantity: Int64, destination: String, response: String? = nil,
                reference: String? = nil, transport: String? = nil, occurredAt: Date? = nil) {
        (self.warehouse, self.item, self.quantity, self.destination, self.response) = (warehouse, item, quantity, destination, response)
        (self.reference, self.transport, self.occurredAt) = (reference, transport, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(warehouse, "warehouse")
        v.id(item, "item")
        v.quantity(quantity, "quantity")
        v.text(destination, "destination")
        v.id(response, "response")
        v.text(reference, "reference", max: 64)
        v.text(transport, "transport", max: 64)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        try await s.stockCommand(self, ctx, warehouse: warehouse, item: item, occurredAt: occurredAt, response: response) { state in
            try CoordinationService.requireAvailable(state, quantity)
            return [.stockDispatched(StockDispatched(warehouse: warehouse, item: item, quantity: quantity, destination: destination,
                                                     response: response, reference: reference, transport: transport))]
        }
    }
}

/// Lost, found, damaged, expired, count correction.
public struct AdjustStock: DomainCommand {
    public static let name = "stock.adjust"
    public var warehouse: String
    public var item: String
    public var delta: Int64
    public var reason: String
    public var note: String?
    public var occurredAt: Date?

    public init(warehouse: String, item: String, delta: Int64, reason: String, note: String? = nil, occurredAt: Date? = nil) {
        (self.warehouse, self.item, self.delta, self.reason, self.note, self.occurredAt) = (warehouse, item, delta, reason, note, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(warehouse, "warehouse")
        v.id(item, "item")
        // Compared without abs(): abs(Int64.min) traps.
        v.integer(delta, "delta", -Validator.maxQuantity...Validator.maxQuantity, "must be a non-zero whole number within ±\(Validator.maxQuantity)")
        if delta == 0 { v.fail("delta", "must be a non-zero whole number within ±\(Validator.maxQuantity)") }
        v.oneOf(reason, "reason", StockVocabulary.reasons)
        if ["lost", "damaged", "expired"].contains(reason) && delta > 0 { v.fail("delta", "must be negative for \(reason)") }
        if reason == "found" && delta < 0 { v.fail("delta", "must be positive for found") }
        v.text(note, "note", max: Validator.maxText)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        try await s.stockCommand(self, ctx, warehouse: warehouse, item: item, occurredAt: occurredAt) { state in
            if delta < 0 { try CoordinationService.requireAvailable(state, -delta) }
            return [.stockAdjusted(StockAdjusted(warehouse: warehouse, item: item, delta: delta, reason: reason, note: note))]
        }
    }
}

/// A physical count; the variance against the book is recorded and applied.
public struct CountStock: DomainCommand {
    public static let name = "stock.count"
    public var warehouse: String
    public var item: String
    public var counted: Int64
    public var occurredAt: Date?

    public init(warehouse: String, item: String, counted: Int64, occurredAt: Date? = nil) {
        (self.warehouse, self.item, self.counted, self.occurredAt) = (warehouse, item, counted, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(warehouse, "warehouse")
        v.id(item, "item")
        v.integer(counted, "counted", 0...Validator.maxQuantity)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        try await s.stockCommand(self, ctx, warehouse: warehouse, item: item, occurredAt: occurredAt) { state in
            [.stockCounted(StockCounted(warehouse: warehouse, item: item, counted: counted, book: state.onHand, variance: counted - state.onHand))]
        }
    }
}

/// Undoes one receipt, dispatch, adjustment or count (50 typed for 5): a new event that names the movement,
/// moves on hand back, and is dated when the original happened, so figures on the occurred basis are corrected
/// from that moment. A movement is reversed once; a reversal that would take on hand below zero is refused.
public struct ReverseMovement: DomainCommand {
    public static let name = "stock.movement.reverse"
    /// The movement's id (the id of its event, on every ledger row and movement answer).
    public var id: String
    public var reason: String

    public init(id: String, reason: String) { (self.id, self.reason) = (id, reason) }

    public func validate(_ v: inout Validator) {
        if UUID(uuidString: id) == nil { v.fail("id", "must be a movement id (a UUID, as on the stock card)") }
        v.text(reason, "reason", max: 1000)
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        guard let uuid = UUID(uuidString: id), let original = try await s.event(id: uuid) else {
            throw DomainError.notFound(kind: "movement", id: id)
        }
        let decoded = try EventCodec.decode(original)
        let (warehouse, item, type, response): (String, String, String, String?)
        switch decoded {
        case .stockReceived(let e): (warehouse, item, type, response) = (e.warehouse, e.item, "receipt", nil)
        case .stockDispatched(let e): (warehouse, item, type, response) = (e.warehouse, e.item, "dispatch", e.response)
        case .stockAdjusted(let e): (warehouse, item, type, response) = (e.warehouse, e.item, "adjustment", nil)
        case .stockCounted(let e): (warehouse, item, type, response) = (e.warehouse, e.item, "count", nil)
        default: throw DomainError.rule("only receipts, dispatches, adjustments and counts can be reversed; \(id) is a \(original.type) event")
        }
        let delta = -(StockState.change(decoded) ?? 0)
        let (movement, reason) = (original.id.lowercasedString, self.reason)
        // Dated when the original happened: the correction says the original never did.
        return try await s.stockCommand(self, ctx, warehouse: warehouse, item: item, occurredAt: original.occurredAt,
                                        causation: movement) { state in
            if state.reversed.contains(movement) { throw DomainError.rule("movement \(movement) is already reversed") }
            if delta < 0 { try CoordinationService.requireAvailable(state, -delta) }
            return [.stockMovementReversed(StockMovementReversed(warehouse: warehouse, item: item, movement: movement, movementType: type,
                                                                 delta: delta, reason: reason, response: response))]
        }
    }
}

/// Prepositioning levels of one warehouse and item.
public struct SetLevels: DomainCommand {
    public static let name = "levels.set"
    public var code: String
    public var item: String
    public var minimum: Int64
    public var target: Int64
    public var occurredAt: Date?

    public init(code: String, item: String, minimum: Int64, target: Int64, occurredAt: Date? = nil) {
        (self.code, self.item, self.minimum, self.target, self.occurredAt) = (code, item, minimum, target, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(code, "code")
        v.id(item, "item")
        v.integer(minimum, "minimum", 0...Validator.maxQuantity)
        v.integer(target, "target", 0...Validator.maxQuantity)
        if minimum > target { v.fail("minimum", "must not exceed target") }
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        try await s.stockCommand(self, ctx, warehouse: code, item: item, occurredAt: occurredAt) { _ in
            [.stockLevelsSet(StockLevelsSet(warehouse: code, item: item, minimum: minimum, target: target))]
        }
    }
}

extension ReceiveStock: DirectlyEncoded {
    var canonicalJSON: String {
        StockReceived(warehouse: warehouse, item: item, quantity: quantity, source: source, reference: reference, donor: donor, expiry: expiry)
            .canonicalJSON(occurredAt: occurredAt)
    }
}

extension DispatchStock: DirectlyEncoded {
    var canonicalJSON: String {
        StockDispatched(warehouse: warehouse, item: item, quantity: quantity, destination: destination, response: response, reference: reference,
                        transport: transport).canonicalJSON(occurredAt: occurredAt)
    }
}

import Events
import Foundation

/// One item at one warehouse, folded from its `stock-<warehouse>:<item>` stream.
struct StockState: AggregateState {
    var warehouse = ""
    var item = ""
    var onHand: Int64 = 0
    var minimum: Int64?
    var target: Int64?
    var movements = 0

    mutating func apply(_ payload: any EventPayload, _ event: RecordedEvent) {
        movements += 1
        switch payload {
        case let e as StockLevelsSet:
            (warehouse, item, minimum, target) = (e.warehouse, e.item, e.minimum, e.target)
            movements -= 1
        case let e as StockReceived: (warehouse, item) = (e.warehouse, e.item); onHand += e.quantity
        case let e as StockDispatched: (warehouse, item) = (e.warehouse, e.item); onHand -= e.quantity
        case let e as StockAdjusted: (warehouse, item) = (e.warehouse, e.item); onHand += e.delta
        case let e as StockCounted: (warehouse, item) = (e.warehouse, e.item); onHand += e.variance
        case let e as StockTransferSent: (warehouse, item) = (e.warehouse, e.item); onHand -= e.quantity
        case let e as StockTransferReceived: (warehouse, item) = (e.warehouse, e.item); onHand += e.quantity
        case let e as StockTransferReturned: (warehouse, item) = (e.warehouse, e.item); onHand += e.quantity
        default: movements -= 1
        }
    }
}

struct TransferState: AggregateState {
    var id = ""
    var from = ""
    var to = ""
    var item = ""
    var quantity: Int64 = 0
    var status = ""
    var received: Int64?
    var lost: Int64?
    var reference: String?
    var transport: String?

    mutating func apply(_ payload: any EventPayload, _ event: RecordedEvent) {
        switch payload {
        case let e as TransferCreated:
            (id, from, to, item, quantity, reference, transport) = (e.transfer, e.from, e.to, e.item, e.quantity, e.reference, e.transport)
            status = "in_transit"
        case let e as TransferReceived: status = "received"; received = e.received; lost = e.lost
        case is TransferCancelled: status = "cancelled"
        default: break
        }
    }
}

public enum StockVocabulary {
    public static let sources = ["donation", "procurement", "internal"]
    public static let reasons = ["lost", "found", "damaged", "expired", "count_correction"]
}

extension CoordinationService {
    /// Runs a movement on one warehouse-item stream. The decision sees the current on-hand figure and is
    /// made under the stream's lock and expected version, so concurrent movements can never take stock
    /// below zero: a competing write forces a re-read and a fresh decision.
    func stockCommand(_ command: some DomainCommand, _ ctx: CommandContext, warehouse: String, item: String, occurredAt: Date?,
                      response: String? = nil,
                      _ decide: @escaping @Sendable (StockState) throws -> [any EventPayload]) async throws -> CommandResult {
        let stream = Streams.stock(warehouse, item)
        try await requireExists("warehouse", warehouse, stream: Streams.warehouse(warehouse))
        try await requireExists("item", item, stream: Streams.item(item))
        if let response { try await requireOpenResponse(response) }
        let runner = self.runner
        return try await runner.run(command: type(of: command).name, body: Self.canonical(command), ctx: ctx, occurredAt: occurredAt,
                                    locks: [stream], state: StockState.self) {
            var (state, version) = try await runner.load(stream, as: StockState.self)
            try Self.checkIfMatch(ctx, kind: "stock", id: "\(warehouse):\(item)", version: version)
            (state.warehouse, state.item) = (warehouse, item)
            return .init(appends: [(stream, .exact(version), try decide(state))], primary: stream, kind: "stock",
                         id: "\(warehouse):\(item)", created: false)
        }
    }

    static func requireAvailable(_ state: StockState, _ quantity: Int64) throws {
        if quantity > state.onHand {
            throw DomainError.insufficientStock(warehouse: state.warehouse, item: state.item, requested: quantity, available: state.onHand)
        }
    }
}

/// `POST /v1/stock/receipts`: a goods received note.
public struct ReceiveStock: DomainCommand {
    public static let name = "stock.receive"
    public static let fields = ["warehouse", "item", "quantity", "source", "reference", "donor", "expiry", "occurred_at"]
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
            [StockReceived(warehouse: warehouse, item: item, quantity: quantity, source: source, reference: reference, donor: donor, expiry: expiry)]
        }
    }
}

/// `POST /v1/stock/dispatches`: a waybill out of the warehouse. Refused beyond what is on hand.
public struct DispatchStock: DomainCommand {
    public static let name = "stock.dispatch"
    public static let fields = ["warehouse", "item", "quantity", "destination", "response", "reference", "transport", "occurred_at"]
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
            return [StockDispatched(warehouse: warehouse, item: item, quantity: quantity, destination: destination, response: response,
                                    reference: reference, transport: transport)]
        }
    }
}

/// `POST /v1/stock/adjustments`: lost, found, damaged, expired, count correction.
public struct AdjustStock: DomainCommand {
    public static let name = "stock.adjust"
    public static let fields = ["warehouse", "item", "delta", "reason", "note", "occurred_at"]
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
        if delta == 0 || abs(delta) > Validator.maxQuantity { v.fail("delta", "must be a non-zero whole number within ±\(Validator.maxQuantity)") }
        v.oneOf(reason, "reason", StockVocabulary.reasons)
        if ["lost", "damaged", "expired"].contains(reason) && delta > 0 { v.fail("delta", "must be negative for \(reason)") }
        if reason == "found" && delta < 0 { v.fail("delta", "must be positive for found") }
        v.text(note, "note", max: Validator.maxText)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        try await s.stockCommand(self, ctx, warehouse: warehouse, item: item, occurredAt: occurredAt) { state in
            if delta < 0 { try CoordinationService.requireAvailable(state, -delta) }
            return [StockAdjusted(warehouse: warehouse, item: item, delta: delta, reason: reason, note: note)]
        }
    }
}

/// `POST /v1/stock/counts`: a physical count; the variance against the book is recorded and applied.
public struct CountStock: DomainCommand {
    public static let name = "stock.count"
    public static let fields = ["warehouse", "item", "counted", "occurred_at"]
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
        if counted < 0 || counted > Validator.maxQuantity { v.fail("counted", "must be from 0 to \(Validator.maxQuantity)") }
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        try await s.stockCommand(self, ctx, warehouse: warehouse, item: item, occurredAt: occurredAt) { state in
            [StockCounted(warehouse: warehouse, item: item, counted: counted, book: state.onHand, variance: counted - state.onHand)]
        }
    }
}

/// `POST /v1/stock/transfers`: leaves `from` now and is in transit until received at `to`.
public struct TransferStock: DomainCommand {
    public var createdStream: String? { id.map(Streams.transfer) }
    public static let name = "stock.transfer"
    public static let fields = ["id", "from", "to", "item", "quantity", "reference", "transport", "response", "occurred_at"]
    public var id: String?
    public var from: String
    public var to: String
    public var item: String
    public var quantity: Int64
    public var reference: String?
    public var transport: String?
    public var response: String?
    public var occurredAt: Date?

    public init(id: String? = nil, from: String, to: String, item: String, quantity: Int64, reference: String? = nil,
                transport: String? = nil, response: String? = nil, occurredAt: Date? = nil) {
        (self.id, self.from, self.to, self.item, self.quantity) = (id, from, to, item, quantity)
        (self.reference, self.transport, self.response, self.occurredAt) = (reference, transport, response, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.id(from, "from")
        v.id(to, "to")
        if from == to { v.fail("to", "must differ from from") }
        v.id(item, "item")
        v.quantity(quantity, "quantity")
        v.text(reference, "reference", max: 64)
        v.text(transport, "transport", max: 64)
        v.id(response, "response")
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id ?? UUID.random().lowercasedString
        let (from, to, item, quantity, reference, transport, response) = (self.from, self.to, self.item, self.quantity, self.reference, self.transport, self.response)
        try await s.requireExists("warehouse", to, stream: Streams.warehouse(to))
        try await s.requireExists("warehouse", from, stream: Streams.warehouse(from))
        try await s.requireExists("item", item, stream: Streams.item(item))
        if let response { try await s.requireOpenResponse(response) }
        let runner = s.runner
        let stock = Streams.stock(from, item)
        let transfer = Streams.transfer(id)
        return try await runner.run(command: Self.name, body: CoordinationService.canonical(self), ctx: ctx, occurredAt: occurredAt,
                                    locks: [stock, transfer], state: TransferState.self) {
            let (_, tv) = try await runner.load(transfer, as: TransferState.self)
            if tv > 0 { throw DomainError.alreadyExists(kind: "transfer", id: id) }
            var (state, sv) = try await runner.load(stock, as: StockState.self)
            (state.warehouse, state.item) = (from, item)
            try CoordinationService.requireAvailable(state, quantity)
            return .init(appends: [
                (stock, .exact(sv), [StockTransferSent(transfer: id, warehouse: from, item: item, quantity: quantity, to: to)]),
                (transfer, .noStream, [TransferCreated(transfer: id, from: from, to: to, item: item, quantity: quantity,
                                                       reference: reference, transport: transport, response: response)]),
            ], primary: transfer, kind: "transfer", id: id, created: true)
        }
    }
}

/// `POST /v1/stock/transfers/{id}/receive`: once; a shortfall is a loss in transit.
public struct ReceiveTransfer: DomainCommand {
    public static let name = "stock.transfer.receive"
    public static let fields = ["id", "quantity", "occurred_at"]
    public var id: String
    public var quantity: Int64
    public var occurredAt: Date?

    public init(id: String, quantity: Int64, occurredAt: Date? = nil) {
        (self.id, self.quantity, self.occurredAt) = (id, quantity, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        if quantity < 0 || quantity > Validator.maxQuantity { v.fail("quantity", "must be from 0 to \(Validator.maxQuantity)") }
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, quantity) = (self.id, self.quantity)
        return try await s.transferStep(self, ctx, id: id, occurredAt: occurredAt, action: "receive", warehouse: \.to) { t, transfer, stock in
            if quantity > t.quantity { throw DomainError.invalid("quantity", "must not exceed the \(t.quantity) sent") }
            var appends = [(transfer.0, transfer.1, [TransferReceived(transfer: id, received: quantity, lost: t.quantity - quantity) as any EventPayload])]
            if quantity > 0 {
                appends.append((stock.0, stock.1, [StockTransferReceived(transfer: id, warehouse: t.to, item: t.item, quantity: quantity, from: t.from)]))
            }
            return appends
        }
    }
}

/// Cancels a transfer still in transit: its stock returns to the sending warehouse.
public struct CancelTransfer: StepCommand {
    public static let name = "stock.transfer.cancel"
    public var id: String
    public var occurredAt: Date?

    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await s.transferStep(self, ctx, id: id, occurredAt: occurredAt, action: "cancel", warehouse: \.from) { t, transfer, stock in
            [(transfer.0, transfer.1, [TransferCancelled(transfer: id)]),
             (stock.0, stock.1, [StockTransferReturned(transfer: id, warehouse: t.from, item: t.item, quantity: t.quantity)])]
        }
    }
}

extension CoordinationService {
    /// Runs a step on a transfer still in transit and on the stock it moves: the `warehouse` side's stream of
    /// the transfer's item (the receiver's on a receipt, the sender's on a cancel). `decide` gets the transfer
    /// and both streams with the versions read, and returns the appends.
    func transferStep(_ command: some DomainCommand, _ ctx: CommandContext, id: String, occurredAt: Date?, action: String,
                      warehouse: @escaping @Sendable (TransferState) -> String,
                      _ decide: @escaping @Sendable (TransferState, (String, ExpectedVersion), (String, ExpectedVersion)) throws -> [CommandRunner.StreamEvents]
    ) async throws -> CommandResult {
        let runner = self.runner
        let transfer = Streams.transfer(id)
        let (initial, iv) = try await runner.load(transfer, as: TransferState.self)
        guard iv > 0 else { throw DomainError.notFound(kind: "transfer", id: id) }
        let stock = Streams.stock(warehouse(initial), initial.item)
        return try await runner.run(command: type(of: command).name, body: Self.canonical(command), ctx: ctx, occurredAt: occurredAt,
                                    locks: [transfer, stock], state: TransferState.self) {
            let (t, tv) = try await runner.load(transfer, as: TransferState.self)
            try Self.checkIfMatch(ctx, kind: "transfer", id: id, version: tv)
            guard t.status == "in_transit" else {
                throw DomainError.invalidTransition(kind: "transfer", id: id, current: t.status, action: action)
            }
            let (_, sv) = try await runner.load(stock, as: StockState.self)
            return .init(appends: try decide(t, (transfer, .exact(tv)), (stock, .exact(sv))), primary: transfer, kind: "transfer",
                         id: id, created: false)
        }
    }
}

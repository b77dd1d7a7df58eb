import Events
import Foundation

/// A transfer between warehouses, folded from its `transfer-<id>` stream.
struct TransferState: AggregateState {
    var id = ""
    var from = ""
    var to = ""
    var item = ""
    var quantity: Int64 = 0
    /// in_transit, received or cancelled.
    var status = ""
    /// Received so far, over every partial receipt.
    var received: Int64 = 0
    var lost: Int64?
    var receipts = 0
    var reference: String?
    var transport: String?
    var response: String?
    var sentAt: Date?
    var receivedAt: Date?
    var cancelledAt: Date?
    var cancelReason: String?
    /// The latest step's business time: the next may not be dated before it.
    var lastStepAt: Date?

    var outstanding: Int64 { quantity - received }

    enum CodingKeys: String, CodingKey {
        case id, from, to, item, quantity, status, received, lost, receipts, reference, transport, response, sentAt, receivedAt
        case cancelledAt, cancelReason
    }

    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent) {
        switch event {
        case .transferCreated(let e):
            (id, from, to, item, quantity, reference, transport, response) = (e.transfer, e.from, e.to, e.item, e.quantity, e.reference, e.transport, e.response)
            status = "in_transit"
            sentAt = recorded.occurredAt
        case .transferReceived(let e):
            received.add(e.received)
            receipts += 1
            if e.closes { status = "received"; lost = e.lost; receivedAt = recorded.occurredAt }
        case .transferCancelled(let e): status = "cancelled"; cancelledAt = recorded.occurredAt; cancelReason = e.reason
        default: return
        }
        lastStepAt = max(lastStepAt ?? recorded.occurredAt, recorded.occurredAt)
    }
}

/// Leaves `from` now and is in transit until received at `to`.
public struct TransferStock: DomainCommand {
    public var createdStream: String? { id.map(Streams.transfer) }
    public static let name = "stock.transfer"
    public static let creates = true
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
        return try await runner.run(self, ctx: ctx, occurredAt: occurredAt, locks: [stock, transfer], state: TransferState.self) {
            let (_, tv) = try await runner.load(transfer, as: TransferState.self)
            if tv > 0 { throw DomainError.alreadyExists(kind: "transfer", id: id) }
            var (state, sv) = try await runner.load(stock, as: StockState.self)
            (state.warehouse, state.item) = (from, item)
            try CoordinationService.requireAvailable(state, quantity)
            return .init(appends: [
                (stock, .exact(sv), [.stockTransferSent(StockTransferSent(transfer: id, warehouse: from, item: item, quantity: quantity, to: to,
                                                                          response: response))]),
                (transfer, .noStream, [.transferCreated(TransferCreated(transfer: id, from: from, to: to, item: item, quantity: quantity,
                                                                        reference: reference, transport: transport, response: response))]),
            ], primary: transfer, kind: "transfer", id: id, created: true)
        }
    }
}

/// Goods of a transfer arrive at its destination, all at once or in parts. `final` (or receiving everything
/// still in transit) closes the transfer; whatever has not arrived then is the loss in transit.
public struct ReceiveTransfer: DomainCommand {
    public static let name = "stock.transfer.receive"
    public var id: String
    public var quantity: Int64
    public var final: Bool?
    public var occurredAt: Date?

    public init(id: String, quantity: Int64, final: Bool? = nil, occurredAt: Date? = nil) {
        (self.id, self.quantity, self.final, self.occurredAt) = (id, quantity, final, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.integer(quantity, "quantity", 0...Validator.maxQuantity)
        if quantity == 0 && final != true { v.fail("quantity", "must be at least 1 unless the receipt is final (all the rest lost)") }
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, quantity, final) = (self.id, self.quantity, self.final ?? false)
        return try await s.transferStep(self, ctx, id: id, occurredAt: occurredAt, action: "receive", warehouse: \.to) { t, _ in
            if quantity > t.outstanding {
                throw DomainError.invalid("quantity", "must not exceed the \(t.outstanding) still in transit (\(t.quantity) sent, \(t.received) received)")
            }
            let closes = final || quantity == t.outstanding
            // The goods' row on the receiving card comes before the receipt that may close the transfer (and book
            // its loss on both cards).
            let goods: [DomainEvent] = quantity == 0 ? [] : [.stockTransferReceived(StockTransferReceived(
                transfer: id, warehouse: t.to, item: t.item, quantity: quantity, from: t.from, response: t.response))]
            return ([.transferReceived(TransferReceived(transfer: id, received: quantity, lost: closes ? t.outstanding - quantity : 0, final: closes))],
                    goods)
        }
    }
}

/// Cancels a transfer still in transit: what has not arrived returns to the sending warehouse.
public struct CancelTransfer: DomainCommand {
    public static let name = "stock.transfer.cancel"
    public var id: String
    public var reason: String?
    public var occurredAt: Date?

    public init(id: String, reason: String? = nil, occurredAt: Date? = nil) { (self.id, self.reason, self.occurredAt) = (id, reason, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(reason, "reason", max: 1000)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, reason) = (self.id, self.reason)
        return try await s.transferStep(self, ctx, id: id, occurredAt: occurredAt, action: "cancel", warehouse: \.from) { t, _ in
            ([.transferCancelled(TransferCancelled(transfer: id, reason: reason))],
             [.stockTransferReturned(StockTransferReturned(transfer: id, warehouse: t.from, item: t.item, quantity: t.outstanding))])
        }
    }
}

extension CoordinationService {
    /// Runs a step on a transfer still in transit and on the stock it moves: the `warehouse` side's card of the
    /// transfer's item (the receiver's on a receipt, the sender's on a cancel). `decide` gets the transfer and
    /// the step's business time, and returns the transfer's events and the card's.
    func transferStep<C: DomainCommand>(
        _ command: C, _ ctx: CommandContext, id: String, occurredAt: Date?, action: String,
        warehouse: @escaping @Sendable (TransferState) -> String,
        _ decide: @escaping @Sendable (TransferState, Date) throws -> (transfer: [DomainEvent], stock: [DomainEvent])
    ) async throws -> CommandResult {
        try await pairedStep(command, ctx, kind: "transfer", id: id, stream: Streams.transfer(id), state: TransferState.self,
                             partner: { Streams.stock(warehouse($0), $0.item) }, partnerState: StockState.self, occurredAt: occurredAt) { t, _, _, at in
            guard t.status == "in_transit" else {
                throw DomainError.invalidTransition(kind: "transfer", id: id, current: t.status, action: action)
            }
            try Validator.requireOrder(at, notBefore: t.lastStepAt, "the transfer's last step")
            let (own, stock) = try decide(t, at)
            return (own, stock)
        }
    }
}

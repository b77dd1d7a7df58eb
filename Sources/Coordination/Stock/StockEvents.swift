import Events
import Foundation

// Events of a stock card, `stock-<warehouse>:<item>`, and of a transfer, `transfer-<id>`.
// Every movement event's id is the movement's id (ledger rows, reversals).

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

/// Undoes one receipt, dispatch, adjustment or count of this stock card (50 typed for 5): the original stays
/// in the log, this event names it (`movement`, its event id) and moves on hand by `delta`, the opposite of
/// the original's change.
public struct StockMovementReversed: EventPayload {
    public static let eventType = "stock.movement_reversed"
    public var warehouse: String
    public var item: String
    public var movement: String
    /// `receipt`, `dispatch`, `adjustment` or `count`.
    public var movementType: String
    public var delta: Int64
    public var reason: String
    /// The response the original movement was for, if any (a reversed dispatch leaves the response's totals).
    public var response: String?
}

public struct StockTransferSent: EventPayload {
    public static let eventType = "stock.transfer_sent"
    public var transfer: String
    public var warehouse: String
    public var item: String
    public var quantity: Int64
    public var to: String
    public var response: String?
}

public struct StockTransferReceived: EventPayload {
    public static let eventType = "stock.transfer_received"
    public var transfer: String
    public var warehouse: String
    public var item: String
    public var quantity: Int64
    public var from: String
    public var response: String?
}

public struct StockTransferReturned: EventPayload {
    public static let eventType = "stock.transfer_returned"
    public var transfer: String
    public var warehouse: String
    public var item: String
    public var quantity: Int64
}

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

/// Goods of a transfer arrived at its destination: `received` units this time. The final receipt (`final`,
/// or everything sent now received) closes the transfer, and `lost` is then what never arrived. Events
/// written before partial receipts had no `final`: each closed its transfer.
public struct TransferReceived: EventPayload {
    public static let eventType = "transfer.received"
    public var transfer: String
    public var received: Int64
    /// sent - received in all, on the receipt that closes the transfer; 0 on earlier ones.
    public var lost: Int64
    public var final: Bool?

    public var closes: Bool { final ?? true }
}

public struct TransferCancelled: EventPayload {
    public static let eventType = "transfer.cancelled"
    public var transfer: String
    public var reason: String?
}

extension StockReceived: DirectlyDecodedPayload {
    init?(fields f: JSONFields) {
        guard let warehouse = f.string("warehouse"), let item = f.string("item"), let quantity = f.int64("quantity"),
              let source = f.string("source"), let reference = f.optionalString("reference"), let donor = f.optionalString("donor"),
              let expiry = f.optionalString("expiry") else { return nil }
        var day: Day?
        if let expiry {
            guard let parsed = Day(expiry) else { return nil }
            day = parsed
        }
        self.init(warehouse: warehouse, item: item, quantity: quantity, source: source, reference: reference, donor: donor, expiry: day)
    }
}

extension StockDispatched: DirectlyDecodedPayload {
    init?(fields f: JSONFields) {
        guard let warehouse = f.string("warehouse"), let item = f.string("item"), let quantity = f.int64("quantity"),
              let destination = f.string("destination"), let response = f.optionalString("response"),
              let reference = f.optionalString("reference"), let transport = f.optionalString("transport") else { return nil }
        self.init(warehouse: warehouse, item: item, quantity: quantity, destination: destination, response: response, reference: reference,
                  transport: transport)
    }
}

extension StockReceived: DirectlyEncoded {
    var canonicalJSON: String { canonicalJSON(occurredAt: nil) }

    /// The event's text, or with a business time its command's (`ReceiveStock`, the same fields and `occurred_at`).
    func canonicalJSON(occurredAt: Date?) -> String {
        var o = CanonicalObject()
        o.field("donor", donor)
        o.field("expiry", described: expiry)
        o.field("item", item)
        o.field("occurred_at", occurredAt)
        o.field("quantity", quantity)
        o.field("reference", reference)
        o.field("source", source)
        o.field("warehouse", warehouse)
        return o.finish()
    }
}

extension StockDispatched: DirectlyEncoded {
    var canonicalJSON: String { canonicalJSON(occurredAt: nil) }

    /// The event's text, or with a business time its command's (`DispatchStock`, the same fields and `occurred_at`).
    func canonicalJSON(occurredAt: Date?) -> String {
        var o = CanonicalObject()
        o.field("destination", destination)
        o.field("item", item)
        o.field("occurred_at", occurredAt)
        o.field("quantity", quantity)
        o.field("reference", reference)
        o.field("response", response)
        o.field("transport", transport)
        o.field("warehouse", warehouse)
        return o.finish()
    }
}

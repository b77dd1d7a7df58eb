import Events
import Foundation

/// Warehouses, items, stock on hand against prepositioning levels, the stock card, and transfers.
public struct StockProjection: ReadModelProjection {
    public init() {}
    public let name = "stock"
    /// 2: movement ids, reversals, partial receipts and losses on both cards, jsonb kits, `no_levels`.
    /// 3: the card's `reverses` index holds reversals only, and its `id` index (no query used it) is gone.
    public let version = 3
    public let eventTypes: [String]? = [
        WarehouseRegistered.eventType, WarehouseAmended.eventType, ItemRegistered.eventType, ItemAmended.eventType,
        StockLevelsSet.eventType, StockReceived.eventType, StockDispatched.eventType, StockAdjusted.eventType, StockCounted.eventType,
        StockMovementReversed.eventType, StockTransferSent.eventType, StockTransferReceived.eventType, StockTransferReturned.eventType,
        TransferCreated.eventType, TransferReceived.eventType, TransferCancelled.eventType,
    ]

    typealias M = StockReadModel
    static let warehouses = ReadModelTable<M.Warehouse>("rm_warehouses", key: "code", empty: { M.Warehouse() }, [
        Column("code", \.code), Column("name", \.name), Column("country", \.country), Column("kind", \.kind),
        Column("pcode", \.pcode), Column("lat", \.lat), Column("lon", \.lon), Column("capacity_m3", \.capacityM3),
    ])
    static let items = ReadModelTable<M.Item>("rm_items", key: "code", empty: { M.Item() }, [
        Column("code", \.code), Column("name", \.name), Column("unit", \.unit), Column("category", \.category),
        Column("kit", \.kit), Column("is_kit", derived: \.isKit),
    ])
    static let stock = ReadModelTable<M.Stock>("rm_stock", key: "key", indexes: ["(warehouse, item)", "(status)"], empty: { M.Stock() }, [
        Column("key", derived: \.key), Column("warehouse", \.warehouse), Column("item", \.item), Column("on_hand", \.onHand),
        Column("in_transit_in", \.inTransitIn), Column("in_transit_out", \.inTransitOut), Column("minimum", \.minimum),
        Column("target", \.target), Column("status", derived: \.status), Column("households", \.households),
        Column("updated_at", \.updatedAt), Column("last_position", \.lastPosition),
    ])
    /// The stock card: append-only, one row per movement and warehouse (a loss in transit has a row on both cards).
    static let ledger = ReadModelTable<M.LedgerEntry>(
        "rm_stock_ledger", key: nil, primaryKey: "position, warehouse",
        indexes: ["(warehouse, item, position)", "(response, position)", "(reverses) WHERE reverses IS NOT NULL"], empty: { M.LedgerEntry() }, [
            Column("position", \.position), Column("id", \.id), Column("warehouse", \.warehouse), Column("item", \.item),
            Column("occurred_at", \.occurredAt), Column("recorded_at", \.recordedAt), Column("movement", \.movement),
            Column("quantity", \.quantity), Column("balance", \.balance), Column("lost", \.lost), Column("reference", \.reference),
            Column("counterpart", \.counterpart), Column("response", \.response), Column("reason", \.reason),
            Column("reverses", \.reverses), Column("actor", \.actor),
        ])
    static let transfers = ReadModelTable<M.Transfer>("rm_transfers", key: "id", indexes: ["(status)"], empty: { M.Transfer() }, [
        Column("id", \.id), Column("from_warehouse", \.from), Column("to_warehouse", \.to), Column("item", \.item),
        Column("quantity", \.quantity), Column("status", \.status), Column("received", \.received), Column("lost", \.lost),
        Column("receipts", \.receipts), Column("reference", \.reference), Column("transport", \.transport),
        Column("response", \.response), Column("sent_at", \.sentAt), Column("received_at", \.receivedAt),
        Column("cancelled_at", \.cancelledAt), Column("cancel_reason", \.cancelReason),
    ])

    var readModelTables: [any AnyReadModelTable] { [Self.warehouses, Self.items, Self.stock, Self.ledger, Self.transfers] }

    public func makeState() -> any ProjectionState { StockReadModel() }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = StockReadModel()
        for w in try Self.warehouses.load(c, suffix: s) { m.warehouses[w.code] = w }
        for i in try Self.items.load(c, suffix: s) { m.items[i.code] = i }
        for row in try Self.stock.load(c, suffix: s) { m.stock[row.key] = row }
        for t in try Self.transfers.load(c, suffix: s) { m.transfers[t.id] = t }
        return m
    }
}

/// The in-memory fold behind `StockProjection`; also used by replay to compute stock as of any moment.
public final class StockReadModel: DecodingProjectionState, AppendingProjectionState {
    public struct Warehouse: Sendable, Equatable {
        public var code = "", name = "", country = "", kind = ""
        public var pcode: String?
        public var lat, lon: Double?
        public var capacityM3: Int64?
    }

    public struct Item: Sendable, Equatable {
        public var code = "", name = "", unit = ""
        public var category: String?
        public var kit: [KitComponent]?
        public var isKit: Bool { !(kit ?? []).isEmpty }
    }

    public struct Stock: Sendable, Equatable {
        public var warehouse = "", item = ""
        public var onHand: Int64 = 0
        public var inTransitIn: Int64 = 0
        public var inTransitOut: Int64 = 0
        public var minimum: Int64?
        public var target: Int64?
        /// Households covered, for kits (a kit serves one household); set by the fold, which knows the items.
        public var households: Int64?
        public var updatedAt: Date?
        public var lastPosition: Int64 = 0
        public var key: String { warehouse + ":" + item }

        /// `below_minimum`, `below_target` or `ok` against on hand; `no_levels` when no level was ever set.
        public var status: String {
            if minimum == nil && target == nil { return "no_levels" }
            if let minimum, onHand < minimum { return "below_minimum" }
            if let target, onHand < target { return "below_target" }
            return "ok"
        }
    }

    public struct LedgerEntry: Sendable, Equatable {
        public var position: Int64 = 0
        /// The movement's id: the id of the event that made it (what a reversal names).
        public var id = ""
        public var warehouse = "", item = ""
        public var occurredAt = Date(timeIntervalSince1970: 0), recordedAt = Date(timeIntervalSince1970: 0)
        /// receipt, dispatch, adjustment, count, transfer_out, transfer_in, transfer_returned, transit_loss, or
        /// `<movement>_reversal`.
        public var movement = ""
        /// The change to on hand.
        public var quantity: Int64 = 0
        public var balance: Int64 = 0
        /// Units lost in transit (transit_loss rows: they change no balance, the goods had already left).
        public var lost: Int64?
        public var reference, counterpart, response, reason: String?
        /// The movement a reversal undoes.
        public var reverses: String?
        public var actor: String?
    }

    public struct Transfer: Sendable, Equatable {
        public var id = "", from = "", to = "", item = ""
        public var quantity: Int64 = 0
        /// in_transit, received or cancelled.
        public var status = ""
        /// Received so far (parts add up until the final receipt).
        public var received: Int64 = 0
        public var lost: Int64?
        public var receipts = 0
        public var reference, transport, response: String?
        public var sentAt = Date(timeIntervalSince1970: 0)
        public var receivedAt, cancelledAt: Date?
        public var cancelReason: String?
        /// Still on its way: sent, not received, not returned.
        public var outstanding: Int64 { status == "in_transit" ? quantity - received : 0 }
    }

    public var warehouses: [String: Warehouse] = [:]
    public var items: [String: Item] = [:]
    public var stock: [String: Stock] = [:]
    public var transfers: [String: Transfer] = [:]
    /// Stock card entries not yet flushed (the table is append-only; replay keeps them all).
    public var ledger: [LedgerEntry] = []
    /// Keep every ledger entry in memory (replay) rather than only until the next flush.
    public var keepsLedger = false

    /// Responses that transfer_out rows already written learnt since (see `transferCreated`).
    private var lateResponses: [(transfer: String, response: String)] = []
    private var dirtyWarehouses = DirtyKeys(), dirtyItems = DirtyKeys(), dirtyStock = DirtyKeys(), dirtyTransfers = DirtyKeys()

    public init() {}

    private func touch(_ warehouse: String, _ item: String, _ event: RecordedEvent, _ change: (inout Stock) -> Void) {
        let key = warehouse + ":" + item
        var row = stock[key] ?? Stock(warehouse: warehouse, item: item)
        change(&row)
        row.households = items[item]?.isKit == true ? row.onHand : nil
        row.updatedAt = event.occurredAt
        row.lastPosition = event.position
        stock[key] = row
        dirtyStock.touch(key)
    }

    private func move(_ warehouse: String, _ item: String, _ event: RecordedEvent, _ movement: String, _ quantity: Int64,
                      reference: String? = nil, counterpart: String? = nil, response: String? = nil, reason: String? = nil,
                      reverses: String? = nil, lost: Int64? = nil) {
        touch(warehouse, item, event) { $0.onHand.add(quantity) }
        ledger.append(LedgerEntry(position: event.position, id: event.id.lowercasedString, warehouse: warehouse, item: item,
                                  occurredAt: event.occurredAt, recordedAt: event.recordedAt, movement: movement, quantity: quantity,
                                  balance: stock[warehouse + ":" + item]!.onHand, lost: lost, reference: reference,
                                  counterpart: counterpart, response: response, reason: reason, reverses: reverses, actor: event.actor))
    }

    /// A transfer's goods stop being in transit (received, lost or returned).
    private func settle(_ t: Transfer, _ units: Int64, _ event: RecordedEvent) {
        touch(t.from, t.item, event) { $0.inTransitOut.subtract(units) }
        touch(t.to, t.item, event) { $0.inTransitIn.subtract(units) }
    }

    public static func decode(_ event: RecordedEvent) throws -> DomainEvent { try EventCodec.decode(event) }

    /// Applies an already decoded event (replay decodes once for several read models).
    public func apply(_ domainEvent: DomainEvent, _ event: RecordedEvent) throws {
        func transfer(_ id: String) throws -> Transfer {
            guard let t = transfers[id] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            return t
        }
        switch domainEvent {
        case .warehouseRegistered(let e):
            warehouses[e.code] = Warehouse(code: e.code, name: e.name, country: e.country, kind: e.kind, pcode: e.pcode, lat: e.lat,
                                           lon: e.lon, capacityM3: e.capacityM3)
            dirtyWarehouses.touch(e.code)
        case .warehouseAmended(let e):
            guard var w = warehouses[e.code] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            if let v = e.name { w.name = v }
            if let v = e.country { w.country = v }
            if let v = e.kind { w.kind = v }
            if let v = e.pcode { w.pcode = v }
            if let v = e.lat { w.lat = v }
            if let v = e.lon { w.lon = v }
            if let v = e.capacityM3 { w.capacityM3 = v }
            warehouses[e.code] = w
            dirtyWarehouses.touch(e.code)
        case .itemRegistered(let e):
            items[e.code] = Item(code: e.code, name: e.name, unit: e.unit, category: e.category, kit: e.kit)
            dirtyItems.touch(e.code)
        case .itemAmended(let e):
            guard var i = items[e.code] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            if let v = e.name { i.name = v }
            if let v = e.unit { i.unit = v }
            if let v = e.category { i.category = v }
            if let v = e.kit { i.kit = v }
            items[e.code] = i
            dirtyItems.touch(e.code)
        case .stockLevelsSet(let e):
            touch(e.warehouse, e.item, event) { $0.minimum = e.minimum; $0.target = e.target }
        case .stockReceived(let e):
            move(e.warehouse, e.item, event, "receipt", e.quantity, reference: e.reference, counterpart: e.donor, reason: e.source)
        case .stockDispatched(let e):
            move(e.warehouse, e.item, event, "dispatch", -e.quantity, reference: e.reference, counterpart: e.destination, response: e.response)
        case .stockAdjusted(let e):
            move(e.warehouse, e.item, event, "adjustment", e.delta, reason: e.reason)
        case .stockCounted(let e):
            move(e.warehouse, e.item, event, "count", e.variance, reason: "counted \(e.counted)")
        case .stockMovementReversed(let e):
            move(e.warehouse, e.item, event, e.movementType + "_reversal", e.delta, response: e.response, reason: e.reason, reverses: e.movement)
        case .stockTransferSent(let e):
            move(e.warehouse, e.item, event, "transfer_out", -e.quantity, reference: e.transfer, counterpart: e.to,
                 response: e.response ?? transfers[e.transfer]?.response)
        case .stockTransferReceived(let e):
            move(e.warehouse, e.item, event, "transfer_in", e.quantity, reference: e.transfer, counterpart: e.from,
                 response: e.response ?? transfers[e.transfer]?.response)
        case .stockTransferReturned(let e):
            move(e.warehouse, e.item, event, "transfer_returned", e.quantity, reference: e.transfer, response: transfers[e.transfer]?.response)
        case .transferCreated(let e):
            transfers[e.transfer] = Transfer(id: e.transfer, from: e.from, to: e.to, item: e.item, quantity: e.quantity, status: "in_transit",
                                             reference: e.reference, transport: e.transport, response: e.response, sentAt: event.occurredAt)
            dirtyTransfers.touch(e.transfer)
            touch(e.from, e.item, event) { $0.inTransitOut.add(e.quantity) }
            touch(e.to, e.item, event) { $0.inTransitIn.add(e.quantity) }
            // The sending card's transfer_out row (appended just before, on the stock stream) learns the response when
            // it has none (a response its own event carried stays): in memory, or, when a flush has written it
            // already, in its table at the next flush. A rebuild holds such a row back until now (`takeAppended`).
            if let r = e.response {
                if let i = ledger.lastIndex(where: { $0.reference == e.transfer && $0.movement == "transfer_out" }) {
                    if ledger[i].response == nil { ledger[i].response = r }
                } else {
                    lateResponses.append((transfer: e.transfer, response: r))
                }
            }
        case .transferReceived(let e):
            var t = try transfer(e.transfer)
            t.received.add(e.received)
            t.receipts += 1
            settle(t, e.received, event)
            if e.closes {
                (t.status, t.lost, t.receivedAt) = ("received", e.lost, event.occurredAt)
                if e.lost > 0 {
                    settle(t, e.lost, event)
                    // The loss shows on both cards: neither balance moves (the goods had left the one and never
                    // reached the other), but auditors of either warehouse see what went missing.
                    for (warehouse, counterpart) in [(t.from, t.to), (t.to, t.from)] {
                        move(warehouse, t.item, event, "transit_loss", 0, reference: t.id, counterpart: counterpart, response: t.response,
                             reason: "lost in transit", lost: e.lost)
                    }
                }
            }
            transfers[e.transfer] = t
            dirtyTransfers.touch(e.transfer)
        case .transferCancelled(let e):
            var t = try transfer(e.transfer)
            settle(t, t.quantity - t.received, event)
            (t.status, t.cancelledAt, t.cancelReason) = ("cancelled", event.occurredAt, e.reason)
            transfers[e.transfer] = t
            dirtyTransfers.touch(e.transfer)
        default:
            break
        }
    }

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        typealias P = StockProjection
        try dirtyWarehouses.flush(P.warehouses, c, suffix: s, rows: warehouses)
        try dirtyItems.flush(P.items, c, suffix: s, rows: items)
        try dirtyStock.flush(P.stock, c, suffix: s, rows: stock)
        try dirtyTransfers.flush(P.transfers, c, suffix: s, rows: transfers)
        try P.ledger.copy(c, suffix: s, rows: ledger)
        for late in lateResponses {
            try c.query(SQL(unsafe: "UPDATE \(P.ledger.name)\(s) SET response = ") + """
                \(late.response) WHERE reference = \(late.transfer) AND movement = 'transfer_out' AND response IS NULL
                """)
        }
        clearDirty()
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        typealias P = StockProjection
        try P.warehouses.copy(c, suffix: s, rows: warehouses.values)
        try P.items.copy(c, suffix: s, rows: items.values)
        try P.stock.copy(c, suffix: s, rows: stock.values)
        try P.transfers.copy(c, suffix: s, rows: transfers.values)
        try P.ledger.copy(c, suffix: s, rows: ledger)
        clearDirty()
    }

    public var appendedCount: Int { keepsLedger ? 0 : ledger.count }

    /// The stock card rows so far, but for a tail that still waits for its transfer: a `transfer_out` row of an
    /// older log, whose `stock.transfer_sent` had no response, learns it from the `transfer.created` that follows
    /// (above), so it and the rows after it stay until that transfer exists.
    public func takeAppended(suffix: String) -> @Sendable (PostgresConnection) throws -> Void {
        let waiting = ledger.firstIndex { $0.movement == "transfer_out" && $0.response == nil && transfers[$0.reference ?? ""] == nil }
        let rows: [LedgerEntry]
        if let waiting {
            rows = Array(ledger[..<waiting])
            ledger.removeFirst(waiting)
        } else {
            rows = ledger
            ledger.removeAll(keepingCapacity: true)
        }
        return { c in try StockProjection.ledger.copy(c, suffix: suffix, rows: rows) }
    }

    private func clearDirty() {
        dirtyWarehouses.clear(); dirtyItems.clear(); dirtyStock.clear(); dirtyTransfers.clear(); lateResponses.removeAll()
        if !keepsLedger { ledger.removeAll(keepingCapacity: true) }
    }
}

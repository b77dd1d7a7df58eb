import Events
import Foundation

/// Warehouses, items, stock on hand against prepositioning levels, the stock card, and transfers.
public struct StockProjection: ProjectionDefinition {
    public init() {}
    public let name = "stock"
    public let version = 1
    public let tables = ["rm_warehouses", "rm_items", "rm_stock", "rm_stock_ledger", "rm_transfers"]
    public let eventTypes: [String]? = [
        WarehouseRegistered.eventType, ItemRegistered.eventType, StockLevelsSet.eventType, StockReceived.eventType,
        StockDispatched.eventType, StockAdjusted.eventType, StockCounted.eventType, StockTransferSent.eventType,
        StockTransferReceived.eventType, StockTransferReturned.eventType, TransferCreated.eventType, TransferReceived.eventType,
        TransferCancelled.eventType,
    ]

    static let warehouseColumns = "code, name, country, kind, pcode, lat, lon, capacity_m3"
    static let itemColumns = "code, name, unit, category, kit, is_kit"
    static let stockColumns = "key, warehouse, item, on_hand, in_transit_in, in_transit_out, minimum, target, status, households, updated_at, last_position"
    static let ledgerColumns = "position, warehouse, item, occurred_at, recorded_at, movement, quantity, balance, reference, counterpart, response, reason"
    static let transferColumns = "id, from_warehouse, to_warehouse, item, quantity, status, received, lost, reference, transport, response, sent_at, received_at, cancelled_at"

    public func createTables(suffix s: String) -> [String] {
        [
            """
            CREATE TABLE rm_warehouses\(s) (code text PRIMARY KEY, name text NOT NULL, country text NOT NULL, kind text NOT NULL,
                pcode text, lat float8, lon float8, capacity_m3 bigint)
            """,
            "CREATE TABLE rm_items\(s) (code text PRIMARY KEY, name text NOT NULL, unit text NOT NULL, category text, kit text, is_kit boolean NOT NULL)",
            """
            CREATE TABLE rm_stock\(s) (key text PRIMARY KEY, warehouse text NOT NULL, item text NOT NULL, on_hand bigint NOT NULL,
                in_transit_in bigint NOT NULL, in_transit_out bigint NOT NULL, minimum bigint, target bigint, status text NOT NULL,
                households bigint, updated_at timestamptz, last_position bigint NOT NULL)
            """,
            "CREATE INDEX ON rm_stock\(s) (warehouse, item)",
            "CREATE INDEX ON rm_stock\(s) (status)",
            """
            CREATE TABLE rm_stock_ledger\(s) (position bigint PRIMARY KEY, warehouse text NOT NULL, item text NOT NULL,
                occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL, movement text NOT NULL, quantity bigint NOT NULL,
                balance bigint NOT NULL, reference text, counterpart text, response text, reason text)
            """,
            "CREATE INDEX ON rm_stock_ledger\(s) (warehouse, item, position)",
            "CREATE INDEX ON rm_stock_ledger\(s) (response, position)",
            """
            CREATE TABLE rm_transfers\(s) (id text PRIMARY KEY, from_warehouse text NOT NULL, to_warehouse text NOT NULL, item text NOT NULL,
                quantity bigint NOT NULL, status text NOT NULL, received bigint, lost bigint, reference text, transport text, response text,
                sent_at timestamptz NOT NULL, received_at timestamptz, cancelled_at timestamptz)
            """,
            "CREATE INDEX ON rm_transfers\(s) (status)",
        ]
    }

    public func makeState() -> any ProjectionState { StockReadModel() }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = StockReadModel()
        for r in try c.query(SQL(unsafe: "SELECT \(Self.warehouseColumns) FROM rm_warehouses\(s)")).rows {
            let w = StockReadModel.Warehouse(code: try r.decode("code"), name: try r.decode("name"), country: try r.decode("country"),
                                             kind: try r.decode("kind"), pcode: try r.decodeOptional("pcode"), lat: try r.decodeOptional("lat"),
                                             lon: try r.decodeOptional("lon"), capacityM3: try r.decodeOptional("capacity_m3"))
            m.warehouses[w.code] = w
        }
        for r in try c.query(SQL(unsafe: "SELECT \(Self.itemColumns) FROM rm_items\(s)")).rows {
            let i = StockReadModel.Item(code: try r.decode("code"), name: try r.decode("name"), unit: try r.decode("unit"),
                                        category: try r.decodeOptional("category"), kit: try r.decodeOptional("kit"), isKit: try r.decode("is_kit"))
            m.items[i.code] = i
        }
        for r in try c.query(SQL(unsafe: "SELECT \(Self.stockColumns) FROM rm_stock\(s)")).rows {
            let row = StockReadModel.Stock(warehouse: try r.decode("warehouse"), item: try r.decode("item"), onHand: try r.decode("on_hand"),
                                           inTransitIn: try r.decode("in_transit_in"), inTransitOut: try r.decode("in_transit_out"),
                                           minimum: try r.decodeOptional("minimum"), target: try r.decodeOptional("target"),
                                           updatedAt: try r.decodeOptional("updated_at"), lastPosition: try r.decode("last_position"))
            m.stock[row.key] = row
        }
        for r in try c.query(SQL(unsafe: "SELECT \(Self.transferColumns) FROM rm_transfers\(s)")).rows {
            let t = StockReadModel.Transfer(id: try r.decode("id"), from: try r.decode("from_warehouse"), to: try r.decode("to_warehouse"),
                                            item: try r.decode("item"), quantity: try r.decode("quantity"), status: try r.decode("status"),
                                            received: try r.decodeOptional("received"), lost: try r.decodeOptional("lost"),
                                            reference: try r.decodeOptional("reference"), transport: try r.decodeOptional("transport"),
                                            response: try r.decodeOptional("response"), sentAt: try r.decode("sent_at"),
                                            receivedAt: try r.decodeOptional("received_at"), cancelledAt: try r.decodeOptional("cancelled_at"))
            m.transfers[t.id] = t
        }
        return m
    }
}

/// The in-memory fold behind `StockProjection`; also used by replay to compute stock as of any moment.
public final class StockReadModel: ProjectionState {
    public struct Warehouse: Sendable, Equatable {
        public var code, name, country, kind: String
        public var pcode: String?
        public var lat, lon: Double?
        public var capacityM3: Int64?
    }

    public struct Item: Sendable, Equatable {
        public var code, name, unit: String
        public var category: String?
        /// Components as `item:quantity,...`.
        public var kit: String?
        public var isKit: Bool
    }

    public struct Stock: Sendable, Equatable {
        public var warehouse, item: String
        public var onHand: Int64 = 0
        public var inTransitIn: Int64 = 0
        public var inTransitOut: Int64 = 0
        public var minimum: Int64?
        public var target: Int64?
        public var updatedAt: Date?
        public var lastPosition: Int64 = 0
        public var key: String { warehouse + ":" + item }

        /// below_minimum, below_target or ok (against on hand; levels unset count as met).
        public var status: String {
            if let minimum, onHand < minimum { return "below_minimum" }
            if let target, onHand < target { return "below_target" }
            return "ok"
        }
    }

    public struct LedgerEntry: Sendable, Equatable {
        public var position: Int64
        public var warehouse, item: String
        public var occurredAt, recordedAt: Date
        public var movement: String
        public var quantity: Int64
        public var balance: Int64
        public var reference, counterpart, response, reason: String?
    }

    public struct Transfer: Sendable, Equatable {
        public var id, from, to, item: String
        public var quantity: Int64
        public var status: String
        public var received, lost: Int64?
        public var reference, transport, response: String?
        public var sentAt: Date
        public var receivedAt, cancelledAt: Date?
    }

    public var warehouses: [String: Warehouse] = [:]
    public var items: [String: Item] = [:]
    public var stock: [String: Stock] = [:]
    public var transfers: [String: Transfer] = [:]
    /// Stock card entries not yet flushed (the table is append-only; replay keeps them all).
    public var ledger: [LedgerEntry] = []
    /// Keep every ledger entry in memory (replay) rather than only until the next flush.
    public var keepsLedger = false

    private var dirtyWarehouses = Set<String>()
    private var dirtyItems = Set<String>()
    private var dirtyStock = Set<String>()
    private var dirtyTransfers = Set<String>()

    public init() {}

    private func touch(_ warehouse: String, _ item: String, _ event: RecordedEvent, _ change: (inout Stock) -> Void) {
        let key = warehouse + ":" + item
        var row = stock[key] ?? Stock(warehouse: warehouse, item: item)
        change(&row)
        row.updatedAt = event.occurredAt
        row.lastPosition = event.position
        stock[key] = row
        dirtyStock.insert(key)
    }

    private func move(_ warehouse: String, _ item: String, _ event: RecordedEvent, _ movement: String, _ quantity: Int64,
                      reference: String? = nil, counterpart: String? = nil, response: String? = nil, reason: String? = nil) {
        touch(warehouse, item, event) { $0.onHand += quantity }
        ledger.append(LedgerEntry(position: event.position, warehouse: warehouse, item: item, occurredAt: event.occurredAt,
                                  recordedAt: event.recordedAt, movement: movement, quantity: quantity,
                                  balance: stock[warehouse + ":" + item]!.onHand, reference: reference, counterpart: counterpart,
                                  response: response, reason: reason))
    }

    public func apply(_ event: RecordedEvent) throws {
        try apply(EventCodec.decode(event), event)
    }

    /// Applies an already decoded payload (replay decodes once for several read models).
    public func apply(_ payload: any EventPayload, _ event: RecordedEvent) throws {
        switch payload {
        case let e as WarehouseRegistered:
            warehouses[e.code] = Warehouse(code: e.code, name: e.name, country: e.country, kind: e.kind, pcode: e.pcode, lat: e.lat,
                                           lon: e.lon, capacityM3: e.capacityM3)
            dirtyWarehouses.insert(e.code)
        case let e as ItemRegistered:
            let kit = e.kit.map { $0.map { "\($0.item):\($0.quantity)" }.joined(separator: ",") }
            items[e.code] = Item(code: e.code, name: e.name, unit: e.unit, category: e.category, kit: kit, isKit: !(e.kit ?? []).isEmpty)
            dirtyItems.insert(e.code)
        case let e as StockLevelsSet:
            touch(e.warehouse, e.item, event) { $0.minimum = e.minimum; $0.target = e.target }
        case let e as StockReceived:
            move(e.warehouse, e.item, event, "receipt", e.quantity, reference: e.reference, counterpart: e.donor, reason: e.source)
        case let e as StockDispatched:
            move(e.warehouse, e.item, event, "dispatch", -e.quantity, reference: e.reference, counterpart: e.destination, response: e.response)
        case let e as StockAdjusted:
            move(e.warehouse, e.item, event, "adjustment", e.delta, reason: e.reason)
        case let e as StockCounted:
            move(e.warehouse, e.item, event, "count", e.variance, reason: "counted \(e.counted)")
        case let e as StockTransferSent:
            move(e.warehouse, e.item, event, "transfer_out", -e.quantity, reference: e.transfer, counterpart: e.to,
                 response: transfers[e.transfer]?.response)
        case let e as StockTransferReceived:
            move(e.warehouse, e.item, event, "transfer_in", e.quantity, reference: e.transfer, counterpart: e.from)
        case let e as StockTransferReturned:
            move(e.warehouse, e.item, event, "transfer_returned", e.quantity, reference: e.transfer)
        case let e as TransferCreated:
            transfers[e.transfer] = Transfer(id: e.transfer, from: e.from, to: e.to, item: e.item, quantity: e.quantity, status: "in_transit",
                                             reference: e.reference, transport: e.transport, response: e.response, sentAt: event.occurredAt)
            dirtyTransfers.insert(e.transfer)
            touch(e.from, e.item, event) { $0.inTransitOut += e.quantity }
            touch(e.to, e.item, event) { $0.inTransitIn += e.quantity }
        case let e as TransferReceived:
            guard var t = transfers[e.transfer] else { throw EventCodecError.malformed(type: TransferReceived.eventType, position: event.position) }
            (t.status, t.received, t.lost, t.receivedAt) = ("received", e.received, e.lost, event.occurredAt)
            transfers[e.transfer] = t
            dirtyTransfers.insert(e.transfer)
            touch(t.from, t.item, event) { $0.inTransitOut -= t.quantity }
            touch(t.to, t.item, event) { $0.inTransitIn -= t.quantity }
        case let e as TransferCancelled:
            guard var t = transfers[e.transfer] else { throw EventCodecError.malformed(type: TransferCancelled.eventType, position: event.position) }
            (t.status, t.cancelledAt) = ("cancelled", event.occurredAt)
            transfers[e.transfer] = t
            dirtyTransfers.insert(e.transfer)
            touch(t.from, t.item, event) { $0.inTransitOut -= t.quantity }
            touch(t.to, t.item, event) { $0.inTransitIn -= t.quantity }
        default:
            break
        }
    }

    /// Households covered: a kit serves one household.
    func households(_ row: Stock) -> Int64? { items[row.item]?.isKit == true ? row.onHand : nil }

    func lines(warehouses keys: some Sequence<String>) -> [String] {
        keys.compactMap { warehouses[$0] }.map { w in
            var l = CopyLine()
            l.add(w.code); l.add(w.name); l.add(w.country); l.add(w.kind); l.add(w.pcode); l.add(w.lat); l.add(w.lon); l.add(w.capacityM3)
            return l.text
        }
    }

    func lines(items keys: some Sequence<String>) -> [String] {
        keys.compactMap { items[$0] }.map { i in
            var l = CopyLine()
            l.add(i.code); l.add(i.name); l.add(i.unit); l.add(i.category); l.add(i.kit); l.add(i.isKit ? "t" : "f")
            return l.text
        }
    }

    func lines(stock keys: some Sequence<String>) -> [String] {
        keys.compactMap { stock[$0] }.map { s in
            var l = CopyLine()
            l.add(s.key); l.add(s.warehouse); l.add(s.item); l.add(s.onHand); l.add(s.inTransitIn); l.add(s.inTransitOut)
            l.add(s.minimum); l.add(s.target); l.add(s.status); l.add(households(s)); l.add(s.updatedAt); l.add(s.lastPosition)
            return l.text
        }
    }

    func lines(transfers keys: some Sequence<String>) -> [String] {
        keys.compactMap { transfers[$0] }.map { t in
            var l = CopyLine()
            l.add(t.id); l.add(t.from); l.add(t.to); l.add(t.item); l.add(t.quantity); l.add(t.status); l.add(t.received); l.add(t.lost)
            l.add(t.reference); l.add(t.transport); l.add(t.response); l.add(t.sentAt); l.add(t.receivedAt); l.add(t.cancelledAt)
            return l.text
        }
    }

    func ledgerLines() -> [String] {
        ledger.map { e in
            var l = CopyLine()
            l.add(e.position); l.add(e.warehouse); l.add(e.item); l.add(e.occurredAt); l.add(e.recordedAt); l.add(e.movement)
            l.add(e.quantity); l.add(e.balance); l.add(e.reference); l.add(e.counterpart); l.add(e.response); l.add(e.reason)
            return l.text
        }
    }

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        typealias P = StockProjection
        try TableIO.replace(c, table: "rm_warehouses", suffix: s, columns: P.warehouseColumns, keyColumn: "code",
                            keys: Array(dirtyWarehouses), lines: lines(warehouses: dirtyWarehouses))
        try TableIO.replace(c, table: "rm_items", suffix: s, columns: P.itemColumns, keyColumn: "code",
                            keys: Array(dirtyItems), lines: lines(items: dirtyItems))
        try TableIO.replace(c, table: "rm_stock", suffix: s, columns: P.stockColumns, keyColumn: "key",
                            keys: Array(dirtyStock), lines: lines(stock: dirtyStock))
        try TableIO.replace(c, table: "rm_transfers", suffix: s, columns: P.transferColumns, keyColumn: "id",
                            keys: Array(dirtyTransfers), lines: lines(transfers: dirtyTransfers))
        try TableIO.copy(c, table: "rm_stock_ledger", suffix: s, columns: P.ledgerColumns, lines: ledgerLines())
        clearDirty()
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        typealias P = StockProjection
        try TableIO.copy(c, table: "rm_warehouses", suffix: s, columns: P.warehouseColumns, lines: lines(warehouses: warehouses.keys))
        try TableIO.copy(c, table: "rm_items", suffix: s, columns: P.itemColumns, lines: lines(items: items.keys))
        try TableIO.copy(c, table: "rm_stock", suffix: s, columns: P.stockColumns, lines: lines(stock: stock.keys))
        try TableIO.copy(c, table: "rm_transfers", suffix: s, columns: P.transferColumns, lines: lines(transfers: transfers.keys))
        try TableIO.copy(c, table: "rm_stock_ledger", suffix: s, columns: P.ledgerColumns, lines: ledgerLines())
        clearDirty()
    }

    private func clearDirty() {
        dirtyWarehouses.removeAll(keepingCapacity: true)
        dirtyItems.removeAll(keepingCapacity: true)
        dirtyStock.removeAll(keepingCapacity: true)
        dirtyTransfers.removeAll(keepingCapacity: true)
        if !keepsLedger { ledger.removeAll(keepingCapacity: true) }
    }
}

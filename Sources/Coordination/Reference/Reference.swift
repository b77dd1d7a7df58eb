import Events
import Foundation

public enum WarehouseKind {
    public static let all = ["global_hub", "regional", "national", "field"]
}

struct WarehouseState: AggregateState {
    var code = ""
    var name = ""
    var country = ""
    var kind = ""
    var pcode: String?
    var lat: Double?
    var lon: Double?
    var capacityM3: Int64?

    mutating func apply(_ payload: any EventPayload, _ event: RecordedEvent) {
        if let e = payload as? WarehouseRegistered {
            (code, name, country, kind, pcode, lat, lon, capacityM3) = (e.code, e.name, e.country, e.kind, e.pcode, e.lat, e.lon, e.capacityM3)
        }
    }
}

struct ItemState: AggregateState {
    var code = ""
    var name = ""
    var unit = ""
    var category: String?
    var kit: [KitComponent]?

    mutating func apply(_ payload: any EventPayload, _ event: RecordedEvent) {
        if let e = payload as? ItemRegistered {
            (code, name, unit, category, kit) = (e.code, e.name, e.unit, e.category, e.kit)
        }
    }
}

/// `POST /v1/warehouses`
public struct RegisterWarehouse: DomainCommand {
    public var createdStream: String? { Streams.warehouse(code) }
    public static let name = "warehouse.register"
    public static let fields = ["code", "name", "country", "kind", "pcode", "lat", "lon", "capacity_m3", "occurred_at"]
    public var code: String
    public var name: String
    public var country: String
    public var kind: String
    public var pcode: String?
    public var lat: Double?
    public var lon: Double?
    public var capacityM3: Int64?
    public var occurredAt: Date?

    public init(code: String, name: String, country: String, kind: String, pcode: String? = nil, lat: Double? = nil,
                lon: Double? = nil, capacityM3: Int64? = nil, occurredAt: Date? = nil) {
        (self.code, self.name, self.country, self.kind, self.pcode) = (code, name, country, kind, pcode)
        (self.lat, self.lon, self.capacityM3, self.occurredAt) = (lat, lon, capacityM3, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(code, "code")
        v.text(name, "name")
        v.country(country, "country")
        v.oneOf(kind, "kind", WarehouseKind.all)
        v.pcode(pcode, "pcode")
        if let lat, !(-90...90).contains(lat) { v.fail("lat", "must be from -90 to 90") }
        if let lon, !(-180...180).contains(lon) { v.fail("lon", "must be from -180 to 180") }
        if (lat == nil) != (lon == nil) { v.fail(lat == nil ? "lat" : "lon", "lat and lon go together") }
        if let c = capacityM3, c < 0 || c > 10_000_000 { v.fail("capacity_m3", "must be from 0 to 10000000") }
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let e = WarehouseRegistered(code: code, name: name, country: country, kind: kind, pcode: pcode, lat: lat, lon: lon, capacityM3: capacityM3)
        return try await s.create(self, ctx, kind: "warehouse", id: code, stream: Streams.warehouse(code), state: WarehouseState.self,
                                  occurredAt: occurredAt) { e }
    }
}

/// `POST /v1/items`
public struct RegisterItem: DomainCommand {
    public var createdStream: String? { Streams.item(code) }
    public static let name = "item.register"
    public static let fields = ["code", "name", "unit", "category", "kit", "occurred_at"]
    public var code: String
    public var name: String
    public var unit: String
    public var category: String?
    public var kit: [KitComponent]?
    public var occurredAt: Date?

    public init(code: String, name: String, unit: String, category: String? = nil, kit: [KitComponent]? = nil, occurredAt: Date? = nil) {
        (self.code, self.name, self.unit, self.category, self.kit, self.occurredAt) = (code, name, unit, category, kit, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(code, "code")
        v.text(name, "name")
        v.text(unit, "unit", max: 32)
        v.text(category, "category", max: 64)
        if let kit {
            if kit.isEmpty || kit.count > 50 { v.fail("kit", "must list 1 to 50 components") }
            for (i, c) in kit.enumerated() {
                v.id(c.item, "kit[\(i)].item")
                v.quantity(c.quantity, "kit[\(i)].quantity")
                if c.item == code { v.fail("kit[\(i)].item", "a kit cannot contain itself") }
            }
            if Set(kit.map(\.item)).count != kit.count { v.fail("kit", "lists a component twice") }
        }
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let e = ItemRegistered(code: code, name: name, unit: unit, category: category, kit: kit)
        let components = kit?.map(\.item) ?? []
        return try await s.create(self, ctx, kind: "item", id: code, stream: Streams.item(code), state: ItemState.self, occurredAt: occurredAt,
                                  check: {
            for c in components { try await s.requireExists("item", c, stream: Streams.item(c)) }
        }) { e }
    }
}

/// `PUT /v1/warehouses/{code}/levels/{item}`: prepositioning levels.
public struct SetLevels: DomainCommand {
    public static let name = "levels.set"
    public static let fields = ["code", "item", "minimum", "target", "occurred_at"]
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
        if minimum < 0 || minimum > Validator.maxQuantity { v.fail("minimum", "must be from 0 to \(Validator.maxQuantity)") }
        if target < 0 || target > Validator.maxQuantity { v.fail("target", "must be from 0 to \(Validator.maxQuantity)") }
        if minimum > target { v.fail("minimum", "must not exceed target") }
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        try await s.stockCommand(self, ctx, warehouse: code, item: item, occurredAt: occurredAt) { _ in
            [StockLevelsSet(warehouse: code, item: item, minimum: minimum, target: target)]
        }
    }
}

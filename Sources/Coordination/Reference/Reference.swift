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
    /// When it was registered (business time): a correction is not dated before it.
    var registeredAt: Date?

    enum CodingKeys: String, CodingKey { case code, name, country, kind, pcode, lat, lon, capacityM3 }

    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent) {
        switch event {
        case .warehouseRegistered(let e):
            (code, name, country, kind, pcode, lat, lon, capacityM3) = (e.code, e.name, e.country, e.kind, e.pcode, e.lat, e.lon, e.capacityM3)
            registeredAt = recorded.occurredAt
        case .warehouseAmended(let e):
            if let v = e.name { name = v }
            if let v = e.country { country = v }
            if let v = e.kind { kind = v }
            if let v = e.pcode { pcode = v }
            if let v = e.lat { lat = v }
            if let v = e.lon { lon = v }
            if let v = e.capacityM3 { capacityM3 = v }
        default: break
        }
    }
}

struct ItemState: AggregateState {
    var code = ""
    var name = ""
    var unit = ""
    var category: String?
    var kit: [KitComponent]?
    /// When it was registered (business time): a correction is not dated before it.
    var registeredAt: Date?

    enum CodingKeys: String, CodingKey { case code, name, unit, category, kit }

    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent) {
        switch event {
        case .itemRegistered(let e): (code, name, unit, category, kit, registeredAt) = (e.code, e.name, e.unit, e.category, e.kit, recorded.occurredAt)
        case .itemAmended(let e):
            if let v = e.name { name = v }
            if let v = e.unit { unit = v }
            if let v = e.category { category = v }
            if let v = e.kit { kit = v }
        default: break
        }
    }
}

/// A warehouse: a global hub, a regional, national or field warehouse.
public struct RegisterWarehouse: DomainCommand {
    public var createdStream: String? { Streams.warehouse(code) }
    public static let name = "warehouse.register"
    public static let creates = true
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
        Self.validatePlace(&v, lat: lat, lon: lon, capacityM3: capacityM3)
        if (lat == nil) != (lon == nil) { v.fail(lat == nil ? "lat" : "lon", "lat and lon go together") }
        v.time(occurredAt, "occurred_at")
    }

    static func validatePlace(_ v: inout Validator, lat: Double?, lon: Double?, capacityM3: Int64?) {
        v.number(lat, "lat", -90...90)
        v.number(lon, "lon", -180...180)
        v.integer(capacityM3, "capacity_m3", 0...10_000_000)
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let e = WarehouseRegistered(code: code, name: name, country: country, kind: kind, pcode: pcode, lat: lat, lon: lon, capacityM3: capacityM3)
        return try await s.create(self, ctx, kind: "warehouse", id: code, stream: Streams.warehouse(code), state: WarehouseState.self,
                                  occurredAt: occurredAt) { .warehouseRegistered(e) }
    }
}

/// An item, by its Emergency Items Catalogue code where it has one; a kit lists its components.
public struct RegisterItem: DomainCommand {
    public var createdStream: String? { Streams.item(code) }
    public static let name = "item.register"
    public static let creates = true
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
        Self.validateKit(&v, kit, code: code)
        v.time(occurredAt, "occurred_at")
    }

    static func validateKit(_ v: inout Validator, _ kit: [KitComponent]?, code: String) {
        guard let kit else { return }
        if kit.isEmpty || kit.count > 50 { v.fail("kit", "must list 1 to 50 components") }
        for (i, c) in kit.enumerated() {
            v.id(c.item, "kit[\(i)].item")
            v.quantity(c.quantity, "kit[\(i)].quantity")
            if c.item == code { v.fail("kit[\(i)].item", "a kit cannot contain itself") }
        }
        if Set(kit.map(\.item)).count != kit.count { v.fail("kit", "lists a component twice") }
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let e = ItemRegistered(code: code, name: name, unit: unit, category: category, kit: kit)
        let components = kit?.map(\.item) ?? []
        return try await s.create(self, ctx, kind: "item", id: code, stream: Streams.item(code), state: ItemState.self, occurredAt: occurredAt,
                                  check: {
            for c in components { try await s.requireExists("item", c, stream: Streams.item(c)) }
        }) { .itemRegistered(e) }
    }
}

/// Corrects a warehouse's registration; the code stays.
public struct AmendWarehouse: DomainCommand {
    public static let name = "warehouse.amend"
    public var code: String
    public var name: String?
    public var country: String?
    public var kind: String?
    public var pcode: String?
    public var lat: Double?
    public var lon: Double?
    public var capacityM3: Int64?
    public var reason: String?
    /// When the correction was made (default: when the command arrived).
    public var occurredAt: Date?

    public func validate(_ v: inout Validator) {
        v.id(code, "code")
        v.text(name, "name")
        v.country(country, "country")
        v.oneOf(kind, "kind", WarehouseKind.all)
        v.pcode(pcode, "pcode")
        RegisterWarehouse.validatePlace(&v, lat: lat, lon: lon, capacityM3: capacityM3)
        v.text(reason, "reason", max: 1000)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let c = self
        return try await s.step(self, ctx, kind: "warehouse", id: code, stream: Streams.warehouse(code), state: WarehouseState.self,
                                occurredAt: occurredAt) { w, version, at in
            try Validator.requireOrder(at, notBefore: w.registeredAt, "the registration")
            let e = WarehouseAmended(code: c.code, name: Amend.changed(c.name, w.name), country: Amend.changed(c.country, w.country),
                                     kind: Amend.changed(c.kind, w.kind), pcode: Amend.changed(c.pcode, w.pcode),
                                     lat: Amend.changed(c.lat, w.lat), lon: Amend.changed(c.lon, w.lon),
                                     capacityM3: Amend.changed(c.capacityM3, w.capacityM3), reason: c.reason, amends: version)
            try Amend.requireChange([e.name, e.country, e.kind, e.pcode, e.lat, e.lon, e.capacityM3])
            if ((e.lat ?? w.lat) == nil) != ((e.lon ?? w.lon) == nil) { throw DomainError.invalid("lat", "lat and lon go together") }
            return [.warehouseAmended(e)]
        }
    }
}

/// Corrects an item's registration (name, unit, category, kit components); the code stays.
public struct AmendItem: DomainCommand {
    public static let name = "item.amend"
    public var code: String
    public var name: String?
    public var unit: String?
    public var category: String?
    public var kit: [KitComponent]?
    public var reason: String?
    /// When the correction was made (default: when the command arrived).
    public var occurredAt: Date?

    public func validate(_ v: inout Validator) {
        v.id(code, "code")
        v.text(name, "name")
        v.text(unit, "unit", max: 32)
        v.text(category, "category", max: 64)
        RegisterItem.validateKit(&v, kit, code: code)
        v.text(reason, "reason", max: 1000)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let c = self
        for component in kit ?? [] { try await s.requireExists("item", component.item, stream: Streams.item(component.item)) }
        return try await s.step(self, ctx, kind: "item", id: code, stream: Streams.item(code), state: ItemState.self, occurredAt: occurredAt) { i, version, at in
            try Validator.requireOrder(at, notBefore: i.registeredAt, "the registration")
            let e = ItemAmended(code: c.code, name: Amend.changed(c.name, i.name), unit: Amend.changed(c.unit, i.unit),
                                category: Amend.changed(c.category, i.category), kit: Amend.changed(c.kit, i.kit), reason: c.reason,
                                amends: version)
            try Amend.requireChange([e.name, e.unit, e.category, e.kit])
            return [.itemAmended(e)]
        }
    }
}

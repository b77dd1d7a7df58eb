import Events
import Foundation

// Events of reference data: `warehouse-<code>` and `item-<code>`.

public struct WarehouseRegistered: EventPayload {
    public static let eventType = "warehouse.registered"
    public var code: String
    public var name: String
    public var country: String
    public var kind: String
    public var pcode: String?
    public var lat: Double?
    public var lon: Double?
    public var capacityM3: Int64?
}

/// A correction of a warehouse's registration: the fields present replace the registered ones.
public struct WarehouseAmended: EventPayload {
    public static let eventType = "warehouse.amended"
    public var code: String
    public var name: String?
    public var country: String?
    public var kind: String?
    public var pcode: String?
    public var lat: Double?
    public var lon: Double?
    public var capacityM3: Int64?
    public var reason: String?
    public var amends: Int64
}

public struct KitComponent: Codable, Sendable, Equatable {
    public var item: String
    public var quantity: Int64
    public init(item: String, quantity: Int64) { (self.item, self.quantity) = (item, quantity) }
}

public struct ItemRegistered: EventPayload {
    public static let eventType = "item.registered"
    public var code: String
    public var name: String
    public var unit: String
    public var category: String?
    public var kit: [KitComponent]?
}

/// A correction of an item's registration: the fields present replace the registered ones.
public struct ItemAmended: EventPayload {
    public static let eventType = "item.amended"
    public var code: String
    public var name: String?
    public var unit: String?
    public var category: String?
    public var kit: [KitComponent]?
    public var reason: String?
    public var amends: Int64
}

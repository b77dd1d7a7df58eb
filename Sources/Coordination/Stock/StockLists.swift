import Events
import Foundation

// The lists of the stock read model. Every filter is a bind parameter; every column has an HXL hashtag.

extension Lists {
    /// Warehouses and hubs.
    public static let warehouses = ListSpec(
        "warehouses", "Warehouses and hubs",
        filters: [ListFilter("country", .id, "ISO 3166-1 alpha-3 country"), ListFilter("kind", .oneOf(WarehouseKind.all), "Kind of warehouse")],
        hxl: ["code": "#loc+code", "name": "#loc+name", "country": "#country+code", "kind": "#loc+type", "pcode": "#loc+pcode",
              "adm1": "#adm1+code", "adm2": "#adm2+code", "lat": "#geo+lat", "lon": "#geo+lon", "capacity_m3": "#capacity+m3"],
        reads: ["stock"],
        key: ListSpec.column("code")
    ) { source, a, limit, after in
        let (country, kind, scoped) = (a["country"], a["kind"], a.warehousesInScope)
        return try await source.queries.table("""
            SELECT code, name, country, kind, pcode, \(PCodeLevels.columns("pcode")), lat, lon, capacity_m3
            FROM rm_warehouses
            WHERE (\(country)::text IS NULL OR country = \(country)) AND (\(kind)::text IS NULL OR kind = \(kind))
              AND (\(scoped)::text[] IS NULL OR code = ANY(\(scoped)::text[]))
              AND (\(after)::text IS NULL OR code > \(after))
            ORDER BY code LIMIT \(limit)
            """)
    }

    /// Items of the catalogue, kits with their components.
    public static let items = ListSpec(
        "items", "Items, with kits' components",
        filters: [ListFilter("category", .text, "Item category"), ListFilter("kit", .flag, "Only kits (true) or only single items (false)")],
        hxl: ["code": "#item+code", "name": "#item+name", "unit": "#item+unit", "category": "#item+type", "kit": "#item+kit+list",
              "is_kit": "#item+is_kit"],
        reads: ["stock"],
        key: ListSpec.column("code")
    ) { source, a, limit, after in
        let (category, kit) = (a["category"], a["kit"])
        return try await source.queries.table("""
            SELECT code, name, unit, category, kit, is_kit FROM rm_items
            WHERE (\(category)::text IS NULL OR category = \(category)) AND (\(kit)::boolean IS NULL OR is_kit = \(kit)::boolean)
              AND (\(after)::text IS NULL OR code > \(after))
            ORDER BY code LIMIT \(limit)
            """)
    }

    /// Stock on hand against prepositioning levels, per warehouse and item.
    public static let stock = ListSpec(
        "stock", "Stock on hand, in transit and against prepositioning levels, per warehouse and item",
        filters: [ListFilter("warehouse", .id, "Warehouse code"), ListFilter("item", .id, "Item code"),
                  ListFilter("status", .oneOf(StockVocabulary.statuses), "Against the levels"),
                  ListFilter("country", .id, "Warehouses of this country (ISO 3166-1 alpha-3)")],
        hxl: ["warehouse": "#loc+code", "warehouse_name": "#loc+name", "country": "#country+code", "pcode": "#loc+pcode",
              "adm1": "#adm1+code", "adm2": "#adm2+code", "item": "#item+code", "item_name": "#item+name", "unit": "#item+unit",
              "on_hand": "#capacity+num+onhand", "in_transit_in": "#capacity+num+transit+in", "in_transit_out": "#capacity+num+transit+out",
              "minimum": "#capacity+num+min", "target": "#capacity+num+target", "status": "#status", "households": "#capacity+num+households",
              "updated_at": "#date+reported"],
        reads: ["stock"],
        key: ListSpec.columns("warehouse", "item")
    ) { source, a, limit, after in
        let (warehouse, item, status, country, scoped) = (a["warehouse"], a["item"], a["status"], a["country"], a.warehousesInScope)
        return try await source.queries.table("""
            SELECT s.warehouse, w.name AS warehouse_name, w.country, w.pcode, \(PCodeLevels.columns("w.pcode")), s.item, i.name AS item_name,
                   i.unit, s.on_hand, s.in_transit_in, s.in_transit_out, s.minimum, s.target, s.status, s.households, s.updated_at
            FROM rm_stock s JOIN rm_warehouses w ON w.code = s.warehouse JOIN rm_items i ON i.code = s.item
            WHERE (\(warehouse)::text IS NULL OR s.warehouse = \(warehouse)) AND (\(item)::text IS NULL OR s.item = \(item))
              AND (\(status)::text IS NULL OR s.status = \(status)) AND (\(country)::text IS NULL OR w.country = \(country))
              AND (\(scoped)::text[] IS NULL OR s.warehouse = ANY(\(scoped)::text[]))
              AND (\(after)::text IS NULL OR s.key > \(after))
            ORDER BY s.key LIMIT \(limit)
            """)
    }

    /// The stock card: every movement with its running balance, and what reversed it.
    public static let ledger = ListSpec(
        "ledger", "The stock card: every movement with its running balance",
        filters: [ListFilter("warehouse", .id, "Warehouse code"), ListFilter("item", .id, "Item code"),
                  ListFilter("response", .id, "Movements for this response"),
                  ListFilter("movement", .oneOf(["receipt", "dispatch", "adjustment", "count", "transfer_out", "transfer_in",
                                                 "transfer_returned", "transit_loss", "receipt_reversal", "dispatch_reversal",
                                                 "adjustment_reversal", "count_reversal"]), "Kind of movement")],
        hxl: ["position": "#meta+position", "id": "#meta+id", "warehouse": "#loc+code", "item": "#item+code", "occurred_at": "#date+occurred",
              "recorded_at": "#date+reported", "movement": "#activity+type", "quantity": "#capacity+num+change",
              "balance": "#capacity+num+balance", "lost": "#capacity+num+lost", "reference": "#meta+ref", "counterpart": "#meta+counterpart",
              "response": "#crisis+code", "reason": "#description+reason", "reverses": "#meta+reverses", "reversed_by": "#meta+reversed_by",
              "actor": "#meta+actor"],
        reads: ["stock"],
        key: ListSpec.columns("position", "warehouse")
    ) { source, a, limit, after in
        let (warehouse, item, response, movement, scoped) = (a["warehouse"], a["item"], a["response"], a["movement"], a.warehousesInScope)
        let cursor = after.map(PositionCursor.init)
        return try await source.queries.table("""
            SELECT l.position, l.id, l.warehouse, l.item, l.occurred_at, l.recorded_at, l.movement, l.quantity, l.balance, l.lost, l.reference,
                   l.counterpart, l.response, l.reason, l.reverses, r.id AS reversed_by, l.actor
            FROM rm_stock_ledger l LEFT JOIN rm_stock_ledger r ON r.reverses = l.id
            WHERE (\(warehouse)::text IS NULL OR l.warehouse = \(warehouse)) AND (\(item)::text IS NULL OR l.item = \(item))
              AND (\(response)::text IS NULL OR l.response = \(response)) AND (\(movement)::text IS NULL OR l.movement = \(movement))
              AND (\(scoped)::text[] IS NULL OR l.warehouse = ANY(\(scoped)::text[]))
              AND (\(cursor?.position)::bigint IS NULL OR (l.position, l.warehouse) > (\(cursor?.position)::bigint, \(cursor?.rest)::text))
            ORDER BY l.position, l.warehouse LIMIT \(limit)
            """)
    }

    /// Transfers between warehouses: in transit, received (in parts), cancelled.
    public static let transfers = ListSpec(
        "transfers", "Transfers between warehouses",
        filters: [ListFilter("status", .oneOf(["in_transit", "received", "cancelled"]), "Where the transfer stands"),
                  ListFilter("from", .id, "Sending warehouse"), ListFilter("to", .id, "Receiving warehouse"), ListFilter("item", .id, "Item code"),
                  ListFilter("response", .id, "Transfers for this response")],
        hxl: ["id": "#meta+id", "from": "#loc+code+origin", "to": "#loc+code+dest", "item": "#item+code", "quantity": "#capacity+num+sent",
              "received": "#capacity+num+received", "lost": "#capacity+num+lost", "receipts": "#meta+receipts", "status": "#status",
              "reference": "#meta+ref", "transport": "#meta+transport", "response": "#crisis+code", "sent_at": "#date+start",
              "received_at": "#date+end", "cancelled_at": "#date+cancelled", "cancel_reason": "#description+reason"],
        reads: ["stock"],
        key: ListSpec.column("id")
    ) { source, a, limit, after in
        let (status, from, to, item, response, scoped) = (a["status"], a["from"], a["to"], a["item"], a["response"], a.warehousesInScope)
        return try await source.queries.table("""
            SELECT id, from_warehouse AS "from", to_warehouse AS "to", item, quantity, status, received, lost, receipts, reference, transport,
                   response, sent_at, received_at, cancelled_at, cancel_reason
            FROM rm_transfers
            WHERE (\(status)::text IS NULL OR status = \(status)) AND (\(from)::text IS NULL OR from_warehouse = \(from))
              AND (\(to)::text IS NULL OR to_warehouse = \(to)) AND (\(item)::text IS NULL OR item = \(item))
              AND (\(response)::text IS NULL OR response = \(response)) AND (\(after)::text IS NULL OR id > \(after))
              AND (\(scoped)::text[] IS NULL OR from_warehouse = ANY(\(scoped)::text[]) OR to_warehouse = ANY(\(scoped)::text[]))
            ORDER BY id LIMIT \(limit)
            """)
    }
}

/// A cursor `position:rest` (a position, then what orders rows at one position).
struct PositionCursor {
    let position: Int64?
    let rest: String
    init(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        position = Int64(parts[0])
        rest = parts.count > 1 ? String(parts[1]) : ""
    }
}

/// OCHA P-codes name their own level: `PH08` (a region, admin 1), `PH0837` (a province, admin 2). Lists show
/// the admin 1 and admin 2 codes a P-code falls in, so partners can aggregate by region (HXL `#adm1+code`,
/// `#adm2+code`). Two letters and two digits a level, as in the Philippines' codes.
enum PCodeLevels {
    static func columns(_ column: StaticString) -> SQL {
        SQL(unsafe: """
            CASE WHEN length(\(column)) >= 4 THEN left(\(column), 4) END AS adm1, \
            CASE WHEN length(\(column)) >= 6 THEN left(\(column), 6) END AS adm2
            """)
    }
}

import Events
import Foundation

/// Rows of a read-model query: column names and text values (nil = NULL), ready to render as JSON, CSV,
/// HXL or an aligned table.
public struct ResultTable: Sendable, Equatable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Columns holding numbers or booleans (rendered unquoted in JSON).
    public var numeric: Set<String> = []
    public var boolean: Set<String> = []

    init(_ result: PostgresResult) throws {
        columns = result.columnNames
        for (name, oid) in zip(result.columnNames, result.columnTypes) {
            if [20, 21, 23, 700, 701, 1700].contains(oid) { numeric.insert(name) }
            if oid == 16 { boolean.insert(name) }
        }
        // timestamptz (1184) columns in RFC 3339 UTC, as the API promises, not PostgreSQL's ISO style.
        let times = Set(result.columnTypes.enumerated().filter { $0.element == 1184 }.map(\.offset))
        rows = try (0..<result.count).map { r in
            try (0..<result.columnCount).map { c in
                if times.contains(c), let date = try result.decodeOptional(r, c, as: Date.self) { return Timestamp.format(date) }
                return try result.decodeOptional(r, c, as: String.self)
            }
        }
    }

    public init(columns: [String], rows: [[String?]]) {
        self.columns = columns
        self.rows = rows
    }

    /// A JSON array of objects, numbers and booleans typed.
    public var json: String {
        var out = "["
        for (r, row) in rows.enumerated() {
            if r > 0 { out += "," }
            out += "{"
            for (i, column) in columns.enumerated() {
                if i > 0 { out += "," }
                out += JSONWriter.quote(column) + ":"
                if let v = row[i] {
                    if numeric.contains(column) { out += v }
                    else if boolean.contains(column) { out += v == "t" ? "true" : "false" }
                    else { out += JSONWriter.quote(v) }
                } else {
                    out += "null"
                }
            }
            out += "}"
        }
        return out + "]"
    }

    public func column(_ name: String) -> [String?] {
        guard let i = columns.firstIndex(of: name) else { return [] }
        return rows.map { $0[i] }
    }
}

/// The questions users ask of the read models. Every filter is a bind parameter.
public struct ReadModelQueries: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    func table(_ sql: SQL) async throws -> ResultTable {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in try ResultTable(try c.query(sql)) }
    }

    public func warehouses() async throws -> ResultTable {
        try await table("SELECT code, name, country, kind, pcode, lat, lon, capacity_m3 FROM rm_warehouses ORDER BY code")
    }

    public func items() async throws -> ResultTable {
        try await table("SELECT code, name, unit, category, kit, is_kit FROM rm_items ORDER BY code")
    }

    /// Stock on hand against prepositioning levels, per warehouse and item.
    public func stock(warehouse: String? = nil, item: String? = nil, status: String? = nil, limit: Int = 1000, after: String? = nil) async throws -> ResultTable {
        try await table("""
            SELECT s.warehouse, w.name AS warehouse_name, w.country, w.pcode, s.item, i.name AS item_name, i.unit, s.on_hand,
                   s.in_transit_in, s.in_transit_out, s.minimum, s.target, s.status, s.households, s.updated_at
            FROM rm_stock s JOIN rm_warehouses w ON w.code = s.warehouse JOIN rm_items i ON i.code = s.item
            WHERE (\(warehouse)::text IS NULL OR s.warehouse = \(warehouse)) AND (\(item)::text IS NULL OR s.item = \(item))
              AND (\(status)::text IS NULL OR s.status = \(status)) AND (\(after)::text IS NULL OR s.key > \(after))
            ORDER BY s.key LIMIT \(limit)
            """)
    }

    /// The stock card of one warehouse and item: every movement with its running balance.
    public func ledger(warehouse: String, item: String, limit: Int = 1000, afterPosition: Int64 = 0) async throws -> ResultTable {
        try await table("""
            SELECT position, occurred_at, recorded_at, movement, quantity, balance, reference, counterpart, response, reason
            FROM rm_stock_ledger WHERE warehouse = \(warehouse) AND item = \(item) AND position > \(afterPosition)
            ORDER BY position LIMIT \(limit)
            """)
    }

    public func transfers(status: String? = nil, limit: Int = 1000, after: String? = nil) async throws -> ResultTable {
        try await table("""
            SELECT id, from_warehouse, to_warehouse, item, quantity, status, received, lost, reference, transport, response,
                   sent_at, received_at, cancelled_at
            FROM rm_transfers WHERE (\(status)::text IS NULL OR status = \(status)) AND (\(after)::text IS NULL OR id > \(after))
            ORDER BY id LIMIT \(limit)
            """)
    }

    /// Deployments; `activeOn` keeps those whose dates include that day (not cancelled), `endingWithinDays`
    /// those deployed and ending from today to today + N.
    public func deployments(response: String? = nil, person: String? = nil, status: String? = nil, activeOn: Day? = nil,
                            endingWithinDays: Int? = nil, today: Day = Day(Date()), limit: Int = 1000, after: String? = nil) async throws -> ResultTable {
        let active = activeOn?.description
        let endBy = endingWithinDays.map { today.adding(days: $0).description }
        return try await table("""
            SELECT d.id, d.person, p.name AS person_name, d.response, d.profile, d.cluster, d.start_date, d.end_date, d.duty_station,
                   d.status, d.requested_at, d.confirmed_at, d.arrived_at, d.completed_at, d.cancelled_at, d.extensions,
                   r.country AS response_country
            FROM rm_deployments d LEFT JOIN rm_people p ON p.id = d.person LEFT JOIN rm_responses r ON r.id = d.response
            WHERE (\(response)::text IS NULL OR d.response = \(response)) AND (\(person)::text IS NULL OR d.person = \(person))
              AND (\(status)::text IS NULL OR d.status = \(status))
              AND (\(active)::date IS NULL OR (d.start_date <= \(active)::date AND d.end_date >= \(active)::date AND d.status <> 'cancelled'))
              AND (\(endBy)::date IS NULL OR (d.status = 'deployed' AND d.end_date BETWEEN \(today.description)::date AND \(endBy)::date))
              AND (\(after)::text IS NULL OR d.id > \(after))
            ORDER BY d.id LIMIT \(limit)
            """)
    }

    /// Arrivals (confirmed or requested, starting) and departures (deployed, ending) in the next `days` days.
    public func movements(days: Int, today: Day = Day(Date())) async throws -> ResultTable {
        let until = today.adding(days: days).description
        let from = today.description
        return try await table("""
            SELECT 'arrival' AS movement, d.start_date AS day, d.id, d.person, d.response, d.profile, d.duty_station, d.status
            FROM rm_deployments d WHERE d.status IN ('requested', 'confirmed') AND d.start_date BETWEEN \(from)::date AND \(until)::date
            UNION ALL
            SELECT 'departure', d.end_date, d.id, d.person, d.response, d.profile, d.duty_station, d.status
            FROM rm_deployments d WHERE d.status = 'deployed' AND d.end_date BETWEEN \(from)::date AND \(until)::date
            ORDER BY 2, 1, 3
            """)
    }

    /// Requested profiles not yet confirmed, per response and profile.
    public func unfilledProfiles(response: String? = nil) async throws -> ResultTable {
        try await table("""
            SELECT response, profile, count(*) AS requested, min(start_date) AS earliest_start
            FROM rm_deployments WHERE status = 'requested' AND (\(response)::text IS NULL OR response = \(response))
            GROUP BY response, profile ORDER BY response, profile
            """)
    }

    /// The task board; `overdue` keeps unfinished tasks past their due date.
    public func tasks(response: String? = nil, cluster: String? = nil, status: String? = nil, assignee: String? = nil,
                      overdue: Bool = false, today: Day = Day(Date()), limit: Int = 1000, after: String? = nil) async throws -> ResultTable {
        try await table("""
            SELECT id, response, cluster, title, priority, due, pcode, lead_org, assignee, status, blocked_reason, comments,
                   created_at, completed_at
            FROM rm_tasks
            WHERE (\(response)::text IS NULL OR response = \(response)) AND (\(cluster)::text IS NULL OR cluster = \(cluster))
              AND (\(status)::text IS NULL OR status = \(status)) AND (\(assignee)::text IS NULL OR assignee = \(assignee))
              AND (NOT \(overdue) OR (due < \(today.description)::date AND status IN ('open', 'in_progress', 'blocked')))
              AND (\(after)::text IS NULL OR id > \(after))
            ORDER BY id LIMIT \(limit)
            """)
    }

    public func responses(status: String? = nil) async throws -> ResultTable {
        try await table("""
            SELECT id, name, country, hazard, glide, severity, phase, status, areas, declared_at, closed_at
            FROM rm_responses WHERE (\(status)::text IS NULL OR status = \(status)) ORDER BY declared_at DESC, id
            """)
    }

    /// One response's summary: deployments by status, tasks by cluster and status, quantities dispatched by item.
    public struct Summary: Sendable {
        public let response: ResultTable
        public let deploymentsByStatus: ResultTable
        public let tasksByClusterAndStatus: ResultTable
        public let dispatchedByItem: ResultTable
    }

    public func summary(response id: String) async throws -> Summary? {
        let response = try await table("""
            SELECT id, name, country, hazard, glide, severity, phase, status, areas, declared_at, closed_at, severity_history
            FROM rm_responses WHERE id = \(id)
            """)
        guard !response.rows.isEmpty else { return nil }
        return Summary(
            response: response,
            deploymentsByStatus: try await table("SELECT status, count(*) AS count FROM rm_deployments WHERE response = \(id) GROUP BY status ORDER BY status"),
            tasksByClusterAndStatus: try await table("""
                SELECT cluster, status, count(*) AS count FROM rm_tasks WHERE response = \(id) GROUP BY cluster, status ORDER BY cluster, status
                """),
            dispatchedByItem: try await table("""
                SELECT l.item, i.name AS item_name, i.unit, -sum(l.quantity) AS quantity, count(*) AS dispatches
                FROM rm_stock_ledger l JOIN rm_items i ON i.code = l.item
                WHERE l.response = \(id) AND l.movement = 'dispatch' GROUP BY l.item, i.name, i.unit ORDER BY l.item
                """))
    }

    /// Warehouse-items below minimum, deployments ending within 7 days with no replacement, overdue urgent tasks.
    public func alerts(today: Day = Day(Date())) async throws -> ResultTable {
        let t = today.description
        return try await table("""
            SELECT 'below_minimum' AS alert, s.warehouse || ':' || s.item AS subject, NULL::text AS response,
                   'on hand ' || s.on_hand || ' below minimum ' || s.minimum AS detail
            FROM rm_stock s WHERE s.status = 'below_minimum'
            UNION ALL
            SELECT 'deployment_ending', d.id, d.response,
                   d.profile || ' ends ' || d.end_date || ' with no replacement'
            FROM rm_deployments d
            WHERE d.status = 'deployed' AND d.end_date BETWEEN \(t)::date AND \(t)::date + 7
              AND NOT EXISTS (SELECT 1 FROM rm_deployments n WHERE n.response = d.response AND n.profile = d.profile AND n.id <> d.id
                              AND n.status IN ('requested', 'confirmed', 'deployed') AND n.end_date > d.end_date
                              AND n.start_date <= d.end_date + 3)
            UNION ALL
            SELECT 'task_overdue', k.id, k.response, k.cluster || ' urgent task due ' || k.due
            FROM rm_tasks k WHERE k.priority = 'urgent' AND k.due < \(t)::date AND k.status IN ('open', 'in_progress', 'blocked')
            ORDER BY 1, 2
            """)
    }
}

import Events
import Foundation

/// The questions users ask of the read models. Every filter is a bind parameter.
public struct ReadModelQueries: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Rows of one query (every filter a bind); idempotent, so retried once on a fresh connection.
    public func table(_ sql: SQL) async throws -> ResultTable {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in try ResultTable(try c.query(sql)) }
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
        // Dispatches for the response, less those reversed: the corrected figure.
        guard !response.rows.isEmpty else { return nil }
        return Summary(
            response: response,
            deploymentsByStatus: try await table("SELECT status, count(*) AS count FROM rm_deployments WHERE response = \(id) GROUP BY status ORDER BY status"),
            tasksByClusterAndStatus: try await table("""
                SELECT cluster, status, count(*) AS count FROM rm_tasks WHERE response = \(id) GROUP BY cluster, status ORDER BY cluster, status
                """),
            dispatchedByItem: try await table("""
                SELECT l.item, i.name AS item_name, i.unit, -sum(l.quantity) AS quantity,
                       count(*) FILTER (WHERE l.movement = 'dispatch') - count(*) FILTER (WHERE l.movement = 'dispatch_reversal') AS dispatches
                FROM rm_stock_ledger l JOIN rm_items i ON i.code = l.item
                WHERE l.response = \(id) AND l.movement IN ('dispatch', 'dispatch_reversal')
                GROUP BY l.item, i.name, i.unit HAVING sum(l.quantity) <> 0 ORDER BY l.item
                """))
    }
}

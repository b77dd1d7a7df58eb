import Events
import Foundation

extension Lists {
    /// What needs someone's attention: stock below minimum, deployments ending unreplaced or overdue, tasks and
    /// transfers overdue, severity raised. The alert projection's rows (raised and cleared by events); open ones by default.
    public static let alerts = ListSpec(
        "alerts", "Alerts raised and cleared by the log: open by default, ?status=cleared or all",
        filters: [ListFilter("status", .oneOf(["open", "cleared", "all"]), "open (default), cleared or all"),
                  ListFilter("kind", .oneOf(AlertKinds.all), "Kind of alert"), ListFilter("response", .id, "Alerts of this response")],
        hxl: ["id": "#meta+id", "kind": "#event+type", "subject": "#meta+subject", "response": "#crisis+code", "detail": "#description",
              "status": "#status", "raised_at": "#date+reported", "raised_position": "#meta+position+raised", "cleared_at": "#date+cleared",
              "cleared_position": "#meta+position+cleared"],
        reads: ["alerts", "stock"],
        key: ListSpec.column("id")
    ) { source, a, limit, after in
        let (kind, response, warehouses, responses) = (a["kind"], a["response"], a.warehousesInScope, a.responsesInScope)
        let status = a["status"] ?? "open"
        // A scoped reader's transfers (either end in scope), asked only then: the alerts list does not need the stock
        // read model otherwise.
        var transfers: [String]?
        if let warehouses {
            transfers = try await source.queries.table("""
                SELECT id FROM rm_transfers WHERE from_warehouse = ANY(\(warehouses)::text[]) OR to_warehouse = ANY(\(warehouses)::text[])
                """).rows.compactMap { $0[0] }
        }
        return try await source.queries.table("""
            SELECT id, kind, subject, response, detail, status, raised_at, raised_position, cleared_at, cleared_position FROM rm_alerts
            WHERE (\(status) = 'all' OR status = \(status)) AND (\(kind)::text IS NULL OR kind = \(kind))
              AND (\(response)::text IS NULL OR response = \(response)) AND (\(after)::text IS NULL OR id > \(after))
              AND (\(responses)::text[] IS NULL OR response = ANY(\(responses)::text[])
                   OR (kind = 'stock.below_minimum' AND split_part(subject, ':', 1) = ANY(\(warehouses)::text[]))
                   OR (kind = 'transfer.overdue' AND subject = ANY(\(transfers)::text[])))
            ORDER BY id LIMIT \(limit)
            """)
    }

    /// The event log itself, in position order.
    public static let events = ListSpec(
        "events", "The event log, in position order",
        filters: [ListFilter("after", .integer(0...Int.max), "Start after this position"),
                  ListFilter("type", .text, "Event types, comma-separated"), ListFilter("stream", .text, "One stream"),
                  ListFilter("category", .text, "Stream categories, comma-separated (stock, task, ...)"),
                  ListFilter("actor", .text, "Events written by this actor (token subject)")],
        hxl: ["position": "#meta+position", "stream": "#meta+stream", "version": "#meta+version", "id": "#meta+id",
              "type": "#event+type", "data": "#meta+data", "metadata": "#meta+metadata", "occurred_at": "#date+occurred",
              "recorded_at": "#date+reported"],
        key: ListSpec.column("position")
    ) { source, a, limit, after in
        var filter = EventFilter()
        if let t = a["type"] { filter.types = t.split(separator: ",").map(String.init) }
        if let s = a["stream"] { filter.streams = [s] }
        if let c = a["category"] { filter.categories = c.split(separator: ",").map(String.init) }
        if let actor = a["actor"] { filter.actors = [actor] }
        var start = max(Int64(a.int("after") ?? 0), after.flatMap { Int64($0) } ?? 0)
        var events = try await source.store.read(after: start, limit: limit, filter: filter)
        if let scope = a.scope {
            // Only what the scope reaches: read on past what it does not, until the page is full or the log ends.
            var shown: [RecordedEvent] = []
            while true {
                shown += try await scope.filter(events, queries: source.queries).prefix(limit - shown.count)
                guard shown.count < limit, events.count == limit, let last = events.last else { break }
                start = last.position
                events = try await source.store.read(after: start, limit: limit, filter: filter)
            }
            events = shown
        }
        return ResultTable(events: a.personalData ? events : events.map(PersonalData.redact))
    }

    /// The projections, their checkpoints and lag.
    public static let projections = ListSpec(
        "projections", "Projections with checkpoints and lag",
        hxl: ["name": "#meta+name", "version": "#meta+version", "checkpoint": "#meta+position", "lag_events": "#indicator+num+lag_events",
              "lag_seconds": "#indicator+num+lag_seconds", "status": "#status", "error": "#description+error",
              "error_position": "#meta+error_position", "rebuilt_at": "#date+rebuilt", "leader_here": "#meta+leader_here"],
        key: ListSpec.column("name")
    ) { source, _, limit, after in
        let status = try await ProjectionRunner.status(pool: source.primary.pool, definitions: Coordination.projections)
        let rows = status.filter { after == nil || $0.name > after! }.prefix(limit).map { s -> [String?] in
            [s.name, String(s.version), String(s.checkpoint), String(s.lagEvents), String(format: "%.3f", s.lagSeconds), s.status, s.error,
             s.errorPosition.map(String.init), s.rebuiltAt.map(Timestamp.format), source.leads(s.name) ? "t" : "f"]
        }
        return ResultTable(columns: ["name", "version", "checkpoint", "lag_events", "lag_seconds", "status", "error", "error_position", "rebuilt_at",
                                     "leader_here"],
                           rows: Array(rows), numeric: ["version", "checkpoint", "lag_events", "lag_seconds", "error_position"], boolean: ["leader_here"])
    }
}

/// The kinds of alert (API.md v1.1).
public enum AlertKinds {
    public static let all = ["stock.below_minimum", "deployment.ending_unreplaced", "deployment.overdue_end", "task.overdue",
                             "transfer.overdue", "response.severity_raised"]
}

extension ResultTable {
    /// Stored events as rows (`/v1/events`): data and metadata as documents.
    init(events: [RecordedEvent]) {
        self.init(columns: ["position", "stream", "version", "id", "type", "data", "metadata", "occurred_at", "recorded_at"],
                  rows: events.map { e in
                      [String(e.position), e.stream, String(e.version), e.id.lowercasedString, e.type, e.data.text, e.metadata.text,
                       Timestamp.format(e.occurredAt), Timestamp.format(e.recordedAt)]
                  },
                  numeric: ["position", "version"], documents: ["data", "metadata"])
    }
}

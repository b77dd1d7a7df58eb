import Events
import Foundation

/// Renders replay results as JSON, CSV, HXL and a Markdown review report. Shared by coordd and coordctl.
public enum ReplayOutput {
    static func q(_ s: String?) -> String { s.map(JSONWriter.quote) ?? "null" }
    static func n(_ d: Double?) -> String { d.map { String(format: "%.1f", $0) } ?? "null" }

    /// "2026-11-09 14:10" in UTC.
    static func short(_ d: Date) -> String {
        let t = Timestamp.format(d)
        return String(t.prefix(10)) + " " + String(t.dropFirst(11).prefix(5))
    }

    // MARK: Timeline

    /// One readable line per entry, as in an after-action document.
    public static func line(_ e: Replay.TimelineEntry) -> String {
        let occurred = short(e.event.occurredAt), recorded = short(e.event.recordedAt)
        let when = occurred.prefix(10) == recorded.prefix(10) ? String(recorded.suffix(5)) : recorded
        return "\(occurred) occurred, recorded \(when) — \(e.text)"
    }

    public static func timelineJSON(_ entries: [Replay.TimelineEntry]) -> String {
        "[" + entries.map { e in
            "{\"position\":\(e.event.position),\"occurred_at\":\"\(Timestamp.format(e.event.occurredAt))\",\"recorded_at\":\"\(Timestamp.format(e.event.recordedAt))\""
                + ",\"type\":\(q(e.event.type)),\"text\":\(q(e.text)),\"cluster\":\(q(e.cluster)),\"warehouse\":\(q(e.warehouse)),\"item\":\(q(e.item))"
                + ",\"quantity\":\(e.quantity.map(String.init) ?? "null"),\"person\":\(q(e.person)),\"actor\":\(q(e.actor)),\"corrects\":\(q(e.corrects))}"
        }.joined(separator: ",") + "]"
    }

    /// CSV, with the HXL hashtag row of DOMAIN.md when `hxl` is set.
    public static func timelineCSV(_ entries: [Replay.TimelineEntry], response: String, hxl: Bool) -> String {
        var rows = [["position", "occurred_at", "recorded_at", "type", "description", "response", "cluster", "warehouse", "item", "quantity",
                     "person", "actor", "corrects"]]
        if hxl {
            rows.append(["#meta+id", "#date+occurred", "#date+reported", "#description+type", "#description", "#crisis+code",
                         "#sector+cluster+code", "#loc+code", "#item+code", "#capacity+num", "#contact+id", "#contact+actor", "#meta+corrects"])
        }
        for e in entries {
            rows.append([String(e.event.position), Timestamp.format(e.event.occurredAt), Timestamp.format(e.event.recordedAt), e.event.type, e.text,
                         response, e.cluster ?? "", e.warehouse ?? "", e.item ?? "", e.quantity.map(String.init) ?? "", e.person ?? "",
                         e.actor ?? "", e.corrects ?? ""])
        }
        return csv(rows, header: hxl ? 2 : 1)
    }

    static func csv(_ rows: [[String]], header: Int) -> String {
        rows.enumerated().map { i, row in
            row.map { cell in
                var text = cell
                // A cell that looks like a formula would run in a spreadsheet (CSV injection).
                if i >= header, let first = text.first, "=+-@".contains(first), Double(text) == nil { text = "'" + text }
                return text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
            }.joined(separator: ",")
        }.joined(separator: "\r\n") + "\r\n"
    }

    // MARK: State

    public static func stateJSON(_ s: Replay.State) -> String {
        let moment: String
        switch s.moment {
        case .now: moment = "{\"now\":true}"
        case .position(let p): moment = "{\"position\":\(p)}"
        case let .time(t, basis): moment = "{\"as_of\":\"\(Timestamp.format(t))\",\"basis\":\"\(basis.rawValue)\"}"
        }
        let stock = s.stock.map { x in
            "{\"warehouse\":\(q(x.warehouse)),\"item\":\(q(x.item)),\"on_hand\":\(x.onHand),\"in_transit_in\":\(x.inTransitIn),"
                + "\"in_transit_out\":\(x.inTransitOut),\"minimum\":\(x.minimum.map(String.init) ?? "null"),\"target\":\(x.target.map(String.init) ?? "null"),\"status\":\(q(x.status))}"
        }
        let deployments = s.deployments.map { d in
            "{\"id\":\(q(d.id)),\"person\":\(q(d.person)),\"profile\":\(q(d.profile)),\"cluster\":\(q(d.cluster)),\"start\":\"\(d.start)\",\"end\":\"\(d.end)\","
                + "\"duty_station\":\(q(d.dutyStation)),\"status\":\(q(d.status))}"
        }
        let tasks = s.tasks.map { t in
            "{\"id\":\(q(t.id)),\"cluster\":\(q(t.cluster)),\"title\":\(q(t.title)),\"priority\":\(q(t.priority)),\"due\":\(q(t.due?.description)),"
                + "\"assignee\":\(q(t.assignee)),\"status\":\(q(t.status))}"
        }
        let response = s.response.map { "{\"severity\":\(q($0.severity)),\"phase\":\(q($0.phase)),\"status\":\(q($0.status))}" } ?? "null"
        return "{\"moment\":\(moment),\"events_applied\":\(s.eventsApplied),\"response\":\(response),\"stock\":[" + stock.joined(separator: ",")
            + "],\"deployments\":[" + deployments.joined(separator: ",") + "],\"tasks\":[" + tasks.joined(separator: ",") + "]}"
    }

    public static func diffJSON(_ d: Replay.Diff) -> String {
        "{\"stock\":[" + d.stock.map { "{\"warehouse\":\(q($0.warehouse)),\"item\":\(q($0.item)),\"before\":\($0.before),\"after\":\($0.after),\"delta\":\($0.after - $0.before)}" }
            .joined(separator: ",") + "],\"deployments\":[" + d.deployments.map { "{\"id\":\(q($0.id)),\"before\":\(q($0.before)),\"after\":\(q($0.after))}" }
            .joined(separator: ",") + "],\"tasks\":[" + d.tasks.map { "{\"id\":\(q($0.id)),\"before\":\(q($0.before)),\"after\":\(q($0.after))}" }.joined(separator: ",") + "]}"
    }

    // MARK: Review

    public static func reviewJSON(_ r: ReviewFigures) -> String {
        let a = r.requestToArrivalSummary
        return "{\"response\":\(q(r.response)),\"name\":\(q(r.name)),\"declared_at\":\"\(Timestamp.format(r.declaredAt))\",\"period_end\":\"\(Timestamp.format(r.periodEnd))\","
            + "\"hours_to_first_surge_request\":\(n(r.hoursToFirstRequest)),\"hours_to_first_arrival\":\(n(r.hoursToFirstArrival)),"
            + "\"hours_to_first_nfi_dispatch\":\(n(r.hoursToFirstDispatch)),\"request_to_arrival_hours\":{\"median\":\(n(a.median)),\"max\":\(n(a.max)),\"deployments\":\(r.requestToArrival.count)},"
            + "\"unfilled_profile_days\":\(r.unfilledProfileDays),\"days_below_minimum\":[" + r.daysBelowMinimum.map {
                "{\"warehouse\":\(q($0.warehouse)),\"item\":\(q($0.item)),\"days\":\(n($0.days))}" }.joined(separator: ",") + "],"
            + "\"warehouses\":[" + r.warehouses.map(q).joined(separator: ",") + "],"
            + "\"losses_in_transit\":{" + r.lossesInTransit.sorted { $0.key < $1.key }.map { "\(q($0.key)):\($0.value)" }.joined(separator: ",") + "},"
            + "\"losses\":[" + r.losses.map { "{\"from\":\(q($0.from)),\"to\":\(q($0.to)),\"item\":\(q($0.item)),\"units\":\($0.units)}" }.joined(separator: ",") + "],"
            + "\"tasks_by_cluster\":[" + r.tasksByCluster.map { "{\"cluster\":\(q($0.cluster)),\"completed\":\($0.completed),\"median_completion_hours\":\(n($0.medianHours)),\"overdue\":\($0.overdue)}" }
                .joined(separator: ",") + "],"
            + "\"late_reporting_hours\":{\"median\":\(n(r.lateReporting.median)),\"worst\":\(n(r.lateReporting.max))}}"
    }

    /// Every review figure as one row: CSV, or HXL with `#indicator+name` and `#indicator+num`, and the warehouse, item
    /// or cluster a figure is about.
    public static func reviewCSV(_ r: ReviewFigures, hxl: Bool) -> String {
        var rows = [["indicator", "value", "warehouse", "item", "cluster", "destination"]]
        if hxl { rows.append(["#indicator+name", "#indicator+num", "#loc+code", "#item+code", "#sector+cluster+code", "#loc+code+dest"]) }
        func add(_ name: String, _ value: String?, warehouse: String = "", item: String = "", cluster: String = "", destination: String = "") {
            rows.append([name, value ?? "", warehouse, item, cluster, destination])
        }
        func h(_ x: Double?) -> String? { x.map { String(format: "%.1f", $0) } }
        let a = r.requestToArrivalSummary
        add("hours_to_first_surge_request", h(r.hoursToFirstRequest))
        add("hours_to_first_arrival", h(r.hoursToFirstArrival))
        add("hours_to_first_nfi_dispatch", h(r.hoursToFirstDispatch))
        add("request_to_arrival_hours_median", h(a.median))
        add("request_to_arrival_hours_max", h(a.max))
        add("deployments_arrived", String(r.requestToArrival.count))
        add("unfilled_profile_days", String(r.unfilledProfileDays))
        for b in r.daysBelowMinimum { add("days_below_minimum", h(b.days), warehouse: b.warehouse, item: b.item) }
        for l in r.losses { add("units_lost_in_transit", String(l.units), warehouse: l.from, item: l.item, destination: l.to) }
        for c in r.tasksByCluster {
            add("tasks_completed", String(c.completed), cluster: c.cluster)
            add("task_completion_hours_median", h(c.medianHours), cluster: c.cluster)
            add("tasks_overdue", String(c.overdue), cluster: c.cluster)
        }
        add("late_reporting_hours_median", h(r.lateReporting.median))
        add("late_reporting_hours_worst", h(r.lateReporting.max))
        return csv(rows, header: hxl ? 2 : 1)
    }

    /// A Markdown report a coordinator can paste into an after-action document.
    public static func reviewMarkdown(_ r: ReviewFigures) -> String {
        func h(_ x: Double?) -> String { x.map { String(format: "%.1f h", $0) } ?? "n/a" }
        let a = r.requestToArrivalSummary
        var md = """
            # After-action review: \(r.name) (\(r.response))

            Period: declared \(short(r.declaredAt)) UTC, reviewed to \(short(r.periodEnd)) UTC. Times are when things happened (occurred_at).

            ## Speed of the response

            | measure | value |
            |---|---|
            | declaration to first surge request | \(h(r.hoursToFirstRequest)) |
            | declaration to first arrival | \(h(r.hoursToFirstArrival)) |
            | declaration to first NFI dispatch | \(h(r.hoursToFirstDispatch)) |
            | request to arrival, median (max), \(r.requestToArrival.count) deployments | \(h(a.median)) (\(h(a.max))) |
            | unfilled profile-days | \(r.unfilledProfileDays) |

            ## Stock

            """
        if r.daysBelowMinimum.isEmpty {
            md += "No warehouse-item stood below its prepositioning minimum.\n"
        } else {
            md += "\n| warehouse | item | days below minimum |\n|---|---|---|\n"
            for b in r.daysBelowMinimum { md += "| \(b.warehouse) | \(b.item) | \(String(format: "%.1f", b.days)) |\n" }
        }
        md += "\nWarehouses drawn on (in \(r.response)'s country or dispatching to it): \(r.warehouses.joined(separator: ", ")).\n"
        md += "\nLosses in transit: " + (r.losses.isEmpty ? "none" : r.losses.map { "\($0.units) x \($0.item) (\($0.from) to \($0.to))" }.joined(separator: ", ")) + ".\n"
        md += "\n## Cluster tasks\n\n| cluster | completed | median completion | overdue |\n|---|---|---|---|\n"
        for c in r.tasksByCluster { md += "| \(c.cluster) | \(c.completed) | \(h(c.medianHours)) | \(c.overdue) |\n" }
        md += "\n## Reporting\n\nReports reached the system a median \(h(r.lateReporting.median)) after the fact; the latest, \(h(r.lateReporting.max)).\n"
        return md
    }
}

@testable import Coordination
import Events
import Foundation
import Testing

/// The alert rules, folded over a log written here event by event, each recorded on a chosen day: what a coordinator
/// sees raised and cleared, and when.
@Suite("Alert rules")
struct AlertRuleTests {
    /// A log under construction, folded as it grows.
    final class Log {
        let model: AlertReadModel
        var position: Int64 = 0
        let d0 = Day("2026-03-01")!

        init(_ rules: AlertRules = AlertRules()) { model = AlertReadModel(rules: rules) }

        /// Appends `event` recorded at noon of `d0 + day`; returns its position.
        @discardableResult
        func add(_ event: DomainEvent, day: Int, occurredDay: Int? = nil) throws -> Int64 {
            position += 1
            let recorded = d0.adding(days: day).date.addingTimeInterval(12 * 3600)
            let occurred = d0.adding(days: occurredDay ?? day).date.addingTimeInterval(12 * 3600)
            let data = try EventCodec.event(event, id: UUID(), metadata: EventMetadata(actor: "t"), occurredAt: occurred)
            let recordedEvent = RecordedEvent(position: position, stream: "s-\(position)", version: 1, id: data.id, type: data.type, data: data.data,
                                              metadata: JSONText(data.metadataJSON), occurredAt: occurred, recordedAt: recorded, hash: "")
            try model.apply(recordedEvent)
            return position
        }

        func tick(_ day: Int) throws -> Int64 { try add(.clockTicked(ClockTicked(day: d0.adding(days: day))), day: day) }

        func open(_ kind: String) -> [AlertReadModel.Alert] { model.openAlerts.filter { $0.kind == kind } }
        func all(_ kind: String) -> [AlertReadModel.Alert] { model.alerts.values.filter { $0.kind == kind }.sorted { $0.raisedPosition < $1.raisedPosition } }
    }

    @Test("history's transitions enqueued at once (a first rebuild's, staged through COPY) are stored as given, in order, once")
    func bulkEnqueue() async throws {
        let s = try await makeService()
        let n = AlertOutbox.bulkTransitions + 5
        let base = Date(timeIntervalSince1970: 1_700_000_000)
        let transitions = (0..<n).map { i -> AlertReadModel.Transition in
            var a = AlertReadModel.Alert()
            (a.id, a.kind, a.subject) = ("stock.below_minimum:MNL:ITEM\(i)@\(i + 1)", "stock.below_minimum", "MNL:ITEM\(i)")
            a.response = i % 3 == 0 ? nil : "PHL-2026-TC-01"
            a.detail = "on hand \(i)\ttab \\ backslash\nline"  // COPY's escapes, inside the JSON's
            (a.raisedAt, a.raisedPosition) = (base.addingTimeInterval(Double(i) + 0.25), Int64(i + 1))
            return AlertReadModel.Transition(alert: a, type: "alert.raised", position: Int64(i + 1), at: a.raisedAt)
        }
        let rows = try await s.store.pool.withConnection { c -> [(String, String, String, String?, Int64, Date, String)] in
            try c.transaction { c in try AlertOutbox.enqueue(c, transitions, through: Int64(n)) }
            // Found again by a later fold: at or below the mark, nothing is added.
            try c.transaction { c in try AlertOutbox.enqueue(c, transitions, through: Int64(n)) }
            let r = try c.query("SELECT alert_id, kind, type, response, position, at, alert::text FROM alert_transitions ORDER BY seq")
            return try r.rows.map { row in
                (try row.decode(0), try row.decode(1), try row.decode(2), try row.decodeOptional(3), try row.decode(4), try row.decode(5), try row.decode(6))
            }
        }
        #expect(rows.count == n)
        var mismatches = 0
        for (row, t) in zip(rows, transitions) {
            let expected = (t.alert.id, t.alert.kind, t.type, t.alert.response, t.position, t.at, t.alert.json)
            if row.0 != expected.0 || row.1 != expected.1 || row.2 != expected.2 || row.3 != expected.3 || row.4 != expected.4
                || abs(row.5.timeIntervalSince(expected.5)) > 0.000_001 || row.6 != expected.6 { mismatches += 1 }
        }
        #expect(mismatches == 0, "first: \(String(describing: rows.first)) against \(transitions[0].alert.json)")
    }

    @Test("task.overdue by priority: urgent the day after its due date, high after two days, low never; raised by the clock, cleared on completion")
    func overdueTasks() throws {
        let log = Log()
        let due = log.d0
        for (id, priority) in [("T-U", "urgent"), ("T-H", "high"), ("T-L", "low")] {
            try log.add(.taskCreated(TaskCreated(task: id, response: "R1", cluster: "WSH", title: "Water", priority: priority, due: due)), day: 0)
        }
        #expect(log.open("task.overdue").isEmpty, "due today is not overdue")
        let tick1 = try log.tick(1)
        #expect(log.open("task.overdue").map(\.subject) == ["T-U"])
        let urgent = try #require(log.open("task.overdue").first)
        #expect(urgent.id == "task.overdue:T-U@\(tick1)" && urgent.raisedPosition == tick1 && urgent.response == "R1")
        #expect(urgent.raisedAt == log.d0.adding(days: 1).date.addingTimeInterval(12 * 3600), "raised when the log learnt the day")
        _ = try log.tick(2)
        #expect(log.open("task.overdue").count == 1, "high: two days of grace")
        let tick3 = try log.tick(3)
        #expect(Set(log.open("task.overdue").map(\.subject)) == ["T-U", "T-H"])
        let done = try log.add(.taskCompleted(TaskCompleted(task: "T-U")), day: 3)
        #expect(log.open("task.overdue").map(\.subject) == ["T-H"])
        #expect(log.all("task.overdue").first { $0.subject == "T-U" }?.clearedPosition == done)
        #expect(log.all("task.overdue").first { $0.subject == "T-H" }?.raisedPosition == tick3)
        // Moving the due date out clears it; reopening a completed task that is overdue raises a new alert.
        try log.add(.taskAmended(TaskAmended(task: "T-H", due: log.d0.adding(days: 30), amends: 1)), day: 3)
        #expect(log.open("task.overdue").isEmpty)
        let reopened = try log.add(.taskReopened(TaskReopened(task: "T-U")), day: 4)
        #expect(log.open("task.overdue").map(\.id) == ["task.overdue:T-U@\(reopened)"])
        // Any event of a later day moves the clock as a tick does.
        let later = try log.add(.taskCreated(TaskCreated(task: "T-X", response: "R1", cluster: "SHL", title: "Kits", priority: "low", due: nil)), day: 40)
        #expect(log.open("task.overdue").first { $0.subject == "T-H" }?.raisedPosition == later)
    }

    @Test("deployment.ending_unreplaced until a replacement is confirmed; deployment.overdue_end once the end has passed")
    func deployments() throws {
        let log = Log()
        let d0 = log.d0
        try log.add(.deploymentRequested(DeploymentRequested(deployment: "D-1", person: "P-1", response: "R1", profile: "WASH",
                                                             start: d0.adding(days: -20), end: d0.adding(days: 5))), day: 0)
        try log.add(.deploymentConfirmed(DeploymentConfirmed(deployment: "D-1")), day: 0)
        #expect(log.open("deployment.ending_unreplaced").isEmpty, "not on the ground yet")
        let arrived = try log.add(.deploymentArrived(DeploymentArrived(deployment: "D-1")), day: 0)
        let ending = try #require(log.open("deployment.ending_unreplaced").first)
        #expect(ending.subject == "D-1" && ending.raisedPosition == arrived && ending.detail.contains("WASH ends 2026-03-06"))
        // A requested replacement is not enough; a confirmed one that takes over is.
        try log.add(.deploymentRequested(DeploymentRequested(deployment: "D-2", person: "P-2", response: "R1", profile: "WASH",
                                                             start: d0.adding(days: 6), end: d0.adding(days: 40))), day: 1)
        #expect(log.open("deployment.ending_unreplaced").count == 1)
        // Another profile or response does not replace it.
        try log.add(.deploymentRequested(DeploymentRequested(deployment: "D-3", person: "P-3", response: "R1", profile: "SHELTER_NFI",
                                                             start: d0.adding(days: 6), end: d0.adding(days: 40))), day: 1)
        try log.add(.deploymentConfirmed(DeploymentConfirmed(deployment: "D-3")), day: 1)
        #expect(log.open("deployment.ending_unreplaced").count == 1)
        let confirmed = try log.add(.deploymentConfirmed(DeploymentConfirmed(deployment: "D-2")), day: 1)
        #expect(log.open("deployment.ending_unreplaced").isEmpty)
        #expect(log.all("deployment.ending_unreplaced").first?.clearedPosition == confirmed)
        // The replacement cancelled: raised again, with a new id.
        let cancelled = try log.add(.deploymentCancelled(DeploymentCancelled(deployment: "D-2", reason: nil)), day: 2)
        #expect(log.open("deployment.ending_unreplaced").map(\.id) == ["deployment.ending_unreplaced:D-1@\(cancelled)"])
        // Past the end and still deployed: overdue (and no longer "ending").
        let tick = try log.tick(6)
        #expect(log.open("deployment.overdue_end").map(\.raisedPosition) == [tick])
        #expect(log.open("deployment.ending_unreplaced").isEmpty)
        try log.add(.deploymentCompleted(DeploymentCompleted(deployment: "D-1")), day: 7)
        #expect(log.open("deployment.overdue_end").isEmpty)
    }

    @Test("transfer.overdue after seven days in transit (from when it was sent); stock.below_minimum; response.severity_raised")
    func transfersStockAndSeverity() throws {
        let log = Log()
        try log.add(.transferCreated(TransferCreated(transfer: "TR-1", from: "MNL", to: "TAC", item: "KIT", quantity: 10)), day: 2, occurredDay: 0)
        _ = try log.tick(7)
        #expect(log.open("transfer.overdue").isEmpty, "seven days is not over seven")
        let tick = try log.tick(8)
        #expect(log.open("transfer.overdue").map(\.raisedPosition) == [tick])
        #expect(log.open("transfer.overdue").first?.detail == "10 x KIT from MNL to TAC in transit since 2026-03-01")
        try log.add(.transferReceived(TransferReceived(transfer: "TR-1", received: 4, lost: 0, final: false)), day: 8)
        #expect(log.open("transfer.overdue").count == 1, "a partial receipt leaves it in transit")
        try log.add(.transferReceived(TransferReceived(transfer: "TR-1", received: 5, lost: 1, final: true)), day: 9)
        #expect(log.open("transfer.overdue").isEmpty)

        let levels = try log.add(.stockLevelsSet(StockLevelsSet(warehouse: "MNL", item: "KIT", minimum: 10, target: 20)), day: 9)
        #expect(log.open("stock.below_minimum").map(\.id) == ["stock.below_minimum:MNL:KIT@\(levels)"])
        try log.add(.stockReceived(StockReceived(warehouse: "MNL", item: "KIT", quantity: 10, source: "donation")), day: 9)
        #expect(log.open("stock.below_minimum").isEmpty, "10 is not below 10")
        try log.add(.stockDispatched(StockDispatched(warehouse: "MNL", item: "KIT", quantity: 1, destination: "TAC")), day: 9)
        #expect(log.open("stock.below_minimum").first?.detail == "on hand 9 below minimum 10")

        try log.add(.responseDeclared(ResponseDeclared(response: "R1", name: "Flood", country: "PHL", hazard: "flood", severity: "yellow",
                                                       declaredAt: Date())), day: 9)
        try log.add(.responseSeverityChanged(ResponseSeverityChanged(response: "R1", severity: "orange", previous: "yellow")), day: 9)
        let red = try log.add(.responseSeverityChanged(ResponseSeverityChanged(response: "R1", severity: "red", previous: "orange")), day: 10)
        #expect(log.open("response.severity_raised").map(\.id) == ["response.severity_raised:R1@\(red)"], "the latest raise stands")
        #expect(log.all("response.severity_raised").count == 2)
        try log.add(.responseSeverityChanged(ResponseSeverityChanged(response: "R1", severity: "orange", previous: "red")), day: 11)
        #expect(log.open("response.severity_raised").isEmpty)
    }

    @Test("the same log folded twice gives the same alerts and transitions, in the same order; thresholds are settings")
    func deterministic() throws {
        func fold(_ rules: AlertRules) throws -> ([AlertReadModel.Alert], [AlertReadModel.Transition]) {
            let log = Log(rules)
            for i in 0..<40 {
                try log.add(.taskCreated(TaskCreated(task: "T-\(i)", response: "R\(i % 3)", cluster: "WSH", title: "t",
                                                     priority: ["urgent", "high", "normal"][i % 3], due: log.d0.adding(days: i % 5))), day: 0)
            }
            for day in 1...3 { _ = try log.tick(day) }
            return (log.model.alerts.values.sorted { $0.id < $1.id }, log.model.transitions)
        }
        let (a, ta) = try fold(AlertRules())
        let (b, tb) = try fold(AlertRules())
        #expect(a == b && ta == tb && !a.isEmpty)
        var strict = AlertRules()
        strict.overdueDays = ["urgent": 0, "high": 0, "normal": 0]
        let (c, _) = try fold(strict)
        #expect(c.count > a.count)
        #expect(AlertProjection(rules: strict).version != AlertProjection().version, "a threshold change rebuilds the alerts")
        #expect(throws: AlertRulesError.self) { try AlertRules.fromEnvironment(["COORD_ALERT_OVERDUE_DAYS": "urgent=x"]) }
        #expect(throws: AlertRulesError.self) { try AlertRules.fromEnvironment(["COORD_ALERT_ENDING_DAYS": "-1"]) }
        #expect(try AlertRules.fromEnvironment(["COORD_ALERT_OVERDUE_DAYS": "none"]).overdueDays.isEmpty)
    }
}

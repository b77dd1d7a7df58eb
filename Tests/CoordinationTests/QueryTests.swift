import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Read-model queries")
struct QueryTests {
    @Test("on the demo scenario, the read models answer what the scenario's commands imply")
    func demoFigures() async throws {
        let s = try await makeService()
        _ = try await DemoScenario.load(into: s)
        let runner = ProjectionRunner(store: s.store, definitions: Coordination.projections, leaderPoll: 0.2)
        runner.start()
        _ = try await waitCaughtUp(runner)
        await runner.stop()
        let q = ReadModelQueries(pool: s.store.pool)
        let lines = DemoScenario.lines

        // Dispatched quantities per item, from the scenario's own dispatch commands.
        var dispatched: [String: Int] = [:]
        for l in lines where l.command == "stock.dispatch" {
            dispatched[l.body["item"] as! String, default: 0] += l.body["quantity"] as! Int
        }
        let summary = try #require(try await q.summary(response: DemoScenario.responseID))
        let byItem = Dictionary(uniqueKeysWithValues: zip(summary.dispatchedByItem.column("item").map { $0! },
                                                          summary.dispatchedByItem.column("quantity").map { Int($0!)! }))
        #expect(byItem == dispatched)
        // Deployments by status: every request is counted once.
        let requests = lines.filter { $0.command == "deployment.request" }.count
        #expect(summary.deploymentsByStatus.column("count").map { Int($0!)! }.reduce(0, +) == requests)
        let cancelled = lines.filter { $0.command == "deployment.cancel" }.count
        let statusCounts = Dictionary(uniqueKeysWithValues: zip(summary.deploymentsByStatus.column("status").map { $0! },
                                                                summary.deploymentsByStatus.column("count").map { Int($0!)! }))
        #expect(statusCounts["cancelled"] == cancelled)
        // Tasks: one row per created task.
        let created = lines.filter { $0.command == "task.create" }.count
        #expect(try await q.tasks(response: DemoScenario.responseID).rows.count == created)
        #expect(summary.response.column("severity") == ["red"])

        // Transfers: all received or cancelled; the Guiuan ferry lost 35.
        let transfers = try await q.transfers()
        #expect(transfers.column("status").allSatisfy { $0 == "received" || $0 == "cancelled" })
        #expect(transfers.column("lost").compactMap { $0 }.map { Int($0)! }.reduce(0, +) == 35)
        #expect(try await q.transfers(status: "in_transit").rows.isEmpty)

        // The stock card's last balance is the stock row's on hand.
        let ledger = try await q.ledger(warehouse: "TAC", item: "HSHETARPW406")
        let stock = try await q.stock(warehouse: "TAC", item: "HSHETARPW406")
        #expect(ledger.column("balance").last! == stock.column("on_hand").first!)
        #expect(ledger.column("quantity").map { Int64($0!)! }.reduce(0, +) == Int64(stock.column("on_hand").first!!)!)

        // Unfilled: the requests never confirmed and not cancelled.
        let unfilled = try await q.unfilledProfiles(response: DemoScenario.responseID)
        #expect(unfilled.column("requested").map { Int($0!)! }.reduce(0, +) == statusCounts["requested"] ?? 0)
        #expect((statusCounts["requested"] ?? 0) > 0)

        // Who was deployed 12 days after landfall: arrived by then and not yet completed (the scenario completes none before).
        let day12 = Day(DemoScenario.landfall.addingTimeInterval(12 * 86_400))
        let active = try await q.deployments(status: "deployed", activeOn: day12)
        #expect(!active.rows.isEmpty)
        #expect(active.column("start_date").allSatisfy { $0! <= day12.description })

        // Alerts are computed, filtered and typed (six weeks after landfall).
        let alerts = try await q.alerts(today: Day(DemoScenario.landfall.addingTimeInterval(42 * 86_400)))
        #expect(Set(alerts.column("alert").map { $0! }).isSubset(of: ["below_minimum", "deployment_ending", "task_overdue"]))
        #expect(alerts.column("alert").contains("task_overdue"))
        // Stock below minimum at the field warehouses after five weeks of distributions.
        #expect(try await q.stock(status: "below_minimum").rows.count == alerts.column("alert").filter { $0 == "below_minimum" }.count)
    }
}

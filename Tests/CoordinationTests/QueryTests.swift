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
        let source = ListSource(store: s.store)
        func list(_ spec: ListSpec, _ query: [String: String] = [:], today: Day = Day(Date())) async throws -> ResultTable {
            try await rows(spec, source, query, today: today)
        }
        let lines = DemoScenario.lines

        // Dispatched quantities per item, from the scenario's own dispatch commands.
        var dispatched: [String: Int] = [:]
        for l in lines where l.command == "stock.dispatch" {
            dispatched[l.body["item"] as! String, default: 0] += l.body["quantity"] as! Int
        }
        // ... less the dispatch the scenario reverses (a typo corrected).
        for l in lines where l.command == "stock.movement.reverse" {
            dispatched[DemoScenario.reversedDispatch.item, default: 0] -= DemoScenario.reversedDispatch.quantity
            _ = l
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
        #expect(try await list(Lists.tasks, ["response": DemoScenario.responseID]).rows.count == created)
        #expect(summary.response.column("severity") == ["red"])

        // Transfers: all received or cancelled; the Guiuan ferry lost 35 (received in two parts, the second final).
        let transfers = try await list(Lists.transfers)
        #expect(transfers.column("status").allSatisfy { $0 == "received" || $0 == "cancelled" })
        #expect(transfers.column("lost").compactMap { $0 }.map { Int($0)! }.reduce(0, +) == 35)
        #expect(transfers.column("receipts").contains("2"))
        #expect(try await list(Lists.transfers, ["status": "in_transit"]).rows.isEmpty)

        // The stock card's last balance is the stock row's on hand.
        let ledger = try await list(Lists.ledger, ["warehouse": "TAC", "item": "HSHETARPW406"])
        let stock = try await list(Lists.stock, ["warehouse": "TAC", "item": "HSHETARPW406"])
        #expect(ledger.column("balance").last! == stock.column("on_hand").first!)
        #expect(ledger.column("quantity").map { Int64($0!)! }.reduce(0, +) == Int64(stock.column("on_hand").first!!)!)

        // Unfilled: the requests never confirmed and not cancelled.
        let unfilled = try await q.unfilledProfiles(response: DemoScenario.responseID)
        #expect(unfilled.column("requested").map { Int($0!)! }.reduce(0, +) == statusCounts["requested"] ?? 0)
        #expect((statusCounts["requested"] ?? 0) > 0)

        // Who was deployed 12 days after landfall: arrived by then and not yet completed (the scenario completes none before).
        let day12 = Day(DemoScenario.landfall.addingTimeInterval(12 * 86_400))
        let active = try await list(Lists.deployments, ["active_on": day12.description])
        #expect(!active.rows.isEmpty)
        #expect(active.column("start").allSatisfy { $0! <= day12.description })
        #expect(active.column("status").allSatisfy { $0 == "deployed" || $0 == "completed" })

        // Alerts are computed, filtered and typed (six weeks after landfall).
        let alerts = try await list(Lists.alerts, today: Day(DemoScenario.landfall.addingTimeInterval(42 * 86_400)))
        #expect(Set(alerts.column("kind").map { $0! }).isSubset(of: Set(AlertKinds.all)))
        #expect(alerts.column("kind").contains("task.overdue"))
        // Stock below minimum at the field warehouses after five weeks of distributions.
        #expect(try await list(Lists.stock, ["status": "below_minimum"]).rows.count == alerts.column("kind").filter { $0 == "stock.below_minimum" }.count)
    }
}

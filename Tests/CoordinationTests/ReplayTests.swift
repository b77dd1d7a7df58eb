import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Replay")
struct ReplayTests {
    static let landfall = DemoScenario.landfall

    /// On hand of `warehouse:item` from the scenario's own command lines, counting what occurred by `t`.
    static func handComputedOnHand(_ warehouse: String, _ item: String, occurredBy t: Date) -> Int64 {
        var transfers: [String: (from: String, to: String, item: String, quantity: Int, received: Int)] = [:]
        var total: Int64 = 0
        // The reversed dispatch (500 typed for 50) never happened: the reversal is dated when it was said to.
        let reversed = DemoScenario.lines.firstIndex { $0.command == "stock.movement.reverse" }.map { $0 - 1 }
        for (n, l) in DemoScenario.lines.enumerated() where n != reversed {
            let b = l.body
            let at = (b["occurred_at"] as? String).flatMap(Timestamp.parse) ?? .distantPast
            if l.command == "stock.transfer" {
                transfers[b["id"] as! String] = (b["from"] as! String, b["to"] as! String, b["item"] as! String, b["quantity"] as! Int, 0)
            }
            guard at <= t else { continue }
            switch l.command {
            case "stock.receive" where b["warehouse"] as? String == warehouse && b["item"] as? String == item: total += Int64(b["quantity"] as! Int)
            case "stock.dispatch" where b["warehouse"] as? String == warehouse && b["item"] as? String == item: total -= Int64(b["quantity"] as! Int)
            case "stock.adjust" where b["warehouse"] as? String == warehouse && b["item"] as? String == item: total += Int64(b["delta"] as! Int)
            case "stock.transfer" where b["from"] as? String == warehouse && b["item"] as? String == item: total -= Int64(b["quantity"] as! Int)
            case "stock.transfer.receive":
                transfers[b["id"] as! String]?.received += b["quantity"] as! Int
                if let t = transfers[b["id"] as! String], t.to == warehouse, t.item == item { total += Int64(b["quantity"] as! Int) }
            case "stock.transfer.cancel":
                if let t = transfers[b["id"] as! String], t.from == warehouse, t.item == item { total += Int64(t.quantity - t.received) }
            default: break
            }
        }
        return total
    }

    @Test("stock of an item at a mid-response time equals the sum of earlier movements")
    func stockAsOf() async throws {
        let s = try await makeService()
        _ = try await DemoScenario.load(into: s)
        let replay = Replay(store: s.store)
        for days in [3.0, 6.5, 10.0, 20.0] {
            let t = Self.landfall.addingTimeInterval(days * 86_400)
            let state = try await replay.state(response: DemoScenario.responseID, at: .time(t, .occurred))
            for (w, i) in [("TAC", "HSHETARPW406"), ("MNL", "HSHETARPW406"), ("GUI", "HSHEBLANCLT2"), ("ORM", "KWATHYGFAM")] {
                let got = state.stock.first { $0.warehouse == w && $0.item == i }?.onHand ?? 0
                #expect(got == Self.handComputedOnHand(w, i, occurredBy: t), "\(w):\(i) at +\(days) days")
            }
        }
    }

    @Test("a late-reported dispatch is in the occurred-basis state but not in the recorded-basis state for the gap")
    func lateReport() async throws {
        let s = try await makeService()
        _ = try await DemoScenario.load(into: s)
        let replay = Replay(store: s.store)
        let known = Date()
        try await Task.sleep(nanoseconds: 50_000_000)
        // Reported now, happened on day 5.
        let happened = Self.landfall.addingTimeInterval(5 * 86_400)
        _ = try await s.execute(DispatchStock(warehouse: "TAC", item: "HSHETARPW406", quantity: 7, destination: "Palo", occurredAt: happened), ctx)
        let day6 = Self.landfall.addingTimeInterval(6 * 86_400)
        let handDay6 = Self.handComputedOnHand("TAC", "HSHETARPW406", occurredBy: day6)
        func onHand(_ m: Replay.Moment) async throws -> Int64 {
            try await replay.state(response: DemoScenario.responseID, at: m).stock.first { $0.key == "TAC:HSHETARPW406" }!.onHand
        }
        // What had happened by day 6 includes the late report...
        #expect(try await onHand(.time(day6, .occurred)) == handDay6 - 7)
        // ...but what we knew before it was reported does not.
        #expect(try await onHand(.time(known, .recorded)) == Self.handComputedOnHand("TAC", "HSHETARPW406", occurredBy: .distantFuture))
        #expect(try await onHand(.now) == Self.handComputedOnHand("TAC", "HSHETARPW406", occurredBy: .distantFuture) - 7)
        let review = try #require(try await replay.review(response: DemoScenario.responseID))
        #expect(review.lateReporting.max! > 0)
    }

    @Test("review figures match values computed by hand from the scenario")
    func reviewFigures() async throws {
        let s = try await makeService()
        _ = try await DemoScenario.load(into: s)
        let r = try #require(try await Replay(store: s.store).review(response: DemoScenario.responseID, until: Self.landfall.addingTimeInterval(40 * 86_400)))
        // Declared at landfall + 2 h; first request at +0.3 days; first arrival on day 2 at 09:00 after landfall's 06:30 day start;
        // first dispatch on day 4.
        #expect(abs(r.hoursToFirstRequest! - (0.3 * 24 - 2)) < 0.01)
        #expect(abs(r.hoursToFirstArrival! - (2 * 24 + 9 - 2)) < 0.01)
        #expect(abs(r.hoursToFirstDispatch! - (4 * 24 - 2)) < 0.01)
        // DEP-001: requested at +0.3 days, arrived at day 2 + 9 h.
        #expect(abs(r.requestToArrival["DEP-001"]! - (2 * 24 + 9 - 0.3 * 24)) < 0.01)
        #expect(r.requestToArrival.count == 16, "the scenario arrives deployments d < 18 except the one on leave (d == 3) and the cancelled one (d == 10)")
        // The Guiuan ferry lost 35 blankets; nothing else was lost.
        #expect(r.lossesInTransit == ["HSHEBLANCLT2": 35])
        // Every cluster with tasks appears; completion medians are positive.
        #expect(Set(r.tasksByCluster.map(\.cluster)).count == 14, "15 templates, two of them WSH")
        #expect(r.tasksByCluster.allSatisfy { ($0.medianHours ?? 1) > 0 })
        let md = ReplayOutput.reviewMarkdown(r)
        #expect(md.contains("| declaration to first NFI dispatch | 94.0 h |"))
    }

    @Test("timeline lines read as an after-action document and filter by cluster, warehouse, person and type")
    func timeline() async throws {
        let s = try await makeService()
        _ = try await DemoScenario.load(into: s)
        let replay = Replay(store: s.store)
        let all = try #require(try await replay.timeline(response: DemoScenario.responseID))
        #expect(all.map(\.event.position) == all.map(\.event.position).sorted())
        let dispatch = try #require(all.first { $0.event.type == "stock.dispatched" })
        #expect(ReplayOutput.line(dispatch).contains("occurred, recorded"))
        #expect(dispatch.text.hasPrefix("Dispatched "))
        #expect(dispatch.text.contains("(waybill WB-"))
        let wash = try #require(try await replay.timeline(response: DemoScenario.responseID, filter: .init(cluster: "WSH")))
        #expect(!wash.isEmpty && wash.allSatisfy { $0.cluster == "WSH" })
        let tac = try #require(try await replay.timeline(response: DemoScenario.responseID, filter: .init(warehouse: "TAC")))
        #expect(!tac.isEmpty && tac.allSatisfy { $0.warehouse == "TAC" })
        let person = try #require(try await replay.timeline(response: DemoScenario.responseID, filter: .init(person: "SURGE-001")))
        #expect(person.map(\.event.type) == ["deployment.requested"])
        #expect(try await replay.timeline(response: "NOPE") == nil)
        let hxl = ReplayOutput.timelineCSV(all, response: DemoScenario.responseID, hxl: true).components(separatedBy: "\r\n")
        #expect(hxl[1] == "#meta+id,#date+occurred,#date+reported,#description+type,#description,#crisis+code,#sector+cluster+code,#loc+code,#item+code,#capacity+num,#contact+id,#contact+actor,#meta+corrects")
    }

    @Test("replay never changes the live read models or the log")
    func readOnly() async throws {
        let s = try await makeService()
        _ = try await DemoScenario.load(into: s)
        let runner = ProjectionRunner(store: s.store, definitions: Coordination.projections, leaderPoll: 0.2)
        runner.start()
        _ = try await waitCaughtUp(runner)
        await runner.stop()
        let before = try await dumpReadModels(s.store.pool)
        let head = try await s.store.headPosition()
        let replay = Replay(store: s.store)
        _ = try await replay.state(response: DemoScenario.responseID, at: .time(Self.landfall.addingTimeInterval(86_400 * 7), .occurred))
        _ = try await replay.state(response: DemoScenario.responseID, at: .position(100))
        let d = try await replay.diff(response: DemoScenario.responseID, from: .time(Self.landfall.addingTimeInterval(86_400), .occurred),
                                      to: .time(Self.landfall.addingTimeInterval(86_400 * 10), .occurred))
        #expect(!d.tasks.isEmpty && !d.stock.isEmpty)
        let tac = try #require(d.stock.first { $0.warehouse == "TAC" && $0.item == "HSHETARPW406" })
        #expect(tac.after - tac.before == Self.handComputedOnHand("TAC", "HSHETARPW406", occurredBy: Self.landfall.addingTimeInterval(86_400 * 10))
                - Self.handComputedOnHand("TAC", "HSHETARPW406", occurredBy: Self.landfall.addingTimeInterval(86_400)))
        _ = try await replay.review(response: DemoScenario.responseID)
        _ = try await replay.timeline(response: DemoScenario.responseID)
        #expect(try await dumpReadModels(s.store.pool) == before)
        #expect(try await s.store.headPosition() == head)
        #expect(try await s.store.verify().isSound)
    }
}

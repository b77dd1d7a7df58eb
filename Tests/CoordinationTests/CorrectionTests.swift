import Coordination
import Events
import Foundation
import Testing
import TestSupport

/// Field data is wrong every hour: corrections are new events that name what they correct, and every figure
/// counts the corrected value.
@Suite("Corrections and business-time order")
struct CorrectionTests {
    func json(_ s: CoordinationService, _ name: String, _ body: String, _ context: CommandContext = ctx) async throws -> CommandResult {
        try await s.execute(name: name, json: Data(body.utf8), context)
    }

    @Test("a reversal restores stock and leaves the response's dispatched total; it names the movement, its actor and reason; once only")
    func reversal() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(ReceiveStock(warehouse: "TAC", item: "HSHETARPW406", quantity: 100, source: "donation"), ctx)
        let typo = try await s.execute(DispatchStock(warehouse: "TAC", item: "HSHETARPW406", quantity: 50, destination: "Palo", response: "PHL-2026-TC-01"), ctx)
        let id = try #require((try JSONSerialization.jsonObject(with: Data(typo.body.utf8)) as? [String: Any])?["id"] as? String, "the answer carries the movement id")
        #expect(try await onHand(s, "TAC", "HSHETARPW406") == 50)
        let officer = CommandContext(actor: "logistics-officer", source: "test")
        let reversed = try await json(s, "stock.movement.reverse", #"{"id":"\#(id)","reason":"typed 50 for 5"}"#, officer)
        #expect(try stateJSON(reversed)["on_hand"] as? Int == 100)
        _ = try await s.execute(DispatchStock(warehouse: "TAC", item: "HSHETARPW406", quantity: 5, destination: "Palo", response: "PHL-2026-TC-01"), ctx)
        #expect(try await onHand(s, "TAC", "HSHETARPW406") == 95)

        // The log keeps the original; the correction names it, with who and why.
        let stored = try await s.store.read(stream: Streams.stock("TAC", "HSHETARPW406"))
        #expect(stored.map(\.type) == ["stock.received", "stock.dispatched", "stock.movement_reversed", "stock.dispatched"])
        guard case .stockMovementReversed(let r) = try EventCodec.decode(stored[2]) else { Issue.record("no reversal"); return }
        #expect(r.movement == id && r.reason == "typed 50 for 5" && r.delta == 50 && r.response == "PHL-2026-TC-01")
        #expect(stored[2].decodedMetadata.actor == "logistics-officer")
        #expect(stored[2].decodedMetadata.causationID == id, "caused by the movement it reverses")
        #expect(stored[2].occurredAt == stored[1].occurredAt, "dated when the original happened")

        // Read models: the stock card shows both with the reversal linked; the summary counts 5 dispatched.
        let runner = ProjectionRunner(store: s.store, definitions: Coordination.projections, leaderPoll: 0.2)
        runner.start()
        _ = try await waitCaughtUp(runner)
        await runner.stop()
        let source = ListSource(store: s.store)
        let card = try await rows(Lists.ledger, source, ["warehouse": "TAC", "item": "HSHETARPW406"])
        #expect(card.column("movement") == ["receipt", "dispatch", "dispatch_reversal", "dispatch"])
        #expect(card.column("reversed_by")[1] != nil && card.column("reverses")[2] == id)
        #expect(card.column("balance") == ["100", "50", "100", "95"])
        let summary = try #require(try await ReadModelQueries(pool: s.store.pool).summary(response: "PHL-2026-TC-01"))
        #expect(summary.dispatchedByItem.column("quantity") == ["5"])
        #expect(summary.dispatchedByItem.column("dispatches") == ["1"])
        // The timeline shows the original and the correction with its author.
        let timeline = try #require(try await Replay(store: s.store).timeline(response: "PHL-2026-TC-01"))
        let reversal = try #require(timeline.first { $0.event.type == "stock.movement_reversed" })
        #expect(reversal.text.contains("reversed by logistics-officer") && reversal.corrects == id)
        #expect(timeline.filter { $0.event.type == "stock.dispatched" }.count == 2)
        // Reversed once only; only movements of stock can be.
        #expect(await domainError { _ = try await json(s, "stock.movement.reverse", #"{"id":"\#(id)","reason":"again"}"#) }?.caseName == "rule-violation")
        #expect(await domainError { _ = try await json(s, "stock.movement.reverse", #"{"id":"\#(UUID().uuidString)","reason":"x"}"#) }?.caseName == "not-found")
        let task = try await s.execute(CreateTask(response: "PHL-2026-TC-01", cluster: "SHL", title: "t", priority: "low"), ctx)
        let taskEvent = try await s.store.read(stream: Streams.task(task.id))[0].id.lowercasedString
        #expect(await domainError { _ = try await json(s, "stock.movement.reverse", #"{"id":"\#(taskEvent)","reason":"x"}"#) }?.caseName == "rule-violation")
    }

    @Test("a reversal that would take stock below zero is refused with what is available, also under 20 concurrent dispatches")
    func reversalNeverNegative() async throws {
        let s = try await makeService()
        try await seed(s)
        let receipt = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HCONJCANPF10", quantity: 100, source: "donation"), ctx)
        let id = try #require((try JSONSerialization.jsonObject(with: Data(receipt.body.utf8)) as? [String: Any])?["id"] as? String)
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HCONJCANPF10", quantity: 50, source: "donation"), ctx)
        // 150 on hand. Undoing the 100 needs 100 left; 20 dispatches of 5 race it.
        let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do { _ = try await s.execute(DispatchStock(warehouse: "MNL", item: "HCONJCANPF10", quantity: 5, destination: "x"), ctx); return "dispatched" }
                    catch let e as DomainError { return e.caseName }
                }
            }
            group.addTask {
                do { _ = try await self.json(s, "stock.movement.reverse", #"{"id":"\#(id)","reason":"duplicate GRN"}"#); return "reversed" }
                catch let e as DomainError { return "reversal " + e.caseName }
            }
            var all: [String] = []
            for try await o in group { all.append(o) }
            return all
        }
        let stock = try await onHand(s, "MNL", "HCONJCANPF10")
        #expect(stock >= 0, "never negative")
        let dispatched = outcomes.filter { $0 == "dispatched" }.count
        if outcomes.contains("reversed") {
            #expect(stock == 150 - 100 - Int64(dispatched * 5))
        } else {
            #expect(outcomes.contains("reversal insufficient-stock"))
            #expect(stock == 150 - Int64(dispatched * 5))
        }
        // Once everything is dispatched, the refusal says what is available.
        let left = try await onHand(s, "MNL", "HCONJCANPF10")
        if !outcomes.contains("reversed") || left < 100 {
            let refused = await domainError { _ = try await json(s, "stock.movement.reverse", #"{"id":"\#(id)","reason":"again"}"#) }
            if case .insufficientStock(_, _, let requested, let available)? = refused { #expect(requested == 100 && available == left) }
            else if !outcomes.contains("reversed") { Issue.record("expected insufficient stock, got \(String(describing: refused))") }
        }
    }

    @Test("amendments: the response's GLIDE, a task's due date, a person's profiles, an item's kit; nothing unchanged is an error")
    func amendments() async throws {
        let s = try await makeService()
        try await seed(s)
        let amended = try await json(s, "response.amend", #"{"id":"PHL-2026-TC-01","glide":"TC-2026-000187-PHL","reason":"GLIDE issued"}"#)
        #expect(try stateJSON(amended)["glide"] as? String == "TC-2026-000187-PHL")
        #expect(amended.version == 2)
        guard case .responseAmended(let e) = try EventCodec.decode(try await s.store.read(stream: Streams.response("PHL-2026-TC-01"))[1]) else {
            Issue.record("no amendment"); return
        }
        #expect(e.amends == 1 && e.reason == "GLIDE issued" && e.name == nil, "only what changed, and the version it corrects")
        #expect(await domainError { _ = try await json(s, "response.amend", #"{"id":"PHL-2026-TC-01","glide":"TC-2026-000187-PHL"}"#) }?.caseName == "validation")
        #expect(await domainError { _ = try await json(s, "response.amend", #"{"id":"PHL-2026-TC-01","glide":"nope"}"#) }?.caseName == "validation")
        #expect(await domainError { _ = try await json(s, "response.amend", #"{"id":"NOPE","name":"x"}"#) }?.caseName == "not-found")

        _ = try await s.execute(CreateTask(id: "T-1", response: "PHL-2026-TC-01", cluster: "WSH", title: "Latrines", priority: "low", due: Day("2026-11-20")), ctx)
        let task = try await json(s, "task.amend", #"{"id":"T-1","due":"2026-11-27","priority":"urgent","reason":"road cut"}"#)
        #expect(try stateJSON(task)["due"] as? String == "2026-11-27" && (try stateJSON(task)["priority"] as? String) == "urgent")

        _ = try await s.execute(RegisterPerson(id: "P-1", name: "A. Person", profiles: ["WASH"]), ctx)
        let person = try await json(s, "person.amend", #"{"id":"P-1","profiles":["WASH","CCCM"]}"#)
        #expect(try stateJSON(person)["profiles"] as? [String] == ["WASH", "CCCM"])

        let item = try await json(s, "item.amend", #"{"code":"HSHETARPW406","name":"Tarpaulin, woven, 4x6 m","reason":"catalogue name"}"#)
        #expect(try stateJSON(item)["name"] as? String == "Tarpaulin, woven, 4x6 m")
        #expect(await domainError { _ = try await json(s, "item.amend", #"{"code":"HSHETARPW406","kit":[{"item":"NOPE","quantity":1}]}"#) }?.caseName == "not-found")
        let warehouse = try await json(s, "warehouse.amend", #"{"code":"TAC","name":"Tacloban field warehouse","lat":11.24,"lon":125.0}"#)
        #expect(try stateJSON(warehouse)["lat"] as? Double == 11.24)
        #expect(await domainError { _ = try await json(s, "warehouse.amend", #"{"code":"MNL","lat":14.5}"#) }?.caseName == "validation", "lat and lon go together")
    }

    @Test("an amended deployment's new dates are checked for overlap; dates change only before arrival")
    func amendedDeploymentOverlap() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(RegisterPerson(id: "P-1", name: "A. Person", profiles: ["WASH"]), ctx)
        _ = try await s.execute(RequestDeployment(id: "D-1", person: "P-1", response: "PHL-2026-TC-01", profile: "WASH", start: day("2026-12-01"), end: day("2026-12-20")), ctx)
        _ = try await s.execute(RequestDeployment(id: "D-2", person: "P-1", response: "PHL-2026-TC-01", profile: "WASH", start: day("2027-01-05"), end: day("2027-01-30")), ctx)
        // Moving D-1's end into D-2 is an overlap, naming D-2.
        let refused = await domainError { _ = try await json(s, "deployment.amend", #"{"id":"D-1","end":"2027-01-10","reason":"extension planned"}"#) }
        #expect(refused == .deploymentOverlap(person: "P-1", conflicting: "D-2", kind: "deployment"))
        // A flight delay: a day later, and the booking moves with it (D-2 can now start where D-1's old dates were).
        let moved = try await json(s, "deployment.amend", #"{"id":"D-1","start":"2026-12-02","end":"2026-12-21","reason":"flight delayed"}"#)
        #expect(try stateJSON(moved)["start"] as? String == "2026-12-02")
        #expect(await domainError { _ = try await json(s, "deployment.amend", #"{"id":"D-2","start":"2026-12-21"}"#) }
                == .deploymentOverlap(person: "P-1", conflicting: "D-1", kind: "deployment"))
        _ = try await json(s, "deployment.amend", #"{"id":"D-2","start":"2026-12-22"}"#)
        // After arrival the dates are no longer amended (extend or complete instead); the duty station still is.
        _ = try await s.execute(ConfirmDeployment(id: "D-1"), ctx)
        _ = try await s.execute(ArriveDeployment(id: "D-1"), ctx)
        #expect(await domainError { _ = try await json(s, "deployment.amend", #"{"id":"D-1","end":"2026-12-20"}"#) }?.caseName == "rule-violation")
        let station = try await json(s, "deployment.amend", #"{"id":"D-1","duty_station":"Guiuan"}"#)
        #expect(try stateJSON(station)["duty_station"] as? String == "Guiuan")
    }

    @Test("business time has an order: an arrival dated before its request, a receipt before its transfer, a completion before its creation are refused naming both times")
    func businessTimeOrder() async throws {
        let s = try await makeService()
        try await seed(s)
        let now = Date()
        let hoursAgo = { (h: Double) in Timestamp.format(now.addingTimeInterval(-h * 3600)) }
        _ = try await s.execute(RegisterPerson(id: "P-1", name: "A. Person", profiles: ["WASH"]), ctx)
        _ = try await json(s, "deployment.request", #"{"id":"D-1","person":"P-1","response":"PHL-2026-TC-01","profile":"WASH","start":"2026-12-01","end":"2026-12-20","occurred_at":"\#(hoursAgo(10))"}"#)
        let early = await domainError { _ = try await json(s, "deployment.confirm", #"{"id":"D-1","occurred_at":"\#(hoursAgo(11))"}"#) }
        guard case .validation(let errors)? = early else { Issue.record("expected a validation error, got \(String(describing: early))"); return }
        #expect(errors.first?.field == "occurred_at")
        #expect(errors.first?.message == "\(hoursAgo(11)) is before the request at \(hoursAgo(10))")
        _ = try await json(s, "deployment.confirm", #"{"id":"D-1","occurred_at":"\#(hoursAgo(9))"}"#)
        #expect(await domainError { _ = try await json(s, "deployment.arrive", #"{"id":"D-1","occurred_at":"\#(hoursAgo(9.5))"}"#) }?.caseName == "validation",
                "an arrival before its confirmation")
        _ = try await json(s, "deployment.arrive", #"{"id":"D-1","occurred_at":"\#(hoursAgo(8))"}"#)

        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 10, source: "donation"), ctx)
        _ = try await json(s, "stock.transfer", #"{"id":"TR-1","from":"MNL","to":"TAC","item":"HSHETARPW406","quantity":5,"occurred_at":"\#(hoursAgo(5))"}"#)
        #expect(await domainError { _ = try await json(s, "stock.transfer.receive", #"{"id":"TR-1","quantity":5,"occurred_at":"\#(hoursAgo(6))"}"#) }?.caseName == "validation")

        _ = try await json(s, "task.create", #"{"id":"T-1","response":"PHL-2026-TC-01","cluster":"WSH","title":"t","priority":"low","occurred_at":"\#(hoursAgo(3))"}"#)
        _ = try await json(s, "task.start", #"{"id":"T-1","occurred_at":"\#(hoursAgo(2))"}"#)
        #expect(await domainError { _ = try await json(s, "task.complete", #"{"id":"T-1","occurred_at":"\#(hoursAgo(2.5))"}"#) }?.caseName == "validation")
        #expect(await domainError { _ = try await json(s, "response.close", #"{"id":"PHL-2026-TC-01","occurred_at":"\#(Timestamp.format(now.addingTimeInterval(-86_400 * 4)))"}"#) }?.caseName == "validation",
                "a closure before the declaration")
        // Nothing refused was written.
        #expect(try await s.store.read(stream: Streams.deployment("D-1")).count == 3)
    }

    @Test("completing a deployment early frees the rest of its dates for another deployment")
    func earlyCompletionFreesDates() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(RegisterPerson(id: "P-1", name: "A. Person", profiles: ["WASH"]), ctx)
        let today = Day(Date())
        _ = try await s.execute(RequestDeployment(id: "D-1", person: "P-1", response: "PHL-2026-TC-01", profile: "WASH",
                                                  start: today.adding(days: -10), end: today.adding(days: 20)), ctx)
        _ = try await s.execute(ConfirmDeployment(id: "D-1"), ctx)
        _ = try await s.execute(ArriveDeployment(id: "D-1"), ctx)
        let next = RequestDeployment(id: "D-2", person: "P-1", response: "PHL-2026-TC-01", profile: "WASH", start: today.adding(days: 5), end: today.adding(days: 15))
        #expect(await domainError { _ = try await s.execute(next, ctx) } == .deploymentOverlap(person: "P-1", conflicting: "D-1", kind: "deployment"))
        _ = try await s.execute(CompleteDeployment(id: "D-1"), ctx)
        let booked = try await s.execute(next, ctx)
        #expect(booked.created, "the dates after the early completion are free")
        #expect(await domainError {
            _ = try await s.execute(RequestDeployment(id: "D-3", person: "P-1", response: "PHL-2026-TC-01", profile: "WASH",
                                                      start: today.adding(days: -5), end: today.adding(days: -1)), ctx)
        } == .deploymentOverlap(person: "P-1", conflicting: "D-1", kind: "deployment"), "the days actually served stay booked")
    }

    @Test("cancellations carry a reason; a transfer cancelled after a partial receipt returns only what is still in transit")
    func cancelWithReason() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(RegisterPerson(id: "P-1", name: "A. Person", profiles: ["WASH"]), ctx)
        _ = try await s.execute(RequestDeployment(id: "D-1", person: "P-1", response: "PHL-2026-TC-01", profile: "WASH", start: day("2026-12-01"), end: day("2026-12-20")), ctx)
        let cancelled = try await json(s, "deployment.cancel", #"{"id":"D-1","reason":"visa refused"}"#)
        #expect(try stateJSON(cancelled)["cancel_reason"] as? String == "visa refused")
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 100, source: "donation"), ctx)
        _ = try await s.execute(TransferStock(id: "TR-1", from: "MNL", to: "TAC", item: "HSHETARPW406", quantity: 60), ctx)
        _ = try await s.execute(ReceiveTransfer(id: "TR-1", quantity: 20), ctx)
        let t = try await json(s, "stock.transfer.cancel", #"{"id":"TR-1","reason":"truck turned back"}"#)
        #expect(try stateJSON(t)["status"] as? String == "cancelled" && (try stateJSON(t)["cancel_reason"] as? String) == "truck turned back")
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 80, "40 still on the truck came back")
        #expect(try await onHand(s, "TAC", "HSHETARPW406") == 20)
    }
}

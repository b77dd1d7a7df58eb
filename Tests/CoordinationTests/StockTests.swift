import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Stock")
struct StockTests {
    @Test("receipts and dispatches move on hand; a dispatch beyond it is refused with what is available")
    func receiveDispatch() async throws {
        let s = try await makeService()
        try await seed(s)
        let r = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 1000, source: "donation", donor: "ECHO"), ctx)
        #expect(try stateJSON(r)["on_hand"] as? Int == 1000)
        _ = try await s.execute(DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 400, destination: "Tacloban",
                                              response: "PHL-2026-TC-01", reference: "WB-0042"), ctx)
        let head = try await s.store.headPosition()
        let refused = await domainError {
            _ = try await s.execute(DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 601, destination: "Ormoc"), ctx)
        }
        #expect(refused == .insufficientStock(warehouse: "MNL", item: "HSHETARPW406", requested: 601, available: 600))
                #expect(refused?.caseName == "insufficient-stock")
        #expect(try await s.store.headPosition() == head, "a refused command writes nothing")
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 600)
    }

    @Test("200 concurrent dispatches of 1 against a stock of 50: exactly 50 succeed, on hand ends at 0")
    func concurrentDispatches() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(ReceiveStock(warehouse: "TAC", item: "HCONJCANPF10", quantity: 50, source: "internal"), ctx)
        let outcomes = await withTaskGroup(of: String.self) { group in
            for i in 0..<200 {
                group.addTask {
                    do {
                        _ = try await s.execute(DispatchStock(warehouse: "TAC", item: "HCONJCANPF10", quantity: 1, destination: "site \(i)"), ctx)
                        return "ok"
                    } catch let e as DomainError { return e.caseName } catch { return "\(error)" }
                }
            }
            var counts: [String: Int] = [:]
            for await o in group { counts[o, default: 0] += 1 }
            return counts
        }
        #expect(outcomes == ["ok": 50, "insufficient-stock": 150])
        #expect(try await onHand(s, "TAC", "HCONJCANPF10") == 0)
    }

    @Test("a hot stock card: 120 concurrent receipts and dispatches on one card: the balance never goes below zero, every refusal is one the log's order makes")
    func hotCard() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 20, source: "procurement"), ctx)
        let outcomes = await withTaskGroup(of: String.self) { group in
            for i in 0..<120 {
                group.addTask {
                    do {
                        if i % 3 == 0 {
                            _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 5, source: "donation"), ctx)
                        } else {
                            _ = try await s.execute(DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 4, destination: "site \(i)"), ctx)
                        }
                        return "ok"
                    } catch let e as DomainError { return e.caseName } catch { return "\(error)" }
                }
            }
            var counts: [String: Int] = [:]
            for await o in group { counts[o, default: 0] += 1 }
            return counts
        }
        #expect(Set(outcomes.keys).isSubset(of: ["ok", "insufficient-stock"]), "\(outcomes)")
        let (balance, receipts, dispatches) = try await walkHotCard(s)
        #expect(receipts == 41 && dispatches == (outcomes["ok"] ?? 0) - 40, "\(receipts) receipts, \(dispatches) dispatches, \(outcomes)")
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == balance)
    }

    @Test("a hot stock card shared by two processes: commands decided on queued ones decide again when the other process wrote first; the card never goes below zero and every success is one event")
    func hotCardTwoProcesses() async throws {
        let a = try await makeService()
        try await seed(a)
        let b = CoordinationService(store: EventStore(pool: PostgresPool(configuration: a.store.pool.configuration)))
        _ = try await a.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 20, source: "procurement"), ctx)
        let outcomes = await withTaskGroup(of: (Bool, String).self) { group in
            for i in 0..<160 {
                let s = i % 4 == 3 ? b : a
                group.addTask {
                    let receipt = i % 3 == 0
                    do {
                        if receipt {
                            _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 5, source: "donation"), ctx)
                        } else {
                            _ = try await s.execute(DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 4, destination: "site \(i)"), ctx)
                        }
                        return (receipt, "ok")
                    } catch let e as DomainError { return (receipt, e.caseName) } catch { return (receipt, "\(error)") }
                }
            }
            var counts: [String: Int] = [:]
            for await (receipt, o) in group { counts[(receipt ? "receipt " : "dispatch ") + o, default: 0] += 1 }
            return counts
        }
        // Across processes, a command that keeps losing to the other's writes ends as contention (503, written nothing).
        #expect(Set(outcomes.keys).isSubset(of: ["receipt ok", "dispatch ok", "dispatch insufficient-stock", "receipt contention",
                                                 "dispatch contention"]), "\(outcomes)")
        #expect((outcomes["receipt ok"] ?? 0) + (outcomes["dispatch ok"] ?? 0) > 0, "\(outcomes)")
        let (balance, receipts, dispatches) = try await walkHotCard(a)
        #expect(receipts == 1 + (outcomes["receipt ok"] ?? 0) && dispatches == (outcomes["dispatch ok"] ?? 0), "\(outcomes)")
        #expect(try await onHand(a, "MNL", "HSHETARPW406") == balance)
    }

    /// The hot card (MNL, tarpaulins, dispatches of 4), in log order: every step keeps the balance at or above
    /// zero. Returns where it ends and how many receipts and dispatches it holds.
    func walkHotCard(_ s: CoordinationService) async throws -> (balance: Int64, receipts: Int, dispatches: Int) {
        var balance: Int64 = 0
        var receipts = 0, dispatches = 0
        for event in try await s.store.read(stream: "stock-MNL:HSHETARPW406", from: 1, limit: 1000) {
            if event.type == "stock.received" {
                balance += ((try JSONSerialization.jsonObject(with: Data(event.data.text.utf8)) as? [String: Any])?["quantity"] as? Int64) ?? 0
                receipts += 1
            }
            if event.type == "stock.dispatched" { balance -= 4; dispatches += 1 }
            #expect(balance >= 0, "below zero at version \(event.version)")
        }
        return (balance, receipts, dispatches)
    }

    @Test("two processes dispatching at once still never take stock below zero")
    func concurrentAcrossProcesses() async throws {
        let a = try await makeService()
        try await seed(a)
        // A second service with its own store and writer connection on the same schema: another coordd.
        let b = CoordinationService(store: EventStore(pool: PostgresPool(configuration: a.store.pool.configuration)))
        _ = try await a.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 30, source: "procurement"), ctx)
        let successes = await withTaskGroup(of: Int.self) { group in
            for i in 0..<60 {
                let s = i % 2 == 0 ? a : b
                group.addTask {
                    (try? await s.execute(DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 1, destination: "x"), ctx)) == nil ? 0 : 1
                }
            }
            return await group.reduce(0, +)
        }
        #expect(successes == 30)
        #expect(try await onHand(a, "MNL", "HSHETARPW406") == 0)
    }

    @Test("adjustments need a reason that fits the sign and cannot go below zero; counts record the variance")
    func adjustAndCount() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 100, source: "donation"), ctx)
        #expect(await domainError {
            _ = try await s.execute(AdjustStock(warehouse: "MNL", item: "HSHETARPW406", delta: 5, reason: "damaged"), ctx)
        } == .validation([FieldError("delta", "must be negative for damaged")]))
        #expect(await domainError {
            _ = try await s.execute(AdjustStock(warehouse: "MNL", item: "HSHETARPW406", delta: -101, reason: "lost"), ctx)
        }?.caseName == "insufficient-stock")
        _ = try await s.execute(AdjustStock(warehouse: "MNL", item: "HSHETARPW406", delta: -10, reason: "damaged", note: "flooded bay"), ctx)
        let counted = try await s.execute(CountStock(warehouse: "MNL", item: "HSHETARPW406", counted: 87), ctx)
        #expect(try stateJSON(counted)["on_hand"] as? Int == 87)
        let last = try await s.store.read(stream: Streams.stock("MNL", "HSHETARPW406"), from: .max, direction: .backward, limit: 1)[0]
        guard case .stockCounted(let payload) = try EventCodec.decode(last) else { Issue.record("not a count"); return }
        #expect(payload.book == 90)
        #expect(payload.variance == -3)
    }

    @Test("a transfer leaves at once, is received once, and a shortfall is a loss in transit")
    func transfers() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 500, source: "procurement"), ctx)
        #expect(await domainError {
            _ = try await s.execute(TransferStock(id: "TR-1", from: "MNL", to: "TAC", item: "HSHETARPW406", quantity: 501), ctx)
        }?.caseName == "insufficient-stock")
        let sent = try await s.execute(TransferStock(id: "TR-1", from: "MNL", to: "TAC", item: "HSHETARPW406", quantity: 300, reference: "WB-1"), ctx)
        #expect(sent.created)
        #expect(try stateJSON(sent)["status"] as? String == "in_transit")
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 200)
        #expect(try await onHand(s, "TAC", "HSHETARPW406") == 0)
        #expect(await domainError { _ = try await s.execute(ReceiveTransfer(id: "TR-1", quantity: 301), ctx) }
                == .validation([FieldError("quantity", "must not exceed the 300 still in transit (300 sent, 0 received)")]))
        // In parts: 200, then 90 and the final word that the rest (10) is lost.
        let part = try await s.execute(ReceiveTransfer(id: "TR-1", quantity: 200), ctx)
        #expect(try stateJSON(part)["status"] as? String == "in_transit")
        #expect(try stateJSON(part)["received"] as? Int == 200)
        #expect(try await onHand(s, "TAC", "HSHETARPW406") == 200)
        #expect(await domainError { _ = try await s.execute(ReceiveTransfer(id: "TR-1", quantity: 101), ctx) }
                == .validation([FieldError("quantity", "must not exceed the 100 still in transit (300 sent, 200 received)")]))
        let received = try await s.execute(ReceiveTransfer(id: "TR-1", quantity: 90, final: true), ctx)
        #expect(try stateJSON(received)["status"] as? String == "received")
        #expect(try stateJSON(received)["lost"] as? Int == 10)
        #expect(try await onHand(s, "TAC", "HSHETARPW406") == 290)
        #expect(await domainError { _ = try await s.execute(ReceiveTransfer(id: "TR-1", quantity: 290), ctx) }
                == .invalidTransition(kind: "transfer", id: "TR-1", current: "received", action: "receive"))
        // Receiving everything still in transit closes a transfer without `final`.
        _ = try await s.execute(TransferStock(id: "TR-3", from: "MNL", to: "TAC", item: "HSHETARPW406", quantity: 20), ctx)
        _ = try await s.execute(ReceiveTransfer(id: "TR-3", quantity: 5), ctx)
        let whole = try await s.execute(ReceiveTransfer(id: "TR-3", quantity: 15), ctx)
        #expect(try stateJSON(whole)["status"] as? String == "received" && (try stateJSON(whole)["lost"] as? Int) == 0)
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 20, source: "procurement"), ctx)
        #expect(await domainError { _ = try await s.execute(CancelTransfer(id: "TR-1"), ctx) }?.caseName == "invalid-transition")

        _ = try await s.execute(TransferStock(id: "TR-2", from: "MNL", to: "TAC", item: "HSHETARPW406", quantity: 50), ctx)
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 150)
        _ = try await s.execute(CancelTransfer(id: "TR-2"), ctx)
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 200, "a cancelled transfer returns its stock")
        #expect(await domainError { _ = try await s.execute(TransferStock(id: "TR-2", from: "MNL", to: "TAC", item: "HSHETARPW406", quantity: 1), ctx) }
                == .alreadyExists(kind: "transfer", id: "TR-2"))
    }

    @Test("unknown warehouse, item, response or transfer: not found, nothing written")
    func unknownReferences() async throws {
        let s = try await makeService()
        try await seed(s)
        let head = try await s.store.headPosition()
        #expect(await domainError { _ = try await s.execute(ReceiveStock(warehouse: "NOPE", item: "HSHETARPW406", quantity: 1, source: "donation"), ctx) }
                == .notFound(kind: "warehouse", id: "NOPE"))
        #expect(await domainError { _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "NOPE", quantity: 1, source: "donation"), ctx) }
                == .notFound(kind: "item", id: "NOPE"))
        #expect(await domainError { _ = try await s.execute(DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 1, destination: "x", response: "NOPE"), ctx) }
                == .notFound(kind: "response", id: "NOPE"))
        #expect(await domainError { _ = try await s.execute(ReceiveTransfer(id: "NOPE", quantity: 1), ctx) } == .notFound(kind: "transfer", id: "NOPE"))
        #expect(await domainError { _ = try await s.execute(TransferStock(from: "MNL", to: "NOPE", item: "HSHETARPW406", quantity: 1), ctx) }
                == .notFound(kind: "warehouse", id: "NOPE"))
        #expect(try await s.store.headPosition() == head)
    }

    @Test("levels: minimum must not exceed target; kits list registered components")
    func levelsAndKits() async throws {
        let s = try await makeService()
        try await seed(s)
        #expect(await domainError { _ = try await s.execute(SetLevels(code: "MNL", item: "HSHETARPW406", minimum: 10, target: 5), ctx) }
                == .validation([FieldError("minimum", "must not exceed target")]))
        let r = try await s.execute(SetLevels(code: "MNL", item: "HSHETARPW406", minimum: 500, target: 2000), ctx)
        #expect(try stateJSON(r)["minimum"] as? Int == 500)
        _ = try await s.execute(RegisterItem(code: "KRELSHEK02", name: "Shelter kit", unit: "kit",
                                             kit: [KitComponent(item: "HSHETARPW406", quantity: 2)]), ctx)
        #expect(await domainError {
            _ = try await s.execute(RegisterItem(code: "KRELSHEK03", name: "Kit", unit: "kit", kit: [KitComponent(item: "MISSING", quantity: 1)]), ctx)
        } == .notFound(kind: "item", id: "MISSING"))
        #expect(await domainError { _ = try await s.execute(RegisterWarehouse(code: "MNL", name: "again", country: "PHL", kind: "field"), ctx) }
                == .alreadyExists(kind: "warehouse", id: "MNL"))
    }
}

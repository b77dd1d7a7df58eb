import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Demo scenario")
struct DemoTests {
    @Test("the shipped scenario loads without a refusal, is realistic in size, and a reload writes nothing")
    func loads() async throws {
        let s = try await makeService()
        let (run, duplicates) = try await DemoScenario.load(into: s)
        #expect(duplicates == 0)
        let head = try await s.store.headPosition()
        let events = try await s.store.read(after: 0, limit: 10_000)
        let types = Dictionary(grouping: events, by: \.type).mapValues(\.count)
        #expect(types["warehouse.registered"]! >= 5)
        #expect(types["item.registered"]! >= 12)
        #expect(types["deployment.requested"]! >= 20)
        #expect(types["task.created"]! >= 40)
        #expect(types["stock.transfer_sent"]! >= 5)
        #expect(types["stock.dispatched"]! >= 20)
        #expect(types["transfer.received"]! >= 5)
        let losses = events.filter { $0.type == "transfer.received" }.compactMap { e -> Int64? in if case .transferReceived(let r)? = try? EventCodec.decode(e) { return r.lost }; return nil }
        #expect(losses.contains { $0 > 0 }, "the scenario has a loss in transit")
        let occurred = events.map(\.occurredAt)
        #expect(occurred.max()!.timeIntervalSince(DemoScenario.landfall) > 30 * 86_400, "spread over weeks")
        #expect(events.allSatisfy { $0.decodedMetadata.source == "demo" })

        let again = try await DemoScenario.load(into: s)
        #expect(again == (run: run, duplicates: run))
        #expect(try await s.store.headPosition() == head)
        #expect(try await s.store.verify().isSound)
    }
}

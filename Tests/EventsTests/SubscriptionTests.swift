import Foundation
import Synchronization
import Testing
@testable import Events
import TestSupport

/// Collects what a subscription delivers, for assertions from the test's task.
final class Collected: Sendable {
    private let events = Mutex<[RecordedEvent]>([])
    func add(_ e: RecordedEvent) { events.withLock { $0.append(e) } }
    var all: [RecordedEvent] { events.withLock { $0 } }
    var count: Int { events.withLock { $0.count } }

    /// Waits until at least `n` events arrived, up to `timeout` seconds.
    func waitFor(_ n: Int, timeout: Double = 20) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while count < n, Date() < deadline { try? await Task.sleep(nanoseconds: 20_000_000) }
        return count >= n
    }
}

func startSubscriber(_ store: EventStore, after: Int64 = 0, filter: EventFilter = .all, into collected: Collected) -> Task<Void, Error> {
    Task {
        for try await event in store.subscribe(after: after, filter: filter, pollInterval: 0.5) {
            collected.add(event)
        }
    }
}

@Suite("Read and subscribe")
struct SubscriptionTests {
    @Test("catch-up then live: every event once, in position order")
    func catchUpThenLive() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        for i in 0..<7 { try await store.append(sampleEvents(100), to: "hist-\(i)") }  // more than one batch
        let collected = Collected()
        let task = startSubscriber(store, into: collected)
        defer { task.cancel() }
        #expect(await collected.waitFor(700))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<10 { group.addTask { for _ in 0..<10 { try await store.append(sampleEvents(1), to: "live-\(w)") } } }
            try await group.waitForAll()
        }
        #expect(await collected.waitFor(800))
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(collected.all.map(\.position) == Array(1...800))
    }

    @Test("an append that commits late is neither skipped nor overtaken")
    func lateCommit() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        let collected = Collected()
        let task = startSubscriber(store, into: collected)
        defer { task.cancel() }

        // Another connection appends but holds its transaction open before COMMIT.
        let holder = try TestDatabase.connection(like: store.pool)
        defer { holder.close() }
        let late = [StreamAppend(stream: "late", events: sampleEvents(1))]
        _ = try EventStore.validate(late, receipt: nil)
        let json = EventStore.json(late, receipt: nil)
        try holder.execute(unsafe: "BEGIN")
        try holder.query("SELECT * FROM coord_append(\(JSONText("[" + json + "]"))::jsonb)")

        let writers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<5 { group.addTask { try await store.append(sampleEvents(1), to: "early-\(i)") } }
                try await group.waitForAll()
            }
        }
        try await Task.sleep(nanoseconds: 700_000_000)
        #expect(collected.count == 0, "nothing may be visible while an earlier position is uncommitted")
        try holder.execute(unsafe: "COMMIT")
        try await writers.value
        #expect(await collected.waitFor(6))
        try await Task.sleep(nanoseconds: 300_000_000)
        let all = collected.all
        #expect(all.map(\.position) == [1, 2, 3, 4, 5, 6])
        #expect(all.first?.stream == "late")
        #expect(Set(all.map(\.id)).count == 6)
    }

    @Test("a subscription resumes after a PostgreSQL restart with nothing lost or repeated")
    func survivesRestart() async throws {
        let scratch = try await ScratchCluster.started("restart")
        defer { scratch.remove() }
        let pool = PostgresPool(configuration: try PostgresConfiguration(connectionString: scratch.connectionString, poolSize: 4))
        defer { pool.close() }
        _ = try await Migrator.migrate(pool, [EventStoreSchema.migrations])
        let store = EventStore(pool: pool)
        defer { store.close() }
        let collected = Collected()
        let task = startSubscriber(store, into: collected)
        defer { task.cancel() }
        for i in 0..<5 { try await store.append(sampleEvents(2), to: "before-\(i)") }
        #expect(await collected.waitFor(10))

        try await scratch.stop(mode: "fast")
        try await Task.sleep(nanoseconds: 300_000_000)
        try await scratch.start()

        for i in 0..<5 { try await store.append(sampleEvents(2), to: "after-\(i)") }
        #expect(await collected.waitFor(20, timeout: 30))
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(collected.all.map(\.position) == Array(1...20))
    }

    @Test("filters by category, type and stream, and subscriptions honour them")
    func filters() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(2, type: "stock.received"), to: "stock-MNL")
        try await store.append(sampleEvents(2, type: "task.created"), to: "task-1")
        try await store.append(sampleEvents(1, type: "stock.dispatched"), to: "stock-TAC")
        try await store.append(sampleEvents(1, type: "stock.received"), to: "stockpile")
        let stock = try await store.read(filter: EventFilter(categories: ["stock"]))
        #expect(stock.map(\.stream) == ["stock-MNL", "stock-MNL", "stock-TAC"])
        #expect(try await store.read(filter: EventFilter(types: ["stock.received"])).map(\.position) == [1, 2, 6])
        #expect(try await store.read(filter: EventFilter(streams: ["task-1"])).count == 2)
        #expect(try await store.read(after: 2, limit: 2).map(\.position) == [3, 4])

        let collected = Collected()
        let task = startSubscriber(store, filter: EventFilter(categories: ["task"]), into: collected)
        defer { task.cancel() }
        try await store.append(sampleEvents(1, type: "task.started"), to: "task-1")
        try await store.append(sampleEvents(1), to: "stock-MNL")
        #expect(await collected.waitFor(3))
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(collected.all.map(\.position) == [3, 4, 7])
    }

    @Test("reads up to a position or a recorded time, and streams backwards")
    func asOfAndBackward() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(3), to: "asof")
        let known = try await store.read(after: 0).last!.recordedAt
        try await Task.sleep(nanoseconds: 20_000_000)
        try await store.append(sampleEvents(2), to: "asof")
        #expect(try await store.read(until: .recordedAt(known)).count == 3)
        #expect(try await store.read(until: .position(4)).count == 4)
        // The batched read up to a recorded time, in windows smaller than what it returns, and with nothing recorded yet.
        var windowed: [Int64] = []
        try await store.forEach(until: .recordedAt(known), batchSize: 2) { windowed.append($0.position) }
        #expect(windowed == [1, 2, 3])
        windowed = []
        try await store.forEach(after: 1, until: .recordedAt(Date()), batchSize: 1) { windowed.append($0.position) }
        #expect(windowed == [2, 3, 4, 5])
        windowed = []
        try await store.forEach(until: .recordedAt(known.addingTimeInterval(-3600)), batchSize: 2) { windowed.append($0.position) }
        #expect(windowed.isEmpty)
        let backward = try await store.read(stream: "asof", from: .max, direction: .backward, limit: 2)
        #expect(backward.map(\.version) == [5, 4])
        #expect(try await store.read(stream: "asof", from: 4).map(\.version) == [4, 5])
    }
}

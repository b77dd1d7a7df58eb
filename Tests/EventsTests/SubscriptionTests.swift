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

/// A live consumer as the API's feeds use the fan-out: pull history and the window until caught up, then attach, and
/// go back to pulling whenever detached. `declineEvery` > 0 makes the attached delivery stop before every n-th
/// position (the feed's task must send that one itself), so consumers go back and forth between the two.
final class FanoutConsumer: Sendable {
    let seen = Mutex<[Int64]>([])
    let attachments = Mutex(0)
    private let position = Mutex<Int64>(0)

    func run(_ fanout: EventFanout, store: EventStore, until head: Int64, declineEvery: Int64) async throws {
        var at: Int64 = 0
        while at < head {
            switch fanout.events(after: at, limit: 50) {
            case .history(let until):
                let batch = try await store.read(after: at, limit: 50, until: .position(until))
                seen.withLock { $0.append(contentsOf: batch.map(\.position)) }
                at = batch.count < 50 ? until : batch.last!.position
            case .events(let batch):
                if batch.isEmpty {
                    position.withLock { $0 = at }
                    if let attachment = fanout.attach(at: at, { batch in self.take(batch, until: head, declineEvery: declineEvery) }) {
                        attachments.withLock { $0 += 1 }
                        await attachment.detached()
                        at = position.withLock { $0 }
                    } else {
                        await fanout.wait(after: at)
                    }
                    continue
                }
                seen.withLock { $0.append(contentsOf: batch.map(\.event.position)) }
                at = batch.last!.event.position
            }
        }
    }

    /// Takes the batch up to a declined position; false (detach) at one, or once `head` is reached (done).
    private func take(_ batch: [EventFanout.Delivery], until head: Int64, declineEvery: Int64) -> Bool {
        position.withLock { p in
            for (event, _) in batch where event.position > p {
                if declineEvery > 0, event.position % declineEvery == 0 { return false }
                seen.withLock { $0.append(event.position) }
                p = event.position
            }
            return p < head
        }
    }
}

@Suite("Live fan-out")
struct FanoutTests {
    @Test("consumers attached to the tail reader and consumers pulling, switching back and forth under concurrent appends: every event once, in order")
    func attachedAndPulled() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        for i in 0..<3 { try await store.append(sampleEvents(40), to: "before-\(i)") }  // history older than the window
        let fanout = EventFanout(store: store, capacity: 64)
        defer { fanout.stop() }
        try await fanout.start()
        let writers = 8, appends = 25, head: Int64 = 120 + Int64(writers * appends * 2)
        let consumers = (0..<24).map { _ in FanoutConsumer() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, consumer) in consumers.enumerated() {
                // Never decline, decline every 7th, or every 3rd position.
                group.addTask { try await consumer.run(fanout, store: store, until: head, declineEvery: [0, 7, 3][i % 3]) }
            }
            for w in 0..<writers {
                group.addTask {
                    for _ in 0..<appends {
                        try await store.append(sampleEvents(2), to: "live-\(w)")
                        try await Task.sleep(nanoseconds: UInt64.random(in: 0...3_000_000))
                    }
                }
            }
            try await group.waitForAll()
        }
        for consumer in consumers {
            #expect(consumer.seen.withLock { $0 } == Array(1...head))
        }
        #expect(consumers.allSatisfy { $0.attachments.withLock { $0 } > 0 }, "every consumer was delivered to by the reader at some point")
    }

    @Test("an attachment ends when its task is cancelled, and nothing is delivered to it after; one asked at a position behind the tail is refused")
    func detachOnCancel() async throws {
        let store = try await TestDatabase.makeStore()
        defer { store.close() }
        try await store.append(sampleEvents(3), to: "early")
        let fanout = EventFanout(store: store)
        defer { fanout.stop() }
        try await fanout.start()
        let behind = fanout.attach(at: 2) { _ in true }
        #expect(behind == nil, "not at the tail: the consumer must pull first")
        let delivered = Counter()
        let attached = fanout.attach(at: 3) { batch in delivered.add(batch.count); return true }
        let attachment = try #require(attached)
        try await store.append(sampleEvents(1), to: "one")
        for _ in 0..<200 where delivered.value < 1 { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(delivered.value == 1)
        let waiting = Task { await attachment.detached() }
        try await Task.sleep(nanoseconds: 50_000_000)
        waiting.cancel()
        await waiting.value
        try await store.append(sampleEvents(2), to: "two")
        for _ in 0..<100 where fanout.events(after: 4, limit: 10).count < 2 { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(fanout.events(after: 4, limit: 10).count == 2, "the window moved on")
        #expect(delivered.value == 1, "nothing delivered after the detach")
    }
}

/// A count shared with a delivery closure.
private final class Counter: Sendable {
    private let count = Mutex(0)
    func add(_ n: Int) { count.withLock { $0 += n } }
    var value: Int { count.withLock { $0 } }
}

extension EventFanout.Slice {
    /// Events in a window slice (0 for history).
    var count: Int {
        if case .events(let batch) = self { return batch.count }
        return 0
    }
}

import Dispatch
import Foundation
import Synchronization

/// A catch-up subscription (see `EventStore.subscribe`). Pull-based: the next batch is read only when
/// the consumer has taken the previous one, so a slow consumer never makes memory grow.
public struct Subscription: AsyncSequence, Sendable {
    public typealias Element = RecordedEvent
    let store: EventStore
    let after: Int64
    let filter: EventFilter
    let batchSize: Int
    let pollInterval: Double
    let readable: (@Sendable (Bool) -> Void)?

    public func makeAsyncIterator() -> Iterator {
        Iterator(subscription: self, last: after)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let subscription: Subscription
        /// Position of the last event handed out (or the starting checkpoint).
        public private(set) var last: Int64
        var buffer: [RecordedEvent] = []
        var index = 0
        var failures = 0

        init(subscription: Subscription, last: Int64) {
            self.subscription = subscription
            self.last = last
        }

        public mutating func next() async throws -> RecordedEvent? {
            if index >= buffer.count {
                guard let batch = try await nextBatch() else { return nil }
                (buffer, index) = (batch, 0)
            }
            let event = buffer[index]
            index += 1
            last = event.position
            return event
        }

        /// The next events, as many as one read gives (at least one); nil when the task is cancelled.
        public mutating func nextBatch() async throws -> [RecordedEvent]? {
            let s = subscription
            s.store.watcher.start()
            var batch: [RecordedEvent] = []
            while true {
                if let event = batch.last {
                    last = event.position
                    return batch
                }
                if Task.isCancelled { return nil }
                let generation = s.store.watcher.generation
                do {
                    batch = try await s.store.read(after: last, limit: s.batchSize, filter: s.filter)
                    if failures > 0 { s.readable?(true) }
                    failures = 0
                } catch let error as PostgresError where error.isConnectionFailure || error.kind == .pool {
                    // PostgreSQL is restarting or unreachable: wait and resume after `last`, nothing lost.
                    if failures == 0 { s.readable?(false) }
                    failures += 1
                    let delay = Swift.min(2.0, 0.05 * Double(1 << Swift.min(failures, 6)))
                    try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                    continue
                }
                if batch.isEmpty {
                    await s.store.watcher.wait(since: generation, timeout: s.pollInterval)
                }
            }
        }
    }
}

/// Listens on the `coord_events` channel on its own connection and thread, and wakes waiting
/// subscribers when an append commits. Reconnects by itself; while disconnected, subscribers fall
/// back to polling, and every reconnection wakes them, since notifications may have been missed.
final class HeadWatcher: Sendable {
    private let configuration: PostgresConfiguration

    private struct State {
        var generation = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextID = 0
        var started = false
        var stopped = false
    }

    private let state = Mutex(State())

    init(configuration: PostgresConfiguration) {
        var configuration = configuration
        configuration.applicationName += "-listener"
        self.configuration = configuration
    }

    /// Changes whenever new events may have been committed.
    var generation: Int { state.withLock { $0.generation } }

    func start() {
        let first = state.withLock { s -> Bool in
            if s.started || s.stopped { return false }
            s.started = true
            return true
        }
        guard first else { return }
        let thread = Thread { [self] in listen() }
        thread.name = "coord-listener"
        thread.start()
    }

    func stop() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.stopped = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func bump() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.generation &+= 1
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }

    /// Returns when the generation moves past `since`, or after `timeout` seconds.
    func wait(since: Int, timeout: Double) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id = state.withLock { s -> Int? in
                if s.generation != since || s.stopped { return nil }
                s.nextID += 1
                s.waiters[s.nextID] = continuation
                return s.nextID
            }
            guard let id else { continuation.resume(); return }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [self] in
                state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
            }
        }
    }

    private func listen() {
        var failures = 0
        while !isStopped {
            do {
                let connection = try PostgresConnection(configuration: configuration)
                defer { connection.close() }
                try connection.listen("coord_events")
                failures = 0
                bump()  // anything committed while we were not listening
                while !isStopped {
                    let notifications = try connection.waitForNotifications(timeout: 0.5)
                    if !notifications.isEmpty { bump() }
                }
            } catch {
                failures += 1
                Thread.sleep(forTimeInterval: min(2.0, 0.1 * Double(failures)))
            }
        }
    }
}

import Foundation
import Synchronization

/// One reader of the log's tail shared by many live consumers (the API's live feeds): each batch of new
/// events is read from PostgreSQL once and kept in a window of recent events, instead of once per
/// consumer. With 500 feeds open, per-feed reads cost 500 queries per appended event and starved the rest
/// of the server; here they cost one.
///
/// A consumer asks for the events after its position: from the window when the position is inside it,
/// or `.history` when it is older, and then reads the store itself up to where the window begins.
/// Positions in the window are contiguous, so a consumer never skips or repeats an event.
public final class EventFanout: Sendable {
    public enum Slice: Sendable {
        /// The window's events after the asked position, each with its rendering (empty: nothing newer yet;
        /// `wait` for more).
        case events([(event: RecordedEvent, rendered: [UInt8])])
        /// The position is older than the window: read the store up to (and including) `until`.
        case history(until: Int64)
    }

    private struct State {
        var started = false
        /// Position of the last event read; the window holds (tail - window.count, tail].
        var tail: Int64 = 0
        var window: [(event: RecordedEvent, rendered: [UInt8])] = []
        var windowStart = 0
        var task: Task<Void, Never>?
        /// The tail reader cannot read the log (the database is down): consumers waiting on it would idle.
        var unreadable = false
    }

    private let store: EventStore
    private let capacity: Int
    private let render: @Sendable (RecordedEvent) -> [UInt8]
    private let state = Mutex(State())
    private let waiters = Waiters()

    /// `render` turns an event into what consumers send (done once per event, not once per consumer).
    public init(store: EventStore, capacity: Int = 10_000, render: @escaping @Sendable (RecordedEvent) -> [UInt8] = { _ in [] }) {
        self.store = store
        self.capacity = max(1, capacity)
        self.render = render
    }

    /// Starts reading the tail after the current head, once.
    public func start() async throws {
        if state.withLock({ $0.started }) { return }
        let head = try await store.headPosition()
        let begin = state.withLock { s -> Bool in
            if s.started { return false }
            s.started = true
            s.tail = head
            return true
        }
        guard begin else { return }
        let task = Task { [self] in
            var iterator = store.subscribe(after: head, readable: { [weak self] readable in self?.setReadable(readable) }).makeAsyncIterator()
            while !Task.isCancelled {
                do {
                    guard let batch = try await iterator.nextBatch() else { break }
                    append(batch)
                } catch {
                    // The subscription rides out connection failures itself; anything else: pause, then go on.
                    try? await Task.sleep(nanoseconds: 500_000_000)
                }
            }
        }
        state.withLock { $0.task = task }
    }

    /// True while the tail reader cannot read the log. A consumer that finds nothing new should then end (its
    /// client reconnects and resumes) instead of waiting on a window that does not move.
    public var isUnreadable: Bool { state.withLock { $0.unreadable } }

    private func setReadable(_ readable: Bool) {
        state.withLock { $0.unreadable = !readable }
        waiters.resumeAll()
    }

    public func stop() {
        state.withLock { $0.task }?.cancel()
        waiters.resumeAll()
    }

    private func append(_ batch: [RecordedEvent]) {
        let rendered = batch.map { ($0, render($0)) }
        state.withLock { s in
            s.window.append(contentsOf: rendered)
            s.tail = batch.last?.position ?? s.tail
            let live = s.window.count - s.windowStart
            if live > capacity { s.windowStart += live - capacity }
            if s.windowStart > capacity {
                s.window.removeFirst(s.windowStart)
                s.windowStart = 0
            }
        }
        waiters.resumeAll()
    }

    /// Up to `limit` events after `position`.
    public func events(after position: Int64, limit: Int) -> Slice {
        state.withLock { s in
            let count = s.window.count - s.windowStart
            let first = s.tail - Int64(count)  // the window holds positions first + 1 ... tail
            if position < first { return .history(until: first) }
            if position >= s.tail { return .events([]) }
            let from = s.windowStart + Int(position - first)
            return .events(Array(s.window[from..<min(s.window.count, from + limit)]))
        }
    }

    /// Returns when an event after `position` is in the window, when the log stops being readable, or when the
    /// task is cancelled.
    public func wait(after position: Int64) async {
        await waiters.wait { state.withLock { $0.tail > position || $0.unreadable } }
    }
}

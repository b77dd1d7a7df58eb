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
///
/// A consumer that has caught up can also `attach`: the reader then hands it each new batch itself, on the
/// reader's task, instead of waking the consumer's task for every event. Pulling, 500 feeds cost 500 task wake-ups
/// (a continuation, a job on the cooperative pool, a slice of the window, a new waiter) per appended event, and
/// under 50 events a second that alone took most of a core and held GETs behind it.
public final class EventFanout: Sendable {
    public typealias Delivery = (event: RecordedEvent, rendered: [UInt8])

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
        /// Consumers the reader delivers to itself (`attach`).
        var attached: [Attachment] = []
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
        let detached = state.withLock { s -> [Attachment] in
            s.unreadable = !readable
            // Nothing comes while the log cannot be read: attached consumers go back to pulling, which notices.
            guard !readable else { return [] }
            defer { s.attached = [] }
            return s.attached
        }
        detached.forEach { $0.detach() }
        waiters.resumeAll()
    }

    public func stop() {
        let (task, detached) = state.withLock { s in
            defer { s.attached = [] }
            return (s.task, s.attached)
        }
        task?.cancel()
        detached.forEach { $0.detach() }
        waiters.resumeAll()
    }

    private func append(_ batch: [RecordedEvent]) {
        let rendered = batch.map { ($0, render($0)) }
        // Attached consumers get the batch before the window's waiters wake, in the reader's order; one attached
        // after this snapshot attached at the new tail, having pulled this batch itself.
        let attached = state.withLock { s in
            s.window.append(contentsOf: rendered)
            s.tail = batch.last?.position ?? s.tail
            let live = s.window.count - s.windowStart
            if live > capacity { s.windowStart += live - capacity }
            if s.windowStart > capacity {
                s.window.removeFirst(s.windowStart)
                s.windowStart = 0
            }
            return s.attached
        }
        // `offer` is false for one that ended, now or before (a cancelled feed): those go.
        var ended = false
        for a in attached where !a.offer(rendered) { ended = true }
        if ended { state.withLock { $0.attached.removeAll { $0.isEnded } } }
        waiters.resumeAll()
    }

    /// Attaches a consumer that has read everything up to `position`, when that is the window's tail: from then on
    /// the reader calls `deliver` with every new batch, in order, on the reader's task, until `deliver` returns false
    /// or the attachment ends otherwise (see `Attachment.detached`). `deliver` must be quick and must not wait: it
    /// runs under the attachment's lock, and every other consumer's batch waits for it. The consumer keeps its own
    /// position (what `deliver` took) and goes on from there once detached. Returns nil, attaching nothing, when
    /// `position` is not the tail (pull up to it first) or the log cannot be read.
    public func attach(at position: Int64, _ deliver: @escaping @Sendable ([Delivery]) -> Bool) -> Attachment? {
        let attachment = Attachment(deliver)
        let attached = state.withLock { s -> Bool in
            guard s.started, !s.unreadable, s.tail == position else { return false }
            // Ones that ended since the last batch (their feeds closed) go now, so a quiet log does not keep them.
            s.attached.removeAll { $0.isEnded }
            s.attached.append(attachment)
            return true
        }
        return attached ? attachment : nil
    }

    /// Consumers attached now.
    public var attachedCount: Int { state.withLock { $0.attached.count { !$0.isEnded } } }

    /// A consumer `attach`ed to the reader.
    public final class Attachment: Sendable {
        private struct State {
            var ended = false
            var waiter: CheckedContinuation<Void, Never>?
        }
        private let state = Mutex(State())
        private let deliver: @Sendable ([Delivery]) -> Bool

        init(_ deliver: @escaping @Sendable ([Delivery]) -> Bool) { self.deliver = deliver }

        var isEnded: Bool { state.withLock { $0.ended } }

        /// Hands `batch` over unless ended; false once ended (now or before).
        func offer(_ batch: [Delivery]) -> Bool {
            let (kept, waiter) = state.withLock { s -> (Bool, CheckedContinuation<Void, Never>?) in
                if s.ended { return (false, nil) }
                if deliver(batch) { return (true, nil) }
                s.ended = true
                defer { s.waiter = nil }
                return (false, s.waiter)
            }
            waiter?.resume()
            return kept
        }

        /// Ends the attachment: `deliver` is not called again (a call in progress finishes first).
        public func detach() {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                s.ended = true
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume()
        }

        /// Returns once the attachment has ended: `deliver` returned false, the log stopped being readable, the
        /// fan-out stopped, or the calling task was cancelled (which detaches it). After it returns, `deliver` is
        /// never called again, so the position it kept is final.
        public func detached() async {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { s -> Bool in
                        if s.ended { return true }
                        s.waiter = c
                        return false
                    }
                    if now { c.resume() }
                }
            } onCancel: {
                detach()
            }
        }
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

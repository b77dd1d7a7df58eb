import Synchronization

/// Tasks parked until their owner's state changes: the owner calls `resumeAll` after each change, and a waiter
/// checks its condition after parking, so a change between the check and the parking is never missed. Each waiter
/// is resumed once (whoever takes it out of the list resumes it), also when its task is cancelled.
public final class Waiters: Sendable {
    private let state = Mutex((next: 0, parked: [Int: CheckedContinuation<Void, Never>]()))

    public init() {}

    /// Returns at once when `ready` holds once parked, else at the owner's next `resumeAll`, or when the task is
    /// cancelled: a caller checks its condition again when this returns.
    public func wait(until ready: () -> Bool) async {
        let id = state.withLock { s -> Int in
            s.next += 1
            return s.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                state.withLock { $0.parked[id] = c }
                if ready() || Task.isCancelled { state.withLock { $0.parked.removeValue(forKey: id) }?.resume() }
            }
        } onCancel: {
            state.withLock { $0.parked.removeValue(forKey: id) }?.resume()
        }
    }

    /// Wakes every parked waiter.
    public func resumeAll() {
        let parked = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            defer { s.parked = [:] }
            return Array(s.parked.values)
        }
        parked.forEach { $0.resume() }
    }
}

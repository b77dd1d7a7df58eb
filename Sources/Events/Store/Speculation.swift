import Synchronization

/// An append that is queued but not yet committed, whose outcome later decisions may already build on.
///
/// A caller that decides on the state an earlier, still queued append will leave names that append's
/// speculation as a producer (`EventStore.enqueue(_:receipt:speculation:after:)`). The group committer then
/// writes the dependent only if every producer was written as it was requested, at the versions it
/// expected: a dependent queued after a producer that failed fails with `EventStoreError.speculationFailed`,
/// and a batch that holds both is one transaction, rolled back and sent again without the dependent when
/// the producer did not commit. The version check alone is not enough: a foreign write can leave a stream at
/// exactly the version a dependent expects, with a state the dependent never saw.
public final class Speculation: Sendable {
    public enum Status: Sendable, Equatable { case pending, committed, failed }
    private let state = Mutex(Status.pending)
    private let onResolve: @Sendable (Speculation, Bool) -> Void

    /// `onResolve` runs once, on the committer's thread, before the append's caller resumes: true when the
    /// append was written as requested.
    public init(onResolve: @escaping @Sendable (Speculation, Bool) -> Void = { _, _ in }) { self.onResolve = onResolve }

    public var status: Status { state.withLock { $0 } }

    func resolve(committed: Bool) {
        let first = state.withLock { s -> Bool in
            guard s == .pending else { return false }
            s = committed ? .committed : .failed
            return true
        }
        if first { onResolve(self, committed) }
    }
}

/// The outcome of a queued append, awaited apart from its enqueueing (so a caller can release its own locks
/// between the two).
public final class AppendTicket: Sendable {
    private enum State { case waiting, waiter(CheckedContinuation<AppendResult, Error>), done(Result<AppendResult, Error>) }
    private let state = Mutex(State.waiting)

    init() {}

    func complete(_ result: Result<AppendResult, Error>) {
        let waiter = state.withLock { s -> CheckedContinuation<AppendResult, Error>? in
            switch s {
            case .waiting: s = .done(result); return nil
            case .waiter(let c): s = .done(result); return c
            case .done: return nil
            }
        }
        waiter?.resume(with: result)
    }

    public func value() async throws -> AppendResult {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<AppendResult, Error>) in
            let ready = state.withLock { s -> Result<AppendResult, Error>? in
                if case .done(let r) = s { return r }
                s = .waiter(c)
                return nil
            }
            if let ready { c.resume(with: ready) }
        }
    }
}

import Synchronization

/// Async mutual exclusion per key (a stream name), so commands on one stream in one process run one
/// after another instead of racing to the store and retrying. Across processes, the store's expected
/// version check still decides, and `CommandRunner` retries.
final class KeyedLock: Sendable {
    private let state = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func withLocks<T: Sendable>(_ keys: [String], _ body: () async throws -> T) async rethrows -> T {
        let ordered = Array(Set(keys)).sorted()  // one global order: no deadlock between two commands
        for key in ordered { await acquire(key) }
        defer { for key in ordered.reversed() { release(key) } }
        return try await body()
    }

    private func acquire(_ key: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let free = state.withLock { s -> Bool in
                if s[key] == nil { s[key] = []; return true }
                s[key]!.append(continuation)
                return false
            }
            if free { continuation.resume() }
        }
    }

    private func release(_ key: String) {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard var waiters = s[key] else { return nil }
            if waiters.isEmpty { s[key] = nil; return nil }
            let first = waiters.removeFirst()
            s[key] = waiters
            return first  // ownership passes straight to the next waiter
        }
        next?.resume()
    }
}

import Events
import Foundation
import Synchronization

/// Folded states by stream at a committed version, so a command reads only the events after it, or
/// nothing at all: a decision trusts a cached state, because the append's expected-version check refuses
/// it when another process wrote in between (and the runner then decides again from a fresh read).
final class StateCache: Sendable {
    private struct Entry: @unchecked Sendable { let version: Int64; let state: any AggregateState }
    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int = 20_000) { self.capacity = capacity }

    func get<S: AggregateState>(_ stream: String, as: S.Type) -> (S, Int64)? {
        guard let e = entries.withLock({ $0[stream] }), let s = e.state as? S else { return nil }
        return (s, e.version)
    }

    /// The cached version of `stream`, whatever its state's type.
    func version(of stream: String) -> Int64? { entries.withLock { $0[stream]?.version } }

    func put(_ stream: String, _ state: any AggregateState, version: Int64) {
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }  // crude but bounded
            if let old = e[stream], old.version > version { return }
            e[stream] = Entry(version: version, state: state)
        }
    }

    /// Folds events written at versions `from + 1...` into the cached state at version `from`. False (and the
    /// entry dropped) when the cache does not hold the stream at exactly that version.
    func fold(_ stream: String, from: Int64, _ events: [(DomainEvent, RecordedEvent)]) -> Bool {
        entries.withLock { e in
            guard let entry = e[stream], entry.version == from else { e[stream] = nil; return false }
            var state = entry.state
            for (payload, event) in events { state.apply(payload, event) }
            e[stream] = Entry(version: from + Int64(events.count), state: state)
            return true
        }
    }
}

import Events
import Foundation
import Synchronization

/// Folded states by stream, so a command reads only the events after them, or nothing at all. Each stream has a
/// committed state, and above it the states that queued, not yet committed appends will leave (speculations, in
/// queue order): a decision builds on the newest, so commands on one stream are decided one after another in
/// memory and travel in one batch. A decision trusts what it is given: the append's expected-version check
/// refuses a state another process overtook, and the group committer refuses one built on a speculation that
/// was not written (see `Speculation`); the runner then decides again.
final class StateCache: Sendable {
    private struct Layer: @unchecked Sendable {
        let version: Int64
        let state: any AggregateState
        let speculation: Speculation?
    }
    private struct Entry {
        var committed: Layer?
        var pending: [Layer] = []
        var top: Layer? { pending.last ?? committed }
    }
    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int = 20_000) { self.capacity = capacity }

    /// The committed state of `stream`.
    func get<S: AggregateState>(_ stream: String, as: S.Type) -> (S, Int64)? {
        guard let e = entries.withLock({ $0[stream]?.committed }), let s = e.state as? S else { return nil }
        return (s, e.version)
    }

    /// The state a decision builds on: the newest speculation's, or the committed state; with the speculation.
    func top<S: AggregateState>(_ stream: String, as: S.Type) -> (S, Int64, Speculation?)? {
        guard let e = entries.withLock({ $0[stream]?.top }), let s = e.state as? S else { return nil }
        return (s, e.version, e.speculation)
    }

    /// The committed version of `stream`, whatever its state's type.
    func version(of stream: String) -> Int64? { entries.withLock { $0[stream]?.committed?.version } }

    /// Records a committed state (read from the store, or written). Speculations at or below its version are
    /// dropped: they were written (and are this state) or will fail.
    func put(_ stream: String, _ state: any AggregateState, version: Int64) {
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }  // crude but bounded
            var entry = e[stream] ?? Entry()
            if let old = entry.committed, old.version > version { return }
            entry.committed = Layer(version: version, state: state, speculation: nil)
            entry.pending.removeAll { $0.version <= version }
            e[stream] = entry
        }
    }

    /// Adds the state a queued append will leave, on top of the state it was decided on (at `base`). Nothing is
    /// added when that is no longer the newest state; a resolved speculation is applied at once.
    func speculate(_ stream: String, _ state: any AggregateState, version: Int64, base: Int64, _ speculation: Speculation) {
        entries.withLock { e in
            switch speculation.status {
            case .failed: return
            case .committed:
                Self.commit(&e, stream, Layer(version: version, state: state, speculation: nil))
            case .pending:
                guard var entry = e[stream], entry.top?.version == base else { return }
                entry.pending.append(Layer(version: version, state: state, speculation: speculation))
                e[stream] = entry
            }
        }
    }

    /// A speculation's outcome: written, its state becomes the committed one; not written, it and every state
    /// built on it are dropped.
    func resolve(_ stream: String, _ state: any AggregateState, version: Int64, _ speculation: Speculation, committed: Bool) {
        entries.withLock { e in
            if committed {
                Self.commit(&e, stream, Layer(version: version, state: state, speculation: nil))
            } else if var entry = e[stream], let i = entry.pending.firstIndex(where: { $0.speculation === speculation }) {
                entry.pending.removeSubrange(i...)
                e[stream] = entry
            }
        }
    }

    private static func commit(_ e: inout [String: Entry], _ stream: String, _ layer: Layer) {
        var entry = e[stream] ?? Entry()
        if (entry.committed?.version ?? -1) < layer.version { entry.committed = layer }
        entry.pending.removeAll { $0.version <= layer.version }
        e[stream] = entry
    }

    /// Folds events written at versions `from + 1...` into the committed state at version `from` (a bulk import's
    /// staged events). False (and the entry dropped) when the cache does not hold the stream at exactly that version.
    func fold(_ stream: String, from: Int64, _ events: [(DomainEvent, RecordedEvent)]) -> Bool {
        entries.withLock { e in
            guard let layer = e[stream]?.committed, layer.version == from else { e[stream] = nil; return false }
            var state = layer.state
            for (payload, event) in events { state.apply(payload, event) }
            e[stream] = Entry(committed: Layer(version: from + Int64(events.count), state: state, speculation: nil))
            return true
        }
    }
}

import Events
import Foundation
import Synchronization

/// Events decided but not yet written, for bulk imports: the runner stages each command's appends here
/// instead of appending them, and the importer writes many commands at once with
/// `EventStore.appendStaged`. While staging, the runner's cache is the truth about every stream it touched.
final class StagingBuffer: Sendable {
    private struct Contents {
        var appends: [StreamAppend] = []
        var events = 0
        /// First event id of each command already stored or staged, with its request digest.
        var known: [UUID: String] = [:]
        /// Streams seen not to exist when the chunk was checked: loading them needs no read.
        var absent = Set<String>()
        /// Events of the batch being staged and of the one before it (which may still be being written): what a
        /// later command of the import can name by id (a reversal names its movement) before the store has it.
        var recent: [UUID: (stream: String, event: EventData)] = [:]
        var previous: [UUID: (stream: String, event: EventData)] = [:]
    }
    private let contents = Mutex(Contents())

    func markAbsent(_ streams: some Sequence<String>) { contents.withLock { $0.absent.formUnion(streams) } }

    func isAbsent(_ stream: String) -> Bool { contents.withLock { $0.absent.contains(stream) } }

    func known(_ id: UUID) -> String? { contents.withLock { $0.known[id] } }

    func remember(_ stored: [UUID: String]) { contents.withLock { $0.known.merge(stored) { a, _ in a } } }

    func stage(_ appends: [StreamAppend], firstID: UUID?, requestHash: String?) {
        contents.withLock { c in
            c.appends += appends
            c.events += appends.reduce(0) { $0 + $1.events.count }
            if let firstID { c.known[firstID] = requestHash ?? "" }
            for a in appends { for e in a.events { c.recent[e.id] = (a.stream, e) } }
        }
    }

    /// A staged event not yet known to be stored, by id.
    func staged(_ id: UUID) -> (stream: String, event: EventData)? { contents.withLock { $0.recent[id] ?? $0.previous[id] } }

    /// Events staged since the last `take`.
    var stagedEvents: Int { contents.withLock { $0.events } }

    /// The staged appends, in order; the buffer starts a new batch.
    @discardableResult
    func take() -> [StreamAppend] {
        contents.withLock { c in
            // The batch before the one taken now has been written: the importer writes one batch at a time.
            defer { c.appends = []; c.events = 0; c.previous = c.recent; c.recent = [:] }
            return c.appends
        }
    }
}

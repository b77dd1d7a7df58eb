import Foundation
import Synchronization

/// Rebuilds: fold the log into shadow tables while the live ones serve reads, then swap them in one short transaction.
extension ProjectionRunner {
    /// Folds every event up to the head into a fresh state, writes it into shadow tables with COPY while the
    /// live tables keep serving reads, catches up with what arrived meanwhile, and swaps the tables and the
    /// checkpoint in one short transaction. Only the projection's leader (or a process holding its lock)
    /// may call this. Returns the new state and checkpoint.
    ///
    /// Rows the state appends (`AppendingProjectionState`: the stock card) go to the shadow table during the fold,
    /// `spillRows` or more at a time, on another connection: they are not all held in memory, and their COPY
    /// overlaps the fold instead of following it.
    public static func rebuild(_ def: any ProjectionDefinition, store: EventStore, batchSize: Int = 5000, spillRows: Int = 20_000,
                               progress: (@Sendable (Int64, Int64) -> Void)? = nil,
                               phases: (@Sendable (RebuildPhase, Double) -> Void)? = nil) async throws -> (any ProjectionState, Int64) {
        let box = SendableBox(def.makeState())
        let head = try await store.headPosition()
        var clock = PhaseClock { phase, seconds in phases?(phase, seconds) }
        // 1. Fold history in memory, batch by batch (no long transaction), into fresh shadow tables.
        try await createShadowTables(def, store: store)
        let copier = AppendedRowsCopier(store: store, spillRows: spillRows)
        let position = try await copier.during {
            try await fold(box, store: store, from: 0, to: head, filter: def.readFilter, batchSize: batchSize,
                           progress: progress, afterBatch: { try await copier.offer(box.value) })
        }
        clock.lap(.fold)
        let final = try await finish(def, box, from: position, store: store, batchSize: batchSize, clock: &clock)
        return (box.value, final)
    }

    /// Rebuilds several projections from one read of the log, as `rebuild` does each: every batch is read and
    /// decoded once (`decode`, during the prefetch of the next batch), then folded into every state at once, one task
    /// per projection. Each then fills, indexes and swaps its own tables, concurrently. A log that several
    /// projections read most of (stock movements: stock and alerts) is decoded once rather than once per projection.
    /// States that do not decode to `Decoded` apply the raw events. The caller must hold every projection's lock.
    /// Returns each projection's checkpoint, in `defs`' order.
    public static func rebuild<Decoded: Sendable>(_ defs: [any ProjectionDefinition], store: EventStore,
                                                  decode: @escaping @Sendable (RecordedEvent) throws -> Decoded, batchSize: Int = 5000,
                                                  spillRows: Int = 20_000,
                                                  progress: (@Sendable (Int64, Int64) -> Void)? = nil,
                                                  phases: (@Sendable (String, RebuildPhase, Double) -> Void)? = nil) async throws -> [Int64] {
        let folds = defs.map { JointFold<Decoded>($0) }
        let head = try await store.headPosition()
        let start = DispatchTime.now().uptimeNanoseconds
        for def in defs { try await createShadowTables(def, store: store) }
        let copier = AppendedRowsCopier(store: store, spillRows: spillRows)
        if head > 0 {
            let types: [String]? = defs.contains { $0.eventTypes == nil } ? nil : Array(Set(defs.flatMap { $0.eventTypes ?? [] })).sorted()
            let keys: [String]? = defs.contains { $0.metadataKeys == nil } ? nil : Array(Set(defs.flatMap { $0.metadataKeys ?? [] })).sorted()
            try await copier.during {
                try await store.forEachBatch(after: 0, filter: EventFilter(types: types, metadataKeys: keys), until: .position(head), batchSize: batchSize,
                                             prepare: decode) { batch in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for fold in folds { group.addTask { try fold.apply(batch) } }
                        try await group.waitForAll()
                    }
                    for fold in folds { try await copier.offer(fold.box.value) }
                    if let last = batch.last?.0.position { progress?(last, head) }
                }
            }
        }
        let folded = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return try await withThrowingTaskGroup(of: (Int, Int64).self) { group in
            for (i, fold) in folds.enumerated() {
                group.addTask {
                    var clock = PhaseClock { phase, seconds in phases?(fold.def.name, phase, seconds) }
                    phases?(fold.def.name, .fold, folded)
                    return (i, try await finish(fold.def, fold.box, from: head, store: store, batchSize: batchSize, clock: &clock))
                }
            }
            var checkpoints = [Int64](repeating: 0, count: defs.count)
            for try await (i, checkpoint) in group { checkpoints[i] = checkpoint }
            return checkpoints
        }
    }

    /// Steps 2 to 4 of a rebuild, once its state holds the log up to `position`: fill and index the shadow tables,
    /// catch up, swap. Returns the checkpoint.
    static func finish(_ def: any ProjectionDefinition, _ box: SendableBox<any ProjectionState>, from position: Int64, store: EventStore,
                       batchSize: Int, clock: inout PhaseClock) async throws -> Int64 {
        // 2. Fill the shadow tables (created before the fold, which may have spilled appended rows into them
        // already), and commit them: nothing reads a shadow table, and the next rebuild drops whatever a crash left.
        try await store.pool.withConnection { c in
            try c.transaction { c in try box.value.copyAll(c, suffix: shadow) }
        }
        clock.lap(.copy)
        // Secondary indexes after the rows: one sorted build each, not an index entry per copied row; on two
        // connections, as the fold's second core is free by now. Then statistics: fresh tables have none, and the
        // first reads after the swap would be planned blind (ANALYZE waits for a table's index builds).
        let work = StatementQueue(def.createTables(suffix: shadow).filter(isIndex) + def.tables.map { "ANALYZE \($0)\(shadow)" })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await store.pool.withConnection { c in
                        while let statement = work.take() { try c.execute(unsafe: statement) }
                    }
                }
            }
            try await group.waitForAll()
        }
        clock.lap(.index)
        // 3. Catch up with what was appended meanwhile (kept in memory, flushed in the swap).
        let head = try await store.headPosition()
        let final = try await fold(box, store: store, from: position, to: head, filter: def.readFilter, batchSize: batchSize,
                                   progress: nil)
        // 4. Swap: readers wait for this transaction's locks and then see the new tables, never an empty one.
        let name = def.name
        let version = def.version
        let tables = def.tables
        try await store.pool.withConnection { c in
            try c.transaction { c in
                for table in tables {
                    try c.execute(unsafe: "DROP TABLE IF EXISTS \(table)")
                    try c.execute(unsafe: "ALTER TABLE \(table)\(shadow) RENAME TO \(table)")
                    // Index names (from the catalog, not input) lose their shadow suffix too.
                    let indexes = try c.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = \(table)")
                    for row in indexes.rows {
                        let index: String = try row.decode(0)
                        if index.contains(shadow) {
                            let renamed = index.replacingOccurrences(of: shadow, with: "")
                            try c.execute(unsafe: "ALTER INDEX \(try c.quoteIdentifier(index)) RENAME TO \(try c.quoteIdentifier(renamed))")
                        }
                    }
                }
                try box.value.flush(c, suffix: "")
                try c.query("""
                    INSERT INTO projection_checkpoints (name, version, position, status, rebuilt_at, updated_at)
                    VALUES (\(name), \(version), \(final), 'running', now(), now())
                    ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position, status = 'running',
                        error = NULL, error_position = NULL, rebuilt_at = now(), updated_at = now()
                    """)
            }
        }
        clock.lap(.swap)
        return final
    }

    /// The suffix of a rebuild's tables until the swap.
    static let shadow = "__shadow"

    static func isIndex(_ statement: String) -> Bool { statement.hasPrefix("CREATE INDEX") || statement.hasPrefix("CREATE UNIQUE INDEX") }

    /// Drops what an earlier rebuild may have left, and creates the shadow tables without their secondary indexes
    /// (built after the rows are in), committed.
    static func createShadowTables(_ def: any ProjectionDefinition, store: EventStore) async throws {
        try await store.pool.withConnection { c in
            try c.transaction { c in
                for table in def.tables { try c.execute(unsafe: "DROP TABLE IF EXISTS \(table)\(shadow)") }
                for statement in def.createTables(suffix: shadow) where !isIndex(statement) { try c.execute(unsafe: statement) }
            }
        }
    }

    /// A joint rebuild stopped: this projection's fold refused the event at `position`.
    public struct RebuildFailure: Error, CustomStringConvertible {
        public let projection: String
        public let position: Int64
        public let message: String
        public var description: String { "projection \(projection) cannot apply the event at position \(position): \(message)" }
    }

    /// The steps of a rebuild, for `phases`.
    public enum RebuildPhase: String, Sendable, CaseIterable {
        /// Create the shadow tables, read and fold the log up to the head seen at the start (spilling appended rows).
        case fold
        /// COPY the rows in (those the fold did not spill already).
        case copy
        /// Build the secondary indexes and ANALYZE.
        case index
        /// Fold what arrived meanwhile, swap the tables and move the checkpoint.
        case swap
    }

    /// Folds the events after `from` up to `to` into the state; `afterBatch` runs between two batches.
    static func fold(_ box: SendableBox<any ProjectionState>, store: EventStore, from: Int64, to: Int64, filter: EventFilter,
                     batchSize: Int, progress: (@Sendable (Int64, Int64) -> Void)?,
                     afterBatch: (() async throws -> Void)? = nil) async throws -> Int64 {
        guard from < to else { return to }
        if let decoding = box.value as? any DecodingProjectionState {
            return try await foldDecoding(decoding, store: store, from: from, to: to, filter: filter, batchSize: batchSize, progress: progress,
                                          afterBatch: afterBatch)
        }
        try await store.forEachBatch(after: from, filter: filter, until: .position(to), batchSize: batchSize, prepare: { _ in () }) { batch in
            for (event, _) in batch {
                do { try box.value.apply(event) } catch {
                    throw HandlerFailure(position: event.position, message: String(describing: error))
                }
            }
            try await afterBatch?()
            if let last = batch.last?.0.position { progress?(last, to) }
        }
        return to
    }

    /// `fold` for a state that decodes apart: the prefetch decodes each batch while the fold applies the one before.
    static func foldDecoding<S: DecodingProjectionState>(_ state: S, store: EventStore, from: Int64, to: Int64, filter: EventFilter,
                                                         batchSize: Int, progress: (@Sendable (Int64, Int64) -> Void)?,
                                                         afterBatch: (() async throws -> Void)?) async throws -> Int64 {
        try await store.forEachBatch(after: from, filter: filter, until: .position(to), batchSize: batchSize, prepare: S.decode) { batch in
            for (event, decoded) in batch {
                do { try state.apply(decoded.get(), event) } catch {
                    throw HandlerFailure(position: event.position, message: String(describing: error))
                }
            }
            try await afterBatch?()
            if let last = batch.last?.0.position { progress?(last, to) }
        }
        return to
    }
}

/// COPYs the rows a rebuild's fold hands over (`AppendingProjectionState.takeAppended`) into its shadow tables while
/// the fold goes on: one job after another, each on a pooled connection. At most `maxPending` jobs wait, so a fold
/// faster than the COPY waits for it rather than piling rows up in memory.
final class AppendedRowsCopier: @unchecked Sendable {
    // Touched by one task at a time: the fold's, between two batches.
    private let store: EventStore
    private let spillRows: Int
    private var pending: [Task<Void, any Error>] = []
    static let maxPending = 2

    init(store: EventStore, spillRows: Int) { (self.store, self.spillRows) = (store, max(1, spillRows)) }

    /// Takes the state's appended rows once `spillRows` have piled up, and queues their COPY.
    func offer(_ state: any ProjectionState) async throws {
        guard let appending = state as? any AppendingProjectionState, appending.appendedCount >= spillRows else { return }
        while pending.count >= Self.maxPending { try await pending.removeFirst().value }
        let job = appending.takeAppended(suffix: ProjectionRunner.shadow)
        let (previous, store) = (pending.last, store)
        pending.append(Task {
            try await previous?.value  // in order, one connection at a time
            try await store.pool.withConnection { c in try job(c) }
        })
    }

    /// Runs `body` (the fold), then waits for every queued COPY; the first failure is thrown, after every job has ended.
    func during<T>(_ body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            while !pending.isEmpty { try await pending.removeFirst().value }
            return result
        } catch {
            while !pending.isEmpty { _ = try? await pending.removeFirst().value }
            throw error
        }
    }
}

/// Statements handed out one at a time to whichever connection is free.
private final class StatementQueue: Sendable {
    private let statements: [String]
    private let next = Mutex(0)
    init(_ statements: [String]) { self.statements = statements }
    func take() -> String? {
        let i = next.withLock { n in defer { n += 1 }; return n }
        return i < statements.count ? statements[i] : nil
    }
}

/// A rebuild's stopwatch: each `lap` reports the seconds since the one before.
struct PhaseClock {
    let report: (ProjectionRunner.RebuildPhase, Double) -> Void
    private var last = DispatchTime.now().uptimeNanoseconds
    init(_ report: @escaping (ProjectionRunner.RebuildPhase, Double) -> Void) { self.report = report }
    mutating func lap(_ phase: ProjectionRunner.RebuildPhase) {
        let now = DispatchTime.now().uptimeNanoseconds
        report(phase, Double(now - last) / 1e9)
        last = now
    }
}

/// One projection's part of a joint rebuild: its state, the event types it reads, and how it applies a decoded event.
private final class JointFold<Decoded: Sendable>: @unchecked Sendable {
    // Touched by one task at a time: the batch's fold task, then the finishing one.
    let def: any ProjectionDefinition
    let box: SendableBox<any ProjectionState>
    private let types: Set<String>?
    private let applyDecoded: (Decoded, RecordedEvent) throws -> Void

    init(_ def: any ProjectionDefinition) {
        self.def = def
        let state = def.makeState()
        box = SendableBox(state)
        types = def.eventTypes.map(Set.init)
        if let decoding = state as? any DecodingProjectionState<Decoded> {
            applyDecoded = { decoded, event in try decoding.apply(decoded, event) }
        } else {
            applyDecoded = { _, event in try state.apply(event) }
        }
    }

    func apply(_ batch: [(RecordedEvent, Result<Decoded, any Error>)]) throws {
        // By index through the buffer: the events are borrowed, not copied (a copy retains each of their strings).
        try batch.withUnsafeBufferPointer { events in
            for i in events.indices where types?.contains(events[i].0.type) ?? true {
                do { try applyDecoded(events[i].1.get(), events[i].0) } catch {
                    throw ProjectionRunner.RebuildFailure(projection: def.name, position: events[i].0.position, message: String(describing: error))
                }
            }
        }
    }
}

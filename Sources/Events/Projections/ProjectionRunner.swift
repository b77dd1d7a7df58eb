import Dispatch
import Foundation
import Synchronization

/// Runs projections: catch-up from each checkpoint, then live, woken by the store's notifications.
///
/// - Each projection's read-model writes and its checkpoint commit in one transaction, and the
///   checkpoint moves by compare-and-set, so a crash or a lost leadership never applies an event twice
///   or skips one: the next leader reloads the state from the tables at the stored checkpoint.
/// - Several processes may run a runner against one database: per projection, the one holding a session
///   advisory lock leads; when it dies its connection closes, the lock is released, and another process
///   takes over within `leaderPoll` seconds.
/// - A projection whose stored version differs from its definition is rebuilt automatically; a rebuild
///   builds shadow tables while the old ones serve reads, then swaps them in one short transaction.
/// - A failing event stops only its projection, at that event, with the error recorded; it is retried
///   every `retryInterval` seconds (after a fix is deployed, the restart retries at once).
/// - Under a stream of writes a projection reads (and commits) at most once every `pace` seconds: after a read that
///   caught up with the head, it lets the next events gather that long before it reads again. An event after a
///   quiet spell is applied at once, as before.
public final class ProjectionRunner: Sendable {
    public let store: EventStore
    public let definitions: [any ProjectionDefinition]
    let logger: Logger
    let batchSize: Int
    let leaderPoll: Double
    let retryInterval: Double
    /// Least time between a projection's reads of the log (so its commits) while events keep coming (see the type's notes).
    let pace: Double
    private let workers: [Worker]
    private let tasks = Mutex<[Task<Void, Never>]>([])

    public init(store: EventStore, definitions: [any ProjectionDefinition], logger: Logger = .silent,
                batchSize: Int = 5000, leaderPoll: Double = 1.0, retryInterval: Double = 30,
                pace: Double = ProjectionRunner.paceFromEnvironment()) {
        self.store = store
        self.pace = max(0, pace)
        self.definitions = definitions
        self.logger = logger
        self.batchSize = batchSize
        self.leaderPoll = leaderPoll
        self.retryInterval = retryInterval
        self.workers = definitions.map { Worker(definition: $0) }
    }

    /// `COORD_PROJECTION_PACE_MS`: milliseconds from 0 (read again at once, as before) to 1,000; 10 when unset or
    /// not a number.
    public static func paceFromEnvironment() -> Double {
        guard let text = ProcessInfo.processInfo.environment["COORD_PROJECTION_PACE_MS"], let value = Int(text) else { return 0.010 }
        return Double(min(1000, max(0, value))) / 1000
    }

    /// Starts one task per projection.
    public func start() {
        let started = workers.map { worker in
            Task.detached { [self] in await self.loop(worker) }
        }
        tasks.withLock { $0 = started }
    }

    /// Stops every projection at a clean checkpoint (after its current batch) and gives up leadership.
    public func stop() async {
        for w in workers { w.stopped.withLock { $0 = true } }
        let running = tasks.withLock { $0 }
        for t in running { await t.value }
    }

    /// Asks the leader of `name` (this process or another) to rebuild it.
    public func requestRebuild(_ name: String) async throws {
        try await Self.requestRebuild(name, pool: store.pool)
    }

    /// Marks `name` for a rebuild by its leader (this process's runner, another coordd's, or the next to start):
    /// the one way to ask for one, from the API and from coordctl.
    public static func requestRebuild(_ name: String, pool: PostgresPool) async throws {
        try await pool.withConnection { c in
            try c.query("""
                INSERT INTO projection_checkpoints (name, version, position, status) VALUES (\(name), 0, 0, 'rebuild_requested')
                ON CONFLICT (name) DO UPDATE SET status = 'rebuild_requested', updated_at = now()
                """)
        }
    }

    /// The session advisory lock that makes one process the leader of a projection, on `connection`: the schema is
    /// part of the key (advisory locks are per database, so two coord schemas never contend). Held until the
    /// connection closes. The one definition of leadership, for the runner and for `coordctl projections rebuild`.
    public static func tryLead(_ name: String, on connection: PostgresConnection) throws -> Bool {
        let key = "coord.projection." + name
        return try connection.query("SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '.' || \(key), 0))").decode(0, 0)
    }

    /// Whether this process leads the projection `name` now.
    public func leads(_ name: String) -> Bool {
        workers.first { $0.definition.name == name }?.isLeader.withLock { $0 } ?? false
    }

    /// A mark of the read-model tables of each projection of `names`, when this process leads them all and none
    /// is changing them now; else nil. A mark moves (to odd) just before a transaction that changed the tables
    /// commits (a batch applied; a rebuild, for all its length) and again (to even) once the commit has returned or
    /// failed, and by two whenever leadership is taken or given up. So an answer computed from the tables under
    /// even marks read before it, and still the same, is what the tables hold; and once a change is visible to any
    /// reader, no earlier mark is current (coordd's cache of list answers: a reader never sees a state older than
    /// one seen).
    public func changeMarks(_ names: [String]) -> [UInt64]? {
        var marks: [UInt64] = []
        marks.reserveCapacity(names.count)
        for name in names {
            guard let w = workers.first(where: { $0.definition.name == name }) else { return nil }
            // Read before the leadership: a mark read while leading is one no other process's writes can follow
            // without moving it (leadership is given up, and the mark moved, before another can take it).
            let mark = w.changes.load(ordering: .sequentiallyConsistent)
            guard mark & 1 == 0, w.isLeader.withLock({ $0 }) else { return nil }
            marks.append(mark)
        }
        return marks
    }

    /// Status of every projection this runner knows, with lag, and whether this process leads it.
    public func status() async throws -> [ProjectionStatus] {
        var out = try await Self.status(pool: store.pool, definitions: definitions)
        for i in out.indices {
            out[i].leader = workers.first { $0.definition.name == out[i].name }?.isLeader.withLock { $0 } ?? false
        }
        return out
    }

    public static func status(pool: PostgresPool, definitions: [any ProjectionDefinition]) async throws -> [ProjectionStatus] {
        let names = definitions.map(\.name)
        let versions = Dictionary(uniqueKeysWithValues: definitions.map { ($0.name, $0.version) })
        return try await pool.withConnection(retryOnConnectionFailure: true) { c in
            let head: Int64 = try c.query("SELECT position FROM event_head").decode(0, 0)
            let r = try c.query("""
                SELECT p.name, p.version, p.position, p.status, p.error, p.error_position, p.updated_at, p.rebuilt_at,
                       coalesce(extract(epoch FROM clock_timestamp() - (SELECT e.recorded_at FROM events e WHERE e.position = p.position + 1)), 0)::float8
                FROM projection_checkpoints p WHERE p.name = ANY(\(names)::text[]) ORDER BY p.name
                """)
            var known: [String: ProjectionStatus] = [:]
            for row in r.rows {
                let name: String = try row.decode(0)
                let checkpoint: Int64 = try row.decode(2)
                known[name] = ProjectionStatus(
                    name: name, version: try row.decode(1), checkpoint: checkpoint, status: try row.decode(3),
                    error: try row.decodeOptional(4), errorPosition: try row.decodeOptional(5), updatedAt: try row.decodeOptional(6),
                    rebuiltAt: try row.decodeOptional(7), lagEvents: max(0, head - checkpoint), lagSeconds: max(0, try row.decode(8)))
            }
            return names.map { name in
                known[name] ?? ProjectionStatus(name: name, version: versions[name] ?? 0, checkpoint: 0, status: "not started", error: nil,
                                                errorPosition: nil, updatedAt: nil, rebuiltAt: nil, lagEvents: head,
                                                lagSeconds: 0)
            }
        }
    }

    /// Whether the database behind `pool` reflects the log up to `position`: it holds the log that far, and each
    /// projection of `coverage` has either applied that far or has none of its events between its checkpoint and
    /// `position` (a projection only scans past events it does not handle, and records that at most a second later).
    ///
    /// Evaluated in one statement on one connection, so on a streaming standby it describes what that standby has
    /// replayed: the read models and their checkpoints arrive in the same WAL as the transaction that moved them.
    public static func reflects(position: Int64, pool: PostgresPool, coverage: Coverage) async throws -> Bool {
        let (names, everything, typedNames, typedTypes) = (coverage.names, coverage.everything, coverage.typedNames, coverage.typedTypes)
        return try await pool.withConnection(retryOnConnectionFailure: true) { c in
            try c.query("""
                WITH c AS (
                    SELECT d.name, coalesce(p.position, 0) AS position
                    FROM unnest(\(names)::text[]) AS d(name) LEFT JOIN projection_checkpoints p ON p.name = d.name)
                SELECT (SELECT h.position FROM event_head h) >= \(position)
                   AND coalesce(bool_and(c.position >= \(position) OR NOT EXISTS (
                        SELECT 1 FROM events e
                        WHERE e.position > c.position AND e.position <= \(position)
                          AND (c.name = ANY(\(everything)::text[])
                               OR e.type IN (SELECT t.type FROM unnest(\(typedNames)::text[], \(typedTypes)::text[]) AS t(name, type)
                                             WHERE t.name = c.name)))), true)
                FROM c
                """).decode(0, 0)
        }
    }

    /// Which event types each projection handles, as the arrays `reflects` binds: computed once per process,
    /// not on every poll of a waiting read.
    public struct Coverage: Sendable {
        let names: [String]
        /// Projections that handle every event type.
        let everything: [String]
        /// (projection, event type) pairs, as two parallel arrays.
        let typedNames: [String]
        let typedTypes: [String]

        public init(_ definitions: [any ProjectionDefinition]) {
            names = definitions.map(\.name)
            everything = definitions.filter { $0.eventTypes == nil }.map(\.name)
            let typed = definitions.flatMap { d in (d.eventTypes ?? []).map { (d.name, $0) } }
            typedNames = typed.map(\.0)
            typedTypes = typed.map(\.1)
        }
    }

    // MARK: The loop

    final class Worker: @unchecked Sendable {
        // Mutable fields are touched only by the worker's own task; the Mutex ones by anyone.
        let definition: any ProjectionDefinition
        var leaderConnection: PostgresConnection?
        var state: (any ProjectionState)?
        var checkpoint: Int64 = 0
        /// Read up to here: past the checkpoint when the events since were none of this projection's.
        var scanned: Int64 = 0
        var lastCommit = Date.distantPast
        let stopped = Mutex(false)
        let isLeader = Mutex(false)
        /// Odd while the projection's tables are being changed; moves by two at every change of leadership.
        let changes = Atomic<UInt64>(0)

        /// Runs `body`, which may change the tables (a rebuild's swap), with the mark odd throughout.
        func changing<T>(_ body: () async throws -> T) async rethrows -> T {
            beginChange()
            defer { endChange() }
            return try await body()
        }

        /// The tables may change from now on: the mark turns odd. Only the worker's own task calls these.
        func beginChange() { changes.add(1, ordering: .sequentiallyConsistent) }

        /// The change is over (visible, or never to be): an odd mark turns even.
        func endChange() {
            if changes.load(ordering: .sequentiallyConsistent) & 1 == 1 { changes.add(1, ordering: .sequentiallyConsistent) }
        }
        var lastStatusCheck = Date.distantPast
        var lastLeaderProbe = Date.distantPast
        /// When this process last found its lock's session gone: it stands back for two polls before trying again.
        var lostLeadershipAt = Date.distantPast

        init(definition: any ProjectionDefinition) { self.definition = definition }
    }

    struct HandlerFailure: Error {
        let position: Int64
        let message: String
    }

    struct LostLeadership: Error {}

    private func loop(_ w: Worker) async {
        let log = logger.with(["projection": w.definition.name])
        var failures = 0
        while !w.stopped.withLock({ $0 }) {
            do {
                guard try await ensureLeader(w) else {
                    try? await Task.sleep(nanoseconds: UInt64(leaderPoll * 1e9))
                    continue
                }
                if w.state == nil {
                    try await prepare(w, log)
                }
                let generation = store.watcher.generation
                let scanned = w.scanned, started = Date()
                let applied = try await step(w)
                failures = 0
                if pace > 0, applied < batchSize, applied > 0 || w.scanned > scanned {
                    // Caught up with what had come (its own events, or only others'): the writes that keep coming
                    // gather for `pace` before the next read, so under load a projection costs one read (and at
                    // most one transaction) per `pace` rather than per commit of the log: each of five projections
                    // read, and most committed, after every group commit. A notification during the wait is not
                    // lost: `generation` was read before the step.
                    let wait = pace - Date().timeIntervalSince(started)
                    if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
                }
                if applied == 0 {
                    if Date().timeIntervalSince(w.lastStatusCheck) > 2 {
                        w.lastStatusCheck = Date()
                        if try await storedStatus(w) == "rebuild_requested" { try await rebuild(w, log); continue }
                    }
                    store.watcher.start()
                    await store.watcher.wait(since: generation, timeout: 0.5)
                }
            } catch let failure as HandlerFailure {
                log.error("projection stopped at a failing event", ["event.position": String(failure.position), "error": failure.message])
                await recordFailure(w, failure)
                w.state = nil
                await sleepUnlessStopped(w, seconds: retryInterval)
            } catch is LostLeadership {
                log.warning("another process advanced this projection: reloading")
                w.state = nil
            } catch {
                failures += 1
                if failures == 1 || failures % 30 == 0 { log.warning("projection paused: \(error)") }
                w.state = nil
                if let c = w.leaderConnection, !c.isUsable { dropLeadership(w) }
                await sleepUnlessStopped(w, seconds: min(5, 0.2 * Double(failures)))
            }
        }
        dropLeadership(w)
    }

    private func sleepUnlessStopped(_ w: Worker, seconds: Double) async {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, !w.stopped.withLock({ $0 }) {
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    private func dropLeadership(_ w: Worker) {
        w.leaderConnection?.close()
        w.leaderConnection = nil
        w.isLeader.withLock { $0 = false }
        w.changes.add(2, ordering: .sequentiallyConsistent)
        w.state = nil
    }

    /// Holds (or tries to take) the projection's session advisory lock on a dedicated connection.
    private func ensureLeader(_ w: Worker) async throws -> Bool {
        if let c = w.leaderConnection, c.isUsable, w.isLeader.withLock({ $0 }) {
            // The lock lives as long as its session. libpq learns that the session died (a PostgreSQL restart, a
            // terminated backend) only when the connection is used, and this one carries nothing else: ask it,
            // at most once a second, so a leader whose lock is gone stops leading instead of running beside the
            // new one.
            guard Date().timeIntervalSince(w.lastLeaderProbe) >= leaderPoll else { return true }
            w.lastLeaderProbe = Date()
            let box = SendableBox(c)
            if (try? await runBlocking { try box.value.query("SELECT 1") }) != nil { return true }
            logger.warning("lost the leadership of a projection: its session ended", ["projection": w.definition.name])
            w.lostLeadershipAt = Date()
        }
        dropLeadership(w)
        // The process whose session died stands back for two polls, so another coordd (polling every `leaderPoll`)
        // takes over rather than racing it for the lock at once; alone, it leads again two polls later.
        if Date().timeIntervalSince(w.lostLeadershipAt) < 2 * leaderPoll { return false }
        var settings = store.pool.configuration
        settings.applicationName = "coord-projection-\(w.definition.name)"
        let configuration = settings
        let name = w.definition.name
        let (connection, won) = try await runBlocking { () -> (PostgresConnection, Bool) in
            let c = try PostgresConnection(configuration: configuration)
            return (c, try Self.tryLead(name, on: c))
        }
        guard won else { connection.close(); return false }
        w.leaderConnection = connection
        w.changes.add(2, ordering: .sequentiallyConsistent)
        w.isLeader.withLock { $0 = true }
        logger.info("leading projection", ["projection": w.definition.name])
        return true
    }

    private func storedStatus(_ w: Worker) async throws -> String? {
        let name = w.definition.name
        return try await store.pool.withConnection { c in
            let r = try c.query("SELECT status FROM projection_checkpoints WHERE name = \(name)")
            return r.count == 0 ? nil : try r.decode(0, 0, as: String.self)
        }
    }

    /// Loads the state from the tables, or rebuilds when the stored version differs or tables are missing.
    private func prepare(_ w: Worker, _ log: Logger) async throws {
        let def = w.definition
        let name = def.name
        let version = def.version
        let tables = def.tables
        let stored = try await store.pool.withConnection { c -> (Int, Int64, String)? in
            try c.query("INSERT INTO projection_checkpoints (name, version, position, status) VALUES (\(name), 0, 0, 'new') ON CONFLICT DO NOTHING")
            let r = try c.query("SELECT version, position, status FROM projection_checkpoints WHERE name = \(name)")
            let missing: Int = try c.query("SELECT count(*) FROM unnest(\(tables)::text[]) t WHERE to_regclass(t) IS NULL").decode(0, 0)
            if missing > 0 { return nil }
            return (try r.decode(0, 0), try r.decode(0, 1), try r.decode(0, 2))
        }
        guard let stored, stored.0 == version, stored.2 != "rebuild_requested" else {
            log.notice("rebuilding projection", ["version": String(version), "reason": stored == nil ? "tables missing" : "version or request"])
            try await rebuild(w, log)
            return
        }
        let loaded = try await store.pool.withConnection { c in SendableBox(try def.loadState(c, suffix: "")) }
        w.state = loaded.value
        w.checkpoint = stored.1
        w.scanned = stored.1
        try await store.pool.withConnection { c in
            try c.query("UPDATE projection_checkpoints SET status = 'running', error = NULL, error_position = NULL WHERE name = \(name) AND status = 'failed'")
        }
    }

    /// Applies the next batch; returns how many events it applied.
    ///
    /// A batch with none of the projection's events moves only the in-memory scan position; the stored
    /// checkpoint follows at most a second or `idleCheckpointEvents` later. That saves a transaction per
    /// projection per write burst, and is safe: after a restart the skipped events are read again and are
    /// still none of this projection's.
    private func step(_ w: Worker) async throws -> Int {
        guard let state = w.state else { return 0 }
        let from = w.checkpoint
        let head = try await store.headPosition()
        if from > head {
            // Not a quiet "caught up": the log was restored from an older copy or cut under the read models, which
            // hold events it no longer has. Reported as a failure (and /readyz not ready) until it is rebuilt.
            throw HandlerFailure(position: from, message: "the checkpoint \(from) is past the log's head \(head): the log was restored or cut; "
                                 + "rebuild the projection (coordctl projections rebuild \(w.definition.name))")
        }
        let start = max(from, w.scanned)
        let events = head <= start ? []
            : try await store.read(after: start, limit: batchSize, filter: w.definition.readFilter, until: .position(head))
        var target = events.count < batchSize ? head : events.last!.position
        if events.isEmpty {
            w.scanned = max(w.scanned, head)
            if head > from, head - from >= Self.idleCheckpointEvents || Date().timeIntervalSince(w.lastCommit) > 1 {
                try await commit(w, state: state, from: from, to: head, changesTables: false)
            }
            return 0
        }
        var failure: HandlerFailure?
        for event in events {
            do {
                try state.apply(event)
            } catch {
                failure = HandlerFailure(position: event.position, message: String(describing: error))
                target = event.position - 1
                break
            }
        }
        if target > from {
            try await commit(w, state: state, from: from, to: target)
        }
        w.scanned = max(w.scanned, target)
        if let failure { throw failure }
        return events.count
    }

    /// Irrelevant events a projection may scan past before its stored checkpoint follows.
    static let idleCheckpointEvents: Int64 = 1000

    /// Flushes the state's changes and moves the checkpoint in one transaction, by compare-and-set.
    /// `changesTables`: false when the batch applied nothing (only the checkpoint moves; the change mark stays).
    private func commit(_ w: Worker, state: any ProjectionState, from: Int64, to: Int64, changesTables: Bool = true) async throws {
        let name = w.definition.name
        let box = SendableBox(state)
        // The mark is odd from just before COMMIT is sent until it has returned (or failed): only then can a reader
        // see the new rows, and until then the answers kept under the old mark are still what the tables hold.
        defer { if changesTables { w.endChange() } }
        let status = try await store.pool.withConnection { c -> String? in
            try c.transaction(beforeCommit: { if changesTables { w.beginChange() } }) { c in
                try box.value.flush(c, suffix: "")
                let r = try c.query("""
                    UPDATE projection_checkpoints SET position = \(to), updated_at = now()
                    WHERE name = \(name) AND position = \(from) RETURNING status
                    """)
                guard r.count == 1 else { throw LostLeadership() }
                return try r.decode(0, 0, as: String.self)
            }
        }
        w.checkpoint = to
        w.scanned = max(w.scanned, to)
        w.lastCommit = Date()
        if status == "rebuild_requested" { w.lastStatusCheck = .distantPast }
    }

    private func recordFailure(_ w: Worker, _ failure: HandlerFailure) async {
        let name = w.definition.name
        _ = try? await store.pool.withConnection { c in
            try c.query("""
                UPDATE projection_checkpoints SET status = 'failed', error = \(String(failure.message.prefix(2000))),
                       error_position = \(failure.position), updated_at = now() WHERE name = \(name)
                """)
        }
    }

    /// Rebuilds into shadow tables and swaps them in; then the worker continues live from the new checkpoint.
    private func rebuild(_ w: Worker, _ log: Logger) async throws {
        let started = Date()
        let (state, checkpoint) = try await w.changing {
            try await Self.rebuild(w.definition, store: store, batchSize: batchSize) { position, head in
                log.debug("rebuild progress", ["position": String(position), "head": String(head)])
            }
        }
        w.state = state
        w.checkpoint = checkpoint
        w.scanned = checkpoint
        log.notice("projection rebuilt", ["position": String(checkpoint), "seconds": String(format: "%.2f", Date().timeIntervalSince(started))])
    }
}

/// Moves a non-Sendable value to a dispatch thread that is the only one using it meanwhile.
public struct SendableBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

import Events
import Foundation

/// What an import did.
public struct ImportReport: Sendable {
    /// Lines whose command was written.
    public var imported = 0
    /// Lines whose command was already in the log (a re-run, or a repeated idempotency key).
    public var alreadyPresent = 0
    /// Lines refused, with their number (1-based) and the reason. Nothing of these lines was written.
    public var failures: [(line: Int, reason: String)] = []
    /// Events written in staged batches (lines retried alone are not counted here).
    public var events = 0
    /// Transactions that wrote staged batches.
    public var batches = 0
    /// Lines decided again one at a time because another writer changed a stream under a staged batch.
    public var linesRetriedAlone = 0
    /// Seconds spent waiting for PostgreSQL to finish writing a batch (the rest is parsing and deciding).
    public var secondsWaitingForWrites = 0.0
    /// True when the import stopped at a refused line (without `keepGoing`).
    public var stopped = false

    public init() {}
}

/// Imports NDJSON commands fast: each command is decided by the same handlers as the API, against states
/// kept in memory, and its events are staged; batches of up to `maxBatchEvents` events are written by
/// `EventStore.appendStaged` (one COPY and one transaction), while the next batch is being decided.
///
/// Every guarantee of the one-command path holds: a batch is written only if no stream changed since its
/// commands were decided (otherwise its lines are decided again one at a time, with fresh reads); every
/// line has an idempotency key (its own or one derived from its number and content), so a re-run writes
/// nothing; a refused line writes nothing.
public final class CommandImporter: Sendable {
    let store: EventStore
    let actor: String
    let maxBatchEvents: Int
    /// Lines parsed and checked against the log at a time.
    let chunkLines: Int

    public init(store: EventStore, actor: String, maxBatchEvents: Int = 10_000, chunkLines: Int = 5_000) {
        self.store = store
        self.actor = actor
        self.chunkLines = max(1, chunkLines)
        self.maxBatchEvents = max(1, min(maxBatchEvents, EventStore.maxEventsPerStagedAppend / 2))
    }

    /// One parsed line.
    struct Line: Sendable {
        let index: Int
        let name: String
        let key: String
        let command: any DomainCommand
        var number: Int { index + 1 }
    }

    /// The idempotency key of a line without its own: its number and a digest of its text.
    static func derivedKey(line text: String, number: Int) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a, 64 bits
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return "import:\(number):" + String(h, radix: 16)
    }

    /// Parses one line: `{"command": NAME, "idempotency_key"?: KEY, ...the command's fields}`.
    static func parse(_ text: String, index: Int) throws -> Line {
        guard let value = try? JSONValue.parse(Data(text.utf8)), value.keys != nil else {
            throw DomainError.invalid("line", "is not a JSON object")
        }
        guard case .string(let name)? = value["command"] else { throw DomainError.invalid("command", "is required") }
        let key: String
        switch value["idempotency_key"] {
        case nil: key = derivedKey(line: text, number: index + 1)
        case .string(let k)?: key = k
        default: throw DomainError.invalid("idempotency_key", "must be a string")
        }
        let command = try CommandCatalog.decode(name: name, value: value, ignoring: ["command", "idempotency_key"])
        return Line(index: index, name: name, key: key, command: command)
    }

    private enum Outcome { case pending, written(events: Int), present, failed(String) }

    /// The per-run state: which lines are settled, the batch being decided and the one being written.
    private final class Run: @unchecked Sendable {
        var outcomes: [Outcome]
        var staging = StagingBuffer()
        var service: CoordinationService
        /// For lines decided alone, on fresh reads.
        let direct: CoordinationService
        /// Lines decided into the staging buffer since its last `take`, with their events.
        var deciding: [(line: Line, events: Int)] = []
        /// The batches being written, oldest first: each one's transaction starts when the one before it has
        /// committed, and writes nothing (nil) when that one did not write.
        var inFlight: [(task: Task<(outcome: StagedAppendOutcome, end: ChainHead?)?, Error>, lines: [(line: Line, events: Int)])] = []
        /// The batch being rendered and chained, off this thread: the next batch chains from where it ends.
        var preparing: Task<PreparedStagedAppend, Error>?
        /// Where the chain ended when the run started, for the first batch.
        var head: ChainHead?
        /// The lowest refused line so far.
        var firstFailure: Int?
        /// Set when staging restarted: the chunk's remaining lines must be checked against the log again.
        var needsPrime = false
        /// How many times staging restarted (see `restartStaging`).
        var restarts = 0
        var batches = 0
        var retriedAlone = 0
        var waiting = 0.0
        init(count: Int, store: EventStore) {
            outcomes = Array(repeating: .pending, count: count)
            service = CoordinationService(store: store, staging: staging)
            direct = CoordinationService(store: store)
        }
        func fail(_ index: Int, _ reason: String) {
            outcomes[index] = .failed(reason)
            firstFailure = min(firstFailure ?? index, index)
        }
    }

    /// Imports `lines` (NDJSON, blank lines skipped). Without `keepGoing`, stops at the first refused line,
    /// after writing every line before it. `progress` is called with the number of lines handled so far.
    public func run(_ lines: [String], keepGoing: Bool, progress: (@Sendable (Int) -> Void)? = nil) async throws -> ImportReport {
        let run = Run(count: lines.count, store: store)
        run.head = try await store.chainHead()
        var report = ImportReport()
        // Each chunk is parsed and checked against the log in a task of its own while the one before it
        // is being decided.
        // A lookup that ran before staging restarted may call absent a stream written since: its chunk is
        // looked up again instead.
        var next: (task: Task<Chunk, Error>, restarts: Int)? = lines.isEmpty ? nil : (Task { try await self.load(lines, from: 0) }, 0)
        outer: while let loading = next {
            let chunk = try await loading.task.value
            next = chunk.end < lines.count ? (Task { try await self.load(lines, from: chunk.end) }, run.restarts) : nil
            for (i, reason) in chunk.failures {
                run.fail(i, reason)
                if !keepGoing { break }
            }
            if loading.restarts == run.restarts {
                run.staging.remember(chunk.stored)
                run.staging.markAbsent(chunk.absent)
            } else {
                run.needsPrime = true
            }
            let parsed = chunk.lines
            for (k, line) in parsed.enumerated() {
                if !keepGoing, let f = run.firstFailure, f < line.index { break outer }
                if run.needsPrime {
                    try await prime(run.staging, Array(parsed[k...]))
                    run.needsPrime = false
                }
                try await decide(line, run, fresh: false)
                if run.staging.stagedEvents >= maxBatchEvents {
                    try await flush(run)
                }
            }
            progress?(chunk.end)
            if !keepGoing, run.firstFailure != nil { break }
        }
        next?.task.cancel()
        try await flush(run)
        try await settle(run)

        for (i, outcome) in run.outcomes.enumerated() {
            switch outcome {
            case .pending: break
            case .written(let n): report.imported += 1; report.events += n
            case .present: report.alreadyPresent += 1
            case .failed(let reason): report.failures.append((i + 1, reason))
            }
        }
        report.stopped = !keepGoing && !report.failures.isEmpty
        report.batches = run.batches
        report.secondsWaitingForWrites = run.waiting
        report.linesRetriedAlone = run.retriedAlone
        return report
    }

    /// A chunk of lines, parsed, with what the log already holds of them (see `lookUp`).
    private struct Chunk: Sendable {
        var lines: [Line] = []
        var failures: [(Int, String)] = []
        var stored: [UUID: String] = [:]
        var absent: [String] = []
        var end = 0
    }

    /// Parses the chunk of lines starting at `start` and looks its commands up in the log. A line that does
    /// not parse is a failure; the lines after it are parsed all the same (the caller stops when it must).
    private func load(_ lines: [String], from start: Int) async throws -> Chunk {
        var chunk = Chunk()
        chunk.end = min(lines.count, start + chunkLines)
        for i in start..<chunk.end where !lines[i].allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) {
            do {
                chunk.lines.append(try Self.parse(lines[i], index: i))
            } catch let error as DomainError {
                chunk.failures.append((i, error.description))
            }
        }
        (chunk.stored, chunk.absent) = try await lookUp(chunk.lines)
        return chunk
    }

    /// Tells the staging buffer which of these lines' commands are already stored, and which of the streams
    /// they create do not exist yet.
    private func prime(_ staging: StagingBuffer, _ lines: [Line]) async throws {
        let (stored, absent) = try await lookUp(lines)
        staging.remember(stored)
        staging.markAbsent(absent)
    }

    /// Which of these lines' commands are already stored (their first event id, with its request digest), and
    /// which of the streams they create do not exist yet: one round trip.
    private func lookUp(_ lines: [Line]) async throws -> (stored: [UUID: String], absent: [String]) {
        guard !lines.isEmpty else { return ([:], []) }
        let ids = lines.map { firstID($0) }
        let created = Array(Set(lines.compactMap { $0.command.createdStream }))
        let (stored, existing) = try await store.pool.withConnection(retryOnConnectionFailure: true) { c in
            let r = try c.query("SELECT id, coalesce(metadata->>'request_hash', '') FROM events WHERE id = ANY(\(ids)::uuid[])")
            var found: [UUID: String] = [:]
            for i in 0..<r.count { found[try r.decode(i, 0, as: UUID.self)] = try r.decode(i, 1, as: String.self) }
            let s = try c.query("SELECT stream FROM streams WHERE stream = ANY(\(created)::text[])")
            return (found, Set(try (0..<s.count).map { try s.decode($0, 0, as: String.self) }))
        }
        return (stored, created.filter { !existing.contains($0) })
    }

    private func firstID(_ line: Line) -> UUID {
        CommandRunner.IdempotentIDs(actor: actor, command: line.name, key: line.key).first
    }

    private func context(_ line: Line) -> CommandContext {
        CommandContext(actor: actor, correlationID: "import-line-\(line.number)", source: "import", idempotencyKey: line.key)
    }

    /// Decides one line: staged (`fresh == false`) or appended on its own with fresh reads.
    private func decide(_ line: Line, _ run: Run, fresh: Bool) async throws {
        do {
            if fresh {
                let result = try await run.direct.execute(line.command, context(line))
                run.outcomes[line.index] = result.duplicate ? .present : .written(events: 0)
                return
            }
            let before = run.staging.stagedEvents
            let result: CommandResult
            do {
                result = try await run.service.execute(line.command, context(line))
            } catch let error as DomainError {
                if case .validation = error { throw error }
                // Refused on the states in memory, which another writer may have moved on: write what is staged,
                // then decide this line alone on fresh reads, and stage again from fresh states if it was written.
                try await flush(run)
                try await settle(run)
                try await decide(line, run, fresh: true)
                if case .written = run.outcomes[line.index] { restartStaging(run) }
                return
            }
            if result.duplicate {
                run.outcomes[line.index] = .present
            } else {
                run.deciding.append((line, run.staging.stagedEvents - before))
            }
        } catch let error as DomainError {
            run.fail(line.index, error.description)
        } catch EventStoreError.invalidInput(let field, let reason) {
            run.fail(line.index, "\(field): \(reason)")
        }
    }

    /// Batches written or waiting to be, besides the one being decided. With two, the next batch is decided
    /// while one is written and the other waits for its turn (rendered and chained by then), so neither
    /// PostgreSQL nor the decisions wait for the other at each batch's end, as they did with one.
    static let batchesInFlight = 2

    /// Queues the staged batch for writing once fewer than `batchesInFlight` are; it is written when the one
    /// before it has committed. The batch is rendered and its hash chain computed in a task of its own, from where
    /// the previous batch's chain ends, while the batches before it are written and the next one decided.
    private func flush(_ run: Run) async throws {
        let appends = run.staging.take()
        let decided = run.deciding
        run.deciding = []
        let previous = run.preparing
        let head = run.head
        let prepared: Task<PreparedStagedAppend, Error>? = appends.isEmpty ? nil : Task {
            let after = previous == nil ? head : try? await previous?.value.end
            return try EventStore.prepareStaged(appends, after: after)
        }
        while run.inFlight.count >= Self.batchesInFlight {
            guard try await settleOldest(run, staged: decided) else { return }
        }
        guard let prepared else { return }
        let store = self.store
        let before = run.inFlight.last?.task
        run.preparing = prepared
        run.inFlight.append((Task {
            // After the batch before it, and only if that one was written: this one was decided on its states.
            if let before { guard let written = try await before.value, case .appended = written.outcome else { return nil } }
            return try await store.appendStaged(try await prepared.value)
        }, decided))
    }

    /// Waits for every batch being written, oldest first; true when all were written (or none was in flight).
    @discardableResult
    private func settle(_ run: Run, staged: [(line: Line, events: Int)] = []) async throws -> Bool {
        while !run.inFlight.isEmpty {
            guard try await settleOldest(run, staged: staged) else { return false }
        }
        return true
    }

    /// Waits for the oldest batch being written; true when it was written. When another writer got there first,
    /// every line decided since (that batch's, the later batches' (which then write nothing), `staged` and the
    /// ones being staged) is decided again alone, on fresh reads, and staging restarts.
    private func settleOldest(_ run: Run, staged: [(line: Line, events: Int)]) async throws -> Bool {
        let (task, decided) = run.inFlight.removeFirst()
        let outcome: StagedAppendOutcome?
        let waitStart = DispatchTime.now().uptimeNanoseconds
        defer { run.waiting += Double(DispatchTime.now().uptimeNanoseconds - waitStart) / 1e9 }
        do {
            outcome = try await task.value?.outcome
        } catch {
            run.staging.take()
            throw error
        }
        if case .appended? = outcome {
            run.batches += 1
            for (line, events) in decided { run.outcomes[line.index] = .written(events: events) }
            return true
        }
        // The later batches see this one unwritten and write nothing; their lines are decided again too.
        var later: [(line: Line, events: Int)] = []
        for (task, lines) in run.inFlight {
            _ = try? await task.value
            later += lines
        }
        run.inFlight = []
        let redo = decided + later + staged + run.deciding
        run.staging.take()
        run.deciding = []
        run.retriedAlone += redo.count
        for (line, _) in redo.sorted(by: { $0.line.index < $1.line.index }) {
            try await decide(line, run, fresh: true)
        }
        restartStaging(run)
        return false
    }

    /// Drops every state in memory: the next staged decisions read the log afresh.
    private func restartStaging(_ run: Run) {
        run.staging = StagingBuffer()
        run.service = CoordinationService(store: store, staging: run.staging)
        run.needsPrime = true
        run.restarts += 1
    }
}

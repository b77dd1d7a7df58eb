import Dispatch
import Foundation
import Synchronization

/// Gathers concurrent appends of this process into one call of `coord_write_arrays` (or, when an event id appears
/// twice or is stored already, `coord_write`), one transaction that also records receipts.
///
/// Throughput comes from here: one round trip and one WAL flush serve every request that arrived while
/// the previous batch was committing. Each request keeps its own expected-version check inside the
/// batch, so a conflicting request fails alone. The committer holds one dedicated connection; a batch
/// whose connection broke is sent again on a new one, which is safe because event ids make every
/// request idempotent (an already committed request comes back as a duplicate with its positions).
final class GroupCommitter: @unchecked Sendable {
    // `connection` is only touched by the single drainer (guarded by `State.draining`).
    private var connection: PostgresConnection?
    private let configuration: PostgresConfiguration
    private let state = Mutex(State())
    /// Most events sent in one batch; bounds the transaction's size and the head lock's hold time.
    let maxBatchEvents: Int

    struct Pending {
        let eventCount: Int
        let request: [StreamAppend]
        let receipt: AppendReceipt?
        let ticket: AppendTicket
        /// Resolved with this append's outcome; later appends may be decided on it.
        let speculation: Speculation?
        /// The queued appends this one was decided on (see `Speculation`).
        let after: [Speculation]
    }

    /// Whether the schema has `coord_write_arrays` (events v7), asked once per connection: a store on a schema migrated
    /// only to v5 or v6 (a test of an older log) writes through `coord_write` alone.
    private var hasArrayWriter = false

    /// When the writer's cached plans were last dropped (see `run`).
    private var plansReset = DispatchTime.now().uptimeNanoseconds

    private struct State {
        var pending: [Pending] = []
        var draining = false
        var closed = false
        /// While the drainer gathers (see `gather`): the pending count it waits for.
        var gatherTarget: Int?
    }

    /// Signalled by `enqueue` when the pending count reaches `State.gatherTarget`.
    private let gathered = DispatchSemaphore(value: 0)
    /// How long the drainer waits, after a batch of several requests, for their callers' next requests.
    let gatherMicros: Int
    /// Batches to write without gathering, and how many to skip after the next wait that does not pay (drainer only).
    private var gatherSkips = 0
    private var gatherBackoff = 0

    /// Counters for metrics.
    private let counters = Mutex((batches: 0, events: 0))
    /// How many times the drainer waited for callers' next requests (see `gather`).
    private let gatherCount = Mutex(0)

    init(configuration: PostgresConfiguration, maxBatchEvents: Int = 1000, gatherMicros: Int = GroupCommitter.gatherFromEnvironment()) {
        var configuration = configuration
        configuration.applicationName += "-writer"
        self.configuration = configuration
        self.maxBatchEvents = maxBatchEvents
        self.gatherMicros = max(0, gatherMicros)
    }

    var stats: (batches: Int, events: Int) { counters.withLock { $0 } }
    var gathers: Int { gatherCount.withLock { $0 } }

    /// `COORD_GROUP_COMMIT_GATHER_US`: microseconds from 0 (no wait) to 10,000; 200 when unset or not a number.
    static func gatherFromEnvironment() -> Int {
        guard let text = ProcessInfo.processInfo.environment["COORD_GROUP_COMMIT_GATHER_US"], let value = Int(text) else { return 200 }
        return min(10_000, max(0, value))
    }

    func submit(_ request: [StreamAppend], receipt: AppendReceipt?, eventCount: Int, speculation: Speculation? = nil,
                after: [Speculation] = []) -> AppendTicket {
        let ticket = AppendTicket()
        enqueue([Pending(eventCount: eventCount, request: request, receipt: receipt, ticket: ticket,
                         speculation: speculation, after: after)])
        return ticket
    }

    private func enqueue(_ items: [Pending]) {
        let (start, rejected, signal) = state.withLock { s -> (Bool, [Pending], Bool) in
            if s.closed { return (false, items, false) }
            s.pending.append(contentsOf: items)
            if let target = s.gatherTarget, s.pending.count >= target {
                s.gatherTarget = nil
                return (false, [], true)
            }
            if s.draining { return (false, [], false) }
            s.draining = true
            return (true, [], false)
        }
        if signal { gathered.signal() }
        for item in rejected { Self.finish(item, .failure(EventStoreError.unavailable("store closed"))) }
        if start {
            BlockingThreads.shared.run { self.drain() }
        }
    }

    /// Resolves the item's speculation (written as requested, or not), then completes its ticket.
    private static func finish(_ item: Pending, _ outcome: Result<AppendResult, Error>) {
        item.speculation?.resolve(committed: writtenAsRequested(item, outcome))
        item.ticket.complete(outcome)
    }

    /// True when the outcome is this request's own write at the versions it expected: a fresh write, or a
    /// duplicate at exactly those versions (a batch sent again after its commit went unacknowledged), not a
    /// retry that met an older original.
    static func writtenAsRequested(_ item: Pending, _ outcome: Result<AppendResult, Error>) -> Bool {
        guard case .success(let result) = outcome else { return false }
        if !result.duplicate { return true }
        let versions = Dictionary(result.streams.map { ($0.stream, $0.version) }, uniquingKeysWith: { a, _ in a })
        return item.request.allSatisfy { a in
            guard !a.events.isEmpty else { return true }
            switch a.expected {
            case .exact(let v): return versions[a.stream] == v + Int64(a.events.count)
            case .noStream: return versions[a.stream] == Int64(a.events.count)
            default: return false
            }
        }
    }

    func close() {
        state.withLock { $0.closed = true }
    }

    /// Waits up to `gatherMicros` until `returning` more requests are pending than `before`: the callers of the batch
    /// just written, which a batch of several usually is, send their next requests within microseconds. Without
    /// the wait the next batch holds only what arrived while the last one was written, and concurrent writers
    /// settle into two groups taking turns, each batch half of them, each commit's WAL flush shared by half.
    ///
    /// Callers that take longer (clients across a network: their next request follows the answer's round trip)
    /// would only be delayed: when fewer than half of them came back within the wait, the next batches are written
    /// without one, 4, then 8... up to 64 of them, before the wait is tried again.
    private func gather(before: Int, returning: Int) {
        guard gatherMicros > 0, returning >= 2 else { return }
        if gatherSkips > 0 { gatherSkips -= 1; return }
        let target = min(before + returning, maxBatchEvents)
        let waiting = state.withLock { s -> Bool in
            guard s.pending.count < target, !s.closed else { return false }
            s.gatherTarget = target
            return true
        }
        guard waiting else { return }
        gatherCount.withLock { $0 += 1 }
        if gathered.wait(timeout: .now() + .microseconds(gatherMicros)) == .timedOut {
            // Reached meanwhile: `enqueue` cleared the target and signals (or has signalled); take that signal.
            let (signalled, arrived) = state.withLock { s -> (Bool, Int) in
                if s.gatherTarget == nil { return (true, 0) }
                s.gatherTarget = nil
                return (false, s.pending.count - before)
            }
            if signalled {
                gathered.wait()
            } else if arrived * 2 < returning {
                gatherBackoff = min(64, max(4, gatherBackoff * 2))
                gatherSkips = gatherBackoff
                return
            }
        }
        gatherBackoff = 0
    }

    /// Runs on a blocking thread until nothing is pending.
    private func drain() {
        var returning = 0
        var before = 0
        while true {
            gather(before: before, returning: returning)
            let batch: [Pending] = state.withLock { s in
                var taken = 0
                var count = 0
                while taken < s.pending.count, count == 0 || count + s.pending[taken].eventCount <= maxBatchEvents {
                    count += s.pending[taken].eventCount
                    taken += 1
                }
                let batch = Array(s.pending.prefix(taken))
                s.pending.removeFirst(taken)
                if batch.isEmpty { s.draining = false }
                return batch
            }
            if batch.isEmpty {
                if state.withLock({ $0.closed }) { connection?.close(); connection = nil }
                return
            }
            // An append decided on another queued append goes only with it or after it was written as requested.
            var live: [Pending] = []
            var ahead = Set<ObjectIdentifier>()
            for item in batch {
                if item.after.contains(where: { $0.status == .failed || ($0.status == .pending && !ahead.contains(ObjectIdentifier($0))) }) {
                    Self.finish(item, .failure(EventStoreError.speculationFailed))
                    continue
                }
                live.append(item)
                if let s = item.speculation { ahead.insert(ObjectIdentifier(s)) }
            }
            var retry: [Pending] = []
            let outcomes = run(live)
            before = state.withLock { $0.pending.count }
            returning = live.count
            for (item, outcome) in zip(live, outcomes) {
                if let outcome { Self.finish(item, outcome) } else { retry.append(item) }
            }
            if !retry.isEmpty {
                // Ids repeated within one batch: send them again, where they meet the stored originals.
                state.withLock { $0.pending.insert(contentsOf: retry, at: 0) }
            }
        }
    }

    typealias Outcome = Result<AppendResult, Error>

    /// Outcome per request; nil means "send again in a later batch". A batch that holds an append and one decided
    /// on it is sent in an explicit transaction, committed only when every dependent that wrote had its producers
    /// written as requested; otherwise it is rolled back and sent again without those dependents (and theirs).
    private func run(_ batch: [Pending]) -> [Outcome?] {
        guard !batch.isEmpty else { return [] }
        let producers = Self.producers(batch)
        var final = [Outcome?](repeating: nil, count: batch.count)
        var remaining = Array(batch.indices)
        while true {
            let sub = remaining.map { batch[$0] }
            let check: (([Outcome?]) -> [Int])? = producers.allSatisfy(\.isEmpty) ? nil : { outcomes in
                let local = Dictionary(uniqueKeysWithValues: remaining.enumerated().map { ($0.element, $0.offset) })
                return Self.violators(sub, producers: remaining.map { producers[$0].compactMap { local[$0] } }, outcomes)
            }
            do {
                let (outcomes, violators) = try send(sub, check: check)
                if violators.isEmpty {
                    for (k, i) in remaining.enumerated() { final[i] = outcomes[k] }
                    return final
                }
                // Those dependents, and every append decided on them, fail: their callers decide again.
                var removed = Set(violators.map { remaining[$0] })
                for i in remaining where producers[i].contains(where: removed.contains) { removed.insert(i) }
                for i in removed { final[i] = .failure(EventStoreError.speculationFailed) }
                remaining.removeAll(where: removed.contains)
                if remaining.isEmpty { return final }
            } catch let error as PostgresError where sub.count > 1 && error.kind == .server {
                // A value the server refused (it passed our checks): isolate it so neighbours still commit, one by
                // one in order, each dependent only after its producers were written as requested.
                var written = Set<Int>()
                for i in remaining {
                    if producers[i].contains(where: { !written.contains($0) }) {
                        final[i] = .failure(EventStoreError.speculationFailed)
                        continue
                    }
                    let outcome = run([batch[i]])[0]
                    final[i] = outcome
                    if let outcome, Self.writtenAsRequested(batch[i], outcome) { written.insert(i) }
                }
                return final
            } catch {
                for i in remaining { final[i] = .failure(error) }
                return final
            }
        }
    }

    /// For each request, the earlier requests of the batch whose speculation it was decided on.
    private static func producers(_ batch: [Pending]) -> [[Int]] {
        var index: [ObjectIdentifier: Int] = [:]
        var result: [[Int]] = []
        for (i, item) in batch.enumerated() {
            result.append(item.after.compactMap { index[ObjectIdentifier($0)] })
            if let s = item.speculation { index[ObjectIdentifier(s)] = i }
        }
        return result
    }

    /// The requests that wrote although a producer of theirs in the batch was not written as requested (directly
    /// or through another producer): the transaction must not commit them.
    static func violators(_ batch: [Pending], producers: [[Int]], _ outcomes: [Outcome?]) -> [Int] {
        var doomed = Set<Int>()
        var violators: [Int] = []
        for (j, item) in batch.enumerated() {
            let outcome = outcomes[j]
            if producers[j].contains(where: doomed.contains) {
                if case .success(let r)? = outcome, !r.duplicate { violators.append(j) }
                doomed.insert(j)
            } else if !(outcome.map { writtenAsRequested(item, $0) } ?? false) {
                doomed.insert(j)
            }
        }
        return violators
    }

    /// Sends `batch` as one call of `coord_write_arrays`, or of `coord_write` when an event id appears twice in it or
    /// is stored already (a batch sent again after its commit went unacknowledged). With `check`, in an explicit
    /// transaction that commits only when `check` finds no violators in the outcomes; otherwise it rolls back and
    /// returns them. Connection failures and transient errors are retried; a server's refusal is thrown.
    private func send(_ batch: [Pending], check: (([Outcome?]) -> [Int])?) throws -> ([Outcome?], [Int]) {
        lazy var arrays = Self.arraysStatement(batch)
        var json: String { "[" + batch.map { EventStore.json($0.request, receipt: $0.receipt) }.joined(separator: ",") + "]" }
        var attempt = 0
        while true {
            attempt += 1
            var open = false
            do {
                if connection == nil || !(connection!.isUsable) {
                    connection?.close()
                    connection = try PostgresConnection(configuration: configuration)
                    // coord_append's statements take arrays and jsonb whose contents do not change the best plan:
                    // planning them once (generic plans) instead of on every call saves ~0.4 ms per batch.
                    try connection!.execute(unsafe: "SET plan_cache_mode = force_generic_plan")
                    hasArrayWriter = try connection!.query("""
                        SELECT to_regprocedure('coord_write_arrays(int[], text[], bigint[], int[], uuid[], text[], jsonb[], jsonb[], timestamptz[], int[], uuid[], text[], text[])') IS NOT NULL
                        """).decode(0, 0)
                }
                // PL/pgSQL keeps its statements' plans for the session, and with generic plans a plan made
                // while `events` was small scans the whole table: it stays until a statistics change replaces
                // it. On a young, growing log that made each batch cost 5 ms and rising (the stored-id check).
                // Plans are dropped every second, so they fit the tables' current size.
                let now = DispatchTime.now().uptimeNanoseconds
                if now - plansReset > 1_000_000_000 {
                    try connection!.execute(unsafe: "DISCARD PLANS")
                    plansReset = now
                }
                if check != nil { try connection!.execute(unsafe: "BEGIN"); open = true }
                var lean: PostgresResult?
                if hasArrayWriter, let arrays {
                    lean = try connection!.query(arrays)
                    if lean!.count == 1, try lean!.decode(0, 2, as: String.self) == "resend" { lean = nil }
                }
                let result = try lean ?? connection!.query("""
                    SELECT req, stream, outcome, version, first_position, last_position
                    FROM coord_write(\(JSONText(json))::jsonb)
                    """)
                let outcomes = try Self.outcomes(result, batch)
                var violators: [Int] = []
                if let check {
                    violators = check(outcomes)
                    open = false
                    try connection!.execute(unsafe: violators.isEmpty ? "COMMIT" : "ROLLBACK")
                }
                if violators.isEmpty {
                    counters.withLock { $0.batches += 1; $0.events += batch.reduce(0) { $0 + $1.eventCount } }
                }
                return (outcomes, violators)
            } catch let error as PostgresError where (error.isConnectionFailure || error.isTransient) && attempt < 4 {
                if open, connection?.isUsable == true { _ = try? connection!.execute(unsafe: "ROLLBACK") }
                if error.isConnectionFailure { connection?.close(); connection = nil }
                Thread.sleep(forTimeInterval: 0.1 * Double(attempt * attempt))
            } catch {
                if open, connection?.isUsable == true { _ = try? connection!.execute(unsafe: "ROLLBACK") }
                throw error
            }
        }
    }

    /// `batch` as a call of `coord_write_arrays`, or nil when an event id appears twice in it (`coord_write` answers
    /// 'retry' for the later request).
    static func arraysStatement(_ batch: [Pending]) -> SQL? {
        var ids = Set<UUID>()
        let eventCount = batch.reduce(0) { $0 + $1.eventCount }
        var sRq = PostgresArrayLiteral(), sStream = PostgresArrayLiteral(), sExpected = PostgresArrayLiteral()
        var sNev = PostgresArrayLiteral()
        var eId = PostgresArrayLiteral(capacity: eventCount * 39), eType = PostgresArrayLiteral(capacity: eventCount * 24)
        var eData = PostgresArrayLiteral(capacity: eventCount * 160), eMeta = PostgresArrayLiteral(capacity: eventCount * 64)
        var eOcc = PostgresArrayLiteral(capacity: eventCount * 30)
        var rRq = PostgresArrayLiteral(), rId = PostgresArrayLiteral(), rHash = PostgresArrayLiteral()
        var rAnswer = PostgresArrayLiteral()
        for (index, item) in batch.enumerated() {
            for a in item.request {
                sRq.append(index + 1)
                sStream.append(a.stream)
                switch a.expected {
                case .any: sExpected.appendNull()
                case .noStream: sExpected.append(0)
                case .streamExists: sExpected.append(-1)
                case .exact(let v): sExpected.append(v)
                }
                sNev.append(a.events.count)
                for e in a.events {
                    guard ids.insert(e.id).inserted else { return nil }
                    eId.append(e.id.lowercasedString)
                    eType.append(e.type)
                    eData.append(e.data.text)
                    eMeta.append(e.metadataJSON)
                    eOcc.append(Timestamp.format(e.occurredAt))
                }
            }
            if let r = item.receipt {
                rRq.append(index + 1)
                rId.append(r.id.lowercasedString)
                rHash.append(r.requestHash)
                rAnswer.append(r.answer)
            }
        }
        return """
            SELECT req, stream, outcome, version, first_position, last_position
            FROM coord_write_arrays(\(sRq)::int[], \(sStream)::text[], \(sExpected)::bigint[], \(sNev)::int[],
                                    \(eId)::uuid[], \(eType)::text[], \(eData)::jsonb[], \(eMeta)::jsonb[], \(eOcc)::timestamptz[],
                                    \(rRq)::int[], \(rId)::uuid[], \(rHash)::text[], \(rAnswer)::text[])
            """
    }

    private static func outcomes(_ result: PostgresResult, _ batch: [Pending]) throws -> [Result<AppendResult, Error>?] {
        var rowsByRequest = [[Int]](repeating: [], count: batch.count)
        for row in 0..<result.count {
            let req: Int = try result.decode(row, 0)
            rowsByRequest[req - 1].append(row)
        }
        return try batch.enumerated().map { index, item -> Result<AppendResult, Error>? in
            let rows = rowsByRequest[index]
            let outcomes = try rows.map { try result.decode($0, 2, as: String.self) }
            if outcomes.contains("retry") { return nil }
            if outcomes.contains("mismatch") {
                return .failure(EventStoreError.idempotencyMismatch(eventID: item.request.first?.events.first?.id ?? UUID()))
            }
            if let row = rows.first(where: { (try? result.decode($0, 2, as: String.self)) == "conflict" }) {
                let stream: String = try result.decode(row, 1)
                let expected = item.request.first { $0.stream == stream }?.expected ?? .any
                return .failure(EventStoreError.wrongExpectedVersion(stream: stream, expected: expected, actual: try result.decode(row, 3)))
            }
            let streams = try rows.map { row in
                AppendResult.Stream(stream: try result.decode(row, 1), version: try result.decode(row, 3),
                                    firstPosition: try result.decode(row, 4), lastPosition: try result.decode(row, 5))
            }
            return .success(AppendResult(streams: streams, duplicate: outcomes.allSatisfy { $0 == "duplicate" }))
        }
    }
}

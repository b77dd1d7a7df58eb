import Dispatch
import Foundation
import Synchronization

/// Gathers concurrent appends of this process into one call of `coord_write` (which runs `coord_append` and
/// records receipts), one transaction.
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
        let json: String
        let eventCount: Int
        let request: [StreamAppend]
        let continuation: CheckedContinuation<AppendResult, Error>
    }

    /// When the writer's cached plans were last dropped (see `run`).
    private var plansReset = DispatchTime.now().uptimeNanoseconds

    private struct State {
        var pending: [Pending] = []
        var draining = false
        var closed = false
    }

    /// Counters for metrics.
    private let counters = Mutex((batches: 0, events: 0))

    init(configuration: PostgresConfiguration, maxBatchEvents: Int = 1000) {
        var configuration = configuration
        configuration.applicationName += "-writer"
        self.configuration = configuration
        self.maxBatchEvents = maxBatchEvents
    }

    var stats: (batches: Int, events: Int) { counters.withLock { $0 } }

    func submit(_ request: [StreamAppend], json: String, eventCount: Int) async throws -> AppendResult {
        try await withCheckedThrowingContinuation { continuation in
            let pending = Pending(json: json, eventCount: eventCount, request: request, continuation: continuation)
            enqueue([pending])
        }
    }

    private func enqueue(_ items: [Pending]) {
        let (start, rejected) = state.withLock { s -> (Bool, [Pending]) in
            if s.closed { return (false, items) }
            s.pending.append(contentsOf: items)
            if s.draining { return (false, []) }
            s.draining = true
            return (true, [])
        }
        for item in rejected {
            item.continuation.resume(throwing: EventStoreError.unavailable("store closed"))
        }
        if start {
            BlockingThreads.shared.run { self.drain() }
        }
    }

    func close() {
        state.withLock { $0.closed = true }
    }

    /// Runs on a blocking thread until nothing is pending.
    private func drain() {
        while true {
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
            var retry: [Pending] = []
            for (item, outcome) in zip(batch, run(batch)) {
                switch outcome {
                case .some(.success(let result)): item.continuation.resume(returning: result)
                case .some(.failure(let error)): item.continuation.resume(throwing: error)
                case .none: retry.append(item)
                }
            }
            if !retry.isEmpty {
                // Ids repeated within one batch: send them again, where they meet the stored originals.
                state.withLock { $0.pending.insert(contentsOf: retry, at: 0) }
            }
        }
    }

    /// Outcome per request; nil means "send again in a later batch".
    private func run(_ batch: [Pending]) -> [Result<AppendResult, Error>?] {
        let json = "[" + batch.map(\.json).joined(separator: ",") + "]"
        var attempt = 0
        while true {
            attempt += 1
            do {
                if connection == nil || !(connection!.isUsable) {
                    connection?.close()
                    connection = try PostgresConnection(configuration: configuration)
                    // coord_append's statements take arrays and jsonb whose contents do not change the best plan:
                    // planning them once (generic plans) instead of on every call saves ~0.4 ms per batch.
                    try connection!.execute(unsafe: "SET plan_cache_mode = force_generic_plan")
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
                let result = try connection!.query("""
                    SELECT req, stream, outcome, version, first_position, last_position
                    FROM coord_write(\(JSONText(json))::jsonb)
                    """)
                counters.withLock { $0.batches += 1; $0.events += batch.reduce(0) { $0 + $1.eventCount } }
                return try Self.outcomes(result, batch)
            } catch let error as PostgresError where (error.isConnectionFailure || error.isTransient) && attempt < 4 {
                if error.isConnectionFailure { connection?.close(); connection = nil }
                Thread.sleep(forTimeInterval: 0.1 * Double(attempt * attempt))
            } catch let error as PostgresError where batch.count > 1 && error.kind == .server {
                // A value the server refused (it passed our checks): isolate it so neighbours still commit.
                return batch.map { run([$0])[0] }
            } catch {
                return batch.map { _ in .failure(error) }
            }
        }
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

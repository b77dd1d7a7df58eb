import Events
import Foundation
import Synchronization

/// An aggregate's state, folded from its stream's events.
protocol AggregateState: Sendable, Encodable {
    init()
    mutating func apply(_ payload: any EventPayload, _ event: RecordedEvent)
}

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

/// Folded states by stream at a committed version, so a command reads only the events after it.
final class StateCache: Sendable {
    private struct Entry: @unchecked Sendable { let version: Int64; let state: any Sendable }
    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int = 20_000) { self.capacity = capacity }

    func get<S: AggregateState>(_ stream: String, as: S.Type) -> (S, Int64)? {
        guard let e = entries.withLock({ $0[stream] }), let s = e.state as? S else { return nil }
        return (s, e.version)
    }

    func put<S: AggregateState>(_ stream: String, _ state: S, version: Int64) {
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }  // crude but bounded
            if let old = e[stream], old.version > version { return }
            e[stream] = Entry(version: version, state: state)
        }
    }
}

/// Loads aggregates, runs a command's decision, and appends its events with optimistic concurrency,
/// idempotency keys and bounded retries. Every command handler goes through `run`.
final class CommandRunner: Sendable {
    let store: EventStore
    let locks = KeyedLock()
    let cache = StateCache()
    static let maxAttempts = 10

    init(store: EventStore) { self.store = store }

    /// The aggregate at `stream` and its version (0 when the stream has no events).
    func load<S: AggregateState>(_ stream: String, as type: S.Type) async throws -> (S, Int64) {
        var (state, version) = cache.get(stream, as: S.self) ?? (S(), 0)
        while true {
            let events = try await store.read(stream: stream, from: version + 1, limit: 1000)
            for event in events {
                let payload = try EventCodec.decode(event)
                state.apply(payload, event)
                version = event.version
            }
            if events.count < 1000 { break }
        }
        cache.put(stream, state, version: version)
        return (state, version)
    }

    /// What a command decided: its events per stream with the versions it read, and how to answer.
    struct Decision {
        var appends: [(stream: String, expected: ExpectedVersion, payloads: [any EventPayload])]
        /// The resource's stream, whose version the result reports.
        var primary: String
        var kind: String
        var id: String
        var created: Bool
    }

    /// Runs `decide` under the streams' locks, appends what it decided, and retries from a fresh read when
    /// another process wrote first. `answer` renders the resource's state after the command.
    func run<S: AggregateState>(
        command: String, body: String, ctx: CommandContext, occurredAt: Date?, locks keys: [String],
        state: S.Type, decide: @Sendable () async throws -> Decision
    ) async throws -> CommandResult {
        var ids: [UUID] = []
        var requestHash: String?
        if let key = ctx.idempotencyKey {
            guard !key.isEmpty, key.count <= 200 else { throw DomainError.invalid("idempotency_key", "must be 1 to 200 characters") }
            (ids, requestHash) = try await idempotencyIDs(actor: ctx.actor, command: command, key: key, body: body)
        }
        let (derivedIDs, hash) = (ids, requestHash)
        return try await locks.withLocks(keys) {
            // Checked under the lock: a concurrent retry of the same command waits for the original and then
            // finds it, instead of re-deciding against the state the original left (which may refuse it).
            if let key = ctx.idempotencyKey, let stored = try await store.event(id: derivedIDs[0]) {
                guard stored.decodedMetadata.requestHash == hash else { throw DomainError.idempotencyMismatch(key: key) }
                return try await replayResult(stored, command: command, ids: derivedIDs, state: S.self)
            }
            var attempt = 0
            while true {
                attempt += 1
                let decision = try await decide()
                var metadata = ctx.metadata(requestHash: requestHash)
                metadata.schemaVersion = nil
                let when = occurredAt ?? ctx.receivedAt
                var index = 0
                var appends: [StreamAppend] = []
                for a in decision.appends {
                    var events: [EventData] = []
                    for p in a.payloads {
                        let id = index < ids.count ? ids[index] : UUID()
                        index += 1
                        events.append(try EventCodec.event(p, id: id, metadata: metadata, occurredAt: when))
                    }
                    appends.append(StreamAppend(stream: a.stream, expected: a.expected, events: events))
                }
                do {
                    let result = try await store.append(appends)
                    let (state, version) = try await stateAfter(decision, appends, result, as: S.self)
                    return CommandResult(kind: decision.kind, id: decision.id, created: decision.created, position: result.position,
                                         version: version, duplicate: result.duplicate, state: try Self.render(state))
                } catch EventStoreError.wrongExpectedVersion(let stream, _, _) {
                    if attempt >= Self.maxAttempts { throw DomainError.contention(stream: stream) }
                    try await Task.sleep(nanoseconds: UInt64.random(in: 1_000_000...(5_000_000 * UInt64(attempt))))
                } catch EventStoreError.idempotencyMismatch {
                    throw DomainError.idempotencyMismatch(key: ctx.idempotencyKey ?? "")
                }
            }
        }
    }

    /// The primary aggregate after a successful append: the appended payloads folded into the state the
    /// decision was made on (no read), or a fresh load when that state is not at hand.
    private func stateAfter<S: AggregateState>(_ decision: Decision, _ appends: [StreamAppend], _ result: AppendResult,
                                               as: S.Type) async throws -> (S, Int64) {
        guard !result.duplicate,
              let index = appends.firstIndex(where: { $0.stream == decision.primary }),
              let written = result.streams.first(where: { $0.stream == decision.primary }),
              var (state, version) = cache.get(decision.primary, as: S.self),
              version == written.version - Int64(appends[index].events.count) else {
            return try await load(decision.primary, as: S.self)
        }
        let payloads = decision.appends.first { $0.stream == decision.primary }?.payloads ?? []
        let now = Date()
        for (k, (event, payload)) in zip(appends[index].events, payloads).enumerated() {
            version += 1
            let recorded = RecordedEvent(position: written.firstPosition + Int64(k), stream: decision.primary, version: version, id: event.id,
                                         type: event.type, data: event.data, metadata: JSONText(event.metadata.json),
                                         occurredAt: event.occurredAt, recordedAt: now, hash: "")
            state.apply(payload, recorded)
        }
        cache.put(decision.primary, state, version: version)
        return (state, version)
    }

    /// The original command's result, for a retry of it.
    private func replayResult<S: AggregateState>(_ stored: RecordedEvent, command: String, ids: [UUID], state: S.Type) async throws -> CommandResult {
        // The command's last event is the highest-position one among its ids.
        let last = try await store.events(ids: ids).max { $0.position < $1.position } ?? stored
        let primary = stored.stream
        let (current, _) = try await load(primary, as: S.self)
        let (kind, resource) = Self.kindAndID(of: primary)
        return CommandResult(kind: kind, id: resource, created: command.hasSuffix(".register") || command.hasSuffix(".declare")
                                || command.hasSuffix(".request") || command.hasSuffix(".create") || command == "stock.transfer",
                             position: last.position, version: stored.stream == last.stream ? last.version : stored.version,
                             duplicate: true, state: try Self.render(current))
    }

    static func kindAndID(of stream: String) -> (String, String) {
        guard let dash = stream.firstIndex(of: "-") else { return (stream, stream) }
        return (String(stream[..<dash]), String(stream[stream.index(after: dash)...]))
    }

    /// Event ids derived from (actor, command, key), and a digest of the body, computed by PostgreSQL's md5
    /// (no hashing is implemented in Swift). Up to 8 events per command.
    private func idempotencyIDs(actor: String, command: String, key: String, body: String) async throws -> ([UUID], String) {
        let base = actor + "\u{1f}" + command + "\u{1f}" + key
        return try await store.pool.withConnection(retryOnConnectionFailure: true) { c in
            let r = try c.query("""
                SELECT array_to_string(array_agg(md5(\(base) || chr(31) || i::text)::uuid::text ORDER BY i), ','), md5(\(body))
                FROM generate_series(0, 7) AS i
                """)
            let ids = try r.decode(0, 0, as: String.self).split(separator: ",").compactMap { UUID(uuidString: String($0)) }
            return (ids, try r.decode(0, 1, as: String.self))
        }
    }

    static func render<S: Encodable>(_ state: S) throws -> JSONText {
        JSONText(try JSONWriter.encode(state))
    }
}

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
    func fold(_ stream: String, from: Int64, _ events: [(any EventPayload, RecordedEvent)]) -> Bool {
        entries.withLock { e in
            guard let entry = e[stream], entry.version == from else { e[stream] = nil; return false }
            var state = entry.state
            for (payload, event) in events { state.apply(payload, event) }
            e[stream] = Entry(version: from + Int64(events.count), state: state)
            return true
        }
    }
}

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
        }
    }

    /// Events staged since the last `take`.
    var stagedEvents: Int { contents.withLock { $0.events } }

    /// The staged appends, in order; the buffer starts a new batch.
    @discardableResult
    func take() -> [StreamAppend] {
        contents.withLock { c in
            defer { c.appends = []; c.events = 0 }
            return c.appends
        }
    }
}

/// Loads aggregates, runs a command's decision, and appends its events with optimistic concurrency,
/// idempotency keys and bounded retries. Every command handler goes through `run`.
final class CommandRunner: Sendable {
    let store: EventStore
    let locks = KeyedLock()
    let cache: StateCache
    /// Set for bulk imports: decided events are staged, not appended (see `StagingBuffer`).
    let staging: StagingBuffer?
    static let maxAttempts = 10
    /// True while a decision must not trust cached states: after a conflict or a refusal.
    @TaskLocal static var readThrough = false

    init(store: EventStore, staging: StagingBuffer? = nil) {
        self.store = store
        self.staging = staging
        self.cache = StateCache(capacity: staging == nil ? 20_000 : Int.max)
    }

    /// The aggregate at `stream` and its version (0 when the stream has no events). A decision uses the
    /// cached state as it is; `fresh` (reads that no append will verify) and re-decisions read the events
    /// after it. While staging, the cache holds the staged events and is always used.
    func load<S: AggregateState>(_ stream: String, as type: S.Type, fresh: Bool = false) async throws -> (S, Int64) {
        let cached = cache.get(stream, as: S.self)
        if let cached, staging != nil || !(fresh || Self.readThrough) { return cached }
        if cached == nil, let staging, staging.isAbsent(stream) {
            cache.put(stream, S(), version: 0)
            return (S(), 0)
        }
        var (state, version) = cached ?? (S(), 0)
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

    /// One stream's events of a decision, with the version the decision read.
    typealias StreamEvents = (stream: String, expected: ExpectedVersion, payloads: [any EventPayload])

    /// What a command decided: its events per stream with the versions it read, and how to answer.
    struct Decision {
        var appends: [StreamEvents]
        /// The resource's stream, whose version the result reports.
        var primary: String
        var kind: String
        var id: String
        var created: Bool
    }

    /// Runs `decide` under the streams' locks, appends what it decided, and decides again from fresh reads
    /// when another process wrote first. `answer` renders the resource's state after the command.
    ///
    /// Idempotency: the events of a command with a key get ids derived from (actor, command, key). A retry
    /// decides again; the store finds the ids already written (same content: a duplicate, different content:
    /// a mismatch), and a retry the current state refuses finds the original by id. Either way it answers
    /// with the original command's result when the request digest matches, and writes nothing.
    func run<S: AggregateState>(
        command: String, body: String, ctx: CommandContext, occurredAt: Date?, locks keys: [String],
        state: S.Type, decide: @Sendable () async throws -> Decision
    ) async throws -> CommandResult {
        var ids: IdempotentIDs?
        var requestHash: String?
        if let key = ctx.idempotencyKey {
            guard !key.isEmpty, key.count <= 200 else { throw DomainError.invalid("idempotency_key", "must be 1 to 200 characters") }
            (ids, requestHash) = Self.idempotencyIDs(actor: ctx.actor, command: command, key: key, body: body)
        }
        let (derivedIDs, hash) = (ids, requestHash)
        // A bulk import decides one command at a time: no other task touches its streams, so no locks.
        return try await staging != nil ? decideAndWrite() : locks.withLocks(keys, decideAndWrite)
        @Sendable func decideAndWrite() async throws -> CommandResult {
            if let staging, let first = derivedIDs?.first, let stored = staging.known(first) {
                guard stored == hash else { throw DomainError.idempotencyMismatch(key: ctx.idempotencyKey ?? "") }
                return CommandResult(kind: "", id: "", created: false, position: 0, version: 0, duplicate: true, state: JSONText("{}"))
            }
            var attempt = 0
            var readThrough = false
            while true {
                attempt += 1
                let decision: Decision
                do {
                    decision = try await Self.$readThrough.withValue(readThrough) { try await decide() }
                } catch let error as DomainError {
                    guard staging == nil else { throw error }
                    if !readThrough { readThrough = true; continue }  // refused on cached state: decide once more on fresh reads
                    if let original = try await original(ids: derivedIDs, requestHash: hash, ctx: ctx, command: command, state: S.self) {
                        return original
                    }
                    throw error
                }
                let appends = try events(of: decision, ids: derivedIDs, ctx: ctx, requestHash: hash, occurredAt: occurredAt)
                if let staging {
                    staging.stage(appends, firstID: derivedIDs?.first, requestHash: hash)
                    let version = try foldStaged(decision, appends)
                    return CommandResult(kind: decision.kind, id: decision.id, created: decision.created, position: 0,
                                         version: version, duplicate: false, state: JSONText("{}"))
                }
                do {
                    let result = try await store.append(appends)
                    if result.duplicate, let original = try await original(ids: derivedIDs, requestHash: hash, ctx: ctx, command: command, state: S.self) {
                        return original
                    }
                    let (state, version) = try await stateAfter(decision, appends, result, as: S.self)
                    return CommandResult(kind: decision.kind, id: decision.id, created: decision.created, position: result.position,
                                         version: version, duplicate: result.duplicate, state: try Self.render(state))
                } catch EventStoreError.wrongExpectedVersion(let stream, _, _) {
                    if attempt >= Self.maxAttempts { throw DomainError.contention(stream: stream) }
                    // The first conflict usually means a cached state was behind: decide again at once on fresh reads.
                    if readThrough { try await Task.sleep(nanoseconds: UInt64.random(in: 1_000_000...(5_000_000 * UInt64(attempt)))) }
                    readThrough = true
                } catch EventStoreError.idempotencyMismatch {
                    if let original = try await original(ids: derivedIDs, requestHash: hash, ctx: ctx, command: command, state: S.self) {
                        return original
                    }
                    throw DomainError.idempotencyMismatch(key: ctx.idempotencyKey ?? "")
                }
            }
        }
    }

    /// The events of a decision, with their ids (derived from the idempotency key when there is one).
    private func events(of decision: Decision, ids: IdempotentIDs?, ctx: CommandContext, requestHash: String?, occurredAt: Date?) throws -> [StreamAppend] {
        let metadata = ctx.metadata(requestHash: requestHash)
        let when = occurredAt ?? ctx.receivedAt
        var index = 0
        var appends: [StreamAppend] = []
        for a in decision.appends {
            var events: [EventData] = []
            for p in a.payloads {
                let id = ids.flatMap { index < IdempotentIDs.count ? $0[index] : nil } ?? UUID.random()
                index += 1
                events.append(try EventCodec.event(p, id: id, metadata: metadata, occurredAt: when))
            }
            appends.append(StreamAppend(stream: a.stream, expected: a.expected, events: events))
        }
        return appends
    }

    /// Folds appended events into the cached states of their streams, as recorded events.
    private func fold(_ decision: Decision, _ appends: [StreamAppend], versions: (StreamAppend) -> (from: Int64, firstPosition: Int64)?) -> Set<String> {
        var folded = Set<String>()
        let now = Date()
        for (a, d) in zip(appends, decision.appends) {
            guard let (from, firstPosition) = versions(a) else { continue }
            var items: [(any EventPayload, RecordedEvent)] = []
            for (k, (event, payload)) in zip(a.events, d.payloads).enumerated() {
                let recorded = RecordedEvent(position: firstPosition + Int64(k), stream: a.stream, version: from + Int64(k) + 1, id: event.id,
                                             type: event.type, data: event.data, metadata: JSONText(event.metadataJSON),
                                             occurredAt: event.occurredAt, recordedAt: now, hash: "")
                items.append((payload, recorded))
            }
            if cache.fold(a.stream, from: from, items) { folded.insert(a.stream) }
        }
        return folded
    }

    /// While staging: every stream a decision wrote was loaded by it, so its cached state is at the expected
    /// version and takes the staged events. Returns the primary stream's new version.
    private func foldStaged(_ decision: Decision, _ appends: [StreamAppend]) throws -> Int64 {
        let folded = fold(decision, appends) { a in
            switch a.expected {
            case .exact(let v): return (v, 0)
            default: return (0, 0)
            }
        }
        guard folded.count == appends.count else {
            throw EventStoreError.unavailable("a staged decision wrote to a stream it did not load")
        }
        return cache.version(of: decision.primary) ?? 0
    }

    /// The primary aggregate after a successful append: the appended payloads folded into the states the
    /// decision was made on (no read), or a fresh load when that state is not at hand.
    private func stateAfter<S: AggregateState>(_ decision: Decision, _ appends: [StreamAppend], _ result: AppendResult,
                                               as: S.Type) async throws -> (S, Int64) {
        guard !result.duplicate else { return try await load(decision.primary, as: S.self, fresh: true) }
        let written = Dictionary(result.streams.map { ($0.stream, $0) }, uniquingKeysWith: { a, _ in a })
        let folded = fold(decision, appends) { a in
            written[a.stream].map { ($0.version - Int64(a.events.count), $0.firstPosition) }
        }
        if folded.contains(decision.primary), let current = cache.get(decision.primary, as: S.self) { return current }
        return try await load(decision.primary, as: S.self, fresh: true)
    }

    /// The original command's result, for a retry of it: nil when no event of the command is stored.
    private func original<S: AggregateState>(ids: IdempotentIDs?, requestHash: String?, ctx: CommandContext, command: String,
                                             state: S.Type) async throws -> CommandResult? {
        guard let ids else { return nil }
        let first = ids.first
        let stored = try await store.events(ids: ids.all)
        guard let head = stored.first(where: { $0.id == first }), let last = stored.last else { return nil }
        guard head.decodedMetadata.requestHash == requestHash else { throw DomainError.idempotencyMismatch(key: ctx.idempotencyKey ?? "") }
        let primary = head.stream
        let (current, _) = try await load(primary, as: S.self, fresh: true)
        let (kind, resource) = Self.kindAndID(of: primary)
        return CommandResult(kind: kind, id: resource, created: command.hasSuffix(".register") || command.hasSuffix(".declare")
                                || command.hasSuffix(".request") || command.hasSuffix(".create") || command == "stock.transfer",
                             position: last.position, version: head.stream == last.stream ? last.version : head.version,
                             duplicate: true, state: try Self.render(current))
    }

    static func kindAndID(of stream: String) -> (String, String) {
        guard let dash = stream.firstIndex(of: "-") else { return (stream, stream) }
        return (String(stream[..<dash]), String(stream[stream.index(after: dash)...]))
    }

    /// Event ids derived from (actor, command, key), and a digest of the body: MD5 as text, equal to what
    /// PostgreSQL's `md5(...)::uuid` gives (earlier versions computed them there). Up to 8 events per command.
    static func idempotencyIDs(actor: String, command: String, key: String, body: String) -> (IdempotentIDs, String) {
        (IdempotentIDs(actor: actor, command: command, key: key), MD5.hex(body))
    }

    /// The ids of a keyed command's events, computed as they are needed (most commands write one event).
    struct IdempotentIDs: Sendable {
        static let count = 8
        let base: String
        let first: UUID
        init(actor: String, command: String, key: String) {
            self.base = actor + "\u{1f}" + command + "\u{1f}" + key + "\u{1f}"
            self.first = MD5.uuid(base + "0")
        }
        subscript(index: Int) -> UUID { index == 0 ? first : MD5.uuid(base + String(index)) }
        var all: [UUID] { (0..<Self.count).map { self[$0] } }
    }

    static func render<S: Encodable>(_ state: S) throws -> JSONText {
        JSONText(try JSONWriter.encode(state))
    }
}

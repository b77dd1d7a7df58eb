import Events
import Foundation
import Synchronization

/// An aggregate's state, folded from its stream's events.
protocol AggregateState: Sendable, Encodable {
    init()
    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent)
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

    /// The aggregate at `stream` and its version (0 when the stream has no events). A decision uses the newest
    /// cached state as it is, a speculation's included (recorded in the task's `ReadLog`, so its append waits for
    /// that speculation's); `fresh` (reads that no append will verify) and re-decisions read the committed events
    /// after the committed state. While staging, the cache holds the staged events and is always used.
    func load<S: AggregateState>(_ stream: String, as type: S.Type, fresh: Bool = false) async throws -> (S, Int64) {
        if staging == nil, !(fresh || Self.readThrough), let (state, version, speculation) = cache.top(stream, as: S.self) {
            Self.readLog?.record(stream, state, version, speculation)
            return (state, version)
        }
        let cached = cache.get(stream, as: S.self)
        if let cached, staging != nil { return cached }
        if cached == nil, let staging, staging.isAbsent(stream) {
            cache.put(stream, S(), version: 0)
            return (S(), 0)
        }
        var (state, version) = cached ?? (S(), 0)
        while true {
            let events = try await store.read(stream: stream, from: version + 1, limit: 1000)
            for event in events {
                state.apply(try EventCodec.decode(event), event)
                version = event.version
            }
            if events.count < 1000 { break }
        }
        cache.put(stream, state, version: version)
        Self.readLog?.record(stream, state, version, nil)
        return (state, version)
    }

    /// The states a decision read, by stream: the bases of the states its append will leave, and the
    /// speculations it was decided on.
    final class ReadLog: Sendable {
        struct Read: @unchecked Sendable {
            let state: any AggregateState
            let version: Int64
            let speculation: Speculation?
        }
        private let reads = Mutex<[String: Read]>([:])

        func record(_ stream: String, _ state: any AggregateState, _ version: Int64, _ speculation: Speculation?) {
            reads.withLock { $0[stream] = Read(state: state, version: version, speculation: speculation) }
        }

        var all: [String: Read] { reads.withLock { $0 } }
    }

    @TaskLocal static var readLog: ReadLog?

    /// One stream's events of a decision, with the version the decision read.
    typealias StreamEvents = (stream: String, expected: ExpectedVersion, events: [DomainEvent])

    /// What a command decided: its events per stream with the versions it read, and how to answer.
    struct Decision {
        var appends: [StreamEvents]
        /// The resource's stream, whose version the result reports.
        var primary: String
        var kind: String
        var id: String
        var created: Bool
        /// The event that caused this command's events, when it was not the command alone (a reversal names
        /// the movement it undoes); recorded as their `causation_id`.
        var causation: String? = nil
    }

    /// Runs `decide` under the streams' locks and queues what it decided, then releases the locks and awaits the
    /// commit: the next command on the same streams decides on the state this one will leave and joins the same
    /// batch. It decides again from fresh reads when another process wrote first, and again on the newest state
    /// when an append it was decided on was not written. `answer` renders the resource's state after the command.
    ///
    /// Idempotency: the events of a command with a key get ids derived from (actor, command, key). A retry
    /// decides again; the store finds the ids already written (same content: a duplicate, different content:
    /// a mismatch), and a retry the current state refuses finds the original by id. Either way it answers
    /// with the original command's result when the request digest matches, and writes nothing.
    func run<C: DomainCommand, S: AggregateState>(
        _ issued: C, ctx: CommandContext, occurredAt: Date?, locks keys: [String],
        state: S.Type, decide: @Sendable () async throws -> Decision
    ) async throws -> CommandResult {
        let command = C.name
        let creates = C.creates
        var ids: IdempotentIDs?
        var requestHash: String?
        if let key = ctx.idempotencyKey {
            guard !key.isEmpty, key.count <= 200 else { throw DomainError.invalid("idempotency_key", "must be 1 to 200 characters") }
            (ids, requestHash) = Self.idempotencyIDs(actor: ctx.actor, command: command, key: key, body: CoordinationService.canonical(issued))
        }
        let (derivedIDs, hash) = (ids, requestHash)
        // The command's own id: every event it writes names it as its cause (a retry under the same key, the same id).
        let commandID = derivedIDs.map { MD5.uuid($0.base + "command") } ?? UUID.random()
        // A bulk import decides one command at a time: no other task touches its streams, so no locks.
        if let staging { return try await stage(staging) }
        var attempt = 0
        var readThrough = false
        while true {
            attempt += 1
            let queued: Queued<S>
            switch try await locks.withLocks(keys, { try await decideAndEnqueue(readThrough: readThrough) }) {
            case .answered(let result): return result
            case .queued(let q): queued = q
            }
            do {
                let result = try await queued.ticket.value()
                if result.duplicate, let original = try await original(ids: derivedIDs, requestHash: hash, ctx: ctx, creates: creates, state: S.self) {
                    return original
                }
                let decision = queued.decision
                let written = result.streams.first { $0.stream == decision.primary }
                let (state, version): (S, Int64)
                if !result.duplicate, let after = queued.primaryAfter, let written {
                    (state, version) = (after, written.version)
                } else {
                    (state, version) = try await load(decision.primary, as: S.self, fresh: true)
                }
                return CommandResult(kind: decision.kind, id: decision.id, created: decision.created, position: result.position,
                                     version: version, duplicate: result.duplicate, state: try Self.render(state),
                                     eventID: queued.appends.first { $0.stream == decision.primary }?.events.first?.id)
            } catch EventStoreError.wrongExpectedVersion(let stream, _, _) {
                if attempt >= Self.maxAttempts { throw DomainError.contention(stream: stream) }
                // The first conflict usually means a cached state was behind: decide again at once on fresh reads.
                if readThrough { try await Task.sleep(nanoseconds: UInt64.random(in: 1_000_000...(5_000_000 * UInt64(attempt)))) }
                readThrough = true
            } catch EventStoreError.speculationFailed {
                // A command this one was decided on was not written: decide again on the newest state.
                if attempt >= Self.maxAttempts { throw DomainError.contention(stream: queued.decision.primary) }
            } catch EventStoreError.idempotencyMismatch {
                if let original = try await original(ids: derivedIDs, requestHash: hash, ctx: ctx, creates: creates, state: S.self) {
                    return original
                }
                throw DomainError.idempotencyMismatch(key: ctx.idempotencyKey ?? "")
            }
        }

        /// Under the streams' locks: decides (once more on fresh reads when the cached state refuses it) and queues
        /// the append, with the states it will leave offered to the next decisions as speculations.
        @Sendable func decideAndEnqueue(readThrough first: Bool) async throws -> Step<S> {
            var readThrough = first
            while true {
                let log = ReadLog()
                let decision: Decision
                do {
                    decision = try await Self.$readLog.withValue(log) {
                        try await Self.$readThrough.withValue(readThrough) { try await decide() }
                    }
                } catch let error as DomainError {
                    if !readThrough { readThrough = true; continue }  // refused on cached state: decide once more on fresh reads
                    if let original = try await original(ids: derivedIDs, requestHash: hash, ctx: ctx, creates: creates, state: S.self) {
                        return .answered(original)
                    }
                    throw error
                }
                let appends = try events(of: decision, ids: derivedIDs, ctx: ctx, commandID: commandID, requestHash: hash, occurredAt: occurredAt)
                let reads = log.all
                let afters = statesAfter(decision, appends, reads)
                let primaryAfter = afters.first { $0.stream == decision.primary }?.state as? S
                let receipt = derivedIDs.flatMap { ids in
                    primaryAfter.flatMap { try? Self.render($0) }.map { rendered in
                        AppendReceipt(id: ids.receipt, requestHash: hash ?? "",
                                      answer: CommandAnswer.done(kind: decision.kind, id: decision.id, created: decision.created, state: rendered.text,
                                                                 event: appends.first { $0.stream == decision.primary }?.events.first?.id).json)
                    }
                }
                let cache = self.cache
                let speculation = Speculation { speculation, committed in
                    for a in afters { cache.resolve(a.stream, a.state, version: a.version, speculation, committed: committed) }
                }
                var producers: [Speculation] = []
                for read in reads.values {
                    if let s = read.speculation, s.status != .committed, !producers.contains(where: { $0 === s }) { producers.append(s) }
                }
                let ticket = try store.enqueue(appends, receipt: receipt, speculation: speculation, after: producers)
                for a in afters { cache.speculate(a.stream, a.state, version: a.version, base: a.base, speculation) }
                return .queued(Queued(ticket: ticket, decision: decision, appends: appends, primaryAfter: primaryAfter))
            }
        }

        /// A bulk import's command: decided on the staged states, its events staged, not appended.
        @Sendable func stage(_ staging: StagingBuffer) async throws -> CommandResult {
            if let first = derivedIDs?.first, let stored = staging.known(first) {
                guard stored == hash else { throw DomainError.idempotencyMismatch(key: ctx.idempotencyKey ?? "") }
                return CommandResult(kind: "", id: "", created: false, position: 0, version: 0, duplicate: true, state: JSONText("{}"))
            }
            let decision = try await decide()
            let appends = try events(of: decision, ids: derivedIDs, ctx: ctx, commandID: commandID, requestHash: hash, occurredAt: occurredAt)
            staging.stage(appends, firstID: derivedIDs?.first, requestHash: hash)
            let version = try foldStaged(decision, appends)
            return CommandResult(kind: decision.kind, id: decision.id, created: decision.created, position: 0,
                                 version: version, duplicate: false, state: JSONText("{}"))
        }
    }

    /// What a command's locked phase ended with: an answer (a refusal's original), or a queued append.
    enum Step<S: AggregateState>: Sendable {
        case answered(CommandResult)
        case queued(Queued<S>)
    }

    struct Queued<S: AggregateState>: Sendable {
        let ticket: AppendTicket
        let decision: Decision
        let appends: [StreamAppend]
        /// The primary aggregate as the append will leave it, when the decision read its base.
        let primaryAfter: S?
    }

    /// A stream's state as an append will leave it: the decided events folded into the state the decision read.
    struct After: @unchecked Sendable {
        let stream: String
        let state: any AggregateState
        let base: Int64
        let version: Int64
    }

    /// The states the decision's appends will leave, for the streams whose base it read at the version it expects.
    private func statesAfter(_ decision: Decision, _ appends: [StreamAppend], _ reads: [String: ReadLog.Read]) -> [After] {
        var afters: [After] = []
        let now = Date()
        for (a, d) in zip(appends, decision.appends) {
            let from: Int64
            switch a.expected {
            case .noStream: from = 0
            case .exact(let v): from = v
            default: continue
            }
            guard let read = reads[a.stream], read.version == from else { continue }
            var state = read.state
            for (k, (event, payload)) in zip(a.events, d.events).enumerated() {
                state.apply(payload, RecordedEvent(position: 0, stream: a.stream, version: from + Int64(k) + 1, id: event.id, type: event.type,
                                                   data: event.data, metadata: JSONText(event.metadataJSON), occurredAt: event.occurredAt,
                                                   recordedAt: now, hash: ""))
            }
            afters.append(After(stream: a.stream, state: state, base: from, version: from + Int64(a.events.count)))
        }
        return afters
    }

    /// The events of a decision, with their ids (derived from the idempotency key when there is one).
    private func events(of decision: Decision, ids: IdempotentIDs?, ctx: CommandContext, commandID: UUID, requestHash: String?,
                        occurredAt: Date?) throws -> [StreamAppend] {
        var metadata = ctx.metadata(requestHash: requestHash)
        metadata.causationID = decision.causation ?? ctx.causationID ?? commandID.lowercasedString
        let when = occurredAt ?? ctx.receivedAt
        var index = 0
        var appends: [StreamAppend] = []
        for a in decision.appends {
            var events: [EventData] = []
            for p in a.events {
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
            var items: [(DomainEvent, RecordedEvent)] = []
            for (k, (event, payload)) in zip(a.events, d.events).enumerated() {
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

    /// The original command's result, for a retry of it: nil when no event of the command is stored.
    private func original<S: AggregateState>(ids: IdempotentIDs?, requestHash: String?, ctx: CommandContext, creates: Bool,
                                             state: S.Type) async throws -> CommandResult? {
        guard let ids else { return nil }
        let first = ids.first
        let stored = try await store.events(ids: ids.all)
        guard let head = stored.first(where: { $0.id == first }), let last = stored.last else { return nil }
        guard head.decodedMetadata.requestHash == requestHash else { throw DomainError.idempotencyMismatch(key: ctx.idempotencyKey ?? "") }
        let primary = head.stream
        let version = head.stream == last.stream ? last.version : head.version
        // The original's answer, not today's state: its receipt when one was written with its events (a retry can
        // arrive while the original's transaction is still committing: it found no receipt, decided again, and met
        // the stored events), else the aggregate folded up to the original's own version.
        let rendered: JSONText
        if let receipt = try await store.receipt(id: ids.receipt), receipt.requestHash == requestHash,
           case .done(_, _, _, let state, _)? = CommandAnswer(json: receipt.answer) {
            rendered = JSONText(state)
        } else {
            rendered = try Self.render(try await aggregate(of: primary, through: version, as: S.self))
        }
        let (kind, resource) = Self.kindAndID(of: primary)
        return CommandResult(kind: kind, id: resource, created: creates, position: last.position, version: version,
                             duplicate: true, state: rendered, eventID: head.id)
    }

    /// The aggregate as it was at `version` of its stream (the cached state when it is at that version).
    private func aggregate<S: AggregateState>(of stream: String, through target: Int64, as: S.Type) async throws -> S {
        if let (cached, version) = cache.get(stream, as: S.self), version == target { return cached }
        var state = S()
        var version: Int64 = 0
        while version < target {
            let events = try await store.read(stream: stream, from: version + 1, limit: Int(min(1000, target - version)))
            for event in events where event.version <= target {
                state.apply(try EventCodec.decode(event), event)
                version = event.version
            }
            if events.isEmpty { break }
        }
        return state
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
        /// The id of the command's receipt (its first answer).
        var receipt: UUID { MD5.uuid(base + "receipt") }
        var all: [UUID] { (0..<Self.count).map { self[$0] } }
    }

    static func render<S: Encodable>(_ state: S) throws -> JSONText {
        JSONText(try JSONWriter.encode(state))
    }
}

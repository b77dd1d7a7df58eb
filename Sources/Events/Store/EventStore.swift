import Foundation

/// The append-only event log on PostgreSQL.
///
/// Guarantees:
/// - An append is atomic across all its streams, and acknowledged only after COMMIT.
/// - Positions are global, gapless and in commit order; versions are per stream, contiguous from 1.
/// - Appending events whose ids are already stored, with the same stream, type and data, writes nothing
///   and returns the original result (`duplicate == true`); a stored id with other content is refused.
/// - Every event is chained to the one before it by SHA-256 (`verify`).
public final class EventStore: Sendable {
    public let pool: PostgresPool
    private let committer: GroupCommitter
    let watcher: HeadWatcher

    /// Largest `data` of one event, in bytes of JSON text.
    public static let maxEventDataBytes = 1 << 20
    /// Most events in one append.
    public static let maxEventsPerAppend = 1000

    /// Uses `pool` for reads; appends go through one dedicated writer connection of the same configuration.
    public convenience init(pool: PostgresPool) {
        self.init(pool: pool, gatherMicros: GroupCommitter.gatherFromEnvironment())
    }

    /// With the writer's wait for its callers' next requests given (`COORD_GROUP_COMMIT_GATHER_US` otherwise).
    init(pool: PostgresPool, gatherMicros: Int) {
        self.pool = pool
        self.committer = GroupCommitter(configuration: pool.configuration, gatherMicros: gatherMicros)
        self.watcher = HeadWatcher(configuration: pool.configuration)
    }

    /// Stops the writer and the notification listener; the pool is the caller's to close.
    public func close() {
        committer.close()
        watcher.stop()
    }

    /// Batches and events the writer has committed since start (for metrics).
    public var writerStats: (batches: Int, events: Int) { committer.stats }
    /// How many times the writer waited for its callers' next requests before a batch.
    var writerGathers: Int { committer.gathers }

    // MARK: Names

    /// Stream names: `[A-Za-z0-9][A-Za-z0-9._:@+/=-]{0,199}`. The category is the part before the first `-`.
    public static func isValidStreamName(_ s: String) -> Bool {
        let u = s.utf8
        guard !u.isEmpty, u.count <= 200 else { return false }
        for (i, c) in u.enumerated() {
            let alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
            if i == 0 { guard alnum else { return false }; continue }
            guard alnum || c == 46 || c == 95 || c == 58 || c == 64 || c == 43 || c == 47 || c == 61 || c == 45 else { return false }
        }
        return true
    }

    /// Event types: `[A-Za-z][A-Za-z0-9._-]{0,127}`, e.g. `stock.dispatched`.
    public static func isValidType(_ s: String) -> Bool {
        let u = s.utf8
        guard !u.isEmpty, u.count <= 128 else { return false }
        for (i, c) in u.enumerated() {
            let alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
            let digit = c >= 48 && c <= 57
            if i == 0 { guard alpha else { return false }; continue }
            guard alpha || digit || c == 46 || c == 95 || c == 45 else { return false }
        }
        return true
    }

    public static func category(of stream: String) -> String {
        stream.firstIndex(of: "-").map { String(stream[..<$0]) } ?? stream
    }

    // MARK: Append

    /// Appends `events` to `stream` if its version matches `expected`.
    /// Throws `EventStoreError.wrongExpectedVersion` with the actual version on a mismatch.
    @discardableResult
    public func append(_ events: [EventData], to stream: String, expected: ExpectedVersion = .any) async throws -> AppendResult {
        try await append([StreamAppend(stream: stream, expected: expected, events: events)])
    }

    /// Appends to several streams atomically: all events are written, or none. A `receipt` is stored in the same
    /// transaction when the events are written (not when they were already stored: the original's stands).
    @discardableResult
    public func append(_ streams: [StreamAppend], receipt: AppendReceipt? = nil) async throws -> AppendResult {
        try await enqueue(streams, receipt: receipt).value()
    }

    /// Queues an append and returns at once; the ticket gives its outcome. Appends are written in the order they
    /// were queued. `speculation` is resolved with the outcome (before the ticket completes), and `after` names the
    /// queued appends this one was decided on: it is written only if they all were (see `Speculation`).
    public func enqueue(_ streams: [StreamAppend], receipt: AppendReceipt? = nil, speculation: Speculation? = nil,
                        after producers: [Speculation] = []) throws -> AppendTicket {
        let count = try Self.validate(streams, receipt: receipt)
        return committer.submit(streams, receipt: receipt, eventCount: count, speculation: speculation, after: producers)
    }

    /// The receipt stored under `id`, if any.
    public func receipt(id: UUID) async throws -> AppendReceipt? {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            let r = try c.query("SELECT request_hash, answer FROM command_receipts WHERE id = \(id)")
            guard let row = r.first else { return nil }
            return AppendReceipt(id: id, requestHash: try row.decode(0), answer: try row.decode(1))
        }
    }

    /// Stores a receipt that has no events (a refusal), unless one is stored under its id already; returns the
    /// receipt that stands (the first).
    public func recordReceipt(_ receipt: AppendReceipt) async throws -> AppendReceipt {
        try await pool.withConnection { c in
            let r = try c.query("SELECT request_hash, answer FROM coord_record_receipt(\(receipt.id), \(receipt.requestHash), \(receipt.answer))")
            guard let row = r.first else { return receipt }
            return AppendReceipt(id: receipt.id, requestHash: try row.decode(0), answer: try row.decode(1))
        }
    }

    /// Refuses an append the store cannot hold (see `check` for each event); returns its number of events.
    static func validate(_ streams: [StreamAppend], receipt: AppendReceipt?) throws -> Int {
        guard !streams.isEmpty, streams.contains(where: { !$0.events.isEmpty }) else {
            throw EventStoreError.invalidInput(field: "events", reason: "an append needs at least one event")
        }
        guard Set(streams.map(\.stream)).count == streams.count else {
            throw EventStoreError.invalidInput(field: "stream", reason: "a stream appears twice in one append")
        }
        var ids = Set<UUID>()
        var count = 0
        for s in streams {
            guard isValidStreamName(s.stream) else {
                throw EventStoreError.invalidInput(field: "stream", reason: "must match [A-Za-z0-9][A-Za-z0-9._:@+/=-]{0,199}")
            }
            if case .exact(let v) = s.expected, v < 0 {
                throw EventStoreError.invalidInput(field: "expected", reason: "a version is never negative")
            }
            for e in s.events {
                try check(e, ids: &ids)
                if e.data.text.utf8.contains(0) || e.metadataJSON.utf8.contains(0) {
                    throw EventStoreError.invalidInput(field: "data", reason: "contains a NUL character")
                }
                count += 1
            }
        }
        guard count <= maxEventsPerAppend else {
            throw EventStoreError.invalidInput(field: "events", reason: "more than \(maxEventsPerAppend) events in one append")
        }
        if let receipt, receipt.requestHash.utf8.contains(0) || receipt.answer.utf8.contains(0) {
            throw EventStoreError.invalidInput(field: "data", reason: "contains a NUL character")
        }
        return count
    }

    /// An append as one element of `coord_write`'s JSON batch (built only for the batches `coord_write_arrays` hands
    /// back, or a schema without it).
    static func json(_ streams: [StreamAppend], receipt: AppendReceipt?) -> String {
        var json = "{\"streams\":["
        for (si, s) in streams.enumerated() {
            if si > 0 { json += "," }
            json += "{\"stream\":" + JSONWriter.quote(s.stream) + ",\"expected\":\"" + s.expected.wire + "\",\"events\":["
            for (ei, e) in s.events.enumerated() {
                if ei > 0 { json += "," }
                json += "{\"id\":\"" + e.id.lowercasedString + "\",\"type\":" + JSONWriter.quote(e.type)
                json += ",\"data\":" + e.data.text + ",\"metadata\":" + e.metadataJSON
                json += ",\"occurred_at\":\"" + Timestamp.format(e.occurredAt) + "\"}"
            }
            json += "]}"
        }
        json += "]"
        if let receipt {
            json += ",\"receipt\":{\"id\":\"\(receipt.id.lowercasedString)\",\"hash\":" + JSONWriter.quote(receipt.requestHash)
                + ",\"answer\":" + JSONWriter.quote(receipt.answer) + "}"
        }
        return json + "}"
    }

    /// Refuses an event the store cannot hold: a bad type name, data that is not a JSON object or too large,
    /// an id already used in the same append.
    static func check(_ e: EventData, ids: inout Set<UUID>, parse: Bool = true) throws {
        guard isValidType(e.type) else {
            throw EventStoreError.invalidInput(field: "type", reason: "must match [A-Za-z][A-Za-z0-9._-]{0,127}")
        }
        guard e.data.text.utf8.count <= maxEventDataBytes else {
            throw EventStoreError.invalidInput(field: "data", reason: "larger than \(maxEventDataBytes) bytes")
        }
        // Text our encoders wrote is well-formed JSON by construction; what comes from elsewhere is parsed,
        // so that one bad event is refused on its own instead of failing the batch it would be sent in.
        let full = parse && !e.data.isEncoded
        if let problem = full ? JSONWriter.problemWithObject(e.data.text) : JSONWriter.problemWithObjectShape(e.data.text) {
            throw EventStoreError.invalidInput(field: "data", reason: problem)
        }
        guard ids.insert(e.id).inserted else {
            throw EventStoreError.invalidInput(field: "id", reason: "an event id appears twice in one append")
        }
    }

    // MARK: Read

    static let columns: SQL = """
        SELECT position, stream, version, id, type, data::text, metadata::text, occurred_at, recorded_at, encode(hash, 'hex')
        FROM events
        """

    /// `columns` with only `keys` of the metadata, each its own column (`metadata -> key`): see `EventFilter.metadataKeys`.
    static func columns(metadataKeys keys: [String]?) -> SQL {
        guard let keys else { return columns }
        var sql = SQL(unsafe: "SELECT position, stream, version, id, type, data::text")
        for key in keys { sql = sql + ", metadata -> \(key)::text" }
        return sql + SQL(unsafe: ", occurred_at, recorded_at, encode(hash, 'hex') FROM events")
    }

    /// The keys a slim read asks for, in the order jsonb prints an object's keys (shorter first, then bytewise), so the
    /// object rebuilt from them reads as the stored one would: `RecordedEvent.actor` finds a leading `actor` as it does there.
    static func jsonbOrder(_ keys: [String]?) -> [String]? {
        keys.map {
            Array(Set($0)).sorted { a, b in a.utf8.count != b.utf8.count ? a.utf8.count < b.utf8.count : a.utf8.lexicographicallyPrecedes(b.utf8) }
        }
    }

    static func decodeEvents(_ result: PostgresResult, metadataKeys keys: [String]? = nil) throws -> [RecordedEvent] {
        var out: [RecordedEvent] = []
        out.reserveCapacity(result.count)
        let extra = (keys?.count ?? 1) - 1
        for i in 0..<result.count {
            let metadata: JSONText
            if let keys {
                // jsonb's own text of each present value, under its key, as jsonb prints an object.
                var text = "{"
                for (k, key) in keys.enumerated() where !result.isNull(i, 6 + k) {
                    if text.utf8.count > 1 { text += ", " }
                    JSONWriter.appendQuoted(key, to: &text)
                    text += ": "
                    text += try result.decode(i, 6 + k, as: String.self)
                }
                text += "}"
                metadata = JSONText(text)
            } else {
                metadata = try result.decode(i, 6)
            }
            out.append(RecordedEvent(
                position: try result.decode(i, 0), stream: try result.decode(i, 1), version: try result.decode(i, 2),
                id: try result.decode(i, 3), type: try result.decode(i, 4), data: try result.decode(i, 5),
                metadata: metadata, occurredAt: try result.decode(i, 7 + extra), recordedAt: try result.decode(i, 8 + extra),
                hash: try result.decode(i, 9 + extra)))
        }
        return out
    }

    /// Reads all events after `position`, in position order, at most `limit`, matching `filter`,
    /// and stopping at `until`.
    public func read(after position: Int64 = 0, limit: Int = 1000, filter: EventFilter = .all, until: ReadLimit = .none) async throws -> [RecordedEvent] {
        try await read(after: position, limit: limit, filter: filter, until: until, through: nil)
    }

    /// `read`, also bounded by position when `through` is set (a window of a batched read).
    private func read(after position: Int64, limit: Int, filter: EventFilter, until: ReadLimit, through: Int64?) async throws -> [RecordedEvent] {
        let keys = Self.jsonbOrder(filter.metadataKeys)
        let sql = Self.readAllSQL(after: position, limit: limit, filter: filter, until: until, metadataKeys: keys, through: through)
        return try await pool.withConnection(retryOnConnectionFailure: true) { c in try Self.decodeEvents(try c.query(sql), metadataKeys: keys) }
    }

    static func readAllSQL(after position: Int64, limit: Int, filter: EventFilter, until: ReadLimit, metadataKeys: [String]? = nil,
                           through: Int64? = nil) -> SQL {
        var sql = columns(metadataKeys: metadataKeys) + " WHERE position > \(position)"
        if let through { sql = sql + " AND position <= \(through)" }
        switch until {
        case .none: break
        case .position(let p): sql = sql + " AND position <= \(p)"
        case .recordedAt(let t): sql = sql + " AND recorded_at <= \(t)"
        }
        if let types = filter.types { sql = sql + " AND type = ANY(\(types)::text[])" }
        if let categories = filter.categories { sql = sql + " AND category = ANY(\(categories)::text[])" }
        if let streams = filter.streams { sql = sql + " AND stream = ANY(\(streams)::text[])" }
        if let actors = filter.actors { sql = sql + " AND metadata->>'actor' = ANY(\(actors)::text[])" }
        return sql + " ORDER BY position LIMIT \(max(0, limit))"
    }

    /// Calls `body` for every event after `position` matching `filter` up to `until`, in position order. Reads
    /// `batchSize` events per statement (no long transaction) and prefetches the next batch while `body` works
    /// through the current one, so reading and folding share the two cores. `afterBatch` gets the last position.
    public func forEach(after position: Int64 = 0, filter: EventFilter = .all, until: ReadLimit = .none, batchSize: Int = 5000,
                        afterBatch: ((Int64) -> Void)? = nil, _ body: (RecordedEvent) throws -> Void) async throws {
        try await forEachBatch(after: position, filter: filter, until: until, batchSize: batchSize, prepare: { _ in () }) { batch in
            for (event, _) in batch { try body(event) }
            if let last = batch.last?.0.position { afterBatch?(last) }
        }
    }

    /// `forEach` a batch at a time, with `prepare` run on each event as part of the prefetch (on another thread than
    /// `body`): a fold decodes batch n+1 while it applies batch n, or hands a batch whole to several folds. `body` gets
    /// what `prepare` returned or threw for each event, in order, so a failure surfaces at its event, after every
    /// event before it.
    public func forEachBatch<Prepared: Sendable>(after position: Int64 = 0, filter: EventFilter = .all, until: ReadLimit = .none,
                                                 batchSize: Int = 5000, prepare: @escaping @Sendable (RecordedEvent) throws -> Prepared,
                                                 _ body: ([(RecordedEvent, Result<Prepared, any Error>)]) async throws -> Void) async throws {
        typealias Batch = (events: [(RecordedEvent, Result<Prepared, any Error>)], next: Int64?)
        // Up to a known position, each read covers a window of `batchSize` positions: whatever plan the server picks
        // (a log just bulk-loaded has no statistics, and a type filter then looks like a bitmap scan of the type index
        // and a sort of every remaining row, per batch), it only ever touches one window.
        // Up to a recorded time, the windows end at the last position recorded by then (one query on the recorded_at
        // index), and each window's read keeps the time's condition too: a log whose clock once stepped back stays exact.
        let end: Int64?
        switch until {
        case .position(let p): end = p
        case .recordedAt(let t):
            end = try await pool.withConnection(retryOnConnectionFailure: true) { c in
                try c.query("SELECT coalesce(max(position), 0) FROM events WHERE recorded_at <= \(t)").decode(0, 0)
            }
        case .none: end = nil
        }
        @Sendable func fetch(_ after: Int64) async throws -> Batch {
            let windowEnd = end.map { min($0, after + Int64(batchSize)) }
            let events = try await self.read(after: after, limit: batchSize, filter: filter, until: until, through: windowEnd).map { event in
                (event, Result { try prepare(event) })
            }
            if let windowEnd, let end { return (events, windowEnd < end ? windowEnd : nil) }
            return (events, events.count == batchSize ? events.last?.0.position : nil)
        }
        var pending: Task<Batch, Error>? = Task { try await fetch(position) }
        while let current = pending {
            let batch = try await current.value
            pending = batch.next.map { next in Task { try await fetch(next) } }
            if !batch.events.isEmpty { try await body(batch.events) }
        }
    }

    public enum Direction: Sendable { case forward, backward }

    /// Reads one stream from `version` (inclusive) forwards, or backwards from it (`Int64.max` for the end).
    public func read(stream: String, from version: Int64 = 1, direction: Direction = .forward, limit: Int = 1000) async throws -> [RecordedEvent] {
        let sql: SQL = direction == .forward
            ? Self.columns + " WHERE stream = \(stream) AND version >= \(version) ORDER BY version LIMIT \(max(0, limit))"
            : Self.columns + " WHERE stream = \(stream) AND version <= \(version) ORDER BY version DESC LIMIT \(max(0, limit))"
        return try await pool.withConnection(retryOnConnectionFailure: true) { c in try Self.decodeEvents(try c.query(sql)) }
    }

    /// The stored event with `id`, if any.
    public func event(id: UUID) async throws -> RecordedEvent? {
        try await events(ids: [id]).first
    }

    /// The stored events among `ids`, in position order (one statement).
    public func events(ids: [UUID]) async throws -> [RecordedEvent] {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            try Self.decodeEvents(try c.query(Self.columns + " WHERE id = ANY(\(ids)::uuid[]) ORDER BY position"))
        }
    }

    /// The stream's current version (0 when it has no events).
    public func version(of stream: String) async throws -> Int64 {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            let r = try c.query("SELECT version FROM streams WHERE stream = \(stream)")
            return r.count == 0 ? 0 : try r.decode(0, 0)
        }
    }

    /// The position of the last committed event (0 for an empty log).
    public func headPosition() async throws -> Int64 {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            try c.query("SELECT position FROM event_head").decode(0, 0)
        }
    }

    /// Numbers for `coordctl status`.
    public struct Summary: Sendable {
        public let headPosition: Int64
        public let streams: Int64
        public let lastRecordedAt: Date?
    }

    public func summary() async throws -> Summary {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            let r = try c.query("""
                SELECT (SELECT position FROM event_head), (SELECT count(*) FROM streams),
                       (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1)
                """)
            return Summary(headPosition: try r.decode(0, 0), streams: try r.decode(0, 1), lastRecordedAt: try r.decodeOptional(0, 2))
        }
    }

    // MARK: Verify

    public struct VerifyReport: Sendable, Equatable {
        /// Events checked.
        public let checked: Int64
        /// The last position found sound.
        public let verifiedThrough: Int64
        /// The first broken position, nil when the chain is sound.
        public let brokenAt: Int64?
        public let problem: String?
        public var isSound: Bool { brokenAt == nil }
    }

    /// Recomputes the hash chain, position contiguity and version contiguity from `position` to the head,
    /// `batch` events per statement (so no long transaction holds back vacuum or other writers).
    /// `progress` is called with the last verified position after each batch.
    public func verify(from position: Int64 = 1, batch: Int64 = 20_000, progress: (@Sendable (Int64) -> Void)? = nil) async throws -> VerifyReport {
        var from = max(1, position)
        var checked: Int64 = 0
        while true {
            let start = from
            let r = try await pool.withConnection(retryOnConnectionFailure: true) { c in
                try c.query("SELECT checked, last_checked, broken_at, problem FROM coord_verify(\(start), \(batch))")
            }
            let n: Int64 = try r.decode(0, 0)
            let last: Int64 = try r.decode(0, 1)
            checked += n
            if let broken: Int64 = try r.decodeOptional(0, 2) {
                return VerifyReport(checked: checked, verifiedThrough: last, brokenAt: broken, problem: try r.decodeOptional(0, 3))
            }
            progress?(last)
            if n < batch { return VerifyReport(checked: checked, verifiedThrough: last, brokenAt: nil, problem: nil) }
            from = last + 1
        }
    }

    // MARK: Subscribe

    /// Every event after `position` matching `filter`, once each, in position order: first the history
    /// in batches, then live as events commit (woken by LISTEN/NOTIFY, polling every `pollInterval`
    /// seconds as a fallback). Connection failures, including a PostgreSQL restart, are retried with
    /// backoff and resume after the last delivered event; `readable` hears when the log stops being readable
    /// (false) and when it is again (true), so a consumer can tell its own clients. Ends when the task is cancelled.
    public func subscribe(after position: Int64, filter: EventFilter = .all, batchSize: Int = 500, pollInterval: Double = 1.0,
                          readable: (@Sendable (Bool) -> Void)? = nil) -> Subscription {
        Subscription(store: self, after: position, filter: filter, batchSize: batchSize, pollInterval: pollInterval, readable: readable)
    }
}

import Foundation

/// One event of an export (`coordctl export events`), as read back: every field kept as exported, times as their
/// text (PostgreSQL parses them, to the microsecond the chain hashes), data and metadata as JSON text.
public struct ExportedEvent: Sendable, Equatable {
    public let line: Int
    public let position: Int64
    public let stream: String
    public let version: Int64
    public let id: UUID
    public let type: String
    public let data: String
    public let metadata: String
    public let occurredAt: String
    public let recordedAt: String
    public let hash: String

    /// Whether a line looks like an exported event (what `coordctl import` of commands refuses, saying what to run).
    public static func looksExported(_ text: String) -> Bool {
        guard let v = try? JSONValue.parse(Data(text.utf8)) else { return false }
        return v["position"] != nil && v["hash"] != nil && v["stream"] != nil && v["command"] == nil
    }

    /// Parses line number `line` of an export; throws `RestoreError.invalid` naming what is wrong.
    public init(line: Int, text: String) throws {
        guard let v = try? JSONValue.parse(Data(text.utf8)), v.keys != nil else { throw RestoreError.invalid(line: line, reason: "not a JSON object") }
        func string(_ key: String) throws -> String {
            guard case .string(let s)? = v[key] else { throw RestoreError.invalid(line: line, reason: "\(key) missing or not a string") }
            return s
        }
        func integer(_ key: String) throws -> Int64 {
            guard case .number(let n)? = v[key], n.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let i = Int64(n), i > 0 else {
                throw RestoreError.invalid(line: line, reason: "\(key) missing or not a positive whole number")
            }
            return i
        }
        func object(_ key: String) throws -> String {
            guard let o = v[key], o.keys != nil else { throw RestoreError.invalid(line: line, reason: "\(key) missing or not an object") }
            return o.json
        }
        guard let id = UUID(uuidString: try string("id")) else { throw RestoreError.invalid(line: line, reason: "id is not a UUID") }
        let (occurred, recorded, hash) = (try string("occurred_at"), try string("recorded_at"), try string("hash"))
        guard Timestamp.parse(occurred) != nil, Timestamp.parse(recorded) != nil else {
            throw RestoreError.invalid(line: line, reason: "occurred_at and recorded_at must be RFC 3339 times")
        }
        guard hash.utf8.count == 64, Hex.bytes(hash.utf8) != nil else { throw RestoreError.invalid(line: line, reason: "hash is not 32 bytes of hex") }
        let stream = try string("stream"), type = try string("type")
        guard EventStore.isValidStreamName(stream), EventStore.isValidType(type) else {
            throw RestoreError.invalid(line: line, reason: "stream or type is not a valid name")
        }
        (self.line, self.position, self.stream, self.version, self.id, self.type) = (line, try integer("position"), stream, try integer("version"), id, type)
        (self.data, self.metadata, self.occurredAt, self.recordedAt, self.hash) = (try object("data"), try object("metadata"), occurred, recorded, hash.lowercased())
    }
}

/// Why a restore refused a file. Nothing of the file was written.
public enum RestoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A line is not an exported event.
    case invalid(line: Int, reason: String)
    /// A line's event does not chain from the one before it (its content or hash was changed), or its position is
    /// not the next one.
    case broken(line: Int, position: Int64, reason: String)
    /// The file's events overlap the log but differ from what it holds: it is not a continuation of this log.
    case diverges(line: Int, position: Int64)
    /// Someone appended to the log while it was being restored.
    case logMoved

    public var description: String {
        switch self {
        case let .invalid(line, reason): return "line \(line): \(reason); nothing was written"
        case let .broken(line, position, reason): return "line \(line) (position \(position)): \(reason); nothing was written"
        case let .diverges(line, position):
            return "line \(line): position \(position) differs from the event the log holds there: the file does not continue this log; nothing was written"
        case .logMoved: return "the log was appended to during the restore: stop every writer (coordd) and run it again"
        }
    }
}

extension EventStore {
    public struct RestoreReport: Sendable, Equatable {
        /// Events written.
        public var restored = 0
        /// Events the log already held, identical (a restore run again).
        public var alreadyPresent = 0
    }

    /// Restores an export into this log, keeping every event's position, hash and recorded time.
    ///
    /// The whole file is verified first, in batches, without writing: positions follow each other from the
    /// first, every hash is recomputed by PostgreSQL and must be the file's (one changed quantity breaks it), and
    /// where the file overlaps the log it must be identical to it (a restore run again writes nothing; a file of
    /// another log is refused). Only then are the new events written, each batch re-checked under the append
    /// locks, with `streams` and the head moved to match. Needs INSERT on `events`: run it as the owner, with no
    /// coordd writing.
    public func restore(_ events: [ExportedEvent], batchSize: Int = 5000, progress: ((Int) -> Void)? = nil) async throws -> RestoreReport {
        var report = RestoreReport()
        guard !events.isEmpty else { return report }
        let start = try await chainHead()
        let redactions = Self.redactions(listedIn: events)
        // Pass 1: verify everything, write nothing.
        var prev: (position: Int64, hash: String) = (events[0].position - 1, "")
        for batch in stride(from: 0, to: events.count, by: batchSize).map({ Array(events[$0..<min($0 + batchSize, events.count)]) }) {
            prev = try await check(batch, after: prev, head: start, redactions: redactions)
            progress?(batch.last!.line)
        }
        // Pass 2: write what the log does not hold yet.
        var before = ""
        for batch in stride(from: 0, to: events.count, by: batchSize).map({ Array(events[$0..<min($0 + batchSize, events.count)]) }) {
            let (written, present) = try await write(batch, after: before, redactions: redactions)
            report.restored += written
            report.alreadyPresent += present
            before = batch.last!.hash
        }
        if !redactions.isEmpty {
            // The redactions the file's events list, registered as coord_redact does: coord_verify proves them.
            let positions = redactions.keys.sorted()
            try await pool.withConnection { c in
                try c.query("""
                    INSERT INTO event_redactions (position, content_digest, by_position)
                    SELECT p, decode(d, 'hex'), b FROM unnest(\(positions)::bigint[], \(positions.map { redactions[$0]!.digest })::text[],
                                                           \(positions.map { redactions[$0]!.by })::bigint[]) AS r(p, d, b)
                    WHERE EXISTS (SELECT 1 FROM events e WHERE e.position = r.b)
                    ON CONFLICT (position) DO NOTHING
                    """)
            }
        }
        try await refreshStatistics()
        return report
    }

    /// After a bulk load (a restore, an import): VACUUM (ANALYZE) of the log. The statistics let the next reads (a
    /// rebuild's batches, above all) be planned for the log as it now is, not as an empty one (an index scan over
    /// every remaining row and a sort on disk); the vacuum sets the freshly written rows' hint bits and visibility
    /// once, instead of every first reader writing them. docs/BENCHMARKS.md has the figures. A role that does not
    /// own the tables gets a warning from PostgreSQL, not an error. Not inside a transaction (VACUUM cannot be).
    public func refreshStatistics() async throws {
        try await pool.withConnection { c in
            try c.execute(unsafe: "VACUUM (ANALYZE) events")
            try c.execute(unsafe: "VACUUM (ANALYZE) streams")
        }
    }

    private static let stagingTable = """
        CREATE TEMP TABLE IF NOT EXISTS coord_restore (
            line int NOT NULL, position bigint NOT NULL, stream text NOT NULL, version bigint NOT NULL, id uuid NOT NULL,
            type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL, occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL, hash bytea NOT NULL
        ) ON COMMIT DELETE ROWS
        """

    private static func copyRows(_ batch: [ExportedEvent]) -> [String] {
        batch.map { e in
            ["\(e.line)", "\(e.position)", e.stream, "\(e.version)", e.id.lowercasedString, e.type, CopyText.escape(e.data), CopyText.escape(e.metadata),
             e.occurredAt, e.recordedAt, "\\\\x" + e.hash].joined(separator: "\t")
        }
    }

    /// Verifies one batch after `prev` (the file's previous event; the first batch's is the log's event before
    /// it, or nothing at position 0). Returns the batch's last position and hash.
    /// The redactions (docs/EVENT_STORE.md, "Redaction") the file's events list: redacted position → (digest of its
    /// content, the listing event's position). A listing is believed as far as the chain proves the listing event.
    static func redactions(listedIn events: [ExportedEvent]) -> [Int64: (digest: String, by: Int64)] {
        var out: [Int64: (digest: String, by: Int64)] = [:]
        let key = Array("\"redactions\"".utf8)
        // A byte search: every event of the file passes here, and Foundation's `contains` is slow on a large log.
        for e in events where { var d = e.data; return d.withUTF8 { ByteSearch.find(key, in: $0) != nil } }() {
            guard let value = try? JSONValue.parse(Data(e.data.utf8)), case .array(let list)? = value["redactions"] else { continue }
            for r in list {
                guard case .number(let p)? = r["position"], let position = Int64(p), position < e.position,
                      case .string(let digest)? = r["digest"], digest.utf8.count == 64 else { continue }
                out[position] = (digest.lowercased(), e.position)
            }
        }
        return out
    }

    private func check(_ batch: [ExportedEvent], after prev: (position: Int64, hash: String), head: ChainHead,
                       redactions: [Int64: (digest: String, by: Int64)]) async throws -> (position: Int64, hash: String) {
        let redacted = batch.map(\.position).filter { redactions[$0] != nil }
        let digests = redacted.map { redactions[$0]!.digest }
        return try await pool.withConnection { c in
            try c.transaction { c in
                try c.execute(unsafe: Self.stagingTable)
                try c.copyIn("COPY coord_restore FROM STDIN", rows: Self.copyRows(batch))
                // Positions: one after the other, from the one after `prev`.
                let gap = try c.query("""
                    SELECT s.line, s.position FROM (SELECT line, position, row_number() OVER (ORDER BY line) AS n FROM coord_restore) s
                    WHERE s.position <> \(prev.position) + s.n ORDER BY s.line LIMIT 1
                    """)
                if let row = gap.first {
                    throw RestoreError.broken(line: try row.decode(0), position: try row.decode(1), reason: "position is not the next one")
                }
                // Where the log already has the position, the event must be the log's own.
                let diverging = try c.query("""
                    SELECT s.line, s.position FROM coord_restore s JOIN events e ON e.position = s.position
                    WHERE e.hash <> s.hash OR e.id <> s.id ORDER BY s.line LIMIT 1
                    """)
                if let row = diverging.first { throw RestoreError.diverges(line: try row.decode(0), position: try row.decode(1)) }
                // The chain: each hash recomputed from the one before it (the file's, or the log's at the first).
                let before = prev.hash.isEmpty
                    ? (prev.position == 0 ? String(repeating: "0", count: 64)
                        : try c.query("SELECT encode(hash, 'hex') FROM events WHERE position = \(prev.position)").first?.decode(0, as: String.self))
                    : prev.hash
                guard let before else {
                    throw RestoreError.broken(line: batch[0].line, position: batch[0].position,
                                              reason: "the log holds \(head.position) events: the file must start at position \(head.position + 1) or before")
                }
                // A redacted event is proved by the digest its listing event holds; the chain runs on from its hash.
                let broken = try c.query("""
                    SELECT s.line, s.position FROM coord_restore s LEFT JOIN coord_restore p ON p.position = s.position - 1
                    WHERE s.hash <> coord_event_hash(coalesce(p.hash, decode(\(before), 'hex')), s.position, s.stream, s.version, s.id, s.type,
                                                     s.data, s.metadata, s.occurred_at, s.recorded_at)
                      AND coalesce(encode(sha256(coord_event_content(s.position, s.stream, s.version, s.id, s.type, s.data, s.metadata,
                                                                     s.occurred_at, s.recorded_at)), 'hex')
                                   <> (\(digests)::text[])[array_position(\(redacted)::bigint[], s.position)], true)
                    ORDER BY s.line LIMIT 1
                    """)
                if let row = broken.first {
                    throw RestoreError.broken(line: try row.decode(0), position: try row.decode(1),
                                              reason: "its hash is not the chain's: the event or the one before it was changed")
                }
                return (batch.last!.position, batch.last!.hash)
            }
        }
    }

    /// Writes a verified batch's events the log does not hold, under the bulk lock and the head row: nobody appends
    /// in between, and the head must be where the batch starts (else `RestoreError.logMoved`).
    private func write(_ batch: [ExportedEvent], after previous: String,
                       redactions: [Int64: (digest: String, by: Int64)]) async throws -> (written: Int, present: Int) {
        try await pool.withConnection { c in
            try c.transaction { c in
                try c.query("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.coord_bulk_append', 11))")
                let head: Int64 = try c.query("SELECT position FROM event_head FOR UPDATE").decode(0, 0)
                let fresh = batch.filter { $0.position > head }
                guard !fresh.isEmpty else { return (0, batch.count) }
                guard fresh[0].position == head + 1 else { throw RestoreError.logMoved }
                try c.execute(unsafe: Self.stagingTable)
                try c.copyIn("COPY coord_restore FROM STDIN", rows: Self.copyRows(fresh))
                let chained: Bool
                if redactions[fresh[0].position] != nil {
                    // A redacted event's hash cannot be recomputed: the head must be the hash it chained from in the file.
                    let index = batch.firstIndex { $0.position == fresh[0].position }!
                    let expected = index > 0 ? batch[index - 1].hash : previous
                    chained = try expected.isEmpty || c.query("SELECT encode(hash, 'hex') FROM event_head").decode(0, 0, as: String.self) == expected
                } else {
                    chained = try c.query("""
                        SELECT s.hash = coord_event_hash((SELECT hash FROM event_head), s.position, s.stream, s.version, s.id, s.type, s.data,
                                                         s.metadata, s.occurred_at, s.recorded_at)
                        FROM coord_restore s ORDER BY s.position LIMIT 1
                        """).decode(0, 0)
                }
                guard chained else { throw RestoreError.logMoved }
                try c.query("""
                    INSERT INTO events (position, stream, version, id, type, data, metadata, occurred_at, recorded_at, hash)
                    SELECT position, stream, version, id, type, data, metadata, occurred_at, recorded_at, hash FROM coord_restore ORDER BY position
                    """)
                try c.query("""
                    UPDATE event_head SET position = l.position, hash = l.hash
                    FROM (SELECT position, hash FROM coord_restore ORDER BY position DESC LIMIT 1) l
                    """)
                try c.query("""
                    INSERT INTO streams AS t (stream, version, first_position, last_position, updated_at)
                    SELECT stream, max(version), min(position), max(position), max(recorded_at) FROM coord_restore GROUP BY stream
                    ON CONFLICT ON CONSTRAINT streams_pkey DO UPDATE
                        SET version = excluded.version, last_position = excluded.last_position, updated_at = excluded.updated_at
                    """)
                try c.query("SELECT pg_notify('coord_events', (SELECT position FROM event_head)::text)")
                return (fresh.count, batch.count - fresh.count)
            }
        }
    }
}

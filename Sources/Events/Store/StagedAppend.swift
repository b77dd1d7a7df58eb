import Foundation

/// What a staged bulk append did.
public enum StagedAppendOutcome: Sendable, Equatable {
    /// Every event was written, at positions `first...last`.
    case appended(first: Int64, last: Int64)
    /// A stream was not at the version the batch was decided on (another writer came first): nothing written.
    case conflict(stream: String)
    /// An event id of the batch is already stored: nothing written.
    case duplicate(eventID: String)
}

extension EventStore {
    /// Most events in one staged append.
    public static let maxEventsPerStagedAppend = 100_000

    /// Appends a large batch of consecutive appends in one transaction, for bulk imports: the events are
    /// COPYed into a temporary table and written by `coord_append_staged` with the same guarantees as
    /// `append` (per-stream version checks under the streams' locks, gapless positions, the hash chain
    /// computed by PostgreSQL). Unlike `append`, a stream may appear several times, once per command that
    /// wrote to it, each with the expected version the previous one left. All or nothing: on a conflict or
    /// an already stored id, nothing is written and the outcome says why.
    ///
    /// Every expected version must be `.exact` or `.noStream`: a staged batch is decided in advance.
    /// Event data is checked for shape here and parsed by PostgreSQL: text that is not JSON fails the whole
    /// batch with a server error, and nothing is written.
    public func appendStaged(_ appends: [StreamAppend]) async throws -> StagedAppendOutcome {
        let rows = try Self.stagedRows(appends)
        return try await pool.withConnection { c in
            try c.transaction { c in
                try c.execute(unsafe: """
                    CREATE TEMP TABLE IF NOT EXISTS coord_staging (
                        ord int NOT NULL, stream text NOT NULL, version bigint NOT NULL, id uuid NOT NULL, type text NOT NULL,
                        data jsonb NOT NULL, metadata jsonb NOT NULL, occurred_at timestamptz NOT NULL
                    ) ON COMMIT DELETE ROWS
                    """)
                try c.copyIn("COPY coord_staging (ord, stream, version, id, type, data, metadata, occurred_at) FROM STDIN", rows: rows)
                let r = try c.query("SELECT outcome, detail, first_position, last_position FROM coord_append_staged()")
                let outcome: String = try r.decode(0, 0)
                switch outcome {
                case "ok": return .appended(first: try r.decode(0, 2), last: try r.decode(0, 3))
                case "conflict": return .conflict(stream: try r.decode(0, 1))
                default: return .duplicate(eventID: try r.decode(0, 1))
                }
            }
        }
    }

    /// COPY lines for `appends`, numbered 1...n, with each event's stream version; validates like `append`.
    static func stagedRows(_ appends: [StreamAppend]) throws -> [String] {
        var versions: [String: Int64] = [:]
        var ids = Set<UUID>()
        var rows: [String] = []
        rows.reserveCapacity(appends.count)
        for a in appends {
            guard isValidStreamName(a.stream) else {
                throw EventStoreError.invalidInput(field: "stream", reason: "must match [A-Za-z0-9][A-Za-z0-9._:@+/=-]{0,199}")
            }
            let base: Int64
            switch a.expected {
            case .exact(let v) where v >= 0: base = v
            case .noStream: base = 0
            default: throw EventStoreError.invalidInput(field: "expected", reason: "a staged append needs an exact expected version")
            }
            if let running = versions[a.stream], running != base {
                throw EventStoreError.wrongExpectedVersion(stream: a.stream, expected: a.expected, actual: running)
            }
            var version = base
            for e in a.events {
                try check(e, ids: &ids, parse: false)  // PostgreSQL's jsonb input parses it in the COPY
                version += 1
                let fields = [String(rows.count + 1), CopyText.escape(a.stream), String(version), e.id.lowercasedString,
                              e.type, CopyText.escape(e.data.text), CopyText.escape(e.metadataJSON), Timestamp.format(e.occurredAt)]
                rows.append(fields.joined(separator: "\t"))
            }
            versions[a.stream] = version
        }
        guard !rows.isEmpty else { throw EventStoreError.invalidInput(field: "events", reason: "an append needs at least one event") }
        guard rows.count <= maxEventsPerStagedAppend else {
            throw EventStoreError.invalidInput(field: "events", reason: "more than \(maxEventsPerStagedAppend) events in one staged append")
        }
        return rows
    }
}

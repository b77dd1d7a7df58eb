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

/// Where the log's hash chain ends: the last position, its hash (hex) and its recorded time (µs since the epoch).
/// A batch chained from a head (`PreparedStagedAppend.predicted`, `coord_bulk_begin`'s answer) carries the time
/// its own events are recorded at instead; its `end` is then a head again.
public struct ChainHead: Sendable, Equatable {
    public var position: Int64
    public var hash: String
    public var recordedMicros: Int64
}

/// A batch for `EventStore.appendStaged`, validated and rendered, with its hash chain computed from a predicted
/// head when every event's JSON could be rendered as PostgreSQL prints it (`JSONBText`). Built by
/// `EventStore.prepareStaged`, off the connection, while the previous batch is being written.
public struct PreparedStagedAppend: Sendable {
    /// Every event's COPY text without position, recorded time and hash, back to back:
    /// `stream \t version \t id \t type \t data \t metadata \t occurred_at`; event k is `bodies[bodyEnds[k-1]..<bodyEnds[k]]`.
    let bodies: [UInt8]
    let bodyEnds: [Int]
    /// Every event's bytes the chain hashes after the position and before the recorded time, back to back
    /// (`\u{1f}stream\u{1f}version\u{1f}id\u{1f}type\u{1f}data::text\u{1f}metadata::text\u{1f}occurred\u{1f}`); nil
    /// when an event's JSON could not be rendered, and PostgreSQL computes the chain.
    let hashInputs: [UInt8]?
    let hashInputEnds: [Int]
    /// Offsets (0-based) of the events PostgreSQL re-checks the hashes of: the first of each type (events of
    /// a type share their shape) and any whose data has an escape.
    let checks: [Int]
    /// Per stream, in first-appearance order: the version the batch expects, its last version, and the
    /// offsets of its first and last events.
    let streams: [(stream: String, base: Int64, version: Int64, first: Int, last: Int)]
    let ids: [UUID]
    /// The chain as predicted: the hashes (hex) from `predicted`, and where it ends.
    var predicted: ChainHead?
    var hashes: [String] = []
    /// The COPY text for `predicted` (see `rows(from:hashes:)`).
    var payload: [UInt8] = []

    public var count: Int { bodyEnds.count }
    /// Where the chain ends if this batch is written right after the predicted head.
    public var end: ChainHead? {
        guard let p = predicted, let last = hashes.last else { return nil }
        return ChainHead(position: p.position + Int64(count), hash: last, recordedMicros: p.recordedMicros)
    }

    func body(_ k: Int) -> ArraySlice<UInt8> { bodies[(k == 0 ? 0 : bodyEnds[k - 1])..<bodyEnds[k]] }

    /// The chain from `head`, every event recorded at `recordedMicros`.
    func chain(from head: ChainHead, recordedMicros: Int64) -> [String] {
        guard let inputs = hashInputs else { return [] }
        let recorded = Array(String(recordedMicros).utf8)
        var prev = Hex.bytes(head.hash.utf8) ?? []  // not hex: the chain cannot match, and coord_bulk_finish says so
        var buffer: [UInt8] = []
        var out: [String] = []
        out.reserveCapacity(hashInputEnds.count)
        var start = 0
        for (k, end) in hashInputEnds.enumerated() {
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: prev)
            appendDecimal(head.position + Int64(k) + 1, to: &buffer)
            buffer.append(contentsOf: inputs[start..<end])
            buffer.append(contentsOf: recorded)
            prev = buffer.withUnsafeBufferPointer { SHA256.hash($0) }
            out.append(Hex.string(prev))
            start = end
        }
        return out
    }

    /// The COPY text of every event at positions after `head`, recorded at its time, with `hashes`.
    func rows(from head: ChainHead, hashes: [String]) -> [UInt8] {
        let recorded = Array(("\t" + Timestamp.format(micros: head.recordedMicros) + "\t\\\\x").utf8)
        return copyText(firstNumber: head.position + 1, extra: recorded.count + 64) { k, out in
            out.append(contentsOf: recorded)
            out.append(contentsOf: hashes[k].utf8)
        }
    }

    /// The COPY text for `coord_staging`: each event numbered from 1.
    func stagingRows() -> [UInt8] {
        copyText(firstNumber: 1, extra: 0) { _, _ in }
    }

    /// One line per event: its number (from `firstNumber`), a tab, its body, then what `suffix` appends.
    private func copyText(firstNumber: Int64, extra: Int, suffix: (Int, inout [UInt8]) -> Void) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bodies.count + count * (extra + 12))
        for k in 0..<count {
            appendDecimal(firstNumber + Int64(k), to: &out)
            out.append(0x09)
            out.append(contentsOf: body(k))
            suffix(k, &out)
            out.append(0x0a)
        }
        return out
    }
}

/// Appends `value`'s decimal digits (a small string: no allocation).
func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
    out.append(contentsOf: String(value).utf8)
}

extension EventStore {
    /// Most events in one staged append.
    public static let maxEventsPerStagedAppend = 100_000

    /// Appends a large batch of consecutive appends in one transaction, for bulk imports, with the same
    /// guarantees as `append` (per-stream version checks, gapless positions, the hash chain). Unlike
    /// `append`, a stream may appear several times, once per command that wrote to it, each with the expected
    /// version the previous one left. All or nothing: on a conflict or an already stored id, nothing is
    /// written and the outcome says why.
    ///
    /// Every expected version must be `.exact` or `.noStream`: a staged batch is decided in advance.
    public func appendStaged(_ appends: [StreamAppend]) async throws -> StagedAppendOutcome {
        try await appendStaged(Self.prepareStaged(appends, after: nil)).outcome
    }

    /// Validates and renders `appends` for `appendStaged`, and computes their hash chain as if written right
    /// after `predicted` (pass the previous batch's `end`; nil when unknown). Pure computation.
    public static func prepareStaged(_ appends: [StreamAppend], after predicted: ChainHead?) throws -> PreparedStagedAppend {
        var versions: [String: Int] = [:]  // stream -> index in streams
        var streams: [(stream: String, base: Int64, version: Int64, first: Int, last: Int)] = []
        var ids = Set<UUID>()
        var idList: [UUID] = []
        var bodies: [UInt8] = []
        var bodyEnds: [Int] = []
        var inputs: [UInt8] = []
        var inputEnds: [Int] = []
        var chained = true
        var checks: [Int] = []
        var checkedTypes = Set<String>()
        var id = [UInt8](repeating: 0, count: 36)
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
            let slot: Int
            if let known = versions[a.stream] {
                guard streams[known].version == base else {
                    throw EventStoreError.wrongExpectedVersion(stream: a.stream, expected: a.expected, actual: streams[known].version)
                }
                slot = known
            } else {
                slot = streams.count
                versions[a.stream] = slot
                streams.append((a.stream, base, base, bodyEnds.count, bodyEnds.count))
            }
            for e in a.events {
                try check(e, ids: &ids, parse: false)  // PostgreSQL's jsonb input parses it in the COPY
                streams[slot].version += 1
                streams[slot].last = bodyEnds.count
                id.withUnsafeMutableBufferPointer { _ = e.id.appendLowercased(to: $0) }
                let occurredMicros = Timestamp.micros(e.occurredAt)
                let occurred = occurredMicros.map { Timestamp.format(micros: $0) } ?? Timestamp.format(e.occurredAt)
                // stream, version, id and type need no COPY escapes (validated names, digits, hex).
                let from = bodies.count
                bodies.append(contentsOf: a.stream.utf8)
                bodies.append(0x09)
                appendDecimal(streams[slot].version, to: &bodies)
                bodies.append(0x09)
                bodies.append(contentsOf: id)
                bodies.append(0x09)
                bodies.append(contentsOf: e.type.utf8)
                let named = from..<bodies.count  // the chain joins the same four fields with \u{1f}
                bodies.append(0x09)
                CopyText.append(e.data.text, to: &bodies)
                bodies.append(0x09)
                CopyText.append(e.metadataJSON, to: &bodies)
                bodies.append(0x09)
                bodies.append(contentsOf: occurred.utf8)
                bodyEnds.append(bodies.count)
                idList.append(e.id)

                guard chained else { continue }
                let mark = inputs.count
                inputs.append(0x1f)
                for b in bodies[named] { inputs.append(b == 0x09 ? 0x1f : b) }
                inputs.append(0x1f)
                guard let occurredMicros, JSONBText.append(e.data.text, to: &inputs) else {
                    chained = false  // PostgreSQL chains this batch
                    inputs.removeSubrange(mark...)
                    continue
                }
                inputs.append(0x1f)
                e.metadata.appendJSONB(to: &inputs)
                inputs.append(0x1f)
                appendDecimal(occurredMicros, to: &inputs)
                inputs.append(0x1f)
                inputEnds.append(inputs.count)
                if e.data.text.utf8.contains(0x5c) || checkedTypes.insert(e.type).inserted { checks.append(bodyEnds.count - 1) }
            }
        }
        guard !bodyEnds.isEmpty else { throw EventStoreError.invalidInput(field: "events", reason: "an append needs at least one event") }
        guard bodyEnds.count <= maxEventsPerStagedAppend else {
            throw EventStoreError.invalidInput(field: "events", reason: "more than \(maxEventsPerStagedAppend) events in one staged append")
        }
        var prepared = PreparedStagedAppend(bodies: bodies, bodyEnds: bodyEnds, hashInputs: chained ? inputs : nil,
                                            hashInputEnds: chained ? inputEnds : [], checks: checks, streams: streams, ids: idList)
        if let predicted, chained {
            let recorded = max(Timestamp.micros(Date()) ?? 0, predicted.recordedMicros)
            prepared.predicted = ChainHead(position: predicted.position, hash: predicted.hash, recordedMicros: recorded)
            prepared.hashes = prepared.chain(from: prepared.predicted!, recordedMicros: recorded)
            prepared.payload = prepared.rows(from: prepared.predicted!, hashes: prepared.hashes)
        }
        return prepared
    }

    /// Writes a prepared batch: straight into `events` with the chain computed here when the batch has one
    /// (`coord_bulk_begin`, COPY, `coord_bulk_finish`), else through a temporary table with the chain computed
    /// by PostgreSQL (`coord_append_staged`). Returns the outcome and, when written, where the chain ends.
    public func appendStaged(_ batch: PreparedStagedAppend) async throws -> (outcome: StagedAppendOutcome, end: ChainHead?) {
        if batch.hashInputs != nil {
            do {
                return try await appendDirect(batch)
            } catch let error as PostgresError where error.sqlState == "XX001" {
                // The precomputed chain disagrees with PostgreSQL's: nothing was written; let PostgreSQL chain it.
            }
        }
        return (try await appendThroughStaging(batch), nil)
    }

    private func appendDirect(_ batch: PreparedStagedAppend) async throws -> (outcome: StagedAppendOutcome, end: ChainHead?) {
        let streamNames = batch.streams.map(\.stream)
        let bases = batch.streams.map(\.base)
        let guess = batch.predicted ?? ChainHead(position: -1, hash: "", recordedMicros: Timestamp.micros(Date()) ?? 0)
        let written: Result<ChainHead, StagedConflict> = try await pool.withConnection { c in
            do {
                return .success(try c.transaction { c in
                    let r = try c.query("""
                        SELECT conflict, head_position, head_hash, coord_micros(recorded_at)::bigint
                        FROM coord_bulk_begin(\(streamNames)::text[], \(bases)::bigint[], \(guess.position), \(guess.hash),
                                              \(Timestamp.format(micros: guess.recordedMicros))::timestamptz)
                        """)
                    if let stream = try r.decodeOptional(0, 0, as: String.self) { throw StagedConflict.stream(stream) }
                    let head = ChainHead(position: try r.decode(0, 1), hash: try r.decode(0, 2), recordedMicros: try r.decode(0, 3))
                    var hashes = batch.hashes
                    var payload = batch.payload
                    if head != batch.predicted {
                        hashes = batch.chain(from: head, recordedMicros: head.recordedMicros)
                        payload = batch.rows(from: head, hashes: hashes)
                    }
                    let base = head.position
                    do {
                        try c.copyIn("COPY events (position, stream, version, id, type, data, metadata, occurred_at, recorded_at, hash) FROM STDIN",
                                     text: payload)
                    } catch let error as PostgresError where error.sqlState == "23505" && error.constraint == "events_id_key" {
                        throw StagedConflict.duplicate
                    }
                    let checks = batch.checks.map { base + Int64($0) + 1 }
                    try c.query("""
                        SELECT coord_bulk_finish(\(base + 1), \(base + Int64(batch.count)), \(hashes[batch.count - 1]), \(checks)::bigint[],
                                                 \(streamNames)::text[], \(batch.streams.map(\.version))::bigint[],
                                                 \(batch.streams.map { base + Int64($0.first) + 1 })::bigint[],
                                                 \(batch.streams.map { base + Int64($0.last) + 1 })::bigint[])
                        """)
                    return ChainHead(position: base + Int64(batch.count), hash: hashes[batch.count - 1], recordedMicros: head.recordedMicros)
                })
            } catch let conflict as StagedConflict {
                return .failure(conflict)
            }
        }
        switch written {
        case .success(let end): return (.appended(first: end.position - Int64(batch.count) + 1, last: end.position), end)
        case .failure(.stream(let stream)): return (.conflict(stream: stream), nil)
        case .failure(.duplicate): return (.duplicate(eventID: try await storedID(of: batch.ids)), nil)
        }
    }

    private enum StagedConflict: Error { case stream(String), duplicate }

    /// Where the chain ends now: a bulk import's first prediction.
    public func chainHead() async throws -> ChainHead {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            let r = try c.query("""
                SELECT h.position, encode(h.hash, 'hex'), coalesce(coord_micros(e.recorded_at)::bigint, 0)
                FROM event_head h LEFT JOIN events e ON e.position = h.position
                """)
            return ChainHead(position: try r.decode(0, 0), hash: try r.decode(0, 1), recordedMicros: try r.decode(0, 2))
        }
    }

    /// The first of `ids` already stored.
    private func storedID(of ids: [UUID]) async throws -> String {
        try await pool.withConnection { c in
            let r = try c.query("SELECT id::text FROM events WHERE id = ANY(\(ids)::uuid[]) ORDER BY position LIMIT 1")
            return r.count > 0 ? try r.decode(0, 0) : ""
        }
    }

    /// The v3 path: COPY into the session's temporary `coord_staging`, then `coord_append_staged`.
    private func appendThroughStaging(_ batch: PreparedStagedAppend) async throws -> StagedAppendOutcome {
        try await pool.withConnection { c in
            try c.transaction { c in
                try c.execute(unsafe: """
                    CREATE TEMP TABLE IF NOT EXISTS coord_staging (
                        ord int NOT NULL, stream text NOT NULL, version bigint NOT NULL, id uuid NOT NULL, type text NOT NULL,
                        data jsonb NOT NULL, metadata jsonb NOT NULL, occurred_at timestamptz NOT NULL
                    ) ON COMMIT DELETE ROWS
                    """)
                try c.copyIn("COPY coord_staging (ord, stream, version, id, type, data, metadata, occurred_at) FROM STDIN",
                             text: batch.stagingRows())
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
}

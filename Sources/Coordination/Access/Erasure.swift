import Events
import Foundation

/// Erasure of a person's personal data (`coordctl people erase`; docs/PRIVACY.md, "Erasure").
///
/// 1. The person's events that hold personal data get a redacted form: each personal field that holds text holds
///    `[erased]` instead. The digest of each redacted event's content is computed by PostgreSQL.
/// 2. `person.erased` is appended to the person's stream (after their last event: the expected version is checked),
///    listing every redaction with its digest, and who, when and why: the log records the erasure, not the data.
/// 3. `coord_redact` replaces each event's data, in one transaction, only as the erasure event lists it. The stored
///    hashes stay, so the chain is whole and `coordctl verify` passes: a redacted event is proved by the digest the
///    later, hash-chained erasure event holds.
/// 4. The rest of the database: command receipts that quote the data, and the read models (which the surge
///    projection also clears when it reaches the erasure event), then VACUUM of those tables.
///
/// Run again after a failure between 2 and 4, it finishes what the recorded erasure lists.
public enum Erasure {
    public struct Outcome: Sendable {
        /// Position of the `person.erased` event.
        public let position: Int64
        /// Events whose data was redacted.
        public let redacted: Int
        /// Command receipts cleared of the data.
        public let receipts: Int
        /// True when the person had been erased before (this run only finished what that erasure recorded).
        public let already: Bool
    }

    /// Erases `person`'s personal data. `full`: VACUUM FULL the touched tables (rewrites them, so no old row version
    /// stays in their files; it locks them meanwhile); else a plain VACUUM.
    public static func erase(person: String, reason: String, actor: String, store: EventStore, full: Bool = false) async throws -> Outcome {
        var v = Validator()
        v.id(person, "person")
        v.text(reason, "reason", max: 1000)
        v.text(actor, "actor")
        try v.check()
        let stream = Streams.person(person)
        let events = try await store.read(stream: stream, from: 1, limit: 100_000)
        guard !events.isEmpty else { throw DomainError.notFound(kind: "person", id: person) }
        // The values to erase everywhere else (receipts, read models): every personal text the log held of them.
        var values = Set<String>()
        var erasure: (position: Int64, event: PersonErased)?
        var targets: [(position: Int64, data: String)] = []
        for event in events {
            if event.type == PersonErased.eventType, case .personErased(let e) = try EventCodec.decode(event) { erasure = (event.position, e) }
            guard let fields = PersonalData.eventFields[event.type], var value = try? JSONValue.parse(Data(event.data.text.utf8)) else { continue }
            var changed = false
            for f in fields.sorted() {
                guard case .string(let text)? = value[f], text != PersonalData.erasedMark else { continue }
                values.insert(text)
                value = value.setting(f, .string(PersonalData.erasedMark))
                changed = true
            }
            if changed { targets.append((event.position, value.json)) }
        }
        let already = erasure != nil
        if erasure == nil {
            let redactions = try await digests(targets, store: store)
            let e = PersonErased(person: person, reason: reason, redactions: redactions)
            let data = try EventCodec.event(e, id: UUID.random(), metadata: EventMetadata(actor: actor, source: "coordctl"), occurredAt: Date())
            let result = try await store.append([data], to: stream, expected: .exact(events.last!.version))
            erasure = (result.streams[0].lastPosition, e)
        }
        let (by, recorded) = erasure!
        let listed = Set(recorded.redactions.map(\.position))
        let apply = targets.filter { listed.contains($0.position) }
        try await store.pool.withConnection { c in
            try c.transaction { c in
                for t in apply { try c.query("SELECT coord_redact(\(t.position), \(t.data)::jsonb, \(by))") }
            }
        }
        let receipts = try await scrub(values: values, person: person, pool: store.pool, full: full)
        return Outcome(position: by, redacted: apply.count, receipts: receipts, already: already)
    }

    /// The digest of each redacted event's content, as PostgreSQL hashes it.
    static func digests(_ targets: [(position: Int64, data: String)], store: EventStore) async throws -> [PersonErased.Redaction] {
        try await store.pool.withConnection { c in
            try targets.map { t in
                let digest: String = try c.query("""
                    SELECT encode(sha256(coord_event_content(position, stream, version, id, type, \(t.data)::jsonb, metadata, occurred_at, recorded_at)), 'hex')
                    FROM events WHERE position = \(t.position)
                    """).decode(0, 0)
                return PersonErased.Redaction(position: t.position, digest: digest)
            }
        }
    }

    /// Clears `values` from the command receipts that quote them and the person's read-model rows, then vacuums.
    static func scrub(values: Set<String>, person: String, pool: PostgresPool, full: Bool) async throws -> Int {
        let quoted = values.sorted().map { String(JSONWriter.quote($0).dropFirst().dropLast()) }
        let mark = PersonalData.erasedMark
        let receipts = try await pool.withConnection { c -> Int in
            try c.transaction { c in
                var cleared = 0
                for q in quoted {
                    cleared += try c.query("""
                        UPDATE command_receipts SET answer = replace(answer, \(q), \(mark)) WHERE strpos(answer, \(q)) > 0
                        """).affectedRows
                }
                // The surge projection clears them too when it reaches the erasure; this is at once, with coordd
                // stopped or behind. (Tables that do not exist yet are built from the redacted log.)
                if try c.query("SELECT to_regclass('rm_people') IS NOT NULL").decode(0, 0, as: Bool.self) {
                    try c.query("""
                        UPDATE rm_people SET name = \(mark), email = CASE WHEN email IS NULL THEN NULL ELSE \(mark) END
                        WHERE id = \(person) AND (name <> \(mark) OR email <> \(mark))
                        """)
                    try c.query("UPDATE rm_unavailability SET reason = \(mark) WHERE person = \(person) AND reason IS NOT NULL AND reason <> \(mark)")
                }
                return cleared
            }
        }
        // Old row versions hold the data until vacuumed (and, in the files, until overwritten: VACUUM FULL rewrites).
        let tables: [SQL] = ["events", "command_receipts", "rm_people", "rm_unavailability"]
        try await pool.withConnection { c in
            for t in tables {
                guard try c.query("SELECT to_regclass(\(t.text)) IS NOT NULL").decode(0, 0, as: Bool.self) else { continue }
                try c.execute(unsafe: (full ? "VACUUM FULL " : "VACUUM ") + t.text)
            }
        }
        return receipts
    }
}

extension PersonalData {
    /// What an erased value reads as, in the log and everywhere else.
    public static let erasedMark = "[erased]"

    static func erasedRefusal(_ person: String) -> DomainError {
        .rule("person \(person)'s personal data was erased: their record takes no new name, email or reason")
    }
}

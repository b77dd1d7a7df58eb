import Events
import Foundation

/// Personal data (a roster member's name and email, unavailability reasons, and the reasons of corrections to a
/// person's record, which may quote them) is shown only to principals with personal-data access. Everyone else sees
/// the person id where the data would be: in lists and exports, resources, command answers, the log and the feed.
/// docs/PRIVACY.md.
public enum PersonalData {
    /// List columns that hold personal data, by list.
    public static let columns: [String: Set<String>] = ["people": ["name", "email"], "deployments": ["person_name"]]

    /// Fields of events that hold personal data, by event type.
    public static let eventFields: [String: Set<String>] = [
        PersonRegistered.eventType: ["name", "email"],
        PersonAmended.eventType: ["name", "email", "reason"],
        PersonUnavailabilityAdded.eventType: ["reason"],
    ]

    /// The table with the list's personal columns emptied (JSON null, an empty CSV cell).
    public static func redact(_ table: ResultTable, list: String) -> ResultTable {
        guard let personal = columns[list] else { return table }
        let indexes = table.columns.indices.filter { personal.contains(table.columns[$0]) }
        guard !indexes.isEmpty else { return table }
        var out = table
        for r in out.rows.indices { for i in indexes { out.rows[r][i] = nil } }
        return out
    }

    /// Whether an event of this type carries personal data.
    public static func isPersonal(_ type: String) -> Bool { eventFields[type] != nil }

    /// The event with its personal fields set to null (its hash is the stored one: the chain is verified on the
    /// log, not on an answer).
    public static func redact(_ event: RecordedEvent) -> RecordedEvent {
        guard let fields = eventFields[event.type], let value = try? JSONValue.parse(Data(event.data.text.utf8)) else { return event }
        var redacted = value
        for f in fields where value[f] != nil { redacted = redacted.setting(f, .null) }
        return RecordedEvent(position: event.position, stream: event.stream, version: event.version, id: event.id, type: event.type,
                             data: JSONText(redacted.json), metadata: event.metadata, occurredAt: event.occurredAt, recordedAt: event.recordedAt,
                             hash: event.hash)
    }

    /// A person's state (`GET /v1/people/{id}`, a person command's answer) with name, email and every reason null.
    public static func redact(personState text: String) -> String {
        guard var value = try? JSONValue.parse(Data(text.utf8)) else { return text }
        for f in ["name", "email"] where value[f] != nil { value = value.setting(f, .null) }
        if case .array(let periods)? = value["unavailability"] {
            value = value.setting("unavailability", .array(periods.map { $0["reason"] != nil ? $0.setting("reason", .null) : $0 }))
        }
        return value.json
    }

    /// The person ids an answer shows personal data of: a list's rows, or the log's person events.
    public static func people(in table: ResultTable, list: String) -> [String] {
        guard columns[list] != nil, let i = table.columns.firstIndex(of: list == "people" ? "id" : "person") else { return [] }
        return Array(Set(table.rows.compactMap { $0[i] })).sorted()
    }

    public static func people(in events: [RecordedEvent]) -> [String] {
        Array(Set(events.filter { isPersonal($0.type) }.map { CommandRunner.kindAndID(of: $0.stream).1 })).sorted()
    }

    /// The same, of the log's rows as `/v1/events` lists them (`type` and `stream` columns).
    public static func people(inEventRows table: ResultTable) -> [String] {
        guard let t = table.columns.firstIndex(of: "type"), let s = table.columns.firstIndex(of: "stream") else { return [] }
        return Array(Set(table.rows.filter { isPersonal($0[t] ?? "") }.compactMap { $0[s].map { CommandRunner.kindAndID(of: $0).1 } })).sorted()
    }

    /// Records that `principal` was shown the personal data of `people` (ids only): who, when, through which route.
    public static func recordRead(_ pool: PostgresPool, principal: Principal, route: String, people: [String], requestID: String) async throws {
        guard !people.isEmpty else { return }
        try await pool.withConnection { c in
            try c.query("""
                INSERT INTO personal_data_reads (token_id, subject, route, people, request_id)
                VALUES (\(principal.tokenID), \(principal.subject), \(route), \(people)::text[], \(requestID))
                """)
        }
    }
}

import Events
import Foundation

extension Lists {
    /// Responses, the most recently declared first.
    public static let responses = ListSpec(
        "responses", "Responses (emergencies), the most recent first",
        filters: [ListFilter("status", .oneOf(["open", "closed"]), "Open or closed"), ListFilter("country", .id, "Affected country"),
                  ListFilter("hazard", .oneOf(ResponseVocabulary.hazards), "Hazard")],
        hxl: ["id": "#crisis+id", "name": "#crisis+name", "country": "#country+code", "hazard": "#crisis+type", "glide": "#crisis+code",
              "severity": "#severity", "phase": "#status+phase", "status": "#status+name", "areas": "#loc+pcode+list",
              "declared_at": "#date+start", "closed_at": "#date+end"],
        reads: ["responses"],
        key: ListSpec.columns("declared_at", "id")
    ) { source, a, limit, after in
        let (status, country, hazard, scoped) = (a["status"], a["country"], a["hazard"], a.responsesInScope)
        // The cursor is `declared_at:id`; a time holds colons, the id none, so the id is what follows the last one.
        let split = after.flatMap { text in text.lastIndex(of: ":").map { (String(text[..<$0]), String(text[text.index(after: $0)...])) } }
        let (time, id) = (split.flatMap { Timestamp.parse($0.0) }, split?.1)
        return try await source.queries.table("""
            SELECT id, name, country, hazard, glide, severity, phase, status, areas, declared_at, closed_at
            FROM rm_responses
            WHERE (\(status)::text IS NULL OR status = \(status)) AND (\(country)::text IS NULL OR country = \(country))
              AND (\(hazard)::text IS NULL OR hazard = \(hazard)) AND (\(scoped)::text[] IS NULL OR id = ANY(\(scoped)::text[]))
              AND (\(time)::timestamptz IS NULL OR (declared_at, id) < (\(time)::timestamptz, \(id)::text))
            ORDER BY declared_at DESC, id DESC LIMIT \(limit)
            """)
    }
}

import Events
import Foundation

// The lists of the surge read model: the roster and deployments.

extension Lists {
    /// Rostered people; with a period, who is free for the whole of it (no booking, no unavailability).
    public static let people = ListSpec(
        "people", "The surge roster; with available_from/available_to, who is free for the whole period",
        filters: [ListFilter("profile", .oneOf(SurgeVocabulary.profiles), "Rostered for this profile"),
                  ListFilter("available_from", .date, "First day of the period to check (default: available_to)"),
                  ListFilter("available_to", .date, "Last day of the period to check (default: available_from)"),
                  ListFilter("available", .flag, "With a period: only those free (true) or booked (false) for it"),
                  ListFilter("home_country", .id, "Home country (ISO 3166-1 alpha-3)"),
                  ListFilter("q", .text, "Search the id, and the name with personal-data access (case-insensitive)")],
        hxl: ["id": "#contact+id", "name": "#contact+name", "email": "#contact+email", "profiles": "#contact+role+list",
              "home_country": "#country+code", "available": "#status+available", "conflicts": "#meta+conflicts"],
        reads: ["surge"],
        key: ListSpec.column("id")
    ) { source, a, limit, after in
        let from = (a.day("available_from") ?? a.day("available_to"))?.description
        let to = (a.day("available_to") ?? a.day("available_from"))?.description
        if let from, let to, from > to { throw DomainError.invalid("available_to", "must not be before available_from") }
        let (profile, country, q, available) = (a["profile"], a["home_country"], a["q"]?.lowercased(), a["available"])
        // Without personal-data access a search cannot probe names: it matches ids only.
        let byName = a.personalData
        return try await source.queries.table("""
            SELECT p.id, p.name, p.email, p.profiles, p.home_country, c.available, c.conflicts
            FROM rm_people p
            LEFT JOIN LATERAL (
                SELECT count(*) = 0 AS available, coalesce(jsonb_agg(x.conflict ORDER BY x.conflict), '[]'::jsonb) AS conflicts
                FROM (SELECT d.id AS conflict FROM rm_deployments d
                      WHERE d.person = p.id AND d.booked_until IS NOT NULL AND d.start_date <= \(to)::date AND d.booked_until >= \(from)::date
                      UNION ALL
                      SELECT 'unavailable ' || u.from_date || ' to ' || u.to_date FROM rm_unavailability u
                      WHERE u.person = p.id AND u.from_date <= \(to)::date AND u.to_date >= \(from)::date) x
            ) c ON \(from)::date IS NOT NULL
            WHERE (\(profile)::text IS NULL OR p.profiles ? \(profile)) AND (\(country)::text IS NULL OR p.home_country = \(country))
              AND (\(q)::text IS NULL OR strpos(lower(p.id), \(q)) > 0 OR (\(byName) AND strpos(lower(p.name), \(q)) > 0))
              AND (\(available)::boolean IS NULL OR c.available = \(available)::boolean)
              AND (\(after)::text IS NULL OR p.id > \(after))
            ORDER BY p.id LIMIT \(limit)
            """)
    }

    /// Deployments, with the questions coordinators ask: who is on the ground on a day, who arrives or leaves soon,
    /// who is past the planned end.
    public static let deployments = ListSpec(
        "deployments", "Surge deployments",
        filters: [ListFilter("response", .id, "Deployments to this response"), ListFilter("person", .id, "Of this person"),
                  ListFilter("status", .oneOf(SurgeVocabulary.statuses), "Lifecycle status"),
                  ListFilter("profile", .oneOf(SurgeVocabulary.profiles), "Surge profile"),
                  ListFilter("cluster", .oneOf(Clusters.all), "Cluster"),
                  ListFilter("active_on", .date, "On the ground that day: from arrival to completion, or to the planned end while deployed"),
                  ListFilter("ending_within_days", .integer(0...366), "Deployed and ending from today to today + N"),
                  ListFilter("arriving_within_days", .integer(0...366), "Requested or confirmed and starting from today to today + N"),
                  ListFilter("overdue_end", .flag, "Still deployed after the planned end (true), or not (false)")],
        hxl: ["id": "#meta+id", "person": "#contact+id", "person_name": "#contact+name", "response": "#crisis+code",
              "response_country": "#country+dest+code", "profile": "#contact+role", "cluster": "#sector+cluster+code",
              "start": "#date+start", "end": "#date+end", "duty_station": "#loc+name+dest", "status": "#status+code",
              "requested_at": "#date+requested", "confirmed_at": "#date+confirmed", "arrived_at": "#date+arrived",
              "completed_at": "#date+completed", "cancelled_at": "#date+cancelled", "cancel_reason": "#description+reason",
              "extensions": "#meta+extensions", "overdue_end": "#status+overdue"],
        reads: ["surge", "responses"],
        key: ListSpec.column("id")
    ) { source, a, limit, after in
        let today = a.today.description
        let activeOn = a.day("active_on")?.description
        let endBy = a.int("ending_within_days").map { a.today.adding(days: $0).description }
        let startBy = a.int("arriving_within_days").map { a.today.adding(days: $0).description }
        let (response, person, status, profile, cluster, overdue) = (a["response"], a["person"], a["status"], a["profile"], a["cluster"], a["overdue_end"])
        let scoped = a.responsesInScope
        return try await source.queries.table("""
            SELECT d.id, d.person, p.name AS person_name, d.response, r.country AS response_country, d.profile, d.cluster,
                   d.start_date AS "start", d.end_date AS "end", d.duty_station, d.status, d.requested_at, d.confirmed_at, d.arrived_at,
                   d.completed_at, d.cancelled_at, d.cancel_reason, d.extensions,
                   (d.status = 'deployed' AND d.end_date < \(today)::date) AS overdue_end
            FROM rm_deployments d LEFT JOIN rm_people p ON p.id = d.person LEFT JOIN rm_responses r ON r.id = d.response
            WHERE (\(response)::text IS NULL OR d.response = \(response)) AND (\(person)::text IS NULL OR d.person = \(person))
              AND (\(status)::text IS NULL OR d.status = \(status)) AND (\(profile)::text IS NULL OR d.profile = \(profile))
              AND (\(cluster)::text IS NULL OR d.cluster = \(cluster)) AND (\(scoped)::text[] IS NULL OR d.response = ANY(\(scoped)::text[]))
              AND (\(activeOn)::date IS NULL OR (d.arrived_at::date <= \(activeOn)::date AND (
                       (d.status = 'deployed' AND d.end_date >= \(activeOn)::date)
                    OR (d.status = 'completed' AND d.completed_at::date >= \(activeOn)::date))))
              AND (\(endBy)::date IS NULL OR (d.status = 'deployed' AND d.end_date BETWEEN \(today)::date AND \(endBy)::date))
              AND (\(startBy)::date IS NULL OR (d.status IN ('requested', 'confirmed') AND d.start_date BETWEEN \(today)::date AND \(startBy)::date))
              AND (\(overdue)::boolean IS NULL OR (d.status = 'deployed' AND d.end_date < \(today)::date) = \(overdue)::boolean)
              AND (\(after)::text IS NULL OR d.id > \(after))
            ORDER BY d.id LIMIT \(limit)
            """)
    }
}

import Events
import Foundation

extension Lists {
    /// The cluster task board (3W: who does what where).
    public static let tasks = ListSpec(
        "tasks", "Cluster tasks",
        filters: [ListFilter("response", .id, "Tasks of this response"), ListFilter("cluster", .oneOf(Clusters.all), "Cluster"),
                  ListFilter("status", .oneOf(TaskVocabulary.statuses), "Lifecycle status"),
                  ListFilter("priority", .oneOf(TaskVocabulary.priorities), "Priority"),
                  ListFilter("assignee", .text, "Assigned to"), ListFilter("lead_org", .text, "Lead organisation"),
                  ListFilter("overdue", .flag, "Unfinished and past the due date (true), or not (false)")],
        hxl: ["id": "#meta+id", "response": "#crisis+code", "cluster": "#sector+cluster+code", "title": "#activity+name",
              "description": "#activity+description", "priority": "#status+priority", "due": "#date+end", "pcode": "#loc+pcode",
              "adm1": "#adm1+code", "adm2": "#adm2+code", "lead_org": "#org+name", "assignee": "#contact+name", "status": "#status+name",
              "blocked_reason": "#description+reason", "comments": "#meta+comments", "created_at": "#date+created",
              "started_at": "#date+started", "completed_at": "#date+completed", "verified_at": "#date+verified",
              "cancelled_at": "#date+cancelled"],
        reads: ["tasks"],
        key: ListSpec.column("id")
    ) { source, a, limit, after in
        let today = a.today.description
        let (response, cluster, status, priority, assignee, lead, overdue) = (a["response"], a["cluster"], a["status"], a["priority"],
                                                                              a["assignee"], a["lead_org"], a["overdue"])
        let scoped = a.responsesInScope
        return try await source.queries.table("""
            SELECT id, response, cluster, title, description, priority, due, pcode, \(PCodeLevels.columns("pcode")), lead_org, assignee, status,
                   blocked_reason, comments, created_at, started_at, completed_at, verified_at, cancelled_at
            FROM rm_tasks
            WHERE (\(response)::text IS NULL OR response = \(response)) AND (\(cluster)::text IS NULL OR cluster = \(cluster))
              AND (\(scoped)::text[] IS NULL OR response = ANY(\(scoped)::text[]))
              AND (\(status)::text IS NULL OR status = \(status)) AND (\(priority)::text IS NULL OR priority = \(priority))
              AND (\(assignee)::text IS NULL OR assignee = \(assignee)) AND (\(lead)::text IS NULL OR lead_org = \(lead))
              AND (\(overdue)::boolean IS NULL
                   OR (due < \(today)::date AND status IN ('open', 'in_progress', 'blocked')) = \(overdue)::boolean)
              AND (\(after)::text IS NULL OR id > \(after))
            ORDER BY id LIMIT \(limit)
            """)
    }
}

import Events
import Foundation

/// The cluster task board.
public struct TaskProjection: ReadModelProjection {
    public init() {}
    public let name = "tasks"
    /// 2: amendments.
    public let version = 2
    public let eventTypes: [String]? = [
        TaskCreated.eventType, TaskAmended.eventType, TaskAssigned.eventType, TaskStarted.eventType, TaskBlocked.eventType,
        TaskCompleted.eventType, TaskVerified.eventType, TaskCancelled.eventType, TaskReopened.eventType, TaskCommented.eventType,
    ]

    static let tasks = ReadModelTable<TaskReadModel.Task>(
        "rm_tasks", key: "id", indexes: ["(response, cluster, status)", "(due) WHERE status IN ('open', 'in_progress', 'blocked')"],
        empty: { TaskReadModel.Task() }, [
            Column("id", \.id), Column("response", \.response), Column("cluster", \.cluster), Column("title", \.title),
            Column("description", \.description), Column("priority", \.priority), Column("due", \.due), Column("pcode", \.pcode),
            Column("lead_org", \.leadOrg), Column("assignee", \.assignee), Column("status", \.status), Column("blocked_reason", \.blockedReason),
            Column("comments", \.comments), Column("created_at", \.createdAt), Column("started_at", \.startedAt),
            Column("completed_at", \.completedAt), Column("verified_at", \.verifiedAt), Column("cancelled_at", \.cancelledAt),
            Column("updated_position", \.updatedPosition),
        ])

    var readModelTables: [any AnyReadModelTable] { [Self.tasks] }

    public func makeState() -> any ProjectionState { TaskReadModel() }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = TaskReadModel()
        for t in try Self.tasks.load(c, suffix: s) { m.tasks[t.id] = t }
        return m
    }
}

public final class TaskReadModel: DecodingProjectionState {
    public struct Task: Sendable, Equatable {
        public var id = "", response = "", cluster = "", title = ""
        public var description: String?
        public var priority = ""
        public var due: Day?
        public var pcode, leadOrg, assignee: String?
        public var status = ""
        public var blockedReason: String?
        public var comments = 0
        public var createdAt = Date(timeIntervalSince1970: 0)
        public var startedAt, completedAt, verifiedAt, cancelledAt: Date?
        public var updatedPosition: Int64 = 0
    }

    public var tasks: [String: Task] = [:]
    private var dirty = DirtyKeys()

    public init() {}

    public static func decode(_ event: RecordedEvent) throws -> DomainEvent { try EventCodec.decode(event) }

    public func apply(_ domainEvent: DomainEvent, _ event: RecordedEvent) throws {
        func update(_ id: String, _ change: (inout Task) -> Void) throws {
            guard var t = tasks[id] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            change(&t)
            t.updatedPosition = event.position
            tasks[id] = t
            dirty.touch(id)
        }
        let at = event.occurredAt
        switch domainEvent {
        case .taskCreated(let e):
            tasks[e.task] = Task(id: e.task, response: e.response, cluster: e.cluster, title: e.title, description: e.description,
                                 priority: e.priority, due: e.due, pcode: e.pcode, leadOrg: e.leadOrg, assignee: e.assignee, status: "open",
                                 createdAt: at, updatedPosition: event.position)
            dirty.touch(e.task)
        case .taskAmended(let e):
            try update(e.task) { t in
                if let v = e.title { t.title = v }
                if let v = e.description { t.description = v }
                if let v = e.priority { t.priority = v }
                if let v = e.due { t.due = v }
                if let v = e.pcode { t.pcode = v }
                if let v = e.leadOrg { t.leadOrg = v }
            }
        case .taskAssigned(let e): try update(e.task) { $0.assignee = e.assignee }
        case .taskStarted(let e): try update(e.task) { $0.status = "in_progress"; $0.blockedReason = nil; if $0.startedAt == nil { $0.startedAt = at } }
        case .taskBlocked(let e): try update(e.task) { $0.status = "blocked"; $0.blockedReason = e.reason }
        case .taskCompleted(let e): try update(e.task) { $0.status = "completed"; $0.completedAt = at }
        case .taskVerified(let e): try update(e.task) { $0.status = "verified"; $0.verifiedAt = at }
        case .taskCancelled(let e): try update(e.task) { $0.status = "cancelled"; $0.cancelledAt = at }
        case .taskReopened(let e): try update(e.task) { $0.status = "open"; $0.completedAt = nil; $0.cancelledAt = nil }
        case .taskCommented(let e): try update(e.task) { $0.comments += 1 }
        default: break
        }
    }

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        try dirty.flush(TaskProjection.tasks, c, suffix: s, rows: tasks)
        dirty.clear()
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        try TaskProjection.tasks.copy(c, suffix: s, rows: tasks.values)
        dirty.clear()
    }
}

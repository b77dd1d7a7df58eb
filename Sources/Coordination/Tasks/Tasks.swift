import Events
import Foundation

public enum TaskVocabulary {
    public static let priorities = ["urgent", "high", "normal", "low"]
    public static let statuses = ["open", "in_progress", "blocked", "completed", "verified", "cancelled"]
}

struct TaskState: AggregateState {
    struct Comment: Encodable, Sendable { var text: String; var by: String?; var at: Date }
    var id = ""
    var response = ""
    var cluster = ""
    var title = ""
    var description: String?
    var priority = ""
    var due: Day?
    var pcode: String?
    var leadOrg: String?
    var assignee: String?
    var status = ""
    var blockedReason: String?
    var comments: [Comment] = []
    var createdAt: Date?
    var completedAt: Date?

    mutating func apply(_ payload: any EventPayload, _ event: RecordedEvent) {
        switch payload {
        case let e as TaskCreated:
            (id, response, cluster, title, description, priority) = (e.task, e.response, e.cluster, e.title, e.description, e.priority)
            (due, pcode, leadOrg, assignee) = (e.due, e.pcode, e.leadOrg, e.assignee)
            status = "open"
            createdAt = event.occurredAt
        case let e as TaskAssigned: assignee = e.assignee
        case is TaskStarted: status = "in_progress"; blockedReason = nil
        case let e as TaskBlocked: status = "blocked"; blockedReason = e.reason
        case is TaskCompleted: status = "completed"; completedAt = event.occurredAt
        case is TaskVerified: status = "verified"
        case is TaskCancelled: status = "cancelled"
        case is TaskReopened: status = "open"; completedAt = nil
        case let e as TaskCommented: comments.append(Comment(text: e.text, by: event.decodedMetadata.actor, at: event.occurredAt))
        default: break
        }
    }

    /// The task lifecycle: open → in_progress → completed → verified; blocked from open/in_progress and back
    /// via start; cancelled from any state before verified; reopen from completed or cancelled.
    static let transitions: [String: [String]] = [
        "start": ["open", "blocked"],
        "block": ["open", "in_progress"],
        "complete": ["in_progress"],
        "verify": ["completed"],
        "cancel": ["open", "in_progress", "blocked", "completed"],
        "reopen": ["completed", "cancelled"],
        "assign": ["open", "in_progress", "blocked"],
    ]
}

/// `POST /v1/tasks`
public struct CreateTask: DomainCommand {
    public var createdStream: String? { id.map(Streams.task) }
    public static let name = "task.create"
    public static let fields = ["id", "response", "cluster", "title", "description", "priority", "due", "pcode", "lead_org", "assignee", "occurred_at"]
    public var id: String?
    public var response: String
    public var cluster: String
    public var title: String
    public var description: String?
    public var priority: String
    public var due: Day?
    public var pcode: String?
    public var leadOrg: String?
    public var assignee: String?
    public var occurredAt: Date?

    public init(id: String? = nil, response: String, cluster: String, title: String, description: String? = nil, priority: String,
                due: Day? = nil, pcode: String? = nil, leadOrg: String? = nil, assignee: String? = nil, occurredAt: Date? = nil) {
        (self.id, self.response, self.cluster, self.title, self.description, self.priority) = (id, response, cluster, title, description, priority)
        (self.due, self.pcode, self.leadOrg, self.assignee, self.occurredAt) = (due, pcode, leadOrg, assignee, occurredAt)
    }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.id(response, "response")
        v.oneOf(cluster, "cluster", Clusters.all)
        v.text(title, "title")
        v.text(description, "description", max: Validator.maxText)
        v.oneOf(priority, "priority", TaskVocabulary.priorities)
        v.pcode(pcode, "pcode")
        v.text(leadOrg, "lead_org")
        v.text(assignee, "assignee")
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id ?? UUID.random().lowercasedString
        let response = self.response
        let e = TaskCreated(task: id, response: response, cluster: cluster, title: title, description: description, priority: priority,
                            due: due, pcode: pcode, leadOrg: leadOrg, assignee: assignee)
        return try await s.create(self, ctx, kind: "task", id: id, stream: Streams.task(id), state: TaskState.self, occurredAt: occurredAt,
                                  check: { try await s.requireOpenResponse(response) }) { e }
    }
}

extension CoordinationService {
    func taskStep(_ command: some DomainCommand, _ ctx: CommandContext, id: String, occurredAt: Date?, action: String,
                  event: @escaping @Sendable (TaskState) throws -> any EventPayload) async throws -> CommandResult {
        try await step(command, ctx, kind: "task", id: id, stream: Streams.task(id), state: TaskState.self, occurredAt: occurredAt) { t, _ in
            if let allowed = TaskState.transitions[action], !allowed.contains(t.status) {
                throw DomainError.invalidTransition(kind: "task", id: id, current: t.status, action: action)
            }
            return [try event(t)]
        }
    }
}

/// A task step with only an id and an optional `occurred_at`.
public protocol TaskStepCommand: StepCommand {
    static var action: String { get }
    static func event(_ id: String) -> any EventPayload
}

extension TaskStepCommand {
    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let id = self.id
        return try await s.taskStep(self, ctx, id: id, occurredAt: occurredAt, action: Self.action) { _ in Self.event(id) }
    }
}

public struct StartTask: TaskStepCommand {
    public static let name = "task.start"
    public static let action = "start"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> any EventPayload { TaskStarted(task: id) }
}

public struct CompleteTask: TaskStepCommand {
    public static let name = "task.complete"
    public static let action = "complete"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> any EventPayload { TaskCompleted(task: id) }
}

public struct VerifyTask: TaskStepCommand {
    public static let name = "task.verify"
    public static let action = "verify"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> any EventPayload { TaskVerified(task: id) }
}

public struct CancelTask: TaskStepCommand {
    public static let name = "task.cancel"
    public static let action = "cancel"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> any EventPayload { TaskCancelled(task: id) }
}

public struct ReopenTask: TaskStepCommand {
    public static let name = "task.reopen"
    public static let action = "reopen"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> any EventPayload { TaskReopened(task: id) }
}

/// `POST /v1/tasks/{id}/assign`
public struct AssignTask: DomainCommand {
    public static let name = "task.assign"
    public static let fields = ["id", "assignee", "occurred_at"]
    public var id: String
    public var assignee: String
    public var occurredAt: Date?

    public init(id: String, assignee: String, occurredAt: Date? = nil) { (self.id, self.assignee, self.occurredAt) = (id, assignee, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(assignee, "assignee")
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, assignee) = (self.id, self.assignee)
        return try await s.taskStep(self, ctx, id: id, occurredAt: occurredAt, action: "assign") { _ in TaskAssigned(task: id, assignee: assignee) }
    }
}

/// `POST /v1/tasks/{id}/block`
public struct BlockTask: DomainCommand {
    public static let name = "task.block"
    public static let fields = ["id", "reason", "occurred_at"]
    public var id: String
    public var reason: String
    public var occurredAt: Date?

    public init(id: String, reason: String, occurredAt: Date? = nil) { (self.id, self.reason, self.occurredAt) = (id, reason, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(reason, "reason", max: 1000)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, reason) = (self.id, self.reason)
        return try await s.taskStep(self, ctx, id: id, occurredAt: occurredAt, action: "block") { _ in TaskBlocked(task: id, reason: reason) }
    }
}

/// `POST /v1/tasks/{id}/comments`: allowed in every state.
public struct CommentTask: DomainCommand {
    public static let name = "task.comment"
    public static let fields = ["id", "text", "occurred_at"]
    public var id: String
    public var text: String
    public var occurredAt: Date?

    public init(id: String, text: String, occurredAt: Date? = nil) { (self.id, self.text, self.occurredAt) = (id, text, occurredAt) }

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.text(text, "text", max: Validator.maxText)
        v.time(occurredAt, "occurred_at")
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let (id, text) = (self.id, self.text)
        return try await s.taskStep(self, ctx, id: id, occurredAt: occurredAt, action: "comment") { _ in TaskCommented(task: id, text: text) }
    }
}

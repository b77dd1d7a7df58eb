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
    /// When the status last changed (creation included): the next change may not be dated before it.
    var lastStatusAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, response, cluster, title, description, priority, due, pcode, leadOrg, assignee, status, blockedReason, comments
        case createdAt, completedAt
    }

    mutating func apply(_ event: DomainEvent, _ recorded: RecordedEvent) {
        let at = recorded.occurredAt
        switch event {
        case .taskCreated(let e):
            (id, response, cluster, title, description, priority) = (e.task, e.response, e.cluster, e.title, e.description, e.priority)
            (due, pcode, leadOrg, assignee) = (e.due, e.pcode, e.leadOrg, e.assignee)
            (status, createdAt) = ("open", at)
        case .taskAmended(let e):
            if let v = e.title { title = v }
            if let v = e.description { description = v }
            if let v = e.priority { priority = v }
            if let v = e.due { due = v }
            if let v = e.pcode { pcode = v }
            if let v = e.leadOrg { leadOrg = v }
            return
        case .taskAssigned(let e): assignee = e.assignee; return
        case .taskCommented(let e): comments.append(Comment(text: e.text, by: recorded.actor, at: at)); return
        case .taskStarted: status = "in_progress"; blockedReason = nil
        case .taskBlocked(let e): status = "blocked"; blockedReason = e.reason
        case .taskCompleted: status = "completed"; completedAt = at
        case .taskVerified: status = "verified"
        case .taskCancelled: status = "cancelled"
        case .taskReopened: status = "open"; completedAt = nil
        default: return
        }
        lastStatusAt = max(lastStatusAt ?? at, at)
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

/// A cluster task for a response.
public struct CreateTask: DomainCommand {
    public var createdStream: String? { id.map(Streams.task) }
    public static let name = "task.create"
    public static let creates = true
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
                                  check: { try await s.requireOpenResponse(response) }) { .taskCreated(e) }
    }
}

extension CoordinationService {
    /// A step of a task's lifecycle: allowed from the states `TaskState.transitions` names, dated no earlier than
    /// the last status change (comments and assignments: than the creation).
    func taskStep<C: DomainCommand>(_ command: C, _ ctx: CommandContext, id: String, occurredAt: Date?, action: String,
                                    event: @escaping @Sendable (TaskState) throws -> DomainEvent) async throws -> CommandResult {
        try await step(command, ctx, kind: "task", id: id, stream: Streams.task(id), state: TaskState.self, occurredAt: occurredAt) { t, _, at in
            if let allowed = TaskState.transitions[action], !allowed.contains(t.status) {
                throw DomainError.invalidTransition(kind: "task", id: id, current: t.status, action: action)
            }
            if TaskState.transitions[action] == nil || action == "assign" {
                try Validator.requireOrder(at, notBefore: t.createdAt, "the task's creation")
            } else {
                try Validator.requireOrder(at, notBefore: t.lastStatusAt, t.lastStatusAt == t.createdAt ? "the task's creation" : "its last status change")
            }
            return [try event(t)]
        }
    }
}

/// A task step with only an id and an optional `occurred_at`.
public protocol TaskStepCommand: StepCommand {
    static var action: String { get }
    static func event(_ id: String) -> DomainEvent
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
    public static func event(_ id: String) -> DomainEvent { .taskStarted(TaskStarted(task: id)) }
}

public struct CompleteTask: TaskStepCommand {
    public static let name = "task.complete"
    public static let action = "complete"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> DomainEvent { .taskCompleted(TaskCompleted(task: id)) }
}

public struct VerifyTask: TaskStepCommand {
    public static let name = "task.verify"
    public static let action = "verify"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> DomainEvent { .taskVerified(TaskVerified(task: id)) }
}

public struct CancelTask: TaskStepCommand {
    public static let name = "task.cancel"
    public static let action = "cancel"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> DomainEvent { .taskCancelled(TaskCancelled(task: id)) }
}

public struct ReopenTask: TaskStepCommand {
    public static let name = "task.reopen"
    public static let action = "reopen"
    public var id: String
    public var occurredAt: Date?
    public init(id: String, occurredAt: Date? = nil) { (self.id, self.occurredAt) = (id, occurredAt) }
    public static func event(_ id: String) -> DomainEvent { .taskReopened(TaskReopened(task: id)) }
}

/// Assigns the task to someone.
public struct AssignTask: DomainCommand {
    public static let name = "task.assign"
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
        return try await s.taskStep(self, ctx, id: id, occurredAt: occurredAt, action: "assign") { _ in .taskAssigned(TaskAssigned(task: id, assignee: assignee)) }
    }
}

/// Blocks the task, saying why.
public struct BlockTask: DomainCommand {
    public static let name = "task.block"
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
        return try await s.taskStep(self, ctx, id: id, occurredAt: occurredAt, action: "block") { _ in .taskBlocked(TaskBlocked(task: id, reason: reason)) }
    }
}

/// A comment on the task, allowed in every state.
public struct CommentTask: DomainCommand {
    public static let name = "task.comment"
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
        return try await s.taskStep(self, ctx, id: id, occurredAt: occurredAt, action: "comment") { _ in .taskCommented(TaskCommented(task: id, text: text)) }
    }
}

/// Corrects what a task says: its title, description, priority, due date, P-code or lead organisation.
public struct AmendTask: DomainCommand {
    public static let name = "task.amend"
    public var id: String
    public var title: String?
    public var description: String?
    public var priority: String?
    public var due: Day?
    public var pcode: String?
    public var leadOrg: String?
    public var reason: String?
    /// When the correction was made (default: when the command arrived).
    public var occurredAt: Date?

    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.time(occurredAt, "occurred_at")
        v.text(title, "title")
        v.text(description, "description", max: Validator.maxText)
        v.oneOf(priority, "priority", TaskVocabulary.priorities)
        v.pcode(pcode, "pcode")
        v.text(leadOrg, "lead_org")
        v.text(reason, "reason", max: 1000)
    }

    public func run(_ s: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult {
        let c = self
        return try await s.step(self, ctx, kind: "task", id: id, stream: Streams.task(id), state: TaskState.self, occurredAt: occurredAt) { t, version, at in
            try Validator.requireOrder(at, notBefore: t.createdAt, "the task's creation")
            if t.status == "verified" { throw DomainError.invalidTransition(kind: "task", id: c.id, current: t.status, action: "amend") }
            let e = TaskAmended(task: c.id, title: Amend.changed(c.title, t.title), description: Amend.changed(c.description, t.description),
                                priority: Amend.changed(c.priority, t.priority), due: Amend.changed(c.due, t.due),
                                pcode: Amend.changed(c.pcode, t.pcode), leadOrg: Amend.changed(c.leadOrg, t.leadOrg), reason: c.reason,
                                amends: version)
            try Amend.requireChange([e.title, e.description, e.priority, e.due, e.pcode, e.leadOrg])
            return [.taskAmended(e)]
        }
    }
}

import Events
import Foundation

// Events of a cluster task's stream, `task-<id>`.

public struct TaskCreated: EventPayload {
    public static let eventType = "task.created"
    /// v2: `priority` is a name (`urgent`...`low`); v1 stored a number 1-4 (see EventCodec.upcast).
    public static let schemaVersion = 2
    public var task: String
    public var response: String
    public var cluster: String
    public var title: String
    public var description: String?
    public var priority: String
    public var due: Day?
    public var pcode: String?
    public var leadOrg: String?
    public var assignee: String?
}

/// A correction of what the task says: the fields present replace the current ones.
public struct TaskAmended: EventPayload {
    public static let eventType = "task.amended"
    public var task: String
    public var title: String?
    public var description: String?
    public var priority: String?
    public var due: Day?
    public var pcode: String?
    public var leadOrg: String?
    public var reason: String?
    public var amends: Int64
}

public struct TaskAssigned: EventPayload {
    public static let eventType = "task.assigned"
    public var task: String
    public var assignee: String
}

public struct TaskStarted: EventPayload {
    public static let eventType = "task.started"
    public var task: String
}

public struct TaskBlocked: EventPayload {
    public static let eventType = "task.blocked"
    public var task: String
    public var reason: String
}

public struct TaskCompleted: EventPayload {
    public static let eventType = "task.completed"
    public var task: String
}

public struct TaskVerified: EventPayload {
    public static let eventType = "task.verified"
    public var task: String
}

public struct TaskCancelled: EventPayload {
    public static let eventType = "task.cancelled"
    public var task: String
}

public struct TaskReopened: EventPayload {
    public static let eventType = "task.reopened"
    public var task: String
}

public struct TaskCommented: EventPayload {
    public static let eventType = "task.commented"
    public var task: String
    public var text: String
}

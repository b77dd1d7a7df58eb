import Events
import Foundation

// MARK: Surge

/// Roster members and deployments: who is where, arriving and leaving, unfilled requests.
public struct SurgeProjection: ProjectionDefinition {
    public init() {}
    public let name = "surge"
    public let version = 1
    public let tables = ["rm_people", "rm_deployments"]
    public let eventTypes: [String]? = [
        PersonRegistered.eventType, DeploymentRequested.eventType, DeploymentConfirmed.eventType, DeploymentArrived.eventType,
        DeploymentExtended.eventType, DeploymentCompleted.eventType, DeploymentCancelled.eventType,
    ]
    static let peopleColumns = "id, name, email, profiles, home_country"
    static let deploymentColumns = """
        id, person, response, profile, cluster, start_date, end_date, duty_station, status, requested_at, confirmed_at, arrived_at, \
        completed_at, cancelled_at, extensions, updated_position
        """

    public func createTables(suffix s: String) -> [String] {
        [
            "CREATE TABLE rm_people\(s) (id text PRIMARY KEY, name text NOT NULL, email text, profiles text NOT NULL, home_country text)",
            """
            CREATE TABLE rm_deployments\(s) (id text PRIMARY KEY, person text NOT NULL, response text NOT NULL, profile text NOT NULL,
                cluster text, start_date date NOT NULL, end_date date NOT NULL, duty_station text, status text NOT NULL,
                requested_at timestamptz NOT NULL, confirmed_at timestamptz, arrived_at timestamptz, completed_at timestamptz,
                cancelled_at timestamptz, extensions int NOT NULL, updated_position bigint NOT NULL)
            """,
            "CREATE INDEX ON rm_deployments\(s) (response, status)",
            "CREATE INDEX ON rm_deployments\(s) (person)",
            "CREATE INDEX ON rm_deployments\(s) (start_date, end_date)",
        ]
    }

    public func makeState() -> any ProjectionState { SurgeReadModel() }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = SurgeReadModel()
        for r in try c.query(SQL(unsafe: "SELECT \(Self.peopleColumns) FROM rm_people\(s)")).rows {
            let p = SurgeReadModel.Person(id: try r.decode("id"), name: try r.decode("name"), email: try r.decodeOptional("email"),
                                          profiles: try r.decode("profiles"), homeCountry: try r.decodeOptional("home_country"))
            m.people[p.id] = p
        }
        for r in try c.query(SQL(unsafe: "SELECT \(Self.deploymentColumns) FROM rm_deployments\(s)")).rows {
            let d = SurgeReadModel.Deployment(
                id: try r.decode("id"), person: try r.decode("person"), response: try r.decode("response"), profile: try r.decode("profile"),
                cluster: try r.decodeOptional("cluster"), start: try r.day("start_date")!, end: try r.day("end_date")!,
                dutyStation: try r.decodeOptional("duty_station"), status: try r.decode("status"), requestedAt: try r.decode("requested_at"),
                confirmedAt: try r.decodeOptional("confirmed_at"), arrivedAt: try r.decodeOptional("arrived_at"),
                completedAt: try r.decodeOptional("completed_at"), cancelledAt: try r.decodeOptional("cancelled_at"),
                extensions: try r.decode("extensions"), updatedPosition: try r.decode("updated_position"))
            m.deployments[d.id] = d
        }
        return m
    }
}

public final class SurgeReadModel: ProjectionState {
    public struct Person: Sendable, Equatable {
        public var id, name: String
        public var email: String?
        /// Comma-separated.
        public var profiles: String
        public var homeCountry: String?
    }

    public struct Deployment: Sendable, Equatable {
        public var id, person, response, profile: String
        public var cluster: String?
        public var start, end: Day
        public var dutyStation: String?
        public var status: String
        public var requestedAt: Date
        public var confirmedAt, arrivedAt, completedAt, cancelledAt: Date?
        public var extensions: Int
        public var updatedPosition: Int64
    }

    public var people: [String: Person] = [:]
    public var deployments: [String: Deployment] = [:]
    private var dirtyPeople = Set<String>()
    private var dirtyDeployments = Set<String>()

    public init() {}

    public func apply(_ event: RecordedEvent) throws { try apply(EventCodec.decode(event), event) }

    public func apply(_ payload: any EventPayload, _ event: RecordedEvent) throws {
        func update(_ id: String, _ change: (inout Deployment) -> Void) throws {
            guard var d = deployments[id] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            change(&d)
            d.updatedPosition = event.position
            deployments[id] = d
            dirtyDeployments.insert(id)
        }
        switch payload {
        case let e as PersonRegistered:
            people[e.person] = Person(id: e.person, name: e.name, email: e.email, profiles: e.profiles.joined(separator: ","), homeCountry: e.homeCountry)
            dirtyPeople.insert(e.person)
        case let e as DeploymentRequested:
            deployments[e.deployment] = Deployment(id: e.deployment, person: e.person, response: e.response, profile: e.profile, cluster: e.cluster,
                                                   start: e.start, end: e.end, dutyStation: e.dutyStation, status: "requested",
                                                   requestedAt: event.occurredAt, extensions: 0, updatedPosition: event.position)
            dirtyDeployments.insert(e.deployment)
        case let e as DeploymentConfirmed: try update(e.deployment) { $0.status = "confirmed"; $0.confirmedAt = event.occurredAt }
        case let e as DeploymentArrived: try update(e.deployment) { $0.status = "deployed"; $0.arrivedAt = event.occurredAt }
        case let e as DeploymentExtended: try update(e.deployment) { $0.end = e.end; $0.extensions += 1 }
        case let e as DeploymentCompleted: try update(e.deployment) { $0.status = "completed"; $0.completedAt = event.occurredAt }
        case let e as DeploymentCancelled: try update(e.deployment) { $0.status = "cancelled"; $0.cancelledAt = event.occurredAt }
        default: break
        }
    }

    func peopleLines(_ keys: some Sequence<String>) -> [String] {
        keys.compactMap { people[$0] }.map { p in
            var l = CopyLine()
            l.add(p.id); l.add(p.name); l.add(p.email); l.add(p.profiles); l.add(p.homeCountry)
            return l.text
        }
    }

    func deploymentLines(_ keys: some Sequence<String>) -> [String] {
        keys.compactMap { deployments[$0] }.map { d in
            var l = CopyLine()
            l.add(d.id); l.add(d.person); l.add(d.response); l.add(d.profile); l.add(d.cluster); l.add(d.start); l.add(d.end)
            l.add(d.dutyStation); l.add(d.status); l.add(d.requestedAt); l.add(d.confirmedAt); l.add(d.arrivedAt); l.add(d.completedAt)
            l.add(d.cancelledAt); l.add(d.extensions); l.add(d.updatedPosition)
            return l.text
        }
    }

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        try TableIO.replace(c, table: "rm_people", suffix: s, columns: SurgeProjection.peopleColumns, keyColumn: "id",
                            keys: Array(dirtyPeople), lines: peopleLines(dirtyPeople))
        try TableIO.replace(c, table: "rm_deployments", suffix: s, columns: SurgeProjection.deploymentColumns, keyColumn: "id",
                            keys: Array(dirtyDeployments), lines: deploymentLines(dirtyDeployments))
        dirtyPeople.removeAll(keepingCapacity: true)
        dirtyDeployments.removeAll(keepingCapacity: true)
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        try TableIO.copy(c, table: "rm_people", suffix: s, columns: SurgeProjection.peopleColumns, lines: peopleLines(people.keys))
        try TableIO.copy(c, table: "rm_deployments", suffix: s, columns: SurgeProjection.deploymentColumns, lines: deploymentLines(deployments.keys))
        dirtyPeople.removeAll(keepingCapacity: true)
        dirtyDeployments.removeAll(keepingCapacity: true)
    }
}

// MARK: Tasks

/// The cluster task board.
public struct TaskProjection: ProjectionDefinition {
    public init() {}
    public let name = "tasks"
    public let version = 1
    public let tables = ["rm_tasks"]
    public let eventTypes: [String]? = [
        TaskCreated.eventType, TaskAssigned.eventType, TaskStarted.eventType, TaskBlocked.eventType, TaskCompleted.eventType,
        TaskVerified.eventType, TaskCancelled.eventType, TaskReopened.eventType, TaskCommented.eventType,
    ]
    static let columns = """
        id, response, cluster, title, description, priority, due, pcode, lead_org, assignee, status, blocked_reason, comments, \
        created_at, started_at, completed_at, verified_at, cancelled_at, updated_position
        """

    public func createTables(suffix s: String) -> [String] {
        [
            """
            CREATE TABLE rm_tasks\(s) (id text PRIMARY KEY, response text NOT NULL, cluster text NOT NULL, title text NOT NULL,
                description text, priority text NOT NULL, due date, pcode text, lead_org text, assignee text, status text NOT NULL,
                blocked_reason text, comments int NOT NULL, created_at timestamptz NOT NULL, started_at timestamptz,
                completed_at timestamptz, verified_at timestamptz, cancelled_at timestamptz, updated_position bigint NOT NULL)
            """,
            "CREATE INDEX ON rm_tasks\(s) (response, cluster, status)",
            "CREATE INDEX ON rm_tasks\(s) (due) WHERE status IN ('open', 'in_progress', 'blocked')",
        ]
    }

    public func makeState() -> any ProjectionState { TaskReadModel() }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = TaskReadModel()
        for r in try c.query(SQL(unsafe: "SELECT \(Self.columns) FROM rm_tasks\(s)")).rows {
            let t = TaskReadModel.Task(
                id: try r.decode("id"), response: try r.decode("response"), cluster: try r.decode("cluster"), title: try r.decode("title"),
                description: try r.decodeOptional("description"), priority: try r.decode("priority"), due: try r.day("due"),
                pcode: try r.decodeOptional("pcode"), leadOrg: try r.decodeOptional("lead_org"), assignee: try r.decodeOptional("assignee"),
                status: try r.decode("status"), blockedReason: try r.decodeOptional("blocked_reason"), comments: try r.decode("comments"),
                createdAt: try r.decode("created_at"), startedAt: try r.decodeOptional("started_at"),
                completedAt: try r.decodeOptional("completed_at"), verifiedAt: try r.decodeOptional("verified_at"),
                cancelledAt: try r.decodeOptional("cancelled_at"), updatedPosition: try r.decode("updated_position"))
            m.tasks[t.id] = t
        }
        return m
    }
}

public final class TaskReadModel: ProjectionState {
    public struct Task: Sendable, Equatable {
        public var id, response, cluster, title: String
        public var description: String?
        public var priority: String
        public var due: Day?
        public var pcode, leadOrg, assignee: String?
        public var status: String
        public var blockedReason: String?
        public var comments: Int
        public var createdAt: Date
        public var startedAt, completedAt, verifiedAt, cancelledAt: Date?
        public var updatedPosition: Int64
    }

    public var tasks: [String: Task] = [:]
    private var dirty = Set<String>()

    public init() {}

    public func apply(_ event: RecordedEvent) throws { try apply(EventCodec.decode(event), event) }

    public func apply(_ payload: any EventPayload, _ event: RecordedEvent) throws {
        func update(_ id: String, _ change: (inout Task) -> Void) throws {
            guard var t = tasks[id] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            change(&t)
            t.updatedPosition = event.position
            tasks[id] = t
            dirty.insert(id)
        }
        let at = event.occurredAt
        switch payload {
        case let e as TaskCreated:
            tasks[e.task] = Task(id: e.task, response: e.response, cluster: e.cluster, title: e.title, description: e.description,
                                 priority: e.priority, due: e.due, pcode: e.pcode, leadOrg: e.leadOrg, assignee: e.assignee, status: "open",
                                 comments: 0, createdAt: at, updatedPosition: event.position)
            dirty.insert(e.task)
        case let e as TaskAssigned: try update(e.task) { $0.assignee = e.assignee }
        case let e as TaskStarted: try update(e.task) { $0.status = "in_progress"; $0.blockedReason = nil; if $0.startedAt == nil { $0.startedAt = at } }
        case let e as TaskBlocked: try update(e.task) { $0.status = "blocked"; $0.blockedReason = e.reason }
        case let e as TaskCompleted: try update(e.task) { $0.status = "completed"; $0.completedAt = at }
        case let e as TaskVerified: try update(e.task) { $0.status = "verified"; $0.verifiedAt = at }
        case let e as TaskCancelled: try update(e.task) { $0.status = "cancelled"; $0.cancelledAt = at }
        case let e as TaskReopened: try update(e.task) { $0.status = "open"; $0.completedAt = nil; $0.cancelledAt = nil }
        case let e as TaskCommented: try update(e.task) { $0.comments += 1 }
        default: break
        }
    }

    func lines(_ keys: some Sequence<String>) -> [String] {
        keys.compactMap { tasks[$0] }.map { t in
            var l = CopyLine()
            l.add(t.id); l.add(t.response); l.add(t.cluster); l.add(t.title); l.add(t.description); l.add(t.priority); l.add(t.due)
            l.add(t.pcode); l.add(t.leadOrg); l.add(t.assignee); l.add(t.status); l.add(t.blockedReason); l.add(t.comments)
            l.add(t.createdAt); l.add(t.startedAt); l.add(t.completedAt); l.add(t.verifiedAt); l.add(t.cancelledAt); l.add(t.updatedPosition)
            return l.text
        }
    }

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        try TableIO.replace(c, table: "rm_tasks", suffix: s, columns: TaskProjection.columns, keyColumn: "id", keys: Array(dirty), lines: lines(dirty))
        dirty.removeAll(keepingCapacity: true)
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        try TableIO.copy(c, table: "rm_tasks", suffix: s, columns: TaskProjection.columns, lines: lines(tasks.keys))
        dirty.removeAll(keepingCapacity: true)
    }
}

// MARK: Responses

/// Responses with their current severity, phase, areas and status.
public struct ResponseProjection: ProjectionDefinition {
    public init() {}
    public let name = "responses"
    public let version = 1
    public let tables = ["rm_responses"]
    public let eventTypes: [String]? = [
        ResponseDeclared.eventType, ResponseSeverityChanged.eventType, ResponseAreasAdded.eventType, ResponsePhaseChanged.eventType,
        ResponseClosed.eventType,
    ]
    static let columns = "id, name, country, hazard, glide, severity, phase, status, areas, declared_at, closed_at, severity_history"

    public func createTables(suffix s: String) -> [String] {
        [
            """
            CREATE TABLE rm_responses\(s) (id text PRIMARY KEY, name text NOT NULL, country text NOT NULL, hazard text NOT NULL, glide text,
                severity text NOT NULL, phase text NOT NULL, status text NOT NULL, areas text NOT NULL, declared_at timestamptz NOT NULL,
                closed_at timestamptz, severity_history text NOT NULL)
            """,
        ]
    }

    public func makeState() -> any ProjectionState { ResponseReadModel() }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = ResponseReadModel()
        for r in try c.query(SQL(unsafe: "SELECT \(Self.columns) FROM rm_responses\(s)")).rows {
            let x = ResponseReadModel.Response(
                id: try r.decode("id"), name: try r.decode("name"), country: try r.decode("country"), hazard: try r.decode("hazard"),
                glide: try r.decodeOptional("glide"), severity: try r.decode("severity"), phase: try r.decode("phase"),
                status: try r.decode("status"), areas: try r.decode("areas"), declaredAt: try r.decode("declared_at"),
                closedAt: try r.decodeOptional("closed_at"), severityHistory: try r.decode("severity_history"))
            m.responses[x.id] = x
        }
        return m
    }
}

public final class ResponseReadModel: ProjectionState {
    public struct Response: Sendable, Equatable {
        public var id, name, country, hazard: String
        public var glide: String?
        public var severity, phase, status: String
        /// Comma-separated P-codes.
        public var areas: String
        public var declaredAt: Date
        public var closedAt: Date?
        /// `severity@RFC3339,...` in order.
        public var severityHistory: String
    }

    public var responses: [String: Response] = [:]
    private var dirty = Set<String>()

    public init() {}

    public func apply(_ event: RecordedEvent) throws { try apply(EventCodec.decode(event), event) }

    public func apply(_ payload: any EventPayload, _ event: RecordedEvent) throws {
        func update(_ id: String, _ change: (inout Response) -> Void) throws {
            guard var r = responses[id] else { throw EventCodecError.malformed(type: event.type, position: event.position) }
            change(&r)
            responses[id] = r
            dirty.insert(id)
        }
        switch payload {
        case let e as ResponseDeclared:
            responses[e.response] = Response(id: e.response, name: e.name, country: e.country, hazard: e.hazard, glide: e.glide,
                                             severity: e.severity, phase: "response", status: "open", areas: "", declaredAt: e.declaredAt,
                                             severityHistory: "\(e.severity)@\(Timestamp.format(e.declaredAt))")
            dirty.insert(e.response)
        case let e as ResponseSeverityChanged:
            try update(e.response) { $0.severity = e.severity; $0.severityHistory += ",\(e.severity)@\(Timestamp.format(event.occurredAt))" }
        case let e as ResponseAreasAdded:
            try update(e.response) { r in
                var areas = r.areas.isEmpty ? [] : r.areas.split(separator: ",").map(String.init)
                for p in e.pcodes where !areas.contains(p) { areas.append(p) }
                r.areas = areas.joined(separator: ",")
            }
        case let e as ResponsePhaseChanged: try update(e.response) { $0.phase = e.phase }
        case let e as ResponseClosed: try update(e.response) { $0.status = "closed"; $0.closedAt = event.occurredAt }
        default: break
        }
    }

    func lines(_ keys: some Sequence<String>) -> [String] {
        keys.compactMap { responses[$0] }.map { r in
            var l = CopyLine()
            l.add(r.id); l.add(r.name); l.add(r.country); l.add(r.hazard); l.add(r.glide); l.add(r.severity); l.add(r.phase); l.add(r.status)
            l.add(r.areas); l.add(r.declaredAt); l.add(r.closedAt); l.add(r.severityHistory)
            return l.text
        }
    }

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        try TableIO.replace(c, table: "rm_responses", suffix: s, columns: ResponseProjection.columns, keyColumn: "id", keys: Array(dirty), lines: lines(dirty))
        dirty.removeAll(keepingCapacity: true)
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        try TableIO.copy(c, table: "rm_responses", suffix: s, columns: ResponseProjection.columns, lines: lines(responses.keys))
        dirty.removeAll(keepingCapacity: true)
    }
}

extension Coordination {
    /// Every read model coord keeps.
    public static let projections: [any ProjectionDefinition] = [StockProjection(), SurgeProjection(), TaskProjection(), ResponseProjection()]
}

import Events
import Foundation

/// Alerts (API.md v1.1 "Alerts and webhooks"), raised and cleared by events: a fold over the log, so a rebuild or a
/// replay finds the same alerts with the same ids, times and positions.
///
/// - Time is the log's: "today" is the UTC day of the latest `recorded_at` the fold has seen, and coordd writes a
///   `clock.ticked` event once a day, so date rules (overdue, ending soon) fire on a quiet log too, at a position.
/// - An alert's id is `<kind>:<subject>@<position that raised it>`; it is raised at that event's `recorded_at`.
/// - The fold keeps only what the rules need (its own small tables), so it depends on no other projection.
/// - Every transition is handed to `AlertOutbox` in the transaction that writes the alert rows (the live runner's
///   checkpoint transaction), which enqueues each once and never again (a rebuild enqueues nothing old).
public struct AlertProjection: ReadModelProjection {
    public let rules: AlertRules
    public init(rules: AlertRules = (try? AlertRules.fromEnvironment()) ?? AlertRules()) { self.rules = rules }
    public let name = "alerts"
    /// 1, with the thresholds' digest (a change of threshold is a change of fold: it rebuilds).
    public var version: Int { 1000 + rules.digest }
    public let eventTypes: [String]? = [
        StockLevelsSet.eventType, StockReceived.eventType, StockDispatched.eventType, StockAdjusted.eventType, StockCounted.eventType,
        StockMovementReversed.eventType, StockTransferSent.eventType, StockTransferReceived.eventType, StockTransferReturned.eventType,
        TransferCreated.eventType, TransferReceived.eventType, TransferCancelled.eventType,
        DeploymentRequested.eventType, DeploymentAmended.eventType, DeploymentConfirmed.eventType, DeploymentArrived.eventType,
        DeploymentExtended.eventType, DeploymentCompleted.eventType, DeploymentCancelled.eventType,
        TaskCreated.eventType, TaskAmended.eventType, TaskStarted.eventType, TaskBlocked.eventType, TaskCompleted.eventType,
        TaskVerified.eventType, TaskCancelled.eventType, TaskReopened.eventType,
        ResponseDeclared.eventType, ResponseSeverityChanged.eventType, ResponseClosed.eventType,
        ClockTicked.eventType,
    ]

    typealias M = AlertReadModel
    static let alerts = ReadModelTable<M.Alert>(
        "rm_alerts", key: "id", indexes: ["(status, kind)", "(response)", "(subject)"], empty: { M.Alert() }, [
            Column("id", \.id), Column("kind", \.kind), Column("subject", \.subject), Column("response", \.response),
            Column("detail", \.detail), Column("raised_at", \.raisedAt), Column("raised_position", \.raisedPosition),
            Column("cleared_at", \.clearedAt), Column("cleared_position", \.clearedPosition), Column("status", derived: \.status),
        ])
    static let cards = ReadModelTable<M.Card>("rm_alert_cards", key: "key", empty: { M.Card() }, [
        Column("key", \.key), Column("on_hand", \.onHand), Column("minimum", \.minimum),
    ])
    static let transfers = ReadModelTable<M.Transfer>("rm_alert_transfers", key: "id", empty: { M.Transfer() }, [
        Column("id", \.id), Column("detail", \.detail), Column("response", \.response), Column("sent", \.sent), Column("open", \.open),
    ])
    static let deployments = ReadModelTable<M.Deployment>("rm_alert_deployments", key: "id", empty: { M.Deployment() }, [
        Column("id", \.id), Column("response", \.response), Column("profile", \.profile), Column("status", \.status),
        Column("start_date", \.start), Column("end_date", \.end),
    ])
    static let tasks = ReadModelTable<M.Task>("rm_alert_tasks", key: "id", empty: { M.Task() }, [
        Column("id", \.id), Column("response", \.response), Column("cluster", \.cluster), Column("priority", \.priority),
        Column("due", \.due), Column("status", \.status),
    ])
    static let responses = ReadModelTable<M.Response>("rm_alert_responses", key: "id", empty: { M.Response() }, [
        Column("id", \.id), Column("severity", \.severity), Column("closed", \.closed),
    ])
    static let clock = ReadModelTable<M.ClockRow>("rm_alert_clock", key: "id", empty: { M.ClockRow() }, [
        Column("id", \.id), Column("day", \.day), Column("through", \.through),
    ])

    var readModelTables: [any AnyReadModelTable] {
        [Self.alerts, Self.cards, Self.transfers, Self.deployments, Self.tasks, Self.responses, Self.clock]
    }

    public func makeState() -> any ProjectionState { AlertReadModel(rules: rules) }

    public func loadState(_ c: PostgresConnection, suffix s: String) throws -> any ProjectionState {
        let m = AlertReadModel(rules: rules)
        for a in try Self.alerts.load(c, suffix: s) { m.load(a) }
        for x in try Self.cards.load(c, suffix: s) { m.cards[x.key] = x }
        for x in try Self.transfers.load(c, suffix: s) { m.transfers[x.id] = x }
        for x in try Self.deployments.load(c, suffix: s) { m.deployments[x.id] = x; m.index(x) }
        for x in try Self.tasks.load(c, suffix: s) { m.tasks[x.id] = x; m.index(x) }
        for x in try Self.transfers.load(c, suffix: s) where x.open { m.openTransfers.insert(x.id) }
        for x in try Self.responses.load(c, suffix: s) { m.responses[x.id] = x }
        if let row = try Self.clock.load(c, suffix: s).first { (m.today, m.through) = (row.day, row.through) }
        return m
    }
}

public final class AlertReadModel: DecodingProjectionState {
    public struct Alert: Sendable, Equatable {
        public var id = "", kind = "", subject = ""
        public var response: String?
        public var detail = ""
        public var raisedAt = Date(timeIntervalSince1970: 0)
        public var raisedPosition: Int64 = 0
        public var clearedAt: Date?
        public var clearedPosition: Int64?
        public var status: String { clearedAt == nil ? "open" : "cleared" }

        /// As the API shows it (`GET /v1/alerts`, webhook payloads, the live feed).
        public var json: String {
            var out = "{\"id\":\(JSONWriter.quote(id)),\"kind\":\(JSONWriter.quote(kind)),\"subject\":\(JSONWriter.quote(subject)),"
            out += "\"response\":" + (response.map(JSONWriter.quote) ?? "null")
            out += ",\"detail\":\(JSONWriter.quote(detail)),\"status\":\(JSONWriter.quote(status)),"
            out += "\"raised_at\":\(JSONWriter.quote(Timestamp.format(raisedAt))),\"raised_position\":\(raisedPosition),"
            out += "\"cleared_at\":" + (clearedAt.map { JSONWriter.quote(Timestamp.format($0)) } ?? "null")
            out += ",\"cleared_position\":" + (clearedPosition.map(String.init) ?? "null") + "}"
            return out
        }
    }

    struct Card: Sendable, Equatable {
        var key = ""
        var onHand: Int64 = 0
        var minimum: Int64?
    }

    struct Transfer: Sendable, Equatable {
        var id = "", detail = ""
        var response: String?
        var sent = Day(daysSinceEpoch: 0)
        var open = true
    }

    struct Deployment: Sendable, Equatable {
        var id = "", response = "", profile = "", status = ""
        var start = Day(daysSinceEpoch: 0), end = Day(daysSinceEpoch: 0)
        var group: String { response + "|" + profile }
    }

    struct Task: Sendable, Equatable {
        var id = "", response = "", cluster = "", priority = "", status = ""
        var due: Day?
    }

    struct Response: Sendable, Equatable {
        var id = "", severity = ""
        var closed = false
    }

    struct ClockRow: Sendable, Equatable {
        var id = "clock"
        var day = Day(daysSinceEpoch: 0)
        var through: Int64 = 0
    }

    /// An alert raised or cleared, for the outbox.
    public struct Transition: Sendable, Equatable {
        public let alert: Alert
        /// `alert.raised` or `alert.cleared`.
        public let type: String
        public let position: Int64
        public let at: Date
    }

    let rules: AlertRules
    public private(set) var alerts: [String: Alert] = [:]
    /// The open alert of each kind and subject (`kind|subject` to id).
    private var open: [String: String] = [:]
    var cards: [String: Card] = [:]
    var transfers: [String: Transfer] = [:]
    var deployments: [String: Deployment] = [:]
    /// The deployments still in play (requested, confirmed, deployed) by response and profile: a replacement is
    /// looked for among them. Those deployed, by their end day: the ones a day's change or a replacement concerns.
    /// The tasks a date can make overdue, and the transfers still in transit. (Indexes, so that neither a day's
    /// change nor one deployment's step looks at every deployment or task of history.)
    var groups: [String: Set<String>] = [:]
    var deployedByEnd: [Day: Set<String>] = [:]
    var activeTasks = Set<String>()
    var openTransfers = Set<String>()
    var tasks: [String: Task] = [:]
    var responses: [String: Response] = [:]
    /// The log's today (UTC day of the latest recorded_at seen) and the last position folded.
    var today = Day(daysSinceEpoch: 0)
    var through: Int64 = 0
    /// Raised and cleared since the last flush.
    public private(set) var transitions: [Transition] = []
    private var dirtyAlerts = DirtyKeys(), dirtyCards = DirtyKeys(), dirtyTransfers = DirtyKeys(), dirtyDeployments = DirtyKeys()
    private var dirtyTasks = DirtyKeys(), dirtyResponses = DirtyKeys()

    init(rules: AlertRules) { self.rules = rules }

    func load(_ a: Alert) {
        alerts[a.id] = a
        if a.clearedAt == nil { open[a.kind + "|" + a.subject] = a.id }
    }

    /// The open alerts, by id.
    public var openAlerts: [Alert] { open.values.compactMap { alerts[$0] }.sorted { $0.id < $1.id } }

    public static func decode(_ event: RecordedEvent) throws -> DomainEvent { try EventCodec.decode(event) }

    public func apply(_ domainEvent: DomainEvent, _ event: RecordedEvent) throws {
        let day = Day(event.recordedAt)
        if day > today {
            let previous = today
            today = day
            dayBegan(since: previous, event)
        }
        through = event.position
        func malformed() -> Error { EventCodecError.malformed(type: event.type, position: event.position) }
        func card(_ warehouse: String, _ item: String, _ change: (inout Card) -> Void) {
            let key = warehouse + ":" + item
            var c = cards[key] ?? Card(key: key)
            change(&c)
            cards[key] = c
            dirtyCards.touch(key)
            evaluateCard(key, event)
        }
        func move(_ warehouse: String, _ item: String, _ delta: Int64) { card(warehouse, item) { $0.onHand.add(delta) } }
        func deployment(_ id: String, _ change: (inout Deployment) -> Void) throws {
            guard let before = deployments[id] else { throw malformed() }
            var d = before
            change(&d)
            deploymentChanged(before, d, event)
        }
        func task(_ id: String, _ change: (inout Task) -> Void) throws {
            guard var t = tasks[id] else { throw malformed() }
            change(&t)
            tasks[id] = t
            index(t)
            dirtyTasks.touch(id)
            evaluateTask(id, event)
        }
        func transferClosed(_ id: String) throws {
            guard var t = transfers[id] else { throw malformed() }
            t.open = false
            transfers[id] = t
            openTransfers.remove(id)
            dirtyTransfers.touch(id)
            evaluateTransfer(id, event)
        }
        switch domainEvent {
        case .stockLevelsSet(let e): card(e.warehouse, e.item) { $0.minimum = e.minimum }
        case .stockReceived(let e): move(e.warehouse, e.item, e.quantity)
        case .stockDispatched(let e): move(e.warehouse, e.item, -e.quantity)
        case .stockAdjusted(let e): move(e.warehouse, e.item, e.delta)
        case .stockCounted(let e): move(e.warehouse, e.item, e.variance)
        case .stockMovementReversed(let e): move(e.warehouse, e.item, e.delta)
        case .stockTransferSent(let e): move(e.warehouse, e.item, -e.quantity)
        case .stockTransferReceived(let e): move(e.warehouse, e.item, e.quantity)
        case .stockTransferReturned(let e): move(e.warehouse, e.item, e.quantity)
        case .transferCreated(let e):
            transfers[e.transfer] = Transfer(id: e.transfer, detail: "\(e.quantity) x \(e.item) from \(e.from) to \(e.to)", response: e.response,
                                             sent: Day(event.occurredAt))
            openTransfers.insert(e.transfer)
            dirtyTransfers.touch(e.transfer)
            evaluateTransfer(e.transfer, event)
        case .transferReceived(let e): if e.closes { try transferClosed(e.transfer) }
        case .transferCancelled(let e): try transferClosed(e.transfer)
        case .deploymentRequested(let e):
            deploymentChanged(nil, Deployment(id: e.deployment, response: e.response, profile: e.profile, status: "requested",
                                              start: e.start, end: e.end), event)
        case .deploymentAmended(let e):
            try deployment(e.deployment) { d in
                if let v = e.start { d.start = v }
                if let v = e.end { d.end = v }
                if let v = e.profile { d.profile = v }
            }
        case .deploymentConfirmed(let e): try deployment(e.deployment) { $0.status = "confirmed" }
        case .deploymentArrived(let e): try deployment(e.deployment) { $0.status = "deployed" }
        case .deploymentExtended(let e): try deployment(e.deployment) { $0.end = e.end }
        case .deploymentCompleted(let e): try deployment(e.deployment) { $0.status = "completed" }
        case .deploymentCancelled(let e): try deployment(e.deployment) { $0.status = "cancelled" }
        case .taskCreated(let e):
            tasks[e.task] = Task(id: e.task, response: e.response, cluster: e.cluster, priority: e.priority, status: "open", due: e.due)
            index(tasks[e.task]!)
            dirtyTasks.touch(e.task)
            evaluateTask(e.task, event)
        case .taskAmended(let e):
            try task(e.task) { t in
                if let v = e.priority { t.priority = v }
                if let v = e.due { t.due = v }
            }
        case .taskStarted(let e): try task(e.task) { $0.status = "in_progress" }
        case .taskBlocked(let e): try task(e.task) { $0.status = "blocked" }
        case .taskCompleted(let e): try task(e.task) { $0.status = "completed" }
        case .taskVerified(let e): try task(e.task) { $0.status = "verified" }
        case .taskCancelled(let e): try task(e.task) { $0.status = "cancelled" }
        case .taskReopened(let e): try task(e.task) { $0.status = "open" }
        case .responseDeclared(let e):
            responses[e.response] = Response(id: e.response, severity: e.severity)
            dirtyResponses.touch(e.response)
        case .responseSeverityChanged(let e):
            guard var r = responses[e.response] else { throw malformed() }
            let rank = { (s: String) in ResponseVocabulary.severities.firstIndex(of: s) ?? 0 }
            let raised = rank(e.severity) > rank(r.severity)
            r.severity = e.severity
            responses[e.response] = r
            dirtyResponses.touch(e.response)
            // A new raise replaces an open one (orange to red after yellow to orange): the alert says the latest.
            clear("response.severity_raised", e.response, event)
            if raised, !r.closed {
                raise("response.severity_raised", e.response, response: e.response, detail: "severity raised from \(e.previous) to \(e.severity)", event)
            }
        case .responseClosed(let e):
            guard var r = responses[e.response] else { throw malformed() }
            r.closed = true
            responses[e.response] = r
            dirtyResponses.touch(e.response)
            clear("response.severity_raised", e.response, event)
        case .clockTicked:
            break
        default:
            break
        }
    }

    // MARK: Rules

    static let inPlay: Set<String> = ["requested", "confirmed", "deployed"]
    static let activeTaskStatuses: Set<String> = ["open", "in_progress", "blocked"]

    /// Keeps a deployment's entries in the indexes as they are now (after a load, or a change: `unindex` first).
    func index(_ d: Deployment) {
        if Self.inPlay.contains(d.status) { groups[d.group, default: []].insert(d.id) }
        if d.status == "deployed" { deployedByEnd[d.end, default: []].insert(d.id) }
    }

    private func unindex(_ d: Deployment) {
        groups[d.group]?.remove(d.id)
        if groups[d.group]?.isEmpty == true { groups[d.group] = nil }
        deployedByEnd[d.end]?.remove(d.id)
        if deployedByEnd[d.end]?.isEmpty == true { deployedByEnd[d.end] = nil }
    }

    func index(_ t: Task) {
        if Self.activeTaskStatuses.contains(t.status), t.due != nil { activeTasks.insert(t.id) } else { activeTasks.remove(t.id) }
    }

    /// A deployment was requested or changed: it, and the deployments of its group it could replace (before and
    /// after the change), are decided again.
    private func deploymentChanged(_ before: Deployment?, _ after: Deployment, _ event: RecordedEvent) {
        if let before { unindex(before) }
        deployments[after.id] = after
        index(after)
        dirtyDeployments.touch(after.id)
        var candidates: Set<String> = [after.id]
        for d in [before, after].compactMap({ $0 }) { candidates.formUnion(replaceable(by: d)) }
        for id in candidates.sorted() { evaluateDeployment(id, event) }
    }

    /// The deployed members of `n`'s group that `n` could be the replacement of and whose end is within the window.
    private func replaceable(by n: Deployment) -> [String] {
        let from = max(today, n.start.adding(days: -3)), to = min(today.adding(days: rules.endingDays), n.end.adding(days: -1))
        guard from <= to else { return [] }
        var out: [String] = []
        var day = from
        while day <= to {
            for id in deployedByEnd[day] ?? [] where deployments[id]?.group == n.group { out.append(id) }
            day = day.adding(days: 1)
        }
        return out
    }

    /// The date moved on from `previous`: every rule that depends on it is decided again for what it can concern
    /// (deployments ending from `previous` to the end of the new window, active tasks, transfers in transit), in key
    /// order, so transitions come in the same order on every fold.
    private func dayBegan(since previous: Day, _ event: RecordedEvent) {
        let horizon = today.adding(days: rules.endingDays)
        let ends = deployedByEnd.keys.filter { $0 >= previous && $0 <= horizon }
        for id in ends.flatMap({ deployedByEnd[$0] ?? [] }).sorted() { evaluateDeployment(id, event) }
        for id in activeTasks.sorted() { evaluateTask(id, event) }
        for id in openTransfers.sorted() { evaluateTransfer(id, event) }
    }

    private func evaluateCard(_ key: String, _ event: RecordedEvent) {
        guard let c = cards[key] else { return }
        if let minimum = c.minimum, c.onHand < minimum {
            raise("stock.below_minimum", key, response: nil, detail: "on hand \(c.onHand) below minimum \(minimum)", event)
        } else {
            clear("stock.below_minimum", key, event)
        }
    }

    private func evaluateDeployment(_ id: String, _ event: RecordedEvent) {
        guard let d = deployments[id] else { return }
        let deployed = d.status == "deployed"
        if deployed, d.end < today {
            raise("deployment.overdue_end", d.id, response: d.response, detail: "\(d.profile) still deployed after the planned end \(d.end)", event)
        } else {
            clear("deployment.overdue_end", d.id, event)
        }
        guard deployed, today <= d.end, d.end <= today.adding(days: rules.endingDays) else {
            clear("deployment.ending_unreplaced", d.id, event)
            return
        }
        // A replacement: another deployment of the same profile and response, confirmed or on the ground, that runs
        // past this one's end and starts by three days after it.
        let replaced = (groups[d.group] ?? []).contains { other in
            guard other != d.id, let n = deployments[other] else { return false }
            return (n.status == "confirmed" || n.status == "deployed") && n.end > d.end && n.start <= d.end.adding(days: 3)
        }
        if replaced {
            clear("deployment.ending_unreplaced", d.id, event)
        } else {
            raise("deployment.ending_unreplaced", d.id, response: d.response, detail: "\(d.profile) ends \(d.end) with no confirmed replacement", event)
        }
    }

    private func evaluateTask(_ id: String, _ event: RecordedEvent) {
        guard let t = tasks[id] else { return }
        let active = ["open", "in_progress", "blocked"].contains(t.status)
        if active, let due = t.due, let grace = rules.overdueDays[t.priority], due.adding(days: grace) < today {
            raise("task.overdue", id, response: t.response, detail: "\(t.cluster) \(t.priority) task due \(due)", event)
        } else {
            clear("task.overdue", id, event)
        }
    }

    private func evaluateTransfer(_ id: String, _ event: RecordedEvent) {
        guard let t = transfers[id] else { return }
        if t.open, t.sent.adding(days: rules.transitDays) < today {
            raise("transfer.overdue", id, response: t.response, detail: "\(t.detail) in transit since \(t.sent)", event)
        } else {
            clear("transfer.overdue", id, event)
        }
    }

    /// Raises an alert of this kind and subject unless one is open.
    /// `detail` is rendered only when the alert is raised: most evaluations find it open already (a card below its
    /// minimum is decided again at every movement).
    private func raise(_ kind: String, _ subject: String, response: String?, detail: @autoclosure () -> String, _ event: RecordedEvent) {
        let key = kind + "|" + subject
        guard open[key] == nil else { return }
        let alert = Alert(id: "\(kind):\(subject)@\(event.position)", kind: kind, subject: subject, response: response, detail: detail(),
                          raisedAt: event.recordedAt, raisedPosition: event.position)
        alerts[alert.id] = alert
        open[key] = alert.id
        dirtyAlerts.touch(alert.id)
        transitions.append(Transition(alert: alert, type: "alert.raised", position: event.position, at: event.recordedAt))
    }

    /// Clears the open alert of this kind and subject, if any.
    private func clear(_ kind: String, _ subject: String, _ event: RecordedEvent) {
        let key = kind + "|" + subject
        guard let id = open.removeValue(forKey: key), var alert = alerts[id] else { return }
        (alert.clearedAt, alert.clearedPosition) = (event.recordedAt, event.position)
        alerts[id] = alert
        dirtyAlerts.touch(id)
        transitions.append(Transition(alert: alert, type: "alert.cleared", position: event.position, at: event.recordedAt))
    }

    // MARK: Tables

    public func flush(_ c: PostgresConnection, suffix s: String) throws {
        typealias P = AlertProjection
        try dirtyAlerts.flush(P.alerts, c, suffix: s, rows: alerts)
        try dirtyCards.flush(P.cards, c, suffix: s, rows: cards)
        try dirtyTransfers.flush(P.transfers, c, suffix: s, rows: transfers)
        try dirtyDeployments.flush(P.deployments, c, suffix: s, rows: deployments)
        try dirtyTasks.flush(P.tasks, c, suffix: s, rows: tasks)
        try dirtyResponses.flush(P.responses, c, suffix: s, rows: responses)
        try P.clock.replace(c, suffix: s, keys: ["clock"], rows: [ClockRow(day: today, through: through)])
        try AlertOutbox.enqueue(c, transitions, through: through)
        clearDirty()
    }

    public func copyAll(_ c: PostgresConnection, suffix s: String) throws {
        typealias P = AlertProjection
        try P.alerts.copy(c, suffix: s, rows: alerts.values)
        try P.cards.copy(c, suffix: s, rows: cards.values)
        try P.transfers.copy(c, suffix: s, rows: transfers.values)
        try P.deployments.copy(c, suffix: s, rows: deployments.values)
        try P.tasks.copy(c, suffix: s, rows: tasks.values)
        try P.responses.copy(c, suffix: s, rows: responses.values)
        try P.clock.copy(c, suffix: s, rows: [ClockRow(day: today, through: through)])
        // A rebuild finds every transition of history again: the outbox enqueues only those past its mark.
        try AlertOutbox.enqueue(c, transitions, through: through)
        clearDirty()
    }

    private func clearDirty() {
        transitions.removeAll(keepingCapacity: true)
        dirtyAlerts.clear(); dirtyCards.clear(); dirtyTransfers.clear(); dirtyDeployments.clear(); dirtyTasks.clear(); dirtyResponses.clear()
    }
}

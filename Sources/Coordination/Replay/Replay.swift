import Events
import Foundation

/// Replays the log in memory, through the same folds as the live read models (never writing to them):
/// a response's timeline, state as of any moment on either time basis, the difference between two moments,
/// and after-action review figures.
public struct Replay: Sendable {
    public let store: EventStore

    public init(store: EventStore) { self.store = store }

    /// "What had happened" (occurred_at) or "what we knew" (recorded_at).
    public enum Basis: String, Sendable { case occurred, recorded }

    /// A moment: a time on a basis, or a log position.
    public enum Moment: Sendable, Equatable {
        case time(Date, Basis)
        case position(Int64)
        /// Everything.
        case now

        func includes(_ e: RecordedEvent) -> Bool {
            switch self {
            case .now: return true
            case .position(let p): return e.position <= p
            case .time(let t, .occurred): return e.occurredAt <= t
            case .time(let t, .recorded): return e.recordedAt <= t
            }
        }

        /// Events recorded after this position cannot be included (a bound for reading the log).
        var readLimit: ReadLimit {
            switch self {
            case .now: return .none
            case .position(let p): return .position(p)
            case .time(let t, .recorded): return .recordedAt(t)
            case .time(_, .occurred): return .none  // a late report of an early event may be recorded at any time
            }
        }
    }

    /// Every event of the log up to `limit`, in position order, read in batches with the next batch prefetched.
    func allEvents(limit: ReadLimit, _ body: (RecordedEvent) throws -> Void) async throws {
        try await store.forEach(until: limit, batchSize: 10_000, body)
    }

    // MARK: Which events concern a response

    /// Tracks the ids that belong to one response as the log is read in order.
    struct Membership {
        let response: String
        var deployments = Set<String>()
        var tasks = Set<String>()
        var transfers = Set<String>()
        var people = Set<String>()

        mutating func concerns(_ payload: any EventPayload, _ e: RecordedEvent) -> Bool {
            switch payload {
            case let p as ResponseDeclared: return p.response == response
            case let p as ResponseSeverityChanged: return p.response == response
            case let p as ResponseAreasAdded: return p.response == response
            case let p as ResponsePhaseChanged: return p.response == response
            case let p as ResponseClosed: return p.response == response
            case let p as DeploymentRequested:
                guard p.response == response else { return false }
                deployments.insert(p.deployment); people.insert(p.person)
                return true
            case let p as DeploymentConfirmed: return deployments.contains(p.deployment)
            case let p as DeploymentArrived: return deployments.contains(p.deployment)
            case let p as DeploymentExtended: return deployments.contains(p.deployment)
            case let p as DeploymentCompleted: return deployments.contains(p.deployment)
            case let p as DeploymentCancelled: return deployments.contains(p.deployment)
            case let p as TaskCreated:
                guard p.response == response else { return false }
                tasks.insert(p.task)
                return true
            case let p as TaskAssigned: return tasks.contains(p.task)
            case let p as TaskStarted: return tasks.contains(p.task)
            case let p as TaskBlocked: return tasks.contains(p.task)
            case let p as TaskCompleted: return tasks.contains(p.task)
            case let p as TaskVerified: return tasks.contains(p.task)
            case let p as TaskCancelled: return tasks.contains(p.task)
            case let p as TaskReopened: return tasks.contains(p.task)
            case let p as TaskCommented: return tasks.contains(p.task)
            case let p as StockDispatched: return p.response == response
            case let p as TransferCreated:
                guard p.response == response else { return false }
                transfers.insert(p.transfer)
                return true
            case let p as TransferReceived: return transfers.contains(p.transfer)
            case let p as TransferCancelled: return transfers.contains(p.transfer)
            default: return false
            }
        }
    }

    // MARK: Timeline

    public struct TimelineEntry: Sendable {
        public let event: RecordedEvent
        public let payload: any EventPayload
        public let text: String
        public let cluster: String?
        public let warehouse: String?
        public let item: String?
        public let quantity: Int64?
        public let person: String?
    }

    public struct TimelineFilter: Sendable {
        public var from: Date?
        public var to: Date?
        public var cluster: String?
        public var warehouse: String?
        public var person: String?
        public var types: Set<String>?
        public init(from: Date? = nil, to: Date? = nil, cluster: String? = nil, warehouse: String? = nil, person: String? = nil, types: Set<String>? = nil) {
            (self.from, self.to, self.cluster, self.warehouse, self.person, self.types) = (from, to, cluster, warehouse, person, types)
        }
    }

    /// The response's events in log order, each as a readable line. Nil when the response does not exist.
    public func timeline(response: String, filter: TimelineFilter = TimelineFilter()) async throws -> [TimelineEntry]? {
        var membership = Membership(response: response)
        let names = NameBook()
        var out: [TimelineEntry] = []
        var declared = false
        var clusters: [String: String] = [:]  // deployment/task -> cluster
        try await allEvents(limit: .none) { e in
            guard let payload = try? EventCodec.decode(e) else { return }
            names.learn(payload)
            guard membership.concerns(payload, e) else { return }
            if payload is ResponseDeclared { declared = true }
            let facts = Self.facts(payload, clusters: &clusters)
            if let from = filter.from, e.occurredAt < from { return }
            if let to = filter.to, e.occurredAt > to { return }
            if let c = filter.cluster, facts.cluster != c { return }
            if let w = filter.warehouse, facts.warehouse != w { return }
            if let p = filter.person, facts.person != p { return }
            if let t = filter.types, !t.contains(e.type) { return }
            out.append(TimelineEntry(event: e, payload: payload, text: Self.describe(payload, names), cluster: facts.cluster,
                                     warehouse: facts.warehouse, item: facts.item, quantity: facts.quantity, person: facts.person))
        }
        return declared ? out : nil
    }

    struct Facts { var cluster, warehouse, item: String?; var quantity: Int64?; var person: String? }

    static func facts(_ p: any EventPayload, clusters: inout [String: String]) -> Facts {
        switch p {
        case let e as DeploymentRequested:
            if let c = e.cluster { clusters[e.deployment] = c }
            return Facts(cluster: e.cluster, person: e.person)
        case let e as TaskCreated:
            clusters[e.task] = e.cluster
            return Facts(cluster: e.cluster)
        case let e as DeploymentConfirmed: return Facts(cluster: clusters[e.deployment])
        case let e as DeploymentArrived: return Facts(cluster: clusters[e.deployment])
        case let e as DeploymentExtended: return Facts(cluster: clusters[e.deployment])
        case let e as DeploymentCompleted: return Facts(cluster: clusters[e.deployment])
        case let e as DeploymentCancelled: return Facts(cluster: clusters[e.deployment])
        case let e as StockDispatched: return Facts(warehouse: e.warehouse, item: e.item, quantity: e.quantity)
        case let e as TransferCreated: return Facts(warehouse: e.from, item: e.item, quantity: e.quantity)
        default:
            if let task = (p as? TaskAssigned)?.task ?? (p as? TaskStarted)?.task ?? (p as? TaskBlocked)?.task ?? (p as? TaskCompleted)?.task
                ?? (p as? TaskVerified)?.task ?? (p as? TaskCancelled)?.task ?? (p as? TaskReopened)?.task ?? (p as? TaskCommented)?.task {
                return Facts(cluster: clusters[task])
            }
            return Facts()
        }
    }

    /// Names of items and warehouses seen so far, for readable lines.
    final class NameBook: @unchecked Sendable {
        var items: [String: String] = [:]
        var warehouses: [String: String] = [:]
        func learn(_ p: any EventPayload) {
            if let i = p as? ItemRegistered { items[i.code] = i.name }
            if let w = p as? WarehouseRegistered { warehouses[w.code] = w.name }
        }
        func item(_ code: String) -> String { items[code].map { "\(code) \($0.lowercased())" } ?? code }
    }

    static func describe(_ p: any EventPayload, _ n: NameBook) -> String {
        switch p {
        case let e as ResponseDeclared: return "Response declared: \(e.name) (\(e.hazard), \(e.country), severity \(e.severity))"
        case let e as ResponseSeverityChanged: return "Severity changed from \(e.previous) to \(e.severity)"
        case let e as ResponseAreasAdded: return "Areas added: \(e.pcodes.joined(separator: ", "))"
        case let e as ResponsePhaseChanged: return "Phase changed from \(e.previous) to \(e.phase)"
        case is ResponseClosed: return "Response closed"
        case let e as DeploymentRequested:
            return "Deployment \(e.deployment) requested: \(e.profile) from \(e.start) to \(e.end)" + (e.dutyStation.map { " at \($0)" } ?? "")
        case let e as DeploymentConfirmed: return "Deployment \(e.deployment) confirmed"
        case let e as DeploymentArrived: return "Deployment \(e.deployment) arrived"
        case let e as DeploymentExtended: return "Deployment \(e.deployment) extended from \(e.previousEnd) to \(e.end)"
        case let e as DeploymentCompleted: return "Deployment \(e.deployment) completed"
        case let e as DeploymentCancelled: return "Deployment \(e.deployment) cancelled"
        case let e as TaskCreated: return "Task \(e.task) created (\(e.cluster), \(e.priority)): \(e.title)"
        case let e as TaskAssigned: return "Task \(e.task) assigned to \(e.assignee)"
        case let e as TaskStarted: return "Task \(e.task) started"
        case let e as TaskBlocked: return "Task \(e.task) blocked: \(e.reason)"
        case let e as TaskCompleted: return "Task \(e.task) completed"
        case let e as TaskVerified: return "Task \(e.task) verified"
        case let e as TaskCancelled: return "Task \(e.task) cancelled"
        case let e as TaskReopened: return "Task \(e.task) reopened"
        case let e as TaskCommented: return "Task \(e.task) comment: \(e.text)"
        case let e as StockDispatched:
            return "Dispatched \(e.quantity) x \(n.item(e.item)) from \(e.warehouse) to \(e.destination)" + (e.reference.map { " (waybill \($0))" } ?? "")
        case let e as TransferCreated:
            return "Transfer \(e.transfer): \(e.quantity) x \(n.item(e.item)) sent from \(e.from) to \(e.to)" + (e.reference.map { " (waybill \($0))" } ?? "")
        case let e as TransferReceived: return "Transfer \(e.transfer) received: \(e.received)" + (e.lost > 0 ? ", \(e.lost) lost in transit" : "")
        case let e as TransferCancelled: return "Transfer \(e.transfer) cancelled"
        default: return type(of: p).eventType
        }
    }

    // MARK: State as of a moment

    /// Stock (all warehouses), the response's deployments and tasks, as they stood at `moment`.
    public struct State: Sendable {
        public let moment: Moment
        public let eventsApplied: Int
        public let stock: [StockReadModel.Stock]
        public let deployments: [SurgeReadModel.Deployment]
        public let tasks: [TaskReadModel.Task]
        public let response: ResponseReadModel.Response?
    }

    /// Folds the events included by `moment`, in log order, through the live read models' folds. An event
    /// whose prerequisite is not included (say, an arrival reported as occurring before its request) is skipped.
    public func state(response: String, at moment: Moment) async throws -> State {
        final class Folds: @unchecked Sendable {
            let stock = StockReadModel(), surge = SurgeReadModel(), tasks = TaskReadModel(), responses = ResponseReadModel()
            var applied = 0
        }
        let f = Folds()
        try await allEvents(limit: moment.readLimit) { e in
            guard moment.includes(e), let payload = try? EventCodec.decode(e) else { return }
            do {
                try f.stock.apply(payload, e)
                try f.surge.apply(payload, e)
                try f.tasks.apply(payload, e)
                try f.responses.apply(payload, e)
                f.applied += 1
            } catch {
                // Skipped: its subject did not exist yet at this moment.
            }
        }
        return State(moment: moment, eventsApplied: f.applied,
                     stock: f.stock.stock.values.sorted { $0.key < $1.key },
                     deployments: f.surge.deployments.values.filter { $0.response == response }.sorted { $0.id < $1.id },
                     tasks: f.tasks.tasks.values.filter { $0.response == response }.sorted { $0.id < $1.id },
                     response: f.responses.responses[response])
    }

    // MARK: Diff

    public struct Diff: Sendable {
        public struct StockDelta: Sendable { public let warehouse, item: String; public let before, after: Int64 }
        public struct Moved: Sendable { public let id: String; public let before: String?; public let after: String }
        public let stock: [StockDelta]
        public let deployments: [Moved]
        public let tasks: [Moved]
    }

    public func diff(response: String, from a: Moment, to b: Moment) async throws -> Diff {
        let before = try await state(response: response, at: a)
        let after = try await state(response: response, at: b)
        let old = Dictionary(uniqueKeysWithValues: before.stock.map { ($0.key, $0.onHand) })
        let stock = after.stock.compactMap { s -> Diff.StockDelta? in
            let was = old[s.key] ?? 0
            return was == s.onHand ? nil : Diff.StockDelta(warehouse: s.warehouse, item: s.item, before: was, after: s.onHand)
        }
        let oldD = Dictionary(uniqueKeysWithValues: before.deployments.map { ($0.id, $0.status) })
        let oldT = Dictionary(uniqueKeysWithValues: before.tasks.map { ($0.id, $0.status) })
        return Diff(stock: stock,
                    deployments: after.deployments.filter { oldD[$0.id] != $0.status }.map { .init(id: $0.id, before: oldD[$0.id], after: $0.status) },
                    tasks: after.tasks.filter { oldT[$0.id] != $0.status }.map { .init(id: $0.id, before: oldT[$0.id], after: $0.status) })
    }
}

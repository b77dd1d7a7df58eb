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

    /// Every event of the log up to `limit`, in position order, read in batches with the next batch prefetched. With
    /// `foldsOnly`, of each event's metadata only what the read-model folds read (`foldMetadataKeys`): a replay
    /// of state or figures leaves the rest on the server, a timeline (whose entries carry their events) reads it all.
    func allEvents(limit: ReadLimit, foldsOnly: Bool = false, _ body: (RecordedEvent) throws -> Void) async throws {
        try await store.forEach(filter: EventFilter(metadataKeys: foldsOnly ? foldMetadataKeys : nil), until: limit, batchSize: 10_000, body)
    }

    // MARK: Timeline

    public struct TimelineEntry: Sendable {
        public let event: RecordedEvent
        public let decoded: DomainEvent
        public let text: String
        public let cluster: String?
        public let warehouse: String?
        public let item: String?
        public let quantity: Int64?
        public let person: String?
        /// Who recorded it (the token subject that issued the command).
        public let actor: String?
        /// For a correction (an amendment or a reversal): what it corrects, a stream version or a movement id.
        public let corrects: String?
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
        var membership = ResponseMembership(response: response)
        let names = NameBook()
        var out: [TimelineEntry] = []
        var declared = false
        var clusters: [String: String] = [:]  // deployment/task -> cluster
        try await allEvents(limit: .none) { e in
            guard let decoded = try? EventCodec.decode(e) else { return }
            names.learn(decoded)
            guard membership.concerns(decoded) else { return }
            if case .responseDeclared = decoded { declared = true }
            let facts = Self.facts(decoded, clusters: &clusters)
            if let from = filter.from, e.occurredAt < from { return }
            if let to = filter.to, e.occurredAt > to { return }
            if let c = filter.cluster, facts.cluster != c { return }
            if let w = filter.warehouse, facts.warehouse != w { return }
            if let p = filter.person, facts.person != p { return }
            if let t = filter.types, !t.contains(e.type) { return }
            let actor = e.actor
            out.append(TimelineEntry(event: e, decoded: decoded, text: Self.describe(decoded, names, actor: actor), cluster: facts.cluster,
                                     warehouse: facts.warehouse, item: facts.item, quantity: facts.quantity, person: facts.person,
                                     actor: actor, corrects: Self.corrects(decoded)))
        }
        return declared ? out : nil
    }

    struct Facts { var cluster, warehouse, item: String?; var quantity: Int64?; var person: String? }

    static func facts(_ event: DomainEvent, clusters: inout [String: String]) -> Facts {
        switch event {
        case .deploymentRequested(let e):
            if let c = e.cluster { clusters[e.deployment] = c }
            return Facts(cluster: e.cluster, person: e.person)
        case .deploymentAmended(let e):
            if let c = e.cluster { clusters[e.deployment] = c }
            return Facts(cluster: clusters[e.deployment])
        case .taskCreated(let e):
            clusters[e.task] = e.cluster
            return Facts(cluster: e.cluster)
        case .stockDispatched(let e): return Facts(warehouse: e.warehouse, item: e.item, quantity: e.quantity)
        case .stockMovementReversed(let e): return Facts(warehouse: e.warehouse, item: e.item, quantity: e.delta)
        case .transferCreated(let e): return Facts(warehouse: e.from, item: e.item, quantity: e.quantity)
        case .deploymentConfirmed(let e): return Facts(cluster: clusters[e.deployment])
        case .deploymentArrived(let e): return Facts(cluster: clusters[e.deployment])
        case .deploymentExtended(let e): return Facts(cluster: clusters[e.deployment])
        case .deploymentCompleted(let e): return Facts(cluster: clusters[e.deployment])
        case .deploymentCancelled(let e): return Facts(cluster: clusters[e.deployment])
        case .taskAmended(let e): return Facts(cluster: clusters[e.task])
        case .taskAssigned(let e): return Facts(cluster: clusters[e.task])
        case .taskStarted(let e): return Facts(cluster: clusters[e.task])
        case .taskBlocked(let e): return Facts(cluster: clusters[e.task])
        case .taskCompleted(let e): return Facts(cluster: clusters[e.task])
        case .taskVerified(let e): return Facts(cluster: clusters[e.task])
        case .taskCancelled(let e): return Facts(cluster: clusters[e.task])
        case .taskReopened(let e): return Facts(cluster: clusters[e.task])
        case .taskCommented(let e): return Facts(cluster: clusters[e.task])
        default: return Facts()
        }
    }

    /// What a correction corrects: `version N` of the stream it amends, or the movement it reverses.
    static func corrects(_ event: DomainEvent) -> String? {
        switch event {
        case .responseAmended(let e): return "version \(e.amends)"
        case .warehouseAmended(let e): return "version \(e.amends)"
        case .itemAmended(let e): return "version \(e.amends)"
        case .personAmended(let e): return "version \(e.amends)"
        case .deploymentAmended(let e): return "version \(e.amends)"
        case .taskAmended(let e): return "version \(e.amends)"
        case .stockMovementReversed(let e): return e.movement
        default: return nil
        }
    }

    /// Names of items and warehouses seen so far, for readable lines.
    final class NameBook: @unchecked Sendable {
        var items: [String: String] = [:]
        var warehouses: [String: String] = [:]
        func learn(_ event: DomainEvent) {
            switch event {
            case .itemRegistered(let i): items[i.code] = i.name
            case .itemAmended(let i): if let n = i.name { items[i.code] = n }
            case .warehouseRegistered(let w): warehouses[w.code] = w.name
            case .warehouseAmended(let w): if let n = w.name { warehouses[w.code] = n }
            default: break
            }
        }
        func item(_ code: String) -> String { items[code].map { "\(code) \($0.lowercased())" } ?? code }
    }

    /// One line of an after-action document. Exhaustive: every event type has its wording.
    static func describe(_ event: DomainEvent, _ n: NameBook, actor: String?) -> String {
        let by = actor.map { " by \($0)" } ?? ""
        func because(_ reason: String?) -> String { reason.map { ": \($0)" } ?? "" }
        func fields(_ pairs: [(String, String?)]) -> String {
            pairs.compactMap { name, value in value.map { "\(name) \($0)" } }.joined(separator: ", ")
        }
        switch event {
        case .responseDeclared(let e): return "Response declared: \(e.name) (\(e.hazard), \(e.country), severity \(e.severity))"
        case .responseAmended(let e):
            return "Response corrected\(by) (version \(e.amends)): " + fields([("name", e.name), ("GLIDE", e.glide), ("country", e.country)]) + because(e.reason)
        case .responseSeverityChanged(let e): return "Severity changed from \(e.previous) to \(e.severity)"
        case .responseAreasAdded(let e): return "Areas added: \(e.pcodes.joined(separator: ", "))"
        case .responsePhaseChanged(let e): return "Phase changed from \(e.previous) to \(e.phase)"
        case .responseClosed: return "Response closed"
        case .warehouseRegistered(let e): return "Warehouse \(e.code) registered: \(e.name)"
        case .warehouseAmended(let e): return "Warehouse \(e.code) corrected\(by) (version \(e.amends))" + because(e.reason)
        case .itemRegistered(let e): return "Item \(e.code) registered: \(e.name)"
        case .itemAmended(let e): return "Item \(e.code) corrected\(by) (version \(e.amends))" + because(e.reason)
        case .stockLevelsSet(let e): return "Levels of \(n.item(e.item)) at \(e.warehouse): minimum \(e.minimum), target \(e.target)"
        case .stockReceived(let e): return "Received \(e.quantity) x \(n.item(e.item)) at \(e.warehouse)" + (e.reference.map { " (\($0))" } ?? "")
        case .stockDispatched(let e):
            return "Dispatched \(e.quantity) x \(n.item(e.item)) from \(e.warehouse) to \(e.destination)" + (e.reference.map { " (waybill \($0))" } ?? "")
        case .stockAdjusted(let e): return "Adjusted \(n.item(e.item)) at \(e.warehouse) by \(e.delta) (\(e.reason))"
        case .stockCounted(let e): return "Counted \(e.counted) x \(n.item(e.item)) at \(e.warehouse) (book \(e.book), variance \(e.variance))"
        case .stockMovementReversed(let e):
            return "\(e.movementType.capitalized) \(e.movement) reversed\(by): \(e.delta > 0 ? "+" : "")\(e.delta) x \(n.item(e.item)) at \(e.warehouse)" + because(e.reason)
        case .stockTransferSent(let e): return "Sent \(e.quantity) x \(n.item(e.item)) from \(e.warehouse) to \(e.to) (transfer \(e.transfer))"
        case .stockTransferReceived(let e): return "Received \(e.quantity) x \(n.item(e.item)) at \(e.warehouse) from \(e.from) (transfer \(e.transfer))"
        case .stockTransferReturned(let e): return "Returned \(e.quantity) x \(n.item(e.item)) to \(e.warehouse) (transfer \(e.transfer) cancelled)"
        case .transferCreated(let e):
            return "Transfer \(e.transfer): \(e.quantity) x \(n.item(e.item)) sent from \(e.from) to \(e.to)" + (e.reference.map { " (waybill \($0))" } ?? "")
        case .transferReceived(let e):
            let part = e.closes ? "received" : "partly received"
            return "Transfer \(e.transfer) \(part): \(e.received)" + (e.closes && e.lost > 0 ? ", \(e.lost) lost in transit" : "")
        case .transferCancelled(let e): return "Transfer \(e.transfer) cancelled" + because(e.reason)
        case .personRegistered(let e): return "Person \(e.person) added to the roster"
        case .personAmended(let e): return "Person \(e.person) corrected\(by) (version \(e.amends))" + because(e.reason)
        case .personUnavailabilityAdded(let e): return "Person \(e.person) unavailable from \(e.from) to \(e.to)"
        case .personBooked(let e): return "Person \(e.person) booked for deployment \(e.deployment) from \(e.start) to \(e.end)"
        case .personBookingExtended(let e): return "Person \(e.person)'s booking for \(e.deployment) extended to \(e.end)"
        case .personBookingChanged(let e): return "Person \(e.person)'s booking for \(e.deployment) now \(e.start) to \(e.end)"
        case .personBookingReleased(let e): return "Person \(e.person)'s booking for \(e.deployment) released"
        case .personErased(let e): return "Person \(e.person)'s personal data erased (\(e.redactions.count) events redacted)" + because(e.reason)
        case .deploymentRequested(let e):
            return "Deployment \(e.deployment) requested: \(e.profile) from \(e.start) to \(e.end)" + (e.dutyStation.map { " at \($0)" } ?? "")
        case .deploymentAmended(let e):
            let changes = fields([("start", e.start?.description), ("end", e.end?.description), ("duty station", e.dutyStation),
                                  ("profile", e.profile), ("cluster", e.cluster)])
            return "Deployment \(e.deployment) corrected\(by) (version \(e.amends)): \(changes)" + because(e.reason)
        case .deploymentConfirmed(let e): return "Deployment \(e.deployment) confirmed"
        case .deploymentArrived(let e): return "Deployment \(e.deployment) arrived"
        case .deploymentExtended(let e): return "Deployment \(e.deployment) extended from \(e.previousEnd) to \(e.end)"
        case .deploymentCompleted(let e): return "Deployment \(e.deployment) completed"
        case .deploymentCancelled(let e): return "Deployment \(e.deployment) cancelled" + because(e.reason)
        case .taskCreated(let e): return "Task \(e.task) created (\(e.cluster), \(e.priority)): \(e.title)"
        case .taskAmended(let e):
            let changes = fields([("title", e.title), ("priority", e.priority), ("due", e.due?.description), ("P-code", e.pcode),
                                  ("lead", e.leadOrg), ("description", e.description.map { _ in "changed" })])
            return "Task \(e.task) corrected\(by) (version \(e.amends)): \(changes)" + because(e.reason)
        case .taskAssigned(let e): return "Task \(e.task) assigned to \(e.assignee)"
        case .taskStarted(let e): return "Task \(e.task) started"
        case .taskBlocked(let e): return "Task \(e.task) blocked: \(e.reason)"
        case .taskCompleted(let e): return "Task \(e.task) completed"
        case .taskVerified(let e): return "Task \(e.task) verified"
        case .taskCancelled(let e): return "Task \(e.task) cancelled"
        case .taskReopened(let e): return "Task \(e.task) reopened"
        case .taskCommented(let e): return "Task \(e.task) comment\(by): \(e.text)"
        case .clockTicked(let e): return "Day \(e.day) began"
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

        /// The same state with the stock of these warehouses only (what a scoped token reaches).
        public func stock(at warehouses: Set<String>) -> State {
            State(moment: moment, eventsApplied: eventsApplied, stock: stock.filter { warehouses.contains($0.warehouse) },
                  deployments: deployments, tasks: tasks, response: response)
        }
    }

    /// Folds the events included by `moment`, in log order, through the live read models' folds. An event
    /// whose prerequisite is not included (say, an arrival reported as occurring before its request) is skipped.
    public func state(response: String, at moment: Moment) async throws -> State {
        final class Folds: @unchecked Sendable {
            let stock = StockReadModel(), surge = SurgeReadModel(), tasks = TaskReadModel(), responses = ResponseReadModel()
            var applied = 0
        }
        let f = Folds()
        try await allEvents(limit: moment.readLimit, foldsOnly: true) { e in
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

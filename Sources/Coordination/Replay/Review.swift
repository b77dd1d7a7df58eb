import Events
import Foundation

/// After-action review figures for one response, on the occurred-time basis ("what happened when"), over the
/// period from declaration to closure (or `until`, default now). Corrections count: a reversed dispatch is no
/// dispatch, an amended request's dates are its dates.
public struct ReviewFigures: Sendable {
    public struct Hours: Sendable { public let median: Double?; public let max: Double? }
    public struct BelowMinimum: Sendable { public let warehouse, item: String; public let days: Double }
    public struct Loss: Sendable { public let from, to, item: String; public let units: Int64 }
    public struct ClusterTasks: Sendable { public let cluster: String; public let completed: Int; public let medianHours: Double?; public let overdue: Int }

    public let response: String
    public let name: String
    public let declaredAt: Date
    public let periodEnd: Date
    public let hoursToFirstRequest: Double?
    public let hoursToFirstArrival: Double?
    public let hoursToFirstDispatch: Double?
    /// Hours from request to arrival, per deployment that arrived.
    public let requestToArrival: [String: Double]
    public var requestToArrivalSummary: Hours { Self.summary(Array(requestToArrival.values)) }
    /// Days of requested deployment periods with nobody on the ground: before arrival, or the whole
    /// requested period (up to the end of the review) when nobody ever arrived.
    public let unfilledProfileDays: Int
    /// The warehouses the response drew on: those in its country and those that dispatched to it.
    public let warehouses: [String]
    /// Per warehouse-item of `warehouses` with a minimum: days on hand stood below it during the period.
    public let daysBelowMinimum: [BelowMinimum]
    /// Units lost in transit on transfers sent from or to `warehouses` during the period, per transfer leg and item.
    public let losses: [Loss]
    public var lossesInTransit: [String: Int64] { losses.reduce(into: [:]) { $0[$1.item, default: 0].add($1.units) } }
    public let tasksByCluster: [ClusterTasks]
    /// recorded_at − occurred_at over the response's events, in hours.
    public let lateReporting: Hours

    static func median(_ xs: [Double]) -> Double? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    static func summary(_ xs: [Double]) -> Hours { Hours(median: median(xs), max: xs.max()) }
}

extension Replay {
    /// The review figures, or nil when the response does not exist.
    public func review(response: String, until: Date = Date()) async throws -> ReviewFigures? {
        var membership = ResponseMembership(response: response)
        var declared: ResponseDeclared?
        var country: String?
        var closedAt: Date?
        var requested: [String: (at: Date, start: Day, end: Day)] = [:]
        var arrived: [String: Date] = [:]
        var dispatches: [String: Date] = [:]  // movement id -> occurred, for this response; reversals remove them
        var tasks: [String: (cluster: String, created: Date, due: Day?, completed: Date?, cancelled: Bool)] = [:]
        var late: [Double] = []
        // Every warehouse's country and every stock card's movements, in occurred order later: the response's
        // warehouses are known only at the end (a warehouse that dispatches to it on day 30 counts from day 0).
        var warehouseCountry: [String: String] = [:]
        var dispatchedFrom = Set<String>()
        var movements: [String: [(at: Date, delta: Int64?, minimum: Int64?)]] = [:]
        var transfers: [String: (from: String, to: String, item: String, sent: Date)] = [:]
        var lost: [(transfer: String, units: Int64)] = []

        try await allEvents(limit: .none, foldsOnly: true) { e in
            guard let event = try? EventCodec.decode(e) else { return }
            switch event {
            case .warehouseRegistered(let w): warehouseCountry[w.code] = w.country
            case .warehouseAmended(let w): if let c = w.country { warehouseCountry[w.code] = c }
            case .stockLevelsSet(let s): movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, nil, s.minimum))
            case .transferCreated(let t): transfers[t.transfer] = (t.from, t.to, t.item, e.occurredAt)
            case .transferReceived(let t): if t.closes && t.lost > 0 { lost.append((t.transfer, t.lost)) }
            default:
                if let delta = StockState.change(event), let card = Self.stockCard(event) {
                    movements[card, default: []].append((e.occurredAt, delta, nil))
                }
            }
            guard membership.concerns(event) else { return }
            late.append(e.recordedAt.timeIntervalSince(e.occurredAt) / 3600)
            switch event {
            case .responseDeclared(let x): declared = x; country = x.country
            case .responseAmended(let x): if let c = x.country { country = c }
            case .responseClosed: closedAt = e.occurredAt
            case .deploymentRequested(let x): requested[x.deployment] = (e.occurredAt, x.start, x.end)
            case .deploymentAmended(let x):
                if let s = x.start { requested[x.deployment]?.start = s }
                if let end = x.end { requested[x.deployment]?.end = end }
            case .deploymentArrived(let x): arrived[x.deployment] = e.occurredAt
            case .stockDispatched(let x): dispatches[e.id.lowercasedString] = e.occurredAt; dispatchedFrom.insert(x.warehouse)
            case .stockMovementReversed(let x): dispatches[x.movement] = nil
            case .taskCreated(let x): tasks[x.task] = (x.cluster, e.occurredAt, x.due, nil, false)
            case .taskAmended(let x): if let due = x.due { tasks[x.task]?.due = due }
            case .taskCompleted(let x): tasks[x.task]?.completed = e.occurredAt
            case .taskReopened(let x): tasks[x.task]?.completed = nil; tasks[x.task]?.cancelled = false
            case .taskCancelled(let x): tasks[x.task]?.cancelled = true
            default: break
            }
        }
        guard let declared else { return nil }
        let start = declared.declaredAt
        let end = min(closedAt ?? until, until)
        func hours(_ d: Date?) -> Double? { d.map { $0.timeIntervalSince(start) / 3600 } }

        let requestToArrival = Dictionary(uniqueKeysWithValues: arrived.compactMap { id, at in
            requested[id].map { (id, at.timeIntervalSince($0.at) / 3600) }
        })
        let endDay = Day(end)
        var unfilled = 0
        for (id, r) in requested {
            if let at = arrived[id] {
                unfilled += max(0, Day(at).daysSinceEpoch - r.start.daysSinceEpoch)
            } else {
                let last = min(r.end, endDay)
                if last >= r.start { unfilled += last.daysSinceEpoch - r.start.daysSinceEpoch + 1 }
            }
        }

        let scope = Set(warehouseCountry.filter { $0.value == country }.keys).union(dispatchedFrom)
        var below: [ReviewFigures.BelowMinimum] = []
        for (key, list) in movements {
            let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, scope.contains(parts[0]) else { continue }
            let seconds = Self.secondsBelowMinimum(list, from: start, to: end)
            if seconds > 0 { below.append(.init(warehouse: parts[0], item: parts[1], days: (seconds / 86_400 * 10).rounded() / 10)) }
        }
        below.sort { ($0.days, $1.warehouse, $1.item) > ($1.days, $0.warehouse, $0.item) }

        let losses = lost.compactMap { l -> ReviewFigures.Loss? in
            guard let t = transfers[l.transfer], scope.contains(t.from) || scope.contains(t.to), t.sent >= start, t.sent <= end else { return nil }
            return ReviewFigures.Loss(from: t.from, to: t.to, item: t.item, units: l.units)
        }.sorted { ($0.item, $0.from, $0.to) < ($1.item, $1.from, $1.to) }

        var clusters: [String: (hours: [Double], overdue: Int, completed: Int)] = [:]
        for t in tasks.values {
            var c = clusters[t.cluster] ?? ([], 0, 0)
            if let done = t.completed, !t.cancelled {
                c.hours.append(done.timeIntervalSince(t.created) / 3600)
                c.completed += 1
            }
            if let due = t.due, !t.cancelled {
                let dueEnd = due.adding(days: 1).date
                if (t.completed ?? end) > dueEnd { c.overdue += 1 }
            }
            clusters[t.cluster] = c
        }
        return ReviewFigures(
            response: response, name: declared.name, declaredAt: start, periodEnd: end,
            hoursToFirstRequest: hours(requested.values.map(\.at).min()), hoursToFirstArrival: hours(arrived.values.min()),
            hoursToFirstDispatch: hours(dispatches.values.min()), requestToArrival: requestToArrival, unfilledProfileDays: unfilled,
            warehouses: scope.sorted(), daysBelowMinimum: below, losses: losses,
            tasksByCluster: clusters.map { .init(cluster: $0.key, completed: $0.value.completed, medianHours: ReviewFigures.median($0.value.hours),
                                                 overdue: $0.value.overdue) }.sorted { $0.cluster < $1.cluster },
            lateReporting: ReviewFigures.summary(late))
    }

    /// The stock card (`warehouse:item`) a movement event belongs to.
    static func stockCard(_ event: DomainEvent) -> String? {
        StockState.card(event).map { $0.warehouse + ":" + $0.item }
    }

    /// Time within [from, to] that on hand stood below the minimum, replaying one card's movements and level
    /// changes in occurred order (ties in log order, so a reversal follows what it reverses).
    static func secondsBelowMinimum(_ list: [(at: Date, delta: Int64?, minimum: Int64?)], from start: Date, to end: Date) -> Double {
        let sorted = list.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
        var onHand: Int64 = 0
        var minimum: Int64?
        var seconds = 0.0
        var cursor = start
        for m in sorted {
            if m.at > cursor && m.at > start {
                let from = max(cursor, start), to = min(m.at, end)
                if to > from, let minimum, onHand < minimum { seconds += to.timeIntervalSince(from) }
                cursor = max(cursor, min(m.at, end))
            }
            if let d = m.delta { onHand = Int64.clamping(onHand, plus: d) }
            if let mn = m.minimum { minimum = mn }
        }
        if end > cursor, let minimum, onHand < minimum { seconds += end.timeIntervalSince(max(cursor, start)) }
        return seconds
    }
}

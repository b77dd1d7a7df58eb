import Events
import Foundation

/// After-action review figures for one response, on the occurred-time basis ("what happened when"), over the
/// period from declaration to closure (or `until`, default now).
public struct ReviewFigures: Sendable {
    public struct Hours: Sendable { public let median: Double?; public let max: Double? }
    public struct BelowMinimum: Sendable { public let warehouse, item: String; public let days: Double }
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
    public let daysBelowMinimum: [BelowMinimum]
    /// Units lost in transit, per item, on transfers made for this response.
    public let lossesInTransit: [String: Int64]
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
        var membership = Membership(response: response)
        var declared: ResponseDeclared?
        var closedAt: Date?
        var requested: [String: (at: Date, start: Day, end: Day)] = [:]
        var arrived: [String: Date] = [:]
        var cancelled = Set<String>()
        var firstDispatch: Date?
        var losses: [String: Int64] = [:]
        var transferItems: [String: String] = [:]
        var tasks: [String: (cluster: String, created: Date, due: Day?, completed: Date?, cancelled: Bool)] = [:]
        var late: [Double] = []
        var movements: [String: [(at: Date, delta: Int64?, minimum: Int64?)]] = [:]

        try await allEvents(limit: .none) { e in
            guard let p = try? EventCodec.decode(e) else { return }
            switch p {
            case let s as StockLevelsSet: movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, nil, s.minimum))
            case let s as StockReceived: movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, s.quantity, nil))
            case let s as StockDispatched: movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, -s.quantity, nil))
            case let s as StockAdjusted: movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, s.delta, nil))
            case let s as StockCounted: movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, s.variance, nil))
            case let s as StockTransferSent: movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, -s.quantity, nil))
            case let s as StockTransferReceived: movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, s.quantity, nil))
            case let s as StockTransferReturned: movements[s.warehouse + ":" + s.item, default: []].append((e.occurredAt, s.quantity, nil))
            default: break
            }
            guard membership.concerns(p, e) else { return }
            late.append(e.recordedAt.timeIntervalSince(e.occurredAt) / 3600)
            switch p {
            case let x as ResponseDeclared: declared = x
            case is ResponseClosed: closedAt = e.occurredAt
            case let x as DeploymentRequested: requested[x.deployment] = (e.occurredAt, x.start, x.end)
            case let x as DeploymentArrived: arrived[x.deployment] = e.occurredAt
            case let x as DeploymentCancelled: cancelled.insert(x.deployment)
            case is StockDispatched: if firstDispatch == nil || e.occurredAt < firstDispatch! { firstDispatch = e.occurredAt }
            case let x as TransferCreated: transferItems[x.transfer] = x.item
            case let x as TransferReceived: if x.lost > 0, let item = transferItems[x.transfer] { losses[item, default: 0] += x.lost }
            case let x as TaskCreated: tasks[x.task] = (x.cluster, e.occurredAt, x.due, nil, false)
            case let x as TaskCompleted: tasks[x.task]?.completed = e.occurredAt
            case let x as TaskReopened: tasks[x.task]?.completed = nil; tasks[x.task]?.cancelled = false
            case let x as TaskCancelled: tasks[x.task]?.cancelled = true
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
                _ = cancelled
            }
        }

        var below: [ReviewFigures.BelowMinimum] = []
        for (key, list) in movements {
            let sorted = list.sorted { $0.at < $1.at }
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
                if let d = m.delta { onHand += d }
                if let mn = m.minimum { minimum = mn }
            }
            if end > cursor, let minimum, onHand < minimum { seconds += end.timeIntervalSince(max(cursor, start)) }
            if seconds > 0 {
                let parts = key.split(separator: ":", maxSplits: 1)
                below.append(.init(warehouse: String(parts[0]), item: String(parts[1]), days: (seconds / 86_400 * 10).rounded() / 10))
            }
        }
        below.sort { ($0.days, $1.warehouse, $1.item) > ($1.days, $0.warehouse, $0.item) }

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
            hoursToFirstDispatch: hours(firstDispatch), requestToArrival: requestToArrival, unfilledProfileDays: unfilled,
            daysBelowMinimum: below, lossesInTransit: losses,
            tasksByCluster: clusters.map { .init(cluster: $0.key, completed: $0.value.completed, medianHours: ReviewFigures.median($0.value.hours),
                                                 overdue: $0.value.overdue) }.sorted { $0.cluster < $1.cluster },
            lateReporting: ReviewFigures.summary(late))
    }
}

import Events
import Foundation

/// A day began (UTC): written once a day by coordd (stream `clock-<day>`, expected empty, so with several coordd
/// processes one wins), so rules that depend on the date (overdue tasks, deployments ending) are decided by facts in
/// the log: a rebuild or a replay meets the same days at the same positions and raises the same alerts.
public struct ClockTicked: EventPayload {
    public static let eventType = "clock.ticked"
    public var day: Day
    public init(day: Day) { self.day = day }
}

public enum Clock {
    public static func stream(_ day: Day) -> String { "clock-\(day)" }

    /// Appends today's tick unless the log has it (another process's, or this one's an hour ago). True when written.
    @discardableResult
    public static func tick(_ store: EventStore, now: Date = Date()) async throws -> Bool {
        let day = Day(now)
        let event = try EventCodec.event(ClockTicked(day: day), id: UUID.random(), metadata: EventMetadata(actor: "coordd", source: "clock"),
                                         occurredAt: now)
        do {
            try await store.append([event], to: stream(day), expected: .noStream)
            return true
        } catch EventStoreError.wrongExpectedVersion(_, _, _) {
            return false
        }
    }
}

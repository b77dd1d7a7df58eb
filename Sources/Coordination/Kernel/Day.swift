import Events
import Foundation

/// A calendar date (`YYYY-MM-DD`), as days since 1970-01-01: deployments and due dates are dates, not times.
public struct Day: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let daysSinceEpoch: Int

    public init(daysSinceEpoch: Int) { self.daysSinceEpoch = daysSinceEpoch }

    public init?(_ text: String) {
        guard let date = Timestamp.parseDate(text) else { return nil }
        daysSinceEpoch = Int(date.timeIntervalSince1970 / 86_400)
    }

    /// The UTC day of `date`.
    public init(_ date: Date) { daysSinceEpoch = Int(floor(date.timeIntervalSince1970 / 86_400)) }

    public var date: Date { Date(timeIntervalSince1970: Double(daysSinceEpoch) * 86_400) }
    public var description: String { Timestamp.formatDate(date) }
    public static func < (a: Day, b: Day) -> Bool { a.daysSinceEpoch < b.daysSinceEpoch }
    public func adding(days: Int) -> Day { Day(daysSinceEpoch: daysSinceEpoch + days) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let day = Day(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a date YYYY-MM-DD")
        }
        self = day
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

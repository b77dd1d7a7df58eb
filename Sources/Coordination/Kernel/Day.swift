import Events
import Foundation

/// A calendar date (`YYYY-MM-DD`), as days since 1970-01-01: deployments and due dates are dates, not times.
public struct Day: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let daysSinceEpoch: Int

    public init(daysSinceEpoch: Int) { self.daysSinceEpoch = daysSinceEpoch }

    /// Days the domain can mean: from 1900 to 2199. A year 0000 or 9999 is a typing mistake, and PostgreSQL's
    /// `date` and Foundation disagree about such years.
    static let plausible = -25_567...84_005  // 1900-01-01 ... 2199-12-31

    public init?(_ text: String) {
        guard let date = Timestamp.parseDate(text) else { return nil }
        let days = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
        guard Self.plausible.contains(days) else { return nil }
        daysSinceEpoch = days
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
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a date YYYY-MM-DD from 1900 to 2199")
        }
        self = day
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

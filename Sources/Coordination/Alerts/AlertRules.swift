import Events
import Foundation

/// The thresholds of the alert rules. They are part of the fold, so they are part of the alert projection's version:
/// changing one rebuilds the alerts (and enqueues nothing for the past: see `AlertOutbox`).
public struct AlertRules: Sendable, Equatable {
    /// `deployment.ending_unreplaced`: a deployment ending within this many days with no confirmed replacement.
    public var endingDays = 7
    /// `transfer.overdue`: in transit for more than this many days.
    public var transitDays = 7
    /// `task.overdue`: days past the due date, by priority; a priority not listed is never overdue.
    public var overdueDays: [String: Int] = ["urgent": 0, "high": 2, "normal": 7]

    public init() {}

    /// From COORD_ALERT_ENDING_DAYS, COORD_ALERT_TRANSIT_DAYS and COORD_ALERT_OVERDUE_DAYS (`urgent=0,high=2,normal=7`;
    /// `none` for no task rule). A malformed value is an error naming the setting (coordd does not start).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> AlertRules {
        var r = AlertRules()
        func days(_ name: String) throws -> Int? {
            guard let text = env[name], !text.isEmpty else { return nil }
            guard let n = Int(text), (0...366).contains(n) else { throw AlertRulesError(setting: name, reason: "must be a number of days from 0 to 366") }
            return n
        }
        if let n = try days("COORD_ALERT_ENDING_DAYS") { r.endingDays = n }
        if let n = try days("COORD_ALERT_TRANSIT_DAYS") { r.transitDays = n }
        if let text = env["COORD_ALERT_OVERDUE_DAYS"], !text.isEmpty {
            r.overdueDays = [:]
            if text != "none" {
                for part in text.split(separator: ",") {
                    let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard kv.count == 2, TaskVocabulary.priorities.contains(kv[0]), let n = Int(kv[1]), (0...366).contains(n) else {
                        throw AlertRulesError(setting: "COORD_ALERT_OVERDUE_DAYS",
                                              reason: "must be PRIORITY=DAYS pairs, comma-separated (priorities: \(TaskVocabulary.priorities.joined(separator: ", ")))")
                    }
                    r.overdueDays[kv[0]] = n
                }
            }
        }
        return r
    }

    /// A stable digest of the thresholds (FNV-1a over their text), folded into the projection's version.
    var digest: Int {
        let text = "\(endingDays);\(transitDays);" + overdueDays.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return Int(text.utf8.reduce(2_166_136_261 as UInt32) { ($0 ^ UInt32($1)) &* 16_777_619 } % 1000)
    }

    public var summary: String {
        "ending within \(endingDays) days; in transit over \(transitDays) days; overdue: "
            + (overdueDays.isEmpty ? "never" : overdueDays.sorted { $0.key < $1.key }.map { "\($0.key) after \($0.value) days" }.joined(separator: ", "))
    }
}

public struct AlertRulesError: Error, CustomStringConvertible {
    public let setting: String
    public let reason: String
    public var description: String { "\(setting) \(reason)" }
}

import Events
import Foundation

/// Corrections: an amend command names the fields it changes; its event keeps only those that differ from
/// the current state, and says which stream version it corrects (`amends`). The original stays in the log.
enum Amend {
    /// `new` when it differs from `current`, else nil (not part of the correction).
    static func changed<T: Equatable>(_ new: T?, _ current: T?) -> T? {
        guard let new, new != current else { return nil }
        return new
    }

    /// Refuses an amendment that changes nothing.
    static func requireChange(_ fields: [Any?]) throws {
        if fields.allSatisfy({ $0 == nil }) { throw DomainError.invalid("body", "names no field whose value differs from the current one") }
    }
}

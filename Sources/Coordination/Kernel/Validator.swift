import Events
import Foundation

/// Collects every field problem of a command, so a client learns them all at once.
public struct Validator {
    public init() {}
    private(set) var errors: [FieldError] = []
    /// Set by `CommandSchema`: instead of checking, each rule notes the bound it applies to its field.
    var recording = false
    private(set) var recorded: [FieldConstraint] = []

    static let maxQuantity: Int64 = 10_000_000
    static let maxName = 200
    static let maxText = 4000

    mutating func fail(_ field: String, _ message: String) { if !recording { errors.append(FieldError(field, message)) } }

    private mutating func note(_ field: String, _ apply: @escaping (inout FieldSchema) -> Void) {
        // Bounds of `kit[0].quantity` and the like belong to the nested schema: noted on the top field only.
        recorded.append(FieldConstraint(field: field, apply: apply))
    }

    /// Client-chosen identifiers: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
    static func isID(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 64 else { return false }
        for (i, c) in u.enumerated() {
            let alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
            guard alnum || (i > 0 && (c == 46 || c == 95 || c == 45)) else { return false }
        }
        return true
    }

    mutating func id(_ value: String, _ field: String) {
        if recording { note(field) { $0.pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"; $0.maxLength = 64 }; return }
        if !Self.isID(value) { fail(field, "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}") }
    }

    mutating func id(_ value: String?, _ field: String) {
        if let value { id(value, field) }
    }

    mutating func country(_ value: String, _ field: String) {
        if recording { note(field) { $0.pattern = "^[A-Z]{3}$"; $0.help = "ISO 3166-1 alpha-3 country code" }; return }
        if !Countries.iso3.contains(value) { fail(field, "must be an ISO 3166-1 alpha-3 country code such as PHL") }
    }

    mutating func country(_ value: String?, _ field: String) {
        if let value { country(value, field) }
    }

    /// OCHA P-codes: two letters (the country's ISO2) then letters and digits, always text.
    mutating func pcode(_ value: String?, _ field: String) {
        if recording { note(field) { $0.pattern = "^[A-Z]{2}[A-Z0-9]{0,18}$"; $0.help = "OCHA P-code" }; return }
        guard let value else { return }
        let u = Array(value.utf8)
        let ok = u.count >= 2 && u.count <= 20 && u.prefix(2).allSatisfy { $0 >= 65 && $0 <= 90 }
            && u.dropFirst(2).allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) }
        if !ok { fail(field, "must be a P-code such as PH0837 (2 capital letters, then capitals or digits, at most 20)") }
    }

    mutating func text(_ value: String, _ field: String, max: Int = Validator.maxName) {
        if recording { note(field) { $0.maxLength = max }; return }
        if value.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) { fail(field, "must not be empty") }
        else if value.count > max { fail(field, "must be at most \(max) characters") }
        else if value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
            fail(field, "must not contain control characters")
        }
    }

    mutating func text(_ value: String?, _ field: String, max: Int = Validator.maxName) {
        if let value { text(value, field, max: max) }
    }

    mutating func quantity(_ value: Int64, _ field: String) {
        if recording { note(field) { $0.minimum = 1; $0.maximum = Self.maxQuantity }; return }
        if value < 1 || value > Self.maxQuantity { fail(field, "must be a whole number from 1 to \(Self.maxQuantity)") }
    }

    mutating func oneOf(_ value: String, _ field: String, _ allowed: [String]) {
        if recording {
            // `profiles[0]`: the allowed values of an array's elements.
            let top = String(field.prefix { $0 != "[" })
            note(top) { f in if case .array = f.kind { f.help = "each one of: " + allowed.joined(separator: ", ") } else { f.allowed = allowed } }
            return
        }
        if !allowed.contains(value) { fail(field, "must be one of " + allowed.joined(separator: ", ")) }
    }

    mutating func oneOf(_ value: String?, _ field: String, _ allowed: [String]) {
        if let value { oneOf(value, field, allowed) }
    }

    mutating func email(_ value: String?, _ field: String) {
        if recording { note(field) { $0.format = "email"; $0.maxLength = 254 }; return }
        guard let value else { return }
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        if value.count > 254 || parts.count != 2 || parts[0].isEmpty || !parts[1].contains(".") || value.contains(" ") {
            fail(field, "must be an email address")
        }
    }

    /// How far a business time may be ahead of the server's clock: a field device's clock may run a little fast.
    static let clockSkew: TimeInterval = 15 * 60

    /// A business time: a fact has happened, so it is not in the future (beyond `clockSkew`), and it is not
    /// absurdly far in the past (catches unit and typing mistakes).
    mutating func time(_ value: Date?, _ field: String) {
        if recording { note(field) { $0.help = "when it happened: not in the future (15 minutes of clock skew allowed), within the last 30 years" }; return }
        guard let value else { return }
        if value.timeIntervalSinceNow > Self.clockSkew {
            fail(field, "must not be in the future (more than \(Int(Self.clockSkew / 60)) minutes after the server's clock)")
        } else if value.timeIntervalSinceNow < -30 * 365.25 * 86_400 {
            fail(field, "must be within the last 30 years")
        }
    }

    /// A whole number within `range`.
    mutating func integer(_ value: Int64?, _ field: String, _ range: ClosedRange<Int64>, _ message: String? = nil) {
        if recording { note(field) { $0.minimum = range.lowerBound; $0.maximum = range.upperBound }; return }
        if let value, !range.contains(value) { fail(field, message ?? "must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
    }

    /// A number within `range`.
    mutating func number(_ value: Double?, _ field: String, _ range: ClosedRange<Double>) {
        if recording { note(field) { $0.minimumNumber = range.lowerBound; $0.maximumNumber = range.upperBound }; return }
        if let value, !range.contains(value) { fail(field, "must be from \(Int(range.lowerBound)) to \(Int(range.upperBound))") }
    }

    func check() throws {
        if !errors.isEmpty { throw DomainError.validation(errors) }
    }

    /// Business time has an order: a lifecycle step is not dated before the step it follows (a negative
    /// request-to-arrival time is impossible). The refusal names the field, its time and the earlier step's.
    static func requireOrder(_ at: Date, notBefore earlier: Date?, _ step: String, field: String = "occurred_at") throws {
        guard let earlier, at < earlier else { return }
        throw DomainError.validation([FieldError(field, "\(Timestamp.format(at)) is before \(step) at \(Timestamp.format(earlier))")])
    }

    /// `requireOrder` for dates (a start, an end) against a business time: the day may not end before it.
    static func requireOrder(_ day: Day, notBefore earlier: Date?, _ step: String, field: String) throws {
        guard let earlier, day < Day(earlier) else { return }
        throw DomainError.validation([FieldError(field, "\(day) is before \(step) on \(Day(earlier))")])
    }
}


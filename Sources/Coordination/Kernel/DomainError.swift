import Events

/// A problem with one field of a command.
public struct FieldError: Sendable, Equatable, Codable, CustomStringConvertible {
    public let field: String
    public let message: String
    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { "\(field): \(message)" }
}

/// Why a command was refused. Its `description` is safe to show: it names fields, ids and states, never
/// personal data. (The API maps each case to a status and a problem type in coordd.)
public enum DomainError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The command is malformed or a value is out of bounds.
    case validation([FieldError])
    /// A referenced resource does not exist.
    case notFound(kind: String, id: String)
    /// A resource with this id already exists.
    case alreadyExists(kind: String, id: String)
    /// The dispatch, transfer or negative adjustment exceeds what is on hand.
    case insufficientStock(warehouse: String, item: String, requested: Int64, available: Int64)
    /// The person already holds a deployment, or is unavailable, in that period.
    case deploymentOverlap(person: String, conflicting: String, kind: String)
    /// The lifecycle does not allow this step from the current state.
    case invalidTransition(kind: String, id: String, current: String, action: String)
    /// The command breaks another domain rule.
    case rule(String)
    /// `If-Match` named an older version.
    case stale(kind: String, id: String, expected: Int64, actual: Int64)
    /// The idempotency key was used before for a different command.
    case idempotencyMismatch(key: String)
    /// Concurrent writers kept winning; the caller may retry.
    case contention(stream: String)
    /// The caller's token is scoped and the command touches something outside its scope (what, by id).
    case outOfScope(String)

    public var description: String {
        switch self {
        case .validation(let errors):
            return "invalid command: " + errors.map(\.description).joined(separator: "; ")
        case let .notFound(kind, id): return "\(kind) \(id) not found"
        case let .alreadyExists(kind, id): return "\(kind) \(id) already exists"
        case let .insufficientStock(warehouse, item, requested, available):
            return "insufficient stock of \(item) at \(warehouse): \(requested) requested, \(available) available"
        case let .deploymentOverlap(person, conflicting, kind):
            return kind == "unavailability"
                ? "person \(person) is unavailable during that period (\(conflicting))"
                : "person \(person) already holds deployment \(conflicting) overlapping that period"
        case let .invalidTransition(kind, id, current, action):
            return "cannot \(action) \(kind) \(id): it is \(current)"
        case .rule(let message): return message
        case let .stale(kind, id, expected, actual):
            return "\(kind) \(id) is at version \(actual), not \(expected)"
        case .idempotencyMismatch:
            return "this idempotency key was already used for a different request"
        case .contention(let stream):
            return "too many concurrent changes to \(stream); retry"
        case .outOfScope(let subject):
            return "\(subject) is outside this token's scope"
        }
    }

    public static func invalid(_ field: String, _ message: String) -> DomainError { .validation([FieldError(field, message)]) }
}

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

/// Why a command was refused. Every case maps to one HTTP status and one problem `type`, and its
/// `description` is safe to show: it names fields, ids and states, never personal data.
public enum DomainError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The command is malformed or a value is out of bounds (HTTP 422).
    case validation([FieldError])
    /// A referenced resource does not exist (HTTP 404).
    case notFound(kind: String, id: String)
    /// A resource with this id already exists (HTTP 409).
    case alreadyExists(kind: String, id: String)
    /// The dispatch, transfer or negative adjustment exceeds what is on hand (HTTP 409).
    case insufficientStock(warehouse: String, item: String, requested: Int64, available: Int64)
    /// The person already holds a deployment, or is unavailable, in that period (HTTP 409).
    case deploymentOverlap(person: String, conflicting: String, kind: String)
    /// The lifecycle does not allow this step from the current state (HTTP 409).
    case invalidTransition(kind: String, id: String, current: String, action: String)
    /// The command breaks another domain rule (HTTP 409).
    case rule(String)
    /// `If-Match` named an older version (HTTP 412).
    case stale(kind: String, id: String, expected: Int64, actual: Int64)
    /// The idempotency key was used before for a different command (HTTP 422).
    case idempotencyMismatch(key: String)
    /// Concurrent writers kept winning; the caller may retry (HTTP 409).
    case contention(stream: String)

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
        }
    }

    /// The last segment of the RFC 9457 problem `type`.
    public var problemType: String {
        switch self {
        case .validation: return "validation"
        case .notFound: return "not-found"
        case .alreadyExists: return "already-exists"
        case .insufficientStock: return "insufficient-stock"
        case .deploymentOverlap: return "deployment-overlap"
        case .invalidTransition: return "invalid-transition"
        case .rule: return "rule-violation"
        case .stale: return "stale"
        case .idempotencyMismatch: return "idempotency-mismatch"
        case .contention: return "contention"
        }
    }

    /// The HTTP status the API answers with.
    public var httpStatus: Int {
        switch self {
        case .validation, .idempotencyMismatch: return 422
        case .notFound: return 404
        case .stale: return 412
        case .alreadyExists, .insufficientStock, .deploymentOverlap, .invalidTransition, .rule, .contention: return 409
        }
    }

    public static func invalid(_ field: String, _ message: String) -> DomainError { .validation([FieldError(field, message)]) }
}

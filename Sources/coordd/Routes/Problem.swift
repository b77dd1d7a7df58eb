import Coordination
import Events
import Foundation

/// An RFC 9457 problem: `{"type","title","status","detail","errors":[{"field","message"}]}`, plus extra members.
struct Problem: Error, Sendable {
    var status: Int
    var type: String
    var detail: String
    var errors: [FieldError] = []
    var extra: [String: String] = [:]
    var headers: [(String, String)] = []

    init(status: Int, type: String? = nil, detail: String, errors: [FieldError] = [], extra: [String: String] = [:]) {
        self.status = status
        self.type = type ?? Problem.defaultType(status)
        self.detail = detail
        self.errors = errors
        self.extra = extra
    }

    static func defaultType(_ status: Int) -> String {
        switch status {
        case 400: return "malformed-request"
        case 401: return "unauthorized"
        case 403: return "forbidden"
        case 404: return "not-found"
        case 405: return "method-not-allowed"
        case 408: return "request-timeout"
        case 412: return "stale"
        case 413: return "body-too-large"
        case 415: return "unsupported-media-type"
        case 422: return "validation"
        case 431: return "headers-too-large"
        case 503: return "unavailable"
        case 505: return "http-version-not-supported"
        default: return status >= 500 ? "internal-error" : "error"
        }
    }

    /// The problem for a domain refusal, with the extra member that helps most: `available` (insufficient
    /// stock), `conflicting` (a deployment overlap), `current` (an invalid transition).
    init(_ error: DomainError) {
        let (status, type) = Self.statusAndType(error)
        self.init(status: status, type: type, detail: error.description)
        if case .validation(let errors) = error { self.errors = errors; self.detail = "the request has invalid fields" }
        if case let .insufficientStock(_, _, _, available) = error { extra["available"] = String(available) }
        if case let .deploymentOverlap(_, conflicting, _) = error { extra["conflicting"] = conflicting }
        if case let .invalidTransition(_, _, current, _) = error { extra["current"] = current }
    }

    /// Each refusal's status and the last segment of its problem `type`.
    static func statusAndType(_ error: DomainError) -> (Int, String) {
        switch error {
        case .validation: return (422, "validation")
        case .notFound: return (404, "not-found")
        case .alreadyExists: return (409, "already-exists")
        case .insufficientStock: return (409, "insufficient-stock")
        case .deploymentOverlap: return (409, "deployment-overlap")
        case .invalidTransition: return (409, "invalid-transition")
        case .rule: return (409, "rule-violation")
        case .stale: return (412, "stale")
        case .idempotencyMismatch: return (422, "idempotency-mismatch")
        // Not a decision on the command but a moment's load: answered like any temporary unavailability (503,
        // Retry-After), which clients already retry, and never kept as the key's answer.
        case .contention: return (503, "contention")
        // The token may not do this here; another token (or an admin) may.
        case .outOfScope: return (403, "out-of-scope")
        }
    }

    var response: HTTPResponse {
        var body = "{\"type\":" + JSONWriter.quote("https://coord.example.org/problems/" + type)
        body += ",\"title\":" + JSONWriter.quote(HTTPResponse.reasons[status] ?? "Error")
        body += ",\"status\":\(status),\"detail\":" + JSONWriter.quote(detail)
        body += ",\"errors\":[" + errors.map { "{\"field\":" + JSONWriter.quote($0.field) + ",\"message\":" + JSONWriter.quote($0.message) + "}" }
            .joined(separator: ",") + "]"
        for (key, value) in extra.sorted(by: { $0.key < $1.key }) {
            body += "," + JSONWriter.quote(key) + ":" + (Int64(value) != nil ? value : JSONWriter.quote(value))
        }
        body += "}"
        return HTTPResponse(status: status, headers: [("Content-Type", "application/problem+json; charset=utf-8")] + headers, body: Array(body.utf8))
    }
}

extension Problem {
    /// A 4xx naming the fields at fault.
    init(status: Int, errors: [FieldError]) {
        self.init(status: status, detail: "the request has invalid fields", errors: errors)
    }
}

import Coordination
import Events
import Foundation

/// What a handler sees besides the request.
struct RequestContext: Sendable {
    let request: HTTPRequest
    var params: [String: String] = [:]
    let principal: Principal?
    let requestID: String
    /// The query parameters, decoded and checked against the route's declaration once.
    let query: [String: String]
}

/// A route: method, path pattern (`:name` segments), the role it needs (nil: open), the query parameters it
/// takes, and its handler. The route table is the one source of the API's surface: the router matches with it,
/// unknown query parameters are refused with it, and the OpenAPI document is generated from it.
struct Route: Sendable {
    /// What the route does, as the OpenAPI document describes it.
    enum Kind: Sendable {
        /// A domain command: its name, and the collection its created resources live in (`Location`).
        case command(String, collection: String?)
        /// A list of the read models (filters, `limit`, `next`, `format`).
        case list(ListSpec)
        /// One resource (`ETag`, `If-None-Match`).
        case resource(String)
        /// The console's pages and assets: served to browsers, not part of the API (nor of its OpenAPI document).
        case page
        case other
    }

    let method: String
    let pattern: String
    let role: Role?
    let summary: String
    let kind: Kind
    /// The query parameters it accepts (for lists, the list's filters and the paging parameters).
    let query: [ListFilter]
    let handler: @Sendable (App, RequestContext) async throws -> HTTPResponse
    /// The pattern's segments, split once: matching runs for every request.
    let segments: [String]

    init(_ method: String, _ pattern: String, role: Role?, _ summary: String, kind: Kind = .other, query: [ListFilter] = [],
         handler: @escaping @Sendable (App, RequestContext) async throws -> HTTPResponse) {
        (self.method, self.pattern, self.role, self.summary, self.kind, self.handler) = (method, pattern, role, summary, kind, handler)
        if case .list(let spec) = kind { self.query = spec.filters + Self.pagingParameters } else { self.query = query }
        // A trailing slash is a segment of its own ("/console/" is not "/console").
        self.segments = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
    }

    /// What every list takes besides its filters.
    static let pagingParameters = [
        ListFilter("limit", .integer(1...1000), "Rows per page (default 100; CSV and HXL without it stream every row)"),
        ListFilter("next", .text, "The cursor of the next page, from the previous answer's `next` (or its Link header)"),
        ListFilter("format", .oneOf(["json", "csv", "hxl"]), "json (default), csv, or hxl (CSV with a row of HXL hashtags)"),
    ]

    /// The parameters when `parts` (a path's segments after the leading `/`) match the pattern.
    func match(_ parts: [Substring]) -> [String: String]? {
        guard parts.count == segments.count else { return nil }
        for (p, s) in zip(parts, segments) where s.first != ":" && p != s { return nil }
        var params: [String: String] = [:]
        for (p, s) in zip(parts, segments) where s.first == ":" {
            guard !p.isEmpty, let decoded = PercentEncoding.decode(p), !decoded.utf8.contains(0) else { return nil }
            params[String(s.dropFirst())] = decoded
        }
        return params
    }

    func match(_ path: String) -> [String: String]? { match(Self.parts(path)) }

    static func parts(_ path: String) -> [Substring] {
        Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst())
    }
}

import Coordination
import Events
import Foundation

/// The HTTP API of docs/API.md around its handlers: routing, query checking, authentication, the mapping of
/// every error to problem+json, request logging and metrics. Handlers live in the other files of this folder.
final class App: Sendable {
    let service: CoordinationService
    let lists: ListSource
    let tokens: TokenStore
    let sessions: SessionStore
    let runner: ProjectionRunner
    let logger: Logger
    let metrics: Metrics
    let metricsOpen: Bool
    let readyLagThreshold: Int64
    let link = ServerLink()
    /// The log's tail, read once for all live feeds.
    let fanout: EventFanout
    /// Alert transitions, read once for all live feeds.
    let alertFeed: AlertFeed
    let webhooks: WebhookStore
    /// JSON list answers served again while their read models are unchanged; nil when lists read from a standby.
    let listCache: ListCache?
    let webhookSettings: WebhookSettings
    let deliverer: WebhookDeliverer
    static let routes: [Route] = commandRoutes + readRoutes + listRoutes + operationRoutes + webhookRoutes + sessionRoutes + consoleRoutes

    /// `reads`: a store on a streaming standby for the lists (`COORD_READ_DATABASE_URL`); nil, the primary serves them.
    init(service: CoordinationService, runner: ProjectionRunner, logger: Logger, metrics: Metrics, metricsOpen: Bool,
         readyLagThreshold: Int64 = 10_000, webhookSettings: WebhookSettings = WebhookSettings(), reads: EventStore? = nil) {
        self.service = service
        self.lists = ListSource(store: service.store, reads: reads, leads: { runner.leads($0) })
        self.listCache = reads == nil ? ListCache() : nil
        self.tokens = TokenStore(pool: service.store.pool)
        self.sessions = SessionStore(pool: service.store.pool, tokens: tokens)
        self.runner = runner
        self.logger = logger
        self.metrics = metrics
        self.metricsOpen = metricsOpen
        self.readyLagThreshold = readyLagThreshold
        self.fanout = EventFanout(store: service.store, render: App.sseMessage)
        self.alertFeed = AlertFeed(pool: service.store.pool)
        self.webhooks = WebhookStore(pool: service.store.pool)
        self.webhookSettings = webhookSettings
        self.deliverer = WebhookDeliverer(pool: service.store.pool, settings: webhookSettings, logger: logger)
    }

    /// The wire layer's refusals (malformed requests, timeouts, too many connections), in the API's format.
    static let refusal: @Sendable (Int, String) -> HTTPResponse = { status, reason in Problem(status: status, detail: reason).response }

    // MARK: Dispatch

    /// Text answers of 1 KiB or more are gzipped for a client that asks (`Accept-Encoding`), and say that they vary
    /// by it. Not: streams (the live feed, streamed exports), and answers with a strong ETag (it names one
    /// representation, and `If-Match` compares it strongly), which are small anyway. Kept list answers, whose tag
    /// is weak, come already gzipped from `listJSON`.
    static func compressed(_ response: HTTPResponse, for request: HTTPRequest) -> HTTPResponse {
        // Already encoded by its route (a kept list answer's gzip, `listJSON`).
        guard response.header("content-encoding") == nil else { return response }
        guard response.stream == nil, response.status != 304, response.status != 204,
              let type = response.header("content-type")?.lowercased(),
              type.hasPrefix("application/json") || type.hasPrefix("application/problem+json") || type.hasPrefix("text/") else { return response }
        var r = response
        r.headers.append(("Vary", "Accept-Encoding"))
        guard r.body.count >= gzipThreshold, r.header("etag") == nil, Gzip.accepted(by: request.header("accept-encoding")) else { return r }
        r.body = Gzip.compress(r.body)
        r.headers.append(("Content-Encoding", "gzip"))
        return r
    }

    /// Text answers this large or larger are gzipped for a client that asks.
    static let gzipThreshold = 1024

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        let requestID = Self.requestID(request.header("x-request-id"))
        var routeName = "unmatched"
        var response: HTTPResponse
        do {
            let (route, params) = try Self.route(for: request)
            routeName = route.method + " " + route.pattern
            let query = try Self.checkQuery(request, route)
            var principal: Principal?
            if let needed = route.role {
                principal = try await authenticate(request)
                guard principal!.role >= needed else {
                    throw Problem(status: 403, detail: "this needs the \(needed.rawValue) role")
                }
            }
            // Only for a caller who signed in: an open route (health, the console's assets) never makes the server wait.
            if principal != nil, let text = request.header("coord-min-position") {
                try await awaitPosition(text, route: route)
            }
            response = try await route.handler(self, RequestContext(request: request, params: params, principal: principal,
                                                                    requestID: requestID, query: query))
        } catch {
            response = problem(for: error, requestID: requestID).response
            if response.status == 503 { response.headers.append(("Retry-After", "2")) }
        }
        response = Self.compressed(response, for: request)
        response.headers.append(("X-Request-ID", requestID))
        let micros = Double(DispatchTime.now().uptimeNanoseconds - started) / 1000
        metrics.record(route: routeName, status: response.status, seconds: micros / 1e6)
        if response.stream == nil, logger.level <= .info {
            logger.info("", ["request.id": requestID, "http.method": request.method, "http.route": routeName,
                             "http.status": String(response.status), "duration_ms": String(format: "%.1f", micros / 1000)])
        }
        return response
    }

    /// How long a read with `Coord-Min-Position` waits for the read models to reach it.
    static let minPositionWait: Double = 2
    /// The projections' event types, as `ProjectionRunner.reflects` binds them.
    static let coverage = ProjectionRunner.Coverage(Coordination.projections)

    /// `Coord-Min-Position: N` (read-your-writes): a read answers only once the database it reads from (a standby with
    /// `COORD_READ_DATABASE_URL`, which trails the primary) reflects the log up to N, waiting up to two seconds, else
    /// 503 with Retry-After. A standby that reflects N implies the primary does, so the answer reflects N whichever
    /// of them serves its parts. Commands always decide on the primary's current log, so for them only the header's
    /// form is checked.
    func awaitPosition(_ text: String, route: Route) async throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard ListSpec.isDecimalText(trimmed), trimmed.count <= 18, let position = Int64(trimmed) else {
            throw Problem(status: 400, type: "invalid-header", detail: "Coord-Min-Position must be a log position (a non-negative integer)",
                          errors: [FieldError("Coord-Min-Position", "must be a non-negative integer")])
        }
        guard route.method == "GET", position > 0 else { return }
        let pool = lists.store.pool
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(Self.minPositionWait * 1e9)
        var pause: UInt64 = 2_000_000
        while true {
            if try await ProjectionRunner.reflects(position: position, pool: pool, coverage: Self.coverage) { return }
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else {
                throw Problem(status: 503, detail: "the read models have not reached position \(position) yet; retry shortly")
            }
            try await Task.sleep(nanoseconds: min(pause, deadline - now))
            pause = min(pause * 2, 50_000_000)
        }
    }

    /// The route for a request, or 404 (no such path) / 405 (path known, method not) with `Allow`.
    static func route(for request: HTTPRequest) throws -> (Route, [String: String]) {
        let parts = Route.parts(request.path)
        let method = request.method == "HEAD" ? "GET" : request.method
        var methods: Set<String> = []
        // Only the routes with as many segments are tried, by index: a Route is copied once, when it is found.
        for i in routesBySegments[parts.count] ?? [] {
            guard let params = routes[i].match(parts) else { continue }
            if routes[i].method == method { return (routes[i], params) }
            methods.insert(routes[i].method)
        }
        if methods.isEmpty { throw Problem(status: 404, detail: "no such resource") }
        var p = Problem(status: 405, detail: "method not allowed here")
        p.headers = [("Allow", methods.sorted().joined(separator: ", "))]
        throw p
    }

    /// The indices of `routes` by their number of segments, in table order (the first match wins).
    static let routesBySegments: [Int: [Int]] = Dictionary(grouping: routes.indices, by: { routes[$0].segments.count })

    /// The request's query parameters, each one the route declares: an unknown one (a typo such as `?stauts=`)
    /// is refused rather than ignored, as unknown JSON fields are.
    static func checkQuery(_ request: HTTPRequest, _ route: Route) throws -> [String: String] {
        let query: [String: String]
        do { query = try request.queryParameters() } catch {
            throw Problem(status: 400, type: "malformed-query", detail: "the query string cannot be read",
                          errors: [FieldError(error.name ?? "query", error.reason)])
        }
        let known = Set(route.query.map(\.name))
        let unknown = query.keys.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw Problem(status: 400, type: "unknown-parameter", detail: "unknown query parameter " + unknown.joined(separator: ", "),
                          errors: unknown.map { FieldError($0, "unknown query parameter") })
        }
        _ = try ListFilter.check(route.query, query)
        return query
    }

    /// Every error as the problem the client sees. 5xx answers carry only the request id; the log has the SQLSTATE.
    func problem(for error: Error, requestID: String) -> Problem {
        switch error {
        case let problem as Problem: return problem
        case let error as DomainError: return Problem(error)
        case let error as PostgresError where error.isConnectionFailure || error.kind == .pool:
            return Problem(status: 503, detail: "the database is unavailable; retry shortly")
        case let error as MigrationError:
            logger.error("schema mismatch", ["request.id": requestID, "error": error.description])
            return Problem(status: 503, detail: "the database schema does not match this server")
        case let error as PostgresError where error.sqlState == "42P01":
            // A read model that does not exist yet: the projections are still being built.
            return Problem(status: 503, detail: "the read models are being built; retry shortly")
        case let error as PostgresError:
            // A PostgresError's description carries SQLSTATE and constraint, never values: safe to log.
            logger.error("request failed", ["request.id": requestID, "error": error.description])
            return Problem(status: 500, detail: "internal error; quote request id \(requestID)")
        default:
            // Unknown errors: logged with the request id and the type only, answered without detail.
            logger.error("request failed", ["request.id": requestID, "error": String(describing: type(of: error))])
            return Problem(status: 500, detail: "internal error; quote request id \(requestID)")
        }
    }

    static func requestID(_ given: String?) -> String {
        if let given, (1...64).contains(given.count), given.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
            return given
        }
        return UUID.random().lowercasedString
    }

    /// The caller: a bearer token (the API's clients), else the console's session cookie. A write authenticated by
    /// the cookie must carry the session's CSRF value in `X-CSRF-Token` (a cross-site page can make the browser send
    /// the cookie, never read the value).
    func authenticate(_ request: HTTPRequest) async throws -> Principal {
        guard let header = request.header("authorization") else {
            if let cookie = Self.cookie(request, named: Self.sessionCookie) {
                guard let session = try await sessions.session(cookie: cookie) else {
                    throw Problem(status: 401, detail: "the session has ended; sign in again")
                }
                if !["GET", "HEAD"].contains(request.method), !Self.constantTimeEqual(request.header("x-csrf-token") ?? "", session.csrf) {
                    throw Problem(status: 403, type: "csrf", detail: "a write from the console needs its X-CSRF-Token")
                }
                return session.principal
            }
            var p = Problem(status: 401, detail: "a bearer token is required")
            p.headers = [("WWW-Authenticate", "Bearer")]
            throw p
        }
        guard header.utf8.count > 7, header.utf8.prefix(7).elementsEqual("bearer ".utf8, by: { $0 | 0x20 == $1 }) else {
            var p = Problem(status: 401, detail: "a bearer token is required")
            p.headers = [("WWW-Authenticate", "Bearer")]
            throw p
        }
        // Values arrive trimmed of spaces and tabs at both ends (the decoder), so only those after the scheme remain.
        let token = String(Substring(header.utf8.dropFirst(7).drop { $0 == 0x20 || $0 == 0x09 }))
        guard let principal = try await tokens.authenticate(token) else {
            var p = Problem(status: 401, detail: "the token is invalid or revoked")
            p.headers = [("WWW-Authenticate", "Bearer error=\"invalid_token\"")]
            throw p
        }
        return principal
    }

    static let sessionCookie = "coord_session"

    /// A cookie's value from the request's `Cookie` headers.
    static func cookie(_ request: HTTPRequest, named name: String) -> String? {
        for (headerName, value) in request.headers where headerName == "cookie" {
            for pair in value.split(separator: ";") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name { return kv[1].trimmingCharacters(in: .whitespaces) }
            }
        }
        return nil
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

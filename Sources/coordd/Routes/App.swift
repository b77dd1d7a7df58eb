import Coordination
import Events
import Foundation

/// What a handler sees besides the request.
struct RequestContext: Sendable {
    let request: HTTPRequest
    var params: [String: String] = [:]
    let principal: Principal?
    let requestID: String
    /// The query parameters, decoded once.
    let query: [String: String]

    init(request: HTTPRequest, params: [String: String] = [:], principal: Principal?, requestID: String) {
        (self.request, self.params, self.principal, self.requestID) = (request, params, principal, requestID)
        self.query = request.query
    }
}

/// A route: method, path pattern (`:name` segments), the role it needs (nil: open) and its handler.
struct Route: Sendable {
    let method: String
    let pattern: String
    let role: Role?
    let summary: String
    let handler: @Sendable (App, RequestContext) async throws -> HTTPResponse
    /// The pattern's segments, split once: matching runs for every request.
    let segments: [String]

    init(method: String, pattern: String, role: Role?, summary: String,
         handler: @escaping @Sendable (App, RequestContext) async throws -> HTTPResponse) {
        (self.method, self.pattern, self.role, self.summary, self.handler) = (method, pattern, role, summary, handler)
        self.segments = pattern.split(separator: "/").map(String.init)
    }

    /// The parameters when `parts` (a path's segments after the leading `/`) match the pattern.
    func match(_ parts: [Substring]) -> [String: String]? {
        guard parts.count == segments.count else { return nil }
        for (p, s) in zip(parts, segments) where s.first != ":" && p != s { return nil }
        var params: [String: String] = [:]
        for (p, s) in zip(parts, segments) where s.first == ":" {
            guard !p.isEmpty, let decoded = PercentEncoding.decode(p) else { return nil }
            params[String(s.dropFirst())] = decoded
        }
        return params
    }

    func match(_ path: String) -> [String: String]? { match(Self.parts(path)) }

    static func parts(_ path: String) -> [Substring] {
        Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst())
    }
}

/// The HTTP API of API.md: routing, authentication, error mapping, logging and metrics around the handlers.
final class App: Sendable {
    let service: CoordinationService
    let queries: ReadModelQueries
    let tokens: TokenStore
    let runner: ProjectionRunner
    let logger: Logger
    let metrics: Metrics
    let metricsOpen: Bool
    let readyLagThreshold: Int64
    let link = ServerLink()
    /// The log's tail, read once for all live feeds.
    let fanout: EventFanout
    static let routes: [Route] = commandRoutes + readRoutes + operationRoutes

    init(service: CoordinationService, runner: ProjectionRunner, logger: Logger, metrics: Metrics, metricsOpen: Bool,
         readyLagThreshold: Int64 = 10_000) {
        self.service = service
        self.queries = ReadModelQueries(pool: service.store.pool)
        self.tokens = TokenStore(pool: service.store.pool)
        self.runner = runner
        self.logger = logger
        self.metrics = metrics
        self.metricsOpen = metricsOpen
        self.readyLagThreshold = readyLagThreshold
        self.fanout = EventFanout(store: service.store, render: App.sseMessage)
    }

    // MARK: Dispatch

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let started = DispatchTime.now().uptimeNanoseconds
        let requestID = Self.requestID(request.header("x-request-id"))
        var routeName = "unmatched"
        var response: HTTPResponse
        do {
            let parts = Route.parts(request.path)
            let matching = Self.routes.compactMap { r in r.match(parts).map { (r, $0) } }
            let method = request.method == "HEAD" ? "GET" : request.method
            guard let (route, params) = matching.first(where: { $0.0.method == method }) else {
                if matching.isEmpty { throw Problem(status: 404, detail: "no such resource") }
                var p = Problem(status: 405, detail: "method not allowed here")
                p.headers = [("Allow", Set(matching.map(\.0.method)).sorted().joined(separator: ", "))]
                throw p
            }
            routeName = route.method + " " + route.pattern
            var principal: Principal?
            if let needed = route.role {
                principal = try await authenticate(request)
                guard principal!.role >= needed else {
                    throw Problem(status: 403, detail: "this needs the \(needed.rawValue) role")
                }
            }
            response = try await route.handler(self, RequestContext(request: request, params: params, principal: principal, requestID: requestID))
        } catch let problem as Problem {
            response = problem.response
        } catch let error as DomainError {
            response = Problem(error).response
        } catch let error as PostgresError where error.isConnectionFailure || error.kind == .pool {
            response = Problem(status: 503, detail: "the database is unavailable; retry shortly").response
            response.headers.append(("Retry-After", "2"))
        } catch let error as MigrationError {
            logger.error("schema mismatch", ["request.id": requestID, "error": error.description])
            response = Problem(status: 503, detail: "the database schema does not match this server").response
        } catch let error as PostgresError where error.sqlState == "42P01" {
            // A read model that does not exist yet: the projections are still being built.
            response = Problem(status: 503, detail: "the read models are being built; retry shortly").response
            response.headers.append(("Retry-After", "2"))
        } catch let error as PostgresError {
            // A PostgresError's description carries SQLSTATE and constraint, never values: safe to log.
            logger.error("request failed", ["request.id": requestID, "error": error.description])
            response = Problem(status: 500, detail: "internal error; quote request id \(requestID)").response
        } catch {
            // Unknown errors: logged with the request id, answered without detail.
            logger.error("request failed", ["request.id": requestID, "error": String(describing: type(of: error))])
            response = Problem(status: 500, detail: "internal error; quote request id \(requestID)").response
        }
        response.headers.append(("X-Request-ID", requestID))
        let micros = Double(DispatchTime.now().uptimeNanoseconds - started) / 1000
        metrics.record(route: routeName, status: response.status, seconds: micros / 1e6)
        if response.stream == nil, logger.level <= .info {
            logger.info("", ["request.id": requestID, "http.method": request.method, "http.route": routeName,
                             "http.status": String(response.status), "duration_ms": String(format: "%.1f", micros / 1000)])
        }
        return response
    }

    static func requestID(_ given: String?) -> String {
        if let given, (1...64).contains(given.count), given.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
            return given
        }
        return UUID.random().lowercasedString
    }

    func authenticate(_ request: HTTPRequest) async throws -> Principal {
        guard let header = request.header("authorization"), header.utf8.count > 7,
              header.utf8.prefix(7).elementsEqual("bearer ".utf8, by: { $0 | 0x20 == $1 }) else {
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

    // MARK: Commands

    /// (method, path, command, collection for Location when it creates)
    static let commandTable: [(String, String, String, String?)] = [
        ("POST", "/v1/warehouses", "warehouse.register", "/v1/warehouses"),
        ("POST", "/v1/items", "item.register", "/v1/items"),
        ("PUT", "/v1/warehouses/:code/levels/:item", "levels.set", nil),
        ("POST", "/v1/responses", "response.declare", "/v1/responses"),
        ("POST", "/v1/responses/:id/severity", "response.severity", nil),
        ("POST", "/v1/responses/:id/close", "response.close", nil),
        ("POST", "/v1/responses/:id/areas", "response.areas", nil),
        ("POST", "/v1/responses/:id/phase", "response.phase", nil),
        ("POST", "/v1/stock/receipts", "stock.receive", nil),
        ("POST", "/v1/stock/dispatches", "stock.dispatch", nil),
        ("POST", "/v1/stock/adjustments", "stock.adjust", nil),
        ("POST", "/v1/stock/counts", "stock.count", nil),
        ("POST", "/v1/stock/transfers", "stock.transfer", "/v1/stock/transfers"),
        ("POST", "/v1/stock/transfers/:id/receive", "stock.transfer.receive", nil),
        ("POST", "/v1/stock/transfers/:id/cancel", "stock.transfer.cancel", nil),
        ("POST", "/v1/people", "person.register", "/v1/people"),
        ("POST", "/v1/people/:id/unavailability", "person.unavailability", nil),
        ("POST", "/v1/deployments", "deployment.request", "/v1/deployments"),
        ("POST", "/v1/deployments/:id/confirm", "deployment.confirm", nil),
        ("POST", "/v1/deployments/:id/arrive", "deployment.arrive", nil),
        ("POST", "/v1/deployments/:id/extend", "deployment.extend", nil),
        ("POST", "/v1/deployments/:id/complete", "deployment.complete", nil),
        ("POST", "/v1/deployments/:id/cancel", "deployment.cancel", nil),
        ("POST", "/v1/tasks", "task.create", "/v1/tasks"),
        ("POST", "/v1/tasks/:id/assign", "task.assign", nil),
        ("POST", "/v1/tasks/:id/start", "task.start", nil),
        ("POST", "/v1/tasks/:id/block", "task.block", nil),
        ("POST", "/v1/tasks/:id/complete", "task.complete", nil),
        ("POST", "/v1/tasks/:id/verify", "task.verify", nil),
        ("POST", "/v1/tasks/:id/cancel", "task.cancel", nil),
        ("POST", "/v1/tasks/:id/reopen", "task.reopen", nil),
        ("POST", "/v1/tasks/:id/comments", "task.comment", nil),
    ]

    static let commandRoutes: [Route] = commandTable.map { method, pattern, command, collection in
        Route(method: method, pattern: pattern, role: .operator, summary: "Command \(command)") { app, ctx in
            try await app.runCommand(command, ctx, collection: collection)
        }
    }

    func runCommand(_ name: String, _ ctx: RequestContext, collection: String?) async throws -> HTTPResponse {
        let request = ctx.request
        var value = JSONValue.object([])
        if !request.body.isEmpty {
            let type = request.header("content-type")?.lowercased() ?? ""
            guard type.hasPrefix("application/json") else {
                throw Problem(status: 415, detail: "send the body as application/json")
            }
            guard String(validating: request.body, as: UTF8.self) != nil else { throw Problem(status: 400, detail: "the body is not valid UTF-8") }
            guard let parsed = try? JSONValue.parse(Data(request.body)) else { throw Problem(status: 400, detail: "the body is not valid JSON") }
            guard parsed.keys != nil else { throw Problem(status: 422, errors: [FieldError("body", "must be a JSON object")]) }
            value = parsed
        }
        // Path parameters join the body; a body field naming one must agree with the path.
        for (key, path) in ctx.params {
            if case .string(let given)? = value[key], given != path {
                throw Problem(status: 422, errors: [FieldError(key, "differs from the path")])
            }
            value = value.setting(key, .string(path))
        }
        var context = CommandContext(actor: ctx.principal?.subject ?? "anonymous", correlationID: ctx.requestID, source: "api")
        context.idempotencyKey = request.header("idempotency-key")
        if let ifMatch = request.header("if-match") {
            guard let version = Int64(ifMatch.trimmingCharacters(in: CharacterSet(charactersIn: "\" W/"))) else {
                throw Problem(status: 400, detail: "If-Match must be a version ETag such as \"3\"")
            }
            context.expectedVersion = version
        }
        let result = try await service.execute(name: name, value: value, context)
        var headers: [(String, String)] = [("ETag", "\"\(result.version)\"")]
        if result.created, let collection { headers.append(("Location", "\(collection)/\(result.id)")) }
        return .json(result.created ? 201 : 200, result.body, headers: headers)
    }
}

extension Problem {
    init(status: Int, errors: [FieldError]) {
        self.init(status: status, detail: "the request has invalid fields", errors: errors)
    }
}

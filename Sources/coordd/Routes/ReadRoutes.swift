import Coordination
import Events
import Foundation

extension App {
    static func limit(_ ctx: RequestContext) throws -> Int {
        guard let text = ctx.query["limit"] else { return 100 }
        guard let n = Int(text), (1...1000).contains(n) else {
            throw Problem(status: 422, errors: [FieldError("limit", "must be a whole number from 1 to 1000")])
        }
        return n
    }

    /// The opaque cursor: the last key, base64url-encoded.
    static func cursor(_ ctx: RequestContext) throws -> String? {
        guard let text = ctx.query["next"] ?? ctx.query["cursor"] else { return nil }
        var b64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64), let key = String(data: data, encoding: .utf8) else {
            throw Problem(status: 422, errors: [FieldError("next", "is not a cursor this server issued")])
        }
        return key
    }

    static func encodeCursor(_ key: String) -> String {
        Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func oneOf(_ ctx: RequestContext, _ name: String, _ allowed: [String]) throws -> String? {
        guard let v = ctx.query[name] else { return nil }
        guard allowed.contains(v) else { throw Problem(status: 422, errors: [FieldError(name, "must be one of " + allowed.joined(separator: ", "))]) }
        return v
    }

    /// A list answer: JSON `{"items": [...], "next": cursor|null}`, or CSV/HXL with `?format=`.
    static func list(_ table: ResultTable, _ ctx: RequestContext, limit: Int? = nil, key: ((Int) -> String)? = nil, hxl: [String: String]? = nil) throws -> HTTPResponse {
        switch try oneOf(ctx, "format", ["json", "csv", "hxl"]) ?? "json" {
        case "csv": return .text(200, table.csv(hxl: nil), contentType: "text/csv; charset=utf-8")
        case "hxl": return .text(200, table.csv(hxl: hxl ?? [:]), contentType: "text/csv; charset=utf-8")
        default:
            var next = "null"
            if let limit, let key, table.rows.count == limit { next = JSONWriter.quote(encodeCursor(key(table.rows.count - 1))) }
            return .json(200, "{\"items\":\(table.json),\"next\":\(next)}")
        }
    }

    static func requireText(_ ctx: RequestContext, _ name: String) throws -> String {
        guard let v = ctx.query[name], !v.isEmpty else { throw Problem(status: 422, errors: [FieldError(name, "is required")]) }
        return v
    }

    static func day(_ ctx: RequestContext, _ name: String) throws -> Day? {
        guard let v = ctx.query[name] else { return nil }
        guard let d = Day(v) else { throw Problem(status: 422, errors: [FieldError(name, "must be a date YYYY-MM-DD")]) }
        return d
    }

    /// A single resource with its ETag; 404 when unknown.
    static func resource(_ app: App, kind: String, _ ctx: RequestContext) async throws -> HTTPResponse {
        let id = ctx.params["id"]!
        guard let (state, version) = try await app.service.state(kind: kind, id: id) else {
            throw Problem(status: 404, detail: "\(kind) \(id) not found")
        }
        let etag = "\"\(version)\""
        if let inm = ctx.request.header("if-none-match"), inm == etag { return HTTPResponse(status: 304, headers: [("ETag", etag)]) }
        var body = state.text
        body.removeLast()
        body += ",\"version\":\(version)}"
        return .json(200, body, headers: [("ETag", etag)])
    }

    static let readRoutes: [Route] = [
        Route(method: "GET", pattern: "/v1/warehouses", role: .viewer, summary: "Warehouses") { app, ctx in
            try list(try await app.queries.warehouses(), ctx)
        },
        Route(method: "GET", pattern: "/v1/items", role: .viewer, summary: "Items") { app, ctx in
            try list(try await app.queries.items(), ctx)
        },
        Route(method: "GET", pattern: "/v1/stock", role: .viewer, summary: "Stock on hand against levels") { app, ctx in
            let limit = try limit(ctx)
            let status = try oneOf(ctx, "status", ["below_minimum", "below_target", "ok"])
            let table = try await app.queries.stock(warehouse: ctx.query["warehouse"], item: ctx.query["item"], status: status,
                                                    limit: limit, after: try cursor(ctx))
            let w = table.column("warehouse"), i = table.column("item")
            return try list(table, ctx, limit: limit, key: { "\(w[$0]!):\(i[$0]!)" }, hxl: HXLTags.stock)
        },
        Route(method: "GET", pattern: "/v1/stock/ledger", role: .viewer, summary: "Stock card with running balances") { app, ctx in
            let limit = try limit(ctx)
            let after = try cursor(ctx).flatMap { Int64($0) } ?? 0
            let table = try await app.queries.ledger(warehouse: try requireText(ctx, "warehouse"), item: try requireText(ctx, "item"),
                                                     limit: limit, afterPosition: after)
            let positions = table.column("position")
            return try list(table, ctx, limit: limit, key: { positions[$0]! })
        },
        Route(method: "GET", pattern: "/v1/stock/transfers", role: .viewer, summary: "Transfers") { app, ctx in
            let limit = try limit(ctx)
            let table = try await app.queries.transfers(status: try oneOf(ctx, "status", ["in_transit", "received", "cancelled"]),
                                                        limit: limit, after: try cursor(ctx))
            let ids = table.column("id")
            return try list(table, ctx, limit: limit, key: { ids[$0]! })
        },
        Route(method: "GET", pattern: "/v1/stock/transfers/:id", role: .viewer, summary: "One transfer") { app, ctx in
            try await resource(app, kind: "transfer", ctx)
        },
        Route(method: "GET", pattern: "/v1/responses", role: .viewer, summary: "Responses") { app, ctx in
            try list(try await app.queries.responses(status: try oneOf(ctx, "status", ["open", "closed"])), ctx)
        },
        Route(method: "GET", pattern: "/v1/responses/:id", role: .viewer, summary: "Response summary") { app, ctx in
            let id = ctx.params["id"]!
            guard let (_, version) = try await app.service.state(kind: "response", id: id) else { throw Problem(status: 404, detail: "response \(id) not found") }
            guard let s = try await app.queries.summary(response: id) else {
                // Known to the log but not yet to the read model: answer from the aggregate.
                return try await resource(app, kind: "response", ctx)
            }
            var body = String(s.response.json.dropFirst().dropLast())
            body.removeLast()
            body += ",\"deployments_by_status\":\(s.deploymentsByStatus.json),\"tasks_by_cluster_and_status\":\(s.tasksByClusterAndStatus.json)"
            body += ",\"dispatched_by_item\":\(s.dispatchedByItem.json),\"version\":\(version)}"
            return .json(200, body, headers: [("ETag", "\"\(version)\"")])
        },
        Route(method: "GET", pattern: "/v1/responses/:id/timeline", role: .viewer,
              summary: "The response's events in order with occurred and recorded times; ?from=&to=&cluster=&warehouse=&person=&type=&format=json|csv|hxl") { app, ctx in
            func time(_ name: String) throws -> Date? {
                guard let v = ctx.query[name] else { return nil }
                guard let t = Timestamp.parse(v) else { throw Problem(status: 422, errors: [FieldError(name, "must be an RFC 3339 time")]) }
                return t
            }
            let filter = Replay.TimelineFilter(from: try time("from"), to: try time("to"), cluster: ctx.query["cluster"], warehouse: ctx.query["warehouse"],
                                               person: ctx.query["person"], types: ctx.query["type"].map { Set($0.split(separator: ",").map(String.init)) })
            let format = try oneOf(ctx, "format", ["json", "csv", "hxl"]) ?? "json"
            let id = ctx.params["id"]!
            guard let entries = try await Replay(store: app.service.store).timeline(response: id, filter: filter) else {
                throw Problem(status: 404, detail: "response \(id) not found")
            }
            if format == "json" { return .json(200, "{\"items\":" + ReplayOutput.timelineJSON(entries) + "}") }
            return .text(200, ReplayOutput.timelineCSV(entries, response: id, hxl: format == "hxl"), contentType: "text/csv; charset=utf-8")
        },
        Route(method: "GET", pattern: "/v1/responses/:id/state", role: .viewer,
              summary: "Stock, deployments and tasks as they stood; ?as_of=<RFC 3339 time or position>&basis=occurred|recorded") { app, ctx in
            let basis = Replay.Basis(rawValue: try oneOf(ctx, "basis", ["occurred", "recorded"]) ?? "occurred")!
            var moment = Replay.Moment.now
            if let text = ctx.query["as_of"] {
                if let p = Int64(text), p >= 0 { moment = .position(p) }
                else if let t = Timestamp.parse(text) { moment = .time(t, basis) }
                else { throw Problem(status: 422, errors: [FieldError("as_of", "must be an RFC 3339 time or a position")]) }
            }
            let state = try await Replay(store: app.service.store).state(response: ctx.params["id"]!, at: moment)
            guard state.response != nil else { throw Problem(status: 404, detail: "response \(ctx.params["id"]!) not found") }
            return .json(200, ReplayOutput.stateJSON(state))
        },
        Route(method: "GET", pattern: "/v1/responses/:id/review", role: .viewer,
              summary: "After-action review figures; ?format=json|csv|hxl|md") { app, ctx in
            let format = try oneOf(ctx, "format", ["json", "csv", "hxl", "md"]) ?? "json"
            guard let r = try await Replay(store: app.service.store).review(response: ctx.params["id"]!) else {
                throw Problem(status: 404, detail: "response \(ctx.params["id"]!) not found")
            }
            switch format {
            case "md": return .text(200, ReplayOutput.reviewMarkdown(r), contentType: "text/markdown; charset=utf-8")
            case "csv", "hxl": return .text(200, ReplayOutput.reviewCSV(r, hxl: format == "hxl"), contentType: "text/csv; charset=utf-8")
            default: return .json(200, ReplayOutput.reviewJSON(r))
            }
        },
        Route(method: "GET", pattern: "/v1/people/:id", role: .viewer, summary: "A roster member") { app, ctx in
            try await resource(app, kind: "person", ctx)
        },
        Route(method: "GET", pattern: "/v1/deployments", role: .viewer, summary: "Deployments") { app, ctx in
            let limit = try limit(ctx)
            var ending: Int?
            if let text = ctx.query["ending_within_days"] {
                guard let n = Int(text), (0...366).contains(n) else { throw Problem(status: 422, errors: [FieldError("ending_within_days", "must be 0 to 366")]) }
                ending = n
            }
            let table = try await app.queries.deployments(
                response: ctx.query["response"], person: ctx.query["person"],
                status: try oneOf(ctx, "status", ["requested", "confirmed", "deployed", "completed", "cancelled"]),
                activeOn: try day(ctx, "active_on"), endingWithinDays: ending, limit: limit, after: try cursor(ctx))
            let ids = table.column("id")
            return try list(table, ctx, limit: limit, key: { ids[$0]! }, hxl: HXLTags.deployments)
        },
        Route(method: "GET", pattern: "/v1/deployments/:id", role: .viewer, summary: "One deployment") { app, ctx in
            try await resource(app, kind: "deployment", ctx)
        },
        Route(method: "GET", pattern: "/v1/tasks", role: .viewer, summary: "Cluster task board") { app, ctx in
            let limit = try limit(ctx)
            let overdue = try oneOf(ctx, "overdue", ["true", "false"]) == "true"
            let table = try await app.queries.tasks(response: ctx.query["response"], cluster: ctx.query["cluster"],
                                                    status: try oneOf(ctx, "status", TaskVocabulary.statuses), assignee: ctx.query["assignee"],
                                                    overdue: overdue, limit: limit, after: try cursor(ctx))
            let ids = table.column("id")
            return try list(table, ctx, limit: limit, key: { ids[$0]! }, hxl: HXLTags.tasks)
        },
        Route(method: "GET", pattern: "/v1/tasks/:id", role: .viewer, summary: "One task") { app, ctx in
            try await resource(app, kind: "task", ctx)
        },
        Route(method: "GET", pattern: "/v1/alerts", role: .viewer, summary: "Below-minimum stock, deployments ending without replacement, overdue urgent tasks") { app, ctx in
            try list(try await app.queries.alerts(), ctx)
        },
        Route(method: "GET", pattern: "/v1/events", role: .viewer, summary: "The event log, in position order") { app, ctx in
            let limit = try limit(ctx)
            var after: Int64 = 0
            if let text = ctx.query["after"] {
                guard let p = Int64(text), p >= 0 else { throw Problem(status: 422, errors: [FieldError("after", "must be a position")]) }
                after = p
            }
            var filter = EventFilter()
            if let t = ctx.query["type"] { filter.types = t.split(separator: ",").map(String.init) }
            if let s = ctx.query["stream"] { filter.streams = [s] }
            if let c = ctx.query["category"] { filter.categories = c.split(separator: ",").map(String.init) }
            let events = try await app.service.store.read(after: after, limit: limit, filter: filter)
            let next = events.count == limit ? String(events.last!.position) : "null"
            return .json(200, "{\"events\":[" + events.map { $0.json() }.joined(separator: ",") + "],\"next\":\(next)}")
        },
        Route(method: "GET", pattern: "/v1/streams/:stream", role: .viewer, summary: "One stream's events") { app, ctx in
            let stream = ctx.params["stream"]!
            guard EventStore.isValidStreamName(stream) else { throw Problem(status: 404, detail: "no such stream") }
            var from: Int64 = 1
            if let text = ctx.query["from_version"] {
                guard let v = Int64(text), v >= 1 else { throw Problem(status: 422, errors: [FieldError("from_version", "must be 1 or more")]) }
                from = v
            }
            let events = try await app.service.store.read(stream: stream, from: from, limit: try limit(ctx))
            if events.isEmpty, try await app.service.store.version(of: stream) == 0 { throw Problem(status: 404, detail: "no such stream") }
            return .json(200, "{\"stream\":" + JSONWriter.quote(stream) + ",\"events\":[" + events.map { $0.json() }.joined(separator: ",") + "]}")
        },
    ]
}

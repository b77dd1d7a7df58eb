import Coordination
import Events
import Foundation

extension App {
    /// A single resource with its `ETag`; 304 when `If-None-Match` names its version; 404 when unknown.
    static func resource(_ app: App, kind: String, _ ctx: RequestContext) async throws -> HTTPResponse {
        let id = ctx.params["id"]!
        guard let (state, version) = try await app.service.state(kind: kind, id: id) else {
            throw Problem(status: 404, detail: "\(kind) \(id) not found")
        }
        let scope = try await app.readScope(ctx)
        if let scope, !reaches(scope, kind: kind, id: id, state: state) { throw Problem(status: 404, detail: "\(kind) \(id) not found") }
        guard kind == "person", let principal = ctx.principal else { return try tagged(ctx, version: version, body: state.text) }
        let body = scope.map { scoped(personState: state.text, $0) } ?? state.text
        if !principal.personalData { return try tagged(ctx, version: version, body: PersonalData.redact(personState: body)) }
        try await PersonalData.recordRead(app.service.store.pool, principal: principal, route: "GET /v1/people/:id", people: [id], requestID: ctx.requestID)
        return try tagged(ctx, version: version, body: body)
    }

    /// `body` with `version` added, as 200 with its ETag, or 304 when the client already has that version.
    static func tagged(_ ctx: RequestContext, version: Int64, body: String) throws -> HTTPResponse {
        let etag = "\"\(version)\""
        if let inm = ctx.request.header("if-none-match"), noneMatch(inm, etag) { return HTTPResponse(status: 304, headers: [("ETag", etag)]) }
        var body = body
        body.removeLast()
        body += (body.count > 1 ? "," : "") + "\"version\":\(version)}"
        return .json(200, body, headers: [("ETag", etag)])
    }

    /// `If-None-Match` compares weakly (RFC 9110 §13.1.2): `*`, or any tag of a list, `W/` or not, with the same
    /// opaque part.
    static func noneMatch(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.contains { tag in
            tag == "*" || tag == etag || (tag.hasPrefix("W/") && String(tag.dropFirst(2)) == etag)
        }
    }

    static func resourceRoute(_ pattern: String, _ kind: String, _ summary: String) -> Route {
        Route("GET", pattern, role: .viewer, summary, kind: .resource(kind)) { app, ctx in try await resource(app, kind: kind, ctx) }
    }

    static let readRoutes: [Route] = [
        resourceRoute("/v1/warehouses/:id", "warehouse", "One warehouse"),
        resourceRoute("/v1/items/:id", "item", "One item"),
        resourceRoute("/v1/stock/transfers/:id", "transfer", "One transfer"),
        resourceRoute("/v1/people/:id", "person", "A roster member: profiles, unavailability, deployments"),
        resourceRoute("/v1/deployments/:id", "deployment", "One deployment"),
        resourceRoute("/v1/tasks/:id", "task", "One task"),
        Route("GET", "/v1/responses/:id", role: .viewer, "A response's summary: deployments by status, tasks by cluster and status, NFIs dispatched by item",
              kind: .resource("response")) { app, ctx in
            let id = ctx.params["id"]!
            try await app.requireResponse(id, ctx)
            guard let (state, version) = try await app.service.state(kind: "response", id: id) else {
                throw Problem(status: 404, detail: "response \(id) not found")
            }
            guard let s = try await app.lists.queries.summary(response: id) else {
                // Known to the log but not yet to the read model: answer from the aggregate.
                return try tagged(ctx, version: version, body: state.text)
            }
            var body = String(s.response.jsonArray.dropFirst().dropLast())
            body.removeLast()
            body += ",\"deployments_by_status\":\(s.deploymentsByStatus.jsonArray),\"tasks_by_cluster_and_status\":\(s.tasksByClusterAndStatus.jsonArray)"
            body += ",\"dispatched_by_item\":\(s.dispatchedByItem.jsonArray)}"
            return try tagged(ctx, version: version, body: body)
        },
        Route("GET", "/v1/responses/:id/timeline", role: .viewer,
              "The response's events in order, with occurred and recorded times, who recorded them and what they correct",
              query: [ListFilter("from", .text, "Occurred at or after (RFC 3339)"), ListFilter("to", .text, "Occurred at or before (RFC 3339)"),
                      ListFilter("cluster", .oneOf(Clusters.all), "Cluster"), ListFilter("warehouse", .id, "Warehouse"),
                      ListFilter("person", .id, "Person"), ListFilter("type", .text, "Event types, comma-separated"),
                      ListFilter("format", .oneOf(["json", "csv", "hxl"]), "json (default), csv or hxl")]) { app, ctx in
            func time(_ name: String) throws -> Date? {
                guard let v = ctx.query[name] else { return nil }
                guard let t = Timestamp.parse(v) else { throw Problem(status: 422, errors: [FieldError(name, "must be an RFC 3339 time")]) }
                return t
            }
            let filter = Replay.TimelineFilter(from: try time("from"), to: try time("to"), cluster: ctx.query["cluster"], warehouse: ctx.query["warehouse"],
                                               person: ctx.query["person"], types: ctx.query["type"].map { Set($0.split(separator: ",").map(String.init)) })
            let format = ctx.query["format"] ?? "json"
            let id = ctx.params["id"]!
            try await app.requireResponse(id, ctx)
            guard let entries = try await Replay(store: app.service.store).timeline(response: id, filter: filter) else {
                throw Problem(status: 404, detail: "response \(id) not found")
            }
            if format == "json" { return .json(200, "{\"items\":" + ReplayOutput.timelineJSON(entries) + "}") }
            return .text(200, ReplayOutput.timelineCSV(entries, response: id, hxl: format == "hxl"), contentType: "text/csv; charset=utf-8")
        },
        Route("GET", "/v1/responses/:id/state", role: .viewer, "Stock, deployments and tasks as they stood at a moment",
              query: [ListFilter("as_of", .text, "An RFC 3339 time, or a log position (default: now)"),
                      ListFilter("basis", .oneOf(["occurred", "recorded"]), "occurred (what had happened, default) or recorded (what was known)")]) { app, ctx in
            let basis = Replay.Basis(rawValue: ctx.query["basis"] ?? "occurred")!
            var moment = Replay.Moment.now
            if let text = ctx.query["as_of"] {
                if ListSpec.isDecimalText(text), let p = Int64(text) { moment = .position(p) }
                else if let t = Timestamp.parse(text) { moment = .time(t, basis) }
                else { throw Problem(status: 422, errors: [FieldError("as_of", "must be an RFC 3339 time or a position")]) }
            }
            let scope = try await app.requireResponse(ctx.params["id"]!, ctx)
            var state = try await Replay(store: app.service.store).state(response: ctx.params["id"]!, at: moment)
            guard state.response != nil else { throw Problem(status: 404, detail: "response \(ctx.params["id"]!) not found") }
            if let scope { state = state.stock(at: scope.warehouses) }
            return .json(200, ReplayOutput.stateJSON(state))
        },
        Route("GET", "/v1/responses/:id/review", role: .viewer, "After-action review figures",
              query: [ListFilter("format", .oneOf(["json", "csv", "hxl", "md"]), "json (default), csv, hxl or md (a Markdown report)")]) { app, ctx in
            let format = ctx.query["format"] ?? "json"
            try await app.requireResponse(ctx.params["id"]!, ctx)
            guard let r = try await Replay(store: app.service.store).review(response: ctx.params["id"]!) else {
                throw Problem(status: 404, detail: "response \(ctx.params["id"]!) not found")
            }
            switch format {
            case "md": return .text(200, ReplayOutput.reviewMarkdown(r), contentType: "text/markdown; charset=utf-8")
            case "csv", "hxl": return .text(200, ReplayOutput.reviewCSV(r, hxl: format == "hxl"), contentType: "text/csv; charset=utf-8")
            default: return .json(200, ReplayOutput.reviewJSON(r))
            }
        },
        Route("GET", "/v1/streams/:stream", role: .viewer, "One stream's events",
              query: [ListFilter("from_version", .integer(1...Int.max), "First version (default 1)"),
                      ListFilter("limit", .integer(1...1000), "At most this many (default 100)")]) { app, ctx in
            let stream = ctx.params["stream"]!
            guard EventStore.isValidStreamName(stream) else { throw Problem(status: 404, detail: "no such stream") }
            let scope = try await app.readScope(ctx)
            if let scope, try await !scope.visible([stream], queries: app.lists.queries).contains(stream) {
                throw Problem(status: 404, detail: "no such stream")
            }
            let from = Int64(ctx.query["from_version"].flatMap { Int($0) } ?? 1)
            let limit = ctx.query["limit"].flatMap { Int($0) } ?? 100
            var events = try await app.service.store.read(stream: stream, from: from, limit: limit)
            if events.isEmpty, try await app.service.store.version(of: stream) == 0 { throw Problem(status: 404, detail: "no such stream") }
            // A person's bookings for responses out of scope are left out (their versions show the gap).
            if let scope { events = try await scope.filter(events, queries: app.lists.queries) }
            events = try await app.personal(events, ctx, route: "GET /v1/streams/:stream")
            return .json(200, "{\"stream\":" + JSONWriter.quote(stream) + ",\"events\":[" + events.map { $0.json() }.joined(separator: ",") + "]}")
        },
    ]
}

import Coordination
import Events
import Foundation

extension App {
    /// Every list of the read models, each a `ListSpec` of Coordination: same filters in JSON, CSV and HXL.
    static let listRoutes: [Route] = [
        ("/v1/warehouses", Lists.warehouses), ("/v1/items", Lists.items), ("/v1/stock", Lists.stock), ("/v1/stock/ledger", Lists.ledger),
        ("/v1/stock/transfers", Lists.transfers), ("/v1/responses", Lists.responses), ("/v1/people", Lists.people),
        ("/v1/deployments", Lists.deployments), ("/v1/tasks", Lists.tasks), ("/v1/alerts", Lists.alerts), ("/v1/events", Lists.events),
        ("/v1/projections", Lists.projections),
    ].map { path, spec in
        Route("GET", path, role: .viewer, spec.summary, kind: .list(spec)) { app, ctx in try await app.list(spec, ctx) }
    }

    /// A list answer. JSON: `{"items": [...], "next": cursor|null}` (`/v1/events`: `"events"`), one page of `limit`
    /// (default 100). CSV/HXL: every matching row, streamed in chunks, when no `limit` is given; with one, a page
    /// and the next page's address in `Link: <...>; rel="next"`.
    func list(_ spec: ListSpec, _ ctx: RequestContext) async throws -> HTTPResponse {
        let format = ctx.query["format"] ?? "json"
        let limit = ctx.query["limit"].flatMap { Int($0) }
        let after = try ctx.query["next"].map(Self.decodeCursor)
        var parsed = try spec.arguments(ctx.query)
        parsed.personalData = ctx.principal?.personalData == true
        parsed.scope = try await readScope(ctx)
        let arguments = parsed
        let hxl = format == "hxl" ? spec.hxl : nil
        let route = "GET " + ctx.request.path
        if format == "json" {
            // Marks first, then the query: an answer is never kept under marks newer than the tables it read.
            let cached = cacheSlot(spec, ctx, arguments)
            // The client holds this very answer (its tag names the marks and the key): nothing to send or to read.
            if let cached, let tags = ctx.request.header("if-none-match"), Self.noneMatch(tags, cached.etag) {
                return HTTPResponse(status: 304, headers: [("ETag", cached.etag), ("Vary", "Accept-Encoding")])
            }
            if let cached, let entry = cached.cache.answer(cached.key, marks: cached.marks) {
                return listJSON(entry.body, gzipped: entry.gzipped, ctx, cached)
            }
            let (table, next) = try await personal(spec.page(lists, arguments, limit: limit ?? 100, after: after), spec, ctx, route: route)
            // The log keeps its v1 shape: `events`, and `next` as the position to pass as `after`.
            let events = spec.name == "events"
            var body = Array((events ? "{\"events\":" : "{\"items\":").utf8)
            table.appendJSONArray(to: &body)
            let cursor = events ? next ?? "null" : next.map { JSONWriter.quote(Self.encodeCursor($0)) } ?? "null"
            body.append(contentsOf: ",\"next\":\(cursor)}".utf8)
            if let cached { cached.cache.keep(cached.key, marks: cached.marks, body: body) }
            return listJSON(body, gzipped: nil, ctx, cached)
        }
        let contentType = "text/csv; charset=utf-8"
        let filename = "\(spec.name).\(format == "hxl" ? "hxl.csv" : "csv")"
        let disposition = ("Content-Disposition", "inline; filename=\"\(filename)\"")
        if let limit {
            let (table, next) = try await personal(spec.page(lists, arguments, limit: limit, after: after), spec, ctx, route: route)
            var response = HTTPResponse.text(200, table.csv(hxl: hxl), contentType: contentType)
            response.headers.append(disposition)
            if let next { response.headers.append(("Link", "<\(Self.pageLink(ctx, next: Self.encodeCursor(next)))>; rel=\"next\"")) }
            return response
        }
        // The whole list, page by page, at the client's pace: one short query per 1,000 rows, no long transaction.
        let lists = self.lists
        let logger = self.logger
        let requestID = ctx.requestID
        let first = try await personal(spec.page(lists, arguments, limit: 1000, after: after), spec, ctx, route: route)
        return .streamed(200, headers: [("Content-Type", contentType), disposition], framing: .chunked) { stream in
            var header = true
            var page = first
            do {
                while true {
                    var text = header ? page.table.csvHeader(hxl: hxl) : ""
                    header = false
                    text += page.table.csvRows
                    guard await stream.write(Array(text.utf8)), let next = page.next else { break }
                    page = try await self.personal(spec.page(lists, arguments, limit: 1000, after: next), spec, ctx, route: route)
                }
            } catch {
                // The head is sent: the export ends short, and the client sees no final chunk of a complete one.
                logger.error("export failed", ["request.id": requestID, "error": String(describing: type(of: error))])
                stream.cancel()
                return
            }
            stream.finish()
        }
    }

    /// A JSON list answer, gzipped for a client that accepts it when the answer is kept (the compressed bytes are
    /// kept beside it, so an answer served again is compressed once); `App.compressed` handles the others.
    func listJSON(_ body: [UInt8], gzipped: [UInt8]?, _ ctx: RequestContext, _ cached: ListSlot?) -> HTTPResponse {
        var response = HTTPResponse.json(200, bytes: body)
        if let cached { response.headers.append(("ETag", cached.etag)) }
        guard let cached, body.count >= App.gzipThreshold, Gzip.accepted(by: ctx.request.header("accept-encoding")) else { return response }
        let zipped = gzipped ?? Gzip.compress(body)
        if gzipped == nil { cached.cache.keepGzipped(cached.key, marks: cached.marks, zipped) }
        response.body = zipped
        response.headers += [("Vary", "Accept-Encoding"), ("Content-Encoding", "gzip")]
        return response
    }

    /// Where this JSON answer may be found and kept (`ListCache`), or nil when it may not: the list reads the log or
    /// the checkpoints, lists read from a standby, this process does not lead the list's projections, the caller
    /// waited for a position, or the page holds personal data the caller may see (every such read is recorded).
    func cacheSlot(_ spec: ListSpec, _ ctx: RequestContext, _ arguments: ListArguments) -> ListSlot? {
        guard let cache = listCache, !spec.reads.isEmpty, let principal = ctx.principal, ctx.request.header("coord-min-position") == nil,
              !(principal.personalData && PersonalData.columns[spec.name] != nil),
              let marks = runner.changeMarks(spec.reads) else { return nil }
        let key = ListCache.key(list: spec.name, query: ctx.query, personalData: principal.personalData, scope: arguments.scope,
                                today: arguments.today)
        return ListSlot(cache: cache, key: key, marks: marks)
    }

    /// A page as the caller may see it: personal columns emptied without personal-data access; with it, the read
    /// recorded (whose data, by whom, through which route). The log's person events are redacted by the list itself.
    func personal(_ page: (table: ResultTable, next: String?), _ spec: ListSpec, _ ctx: RequestContext,
                  route: String) async throws -> (table: ResultTable, next: String?) {
        guard let principal = ctx.principal else { return page }
        if spec.name == "events" {
            if principal.personalData {
                try await PersonalData.recordRead(service.store.pool, principal: principal, route: route,
                                                  people: PersonalData.people(inEventRows: page.table), requestID: ctx.requestID)
            }
            return page
        }
        guard PersonalData.columns[spec.name] != nil else { return page }
        guard principal.personalData else { return (PersonalData.redact(page.table, list: spec.name), page.next) }
        try await PersonalData.recordRead(service.store.pool, principal: principal, route: route,
                                          people: PersonalData.people(in: page.table, list: spec.name), requestID: ctx.requestID)
        return page
    }

    /// Events as the caller may see them: person events redacted without personal-data access, the read recorded with it.
    func personal(_ events: [RecordedEvent], _ ctx: RequestContext, route: String) async throws -> [RecordedEvent] {
        guard let principal = ctx.principal else { return events }
        guard principal.personalData else { return events.map(PersonalData.redact) }
        try await PersonalData.recordRead(service.store.pool, principal: principal, route: route, people: PersonalData.people(in: events),
                                          requestID: ctx.requestID)
        return events
    }

    /// The request's own path and query with `next` replaced: the Link to the next page.
    static func pageLink(_ ctx: RequestContext, next: String) -> String {
        var pairs = ctx.query.filter { $0.key != "next" }.sorted { $0.key < $1.key }
        pairs.append(("next", next))
        return ctx.request.path + "?" + pairs.map { "\(Self.queryEscape($0.key))=\(Self.queryEscape($0.value))" }.joined(separator: "&")
    }

    static func queryEscape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }

    /// The opaque cursor: the last key, base64url-encoded.
    static func decodeCursor(_ text: String) throws -> String {
        var b64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard text.count <= 400, let data = Data(base64Encoded: b64), let key = String(data: data, encoding: .utf8), !key.utf8.contains(0) else {
            throw Problem(status: 422, errors: [FieldError("next", "is not a cursor this server issued")])
        }
        return key
    }

    static func encodeCursor(_ key: String) -> String {
        Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

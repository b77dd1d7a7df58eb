import Coordination
import Events
import Foundation
import Synchronization

/// Prometheus metrics kept in memory.
final class Metrics: Sendable {
    static let buckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    private struct Series { var counts = [Int](repeating: 0, count: Metrics.buckets.count + 1); var sum = 0.0; var total = 0 }
    private let requests = Mutex<[String: Int]>([:])        // "route|status" -> count
    private let latency = Mutex<[String: Series]>([:])      // route -> histogram

    func record(route: String, status: Int, seconds: Double) {
        requests.withLock { $0["\(route)|\(status)", default: 0] += 1 }
        latency.withLock { l in
            var s = l[route] ?? Series()
            let i = Metrics.buckets.firstIndex { seconds <= $0 } ?? Metrics.buckets.count
            s.counts[i] += 1
            s.sum += seconds
            s.total += 1
            l[route] = s
        }
    }

    static func label(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: " ")
    }

    func render(extra: [(String, String, Double)]) -> String {
        var out = "# HELP coord_http_requests_total HTTP requests by route and status.\n# TYPE coord_http_requests_total counter\n"
        for (key, n) in requests.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|", maxSplits: 1)
            out += "coord_http_requests_total{route=\"\(Self.label(String(parts[0])))\",status=\"\(parts[1])\"} \(n)\n"
        }
        out += "# HELP coord_http_request_duration_seconds Request latency by route.\n# TYPE coord_http_request_duration_seconds histogram\n"
        for (route, s) in latency.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            var cumulative = 0
            for (i, bound) in Metrics.buckets.enumerated() {
                cumulative += s.counts[i]
                out += "coord_http_request_duration_seconds_bucket{route=\"\(Self.label(route))\",le=\"\(bound)\"} \(cumulative)\n"
            }
            out += "coord_http_request_duration_seconds_bucket{route=\"\(Self.label(route))\",le=\"+Inf\"} \(s.total)\n"
            out += "coord_http_request_duration_seconds_sum{route=\"\(Self.label(route))\"} \(s.sum)\n"
            out += "coord_http_request_duration_seconds_count{route=\"\(Self.label(route))\"} \(s.total)\n"
        }
        var typed = Set<String>()
        for (name, labels, value) in extra {
            if typed.insert(name).inserted { out += "# TYPE \(name) gauge\n" }
            out += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
        }
        return out
    }
}

/// Lets the App reach the server for figures (connections) and streams (wake-ups), set once at start.
final class ServerLink: @unchecked Sendable {
    private let lock = NSLock()
    private var server: HTTPServer?
    func set(_ s: HTTPServer) { lock.lock(); server = s; lock.unlock() }
    var connections: Int { lock.lock(); defer { lock.unlock() }; return server?.connectionCount ?? 0 }
}

extension App {
    static let operationRoutes: [Route] = [
        Route(method: "GET", pattern: "/healthz", role: nil, summary: "The process is up") { _, _ in
            .json(200, "{\"status\":\"ok\"}")
        },
        Route(method: "GET", pattern: "/readyz", role: nil, summary: "Database reachable, schema current, projection lag under the threshold") { app, _ in
            do {
                try await Migrator.requireCurrent(app.service.store.pool, Coordination.migrationSets)
                let status = try await app.runner.status()
                let worst = status.map(\.lagEvents).max() ?? 0
                let failed = status.filter { $0.status == "failed" }.map(\.name)
                let ready = worst <= app.readyLagThreshold && failed.isEmpty
                let body = "{\"status\":\(JSONWriter.quote(ready ? "ready" : "lagging")),\"database\":\"ok\",\"schema\":\"current\","
                    + "\"projection_lag_events\":\(worst),\"failed_projections\":[" + failed.map(JSONWriter.quote).joined(separator: ",") + "]}"
                return .json(ready ? 200 : 503, body)
            } catch let error as MigrationError {
                return .json(503, "{\"status\":\"not ready\",\"database\":\"ok\",\"schema\":" + JSONWriter.quote(error.description) + "}")
            } catch {
                return .json(503, "{\"status\":\"not ready\",\"database\":\"unavailable\"}")
            }
        },
        Route(method: "GET", pattern: "/metrics", role: nil, summary: "Prometheus metrics (open on loopback, admin token otherwise)") { app, ctx in
            if !app.metricsOpen {
                let principal = try await app.authenticate(ctx.request)
                guard principal.role == .admin else { throw Problem(status: 403, detail: "this needs the admin role") }
            }
            var extra: [(String, String, Double)] = []
            let usage = app.service.store.pool.usage
            extra.append(("coord_db_pool_connections", "state=\"open\"", Double(usage.open)))
            extra.append(("coord_db_pool_connections", "state=\"in_use\"", Double(usage.inUse)))
            extra.append(("coord_db_pool_waiting", "", Double(usage.waiting)))
            extra.append(("coord_events_appended_total", "", Double(app.service.store.writerStats.events)))
            extra.append(("coord_append_batches_total", "", Double(app.service.store.writerStats.batches)))
            extra.append(("coord_http_open_connections", "", Double(app.link.connections)))
            if let status = try? await app.runner.status() {
                for s in status {
                    extra.append(("coord_projection_lag_events", "projection=\"\(s.name)\"", Double(s.lagEvents)))
                    extra.append(("coord_projection_lag_seconds", "projection=\"\(s.name)\"", s.lagSeconds))
                    extra.append(("coord_projection_leader", "projection=\"\(s.name)\"", s.leader ? 1 : 0))
                    extra.append(("coord_projection_failed", "projection=\"\(s.name)\"", s.status == "failed" ? 1 : 0))
                }
            }
            return .text(200, app.metrics.render(extra: extra), contentType: "text/plain; version=0.0.4; charset=utf-8")
        },
        Route(method: "GET", pattern: "/v1/openapi.json", role: nil, summary: "This API as OpenAPI 3.1") { _, _ in
            .json(200, OpenAPI.document)
        },
        Route(method: "GET", pattern: "/v1/projections", role: .viewer, summary: "Projections with checkpoints and lag") { app, _ in
            let status = try await app.runner.status()
            let rows = status.map { s in
                "{\"name\":\(JSONWriter.quote(s.name)),\"version\":\(s.version),\"checkpoint\":\(s.checkpoint),\"lag_events\":\(s.lagEvents),"
                    + "\"lag_seconds\":\(s.lagSeconds),\"status\":\(JSONWriter.quote(s.status)),\"leader_here\":\(s.leader),"
                    + "\"error_position\":\(s.errorPosition.map(String.init) ?? "null")}"
            }
            return .json(200, "{\"items\":[" + rows.joined(separator: ",") + "]}")
        },
        Route(method: "POST", pattern: "/v1/projections/:name/rebuild", role: .admin, summary: "Rebuild a projection without downtime") { app, ctx in
            let name = ctx.params["name"]!
            guard Coordination.projections.contains(where: { $0.name == name }) else { throw Problem(status: 404, detail: "no projection \(name)") }
            try await app.runner.requestRebuild(name)
            return .json(202, "{\"projection\":\(JSONWriter.quote(name)),\"status\":\"rebuild_requested\"}")
        },
        Route(method: "GET", pattern: "/v1/events/live", role: .viewer, summary: "Server-Sent Events; id is the position; Last-Event-ID or ?after= resumes") { app, ctx in
            try app.liveFeed(ctx)
        },
    ]

    /// The live feed: history after the resume point, then live events, each once, in position order.
    func liveFeed(_ ctx: RequestContext) throws -> HTTPResponse {
        let resume = ctx.request.header("last-event-id") ?? ctx.query["after"] ?? "0"
        guard let after = Int64(resume), after >= 0 else { throw Problem(status: 422, errors: [FieldError("after", "must be a position")]) }
        var filter = EventFilter()
        if let c = ctx.query["category"] { filter.categories = c.split(separator: ",").map(String.init) }
        let response = ctx.query["response"]
        if let response, !EventStore.isValidStreamName("response-" + response) {
            throw Problem(status: 422, errors: [FieldError("response", "is not a response id")])
        }
        let stream = ResponseStream(limit: 1 << 20)
        let store = service.store
        let fanout = self.fanout
        let producer = Task {
            stream.send(Array("retry: 2000\n\n".utf8))
            try await fanout.start()
            // History from the store up to the shared window of recent events, then the window: the tail is
            // read once for every feed (EventFanout). Positions only move forward: nothing skipped or repeated.
            var position = after
            func deliver(_ event: RecordedEvent, _ rendered: [UInt8]?) -> Bool {
                guard filter.matches(event), response.map({ Self.concerns(event, response: $0) }) ?? true else { return true }
                return stream.send(rendered ?? Self.sseMessage(event))
            }
            while stream.isOpen, !Task.isCancelled {
                switch fanout.events(after: position, limit: 500) {
                case .history(let until):
                    let batch = try await store.read(after: position, limit: 500, filter: filter, until: .position(until))
                    for event in batch where !deliver(event, nil) { return }
                    position = batch.count < 500 ? until : batch.last!.position
                case .events(let batch):
                    if batch.isEmpty { await fanout.wait(after: position); continue }
                    for (event, rendered) in batch {
                        position = event.position
                        if !deliver(event, rendered) { return }
                    }
                }
            }
        }
        Task {
            // Heartbeats keep proxies from closing an idle feed, and notice when the client is gone.
            while stream.isOpen {
                try? await Task.sleep(nanoseconds: 15_000_000_000)
                stream.send(Array(": heartbeat\n\n".utf8))
            }
            producer.cancel()
        }
        var r = HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-store"),
                                                    ("X-Accel-Buffering", "no")])
        r.stream = stream
        return r
    }

    /// One Server-Sent Events message: the position as id, the type as event name, the event as data.
    static func sseMessage(_ event: RecordedEvent) -> [UInt8] {
        Array(("id: \(event.position)\nevent: \(event.type)\ndata: " + event.json() + "\n\n").utf8)
    }

    /// Whether an event belongs to a response: its own stream, or data naming it.
    static func concerns(_ e: RecordedEvent, response: String) -> Bool {
        if e.stream == "response-" + response { return true }
        guard e.data.text.contains(response),
              let object = try? JSONSerialization.jsonObject(with: Data(e.data.text.utf8)) as? [String: Any] else { return false }
        return object["response"] as? String == response
    }
}

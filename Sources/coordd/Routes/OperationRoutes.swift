import Coordination
import Events
import Foundation
import Synchronization

/// Lets the App reach the server for figures (connections) and streams (wake-ups), set once at start.
final class ServerLink: @unchecked Sendable {
    private let lock = NSLock()
    private var server: HTTPServer?
    func set(_ s: HTTPServer) { lock.lock(); server = s; lock.unlock() }
    var connections: Int { lock.lock(); defer { lock.unlock() }; return server?.connectionCount ?? 0 }
    var queuedOutput: Int { lock.lock(); defer { lock.unlock() }; return server?.queuedOutputBytes ?? 0 }
}

extension App {
    static let operationRoutes: [Route] = [
        Route("GET", "/healthz", role: nil, "The process is up") { _, _ in
            .json(200, "{\"status\":\"ok\"}")
        },
        Route("GET", "/readyz", role: nil, "Database reachable, schema current, projection lag under the threshold") { app, _ in
            do {
                try await Migrator.requireCurrent(app.service.store.pool, Coordination.migrationSets)
                switch try await Migrator.writeAccess(app.service.store.pool) {
                case .writable: break
                case .standby:
                    return .json(503, "{\"status\":\"not ready\",\"database\":\"standby\",\"schema\":\"current\",\"writes\":\"refused: the database is a standby; no primary is reachable (DATABASE_URL should list every host with target_session_attrs=read-write)\"}")
                case .roleCannotWrite:
                    return .json(503, "{\"status\":\"not ready\",\"database\":\"ok\",\"schema\":\"current\",\"writes\":\"refused: the database role cannot append or move checkpoints\"}")
                }
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
        Route("GET", "/metrics", role: nil, "Prometheus metrics (open on loopback, admin token otherwise)") { app, ctx in
            if !app.metricsOpen {
                let principal = try await app.authenticate(ctx.request)
                guard principal.role == .admin else { throw Problem(status: 403, detail: "this needs the admin role") }
            }
            typealias S = Metrics.Sample
            var extra: [S] = []
            let usage = app.service.store.pool.usage
            extra.append(S(name: "coord_db_pool_connections", kind: .gauge, help: "Database connections of the pool, by state.", labels: "state=\"open\"", value: Double(usage.open)))
            extra.append(S(name: "coord_db_pool_connections", kind: .gauge, help: "", labels: "state=\"in_use\"", value: Double(usage.inUse)))
            extra.append(S(name: "coord_db_pool_waiting", kind: .gauge, help: "Callers waiting for a database connection.", value: Double(usage.waiting)))
            extra.append(S(name: "coord_events_appended_total", kind: .counter, help: "Events appended by this process.", value: Double(app.service.store.writerStats.events)))
            extra.append(S(name: "coord_append_batches_total", kind: .counter, help: "Append transactions (group commits) of this process.", value: Double(app.service.store.writerStats.batches)))
            extra.append(S(name: "coord_http_open_connections", kind: .gauge, help: "Open client connections.", value: Double(app.link.connections)))
            extra.append(S(name: "coord_http_queued_output_bytes", kind: .gauge, help: "Bytes of answers waiting for slow clients to read them.", value: Double(app.link.queuedOutput)))
            extra.append(S(name: "coord_live_feeds_attached", kind: .gauge, help: "Caught-up live feeds the shared tail reader sends to itself.", value: Double(app.fanout.attachedCount)))
            if let figures = app.listCache?.figures {
                extra.append(S(name: "coord_list_cache_hits_total", kind: .counter, help: "JSON list answers served again from memory.", value: Double(figures.hits)))
                extra.append(S(name: "coord_list_cache_misses_total", kind: .counter, help: "JSON list answers that could be kept and were computed.", value: Double(figures.misses)))
                extra.append(S(name: "coord_list_cache_bytes", kind: .gauge, help: "Bytes of list answers kept in memory.", value: Double(figures.bytes)))
            }
            if let status = try? await app.runner.status() {
                for s in status {
                    let label = "projection=\"\(Metrics.label(s.name))\""
                    extra.append(S(name: "coord_projection_lag_events", kind: .gauge, help: "Events a projection has still to apply.", labels: label, value: Double(s.lagEvents)))
                    extra.append(S(name: "coord_projection_lag_seconds", kind: .gauge, help: "Age of the oldest event a projection has still to apply.", labels: label, value: s.lagSeconds))
                    extra.append(S(name: "coord_projection_leader", kind: .gauge, help: "1 when this process leads the projection.", labels: label, value: s.leader ? 1 : 0))
                    extra.append(S(name: "coord_projection_failed", kind: .gauge, help: "1 when the projection stopped on a failing event.", labels: label, value: s.status == "failed" ? 1 : 0))
                }
            }
            for (outcome, n) in app.deliverer.outcomes.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
                extra.append(S(name: "coord_webhook_attempts_total", kind: .counter, help: "Webhook delivery attempts of this process, by outcome (delivered, failed, gone, exhausted).",
                               labels: "outcome=\"\(outcome)\"", value: Double(n)))
            }
            if let q = try? await app.webhooks.queue() {
                extra.append(S(name: "coord_webhook_queue_depth", kind: .gauge, help: "Webhook deliveries waiting to be delivered (all processes).", value: Double(q.pending)))
                extra.append(S(name: "coord_webhook_oldest_pending_seconds", kind: .gauge, help: "Age of the oldest webhook delivery still pending.", value: q.oldestSeconds))
                extra.append(S(name: "coord_webhook_deliveries", kind: .gauge, help: "Webhook deliveries kept, by status.", labels: "status=\"delivered\"", value: Double(q.delivered)))
                extra.append(S(name: "coord_webhook_deliveries", kind: .gauge, help: "", labels: "status=\"failed\"", value: Double(q.failed)))
                extra.append(S(name: "coord_webhook_deliveries", kind: .gauge, help: "", labels: "status=\"pending\"", value: Double(q.pending)))
            }
            return .text(200, app.metrics.render(extra: extra), contentType: "text/plain; version=0.0.4; charset=utf-8")
        },
        Route("GET", "/v1/openapi.json", role: nil, "This API as OpenAPI 3.1") { _, _ in
            .json(200, OpenAPI.document)
        },
        Route("POST", "/v1/projections/:name/rebuild", role: .admin, "Rebuild a projection without downtime") { app, ctx in
            let name = ctx.params["name"]!
            guard Coordination.projections.contains(where: { $0.name == name }) else { throw Problem(status: 404, detail: "no projection \(name)") }
            try await app.runner.requestRebuild(name)
            return .json(202, "{\"projection\":\(JSONWriter.quote(name)),\"status\":\"rebuild_requested\"}")
        },
        Route("GET", "/v1/events/live", role: .viewer, "Server-Sent Events; id is the position; Last-Event-ID or ?after= resumes",
              query: LiveFeed.parameters) { app, ctx in
            try await app.liveFeed(ctx)
        },
    ]
}

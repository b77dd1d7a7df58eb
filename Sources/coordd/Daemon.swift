import Coordination
import Events
import Foundation

/// coordd's parts wired together: the store on a pool, the domain service, the projection runner, the API and
/// its server. The one composition root: `main.swift` and the test harness both build the daemon here.
final class Daemon: Sendable {
    let store: EventStore
    let service: CoordinationService
    let runner: ProjectionRunner
    let app: App
    let server: HTTPServer

    /// Builds the parts on `pool` (already migrated) and starts the projections and the server.
    init(pool: PostgresPool, http: HTTPServerConfiguration, logger: Logger, leaderPoll: Double = 1.0) throws {
        store = EventStore(pool: pool)
        runner = ProjectionRunner(store: store, definitions: Coordination.projections, logger: logger, leaderPoll: leaderPoll)
        service = CoordinationService(store: store)
        let app = App(service: service, runner: runner, logger: logger, metrics: Metrics(), metricsOpen: http.host.hasPrefix("127."))
        self.app = app
        var http = http
        http.refusal = App.refusal
        server = HTTPServer(configuration: http, logger: logger) { request in await app.handle(request) }
        runner.start()
        try server.start()
        app.link.set(server)
    }

    var port: UInt16 { server.boundPort }

    /// Stops accepting, finishes what is in flight (up to `grace` seconds), ends live feeds, stops the projections
    /// at a clean checkpoint. False when requests were cut off at the end of the grace.
    func stop(grace: Double = 10) async -> Bool {
        let server = self.server
        let clean = (try? await runBlocking { server.shutdown(grace: grace) }) ?? false
        app.fanout.stop()
        await runner.stop()
        store.close()
        return clean
    }
}

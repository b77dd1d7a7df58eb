import Coordination
import Events
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// coordd's parts wired together: the store on a pool, the domain service, the projection runner, the API and
/// its server. The one composition root: `main.swift` and the test harness both build the daemon here.
final class Daemon: Sendable {
    let store: EventStore
    /// The lists' store on a standby (`COORD_READ_DATABASE_URL`), if any.
    let reads: EventStore?
    let service: CoordinationService
    let runner: ProjectionRunner
    let app: App
    let server: HTTPServer
    private let anchoring: Task<Void, Never>?
    private let clock: Task<Void, Never>?

    /// Where and how often the chain's head is anchored outside the database.
    struct Anchors: Sendable {
        /// Appended to (JSON lines); nil: anchors go to the log only.
        var file: String?
        /// Signs each anchor (HMAC-SHA256), so that one cannot be forged without it.
        var key: [UInt8]?
        var interval: Double = 300

        /// From COORD_ANCHOR_FILE, COORD_ANCHOR_KEY_FILE and COORD_ANCHOR_INTERVAL (seconds).
        static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> Anchors {
            var a = Anchors()
            a.file = env["COORD_ANCHOR_FILE"].flatMap { $0.isEmpty ? nil : $0 }
            if let path = env["COORD_ANCHOR_KEY_FILE"], !path.isEmpty {
                guard var key = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }), !key.isEmpty else {
                    throw ConfigurationError("COORD_ANCHOR_KEY_FILE \(path) cannot be read")
                }
                while key.last == 10 || key.last == 13 { key.removeLast() }
                a.key = key
            }
            if let text = env["COORD_ANCHOR_INTERVAL"], let seconds = Double(text), seconds >= 1 { a.interval = seconds }
            return a
        }
    }

    /// Builds the parts on `pool` (already migrated) and starts the projections and the server.
    init(pool: PostgresPool, http: HTTPServerConfiguration, logger: Logger, leaderPoll: Double = 1.0, anchors: Anchors = Anchors(),
         webhooks: WebhookSettings = WebhookSettings(), clockTicks: Bool = true, readPool: PostgresPool? = nil) throws {
        store = EventStore(pool: pool)
        reads = readPool.map { EventStore(pool: $0) }
        runner = ProjectionRunner(store: store, definitions: Coordination.projections, logger: logger, leaderPoll: leaderPoll)
        service = CoordinationService(store: store)
        let app = App(service: service, runner: runner, logger: logger, metrics: Metrics(), metricsOpen: http.host.hasPrefix("127."),
                      webhookSettings: webhooks, reads: reads)
        self.app = app
        var http = http
        http.refusal = App.refusal
        server = HTTPServer(configuration: http, logger: logger) { request in await app.handle(request) }
        runner.start()
        try server.start()
        app.link.set(server)
        let store = self.store
        anchoring = Task { await Self.anchor(store, anchors, logger) }
        clock = clockTicks ? Task { await Self.tickClock(store, logger) } : nil
        app.deliverer.start()
    }

    /// Writes the day's `clock.ticked` once (the first coordd to try wins), checking every minute: the alert rules
    /// that depend on the date are decided at a position of the log (AlertProjection).
    static func tickClock(_ store: EventStore, _ logger: Logger) async {
        var done: Day?
        while !Task.isCancelled {
            let today = Day(Date())
            if done != today {
                do {
                    try await Clock.tick(store)
                    done = today
                } catch EventStoreError.wrongExpectedVersion(_, _, _) {
                    done = today
                } catch {
                    // The database is away: the next minute tries again.
                }
            }
            try? await Task.sleep(nanoseconds: 60_000_000_000)
        }
    }

    /// Records the chain's head every `interval` seconds while it moves: in the log (`chain anchor`) and, when
    /// configured, appended to a file. `coordctl verify --anchors` proves the log still holds every one of them.
    static func anchor(_ store: EventStore, _ anchors: Anchors, _ logger: Logger) async {
        var last: Int64 = -1
        while !Task.isCancelled {
            if let anchor = try? await store.anchor(key: anchors.key), anchor.position != last {
                last = anchor.position
                logger.notice("chain anchor " + anchor.line, ["events.head": String(anchor.position)])
                if let file = anchors.file {
                    let fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
                    if fd >= 0 {
                        let line = Array((anchor.line + "\n").utf8)
                        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                        fsync(fd)
                        close(fd)
                    } else {
                        logger.error("cannot append to the anchor file", ["errno": String(errno)])
                    }
                }
            }
            try? await Task.sleep(nanoseconds: UInt64(anchors.interval * 1e9))
        }
    }

    var port: UInt16 { server.boundPort }

    /// Stops accepting, finishes what is in flight (up to `grace` seconds), ends live feeds, stops the projections
    /// at a clean checkpoint. False when requests were cut off at the end of the grace.
    func stop(grace: Double = 10) async -> Bool {
        let server = self.server
        anchoring?.cancel()
        clock?.cancel()
        app.deliverer.stop()
        app.alertFeed.stop()
        let clean = (try? await runBlocking { server.shutdown(grace: grace) }) ?? false
        app.fanout.stop()
        await runner.stop()
        store.close()
        return clean
    }
}

/// A setting coordd cannot start with; its description says which and why.
struct ConfigurationError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

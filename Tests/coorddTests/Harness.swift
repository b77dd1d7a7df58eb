import Coordination
import Events
import Foundation
import TestSupport
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// A coordd in-process, built by the daemon's own composition root (`Daemon`) on a fresh schema and a free port.
final class TestDaemon: @unchecked Sendable {
    let daemon: Daemon
    var store: EventStore { daemon.store }
    var service: CoordinationService { daemon.service }
    var runner: ProjectionRunner { daemon.runner }
    var app: App { daemon.app }
    var server: HTTPServer { daemon.server }
    var port: UInt16 { daemon.port }
    let admin: String
    let operatorToken: String
    let viewer: String

    /// `clockTicks`: write the day's `clock.ticked` at start, as coordd does (off by default here, so that a test's
    /// positions are its own writes').
    init(pool given: PostgresPool? = nil, webhooks: WebhookSettings = WebhookSettings(), clockTicks: Bool = false, logger: Logger = .silent,
         configure: (inout HTTPServerConfiguration) -> Void = { _ in }) async throws {
        let pool: PostgresPool
        if let given { pool = given } else { pool = try await TestDatabase.makePool(poolSize: 12, sets: Coordination.migrationSets) }
        // As coordd's main does: a write to a vanished peer is an error, not a signal that kills the process.
        signal(SIGPIPE, SIG_IGN)
        var config = HTTPServerConfiguration()
        config.port = 0
        configure(&config)
        daemon = try Daemon(pool: pool, http: config, logger: logger, leaderPoll: 0.2, webhooks: webhooks, clockTicks: clockTicks)
        let tokens = TokenStore(pool: pool)
        // As tokens made before personal-data access existed (the migration gave it to operators and admins).
        admin = try await tokens.create(subject: "admin-1", role: .admin, personalData: true).token
        operatorToken = try await tokens.create(subject: "officer-7", role: .operator, personalData: true).token
        viewer = try await tokens.create(subject: "viewer-1", role: .viewer).token
    }

    func stop() async {
        _ = await daemon.stop(grace: 2)
    }

    /// Waits until the read models have caught up with the log.
    func settle() async throws {
        for _ in 0..<400 {
            if try await runner.status().allSatisfy({ $0.lagEvents == 0 && $0.status == "running" }) { return }
            try await Task.sleep(nanoseconds: 25_000_000)
        }
    }
}

typealias RawResponse = HTTPClientResponse
typealias RawClient = HTTPClient

extension TestDaemon {
    /// One request on a fresh connection. The blocking socket I/O runs off the cooperative pool, which the
    /// server's handler tasks need.
    func call(_ method: String, _ path: String, token: String? = nil, body: String? = nil, headers: [String: String] = [:]) async throws -> RawResponse {
        let port = self.port
        return try await runBlocking { try Self.blockingCall(port: port, method, path, token: token, body: body, headers: headers) }
    }

    static func blockingCall(port: UInt16, _ method: String, _ path: String, token: String?, body: String?, headers: [String: String]) throws -> RawResponse {
        var headers = headers
        if let token { headers["Authorization"] = "Bearer \(token)" }
        // A minute: the suite's start-up burst can keep two cores busy for many seconds, and a slow answer is not
        // what these tests judge (a lost one is).
        return try HTTPClient.call(port: port, method, path, headers: headers, body: body, receiveTimeout: 60)
    }
}

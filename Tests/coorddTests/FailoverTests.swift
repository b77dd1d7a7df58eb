import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// A coordd child process on a port of its own.
final class ChildDaemon: @unchecked Sendable {
    let pid: pid_t
    let port: UInt16

    /// `wrapper` runs before coordd (`seccomp-run.py UNIT --`, to serve under a unit's syscall filter).
    /// `schema` nil: the server's search_path, as a production deployment runs.
    init(schema: String?, port: UInt16, databaseURL: String? = nil, wrapper: [String] = [], environment: [String: String] = [:]) throws {
        self.port = port
        let exe = OutsideTools.binary("coordd")
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = try databaseURL ?? TestDatabase.connectionString()
        env["COORD_SCHEMA"] = schema
        env["COORD_LOG_LEVEL"] = "warning"
        env.merge(environment) { _, new in new }
        let argv = wrapper + [exe, "--listen", "127.0.0.1:\(port)"]
        pid = try Subprocess.spawn(argv[0].hasPrefix("/") ? argv : ["/usr/bin/env"] + argv, environment: env)
    }

    /// Sends `signal` and waits: the raw wait status (WIFEXITED and friends).
    func terminate(_ signal: Int32 = SIGTERM) -> Int32 {
        exited = true
        _ = Glibc.kill(pid, signal)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status
    }

    private(set) var exited = false

    func kill(_ signal: Int32) {
        if exited { return }
        exited = true
        _ = Glibc.kill(pid, signal)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    func call(_ method: String, _ path: String, token: String?, body: String? = nil) throws -> RawResponse {
        try TestDaemon.blockingCall(port: port, method, path, token: token, body: body, headers: [:])
    }

    func waitReady() throws {
        for _ in 0..<200 {
            if let r = try? call("GET", "/healthz", token: nil), r.status == 200 { return }
            usleep(50_000)
        }
        throw POSIXError(.ETIMEDOUT)
    }
}

@Suite("Two coordd processes")
struct FailoverTests {
    @Test("write through both, kill the projection leader, the other takes over with nothing lost and lag recovering")
    func failover() async throws {
        let pool = try await TestDatabase.makePool(poolSize: 4, sets: Coordination.migrationSets)
        defer { pool.close() }
        let schema = pool.configuration.schema!
        let service = CoordinationService(store: EventStore(pool: pool))
        _ = try await service.execute(DeclareResponse(id: "R1", name: "Flood", country: "PHL", hazard: "flood", severity: "orange", declaredAt: Date()),
                                      CommandContext(actor: "t", source: "test"))
        let token = try await TokenStore(pool: pool).create(subject: "officer", role: .operator).token
        let a = try ChildDaemon(schema: schema, port: Loopback.freePort())
        let b = try ChildDaemon(schema: schema, port: Loopback.freePort())
        defer { a.kill(SIGKILL); b.kill(SIGKILL) }
        try await runBlocking { try a.waitReady(); try b.waitReady() }

        func create(_ d: ChildDaemon, _ i: Int) async throws -> Int {
            try await runBlocking {
                try d.call("POST", "/v1/tasks", token: token, body: #"{"id":"T-\#(i)","response":"R1","cluster":"WSH","title":"t","priority":"low"}"#).status
            }
        }
        for i in 0..<20 { #expect(try await create(i % 2 == 0 ? a : b, i) == 201) }

        func leaders(_ d: ChildDaemon) async throws -> [Bool] {
            try await runBlocking {
                let r = try d.call("GET", "/v1/projections", token: token)
                return (r.json["items"] as? [[String: Any]] ?? []).map { $0["leader_here"] as? Bool ?? false }
            }
        }
        // Each projection has exactly one leader between the two.
        var la: [Bool] = [], lb: [Bool] = []
        for _ in 0..<100 {
            la = try await leaders(a); lb = try await leaders(b)
            if la.count == 5, lb.count == 5, zip(la, lb).allSatisfy({ $0 != $1 }) { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        #expect(la.count == 5 && zip(la, lb).allSatisfy { $0 != $1 }, "one leader per projection")
        // Kill the one leading the tasks projection (the last in name order: alerts, responses, stock, surge, tasks).
        let tasksIndex = 4
        let (leader, survivor) = la[tasksIndex] ? (a, b) : (b, a)
        leader.kill(SIGKILL)
        for i in 20..<40 { #expect(try await create(survivor, i) == 201) }
        let started = Date()
        var recovered = false
        while Date().timeIntervalSince(started) < 20 {
            let r = try await runBlocking { try survivor.call("GET", "/v1/projections", token: token) }
            let items = r.json["items"] as? [[String: Any]] ?? []
            if items.count == 5, items.allSatisfy({ ($0["leader_here"] as? Bool) == true && ($0["lag_events"] as? Int) == 0 }) { recovered = true; break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        #expect(recovered, "the survivor leads every projection and has caught up")
        #expect(Date().timeIntervalSince(started) < 10)
        let tasks = try await runBlocking { try survivor.call("GET", "/v1/tasks?limit=1000", token: token) }
        let ids = (tasks.json["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(ids.count == 40, "nothing lost")
        #expect(Set(ids).count == 40, "nothing applied twice")
    }
}

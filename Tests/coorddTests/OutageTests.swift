import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

@Suite("PostgreSQL outage")
struct OutageTests {
    @Test("while PostgreSQL is down requests answer 503 quickly and the daemon keeps running; it recovers by itself")
    func outage() async throws {
        let directory = "/tmp/coord-test-outage-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let cluster = TestDatabase.makeCluster(at: directory)
        try cluster.start()
        defer { try? cluster.stop(mode: "immediate"); try? FileManager.default.removeItem(atPath: directory) }
        let pool = PostgresPool(configuration: try PostgresConfiguration(connectionString: cluster.connectionString, poolSize: 8), acquireTimeout: 2)
        _ = try await Migrator.migrate(pool, Coordination.migrationSets)
        let d = try await TestDaemon(pool: pool)
        defer { Task { await d.stop() } }
        try await d.settle()
        let body = #"{"code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#
        #expect(try await d.call("GET", "/v1/stock", token: d.viewer).status == 200)

        try cluster.stop(mode: "fast")
        let started = Date()
        let down = try await d.call("GET", "/v1/stock", token: d.viewer)
        #expect(down.status == 503)
        let write = try await d.call("POST", "/v1/warehouses", token: d.operatorToken, body: body)
        #expect(write.status == 503)
        #expect(write.headers["retry-after"] != nil)
        #expect(!write.body.lowercased().contains("postgres") && !write.body.contains("SQLSTATE"))
        #expect(Date().timeIntervalSince(started) < 10, "503s come quickly")
        #expect(try await d.call("GET", "/healthz").status == 200, "the process keeps running")
        #expect(try await d.call("GET", "/readyz").status == 503)

        try cluster.start()
        var recovered = false
        for _ in 0..<100 where !recovered {
            recovered = try await d.call("POST", "/v1/warehouses", token: d.operatorToken, body: body).status == 201
            if !recovered { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        #expect(recovered, "a write succeeds once PostgreSQL is back, without restarting coordd")
        #expect(try await d.store.version(of: "warehouse-MNL") == 1, "written exactly once")
        try await d.settle()
        #expect(try await d.call("GET", "/readyz").status == 200)
    }
}

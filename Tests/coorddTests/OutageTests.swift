import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

@Suite("PostgreSQL outage")
struct OutageTests {
    /// A coordd on a migrated cluster of its own, which the test may stop and start.
    static func daemonOnItsOwnCluster(_ label: String) async throws -> (ScratchCluster, TestDaemon) {
        let scratch = try await ScratchCluster.started(label)
        let pool = try scratch.makePool(poolSize: 8)
        _ = try await Migrator.migrate(pool, Coordination.migrationSets)
        return (scratch, try await TestDaemon(pool: pool))
    }

    @Test("while PostgreSQL is down requests answer 503 quickly and the daemon keeps running; it recovers by itself")
    func outage() async throws {
        let (scratch, d) = try await Self.daemonOnItsOwnCluster("outage")
        defer { Task { await d.stop() }; scratch.remove() }
        try await d.settle()
        let body = #"{"code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#
        #expect(try await d.call("GET", "/v1/stock", token: d.viewer).status == 200)

        try await scratch.stop(mode: "fast")
        let started = Date()
        // A list not asked before (one asked before may be served again from memory: its tables cannot change while
        // the database is down, and this coordd stops vouching for them once it notices its leadership is gone).
        let down = try await d.call("GET", "/v1/stock?warehouse=MNL", token: d.viewer)
        #expect(down.status == 503)
        let write = try await d.call("POST", "/v1/warehouses", token: d.operatorToken, body: body)
        #expect(write.status == 503)
        #expect(write.headers["retry-after"] != nil)
        #expect(!write.body.lowercased().contains("postgres") && !write.body.contains("SQLSTATE"))
        #expect(Date().timeIntervalSince(started) < 10, "503s come quickly")
        #expect(try await d.call("GET", "/healthz").status == 200, "the process keeps running")
        #expect(try await d.call("GET", "/readyz").status == 503)

        try await scratch.start()
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

    @Test("live feeds never idle on a log they cannot read: open ones end with `unavailable`, one opened during the outage does not answer a silent 200, and a resumed feed gets every event")
    func liveFeedsDuringOutage() async throws {
        let (scratch, d) = try await Self.daemonOnItsOwnCluster("feed-outage")
        defer { Task { await d.stop() }; scratch.remove() }
        let port = d.port, token = d.viewer
        try await d.store.append(sampleEvents(5), to: "feed-1")
        let open = try await offPool { () -> SendableClient in
            let c = try RawClient(port: port, receiveTimeout: 8)
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\n\r\n")
            _ = c.read(until: "id: 5\n")
            return SendableClient(c)
        }

        try await scratch.stop(mode: "immediate")
        let ended = try await offPool { open.value.readUntilClosed() }
        #expect(ended.contains("event: unavailable"), "the open feed was told, then closed")
        let during = try await offPool { () -> String in
            let c = try RawClient(port: port, receiveTimeout: 8)
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\n\r\n")
            return c.readUntilClosed()
        }
        #expect(during.hasPrefix("HTTP/1.1 503") || during.contains("event: unavailable"), "opened while down: \(during.prefix(200))")

        try await scratch.start()
        var appended = false
        for _ in 0..<100 where !appended {
            appended = (try? await d.store.append(sampleEvents(300), to: "feed-2")) != nil
            if !appended { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        #expect(appended)
        // As an EventSource client does: reconnect after `retry`, resuming from the last id it saw.
        let ids = try await offPool { () -> [Int] in
            var ids: [Int] = []
            for _ in 0..<20 where ids.last != 305 {
                let c = try RawClient(port: port, receiveTimeout: 8)
                c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nLast-Event-ID: \(ids.last ?? 5)\r\n\r\n")
                let text = c.read(until: "id: 305\n")
                ids += text.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.map { Int($0.dropFirst(4)) ?? 0 }
                if ids.last != 305 { Thread.sleep(forTimeInterval: 0.5) }
            }
            return ids
        }
        #expect(ids == Array(6...305), "every event after the resume point, once, in order")
    }
}

import Coordination
import Events
import Foundation
import Synchronization
import Testing
import TestSupport
@testable import coordd

/// Runs blocking socket code off the cooperative pool (the server's handler tasks need it).
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T { try await runBlocking(body) }

@Suite("coordd over sockets: live feeds and shutdown")
struct ServerTests {
    @Test("SSE: resume with Last-Event-ID skips nothing and repeats nothing")
    func liveFeedResume() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let port = d.port, token = d.viewer
        for i in 0..<10 { try await d.store.append(sampleEvents(1), to: "thing-\(i)") }
        // First connection: read the first 10, note the last id, disconnect.
        let first = try await offPool { () -> String in
            let c = try RawClient(port: port)
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\n\r\n")
            return c.read(until: "id: 10\n")
        }
        let firstIDs = first.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.map { Int($0.dropFirst(4))! }
        #expect(firstIDs == Array(1...10))
        for i in 10..<15 { try await d.store.append(sampleEvents(1), to: "thing-\(i)") }
        let second = try await offPool { () -> String in
            let c = try RawClient(port: port)
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nLast-Event-ID: 10\r\n\r\n")
            return c.read(until: "id: 15\n")
        }
        let secondIDs = second.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.map { Int($0.dropFirst(4))! }
        #expect(secondIDs == Array(11...15))
        #expect(second.contains("Content-Type: text/event-stream"))
    }

    @Test("a feed from the start over 3,000 large events held in the window catches up at the client's pace: every event once, in order, none dropped")
    func catchUpFromTheWindow() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let port = d.port, token = d.viewer
        try await d.app.fanout.start()
        // ~3.3 MB: three times what a stream may hold unsent, all of it in the shared window, read at memory speed.
        let payload = JSONText("{\"text\":\"" + String(repeating: "x", count: 1000) + "\"}")
        for i in 0..<30 {
            try await d.store.append((0..<100).map { _ in EventData(type: "bulk.event", data: payload) }, to: "bulk-\(i)")
        }
        for _ in 0..<200 {
            if case .events(let e) = d.app.fanout.events(after: 2999, limit: 1), !e.isEmpty { break }
            try await Task.sleep(nanoseconds: 25_000_000)
        }
        if case .events(let first) = d.app.fanout.events(after: 0, limit: 1) {
            #expect(first.first?.event.position == 1, "the window holds the log from its start")
        } else {
            Issue.record("the window does not reach back to position 0")
        }
        let feed = try await offPool { () -> String in
            let c = try RawClient(port: port, receiveTimeout: 20)
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nLast-Event-ID: 0\r\n\r\n")
            return c.read(until: "id: 3000\n")
        }
        let ids = feed.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
        #expect(ids == Array(1...3000), "\(WriterLoad.describe(ids, head: 3000))")
    }

    @Test("an attached feed whose client reads slower than a burst comes falls back to pulling at the client's pace: every event once, in order, and the connection kept")
    func burstWhileAttached() async throws {
        let (d, client) = try await SlowConsumerTests.daemonAndSmallReader()
        defer { Task { await d.stop() } }
        for _ in 0..<200 where d.app.fanout.attachedCount == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(d.app.fanout.attachedCount == 1, "the caught-up feed attached")
        // ~450 KB at once: seven times what the connection may hold unsent.
        let payload = JSONText("{\"text\":\"" + String(repeating: "x", count: 1000) + "\"}")
        for i in 0..<4 {
            try await d.store.append((0..<100).map { _ in EventData(type: "bulk.event", data: payload) }, to: "burst-\(i)")
        }
        let feed = try await offPool { client.value.read(until: "id: 400\n") }
        let ids = feed.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
        #expect(ids == Array(1...400), "\(WriterLoad.describe(ids, head: 400))")
        #expect(d.server.connectionCount == 1, "the connection was kept")
    }

    @Test("graceful shutdown: a request in flight completes, live streams get a final event, every connection closes")
    func gracefulShutdown() async throws {
        let d = try await TestDaemon()
        let port = d.port, token = d.viewer
        try await d.store.append(sampleEvents(1), to: "thing-1")
        let stream = try await offPool { () -> RawClient in
            let c = try RawClient(port: port)
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\n\r\n")
            _ = c.read(until: "id: 1\n")
            return SendableClient(c).value
        }
        // A write held mid-flight: another session holds the event head's row lock, so the append waits.
        let holder = try TestDatabase.connection(like: d.store.pool)
        defer { holder.close() }
        try holder.execute(unsafe: "BEGIN")
        try holder.execute(unsafe: "SELECT * FROM event_head FOR UPDATE")
        let opToken = d.operatorToken
        let inFlight = try await offPool { () -> SendableClient in
            let c = try RawClient(port: port)
            let body = #"{"code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#
            c.send("POST /v1/warehouses HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(opToken)\r\nContent-Type: application/json\r\n"
                   + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)
            return SendableClient(c)
        }
        try await Task.sleep(nanoseconds: 200_000_000)
        let stopping = Task { _ = await d.daemon.stop(grace: 10) }
        try await Task.sleep(nanoseconds: 300_000_000)
        try holder.execute(unsafe: "COMMIT")  // the write can now finish, during the shutdown
        await stopping.value
        let (streamTail, answer) = try await offPool { (stream.readUntilClosed(), inFlight.value.response()?.status) }
        #expect(streamTail.contains("event: shutdown"))
        #expect(answer == 201, "the request in flight completed")
        #expect(try await d.store.version(of: "warehouse-MNL") == 1)
        // Every connection is closed. (Whether the port still refuses connections cannot be asserted here:
        // other tests running in parallel may be handed the freed port by the kernel.)
        #expect(d.server.connectionCount == 0)
    }
}

struct SendableClient: @unchecked Sendable {
    let value: RawClient
    init(_ v: RawClient) { value = v }
}

extension RawClient: @unchecked Sendable {}

@Suite("Slow live-feed consumers")
struct SlowConsumerTests {
    /// A daemon whose connections may hold 64 KiB unsent, and a live feed on it whose client's socket takes 4 KiB.
    static func daemonAndSmallReader() async throws -> (TestDaemon, SendableClient) {
        let d = try await TestDaemon { $0.maxQueuedOutput = 64 * 1024 }
        let port = d.port, token = d.viewer
        let client = try await offPool { () -> SendableClient in
            let c = try RawClient(port: port, receiveTimeout: 30)
            var small: Int32 = 4096
            setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\n\r\n")
            _ = c.read(until: "retry: 2000")
            return SendableClient(c)
        }
        return (d, client)
    }

    @Test("a live-feed client that stops reading is disconnected instead of growing the server's memory")
    func slowConsumer() async throws {
        let (d, client) = try await Self.daemonAndSmallReader()
        defer { Task { await d.stop() } }
        #expect(d.server.connectionCount == 1)
        // ~4 MB of events that the client never reads.
        let payload = JSONText("{\"text\":\"" + String(repeating: "x", count: 2000) + "\"}")
        for i in 0..<20 {
            try await d.store.append((0..<100).map { _ in EventData(type: "bulk.event", data: payload) }, to: "bulk-\(i)")
        }
        // Its feed falls back to pulling once its stream backs up, and waits for room; after ten seconds without
        // the client taking a byte, the stream fails and the connection goes.
        var dropped = false
        for _ in 0..<300 where !dropped {
            dropped = d.server.connectionCount == 0
            if !dropped { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        #expect(dropped, "the slow client was disconnected")
        _ = client
    }
}

import Coordination
import Events
import Foundation
import Synchronization
import Testing
import TestSupport
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// The holes an outside fault campaign found (issue 16), each one a test that fails without its fix.
@Suite("Hardening: no remote crash, no exhaustion")
struct HardeningTests {
    @Test("a delta of -2^63 is refused with 422 (it crashed coordd); a log whose sums pass 2^63 folds to a held figure instead of trapping")
    func overflow() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        #expect(try await d.call("POST", "/v1/warehouses", token: d.admin, body: #"{"code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#).status == 201)
        let item = try await d.call("POST", "/v1/items", token: d.admin, body: #"{"code":"KIT","name":"Kit","unit":"kit"}"#)
        #expect(item.status == 201, "\(item.body)")
        for delta in ["-9223372036854775808", "9223372036854775807", "-9223372036854775809"] {
            let r = try await d.call("POST", "/v1/stock/adjustments", token: d.operatorToken,
                                     body: #"{"warehouse":"MNL","item":"KIT","delta":\#(delta),"reason":"found"}"#)
            #expect(r.status == 422, "\(delta)")
            #expect(r.body.contains("delta"))
        }
        #expect(try await d.call("GET", "/healthz").status == 200, "coordd is still up")
        // Facts a validating writer would never record, appended below the domain (as a foreign binary might).
        let huge = JSONText(#"{"warehouse":"MNL","item":"KIT","quantity":9223372036854775807,"source":"procurement"}"#)
        for _ in 0..<3 { try await d.store.append([EventData(type: "stock.received", data: huge)], to: Streams.stock("MNL", "KIT")) }
        try await d.settle()
        let stock = try await d.call("GET", "/v1/stock?warehouse=MNL", token: d.viewer)
        #expect(stock.status == 200)
        #expect(stock.body.contains("9223372036854775807"), "the balance is held at the largest figure")
        let dispatch = try await d.call("POST", "/v1/stock/dispatches", token: d.operatorToken,
                                        body: #"{"warehouse":"MNL","item":"KIT","quantity":5,"destination":"Tacloban"}"#)
        #expect(dispatch.status == 200, "the stream's own fold (for the availability check) does not trap either: \(dispatch.body)")
    }

    @Test("20,000 pipelined requests from a client that reads nothing: the server holds at most its bound of answers (it grew to 1.75 GB)")
    func pipeliningIsBounded() async throws {
        let bound = 64 * 1024
        let d = try await TestDaemon { $0.maxQueuedOutput = bound }
        defer { Task { await d.stop() } }
        let port = d.port
        let document = try await d.call("GET", "/v1/openapi.json")
        #expect(document.status == 200)
        let count = 20_000
        let client = try await offPool { SendableClient(try RawClient(port: port, receiveTimeout: 20)) }
        let requests = Array(String(repeating: "GET /v1/openapi.json HTTP/1.1\r\nHost: t\r\n\r\n", count: count).utf8)
        let sender = Thread { client.value.send(requests) }
        sender.start()
        // The client reads nothing for two seconds (20,000 answers would be ~\(count * document.body.utf8.count >> 20) MB).
        var peak = 0
        for _ in 0..<40 {
            peak = max(peak, d.server.queuedOutputBytes)
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(peak > 0, "answers did back up")
        #expect(peak <= bound + document.body.utf8.count + 1024, "queued \(peak) bytes against a bound of \(bound) and one answer")
        let answered = try await offPool { () -> Int in
            var n = 0
            while n < 100, let r = client.value.response(), r.status == 200, r.body == document.body { n += 1 }
            return n
        }
        #expect(answered == 100, "the answers come, whole and in order, as the client reads")
        try await offPool { client.value.abort() }
        var released = false
        for _ in 0..<100 where !released {
            released = d.server.queuedOutputBytes == 0 && d.server.connectionCount == 0
            if !released { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        #expect(released, "a client that goes away takes its queue with it")
        #expect(try await d.call("GET", "/healthz").status == 200)
    }

    @Test("a 1 MiB body of 95,000 keys is answered in one short 422, not after seconds of work; a repeated key is refused, not first-wins")
    func manyKeys() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let keys = (0..<95_000).map { "\"k\($0)\":1" }.joined(separator: ",")
        let body = "{" + keys + "}"
        #expect(body.utf8.count < 1 << 20)
        let r = try await d.call("POST", "/v1/stock/dispatches", token: d.operatorToken, body: body)
        #expect(r.status == 422)
        #expect(r.body.utf8.count < 8192, "the answer names 20 fields and counts the rest")
        #expect(r.body.contains("94980 more unknown fields"))
        let twice = try await d.call("POST", "/v1/stock/dispatches", token: d.operatorToken,
                                     body: #"{"warehouse":"MNL","item":"KIT","quantity":1,"quantity":9000,"destination":"x"}"#)
        #expect(twice.status == 400)
        #expect(twice.body.contains("appears twice"))
    }

    @Test("parsing objects is linear in their keys: 95,000 keys cost about ten times 9,500 (the duplicate check was quadratic)")
    func parsingIsLinear() throws {
        func body(_ n: Int) -> Data { Data(("{" + (0..<n).map { "\"k\($0)\":1" }.joined(separator: ",") + "}").utf8) }
        let small = body(9_500), large = body(95_000)
        func seconds(_ data: Data) throws -> Double {
            var best = Double.infinity
            for _ in 0..<3 {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try JSONValue.parse(data)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return best
        }
        let ratio = try seconds(large) / seconds(small)
        // Linear is ~10; quadratic would be ~100.
        #expect(ratio < 30, "95,000 keys took \(ratio)× as long as 9,500")
    }

    @Test("a full server closes its longest-idle keep-alive connection for a newcomer; only when all are working is the newcomer refused")
    func idleEviction() async throws {
        let d = try await TestDaemon { $0.maxConnections = 4 }
        defer { Task { await d.stop() } }
        let port = d.port
        try await offPool {
            var idle: [RawClient] = []
            for _ in 0..<4 {
                let c = try RawClient(port: port)
                c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(c.response()?.status == 200)
                idle.append(c)
            }
            let newcomer = try RawClient(port: port)
            newcomer.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(newcomer.response()?.status == 200, "an idle connection made room")
            #expect(idle[0].readUntilClosed() == "", "the longest-idle one was closed")
            // Now keep every connection mid-request: nobody is idle, so the next one is refused.
            for c in idle.dropFirst() + [newcomer] { c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n") }
            Thread.sleep(forTimeInterval: 0.3)
            let refused = try RawClient(port: port)
            refused.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(refused.response()?.status == 503)
        }
    }

    @Test("wire forms the fuzzer found passing: two Host headers, a +3 chunk size, NUL or a non-UTF-8 escape in a query, the year 0 — each a 400 or 422")
    func malformedForms() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let port = d.port, token = d.viewer
        try await offPool {
            let host = try RawClient(port: port)
            host.send("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            #expect(host.response()?.status == 400)
            let chunk = try RawClient(port: port)
            chunk.send("POST /v1/items HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\n{}x\r\n0\r\n\r\n")
            #expect(chunk.response()?.status == 400)
        }
        // A query that cannot be read is 400; one read but holding a value its filter refuses is 422, naming it.
        for (path, status) in [("/v1/stock?warehouse=a%00b", 400), ("/v1/stock?warehouse=%ff", 400),
                               ("/v1/deployments?active_on=0000-01-01", 422), ("/v1/deployments?active_on=2026-02-30", 422)] {
            let r = try await d.call("GET", path, token: d.viewer)
            #expect(r.status == status, "\(path): \(r.status) \(r.body)")
            if status == 422 { #expect(r.body.contains("active_on")) }
        }
        let yearZero = try await d.call("POST", "/v1/deployments", token: d.operatorToken,
                                        body: #"{"person":"P","response":"R","profile":"WASH","start":"0000-01-01","end":"0000-01-02"}"#)
        #expect(yearZero.status == 422)
    }

    @Test("the body timeout is 30 s as documented; a body that stalls past it gets 408 and the connection closes")
    func bodyTimeout() async throws {
        #expect(HTTPServerConfiguration().bodyTimeout == 30)
        let d = try await TestDaemon { $0.bodyTimeout = 1 }
        defer { Task { await d.stop() } }
        let port = d.port
        try await offPool {
            let c = try RawClient(port: port)
            c.send("POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":")
            #expect(c.response()?.status == 408)
            #expect(c.readUntilClosed() == "")
        }
    }

    @Test("a shutdown that cuts a request off at the end of its grace says so (coordd then exits 1, not 0)")
    func shutdownCut() async throws {
        let d = try await TestDaemon()
        let lock = try TestDatabase.connection(like: d.store.pool)
        // A request that cannot finish: the log is locked by another session.
        _ = try lock.execute(unsafe: "BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        let port = d.port, token = d.viewer
        let request = Task { try await runBlocking { try HTTPClient.call(port: port, "GET", "/v1/events?after=0", headers: ["Authorization": "Bearer \(token)"]) } }
        try await Task.sleep(nanoseconds: 500_000_000)
        let clean = await d.daemon.stop(grace: 1)
        _ = try lock.execute(unsafe: "ROLLBACK")
        _ = try? await request.value
        #expect(clean == false, "the cut request is reported")
    }
}

import Events
import Foundation
import Synchronization
import Testing
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP wire layer on its own: an `HTTPServer` with a handler of a few lines, no routes, no database.
final class WireServer: @unchecked Sendable {
    let server: HTTPServer
    /// `/slow` signals `arrived`, then waits until `release` is signalled (a request the test holds in flight).
    let release = DispatchSemaphore(value: 0)
    let arrived = DispatchSemaphore(value: 0)
    /// Answers the handler has produced.
    let counter = Counter()
    final class Counter: Sendable { let value = Atomic<Int>(0) }
    /// 1 MiB, for answers that back up (a few fill the sockets' buffers, even when a loaded machine runs the
    /// handlers slowly).
    static let big = String(repeating: "x", count: 1 << 20)

    init(configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws {
        signal(SIGPIPE, SIG_IGN)  // as coordd's main does
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configure(&configuration)
        let (release, arrived, counter) = (self.release, self.arrived, self.counter)
        server = HTTPServer(configuration: configuration, logger: .silent) { request in
            counter.value.add(1, ordering: .relaxed)
            switch (request.method, request.path) {
            case ("GET", "/healthz"), ("HEAD", "/healthz"): return .json(200, #"{"status":"ok"}"#)
            case ("GET", "/big"): return .text(200, WireServer.big)
            case ("POST", "/echo"): return HTTPResponse(status: 201, headers: [("Content-Type", "application/json")], body: request.body)
            case ("GET", "/slow"):
                arrived.signal()
                await withCheckedContinuation { c in DispatchQueue.global().async { release.wait(); c.resume() } }
                return .text(200, "done\n")
            default: return .text(404, "not found\n")
            }
        }
        try server.start()
    }

    var port: UInt16 { server.boundPort }

    func stop(grace: Double = 1) -> Bool { server.shutdown(grace: grace) }
}

@Suite("HTTP wire layer (no database)")
struct WireTests {
    @Test("keep-alive, pipelining in order, HEAD, and a malformed request answered 400 then closed")
    func connectionBehaviour() async throws {
        let w = try WireServer()
        defer { _ = w.stop() }
        let port = w.port
        try await offPool {
            let c = try RawClient(port: port)
            c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(c.response()?.status == 200)
            c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(c.response()?.status == 200, "the connection was kept alive")
            // Three pipelined requests in one write: three answers, in order.
            c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(c.response()?.status == 200)
            #expect(c.response()?.status == 404)
            let head = c.response(head: true)
            #expect(head?.status == 200)
            #expect(head?.body == "")
            #expect(head?.headers["date"] != nil, "every answer carries a Date")
            c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
            let bad = c.response()
            #expect(bad?.status == 400)
            #expect(bad?.headers["connection"] == "close")
            #expect(c.readUntilClosed() == "")
        }
    }

    @Test("limits: 431 for huge heads, 413 for huge bodies, 505 for HTTP/2; Connection: close honoured")
    func limits() async throws {
        let w = try WireServer { $0.limits = HTTPLimits(maxHeaderBytes: 1024, maxHeaderCount: 10, maxBodyBytes: 2048) }
        defer { _ = w.stop() }
        let port = w.port
        try await offPool {
            let big = try RawClient(port: port)
            big.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "a", count: 2000) + "\r\n\r\n")
            #expect(big.response()?.status == 431)
            let body = try RawClient(port: port)
            body.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n")
            #expect(body.response()?.status == 413)
            let v2 = try RawClient(port: port)
            v2.send("GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n")
            #expect(v2.response()?.status == 505)
            let close = try RawClient(port: port)
            close.send("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(close.response()?.headers["connection"] == "close")
            #expect(close.readUntilClosed() == "")
        }
    }

    @Test("a slow head is dropped with 408; a body that stalls past the body timeout (30 s by default) too; Expect: 100-continue gets an interim answer")
    func timeoutsAndContinue() async throws {
        #expect(HTTPServerConfiguration().bodyTimeout == 30, "the documented body timeout")
        let w = try WireServer { $0.headerTimeout = 0.5; $0.bodyTimeout = 0.5 }
        defer { _ = w.stop() }
        let port = w.port
        try await offPool {
            let slow = try RawClient(port: port)
            slow.send("GET /healthz HTTP/1.1\r\nHost: t\r\n")  // never finishes its head
            #expect(slow.response()?.status == 408)
            let stalled = try RawClient(port: port)
            stalled.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":")
            #expect(stalled.response()?.status == 408)
            #expect(stalled.readUntilClosed() == "")
            let c = try RawClient(port: port)
            let body = #"{"code":"MNL"}"#
            c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            #expect(c.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 100 Continue"))
            _ = c.response()  // the interim 100
            c.send(body)
            let echoed = c.response()
            #expect(echoed?.status == 201)
            #expect(echoed?.body == body)
        }
    }

    @Test("wire forms the fuzzer found passing: two Host headers and a +3 chunk size are 400")
    func malformedForms() async throws {
        let w = try WireServer()
        defer { _ = w.stop() }
        let port = w.port
        try await offPool {
            let host = try RawClient(port: port)
            host.send("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            #expect(host.response()?.status == 400)
            let chunk = try RawClient(port: port)
            chunk.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\n{}x\r\n0\r\n\r\n")
            #expect(chunk.response()?.status == 400)
        }
    }

    @Test("20,000 pipelined requests from a client that reads nothing: the server holds at most its bound of answers (it grew to 1.75 GB)")
    func pipeliningIsBounded() async throws {
        let bound = 64 * 1024
        // A client that reads nothing for 8 s is dropped with its queue, even if its reset never reaches the server.
        let w = try WireServer { $0.maxQueuedOutput = bound; $0.idleTimeout = 8 }
        defer { _ = w.stop() }
        let port = w.port
        let answer = WireServer.big.utf8.count
        let count = 20_000
        let client = try await offPool { SendableClient(try RawClient(port: port, receiveTimeout: 20)) }
        let requests = Array(String(repeating: "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", count: count).utf8)
        let sender = Thread { client.value.send(requests) }
        sender.start()
        // The client reads nothing (20,000 answers would be 20 GB): once the socket buffers are full, answers back
        // up in the server, which must then stop reading the connection. Watch for a second after they first do.
        var peak = 0
        var backedUp: Date?
        let start = Date()
        while Date().timeIntervalSince(backedUp ?? Date()) < 1, Date().timeIntervalSince(start) < 30 {
            let queued = w.server.queuedOutputBytes
            peak = max(peak, queued)
            if queued > 0 && backedUp == nil { backedUp = Date() }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(peak > 0, "answers did back up (\(w.counter.value.load(ordering: .relaxed)) answered in \(Date().timeIntervalSince(start)) s)")
        #expect(peak <= bound + answer + 1024, "queued \(peak) bytes against a bound of \(bound) and one answer")
        let answered = try await offPool { () -> Int in
            var n = 0
            while n < 10, let r = client.value.response(), r.status == 200, r.body == WireServer.big { n += 1 }
            return n
        }
        #expect(answered == 10, "the answers come, whole and in order, as the client reads")
        try await offPool { client.value.abort() }
        var released = false
        // Up to 30 s: at once when the reset arrives; else the idle timeout (8 s) drops it.
        for _ in 0..<600 where !released {
            released = w.server.queuedOutputBytes == 0 && w.server.connectionCount == 0
            if !released { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        #expect(released, "a client that goes away takes its queue with it: \(w.server.connectionCount) connections, \(w.server.queuedOutputBytes) bytes queued")
    }

    @Test("a full server closes its longest-idle keep-alive connection for a newcomer; only when all are working is the newcomer refused")
    func idleEviction() async throws {
        let w = try WireServer { $0.maxConnections = 4 }
        defer { _ = w.stop() }
        let port = w.port
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

    @Test("a shutdown that cuts a request off at the end of its grace says so (coordd then exits 1, not 0); one that does not, says that")
    func shutdownCut() async throws {
        let w = try WireServer()
        let port = w.port
        let request = Task { try await runBlocking { try HTTPClient.call(port: port, "GET", "/slow") } }
        let arrived = w.arrived
        #expect(try await runBlocking { arrived.wait(timeout: .now() + 20) } == .success, "the request is in flight")
        let clean = try await runBlocking { w.stop(grace: 0.5) }
        w.release.signal()
        _ = try? await request.value
        #expect(clean == false, "the cut request is reported")

        let quiet = try WireServer()
        #expect(try await runBlocking { try HTTPClient.call(port: quiet.port, "GET", "/healthz") }.status == 200)
        #expect(try await runBlocking { quiet.stop(grace: 0.5) }, "nothing was in flight")
    }
}

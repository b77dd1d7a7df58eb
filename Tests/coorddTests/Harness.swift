import Coordination
import Events
import Foundation
import TestSupport
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// A coordd in-process: API, projections and server on a free port, on a fresh schema.
final class TestDaemon: @unchecked Sendable {
    let store: EventStore
    let service: CoordinationService
    let runner: ProjectionRunner
    let app: App
    let server: HTTPServer
    var port: UInt16 { server.boundPort }
    let admin: String
    let operatorToken: String
    let viewer: String

    init(pool given: PostgresPool? = nil, configure: (inout HTTPServerConfiguration) -> Void = { _ in }) async throws {
        let pool: PostgresPool
        if let given { pool = given } else { pool = try await TestDatabase.makePool(poolSize: 12, sets: Coordination.migrationSets) }
        store = EventStore(pool: pool)
        service = CoordinationService(store: store)
        runner = ProjectionRunner(store: store, definitions: Coordination.projections, leaderPoll: 0.2)
        runner.start()
        app = App(service: service, runner: runner, logger: .silent, metrics: Metrics(), metricsOpen: true)
        var config = HTTPServerConfiguration()
        config.port = 0
        configure(&config)
        let app = self.app
        server = HTTPServer(configuration: config, logger: .silent) { await app.handle($0) }
        try server.start()
        app.link.set(server)
        let tokens = TokenStore(pool: pool)
        admin = try await tokens.create(subject: "admin-1", role: .admin).token
        operatorToken = try await tokens.create(subject: "officer-7", role: .operator).token
        viewer = try await tokens.create(subject: "viewer-1", role: .viewer).token
    }

    func stop() async {
        let server = self.server
        _ = try? await runBlocking { server.shutdown(grace: 2) }
        app.fanout.stop()
        await runner.stop()
        store.close()
    }

    /// Waits until the read models have caught up with the log.
    func settle() async throws {
        for _ in 0..<400 {
            if try await runner.status().allSatisfy({ $0.lagEvents == 0 && $0.status == "running" }) { return }
            try await Task.sleep(nanoseconds: 25_000_000)
        }
    }
}

struct RawResponse: @unchecked Sendable {
    let status: Int
    let headers: [String: String]
    let body: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
}

/// A plain TCP client that writes exactly the bytes a test gives it.
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16) throws {
        fd = try Loopback.connect(port: port, receiveTimeout: 10)
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }
    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Reads more bytes; false at EOF or timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// The next complete response (Content-Length framed), or nil if the connection closed first.
    func response(head: Bool = false) -> RawResponse? {
        while true {
            if let end = ByteSearch.find(ByteSearch.crlfcrlf, in: buffer) {
                let headText = String(decoding: buffer[0..<end], as: UTF8.self)
                var lines = headText.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                var headers: [String: String] = [:]
                for l in lines { if let c = l.firstIndex(of: ":") { headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces) } }
                let length = head ? 0 : Int(headers["content-length"] ?? "0") ?? 0
                if buffer.count >= end + 4 + length {
                    let body = String(decoding: buffer[(end + 4)..<(end + 4 + length)], as: UTF8.self)
                    buffer.removeFirst(end + 4 + length)
                    return RawResponse(status: Int(statusLine[1]) ?? 0, headers: headers, body: body)
                }
            }
            if !fill() { return nil }
        }
    }

    /// Everything until the server closes the connection (or the timeout).
    func readUntilClosed() -> String {
        while fill() {}
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Reads until `marker` has been seen (or the timeout).
    func read(until marker: String) -> String {
        while !String(decoding: buffer, as: UTF8.self).contains(marker) { if !fill() { break } }
        return String(decoding: buffer, as: UTF8.self)
    }

    var isClosedByPeer: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }
}

extension TestDaemon {
    /// One request on a fresh connection. The blocking socket I/O runs off the cooperative pool, which the
    /// server's handler tasks need.
    func call(_ method: String, _ path: String, token: String? = nil, body: String? = nil, headers: [String: String] = [:]) async throws -> RawResponse {
        let port = self.port
        return try await runBlocking { try Self.blockingCall(port: port, method, path, token: token, body: body, headers: headers) }
    }

    static func blockingCall(port: UInt16, _ method: String, _ path: String, token: String?, body: String?, headers: [String: String]) throws -> RawResponse {
        let client = try RawClient(port: port)
        var text = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        var hs = headers
        if let body {
            if hs["Content-Type"] == nil { hs["Content-Type"] = "application/json" }
            hs["Content-Length"] = String(body.utf8.count)
        }
        for (k, v) in hs { text += "\(k): \(v)\r\n" }
        text += "\r\n" + (body ?? "")
        client.send(text)
        guard let r = client.response(head: method == "HEAD") else { throw POSIXError(.ECONNRESET) }
        return r
    }
}

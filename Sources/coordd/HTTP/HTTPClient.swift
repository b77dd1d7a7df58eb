import Events
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An answer read by `HTTPClient`: status, headers (names lower-cased) and body, de-chunked.
struct HTTPClientResponse: @unchecked Sendable {
    let status: Int
    let headers: [String: String]
    /// The body as bytes (a gzipped answer is not text).
    let bytes: [UInt8]
    var body: String { String(decoding: bytes, as: UTF8.self) }
    init(status: Int, headers: [String: String], body: String) { self.init(status: status, headers: headers, bytes: Array(body.utf8)) }
    init(status: Int, headers: [String: String], bytes: [UInt8]) { (self.status, self.headers, self.bytes) = (status, headers, bytes) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
}

/// A small blocking HTTP/1.1 client on one TCP connection to a loopback port: it writes exactly the bytes it is
/// given, and reads answers framed by `Content-Length`, `Transfer-Encoding: chunked` or the connection's end.
/// For the tests, which must be able to send malformed requests, and for the benchmark.
final class HTTPClient {
    private(set) var fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16, receiveTimeout: Int = 10) throws {
        fd = try Loopback.connect(port: port, receiveTimeout: receiveTimeout)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Drops the connection with a reset, as a client that crashes or loses its network would.
    func abort() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        // Wakes a thread blocked sending on this socket (close alone would wait for it), then resets.
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        fd = -1
    }

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

    /// The next complete answer, or nil if the connection closed first. `head`: the request was a HEAD (no body).
    func response(head: Bool = false) -> HTTPClientResponse? {
        while true {
            if let end = ByteSearch.find(ByteSearch.crlfcrlf, in: buffer) {
                let headText = String(decoding: buffer[0..<end], as: UTF8.self)
                var lines = headText.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                var headers: [String: String] = [:]
                for l in lines { if let c = l.firstIndex(of: ":") { headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces) } }
                let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
                if head || status == 304 || status == 204 || (100..<200).contains(status) {
                    buffer.removeFirst(end + 4)
                    return HTTPClientResponse(status: status, headers: headers, body: "")
                }
                if headers["transfer-encoding"]?.lowercased() == "chunked" {
                    guard let body = chunkedBody(from: end + 4) else { if !fill() { return nil }; continue }
                    return HTTPClientResponse(status: status, headers: headers, bytes: body)
                }
                if let length = headers["content-length"].flatMap({ Int($0) }) {
                    if buffer.count >= end + 4 + length {
                        let body = Array(buffer[(end + 4)..<(end + 4 + length)])
                        buffer.removeFirst(end + 4 + length)
                        return HTTPClientResponse(status: status, headers: headers, bytes: body)
                    }
                } else if !fill() {
                    // Framed by the connection's end (an event stream).
                    let body = Array(buffer[(end + 4)...])
                    buffer.removeAll()
                    return HTTPClientResponse(status: status, headers: headers, bytes: body)
                } else {
                    continue
                }
            }
            if !fill() { return nil }
        }
    }

    /// A complete chunked body starting at `start`, removed from the buffer with its head; nil when incomplete.
    private func chunkedBody(from start: Int) -> [UInt8]? {
        var offset = start
        var body: [UInt8] = []
        while true {
            guard let lineEnd = ByteSearch.find(ByteSearch.crlf, in: buffer, from: offset) else { return nil }
            let text = String(decoding: buffer[offset..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(text, radix: 16) else { return nil }
            let data = lineEnd + 2
            if size == 0 {
                guard buffer.count >= data + 2 else { return nil }
                buffer.removeFirst(data + 2)
                return body
            }
            guard buffer.count >= data + size + 2 else { return nil }
            body.append(contentsOf: buffer[data..<(data + size)])
            offset = data + size + 2
        }
    }

    /// Everything until the server closes the connection (or the timeout).
    func readUntilClosed() -> String {
        while fill() {}
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Reads until `marker` has been seen (or the receive timeout, or `deadline`: a live feed's heartbeats would
    /// otherwise keep a reader waiting for ever).
    func read(until marker: String, deadline: Date = .distantFuture) -> String {
        while !String(decoding: buffer, as: UTF8.self).contains(marker) && Date() < deadline { if !fill() { break } }
        return String(decoding: buffer, as: UTF8.self)
    }

    var isClosedByPeer: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }

    /// One request on a fresh connection: method, path, headers and an optional body (JSON unless said).
    /// `receiveTimeout`: seconds without a byte before the answer counts as lost.
    static func call(port: UInt16, _ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil,
                     receiveTimeout: Int = 10) throws -> HTTPClientResponse {
        let client = try HTTPClient(port: port, receiveTimeout: receiveTimeout)
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        var hs = headers
        if let body {
            if hs["Content-Type"] == nil { hs["Content-Type"] = "application/json" }
            hs["Content-Length"] = String(body.utf8.count)
        }
        for (k, v) in hs.sorted(by: { $0.key < $1.key }) { text += "\(k): \(v)\r\n" }
        text += "\r\n" + (body ?? "")
        client.send(text)
        guard let r = client.response(head: method == "HEAD") else { throw POSIXError(.ECONNRESET) }
        return r
    }
}

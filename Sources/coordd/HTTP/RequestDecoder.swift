import Foundation
import Events

/// Limits the decoder enforces; each has a safe default.
struct HTTPLimits: Sendable {
    var maxHeaderBytes = 16 * 1024
    var maxHeaderCount = 100
    var maxBodyBytes = 1024 * 1024
}

/// Turns bytes into requests, incrementally: feed it whatever the socket delivered; it returns a request when
/// one is complete and keeps the rest (pipelining). Malformed input yields an error status, after which the
/// connection must be closed.
struct RequestDecoder {
    enum Outcome: Equatable {
        case request(Int)  // index into `completed`
        case needMore
        case failure(status: Int, reason: String)
    }

    let limits: HTTPLimits
    private(set) var buffer: [UInt8] = []
    private var head: HTTPRequest?
    private var bodyLength: Int?
    private var chunked = false
    /// Set when the request asked `Expect: 100-continue` and its body has not arrived yet.
    private(set) var wantsContinue = false
    private var continueSent = false

    init(limits: HTTPLimits) { self.limits = limits }

    mutating func feed(_ bytes: some Collection<UInt8>) { buffer.append(contentsOf: bytes) }

    mutating func markContinueSent() { continueSent = true; wantsContinue = false }

    /// True while a request has started arriving (for the header and body timeouts).
    var isMidRequest: Bool { head != nil || !buffer.isEmpty }

    /// True once a request's head has arrived and its body has not (the body timeout applies, not the head's).
    var awaitsBody: Bool { head != nil }

    /// Returns the next complete request, nil when more bytes are needed; throws a status on malformed input.
    mutating func next() throws(HTTPDecodeError) -> HTTPRequest? {
        if head == nil {
            guard let end = ByteSearch.find(ByteSearch.crlfcrlf, in: buffer) else {
                if buffer.count > limits.maxHeaderBytes { throw HTTPDecodeError(status: 431, reason: "request headers too large") }
                // A lone request line without CRLF yet is fine; bare LF-only heads are refused when complete.
                return nil
            }
            if end + 4 > limits.maxHeaderBytes { throw HTTPDecodeError(status: 431, reason: "request headers too large") }
            head = try parseHead(Array(buffer[0..<end]))
            buffer.removeFirst(end + 4)
            try decideBody()
            if let h = head, (h.header("expect")?.lowercased() == "100-continue") && !continueSent && (bodyLength ?? (chunked ? 1 : 0)) > 0 {
                wantsContinue = true
            }
        }
        guard var request = head else { return nil }
        if chunked {
            guard let body = try decodeChunked() else { return nil }
            request.body = body
        } else {
            let length = bodyLength ?? 0
            guard buffer.count >= length else { return nil }
            request.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        }
        head = nil
        bodyLength = nil
        chunked = false
        wantsContinue = false
        continueSent = false
        return request
    }

    /// Parses the request line and header lines (`bytes` ends before the blank line). Works on bytes:
    /// every check is on ASCII, and strings are made only for the parts kept.
    private func parseHead(_ bytes: [UInt8]) throws(HTTPDecodeError) -> HTTPRequest {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw HTTPDecodeError(status: 400, reason: "request head is not valid UTF-8")
        }
        var lines = Self.lines(bytes)
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { throw HTTPDecodeError(status: 400, reason: "malformed request line") }
        guard parts[0].allSatisfy({ $0 >= 0x41 && $0 <= 0x5a }) else { throw HTTPDecodeError(status: 400, reason: "malformed method") }
        let target = String(decoding: parts[1], as: UTF8.self)
        // No control bytes, space or (beyond ASCII) Unicode whitespace in the target.
        guard parts[1].first == 0x2f, !parts[1].contains(where: { $0 < 0x21 }),
              parts[1].allSatisfy({ $0 < 0x80 }) || !target.contains(where: \.isWhitespace) else {
            throw HTTPDecodeError(status: 400, reason: "malformed request target")
        }
        let version = parts[2]
        guard version.starts(with: Self.httpSlash) else { throw HTTPDecodeError(status: 400, reason: "malformed HTTP version") }
        guard version.elementsEqual(Self.http11) || version.elementsEqual(Self.http10) else {
            throw HTTPDecodeError(status: 505, reason: "HTTP version not supported")
        }
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(lines.count)
        var hasHost = false
        for line in lines {
            if headers.count >= limits.maxHeaderCount { throw HTTPDecodeError(status: 431, reason: "too many headers") }
            guard let colon = line.firstIndex(of: 0x3a) else { throw HTTPDecodeError(status: 400, reason: "malformed header line") }
            let name = line[..<colon]
            // Obsolete line folding and whitespace before the colon are refused (request smuggling vectors).
            guard !name.isEmpty, name.allSatisfy({ Self.isTokenByte($0) }) else {
                throw HTTPDecodeError(status: 400, reason: "malformed header name")
            }
            var value = line[line.index(after: colon)...]
            while let b = value.first, b == 0x20 || b == 0x09 { value = value.dropFirst() }
            while let b = value.last, b == 0x20 || b == 0x09 { value = value.dropLast() }
            if value.contains(where: { $0 < 0x20 && $0 != 0x09 }) { throw HTTPDecodeError(status: 400, reason: "malformed header value") }
            let lowered = String(decoding: name.lazy.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }, as: UTF8.self)
            if lowered == "host" {
                // Two Host headers are a smuggling vector (RFC 9112 §3.2): refused.
                if hasHost { throw HTTPDecodeError(status: 400, reason: "more than one Host header") }
                hasHost = true
            }
            headers.append((lowered, String(decoding: value, as: UTF8.self)))
        }
        let isHTTP11 = version.elementsEqual(Self.http11)
        if isHTTP11, !hasHost { throw HTTPDecodeError(status: 400, reason: "missing Host header") }
        return HTTPRequest(method: String(decoding: parts[0], as: UTF8.self), target: target,
                           version: isHTTP11 ? "HTTP/1.1" : "HTTP/1.0", headers: headers, body: [])
    }

    private static let httpSlash = Array("HTTP/".utf8)
    private static let http11 = Array("HTTP/1.1".utf8)
    private static let http10 = Array("HTTP/1.0".utf8)

    /// The head split at CRLF (a bare CR or LF stays inside its line, where the checks refuse it).
    private static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        while let crlf = ByteSearch.find(ByteSearch.crlf, in: bytes, from: start) {
            lines.append(bytes[start..<crlf])
            start = crlf + 2
        }
        lines.append(bytes[start...])
        return lines
    }

    private static func isHexDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b) }

    /// RFC 9110 `tchar`: letters, digits and ``!#$%&'*+-.^_`|~``.
    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2a, 0x2b, 0x2d, 0x2e, 0x5e, 0x5f, 0x60, 0x7c, 0x7e: return true
        default: return false
        }
    }

    private mutating func decideBody() throws(HTTPDecodeError) {
        guard let h = head else { return }
        let lengths = h.headers.filter { $0.name == "content-length" }.map(\.value)
        let encodings = h.headers.filter { $0.name == "transfer-encoding" }.map { $0.value.lowercased() }
        if !lengths.isEmpty && !encodings.isEmpty { throw HTTPDecodeError(status: 400, reason: "Content-Length together with Transfer-Encoding") }
        if !encodings.isEmpty {
            guard encodings == ["chunked"] else { throw HTTPDecodeError(status: 501, reason: "unsupported Transfer-Encoding") }
            chunked = true
            return
        }
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), !first.isEmpty, first.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), first.count <= 12,
                  let n = Int(first) else { throw HTTPDecodeError(status: 400, reason: "invalid Content-Length") }
            if n > limits.maxBodyBytes { throw HTTPDecodeError(status: 413, reason: "request body too large") }
            bodyLength = n
        }
    }

    /// Decodes a complete chunked body from the buffer, or returns nil when it has not all arrived.
    private mutating func decodeChunked() throws(HTTPDecodeError) -> [UInt8]? {
        var offset = 0
        var body: [UInt8] = []
        while true {
            guard let lineEnd = ByteSearch.find(ByteSearch.crlf, in: buffer, from: offset) else {
                if buffer.count - offset > 1024 { throw HTTPDecodeError(status: 400, reason: "malformed chunk size") }
                return nil
            }
            // chunk-size = 1*HEXDIG (RFC 9112 §7.1): no sign, no spaces; `Int(_:radix:)` alone would take "+3".
            let sizeBytes = buffer[offset..<lineEnd].prefix { $0 != 0x3b }
            guard !sizeBytes.isEmpty, sizeBytes.count <= 8, sizeBytes.allSatisfy(Self.isHexDigit),
                  let size = Int(String(decoding: sizeBytes, as: UTF8.self), radix: 16) else {
                throw HTTPDecodeError(status: 400, reason: "malformed chunk size")
            }
            if body.count + size > limits.maxBodyBytes { throw HTTPDecodeError(status: 413, reason: "request body too large") }
            let dataStart = lineEnd + 2
            if size == 0 {
                // Trailers are not supported beyond an empty line.
                guard buffer.count >= dataStart + 2 else { return nil }
                guard buffer[dataStart] == 13, buffer[dataStart + 1] == 10 else { throw HTTPDecodeError(status: 400, reason: "chunk trailers not supported") }
                buffer.removeFirst(dataStart + 2)
                return body
            }
            guard buffer.count >= dataStart + size + 2 else { return nil }
            guard buffer[dataStart + size] == 13, buffer[dataStart + size + 1] == 10 else { throw HTTPDecodeError(status: 400, reason: "malformed chunk") }
            body.append(contentsOf: buffer[dataStart..<(dataStart + size)])
            offset = dataStart + size + 2
        }
    }
}

struct HTTPDecodeError: Error, Equatable {
    let status: Int
    let reason: String
}

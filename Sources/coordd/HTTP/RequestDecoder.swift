import Foundation

/// An HTTP/1.1 request as the decoder produced it.
struct HTTPRequest: Sendable {
    var method: String
    /// The request target as sent: path and optional query.
    var target: String
    var version: String
    /// Header names lower-cased, in order.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    var path: String {
        if let q = target.firstIndex(of: "?") { return String(target[..<q]) }
        return target
    }

    /// Query parameters, percent-decoded; repeated keys keep the last value.
    var query: [String: String] {
        guard let q = target.firstIndex(of: "?") else { return [:] }
        var out: [String: String] = [:]
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.percentDecode(String(parts[0]))
            let value = parts.count > 1 ? Self.percentDecode(String(parts[1])) : ""
            if let key, let value { out[key] = value }
        }
        return out
    }

    static func percentDecode(_ s: String) -> String? {
        s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 closes unless `keep-alive`.
    var keepAlive: Bool {
        let connection = header("connection")?.lowercased() ?? ""
        if version == "HTTP/1.0" { return connection.contains("keep-alive") }
        return !connection.contains("close")
    }
}

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

    /// Returns the next complete request, nil when more bytes are needed; throws a status on malformed input.
    mutating func next() throws(HTTPDecodeError) -> HTTPRequest? {
        if head == nil {
            guard let end = Self.find(buffer, [13, 10, 13, 10]) else {
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

    private func parseHead(_ bytes: [UInt8]) throws(HTTPDecodeError) -> HTTPRequest {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw HTTPDecodeError(status: 400, reason: "request head is not valid UTF-8")
        }
        var lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { throw HTTPDecodeError(status: 400, reason: "malformed request line") }
        let method = String(parts[0]), target = String(parts[1]), version = String(parts[2])
        guard method.allSatisfy({ $0.isUppercase && $0.isASCII }) else { throw HTTPDecodeError(status: 400, reason: "malformed method") }
        guard target.hasPrefix("/"), !target.contains(where: { $0.isWhitespace || ($0.asciiValue ?? 128) < 0x21 }) else {
            throw HTTPDecodeError(status: 400, reason: "malformed request target")
        }
        guard version.hasPrefix("HTTP/") else { throw HTTPDecodeError(status: 400, reason: "malformed HTTP version") }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw HTTPDecodeError(status: 505, reason: "HTTP version not supported") }
        var headers: [(String, String)] = []
        for line in lines {
            if headers.count >= limits.maxHeaderCount { throw HTTPDecodeError(status: 431, reason: "too many headers") }
            guard let colon = line.firstIndex(of: ":") else { throw HTTPDecodeError(status: 400, reason: "malformed header line") }
            let name = line[..<colon]
            // Obsolete line folding and whitespace before the colon are refused (request smuggling vectors).
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_!#$%&'*+.^`|~".contains($0)) }) else {
                throw HTTPDecodeError(status: 400, reason: "malformed header name")
            }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            if value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) { throw HTTPDecodeError(status: 400, reason: "malformed header value") }
            headers.append((name.lowercased(), value))
        }
        if version == "HTTP/1.1", !headers.contains(where: { $0.0 == "host" }) { throw HTTPDecodeError(status: 400, reason: "missing Host header") }
        return HTTPRequest(method: method, target: target, version: version, headers: headers.map { (name: $0.0, value: $0.1) }, body: [])
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
            guard let lineEnd = Self.find(buffer, [13, 10], from: offset) else {
                if buffer.count - offset > 1024 { throw HTTPDecodeError(status: 400, reason: "malformed chunk size") }
                return nil
            }
            let sizeText = String(decoding: buffer[offset..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard !sizeText.isEmpty, sizeText.count <= 8, let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
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

    static func find(_ haystack: [UInt8], _ needle: [UInt8], from start: Int = 0) -> Int? {
        guard haystack.count >= needle.count + start else { return nil }
        var i = start
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == needle[0] {
                var match = true
                for j in 1..<needle.count where haystack[i + j] != needle[j] { match = false; break }
                if match { return i }
            }
            i += 1
        }
        return nil
    }
}

struct HTTPDecodeError: Error, Equatable {
    let status: Int
    let reason: String
}

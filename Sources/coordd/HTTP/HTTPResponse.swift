import Dispatch
import Events
import Foundation
import Synchronization

/// A response: a complete body, or a stream fed by a task (Server-Sent Events, a streamed export).
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    var stream: ResponseStream?

    init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func json(_ status: Int, _ text: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers, body: Array(text.utf8))
    }

    static func json(_ status: Int, bytes: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: bytes)
    }

    static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", contentType)], body: Array(text.utf8))
    }

    /// A streamed body: `produce` writes to the stream and finishes it.
    static func streamed(_ status: Int, headers: [(String, String)], framing: ResponseStream.Framing,
                         produce: @escaping @Sendable (ResponseStream) async -> Void) -> HTTPResponse {
        var r = HTTPResponse(status: status, headers: headers)
        let stream = ResponseStream(framing: framing)
        r.stream = stream
        Task { await produce(stream) }
        return r
    }

    func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    static let reasons: [Int: String] = [
        100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 304: "Not Modified", 308: "Permanent Redirect",
        302: "Found", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
        406: "Not Acceptable", 408: "Request Timeout", 409: "Conflict", 410: "Gone", 412: "Precondition Failed", 413: "Content Too Large",
        415: "Unsupported Media Type", 422: "Unprocessable Content", 428: "Precondition Required", 429: "Too Many Requests",
        431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
        505: "HTTP Version Not Supported",
    ]

    /// The head (and body) on the wire. Every answer carries `Date`; a 304 or 204 carries no `Content-Length`
    /// (RFC 9110 §8.6); a streamed one is framed by `Transfer-Encoding: chunked` or, for an event stream, by
    /// closing the connection.
    func serialized(head: Bool, keepAlive: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Status")\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Date: \(HTTPDate.now())\r\n"
        if let stream {
            if stream.framing == .chunked { text += "Transfer-Encoding: chunked\r\n" }
        } else if status != 304 && status != 204 && !(100..<200).contains(status) {
            text += "Content-Length: \(body.count)\r\n"
        }
        text += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        text += "\r\n"
        var bytes = Array(text.utf8)
        if !head && stream == nil && status != 304 { bytes.append(contentsOf: body) }
        return bytes
    }
}

/// RFC 9110 IMF-fixdate (`Tue, 01 Dec 2026 09:00:00 GMT`), formatted once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String { format(Date()) }

    static func format(_ date: Date) -> String {
        let second = Int(date.timeIntervalSince1970.rounded(.down))
        if let hit = cache.withLock({ $0.second == second ? $0.text : nil }) { return hit }
        let iso = Timestamp.format(Date(timeIntervalSince1970: Double(second)))  // 2026-12-01T09:00:00Z
        let parts = iso.split(whereSeparator: { "-T:Z".contains($0) }).map(String.init)
        let day = days[((second / 86_400) % 7 + 7) % 7]
        let text = "\(day), \(parts[2]) \(months[Int(parts[1])! - 1]) \(parts[0]) \(parts[3]):\(parts[4]):\(parts[5].prefix(2)) GMT"
        cache.withLock { $0 = (second, text) }
        return text
    }
}

/// Bytes a producer task pushes to a streaming response, bounded.
///
/// - `.eventStream` (Server-Sent Events): `send` never waits; when the client reads too slowly and more than
///   `limit` bytes wait, the stream fails and the server drops the connection, so memory never grows. A producer
///   with much to send at once (a feed catching up, or behind on a burst) waits for `room` between sends, which
///   fails the stream when the client takes nothing for its patience.
/// - `.chunked` (a streamed export): `write` waits while `limit` bytes are pending, so a large export flows at
///   the client's pace with bounded memory; the chunked framing lets the connection stay open after it.
final class ResponseStream: Sendable {
    enum Framing: Sendable, Equatable { case eventStream, chunked }

    private struct State {
        var chunks: [[UInt8]] = []
        var pending = 0
        /// Bytes that may wait unsent in the stream (`limit` until the server lowers it to its own bound).
        var limit: Int
        var finished = false
        var failed = false
        /// Producers waiting for room (`write`): resumed with nil to try again.
        var writers: [CheckedContinuation<Bool?, Never>] = []
        /// Times the server took the stream's bytes: a wait for `room` that sees none for too long fails the stream.
        var drains: UInt64 = 0
    }
    private let state: Mutex<State>
    /// The server loop to signal, and this stream's connection in it: a weak reference, not a stored closure (a
    /// closure kept in a generic Mutex is re-thunked on every read, which showed up as a third of the CPU with 500
    /// feeds).
    private let waker = Mutex<StreamWaker?>(nil)
    /// Set by the first send after the loop last took this stream's bytes: the loop is signalled once for a run of
    /// sends, and pumps only the streams that signalled (not every open stream on every turn).
    private let signalled = Atomic<Bool>(false)
    let framing: Framing

    init(limit: Int = 1 << 20, framing: Framing = .eventStream) {
        self.state = Mutex(State(limit: limit))
        self.framing = framing
    }

    /// The server sets this when it starts writing the stream to connection `fd` (of `generation`): sends then
    /// signal its loop. What was sent before is pumped at once. `limit`: at most this many bytes may wait in the
    /// stream from now on (an event stream's share of what the connection may hold unsent).
    func attach(_ server: HTTPServer, fd: Int32, generation: UInt64, limit: Int? = nil) {
        if let limit { state.withLock { $0.limit = min($0.limit, max(1, limit)) } }
        let waker = StreamWaker(server, fd: fd, generation: generation)
        self.waker.withLock { $0 = waker }
        signalled.store(true, ordering: .sequentiallyConsistent)
        server.streamReady(fd: fd, generation: generation)
    }

    /// Tells the loop there is something to write, unless it was told since it last took the bytes.
    /// `always`: also when signalled already (the stream failed: the loop, which may be holding its bytes back
    /// while the output is full, must drop the connection now).
    private func wake(always: Bool = false) {
        if signalled.exchange(true, ordering: .sequentiallyConsistent) && !always { return }
        guard let w = waker.withLock({ $0 }), let server = w.server else { return }
        server.streamReady(fd: w.fd, generation: w.generation)
    }

    /// The loop, before it drains: sends from now on signal again (a send between this and the drain is drained
    /// now and signals once more, which costs one empty pump).
    func clearSignal() { signalled.store(false, ordering: .sequentiallyConsistent) }

    /// Queues bytes without waiting; returns false when the stream is over (client gone, too slow, server stopping).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        let (ok, overran) = state.withLock { s -> (Bool, Bool) in
            if s.finished || s.failed { return (false, false) }
            if s.pending + bytes.count > s.limit { s.failed = true; return (false, true) }
            s.chunks.append(bytes)
            s.pending += bytes.count
            return (true, false)
        }
        wake(always: overran)
        return ok
    }

    /// Queues bytes, first waiting while the buffer is full (the client reads slowly); false when it is over.
    func write(_ bytes: [UInt8]) async -> Bool {
        guard !bytes.isEmpty else { return isOpen }
        let ok = await wait(patience: nil) { s in
            if s.pending > 0 && s.pending + bytes.count > s.limit { return false }
            s.chunks.append(bytes)
            s.pending += bytes.count
            return true
        }
        if ok { wake() }
        return ok
    }

    /// Waits while more than half of `limit` is pending (the client reads slower than the producer makes bytes),
    /// then says whether the stream is still open. A live feed that pulls (history, the window of recent events,
    /// a burst it fell behind on) paces itself with this, at the client's speed, instead of overrunning the limit.
    /// A client that takes nothing for `patience` seconds meanwhile is stalled or gone: the stream fails, and the
    /// server drops the connection.
    func room(patience: Double = 10) async -> Bool {
        await wait(patience: patience) { s in s.pending <= s.limit / 2 }
    }

    /// Waits until `ready` (called under the lock, which it may act on) holds, each time the server has taken the
    /// stream's bytes; false once the stream is over. With `patience`, a wait that sees no bytes taken for that
    /// many seconds fails the stream.
    private func wait(patience: Double?, until ready: @escaping (inout State) -> Bool) async -> Bool {
        while true {
            let outcome: Bool? = await withCheckedContinuation { (c: CheckedContinuation<Bool?, Never>) in
                // nil: resumed later (by a drain, a finish or a cancel), after `drains` drains.
                let result = state.withLock { s -> (done: Bool?, drains: UInt64) in
                    if s.finished || s.failed { return (false, 0) }
                    if ready(&s) { return (true, 0) }
                    s.writers.append(c)
                    return (nil, s.drains)
                }
                if let done = result.done { c.resume(returning: done); return }
                if let patience {
                    Task { [self] in
                        try? await Task.sleep(nanoseconds: UInt64(patience * 1e9))
                        failIfStalled(since: result.drains)
                    }
                }
            }
            if let outcome { return outcome }
        }
    }

    /// Fails the stream when the server has taken none of its bytes since `drains` while they wait.
    private func failIfStalled(since drains: UInt64) {
        let writers = state.withLock { s -> [CheckedContinuation<Bool?, Never>]? in
            guard s.drains == drains, !s.finished, !s.failed, s.pending > 0 else { return nil }
            s.failed = true
            defer { s.writers = [] }
            return s.writers
        }
        guard let writers else { return }
        writers.forEach { $0.resume(returning: nil) }
        wake(always: true)
    }

    /// More than half of what may wait is waiting: a producer that can, should pull at the client's pace (`room`).
    var isBackedUp: Bool { state.withLock { $0.pending > $0.limit / 2 } }

    func finish() {
        let writers = state.withLock { s -> [CheckedContinuation<Bool?, Never>] in
            s.finished = true
            defer { s.writers = [] }
            return s.writers
        }
        writers.forEach { $0.resume(returning: nil) }
        wake()
    }

    /// Called by the server when the connection ends: producers stop at their next send.
    func cancel() {
        let writers = state.withLock { s -> [CheckedContinuation<Bool?, Never>] in
            s.failed = true
            defer { s.writers = [] }
            return s.writers
        }
        writers.forEach { $0.resume(returning: nil) }
    }

    var isOpen: Bool { state.withLock { !$0.finished && !$0.failed } }

    /// The client fell too far behind (or went): the connection is to be dropped.
    var hasFailed: Bool { state.withLock { $0.failed } }

    /// What the server writes next, framed; wakes writers waiting for room.
    func drain() -> (bytes: [UInt8], finished: Bool, failed: Bool) {
        let (chunks, finished, failed, writers) = state.withLock { s in
            defer { s.chunks.removeAll(); s.pending = 0; s.writers = []; s.drains &+= 1 }
            return (s.chunks, s.finished, s.failed, s.writers)
        }
        writers.forEach { $0.resume(returning: nil) }
        var bytes: [UInt8] = []
        for chunk in chunks {
            if framing == .chunked {
                bytes.append(contentsOf: Array((String(chunk.count, radix: 16) + "\r\n").utf8))
                bytes.append(contentsOf: chunk)
                bytes.append(contentsOf: [13, 10])
            } else {
                bytes.append(contentsOf: chunk)
            }
        }
        if finished && framing == .chunked { bytes.append(contentsOf: Array("0\r\n\r\n".utf8)) }
        return (bytes, finished, failed)
    }
}

/// A weak reference to the server, and the connection a stream is written to, for streams.
final class StreamWaker: @unchecked Sendable {
    weak var server: HTTPServer?
    let fd: Int32
    let generation: UInt64
    init(_ server: HTTPServer, fd: Int32, generation: UInt64) {
        self.server = server
        self.fd = fd
        self.generation = generation
    }
}

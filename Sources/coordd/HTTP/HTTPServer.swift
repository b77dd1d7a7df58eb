import Dispatch
import Events
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A response: a complete body, or a stream (Server-Sent Events) fed by a task.
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

    static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", contentType)], body: Array(text.utf8))
    }
}

/// Bytes a producer task pushes to a streaming response. Bounded: when the client reads too slowly and more
/// than `limit` bytes wait, the stream fails and the server drops the connection, so memory never grows
/// without bound.
final class ResponseStream: Sendable {
    private struct State {
        var chunks: [[UInt8]] = []
        var pending = 0
        var finished = false
        var failed = false
    }
    private let state = Mutex(State())
    /// The server loop to wake on each send: a weak reference, not a stored closure (a closure kept in a
    /// generic Mutex is re-thunked on every read, which showed up as a third of the CPU with 500 feeds).
    private let waker = Mutex<WeakServer?>(nil)
    let limit: Int

    init(limit: Int = 1 << 20) {
        self.limit = limit
    }

    /// The server sets this when it starts writing the stream: each send then wakes its loop.
    fileprivate func attach(_ server: HTTPServer) {
        waker.withLock { $0 = WeakServer(server) }
        server.wake()
    }

    private func wake() { waker.withLock { $0 }?.server?.wake() }

    /// Queues bytes; returns false when the stream is over (client gone, too slow, or server stopping).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        let ok = state.withLock { s -> Bool in
            if s.finished || s.failed { return false }
            if s.pending + bytes.count > limit { s.failed = true; return false }
            s.chunks.append(bytes)
            s.pending += bytes.count
            return true
        }
        wake()
        return ok
    }

    func finish() {
        state.withLock { $0.finished = true }
        wake()
    }

    /// Called by the server when the connection ends: producers stop at their next send.
    func cancel() { state.withLock { $0.failed = true } }

    var isOpen: Bool { state.withLock { !$0.finished && !$0.failed } }

    fileprivate func drain() -> (bytes: [UInt8], finished: Bool, failed: Bool) {
        state.withLock { s in
            let bytes = s.chunks.flatMap { $0 }
            s.chunks.removeAll()
            s.pending = 0
            return (bytes, s.finished, s.failed)
        }
    }
}

/// A weak reference to the server, for streams.
final class WeakServer: @unchecked Sendable {
    weak var server: HTTPServer?
    init(_ server: HTTPServer) { self.server = server }
}

/// Server configuration, with safe defaults.
struct HTTPServerConfiguration: Sendable {
    var host = "127.0.0.1"
    var port: UInt16 = 8080
    var limits = HTTPLimits()
    var maxConnections = 2048
    var headerTimeout: Double = 10
    var bodyTimeout: Double = 30
    var idleTimeout: Double = 60
    var maxStreamBuffer = 1 << 20
}

/// An HTTP/1.1 server on non-blocking sockets and one `poll` loop thread; handlers run as tasks.
///
/// Keep-alive and pipelining (one request at a time per connection, in order), `Expect: 100-continue`,
/// chunked request bodies, HEAD, limits on head size, header count and body size (431/413), timeouts for
/// slow heads and bodies and idle connections, and a connection cap. Malformed requests get 400/431/505
/// and the connection is closed. Writes use MSG_NOSIGNAL, so a vanished client never raises SIGPIPE.
final class HTTPServer: @unchecked Sendable {
    // Everything below `configuration` is owned by the loop thread, except `completions`/`stopping` (Mutex)
    // and the wake pipe (written from any thread).
    typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse

    let configuration: HTTPServerConfiguration
    let handler: Handler
    let logger: Logger
    private var listener: Int32 = -1
    private let wakePending = Atomic<Bool>(false)
    private var wakeRead: Int32 = -1
    private var wakeWrite: Int32 = -1
    private(set) var boundPort: UInt16 = 0
    private var connections: [Int32: Connection] = [:]
    private var nextGeneration: UInt64 = 0
    /// The loop thread's receive buffer, reused for every read (allocating 64 KiB per read cost a malloc
    /// and a memset per request).
    private var receiveBuffer = [UInt8](repeating: 0, count: 65_536)
    /// When the loop last looked for timed-out connections: a scan of every connection, so it runs a few
    /// times a second rather than on every turn of the loop.
    private var lastExpiry = Date.distantPast
    private let completions = Mutex<[(Int32, UInt64, HTTPResponse, Bool)]>([])
    private let stopping = Mutex(false)
    private let openConnections = Atomic<Int>(0)
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    var connectionCount: Int { openConnections.load(ordering: .relaxed) }

    private final class Connection {
        let fd: Int32
        let generation: UInt64
        var decoder: RequestDecoder
        var output: [UInt8] = []
        var busy = false  // a handler runs for its current request
        var closeAfterWrite = false
        var stream: ResponseStream?
        var requestStarted: Date?
        var lastActivity = Date()
        var headMethod = false

        init(fd: Int32, generation: UInt64, limits: HTTPLimits) {
            self.fd = fd
            self.generation = generation
            self.decoder = RequestDecoder(limits: limits)
        }
    }

    init(configuration: HTTPServerConfiguration, logger: Logger, handler: @escaping Handler) {
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
    }

    /// Binds and starts the loop thread. Port 0 picks a free port (see `boundPort`).
    func start() throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EMFILE) }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = configuration.port.bigEndian
        guard inet_pton(AF_INET, configuration.host, &address.sin_addr) == 1 else {
            close(listener)
            throw HTTPServerError.invalidAddress(configuration.host)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 1024) == 0 else {
            let code = errno
            close(listener)
            throw HTTPServerError.bindFailed(configuration.host, configuration.port, String(cString: strerror(code)))
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        boundPort = UInt16(bigEndian: actual.sin_port)
        setNonBlocking(listener)
        guard let pipe = makeWakePipe() else { throw POSIXError(.EMFILE) }
        (wakeRead, wakeWrite) = (pipe.read, pipe.write)
        let thread = Thread { [self] in run() }
        thread.name = "coordd-http"
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Stops accepting, lets in-flight requests finish (up to `grace` seconds), ends streams, closes everything.
    func shutdown(grace: Double = 10) {
        stopping.withLock { $0 = true }
        wake()
        _ = finished.wait(timeout: .now() + grace + 1)
    }

    /// Wakes the loop; one byte in the pipe however many wakes come before the loop runs (a live feed can
    /// send thousands of events a second).
    fileprivate func wake() {
        if wakePending.exchange(true, ordering: .acquiringAndReleasing) { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    // MARK: The loop

    private func run() {
        var shutdownStarted: Date?
        while true {
            let isStopping = stopping.withLock { $0 }
            if isStopping, shutdownStarted == nil {
                shutdownStarted = Date()
                if listener >= 0 { close(listener); listener = -1 }
                for c in connections.values {
                    if let s = c.stream {
                        // Streams end with a final event so clients know to reconnect elsewhere.
                        s.send(Array("event: shutdown\ndata: {\"reason\":\"server stopping\"}\n\n".utf8))
                        s.finish()
                    }
                    if !c.busy && c.stream == nil { c.closeAfterWrite = true; if c.output.isEmpty { closeConnection(c) } }
                }
            }
            if let started = shutdownStarted, connections.isEmpty || Date().timeIntervalSince(started) > 10 {
                for c in Array(connections.values) { closeConnection(c) }
                break
            }
            var fds: [pollfd] = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if listener >= 0 && connections.count < configuration.maxConnections + 64 {
                fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            }
            let order = Array(connections.keys)
            for fd in order {
                let c = connections[fd]!
                var events = Int16(0)
                if !c.busy && c.stream == nil && !c.closeAfterWrite { events |= Int16(POLLIN) }
                if !c.output.isEmpty { events |= Int16(POLLOUT) }
                fds.append(pollfd(fd: fd, events: events, revents: 0))
            }
            let rc = poll(&fds, nfds_t(fds.count), 250)
            if rc < 0 && errno != EINTR { logger.error("poll failed", ["errno": String(errno)]); continue }
            for p in fds where p.revents != 0 {
                if p.fd == wakeRead {
                    // One read: wakes are coalesced to a byte or so, and anything left makes poll report it again.
                    _ = receiveBuffer.withUnsafeMutableBytes { read(wakeRead, $0.baseAddress, 256) }
                    // After draining (a byte written meanwhile is gone, so the flag must not stay set) and before
                    // the work below, which therefore sees everything signalled so far; later wakes write again.
                    wakePending.store(false, ordering: .sequentiallyConsistent)
                } else if p.fd == listener {
                    acceptAll()
                } else if let c = connections[p.fd] {
                    if p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 && !c.busy && c.stream == nil { readFrom(c) }
                    if connections[p.fd] != nil && p.revents & Int16(POLLOUT) != 0 { flush(c) }
                    if connections[p.fd] != nil && c.stream != nil && p.revents & Int16(POLLHUP | POLLERR) != 0 { closeConnection(c) }
                }
            }
            deliverCompletions()
            pumpStreams()
            expire()
        }
        close(wakeRead)
        close(wakeWrite)
        finished.signal()
    }

    private func acceptAll() {
        while listener >= 0 {
            let fd = accept(listener, nil, nil)
            if fd < 0 { return }
            setNonBlocking(fd)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            nextGeneration += 1
            let c = Connection(fd: fd, generation: nextGeneration, limits: configuration.limits)
            connections[fd] = c
            openConnections.store(connections.count, ordering: .relaxed)
            if connections.count > configuration.maxConnections {
                queue(c, Self.serialize(errorResponse(503, "too many connections"), head: false, keepAlive: false))
                c.closeAfterWrite = true
                flush(c)
            }
        }
    }

    private func readFrom(_ c: Connection) {
        while true {
            let n = receiveBuffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                let now = Date()
                if c.requestStarted == nil { c.requestStarted = now }
                c.lastActivity = now
                c.decoder.feed(receiveBuffer[0..<n])
                if n < receiveBuffer.count { break }
                continue
            }
            if n == 0 { closeConnection(c); return }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { break }
            closeConnection(c)
            return
        }
        processBuffered(c)
    }

    /// Decodes the next buffered request, if any, and starts its handler.
    private func processBuffered(_ c: Connection) {
        guard !c.busy, c.stream == nil, connections[c.fd] != nil else { return }
        let request: HTTPRequest?
        do {
            request = try c.decoder.next()
        } catch {
            queue(c, Self.serialize(errorResponse(error.status, error.reason), head: false, keepAlive: false))
            c.closeAfterWrite = true
            flush(c)
            return
        }
        guard let request else {
            if c.decoder.wantsContinue {
                queue(c, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                c.decoder.markContinueSent()
                flush(c)
            }
            if !c.decoder.isMidRequest { c.requestStarted = nil }
            return
        }
        c.busy = true
        c.headMethod = request.method == "HEAD"
        let keepAlive = request.keepAlive && !stopping.withLock({ $0 })
        let fd = c.fd, generation = c.generation
        let handler = self.handler
        Task {
            let response = await handler(request)
            self.completions.withLock { $0.append((fd, generation, response, keepAlive)) }
            self.wake()
        }
    }

    private func deliverCompletions() {
        let done = completions.withLock { list -> [(Int32, UInt64, HTTPResponse, Bool)] in
            defer { list.removeAll() }
            return list
        }
        for (fd, generation, response, keepAlive) in done {
            guard let c = connections[fd], c.generation == generation else {
                response.stream?.cancel()
                continue
            }
            c.busy = false
            c.requestStarted = nil
            c.lastActivity = Date()
            let stopping = self.stopping.withLock { $0 }
            if let stream = response.stream {
                c.stream = stream
                stream.attach(self)
                if stopping { stream.finish() }
                queue(c, Self.serialize(response, head: false, keepAlive: false, streaming: true))
            } else {
                let keep = keepAlive && !stopping
                queue(c, Self.serialize(response, head: c.headMethod, keepAlive: keep))
                if !keep { c.closeAfterWrite = true }
            }
            flush(c)
            if connections[fd] != nil, !c.closeAfterWrite, c.stream == nil { processBuffered(c) }
        }
    }

    private func pumpStreams() {
        for c in Array(connections.values) {
            guard let stream = c.stream else { continue }
            let (bytes, finished, failed) = stream.drain()
            if failed {
                // Client too slow (buffer limit) or gone: drop it rather than buffer without bound.
                closeConnection(c)
                continue
            }
            if !bytes.isEmpty {
                if c.output.count + bytes.count > configuration.maxStreamBuffer {
                    stream.cancel()
                    closeConnection(c)
                    continue
                }
                queue(c, bytes)
                flush(c)
            }
            if finished && connections[c.fd] != nil {
                c.closeAfterWrite = true
                c.stream = nil
                if c.output.isEmpty { closeConnection(c) }
            }
        }
    }

    private func expire() {
        let now = Date()
        guard now.timeIntervalSince(lastExpiry) >= 0.1 else { return }
        lastExpiry = now
        for c in Array(connections.values) where !c.busy && c.stream == nil {
            if let started = c.requestStarted {
                let limit = c.decoder.isMidRequest && c.decoder.buffer.count > 0 ? configuration.headerTimeout : configuration.bodyTimeout
                if now.timeIntervalSince(started) > max(limit, configuration.headerTimeout) {
                    // A slow client: answer 408 and close.
                    queue(c, Self.serialize(errorResponse(408, "request timeout"), head: false, keepAlive: false))
                    c.closeAfterWrite = true
                    c.requestStarted = nil
                    flush(c)
                }
            } else if c.output.isEmpty && now.timeIntervalSince(c.lastActivity) > configuration.idleTimeout {
                closeConnection(c)
            }
        }
    }

    private func queue(_ c: Connection, _ bytes: [UInt8]) {
        c.output.append(contentsOf: bytes)
    }

    private func flush(_ c: Connection) {
        while !c.output.isEmpty {
            let n = c.output.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { c.output.removeFirst(n); c.lastActivity = Date(); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            closeConnection(c)
            return
        }
        if c.closeAfterWrite && c.stream == nil { closeConnection(c) }
    }

    private func closeConnection(_ c: Connection) {
        guard connections[c.fd] != nil else { return }
        c.stream?.cancel()
        connections[c.fd] = nil
        Glibc.shutdown(c.fd, Int32(SHUT_RDWR))
        close(c.fd)
        openConnections.store(connections.count, ordering: .relaxed)
    }

    func errorResponse(_ status: Int, _ detail: String) -> HTTPResponse {
        Problem(status: status, detail: detail).response
    }

    static let reasons: [Int: String] = [
        100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
        403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 412: "Precondition Failed",
        413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content", 431: "Request Header Fields Too Large",
        500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
    ]

    static func serialize(_ r: HTTPResponse, head: Bool, keepAlive: Bool, streaming: Bool = false) -> [UInt8] {
        var text = "HTTP/1.1 \(r.status) \(reasons[r.status] ?? "Status")\r\n"
        for (name, value) in r.headers { text += "\(name): \(value)\r\n" }
        if !streaming { text += "Content-Length: \(r.body.count)\r\n" }
        text += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        text += "\r\n"
        var bytes = Array(text.utf8)
        if !head && !streaming { bytes.append(contentsOf: r.body) }
        return bytes
    }
}

enum HTTPServerError: Error, CustomStringConvertible {
    case invalidAddress(String)
    case bindFailed(String, UInt16, String)
    var description: String {
        switch self {
        case .invalidAddress(let a): return "invalid listen address \(a) (an IPv4 address such as 127.0.0.1)"
        case let .bindFailed(h, p, reason): return "cannot listen on \(h):\(p): \(reason)"
        }
    }
}

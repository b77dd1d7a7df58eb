// One file on purpose, past the usual size: the event loop owns every connection's state (buffers, streams,
// timers) and nothing else may touch it, so the loop and its connection state machine stay together, private.

import CLibPQ
import Dispatch
import Events
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Server configuration, with safe defaults.
struct HTTPServerConfiguration: Sendable {
    var host = "127.0.0.1"
    var port: UInt16 = 8080
    var limits = HTTPLimits()
    var maxConnections = 2048
    /// Seconds to receive a request's head, then its body; seconds a keep-alive connection may sit idle, or leave
    /// answers unread (a client gone without its reset reaching us).
    var headerTimeout: Double = 10
    var bodyTimeout: Double = 30
    var idleTimeout: Double = 60
    /// Bytes of answers a connection may have waiting to be sent: past it the server stops reading that
    /// connection's requests until the client reads (a client pipelining without reading cannot grow memory).
    var maxQueuedOutput = 1 << 20
    /// Event streams (live feeds) are written at most this often, in seconds: the first event after a quiet spell
    /// goes out at once, and what follows it within the interval shares one send per feed. Each feed's send is a
    /// system call and a loopback or network packet: 500 feeds at 50 events a second were 25,000 sends a second,
    /// a quarter of coordd's CPU, with GET answers queued behind them on the loop.
    var feedFlushInterval: Double = 0.05
    /// How a wire-level refusal (a malformed request, a timeout, too many connections) is answered; the API
    /// sets its problem+json, the wire layer knows none.
    var refusal: @Sendable (_ status: Int, _ reason: String) -> HTTPResponse = { status, reason in
        .text(status, reason + "\n")
    }
}

/// An HTTP/1.1 server on non-blocking sockets and one `poll` loop thread; handlers run as tasks. It knows the
/// wire only: routes, authentication and the error format are the handler's.
///
/// Keep-alive and pipelining (one request at a time per connection, answers in order), `Expect: 100-continue`,
/// chunked request bodies, HEAD, limits on head size, header count and body size (431/413), timeouts for slow
/// heads and bodies and idle connections, a connection cap (idle keep-alive connections are closed to make room
/// before a newcomer is refused), and a bound on each connection's unsent answers. Malformed requests get
/// 400/431/505 and the connection is closed. Writes use MSG_NOSIGNAL, so a vanished client never raises SIGPIPE.
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
    /// The loop waits in epoll: each connection's interest is set when it changes, not handed to the kernel again on
    /// every turn. `poll` over 1,000 idle and streaming connections cost 14% of coordd's CPU under 1,000 GETs a second
    /// (sock_poll, tcp_poll, fdget for every descriptor, every turn).
    private var epoll: Int32 = -1
    /// The listener's registered interest: none while the server is full or stopping.
    private var listenerWatched: UInt32 = 0
    /// True while the wake pipe is open.
    private let wakeLock = Mutex(true)
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
    /// Streams with something to write (`ResponseStream.send`), as their connections' fd and generation.
    private let readyStreams = Mutex<[(Int32, UInt64)]>([])
    /// Connections whose state the loop changed this turn: only their epoll interest is looked at again. Walking
    /// all of them on every turn (1,000 idle connections and feeds, ~1,000 turns a second) cost more than the work.
    private var touched: [Connection] = []
    /// Event streams that signalled since the last feed flush, and when the next one is due (uptime nanoseconds).
    private var deferredFeeds: [(Int32, UInt64)] = []
    private var nextFeedFlush: UInt64 = 0
    private let stopping = Mutex(false)
    private let openConnections = Atomic<Int>(0)
    /// Bytes of answers waiting to be sent, over all connections, as of the loop's last look (10 a second).
    private let queuedBytes = Atomic<Int>(0)
    /// Seconds in-flight requests get once a shutdown starts.
    private let grace = Mutex<Double>(10)
    /// Requests still running when the shutdown grace ran out.
    private let abandoned = Atomic<Int>(0)
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    var connectionCount: Int { openConnections.load(ordering: .relaxed) }
    var queuedOutputBytes: Int { queuedBytes.load(ordering: .relaxed) }

    private final class Connection {
        let fd: Int32
        let generation: UInt64
        var decoder: RequestDecoder
        var output: [UInt8] = []
        var busy = false  // a handler runs for its current request
        var closeAfterWrite = false
        var stream: ResponseStream?
        /// Whether the connection may carry another request once its stream ends (chunked framing).
        var keepAliveAfterStream = false
        var requestStarted: Date?
        var lastActivity = Date()
        var headMethod = false
        /// The events registered for it in epoll (nil: not registered yet).
        var watched: UInt32?

        init(fd: Int32, generation: UInt64, limits: HTTPLimits) {
            self.fd = fd
            self.generation = generation
            self.decoder = RequestDecoder(limits: limits)
        }

        /// Nothing in flight: no handler, no stream, no partial request, nothing unsent.
        var isIdle: Bool { !busy && stream == nil && !decoder.isMidRequest && output.isEmpty && !closeAfterWrite }
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
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0, watch(wakeRead, EPOLLIN.rawValue, add: true), watch(listener, EPOLLIN.rawValue, add: true) else {
            for fd in [epoll, wakeRead, wakeWrite, listener] where fd >= 0 { close(fd) }
            throw POSIXError(.EMFILE)
        }
        listenerWatched = EPOLLIN.rawValue
        let thread = Thread { [self] in run() }
        thread.name = "coordd-http"
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Stops accepting, lets in-flight requests finish (up to `grace` seconds), ends streams, closes everything.
    /// Returns false when requests were still running at the end of the grace (they were cut off).
    @discardableResult
    func shutdown(grace: Double = 10) -> Bool {
        self.grace.withLock { $0 = grace }
        stopping.withLock { $0 = true }
        wake()
        _ = finished.wait(timeout: .now() + grace + 1)
        return abandoned.load(ordering: .relaxed) == 0
    }

    /// Wakes the loop; one byte in the pipe however many wakes come before the loop runs (a live feed can
    /// send thousands of events a second).
    func wake() {
        if wakePending.exchange(true, ordering: .acquiringAndReleasing) { return }
        // Under the lock that closes the pipe: a stream finishing after the loop ended must not write into a closed
        // descriptor (SIGPIPE), or one the process has since reused for something else.
        wakeLock.withLock { open in
            guard open else { return }
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
    }

    /// A stream has bytes to write (or has finished): the loop pumps it on its next turn.
    func streamReady(fd: Int32, generation: UInt64) {
        readyStreams.withLock { $0.append((fd, generation)) }
        wake()
    }

    private func touch(_ c: Connection) { touched.append(c) }

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
                if listener >= 0 {
                    var event = epoll_event()
                    _ = epoll_ctl(epoll, EPOLL_CTL_DEL, listener, &event)
                    close(listener)
                    listener = -1
                }
                for c in connections.values {
                    if let s = c.stream {
                        // Event streams end with a final event so clients know to reconnect elsewhere.
                        if s.framing == .eventStream { s.send(Array("event: shutdown\ndata: {\"reason\":\"server stopping\"}\n\n".utf8)) }
                        s.finish()
                    }
                    if !c.busy && c.stream == nil { c.closeAfterWrite = true; if c.output.isEmpty { closeConnection(c) } }
                }
            }
            if let started = shutdownStarted, connections.isEmpty || Date().timeIntervalSince(started) > grace.withLock({ $0 }) {
                let cut = connections.values.filter { $0.busy || $0.stream != nil }.count
                if cut > 0 {
                    abandoned.store(cut, ordering: .relaxed)
                    logger.error("shutdown grace ran out with requests in flight", ["requests": String(cut)])
                }
                for c in Array(connections.values) { closeConnection(c) }
                break
            }
            if listener >= 0 {
                let wanted = connections.count < configuration.maxConnections + 64 ? EPOLLIN.rawValue : 0
                if wanted != listenerWatched, watch(listener, wanted, add: false) { listenerWatched = wanted }
            }
            // Interest changes only where the loop changed a connection; while stopping, everywhere.
            let changed = shutdownStarted == nil ? touched : Array(connections.values)
            touched.removeAll(keepingCapacity: true)
            for c in changed where connections[c.fd] === c {
                var wanted: UInt32 = 0
                // Read only what can be answered: not while a handler runs, a stream is open, or answers wait unsent.
                if !c.busy && c.stream == nil && !c.closeAfterWrite && c.output.count < configuration.maxQueuedOutput { wanted |= EPOLLIN.rawValue }
                if !c.output.isEmpty { wanted |= EPOLLOUT.rawValue }
                if wanted != c.watched {
                    if watch(c.fd, wanted, add: c.watched == nil) {
                        c.watched = wanted
                    } else {
                        logger.warning("epoll refused a connection: closed", ["errno": String(errno)])
                        closeConnection(c)
                    }
                }
            }
            var timeout: Int32 = 250
            if !deferredFeeds.isEmpty {
                let now = DispatchTime.now().uptimeNanoseconds
                timeout = nextFeedFlush > now ? Int32(min(250, (nextFeedFlush - now + 999_999) / 1_000_000)) : 0
            }
            let ready = epoll_wait(epoll, &readyEvents, Int32(readyEvents.count), timeout)
            if ready < 0 && errno != EINTR { logger.error("epoll_wait failed", ["errno": String(errno)]); continue }
            for i in 0..<max(0, Int(ready)) {
                let p = (fd: readyEvents[i].data.fd, events: readyEvents[i].events)
                if p.fd == wakeRead {
                    // One read: wakes are coalesced to a byte or so, and anything left makes epoll report it again.
                    _ = receiveBuffer.withUnsafeMutableBytes { read(wakeRead, $0.baseAddress, 256) }
                    // After draining (a byte written meanwhile is gone, so the flag must not stay set) and before
                    // the work below, which therefore sees everything signalled so far; later wakes write again.
                    wakePending.store(false, ordering: .sequentiallyConsistent)
                } else if p.fd == listener {
                    acceptAll()
                } else if let c = connections[p.fd] {
                    touch(c)
                    // Hung up or reset: no answer can reach the client any more. Closing now (a running handler's
                    // answer is dropped by its generation) also stops epoll reporting it again on every turn.
                    if p.events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { closeConnection(c); continue }
                    if p.events & EPOLLIN.rawValue != 0 && !c.busy && c.stream == nil { readFrom(c) }
                    if connections[p.fd] != nil && p.events & EPOLLOUT.rawValue != 0 {
                        flush(c)
                        // Room again: answer what was read while the output was backed up, or take more of a
                        // chunked stream that waited for it.
                        if connections[p.fd] != nil { c.stream == nil ? processBuffered(c) : pump(c) }
                    }
                }
            }
            deliverCompletions()
            pumpStreams(stopping: shutdownStarted != nil)
            expire()
        }
        wakeLock.withLock { open in
            open = false
            close(wakeRead)
            close(wakeWrite)
        }
        close(epoll)
        finished.signal()
    }

    /// Events epoll_wait reports per turn; more wait for the next turn (level-triggered: nothing is lost).
    private var readyEvents = [epoll_event](repeating: epoll_event(), count: 1024)

    /// Registers `fd` for `events` (add) or changes its registration. A descriptor's registration ends when it is
    /// closed. False when epoll refused (the caller closes the connection).
    private func watch(_ fd: Int32, _ events: UInt32, add: Bool) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        return epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event) == 0
    }

    private func acceptAll() {
        while listener >= 0 {
            let fd = accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
            if fd < 0 { return }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            nextGeneration += 1
            let c = Connection(fd: fd, generation: nextGeneration, limits: configuration.limits)
            touch(c)
            if connections.count >= configuration.maxConnections {
                // Full: the longest-idle keep-alive connection makes room (its client reconnects when it needs to);
                // only when every connection is working is the newcomer refused.
                if let idle = connections.values.filter(\.isIdle).min(by: { $0.lastActivity < $1.lastActivity }) {
                    closeConnection(idle)
                } else {
                    connections[fd] = c
                    queue(c, configuration.refusal(503, "too many connections").serialized(head: false, keepAlive: false))
                    c.closeAfterWrite = true
                    flush(c)
                    continue
                }
            }
            connections[fd] = c
            openConnections.store(connections.count, ordering: .relaxed)
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
                if n < receiveBuffer.count || c.decoder.buffer.count > configuration.limits.maxBodyBytes + configuration.limits.maxHeaderBytes { break }
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
        guard !c.busy, c.stream == nil, !c.closeAfterWrite, connections[c.fd] != nil,
              c.output.count < configuration.maxQueuedOutput else { return }
        let request: HTTPRequest?
        do {
            request = try c.decoder.next()
        } catch {
            queue(c, configuration.refusal(error.status, error.reason).serialized(head: false, keepAlive: false))
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
            touch(c)
            c.busy = false
            c.requestStarted = nil
            c.lastActivity = Date()
            let stopping = self.stopping.withLock { $0 }
            let keep = keepAlive && !stopping
            if let stream = response.stream {
                c.stream = stream
                c.keepAliveAfterStream = keep && stream.framing == .chunked && !c.headMethod
                // An event stream holds at most half of what the connection may have unsent, the output the other half
                // (`pump`): past that a feed pulls at the client's pace (`ResponseStream.room`).
                stream.attach(self, fd: fd, generation: generation,
                              limit: stream.framing == .eventStream ? configuration.maxQueuedOutput / 2 : nil)
                if stopping { stream.finish() }
                queue(c, response.serialized(head: false, keepAlive: c.keepAliveAfterStream))
                if c.headMethod { stream.cancel(); c.stream = nil; c.closeAfterWrite = true }
            } else {
                queue(c, response.serialized(head: c.headMethod, keepAlive: keep))
                if !keep { c.closeAfterWrite = true }
            }
            flush(c)
            if connections[fd] != nil, c.stream == nil { processBuffered(c) }
        }
    }

    /// Pumps the streams that signalled since the last turn: chunked ones at once, event streams when a feed flush
    /// is due (`feedFlushInterval`; always while stopping).
    private func pumpStreams(stopping: Bool) {
        let ready = readyStreams.withLock { list -> [(Int32, UInt64)] in
            defer { list.removeAll(keepingCapacity: true) }
            return list
        }
        let now = DispatchTime.now().uptimeNanoseconds
        let flushFeeds = stopping || now >= nextFeedFlush
        var flushed = false
        for (fd, generation) in ready {
            guard let c = connections[fd], c.generation == generation else { continue }
            let feed = c.stream?.framing == .eventStream
            if feed && !flushFeeds { deferredFeeds.append((fd, generation)); continue }
            flushed = flushed || feed
            pump(c)
        }
        if flushFeeds && !deferredFeeds.isEmpty {
            for (fd, generation) in deferredFeeds {
                if let c = connections[fd], c.generation == generation { pump(c) }
            }
            deferredFeeds.removeAll(keepingCapacity: true)
            flushed = true
        }
        if flushed { nextFeedFlush = now + UInt64(max(0, configuration.feedFlushInterval) * 1e9) }
    }

    /// Writes what the connection's stream has queued, and ends the stream when it has finished.
    private func pump(_ c: Connection) {
        guard let stream = c.stream else { return }
        touch(c)
        // A chunked producer waits for room (its connection is pumped again once the output drains: its signal
        // stays set meanwhile). An event stream's bytes stay in the stream while half the output limit waits: a
        // feed catching up waits for room there (`ResponseStream.room`), and a live send that overruns the
        // stream's own limit fails it, which drops the client.
        if stream.framing == .chunked && c.output.count >= configuration.maxQueuedOutput { return }
        if stream.framing == .eventStream && c.output.count >= configuration.maxQueuedOutput / 2 {
            if stream.hasFailed { closeConnection(c) }
            return
        }
        stream.clearSignal()
        let (bytes, finished, failed) = stream.drain()
        if failed {
            // Client too slow (buffer limit) or gone: drop it rather than buffer without bound.
            closeConnection(c)
            return
        }
        if !bytes.isEmpty {
            queue(c, bytes)
            flush(c)
        }
        if finished && connections[c.fd] != nil {
            c.stream = nil
            if c.keepAliveAfterStream {
                c.lastActivity = Date()
                processBuffered(c)
            } else {
                c.closeAfterWrite = true
                if c.output.isEmpty { closeConnection(c) }
            }
        }
    }

    private func expire() {
        let now = Date()
        guard now.timeIntervalSince(lastExpiry) >= 0.1 else { return }
        lastExpiry = now
        queuedBytes.store(connections.values.reduce(0) { $0 + $1.output.count }, ordering: .relaxed)
        for c in Array(connections.values) where !c.busy {
            if c.stream != nil {
                // A stream's client that has read nothing of its waiting output for that long: stalled, or gone
                // without its reset reaching us.
                if !c.output.isEmpty && now.timeIntervalSince(c.lastActivity) > configuration.idleTimeout { closeConnection(c) }
            } else if let started = c.requestStarted {
                let limit = c.decoder.awaitsBody ? configuration.bodyTimeout : configuration.headerTimeout
                if now.timeIntervalSince(started) > limit {
                    // A slow client: answer 408 and close.
                    touch(c)
                    queue(c, configuration.refusal(408, "request timeout").serialized(head: false, keepAlive: false))
                    c.closeAfterWrite = true
                    c.requestStarted = nil
                    flush(c)
                }
            } else if now.timeIntervalSince(c.lastActivity) > configuration.idleTimeout {
                // Idle, or answers waiting for a client that has read nothing for that long (gone without a reset
                // reaching us, or stalled): either way the connection and its queue go.
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
        // Out of the epoll set first: close alone leaves the registration while any other descriptor still refers to
        // the socket, and the next connection given this number would then be refused (EEXIST) or get its events.
        if c.watched != nil {
            var event = epoll_event()
            _ = epoll_ctl(epoll, EPOLL_CTL_DEL, c.fd, &event)
        }
        Glibc.shutdown(c.fd, Int32(SHUT_RDWR))
        close(c.fd)
        openConnections.store(connections.count, ordering: .relaxed)
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

import Coordination
import Events
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A blocking keep-alive HTTP/1.1 client for benchmarks.
final class BenchClient: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16) throws {
        fd = try Loopback.connect(port: port, receiveTimeout: 30, noDelay: true)
    }

    deinit { close(fd) }

    /// Sends one request and reads the response; returns the status (0 on a broken connection).
    func request(_ method: String, _ path: String, token: String?, body: String?) -> Int {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: bench\r\n"
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        guard sendAll(text), let (status, length) = readHead() else { return 0 }
        while buffer.count < length {
            guard receive() else { return 0 }
        }
        buffer.removeFirst(length)
        return status
    }

    /// The body of a GET that answers 200, as text (nil otherwise).
    func text(_ path: String, token: String? = nil) -> String? {
        var text = "GET \(path) HTTP/1.1\r\nHost: bench\r\n"
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        guard sendAll(text + "\r\n"), let (status, length) = readHead() else { return nil }
        while buffer.count < length {
            guard receive() else { return nil }
        }
        defer { buffer.removeFirst(length) }
        return status == 200 ? String(decoding: buffer[0..<length], as: UTF8.self) : nil
    }

    /// A counter's value in a Prometheus text answer (`name value` on a line of its own), or nil.
    static func metric(_ name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    /// Sends a GET for a live feed and reads its response head; returns the status.
    func openStream(_ path: String, token: String) -> Int {
        guard sendAll("GET \(path) HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n\r\n"),
              let (status, _) = readHead() else { return 0 }
        return status
    }

    /// Reads a response head and removes it from the buffer: the status and the Content-Length (0 without).
    /// On bytes: the client shares the machine with what it measures, so it keeps its own CPU small.
    private func readHead() -> (status: Int, length: Int)? {
        while true {
            if let end = ByteSearch.find(ByteSearch.crlfcrlf, in: buffer) {
                let status = end >= 12 ? buffer[9..<12].reduce(0) { $0 * 10 + Int($1) - 48 } : 0
                var length = 0
                // Every line of the head ends in a CRLF at or before `end`.
                var lineStart = 0
                while lineStart < end, let lineEnd = ByteSearch.find(ByteSearch.crlf, in: buffer, from: lineStart) {
                    let line = buffer[lineStart..<lineEnd]
                    if line.count > 15, line.prefix(15).elementsEqual("content-length:".utf8, by: { $0 | 0x20 == $1 }) {
                        length = line.dropFirst(15).reduce(0) { $1 >= 48 && $1 <= 57 ? $0 * 10 + Int($1) - 48 : $0 }
                    }
                    lineStart = lineEnd + 2
                }
                buffer.removeFirst(end + 4)
                return (status, length)
            }
            guard receive() else { return nil }
        }
    }

    /// The `id:` values of the next `count` events of a live feed (fewer when `timeout` seconds pass first).
    func readEventIDs(count: Int, timeout: Double) -> [Int64] {
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Date().addingTimeInterval(timeout)
        var ids: [Int64] = []
        var scanned = 0
        while ids.count < count {
            while let newline = buffer[scanned...].firstIndex(of: 10) {
                let line = buffer[scanned..<newline]
                if line.starts(with: Array("id: ".utf8)), let id = Int64(String(decoding: line.dropFirst(4), as: UTF8.self)) { ids.append(id) }
                scanned = newline + 1
            }
            if ids.count >= count || Date() > deadline { break }
            if !receive() && Date() > deadline { break }
        }
        return ids
    }

    private func sendAll(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// Appends what the socket has to the buffer; false on end of stream, error or timeout.
    private func receive() -> Bool {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }
    private var chunk = [UInt8](repeating: 0, count: 65_536)
}

/// A child coordd process.
final class Daemon: @unchecked Sendable {
    let pid: pid_t

    init(exe: String, args: [String], env: [String: String]) throws {
        pid = try Subprocess.spawn([exe] + args, environment: env)
    }

    func waitReady(port: UInt16) throws {
        for _ in 0..<300 {
            if let c = try? BenchClient(port: port), c.request("GET", "/readyz", token: nil, body: nil) == 200 { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw EmbeddedPostgres.LauncherError.commandFailed("coordd", -1, "did not become ready")
    }

    var rssKiB: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}

/// CPU time spent so far, from `/proc` (user + system, in seconds): this process, a child, and the PostgreSQL
/// processes that work for coord: the cluster's own background processes and the backends whose application name
/// starts with `coord` (coordd's, coordctl's), as `pg_stat_activity` lists them. Other clients of a shared
/// cluster are left out, and a process that exits between two samples drops out instead of making a difference
/// negative.
enum ProcessCPU {
    static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func seconds(pid: pid_t) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // Fields after the command name: state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / ticks
    }

    struct Sample {
        let own: Double
        let postgres: [pid_t: Double]
        let child: Double

        /// PostgreSQL CPU seconds since `earlier`, over the processes alive now (new ones from zero).
        func postgres(since earlier: Sample) -> Double {
            postgres.reduce(0) { $0 + max(0, $1.value - (earlier.postgres[$1.key] ?? 0)) }
        }
    }

    /// (this process, coord's PostgreSQL processes, `child`) now.
    static func sample(child: pid_t? = nil, pool: PostgresPool) async -> Sample {
        let pids: [Int] = (try? await pool.withConnection { c in
            let r = try c.query("SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend' OR application_name LIKE 'coord%'")
            return try (0..<r.count).map { try r.decode($0, 0) as Int }
        }) ?? []
        var postgres: [pid_t: Double] = [:]
        for pid in pids { postgres[pid_t(pid)] = seconds(pid: pid_t(pid)) }
        return Sample(own: seconds(pid: getpid()), postgres: postgres, child: child.map { seconds(pid: $0) } ?? 0)
    }
}

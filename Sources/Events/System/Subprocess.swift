import CLibPQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program and collects its combined output, with `posix_spawn` and `waitpid`.
///
/// Foundation's `Process.waitUntilExit` can hang when called from a Swift concurrency thread on
/// Linux (it spins a run loop that never learns of the exit), so the launcher uses this instead.
public enum Subprocess {
    public struct Output: Sendable {
        public let status: Int32
        public let output: String
    }

    /// Runs `argv[0]` (an absolute path) with `argv`, standard input from /dev/null, in this process's
    /// environment or in `environment` when given.
    public static func run(_ argv: [String], environment: [String: String]? = nil) throws -> Output {
        var fds: [Int32] = [0, 0]
        // Close-on-exec: a child spawned by another thread at the same moment (a PostgreSQL server,
        // which lives on) must not inherit our write end, or we would wait for EOF forever.
        guard pipe2(&fds, O_CLOEXEC) == 0 else { throw POSIXError(.EMFILE) }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addclose(&actions, readEnd)
        posix_spawn_file_actions_addclose(&actions, writeEnd)

        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        let cenv: [UnsafeMutablePointer<CChar>?]? = environment.map { env in env.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { cenv?.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = cenv.map { posix_spawn(&pid, argv[0], &actions, nil, cargs, $0) } ?? posix_spawn(&pid, argv[0], &actions, nil, cargs, environ)
        close(writeEnd)
        guard rc == 0 else {
            close(readEnd)
            throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .ENOENT)
        }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress!, $0.count) }
            if n > 0 { data.append(contentsOf: buffer[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(readEnd)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { break }
        }
        // WIFEXITED / WEXITSTATUS, spelled out: the C macros are not imported.
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: code, output: String(decoding: data, as: UTF8.self))
    }
}

extension Subprocess {
    /// Starts `argv[0]` (an absolute path) with `environment` and returns its pid without waiting for it
    /// (a daemon the caller will signal and reap).
    public static func spawn(_ argv: [String], environment: [String: String]) throws -> pid_t {
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cenv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cargs.forEach { free($0) }; cenv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], nil, nil, cargs, cenv)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .ENOENT) }
        return pid
    }
}

/// A pipe whose ends are close-on-exec and non-blocking: a thread's wake-up channel for a poll loop.
public func makeWakePipe() -> (read: Int32, write: Int32)? {
    var fds: [Int32] = [0, 0]
    guard pipe2(&fds, O_CLOEXEC | O_NONBLOCK) == 0 else { return nil }
    return (fds[0], fds[1])
}

/// Raises the open-file limit to its hard maximum: a server holding thousands of connections needs it.
@discardableResult
public func raiseFileDescriptorLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}

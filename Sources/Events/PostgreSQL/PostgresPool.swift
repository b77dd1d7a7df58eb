import Dispatch
import Foundation
import Synchronization

/// Runs a blocking closure on one of `BlockingThreads`, never on Swift's cooperative pool, and awaits it.
///
/// libpq blocks its caller until the server answers; done on the cooperative pool (which has one
/// thread per core) that would stall every other task of the process.
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        BlockingThreads.shared.run {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// A bounded pool of `PostgresConnection`s.
///
/// A borrower gets a connection to itself for the duration of a closure that runs off the cooperative
/// pool. Connections that broke (server restart, network loss) are discarded on return, together with
/// the idle ones, which share their fate; the next borrower gets a fresh connection. Waiting for a
/// connection times out with a `.pool` error instead of queueing forever.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    /// How long a borrower waits for a free connection.
    public let acquireTimeout: Double

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<PostgresConnection?, Error>
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID = 0
        var closed = false
        var borrowed = 0
    }

    private let state = Mutex(State())

    public init(configuration: PostgresConfiguration, acquireTimeout: Double = 10) {
        self.configuration = configuration
        self.acquireTimeout = acquireTimeout
    }

    /// Numbers for metrics: connections open, lent out, and borrowers waiting.
    public var usage: (open: Int, inUse: Int, waiting: Int, size: Int) {
        state.withLock { ($0.open, $0.borrowed, $0.waiters.count, configuration.poolSize) }
    }

    /// Lends a connection to `body`, which runs on a dispatch thread.
    ///
    /// With `retryOnConnectionFailure`, a body that failed because its connection broke is run once
    /// more on a fresh connection: only for bodies that are safe to repeat (reads, idempotent writes).
    @discardableResult
    public func withConnection<T: Sendable>(
        retryOnConnectionFailure: Bool = false,
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let connection = try await acquire()
            do {
                let value = try await runBlocking { try body(connection) }
                release(connection)
                return value
            } catch let error as PostgresError where error.isConnectionFailure && retryOnConnectionFailure && attempt == 1 {
                release(connection)
                continue
            } catch {
                release(connection)
                throw error
            }
        }
    }

    /// Runs `body` in a transaction on a pooled connection.
    @discardableResult
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withConnection { connection in try connection.transaction(body) }
    }

    /// Closes idle connections and refuses new borrowers; lent connections close when returned.
    public func close() {
        let (idle, waiters) = state.withLock { s -> ([PostgresConnection], [Waiter]) in
            s.closed = true
            let idle = s.idle
            let waiters = s.waiters
            s.idle = []
            s.waiters = []
            s.open -= idle.count
            return (idle, waiters)
        }
        idle.forEach { $0.close() }
        waiters.forEach { $0.continuation.resume(throwing: PostgresError(kind: .pool, serverMessage: "pool closed")) }
    }

    private enum Next { case use(PostgresConnection), create, wait }

    private func acquire() async throws -> PostgresConnection {
        while true {
            let next: Next = try state.withLock { s in
                if s.closed { throw PostgresError(kind: .pool, serverMessage: "pool closed") }
                if let c = s.idle.popLast() { s.borrowed += 1; return .use(c) }
                if s.open < configuration.poolSize { s.open += 1; s.borrowed += 1; return .create }
                return .wait
            }
            switch next {
            case .use(let connection):
                return connection
            case .create:
                let configuration = self.configuration
                do {
                    return try await runBlocking { try PostgresConnection(configuration: configuration) }
                } catch {
                    let waiter = state.withLock { s -> Waiter? in
                        s.open -= 1
                        s.borrowed -= 1
                        return s.waiters.isEmpty ? nil : s.waiters.removeFirst()
                    }
                    // The slot is free again: let a waiter try to connect for itself.
                    waiter?.continuation.resume(returning: nil)
                    throw error
                }
            case .wait:
                if let handed = try await waitForConnection() { return handed }
                // nil: a slot was freed; loop to take it.
            }
        }
    }

    private func waitForConnection() async throws -> PostgresConnection? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection?, Error>) in
            let id = state.withLock { s -> Int in
                s.nextWaiterID += 1
                s.waiters.append(Waiter(id: s.nextWaiterID, continuation: continuation))
                return s.nextWaiterID
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + acquireTimeout) { [self] in
                let expired = state.withLock { s -> Waiter? in
                    guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return s.waiters.remove(at: i)
                }
                expired?.continuation.resume(throwing: PostgresError(kind: .pool, serverMessage: "timed out waiting for a database connection"))
            }
        }
    }

    private func release(_ connection: PostgresConnection) {
        if connection.isUsable && !connection.inTransaction {
            enum Outcome { case handed(Waiter), parked, closeIt }
            let outcome = state.withLock { s -> Outcome in
                if s.closed { s.open -= 1; s.borrowed -= 1; return .closeIt }
                if !s.waiters.isEmpty { return .handed(s.waiters.removeFirst()) }  // stays borrowed, by the waiter
                s.borrowed -= 1
                s.idle.append(connection)
                return .parked
            }
            switch outcome {
            case .handed(let waiter): waiter.continuation.resume(returning: connection)
            case .closeIt: connection.close()
            case .parked: break
            }
            return
        }
        // A broken connection: the server restarted or the network failed, so the idle ones are
        // most likely broken too. Drop them all; borrowers reconnect on demand.
        connection.close()
        let (stale, waiter) = state.withLock { s -> ([PostgresConnection], Waiter?) in
            let stale = s.idle
            s.idle = []
            s.open -= 1 + stale.count
            s.borrowed -= 1
            return (stale, s.waiters.isEmpty ? nil : s.waiters.removeFirst())
        }
        stale.forEach { $0.close() }
        waiter?.continuation.resume(returning: nil)
    }
}

import Coordination
import Events
import Foundation
import Synchronization
import Testing
import TestSupport
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// Faults under load, as an operator meets them: a coordd killed outright and PostgreSQL stopped without a
/// checkpoint, while 32 clients keep writing, each retrying every command under its Idempotency-Key until it
/// gets an answer. `make fault` runs the long version (FAULT_SECONDS, more rounds).
@Suite("Faults under load")
struct FaultTests {
    @Test("SIGKILL of a coordd and an immediate PostgreSQL stop under 32 writers: nothing acknowledged lost, retries get the original answers, chain sound, feeds resume, one leader per projection")
    func killsUnderLoad() async throws {
        let seconds = Double(ProcessInfo.processInfo.environment["FAULT_SECONDS"] ?? "") ?? 8
        let scratch = try await ScratchCluster.started("fault")
        defer { scratch.remove() }
        let pool = try scratch.makePool(poolSize: 4)
        defer { pool.close() }
        _ = try await Migrator.migrate(pool, Coordination.migrationSets)
        let store = EventStore(pool: pool)
        let initial = WriterLoad.initialStock
        let (token, viewer) = try await WriterLoad.seed(store)

        let url = scratch.connectionString
        let daemons = Mutex<[ChildDaemon]>([try ChildDaemon(schema: "public", port: Loopback.freePort(), databaseURL: url),
                                            try ChildDaemon(schema: "public", port: Loopback.freePort(), databaseURL: url)])
        defer { daemons.withLock { $0.forEach { $0.kill(SIGKILL) } } }
        try await runBlocking { for d in daemons.withLock({ $0 }) { try d.waitReady() } }

        let load = WriterLoad()
        load.start(token: token) { daemons.withLock { $0.map(\.port) } }
        let started = Date()
        func wait(_ s: Double) async throws { try await Task.sleep(nanoseconds: UInt64(s * 1e9)) }

        var round = 0
        repeat {
            round += 1
            try await wait(seconds / 8)
            // A coordd killed outright, then started again on a new port.
            let killed = daemons.withLock { $0[0] }
            killed.kill(SIGKILL)
            let fresh = try ChildDaemon(schema: "public", port: Loopback.freePort(), databaseURL: url)
            try await runBlocking { try fresh.waitReady() }
            daemons.withLock { $0[0] = fresh }
            try await wait(seconds / 8)
            // PostgreSQL stopped without a checkpoint (as a crash leaves it), then started again.
            try await scratch.stop(mode: "immediate")
            try await wait(seconds / 16)
            try await scratch.start()
            try await wait(seconds / 8)
        } while Date().timeIntervalSince(started) < seconds
        try await load.finish()

        let (dispatched, created) = (load.dispatched, load.created)
        #expect(dispatched > 20 && created > 20, "work was done through the faults: \(dispatched) dispatches, \(created) tasks")
        #expect(load.retries > 0, "the faults were felt")
        load.expectOnlyRetryableRefusals()
        print("fault run: \(round) rounds in \(Int(seconds)) s, \(dispatched) dispatches and \(created) tasks acknowledged, \(load.retries) retries")
        let events = try await load.expectLogHoldsExactlyTheAcknowledged(store)

        let survivor = daemons.withLock { $0[1] }
        try await load.expectRetriesGetTheOriginalAnswers(port: survivor.port, token: token)

        // The read models agree with the log: the balance is the initial stock less one kit per acknowledged dispatch.
        #expect(try await WriterLoad.projectionsSettle(port: survivor.port, token: viewer), "projections caught up")
        let stock = try await runBlocking { try survivor.call("GET", "/v1/stock?warehouse=MNL&item=KIT", token: viewer) }
        let onHand = ((stock.json["items"] as? [[String: Any]])?.first?["on_hand"] as? Int) ?? -1
        #expect(Int64(onHand) == initial - Int64(dispatched), "on hand \(onHand) after \(dispatched) acknowledged dispatches")

        // One leader per projection between the two daemons.
        func leaders(_ d: ChildDaemon) async throws -> [Bool] {
            try await runBlocking {
                let r = try d.call("GET", "/v1/projections", token: viewer)
                return (r.json["items"] as? [[String: Any]] ?? []).map { $0["leader_here"] as? Bool ?? false }
            }
        }
        let pair = daemons.withLock { $0 }
        var one = false
        for _ in 0..<100 where !one {
            let (a, b) = (try await leaders(pair[0]), try await leaders(pair[1]))
            one = a.count == Coordination.projections.count && b.count == Coordination.projections.count && zip(a, b).allSatisfy { $0 != $1 }
            if !one { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        #expect(one, "exactly one leader per projection")

        // A feed resumed from the start reads every event once, in order, through the restarts.
        let head = events.count
        #expect(try await WriterLoad.feedPositions(port: survivor.port, token: viewer, head: head) == Array(1...head),
                "the feed delivers every event once, in order")
    }
}

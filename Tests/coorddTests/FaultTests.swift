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
    /// One client's record: the first definitive answer to each key.
    final class Ledger: @unchecked Sendable {
        let lock = NSLock()
        var answers: [String: (body: String, status: Int, text: String)] = [:]
        var retries = 0
        func record(_ key: String, _ body: String, _ status: Int, _ text: String) {
            lock.lock(); answers[key] = (body, status, text); lock.unlock()
        }
        func retried() { lock.lock(); retries += 1; lock.unlock() }
    }

    @Test("SIGKILL of a coordd and an immediate PostgreSQL stop under 32 writers: nothing acknowledged lost, retries get the original answers, chain sound, feeds resume, one leader per projection")
    func killsUnderLoad() async throws {
        let seconds = Double(ProcessInfo.processInfo.environment["FAULT_SECONDS"] ?? "") ?? 8
        let scratch = try await ScratchCluster.started("fault")
        defer { scratch.remove() }
        let pool = try scratch.makePool(poolSize: 4)
        defer { pool.close() }
        _ = try await Migrator.migrate(pool, Coordination.migrationSets)
        let store = EventStore(pool: pool)
        let service = CoordinationService(store: store)
        let ctx = CommandContext(actor: "setup", source: "test")
        _ = try await service.execute(RegisterWarehouse(code: "MNL", name: "Manila", country: "PHL", kind: "global_hub"), ctx)
        _ = try await service.execute(RegisterItem(code: "KIT", name: "Hygiene kit", unit: "kit"), ctx)
        let initial: Int64 = 1_000_000
        _ = try await service.execute(ReceiveStock(warehouse: "MNL", item: "KIT", quantity: initial, source: "procurement"), ctx)
        _ = try await service.execute(DeclareResponse(id: "R1", name: "Flood", country: "PHL", hazard: "flood", severity: "orange", declaredAt: Date()), ctx)
        let token = try await TokenStore(pool: pool).create(subject: "officer", role: .operator).token
        let viewer = try await TokenStore(pool: pool).create(subject: "viewer", role: .admin).token

        let url = scratch.connectionString
        let daemons = Mutex<[ChildDaemon]>([try ChildDaemon(schema: "public", port: Loopback.freePort(), databaseURL: url),
                                            try ChildDaemon(schema: "public", port: Loopback.freePort(), databaseURL: url)])
        defer { daemons.withLock { $0.forEach { $0.kill(SIGKILL) } } }
        try await runBlocking { for d in daemons.withLock({ $0 }) { try d.waitReady() } }

        // 32 writers: half dispatch one kit (the answer carries the balance, so a retry that re-ran would differ),
        // half create a task. Each command is retried under its key, at either daemon, until it is answered.
        let ledger = Ledger()
        let stop = Atomic<Bool>(false)
        let finished = Atomic<Int>(0)
        let writers = (0..<32).map { w in
            Thread {
                defer { finished.add(1, ordering: .relaxed) }
                var i = 0
                while !stop.load(ordering: .relaxed) {
                    i += 1
                    let key = "w\(w)-\(i)"
                    let (path, body) = w % 2 == 0
                        ? ("/v1/stock/dispatches", #"{"warehouse":"MNL","item":"KIT","quantity":1,"destination":"Tacloban","response":"R1"}"#)
                        : ("/v1/tasks", #"{"id":"T-\#(key)","response":"R1","cluster":"WSH","title":"Water point \#(i)","priority":"low"}"#)
                    var attempt = 0
                    while true {
                        let targets = daemons.withLock { $0 }
                        let d = targets[(w + attempt) % targets.count]
                        attempt += 1
                        if let r = try? HTTPClient.call(port: d.port, "POST", path, headers: ["Authorization": "Bearer \(token)", "Idempotency-Key": key], body: body),
                           [200, 201, 409, 422].contains(r.status) {
                            ledger.record(key, path + " " + body, r.status, r.body)
                            break
                        }
                        ledger.retried()
                        usleep(50_000)
                    }
                }
            }
        }
        writers.forEach { $0.start() }
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
        stop.store(true, ordering: .relaxed)
        try await runBlocking { while finished.load(ordering: .relaxed) < 32 { usleep(20_000) } }

        let answers = ledger.lock.withLock { ledger.answers }
        let dispatched = answers.filter { $0.value.body.hasPrefix("/v1/stock") && $0.value.status == 200 }.count
        let created = answers.filter { $0.value.body.hasPrefix("/v1/tasks") && $0.value.status == 201 }.count
        #expect(dispatched > 20 && created > 20, "work was done through the faults: \(dispatched) dispatches, \(created) tasks")
        #expect(ledger.retries > 0, "the faults were felt")
        #expect(answers.values.filter { $0.body.hasPrefix("/v1/stock") }.allSatisfy { $0.text.contains(#""warehouse":"MNL","#) && $0.text.contains(#""item":"KIT""#) },
                "a dispatch's answer names its card")
        print("fault run: \(round) rounds in \(Int(seconds)) s, \(dispatched) dispatches and \(created) tasks acknowledged, \(ledger.retries) retries")

        // Nothing acknowledged is lost and nothing ran twice: the log holds exactly one event per answered key.
        let events = try await store.read(after: 0, limit: 1_000_000)
        let keys = events.compactMap(\.decodedMetadata.idempotencyKey)
        #expect(keys.count == Set(keys).count, "no key was executed twice")
        #expect(Set(keys) == Set(answers.filter { [200, 201].contains($0.value.status) }.keys), "every acknowledged command is in the log, and only those")
        #expect(try await store.verify().isSound, "the chain is sound")
        let positions = events.map(\.position)
        #expect(positions == Array(1...Int64(events.count)), "positions are gapless")

        let survivor = daemons.withLock { $0[1] }
        // Retries get the original answers, refusals included.
        let sample = Array(answers.prefix(200))
        for (key, original) in sample {
            let parts = original.body.split(separator: " ", maxSplits: 1)
            let again = try await runBlocking {
                try HTTPClient.call(port: survivor.port, "POST", String(parts[0]), headers: ["Authorization": "Bearer \(token)", "Idempotency-Key": key], body: String(parts[1]))
            }
            if again.status != original.status || again.body != original.text { print("MISMATCH \(key): \(again.status) \(again.body) against \(original.status) \(original.text)") }
            #expect(again.status == original.status && again.body == original.text, "\(key): \(again.status) \(again.body) against \(original.status) \(original.text)")
        }

        // The read models agree with the log: the balance is the initial stock less one kit per acknowledged dispatch.
        var settled = false
        for _ in 0..<200 where !settled {
            let r = try await runBlocking { try survivor.call("GET", "/v1/projections", token: viewer) }
            let items = r.json["items"] as? [[String: Any]] ?? []
            settled = items.count == Coordination.projections.count && items.allSatisfy { ($0["lag_events"] as? Int) == 0 && ($0["status"] as? String) == "running" }
            if !settled { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        #expect(settled, "projections caught up")
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
        let feed = try await runBlocking { () -> String in
            let c = try RawClient(port: survivor.port, receiveTimeout: 10)
            c.send("GET /v1/events/live HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(viewer)\r\nLast-Event-ID: 0\r\n\r\n")
            return c.read(until: "id: \(head)\n")
        }
        let ids = feed.components(separatedBy: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
        #expect(ids == Array(1...head), "the feed delivers every event once, in order")
    }
}

import Coordination
import Events
import Foundation
import Synchronization
import Testing
import TestSupport

/// Every row of every read-model table, as text, in a stable order.
func dumpReadModels(_ pool: PostgresPool, _ definitions: [any ProjectionDefinition] = Coordination.projections) async throws -> [String: [String]] {
    let tables = definitions.flatMap(\.tables)
    return try await pool.withConnection { c in
        var out: [String: [String]] = [:]
        for table in tables {
            // Table names are the projections' constants.
            out[table] = try c.query(SQL(unsafe: "SELECT t::text FROM \(table) t ORDER BY 1")).rows.map { try $0.decode(0) }
        }
        return out
    }
}

func waitCaughtUp(_ runner: ProjectionRunner, timeout: Double = 30,
                  and condition: ([ProjectionStatus]) -> Bool = { _ in true }) async throws -> [ProjectionStatus] {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        let status = try await runner.status()
        if status.allSatisfy({ $0.lagEvents == 0 && $0.status == "running" }), condition(status) { return status }
        if Date() > deadline { Issue.record("not caught up: \(status)"); return status }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
}

/// A long, seeded, random sequence of commands over the seeded reference data; refusals are part of it.
func randomCommands(_ s: CoordinationService, count: Int, seed: UInt64) async throws -> Int {
    var state = seed
    func next(_ n: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(n))
    }
    let warehouses = ["MNL", "TAC"]
    let items = ["HSHETARPW406", "HCONJCANPF10"]
    var accepted = 0
    var transfers: [String] = []
    var tasks: [String] = []
    var people: [String] = []
    for i in 0..<count {
        let w = warehouses[next(2)], item = items[next(2)]
        let at = Date(timeIntervalSinceNow: -Double(next(86_400 * 20)))
        let command: any DomainCommand
        switch next(12) {
        case 0, 1: command = ReceiveStock(warehouse: w, item: item, quantity: Int64(1 + next(200)), source: "donation", occurredAt: at)
        case 2, 3: command = DispatchStock(warehouse: w, item: item, quantity: Int64(1 + next(150)), destination: "site \(next(9))",
                                           response: "PHL-2026-TC-01", occurredAt: at)
        case 4:
            let id = "TR-\(i)"
            transfers.append(id)
            command = TransferStock(id: id, from: w, to: w == "MNL" ? "TAC" : "MNL", item: item, quantity: Int64(1 + next(80)), occurredAt: at)
        case 5:
            guard let t = transfers.randomElement() else { continue }
            command = next(3) == 0 ? CancelTransfer(id: t, occurredAt: at) : ReceiveTransfer(id: t, quantity: Int64(next(40)), occurredAt: at)
        case 6: command = SetLevels(code: w, item: item, minimum: Int64(next(100)), target: Int64(100 + next(200)))
        case 7:
            let id = "T-\(i)"
            tasks.append(id)
            command = CreateTask(id: id, response: "PHL-2026-TC-01", cluster: Clusters.all[next(Clusters.all.count)], title: "task \(i)",
                                 priority: TaskVocabulary.priorities[next(4)], due: Day(Date()).adding(days: next(20) - 10), occurredAt: at)
        case 8:
            guard let t = tasks.randomElement() else { continue }
            let commands: [any DomainCommand] = [StartTask(id: t), BlockTask(id: t, reason: "access"), CompleteTask(id: t), VerifyTask(id: t),
                                                 CancelTask(id: t), ReopenTask(id: t), CommentTask(id: t, text: "note")]
            command = commands[next(commands.count)]
        case 9:
            let id = "P-\(i)"
            people.append(id)
            command = RegisterPerson(id: id, name: "Person \(i)", profiles: ["WASH", "IM"])
        case 10:
            guard let p = people.randomElement() else { continue }
            let start = Day(Date()).adding(days: next(60) - 30)
            command = RequestDeployment(id: "D-\(i)", person: p, response: "PHL-2026-TC-01", profile: "WASH", start: start,
                                        end: start.adding(days: 5 + next(30)))
        default:
            let d = "D-\(next(max(1, i)))"
            let commands: [any DomainCommand] = [ConfirmDeployment(id: d), ArriveDeployment(id: d), CompleteDeployment(id: d), CancelDeployment(id: d)]
            command = commands[next(commands.count)]
        }
        do {
            _ = try await s.execute(command, ctx)
            accepted += 1
        } catch is DomainError {}
    }
    return accepted
}

@Suite("Projections")
struct ProjectionTests {
    /// Two runners of every projection on one database, as two coordd processes have (each its own pool).
    func twoRunners(_ s: CoordinationService) -> (ProjectionRunner, ProjectionRunner) {
        let other = EventStore(pool: PostgresPool(configuration: s.store.pool.configuration))
        return (ProjectionRunner(store: s.store, definitions: Coordination.projections, leaderPoll: 0.2),
                ProjectionRunner(store: other, definitions: Coordination.projections, leaderPoll: 0.2))
    }

    @Test("live read models equal a rebuild from the log after a long random command sequence")
    func liveEqualsRebuild() async throws {
        let s = try await makeService()
        try await seed(s)
        let runner = ProjectionRunner(store: s.store, definitions: Coordination.projections, batchSize: 50, leaderPoll: 0.2)
        runner.start()
        let accepted = try await randomCommands(s, count: 600, seed: 42)
        #expect(accepted > 300)
        _ = try await waitCaughtUp(runner)
        await runner.stop()
        let live = try await dumpReadModels(s.store.pool)
        #expect(live["rm_stock_ledger"]!.count > 100)
        #expect(live["rm_tasks"]!.count > 10)
        for def in Coordination.projections { _ = try await ProjectionRunner.rebuild(def, store: s.store) }
        let rebuilt = try await dumpReadModels(s.store.pool)
        for table in live.keys.sorted() {
            #expect(live[table] == rebuilt[table], "\(table)")
        }
        // The joint rebuild (one read and decode for all, as `projections rebuild --all` runs it), over many small
        // batches, builds the same tables.
        let head = try await s.store.headPosition()
        let checkpoints = try await ProjectionRunner.rebuild(Coordination.projections, store: s.store, decode: EventCodec.decode, batchSize: 37)
        #expect(checkpoints == Coordination.projections.map { _ in head })
        let joint = try await dumpReadModels(s.store.pool)
        for table in live.keys.sorted() {
            #expect(live[table] == joint[table], "\(table), jointly rebuilt")
        }
        // Spilling the stock card into the shadow table during the fold, a few rows at a time (many COPYs, some
        // queued behind others), changes nothing either, alone or jointly.
        _ = try await ProjectionRunner.rebuild(StockProjection(), store: s.store, batchSize: 11, spillRows: 3)
        #expect(try await dumpReadModels(s.store.pool) == live)
        _ = try await ProjectionRunner.rebuild(Coordination.projections, store: s.store, decode: EventCodec.decode, batchSize: 13, spillRows: 5)
        #expect(try await dumpReadModels(s.store.pool) == live)
        // And the figures are the domain's: the read model's on-hand matches the stream's own fold.
        let onHandRow = try await s.store.pool.withConnection { c in
            try c.query("SELECT on_hand FROM rm_stock WHERE key = 'MNL:HSHETARPW406'").decode(0, 0, as: Int64.self)
        }
        #expect(onHandRow == (try await onHand(s, "MNL", "HSHETARPW406")))
    }

    @Test("a transfer_out row of an older log learns its response from the transfer created after it, live and rebuilt, across batch and spill boundaries")
    func olderTransferLearnsResponse() async throws {
        let s = try await makeService()
        try await seed(s)
        let runner = ProjectionRunner(store: s.store, definitions: [StockProjection()], batchSize: 1, leaderPoll: 0.2)
        runner.start()
        _ = try await waitCaughtUp(runner)
        // As a log from before `stock.transfer_sent` carried the response: only `transfer.created` names it.
        let sent = #"{"transfer": "TR-OLD", "warehouse": "MNL", "item": "HSHETARPW406", "quantity": 2, "to": "TAC"}"#
        _ = try await s.store.append([EventData(type: StockTransferSent.eventType, data: JSONText(sent))], to: Streams.stock("MNL", "HSHETARPW406"))
        let created = #"{"transfer": "TR-OLD", "from": "MNL", "to": "TAC", "item": "HSHETARPW406", "quantity": 2, "response": "PHL-2026-TC-01"}"#
        _ = try await s.store.append([EventData(type: TransferCreated.eventType, data: JSONText(created))], to: Streams.transfer("TR-OLD"))
        _ = try await waitCaughtUp(runner)
        await runner.stop()
        func response() async throws -> String {
            try await s.store.pool.withConnection { c in
                try c.query("SELECT coalesce(response, 'none') FROM rm_stock_ledger WHERE reference = 'TR-OLD' AND movement = 'transfer_out'")
                    .decode(0, 0, as: String.self)
            }
        }
        #expect(try await response() == "PHL-2026-TC-01", "live, one event per batch")
        _ = try await ProjectionRunner.rebuild(StockProjection(), store: s.store, batchSize: 1, spillRows: 1)
        #expect(try await response() == "PHL-2026-TC-01", "rebuilt, spilling after every event")
        _ = try await ProjectionRunner.rebuild(Coordination.projections, store: s.store, decode: EventCodec.decode, batchSize: 1, spillRows: 1)
        #expect(try await response() == "PHL-2026-TC-01", "jointly rebuilt, spilling after every event")
    }

    @Test("a joint rebuild that meets an event a projection cannot apply names it and its position, and swaps nothing")
    func jointRebuildFailure() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(CreateTask(id: "T-1", response: "PHL-2026-TC-01", cluster: "WSH", title: "ok", priority: "low"), ctx)
        let definitions: [any ProjectionDefinition] = Coordination.projections
        for def in definitions { _ = try await ProjectionRunner.rebuild(def, store: s.store) }
        let before = try await dumpReadModels(s.store.pool)
        // A receipt whose payload the stock fold cannot decode (it lacks every field), between two good events:
        // found while the prefetch decodes, reported when the fold reaches it.
        let bad = try await s.store.append([EventData(type: StockReceived.eventType, data: JSONText("{}"))], to: "stock-MNL-BAD")
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 5, source: "donation"), ctx)
        await #expect { try await ProjectionRunner.rebuild(definitions, store: s.store, decode: EventCodec.decode, batchSize: 3) } throws: { error in
            guard let failure = error as? ProjectionRunner.RebuildFailure else { return false }
            return ["stock", "alerts"].contains(failure.projection) && failure.position == bad.position
        }
        // A projection that applies raw events (no shared decode) fails the same way, at its own event.
        let broken = BrokenTasks()
        broken.failOnTitle.withLock { $0 = "poison" }
        let poison = try await s.execute(CreateTask(id: "T-2", response: "PHL-2026-TC-01", cluster: "WSH", title: "poison", priority: "low"), ctx)
        await #expect { try await ProjectionRunner.rebuild([broken, SurgeProjection()], store: s.store, decode: EventCodec.decode) } throws: { error in
            (error as? ProjectionRunner.RebuildFailure).map { $0.projection == "tasks" && $0.position == poison.position } ?? false
        }
        // Nothing was swapped in: the tables are as the last good rebuild left them.
        #expect(try await dumpReadModels(s.store.pool) == before)
    }

    @Test("under a stream of writes a projection commits at most once per pace; an event after a quiet spell is applied at once")
    func pacedUnderLoad() async throws {
        let s = try await makeService()
        try await seed(s)
        let counting = CrashingStock(crashOnFlush: .max)
        let pace = 2.0
        let runner = ProjectionRunner(store: s.store, definitions: [counting], leaderPoll: 0.2, pace: pace)
        runner.start()
        defer { Task { await runner.stop() } }
        _ = try await waitCaughtUp(runner)
        // A stream: receipts one after another, each its own group commit.
        let before = counting.flushes.withLock { $0 }
        let start = Date()
        for i in 0..<60 {
            _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: Int64(i + 1), source: "donation"), ctx)
        }
        let streamed = Date().timeIntervalSince(start)
        _ = try await waitCaughtUp(runner)
        let commits = counting.flushes.withLock { $0 } - before
        // Unpaced, the worker committed after nearly every receipt (~60 here).
        #expect(commits <= Int(streamed / pace) + 3, "\(commits) commits for 60 receipts in \(streamed) s")
        // Quiet for longer than the pace: the next receipt is read when its notification comes, not a pace later.
        try await Task.sleep(nanoseconds: UInt64((pace + 0.3) * 1e9))
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 7, source: "donation"), ctx)
        let head = try await s.store.headPosition()
        let asked = Date()
        var reached = false
        while Date().timeIntervalSince(asked) < pace {
            if try await ProjectionRunner.status(pool: s.store.pool, definitions: [counting])[0].checkpoint >= head { reached = true; break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(reached, "applied within \(Date().timeIntervalSince(asked)) s, the pace being \(pace) s")
        #expect(Date().timeIntervalSince(asked) < pace / 2)
    }

    @Test("a crash between flush and commit loses nothing and applies nothing twice")
    func crashMidBatch() async throws {
        let s = try await makeService()
        try await seed(s)
        // A stock projection that dies inside its third flush (the first is the initial build's), after
        // writing some rows, and in every flush after: the transactions roll back, as in a crash.
        let crashing = CrashingStock(crashOnFlush: 3)
        let first = ProjectionRunner(store: s.store, definitions: [crashing], batchSize: 20, leaderPoll: 0.2, retryInterval: 60)
        first.start()
        // The initial build first: were it to start after the commands, it would cover them all and no later
        // flush would be left to crash in.
        _ = try await waitCaughtUp(first)
        _ = try await randomCommands(s, count: 200, seed: 7)
        let deadline = Date().addingTimeInterval(20)
        while crashing.flushes.withLock({ $0 }) < 4, Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
        await first.stop()
        let checkpoint = try await ProjectionRunner.status(pool: s.store.pool, definitions: [crashing])[0].checkpoint
        #expect(checkpoint > 0)
        #expect(checkpoint < (try await s.store.headPosition()), "stopped part-way")
        // A new process picks up from the checkpoint.
        let second = ProjectionRunner(store: s.store, definitions: [StockProjection()], batchSize: 20, leaderPoll: 0.2)
        second.start()
        _ = try await randomCommands(s, count: 50, seed: 8)
        _ = try await waitCaughtUp(second)
        await second.stop()
        let live = try await dumpReadModels(s.store.pool, [StockProjection()])
        _ = try await ProjectionRunner.rebuild(StockProjection(), store: s.store)
        let rebuilt = try await dumpReadModels(s.store.pool, [StockProjection()])
        #expect(live == rebuilt)
        // Every event is in the ledger exactly once: positions are unique (primary key) and complete.
        let ledger = live["rm_stock_ledger"]!.count
        let movements = try await s.store.read(after: 0, limit: 100_000, filter: EventFilter(types: [
            StockReceived.eventType, StockDispatched.eventType, StockAdjusted.eventType, StockCounted.eventType,
            StockTransferSent.eventType, StockTransferReceived.eventType, StockTransferReturned.eventType])).count
        #expect(ledger == movements)
    }

    @Test("two runners on one database: one leads each projection, the other takes over when it stops")
    func failover() async throws {
        let s = try await makeService()
        try await seed(s)
        let (a, b) = twoRunners(s)
        a.start()
        // The first runner takes every lead before the second starts (under a loaded suite that takes a moment).
        for _ in 0..<200 where !(try await a.status()).allSatisfy(\.leader) { try await Task.sleep(nanoseconds: 50_000_000) }
        b.start()
        _ = try await s.execute(CreateTask(id: "T-1", response: "PHL-2026-TC-01", cluster: "WSH", title: "Latrines", priority: "high"), ctx)
        let statusA = try await waitCaughtUp(a)
        let statusB = try await b.status()
        #expect(statusA.allSatisfy { $0.leader })
        #expect(statusB.allSatisfy { !$0.leader })
        await a.stop()
        _ = try await s.execute(StartTask(id: "T-1"), ctx)
        let started = Date()
        var led = false
        while Date().timeIntervalSince(started) < 10 {
            let st = try await b.status()
            if st.allSatisfy({ $0.leader && $0.lagEvents == 0 }) { led = true; break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(led, "the second runner took over and caught up")
        #expect(Date().timeIntervalSince(started) < 5)
        let status = try await s.store.pool.withConnection { c in try c.query("SELECT status FROM rm_tasks WHERE id = 'T-1'").decode(0, 0, as: String.self) }
        #expect(status == "in_progress")
        await b.stop()
    }

    @Test("a leader whose session died (a PostgreSQL restart, a terminated backend) gives up leading within seconds, for good: one leader per projection")
    func leadershipLost() async throws {
        let s = try await makeService()
        try await seed(s)
        let (a, b) = twoRunners(s)
        a.start()
        _ = try await waitCaughtUp(a) { $0.allSatisfy(\.leader) }
        b.start()
        // The sessions holding a's locks end, as they do when PostgreSQL restarts; a's pool and the rest survive.
        let c = try TestDatabase.connection(like: s.store.pool)
        defer { c.close() }
        // Only this schema's leader sessions: the lock keys are the schema's (tryLead), so tests running beside this
        // one in other schemas keep theirs. A bigint advisory lock shows as classid (high half) and objid (low half).
        let names = Coordination.projections.map(\.name)
        let killed = try c.query("""
            SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND a.application_name LIKE 'coord-projection-%'
              AND ((l.classid::bigint << 32) | l.objid::bigint) IN (
                SELECT hashtextextended(current_schema() || '.coord.projection.' || n, 0)
                FROM unnest(\(names)::text[]) AS n)
            """)
        #expect(killed.count == Coordination.projections.count, "the old leader's sessions, one per projection")
        // The old leader learns within a probe (and a wait for events) that its lock is gone; after that, exactly one of
        // the two leads each projection, and it stays so. (The work itself is fenced by the checkpoints' compare-and-set.)
        var lastOverlap = Date()
        var handedOver = false
        let started = Date()
        // Watched for 10 s: the overlap must end (within a probe, 0.2 s here, plus what a loaded machine adds) and
        // not come back.
        while Date().timeIntervalSince(started) < 10 {
            let (la, lb) = (try await a.status(), try await b.status())
            if zip(la, lb).contains(where: { $0.leader && $1.leader }) { lastOverlap = Date() }
            handedOver = zip(la, lb).allSatisfy { $0.leader != $1.leader } && lb.contains(where: \.leader)
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let (fa, fb) = (try await a.status(), try await b.status())
        #expect(handedOver, "each projection is led by one of the two, the new leader among them: a \(fa.map { "\($0.name)=\($0.leader)" }), b \(fb.map { "\($0.name)=\($0.leader)" })")
        #expect(lastOverlap.timeIntervalSince(started) < 6, "the old leader gave up within seconds, for good")
        // Whoever leads keeps the read models current.
        _ = try await s.execute(CreateTask(id: "T-9", response: "PHL-2026-TC-01", cluster: "WSH", title: "after", priority: "low"), ctx)
        var seen = false
        for _ in 0..<200 where !seen {
            seen = try await s.store.pool.withConnection { c in try c.query("SELECT count(*) FROM rm_tasks WHERE id = 'T-9'").decode(0, 0, as: Int.self) } == 1
            try await Task.sleep(nanoseconds: 25_000_000)
        }
        #expect(seen)
        await a.stop()
        await b.stop()
    }

    @Test("a checkpoint past the log's head (a restore from an older copy) fails the projection, with what to do, instead of idling as caught up")
    func checkpointPastHead() async throws {
        let s = try await makeService()
        try await seed(s)
        let runner = ProjectionRunner(store: s.store, definitions: Coordination.projections, leaderPoll: 0.2, retryInterval: 0.5)
        runner.start()
        _ = try await waitCaughtUp(runner)
        let c = try TestDatabase.connection(like: s.store.pool)
        defer { c.close() }
        try c.query("UPDATE projection_checkpoints SET position = position + 100 WHERE name = 'tasks'")
        _ = try await s.execute(CreateTask(id: "T-1", response: "PHL-2026-TC-01", cluster: "WSH", title: "t", priority: "low"), ctx)
        var failed: ProjectionStatus?
        for _ in 0..<200 where failed == nil {
            failed = try await runner.status().first { $0.name == "tasks" && $0.status == "failed" }
            try await Task.sleep(nanoseconds: 25_000_000)
        }
        #expect(failed?.error?.contains("past the log's head") == true, "\(String(describing: failed))")
        let requested = Date()
        try await runner.requestRebuild("tasks")
        // Caught up by the rebuild itself (a retry of the failed worker can read as running with no lag for a moment,
        // its checkpoint still past the head).
        _ = try await waitCaughtUp(runner) { $0.first { $0.name == "tasks" }?.rebuiltAt.map { $0 > requested } == true }
        let problems = try await s.store.verifyState()
        #expect(problems.isEmpty, "\(problems)")
        await runner.stop()
    }

    @Test("a rebuild while writes continue: readers never see an empty or half-built table")
    func rebuildUnderLoad() async throws {
        let s = try await makeService()
        try await seed(s)
        for i in 0..<150 {
            _ = try await s.execute(CreateTask(id: "T-\(i)", response: "PHL-2026-TC-01", cluster: "SHL", title: "t", priority: "low"), ctx)
        }
        let runner = ProjectionRunner(store: s.store, definitions: Coordination.projections, batchSize: 25, leaderPoll: 0.2)
        runner.start()
        _ = try await waitCaughtUp(runner)
        let stop = Mutex(false)
        let observed = Mutex<[Int]>([])
        let reader = Task {
            var last = 0
            while !stop.withLock({ $0 }) {
                let n = try await s.store.pool.withConnection { c in try c.query("SELECT count(*) FROM rm_tasks").decode(0, 0, as: Int.self) }
                observed.withLock { $0.append(n) }
                #expect(n >= last, "the task board never shrinks")
                last = n
            }
        }
        let writer = Task {
            for i in 150..<250 {
                _ = try await s.execute(CreateTask(id: "T-\(i)", response: "PHL-2026-TC-01", cluster: "SHL", title: "t", priority: "low"), ctx)
            }
        }
        try await runner.requestRebuild("tasks")
        try await writer.value
        let rebuiltAt = Date().addingTimeInterval(15)
        var rebuilt = false
        while Date() < rebuiltAt {
            let status = try await runner.status().first { $0.name == "tasks" }!
            if status.rebuiltAt != nil, status.lagEvents == 0, status.status == "running" { rebuilt = true; break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        stop.withLock { $0 = true }
        try await reader.value
        await runner.stop()
        #expect(rebuilt)
        let counts = observed.withLock { $0 }
        #expect(counts.count > 10)
        #expect(counts.allSatisfy { $0 >= 150 })
        // (The reader's last count may have started before the last apply committed: read once more, now.)
        let final = try await s.store.pool.withConnection { c in try c.query("SELECT count(*) FROM rm_tasks").decode(0, 0, as: Int.self) }
        #expect(final == 250, "caught up: every task is on the rebuilt board")
    }

    @Test("a failing event stops only its projection, is reported, and the projection resumes after a fix")
    func failingHandler() async throws {
        let s = try await makeService()
        try await seed(s)
        let broken = BrokenTasks()
        let definitions: [any ProjectionDefinition] = [broken, StockProjection()]
        let runner = ProjectionRunner(store: s.store, definitions: definitions, leaderPoll: 0.2, retryInterval: 0.5)
        runner.start()
        _ = try await s.execute(CreateTask(id: "T-1", response: "PHL-2026-TC-01", cluster: "WSH", title: "ok", priority: "low"), ctx)
        _ = try await waitCaughtUp(runner)
        broken.failOnTitle.withLock { $0 = "poison" }
        let poison = try await s.execute(CreateTask(id: "T-2", response: "PHL-2026-TC-01", cluster: "WSH", title: "poison", priority: "low"), ctx)
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 5, source: "donation"), ctx)
        var failed: ProjectionStatus?
        for _ in 0..<100 {
            failed = try await runner.status().first { $0.name == "tasks" && $0.status == "failed" }
            if failed != nil { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(failed?.errorPosition == poison.position)
        #expect(failed?.error?.contains("poison") == true)
        // The stock projection kept going (it may report the failure before stock has read that far: poll).
        var stock = try await runner.status().first { $0.name == "stock" }!
        for _ in 0..<100 where !(stock.lagEvents == 0 || stock.checkpoint >= poison.position) {
            try await Task.sleep(nanoseconds: 50_000_000)
            stock = try await runner.status().first { $0.name == "stock" }!
        }
        #expect(stock.lagEvents == 0 || stock.checkpoint >= poison.position)
        // The fix: the handler no longer fails. The projection resumes from the failing event.
        broken.failOnTitle.withLock { $0 = nil }
        _ = try await waitCaughtUp(runner)
        let titles = try await s.store.pool.withConnection { c in try c.query("SELECT count(*) FROM rm_tasks").decode(0, 0, as: Int.self) }
        #expect(titles == 2)
        await runner.stop()
    }

    @Test("a changed projection version is rebuilt automatically at start")
    func versionChangeRebuilds() async throws {
        let s = try await makeService()
        try await seed(s)
        let runner = ProjectionRunner(store: s.store, definitions: Coordination.projections, leaderPoll: 0.2)
        runner.start()
        _ = try await waitCaughtUp(runner)
        await runner.stop()
        let before = try await ProjectionRunner.status(pool: s.store.pool, definitions: [ResponseProjection()])[0]
        #expect(before.version == ResponseProjection().version)
        let next = ProjectionRunner(store: s.store, definitions: [BumpedResponses()], leaderPoll: 0.2)
        next.start()
        // The checkpoint left by the first runner is already caught up: wait for the new version's rebuild too.
        _ = try await waitCaughtUp(next) { $0.allSatisfy { $0.version == BumpedResponses().version } }
        await next.stop()
        let after = try await ProjectionRunner.status(pool: s.store.pool, definitions: [BumpedResponses()])[0]
        #expect(after.version == BumpedResponses().version)
        #expect(after.rebuiltAt != nil && after.rebuiltAt! > (before.rebuiltAt ?? .distantPast))
    }
}

/// The stock projection, failing inside its Nth flush after its first table write: a crash mid-transaction.
final class CrashingStock: ProjectionDefinition, @unchecked Sendable {
    let base = StockProjection()
    let crashOn: Int
    let flushes = Mutex(0)
    init(crashOnFlush: Int) { crashOn = crashOnFlush }
    var name: String { base.name }
    var version: Int { base.version }
    var tables: [String] { base.tables }
    var eventTypes: [String]? { base.eventTypes }
    func createTables(suffix: String) -> [String] { base.createTables(suffix: suffix) }
    func makeState() -> any ProjectionState { Wrapper(inner: base.makeState(), owner: self) }
    func loadState(_ c: PostgresConnection, suffix: String) throws -> any ProjectionState { Wrapper(inner: try base.loadState(c, suffix: suffix), owner: self) }

    struct Crash: Error {}
    final class Wrapper: ProjectionState {
        let inner: any ProjectionState
        let owner: CrashingStock
        init(inner: any ProjectionState, owner: CrashingStock) { self.inner = inner; self.owner = owner }
        func apply(_ event: RecordedEvent) throws { try inner.apply(event) }
        func copyAll(_ c: PostgresConnection, suffix: String) throws { try inner.copyAll(c, suffix: suffix) }
        func flush(_ c: PostgresConnection, suffix: String) throws {
            let n = owner.flushes.withLock { $0 += 1; return $0 }
            try inner.flush(c, suffix: suffix)
            if n >= owner.crashOn { throw Crash() }
        }
    }
}

/// The task projection with a handler that fails on a chosen title, until "fixed".
final class BrokenTasks: ProjectionDefinition, @unchecked Sendable {
    let base = TaskProjection()
    let failOnTitle = Mutex<String?>(nil)
    var name: String { base.name }
    var version: Int { base.version }
    var tables: [String] { base.tables }
    var eventTypes: [String]? { base.eventTypes }
    func createTables(suffix: String) -> [String] { base.createTables(suffix: suffix) }
    func makeState() -> any ProjectionState { Wrapper(inner: base.makeState(), owner: self) }
    func loadState(_ c: PostgresConnection, suffix: String) throws -> any ProjectionState { Wrapper(inner: try base.loadState(c, suffix: suffix), owner: self) }

    struct Poison: Error, CustomStringConvertible { let title: String; var description: String { "cannot handle task titled \(title)" } }
    final class Wrapper: ProjectionState {
        let inner: any ProjectionState
        let owner: BrokenTasks
        init(inner: any ProjectionState, owner: BrokenTasks) { self.inner = inner; self.owner = owner }
        func apply(_ event: RecordedEvent) throws {
            if let title = owner.failOnTitle.withLock({ $0 }), case .taskCreated(let created) = try EventCodec.decode(event), created.title == title {
                throw Poison(title: title)
            }
            try inner.apply(event)
        }
        func copyAll(_ c: PostgresConnection, suffix: String) throws { try inner.copyAll(c, suffix: suffix) }
        func flush(_ c: PostgresConnection, suffix: String) throws { try inner.flush(c, suffix: suffix) }
    }
}

/// The response projection at a new version, as a deploy of changed code would bring.
struct BumpedResponses: ProjectionDefinition {
    let base = ResponseProjection()
    var name: String { base.name }
    var version: Int { base.version + 1 }
    var tables: [String] { base.tables }
    var eventTypes: [String]? { base.eventTypes }
    func createTables(suffix: String) -> [String] { base.createTables(suffix: suffix) }
    func makeState() -> any ProjectionState { base.makeState() }
    func loadState(_ c: PostgresConnection, suffix: String) throws -> any ProjectionState { try base.loadState(c, suffix: suffix) }
}

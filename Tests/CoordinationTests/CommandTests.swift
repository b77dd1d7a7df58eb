import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Commands")
struct CommandTests {
    @Test("a retry that meets the original's events without finding its receipt answers the original's state, not today's")
    func retryAnswersTheOriginal() async throws {
        let s = try await makeService()
        try await seed(s)
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 100, source: "donation"), ctx)
        var keyed = ctx
        keyed.idempotencyKey = "waybill-1"
        let dispatch = DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 1, destination: "Tacloban")
        let first = try await s.execute(dispatch, keyed)
        // The race of a retry that arrives while the original's transaction commits: it finds no receipt, decides
        // again and meets the stored events. (Here the receipt is removed, which is the same from the retry's side.)
        try await s.store.pool.withConnection { c in _ = try c.query("DELETE FROM command_receipts") }
        for _ in 0..<4 { _ = try await s.execute(dispatch, ctx) }
        let again = try await s.execute(dispatch, keyed)
        #expect(again.duplicate)
        #expect(again.position == first.position && again.version == first.version)
        #expect(again.state == first.state, "\(again.state) against \(first.state)")
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 95, "the retry wrote nothing")
    }

    func decode(_ name: String, _ json: String) -> DomainError? {
        do { _ = try CommandCatalog.decode(name: name, json: Data(json.utf8)); return nil } catch let e as DomainError { return e } catch { return .rule("\(error)") }
    }

    @Test("decoding refuses unknown fields, wrong types, missing fields and bad JSON, naming the field")
    func strictDecoding() {
        #expect(decode("stock.dispatch", #"{"warehouse":"MNL","item":"X","quantity":1,"destination":"d","quantiy":2}"#)
                == .validation([FieldError("quantiy", "unknown field")]))
        #expect(decode("stock.dispatch", #"{"warehouse":"MNL","item":"X","quantity":"ten","destination":"d"}"#)
                == .validation([FieldError("quantity", "must be a whole number")]))
        #expect(decode("stock.dispatch", #"{"warehouse":"MNL","item":"X","destination":"d"}"#)
                == .validation([FieldError("quantity", "is required")]))
        #expect(decode("stock.dispatch", #"{"warehouse":"MNL","item":"X","quantity":1.5,"destination":"d"}"#)?.caseName == "validation")
        #expect(decode("stock.dispatch", #"{"warehouse":"MNL","#) == .validation([FieldError("body", "is not valid JSON")]))
        #expect(decode("stock.dispatch", #"[1,2]"#) == .validation([FieldError("body", "must be a JSON object")]))
        #expect(decode("stock.teleport", #"{}"#) == .validation([FieldError("command", "unknown command stock.teleport")]))
        #expect(decode("deployment.request", #"{"person":"P","response":"R","profile":"WASH","start":"2026-02-30","end":"2026-03-01"}"#)?.caseName == "validation")
        #expect(decode("response.declare", #"{"name":"n","country":"PHL","hazard":"flood","severity":"red","declared_at":"yesterday"}"#)?.caseName == "validation")
        #expect(decode("item.register", #"{"code":"K","name":"n","unit":"kit","kit":[{"item":"A","quantity":"x"}]}"#)
                == .validation([FieldError("kit[0].quantity", "must be a whole number")]))
        #expect(CommandCatalog.names.count == 39)
    }

    @Test("a whole number is written as one: 1e1, 10.0 and 2^63 are refused, naming the field; nested unknown fields too")
    func strictNumbers() {
        let dispatch = #"{"warehouse":"MNL","item":"X","destination":"d","quantity":"#
        for written in ["1e1", "10.0", "1E2", "9223372036854775808", "-0.5"] {
            #expect(decode("stock.dispatch", dispatch + written + "}")
                    == .validation([FieldError("quantity", "must be a whole number (no fraction or exponent) within 64 bits")]), "\(written)")
        }
        #expect(decode("stock.dispatch", dispatch + "10}") == nil)
        #expect(decode("stock.dispatch", dispatch + "-10}") == nil, "a negative count is the validator's to refuse, not the decoder's")
        #expect(decode("item.register", #"{"code":"K","name":"n","unit":"kit","kit":[{"item":"A","quantity":2,"qty":1}]}"#)
                == .validation([FieldError("kit[0].qty", "unknown field")]))
        #expect(decode("stock.dispatch", #"{"warehouse":"MNL","item":"X","destination":"d"}"#) == .validation([FieldError("quantity", "is required")]))
    }

    @Test("every command's fields and types come from its own decoding; the bounds from its validation")
    func schemaDerived() {
        let dispatch = CommandCatalog.schema(of: "stock.dispatch") ?? []
        #expect(dispatch.map(\.name) == ["warehouse", "item", "quantity", "destination", "response", "reference", "transport", "occurred_at"])
        #expect(dispatch.first { $0.name == "quantity" }?.kind == .integer)
        #expect(dispatch.first { $0.name == "quantity" }?.minimum == 1)
        #expect(dispatch.first { $0.name == "occurred_at" }?.required == false)
        let warehouse = CommandCatalog.schema(of: "warehouse.register") ?? []
        #expect(warehouse.first { $0.name == "kind" }?.allowed?.isEmpty == false)
        #expect(warehouse.first { $0.name == "lat" }?.maximumNumber == 90)
        let kit = CommandCatalog.schema(of: "item.register")?.first { $0.name == "kit" }
        if case .array(.object(let fields)) = kit?.kind { #expect(fields.map(\.name) == ["item", "quantity"]) } else { Issue.record("kit is \(String(describing: kit?.kind))") }
        for name in CommandCatalog.names { #expect(CommandCatalog.schema(of: name)?.isEmpty == false, "\(name)") }
    }

    @Test("validation reports every bad field at once; codes, countries and bounds are checked")
    func validation() async throws {
        let s = try await makeService()
        let error = await domainError {
            _ = try await s.execute(RegisterWarehouse(code: "bad code!", name: String(repeating: "x", count: 201), country: "XXX", kind: "depot",
                                                      pcode: "ph08", lat: 91, lon: 0), ctx)
        }
        guard case .validation(let errors) = error else { Issue.record("expected validation"); return }
        #expect(errors.map(\.field) == ["code", "name", "country", "kind", "pcode", "lat"])
        #expect(await domainError {
            _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "I", quantity: 0, source: "donation"), ctx)
        } == .validation([FieldError("quantity", "must be a whole number from 1 to 10000000")]))
        #expect(await domainError {
            _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "I", quantity: 10_000_001, source: "gift"), ctx)
        }.map { if case .validation(let e) = $0 { return e.map(\.field) } else { return [] } } == ["quantity", "source"])
        #expect(try await s.store.headPosition() == 0)
    }

    @Test("a business time in the future (beyond 15 minutes of clock skew) or 30 years back is refused; within the skew it is kept")
    func futureTimes() async throws {
        let s = try await makeService()
        _ = try await s.execute(RegisterWarehouse(code: "MNL", name: "Manila", country: "PHL", kind: "national"), ctx)
        _ = try await s.execute(RegisterItem(code: "I", name: "Tarpaulin", unit: "piece"), ctx)
        let head = try await s.store.headPosition()
        let offsets: [TimeInterval] = [3_600, 16 * 60, 365 * 86_400, -31 * 365.25 * 86_400]
        for offset in offsets {
            let error = await domainError {
                _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "I", quantity: 1, source: "donation", occurredAt: Date().addingTimeInterval(offset)), ctx)
            }
            guard case .validation(let errors) = error else { Issue.record("offset \(offset): expected validation"); continue }
            #expect(errors.map(\.field) == ["occurred_at"])
        }
        #expect(await domainError {
            _ = try await s.execute(DeclareResponse(id: "R-FUT", name: "n", country: "PHL", hazard: "flood", severity: "orange",
                                                    declaredAt: Date().addingTimeInterval(86_400)), ctx)
        } != nil)
        #expect(try await s.store.headPosition() == head, "nothing written")
        let skewed = Date().addingTimeInterval(5 * 60)
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "I", quantity: 1, source: "donation", occurredAt: skewed), ctx)
        let last = try #require(try await s.store.read(stream: Streams.stock("MNL", "I"), limit: 10).last)
        #expect(abs(last.occurredAt.timeIntervalSince(skewed)) < 0.001)
    }

    @Test("a retried command with the same idempotency key returns the original result and writes nothing")
    func idempotencyKey() async throws {
        let s = try await makeService()
        try await seed(s)
        var keyed = ctx
        keyed.idempotencyKey = "waybill-WB-0042"
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 100, source: "donation"), ctx)
        let dispatch = DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 60, destination: "Tacloban")
        let first = try await s.execute(dispatch, keyed)
        let head = try await s.store.headPosition()
        // The retry would now fail its stock check (40 left): it must still return the original success.
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 80, source: "donation"), ctx)
        let later = try await s.store.headPosition()
        let retry = try await s.execute(dispatch, keyed)
        #expect(retry.duplicate)
        #expect(retry.position == first.position)
        #expect(try await s.store.headPosition() == later)
        #expect(try await onHand(s, "MNL", "HSHETARPW406") == 120)
        // The original answer, not today's state: on hand was 40 when it was given (120 now).
        #expect(try stateJSON(retry)["on_hand"] as? Int == 40)
        #expect(retry.body == first.body.replacingOccurrences(of: "\"position\":\(first.position)", with: "\"position\":\(retry.position)"))
        _ = head
        // A refusal is the answer too: retried after stock arrived, the refused dispatch stays refused, unwritten.
        var refusedKey = ctx
        refusedKey.idempotencyKey = "waybill-WB-0043"
        let big = DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 500, destination: "Palo")
        let refusal = await domainError { _ = try await s.execute(big, refusedKey) }
        #expect(refusal == .insufficientStock(warehouse: "MNL", item: "HSHETARPW406", requested: 500, available: 120))
        _ = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 1000, source: "donation"), ctx)
        let before = try await s.store.headPosition()
        #expect(await domainError { _ = try await s.execute(big, refusedKey) } == refusal, "the retry gets the first answer")
        #expect(try await s.store.headPosition() == before, "and is not executed")
        #expect(await domainError {
            _ = try await s.execute(DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 5, destination: "Palo"), refusedKey)
        } == .idempotencyMismatch(key: "waybill-WB-0043"))
        // Same key, different body: refused.
        #expect(await domainError {
            _ = try await s.execute(DispatchStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 1, destination: "Tacloban"), keyed)
        } == .idempotencyMismatch(key: "waybill-WB-0042"))
        // Concurrent retries of a new keyed command: written once.
        keyed.idempotencyKey = "batch-7"
        let receipt = ReceiveStock(warehouse: "TAC", item: "HSHETARPW406", quantity: 5, source: "internal")
        let batchContext = keyed
        let results = await withTaskGroup(of: CommandResult?.self) { group in
            for _ in 0..<8 { group.addTask { try? await s.execute(receipt, batchContext) } }
            var out: [CommandResult] = []
            for await r in group { if let r { out.append(r) } }
            return out
        }
        #expect(results.count == 8)
        #expect(try await onHand(s, "TAC", "HSHETARPW406") == 5)
        // Concurrent retries of a dispatch that takes all the stock: each retry gets the original success,
        // not an insufficient-stock refusal computed after the original ran.
        let everything = DispatchStock(warehouse: "TAC", item: "HSHETARPW406", quantity: 5, destination: "Palo")
        var allContext = ctx
        allContext.idempotencyKey = "take-all"
        let fixed = allContext
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 { group.addTask { (try? await s.execute(everything, fixed)) != nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(outcomes == 8)
        #expect(try await onHand(s, "TAC", "HSHETARPW406") == 0)
    }

    @Test("events carry actor, correlation, causation, source, idempotency key and both times")
    func metadata() async throws {
        let s = try await makeService()
        try await seed(s)
        let reported = Date(timeIntervalSinceNow: -3 * 3600)
        let context = CommandContext(actor: "logistics-officer", correlationID: "req-123", causationID: "cmd-9", source: "api", idempotencyKey: "k-1")
        let r = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 10, source: "donation", occurredAt: reported), context)
        let event = try await s.store.read(after: r.position - 1, limit: 1)[0]
        let meta = event.decodedMetadata
        #expect(meta.actor == "logistics-officer")
        #expect(meta.correlationID == "req-123")
        #expect(meta.causationID == "cmd-9")
        #expect(meta.source == "api")
        #expect(meta.idempotencyKey == "k-1")
        #expect(meta.requestHash?.count == 32)
        #expect(abs(event.occurredAt.timeIntervalSince(reported)) < 0.001)
        #expect(event.recordedAt.timeIntervalSince(reported) > 3 * 3600 - 5)
        // Without occurred_at, it defaults to when the command arrived.
        let arrived = ctx
        let now = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 10, source: "donation"), arrived)
        let e2 = try await s.store.read(after: now.position - 1, limit: 1)[0]
        #expect(abs(e2.occurredAt.timeIntervalSince(arrived.receivedAt)) < 0.001)
        // A command's events name it as their cause when the caller gave none.
        let caused = try await s.execute(ReceiveStock(warehouse: "MNL", item: "HSHETARPW406", quantity: 1, source: "donation"), arrived)
        let e3 = try await s.store.read(after: caused.position - 1, limit: 1)[0]
        #expect(UUID(uuidString: e3.decodedMetadata.causationID ?? "") != nil)
    }

    @Test("If-Match with a stale version is refused; with the current one it passes")
    func ifMatch() async throws {
        let s = try await makeService()
        try await seed(s)
        let t = try await s.execute(CreateTask(id: "T-1", response: "PHL-2026-TC-01", cluster: "SHL", title: "NFI distribution", priority: "normal"), ctx)
        var matched = ctx
        matched.expectedVersion = t.version
        _ = try await s.execute(StartTask(id: "T-1"), matched)
        #expect(await domainError { _ = try await s.execute(CompleteTask(id: "T-1"), matched) }
                == .stale(kind: "task", id: "T-1", expected: 1, actual: 2))
    }

    @Test("events of an unknown newer schema are refused; older ones are upcast")
    func schemaVersions() async throws {
        let s = try await makeService()
        try await seed(s)
        let v1 = EventData(type: "task.created", data: JSONText(#"{"task":"T-old","response":"PHL-2026-TC-01","cluster":"WSH","title":"Old","priority":1}"#))
        try await s.store.append([v1], to: Streams.task("T-old"))
        let decoded = try EventCodec.decode(try await s.store.read(stream: Streams.task("T-old"))[0])
        guard case .taskCreated(let created) = decoded else { Issue.record("not a task creation"); return }
        #expect(created.priority == "urgent")
        // The upcast shape is what commands see too.
        let started = try await s.execute(StartTask(id: "T-old"), ctx)
        #expect(try stateJSON(started)["priority"] as? String == "urgent")

        let future = EventData(type: "task.created", data: JSONText(#"{"task":"T-new"}"#), metadata: EventMetadata(schemaVersion: 9))
        try await s.store.append([future], to: Streams.task("T-new"))
        let stored = try await s.store.read(stream: Streams.task("T-new"))[0]
        #expect(throws: EventCodecError.newerSchema(type: "task.created", version: 9, known: 2)) {
            _ = try EventCodec.decode(stored)
        }
        // A command on that stream refuses to guess rather than act on data it cannot read.
        await #expect(throws: EventCodecError.self) { _ = try await s.execute(StartTask(id: "T-new"), ctx) }
    }
}

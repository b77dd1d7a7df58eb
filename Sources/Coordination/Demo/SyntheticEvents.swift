import Events
import Foundation

/// Realistic domain events in bulk, for benchmarks: written straight to the store (not through commands),
/// valid for every projection.
public enum SyntheticEvents {

    /// What the generated log holds after its reference data.
    public enum Profile: String, Sendable, CaseIterable {
        /// Stock movements and transfers across 50 warehouses and 20 items, tasks, deployments.
        case mixed
        /// A surge drawing on one hub: receipts and dispatches only, all at warehouse W00 over its 20 items (the log
        /// an import of a hub's stock ledger leaves).
        case stockHeavy = "stock-heavy"
    }

    /// Appends `count` domain events that the projections accept, 1,000 per append.
    public static func generate(_ store: EventStore, count: Int, profile: Profile = .mixed, progress: (Int) -> Void) async throws {
        let warehouses = (0..<50).map { String(format: "W%02d", $0) }
        let items = (0..<20).map { String(format: "ITEM%02d", $0) }
        var rng = SplitMix(seed: 42)
        var written = 0
        var batch: [String: [EventData]] = [:]
        var batchCount = 0
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        var transfers = 0
        var tasks = 0
        var deployments = 0

        func add<P: EventPayload>(_ stream: String, _ p: P) throws {
            let n = written + batchCount
            let at = start.addingTimeInterval(Double(n))
            batch[stream, default: []].append(try EventCodec.event(p, id: UUID.random(), metadata: importMetadata(line: n + 1), occurredAt: at))
            batchCount += 1
        }
        func flush() async throws {
            guard batchCount > 0 else { return }
            try await store.append(batch.map { StreamAppend(stream: $0.key, expected: .any, events: $0.value) })
            written += batchCount
            batch = [:]
            batchCount = 0
            progress(written)
        }
        // Reference data first.
        try add(Streams.response("R1"), ResponseDeclared(response: "R1", name: "Bench response", country: "PHL", hazard: "flood",
                                                         severity: "orange", declaredAt: start))
        for w in warehouses { try add(Streams.warehouse(w), WarehouseRegistered(code: w, name: "Warehouse \(w)", country: "PHL", kind: "field")) }
        for (n, i) in items.enumerated() {
            try add(Streams.item(i), ItemRegistered(code: i, name: "Item \(i)", unit: "piece", category: "nfi",
                                                    kit: n == 0 ? [KitComponent(item: items[1], quantity: 2)] : nil))
        }
        try await flush()
        for w in warehouses {
            for i in items { try add(Streams.stock(w, i), StockLevelsSet(warehouse: w, item: i, minimum: 100, target: 500)) }
            if batchCount >= 900 { try await flush() }
        }
        try await flush()
        while profile == .stockHeavy, written + batchCount < count {
            let i = items[rng.next(items.count)]
            if rng.next(2) == 0 {
                try add(Streams.stock("W00", i), StockReceived(warehouse: "W00", item: i, quantity: 100, source: "donation", reference: "GRN-1"))
            } else {
                try add(Streams.stock("W00", i), StockDispatched(warehouse: "W00", item: i, quantity: 10, destination: "site", response: "R1",
                                                                  reference: "WB-1"))
            }
            if batchCount >= 990 { try await flush() }
        }
        while written + batchCount < count {
            let w = warehouses[rng.next(warehouses.count)], i = items[rng.next(items.count)]
            let stock = Streams.stock(w, i)
            switch rng.next(20) {
            case 0..<5: try add(stock, StockReceived(warehouse: w, item: i, quantity: 100, source: "donation", reference: "GRN-1"))
            case 5..<9: try add(stock, StockDispatched(warehouse: w, item: i, quantity: 10, destination: "site", response: "R1", reference: "WB-1"))
            case 9: try add(stock, StockAdjusted(warehouse: w, item: i, delta: -1, reason: "damaged"))
            case 10:
                transfers += 1
                let id = "T\(transfers)", to = warehouses[(warehouses.firstIndex(of: w)! + 1) % warehouses.count]
                try add(stock, StockTransferSent(transfer: id, warehouse: w, item: i, quantity: 20, to: to))
                try add(Streams.transfer(id), TransferCreated(transfer: id, from: w, to: to, item: i, quantity: 20))
                try add(Streams.transfer(id), TransferReceived(transfer: id, received: 19, lost: 1))
                try add(Streams.stock(to, i), StockTransferReceived(transfer: id, warehouse: to, item: i, quantity: 19, from: w))
            case 11..<15:
                tasks += 1
                let id = "K\(tasks)"
                try add(Streams.task(id), TaskCreated(task: id, response: "R1", cluster: "WSH", title: "Task \(id)", priority: "normal"))
                try add(Streams.task(id), TaskStarted(task: id))
                if rng.next(2) == 0 { try add(Streams.task(id), TaskCompleted(task: id)) }
            case 15..<18:
                deployments += 1
                let id = "D\(deployments)", person = "P\(deployments)"
                try add(Streams.person(person), PersonRegistered(person: person, name: "Person \(deployments)", profiles: ["WASH"]))
                try add(Streams.deployment(id), DeploymentRequested(deployment: id, person: person, response: "R1", profile: "WASH",
                                                                  start: Day(daysSinceEpoch: 20_700), end: Day(daysSinceEpoch: 20_730)))
                try add(Streams.deployment(id), DeploymentConfirmed(deployment: id))
                try add(Streams.deployment(id), DeploymentArrived(deployment: id))
            default:
                try add(stock, StockCounted(warehouse: w, item: i, counted: 50, book: 50, variance: 0))
            }
            if batchCount >= 990 { try await flush() }
        }
        try await flush()
    }



    /// The metadata `coordctl import` leaves on the events of line `line` (an API command's carries as much): who, from
    /// where, which request and command caused it, its idempotency key and the digest of its body. What a rebuild
    /// reads with every event, so a benchmark log carries it too (until 2026-12-03 it had only an actor and a source).
    static func importMetadata(line: Int) -> EventMetadata {
        EventMetadata(actor: "coordctl-import", correlationID: "import-line-\(line)", causationID: UUID.random().lowercasedString, source: "import",
                      idempotencyKey: "import:\(line):" + String(UInt64(truncatingIfNeeded: line) &* 0x9E37_79B9_7F4A_7C15, radix: 16),
                      requestHash: MD5.hex(String(line)))
    }

    /// A response declaration event.
    public static func response(_ id: String) throws -> EventData {
        try EventCodec.event(ResponseDeclared(response: id, name: "Bench", country: "PHL", hazard: "flood", severity: "red", declaredAt: Date()),
                             id: UUID.random(), metadata: EventMetadata(actor: "bench", source: "bench"), occurredAt: Date())
    }

    /// A task creation event.
    public static func task(_ id: String, response: String) throws -> EventData {
        try EventCodec.event(TaskCreated(task: id, response: response, cluster: "WSH", title: "Task \(id)", priority: "low"),
                             id: UUID.random(), metadata: EventMetadata(actor: "bench", source: "bench"), occurredAt: Date())
    }
}

/// A small deterministic generator (SplitMix64): benchmarks generate the same data on every run.
public struct SplitMix: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    /// A number in 0..<n (0 when n < 1).
    public mutating func next(_ n: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(max(1, n)))
    }
}

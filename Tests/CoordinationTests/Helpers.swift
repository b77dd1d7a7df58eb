import Coordination
import Events
import Foundation
import Testing
import TestSupport

func makeService(poolSize: Int = 8) async throws -> CoordinationService {
    CoordinationService(store: EventStore(pool: try await TestDatabase.makePool(poolSize: poolSize, sets: Coordination.migrationSets)))
}

/// A context for one command, received now (a business time defaults to when its command arrived).
var ctx: CommandContext { CommandContext(actor: "officer-1", source: "test") }

func day(_ s: String) -> Day { Day(s)! }

/// Reference data most tests need: warehouses MNL and TAC, a tarpaulin and a kit, an open response.
func seed(_ s: CoordinationService) async throws {
    _ = try await s.execute(RegisterWarehouse(code: "MNL", name: "Manila hub", country: "PHL", kind: "global_hub", pcode: "PH1339"), ctx)
    _ = try await s.execute(RegisterWarehouse(code: "TAC", name: "Tacloban", country: "PHL", kind: "field", pcode: "PH0837"), ctx)
    _ = try await s.execute(RegisterItem(code: "HSHETARPW406", name: "Tarpaulin 4x6 m", unit: "piece", category: "shelter"), ctx)
    _ = try await s.execute(RegisterItem(code: "HCONJCANPF10", name: "Jerrycan 10 l", unit: "piece", category: "wash"), ctx)
    _ = try await s.execute(DeclareResponse(id: "PHL-2026-TC-01", name: "Typhoon Halong", country: "PHL", hazard: "typhoon",
                                            severity: "orange", declaredAt: Date(timeIntervalSinceNow: -86_400 * 3)), ctx)
}

/// The thrown DomainError, or nil when `body` succeeded.
func domainError(_ body: () async throws -> Void) async -> DomainError? {
    do { try await body(); return nil } catch let e as DomainError { return e } catch { Issue.record("unexpected \(error)"); return nil }
}

func onHand(_ s: CoordinationService, _ warehouse: String, _ item: String) async throws -> Int64 {
    let events = try await s.store.read(stream: Streams.stock(warehouse, item), limit: 100_000)
    var total: Int64 = 0
    for e in events {
        switch try EventCodec.decode(e) {
        case .stockReceived(let p): total += p.quantity
        case .stockDispatched(let p): total -= p.quantity
        case .stockAdjusted(let p): total += p.delta
        case .stockCounted(let p): total += p.variance
        case .stockMovementReversed(let p): total += p.delta
        case .stockTransferSent(let p): total -= p.quantity
        case .stockTransferReceived(let p): total += p.quantity
        case .stockTransferReturned(let p): total += p.quantity
        default: break
        }
    }
    return total
}

func stateJSON(_ r: CommandResult) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(r.state.text.utf8)) as! [String: Any]
}

extension DomainError {
    /// The case, by a name the tests compare (the API's problem types are coordd's).
    var caseName: String {
        switch self {
        case .validation: return "validation"
        case .notFound: return "not-found"
        case .alreadyExists: return "already-exists"
        case .insufficientStock: return "insufficient-stock"
        case .deploymentOverlap: return "deployment-overlap"
        case .invalidTransition: return "invalid-transition"
        case .rule: return "rule-violation"
        case .stale: return "stale"
        case .idempotencyMismatch: return "idempotency-mismatch"
        case .contention: return "contention"
        case .outOfScope: return "out-of-scope"
        }
    }
}

/// Every row of a list (all pages), as the API's filters select them.
func rows(_ spec: ListSpec, _ source: ListSource, _ query: [String: String] = [:], today: Day = Day(Date())) async throws -> ResultTable {
    var all: [[String?]] = []
    var first: ResultTable?
    try await spec.forEachPage(source, try spec.arguments(query, today: today), pageSize: 500) { page in
        first = first ?? page
        all += page.rows
        return true
    }
    guard let first else { return ResultTable(columns: [], rows: []) }
    return ResultTable(columns: first.columns, rows: all, numeric: first.numeric, boolean: first.boolean, documents: first.documents)
}

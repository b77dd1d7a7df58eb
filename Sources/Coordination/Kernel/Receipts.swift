import Events
import Foundation

/// The first answer to a command sent with an idempotency key, kept as the store's receipt: a retry gets that
/// answer, whatever happened since. A success's receipt is written in the transaction of its events (the state
/// it answered with, not today's); a refusal's (insufficient stock, an overlap...) alone, so a retry of a
/// refused dispatch is refused again rather than executed once stock has arrived. Contention is not an answer
/// (the client may retry it), and neither is a failure to reach the database.
enum CommandAnswer: Equatable {
    case done(kind: String, id: String, created: Bool, state: String, event: UUID?)
    case refused(DomainError)

    var json: String {
        var object: [String: Any]
        switch self {
        case let .done(kind, id, created, state, event):
            object = ["outcome": "done", "kind": kind, "id": id, "created": created, "state": state]
            if let event { object["event"] = event.lowercasedString }
        case .refused(let error): object = ["outcome": "refused", "error": error.record]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    init?(json: String) {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else { return nil }
        switch o["outcome"] as? String {
        case "done":
            guard let kind = o["kind"] as? String, let id = o["id"] as? String, let created = o["created"] as? Bool,
                  let state = o["state"] as? String else { return nil }
            self = .done(kind: kind, id: id, created: created, state: state, event: (o["event"] as? String).flatMap(UUID.init))
        case "refused":
            guard let record = o["error"] as? [String: Any], let error = DomainError(record: record) else { return nil }
            self = .refused(error)
        default: return nil
        }
    }
}

extension DomainError {
    /// Whether this refusal is the command's answer (kept for retries) rather than a passing condition.
    var isAnswer: Bool {
        if case .contention = self { return false }
        if case .outOfScope = self { return false }
        return true
    }

    /// The refusal as a JSON-ready record, and back: what a receipt keeps.
    var record: [String: Any] {
        switch self {
        case .validation(let errors): return ["case": "validation", "errors": errors.map { ["field": $0.field, "message": $0.message] }]
        case let .notFound(kind, id): return ["case": "notFound", "kind": kind, "id": id]
        case let .alreadyExists(kind, id): return ["case": "alreadyExists", "kind": kind, "id": id]
        case let .insufficientStock(w, i, r, a): return ["case": "insufficientStock", "warehouse": w, "item": i, "requested": r, "available": a]
        case let .deploymentOverlap(p, c, k): return ["case": "deploymentOverlap", "person": p, "conflicting": c, "kind": k]
        case let .invalidTransition(k, id, c, a): return ["case": "invalidTransition", "kind": k, "id": id, "current": c, "action": a]
        case .rule(let message): return ["case": "rule", "message": message]
        case let .stale(k, id, e, a): return ["case": "stale", "kind": k, "id": id, "expected": e, "actual": a]
        case .idempotencyMismatch(let key): return ["case": "idempotencyMismatch", "key": key]
        case .contention(let stream): return ["case": "contention", "stream": stream]
        case .outOfScope(let subject): return ["case": "outOfScope", "subject": subject]
        }
    }

    init?(record r: [String: Any]) {
        func s(_ k: String) -> String? { r[k] as? String }
        func n(_ k: String) -> Int64? { (r[k] as? NSNumber)?.int64Value }
        switch s("case") {
        case "validation":
            guard let list = r["errors"] as? [[String: String]] else { return nil }
            self = .validation(list.map { FieldError($0["field"] ?? "", $0["message"] ?? "") })
        case "notFound": guard let k = s("kind"), let id = s("id") else { return nil }; self = .notFound(kind: k, id: id)
        case "alreadyExists": guard let k = s("kind"), let id = s("id") else { return nil }; self = .alreadyExists(kind: k, id: id)
        case "insufficientStock":
            guard let w = s("warehouse"), let i = s("item"), let q = n("requested"), let a = n("available") else { return nil }
            self = .insufficientStock(warehouse: w, item: i, requested: q, available: a)
        case "deploymentOverlap":
            guard let p = s("person"), let c = s("conflicting"), let k = s("kind") else { return nil }
            self = .deploymentOverlap(person: p, conflicting: c, kind: k)
        case "invalidTransition":
            guard let k = s("kind"), let id = s("id"), let c = s("current"), let a = s("action") else { return nil }
            self = .invalidTransition(kind: k, id: id, current: c, action: a)
        case "rule": guard let m = s("message") else { return nil }; self = .rule(m)
        case "stale":
            guard let k = s("kind"), let id = s("id"), let e = n("expected"), let a = n("actual") else { return nil }
            self = .stale(kind: k, id: id, expected: e, actual: a)
        case "idempotencyMismatch": self = .idempotencyMismatch(key: s("key") ?? "")
        case "contention": guard let st = s("stream") else { return nil }; self = .contention(stream: st)
        case "outOfScope": guard let st = s("subject") else { return nil }; self = .outOfScope(st)
        default: return nil
        }
    }
}

extension CoordinationService {
    /// Runs `command` under its idempotency key's receipt: the stored answer when there is one (the same body,
    /// else 422), otherwise the command, whose refusal is kept as the answer for its retries. (A success keeps
    /// its own receipt, with its events: `CommandRunner`.)
    func withReceipt(_ command: some DomainCommand, _ ctx: CommandContext, _ run: () async throws -> CommandResult) async throws -> CommandResult {
        guard runner.staging == nil, let key = ctx.idempotencyKey, !key.isEmpty, key.count <= 200 else { return try await run() }
        let (ids, hash) = CommandRunner.idempotencyIDs(actor: ctx.actor, command: type(of: command).name, key: key, body: Self.canonical(command))
        if let stored = try await store.receipt(id: ids.receipt) {
            return try await answer(stored, ids: ids, hash: hash, key: key)
        }
        do {
            return try await run()
        } catch let error as DomainError where error.isAnswer {
            if case .idempotencyMismatch = error { throw error }
            let standing = try await store.recordReceipt(AppendReceipt(id: ids.receipt, requestHash: hash, answer: CommandAnswer.refused(error).json))
            return try await answer(standing, ids: ids, hash: hash, key: key)
        }
    }

    /// A stored answer as the command's result (or its refusal, thrown again).
    private func answer(_ receipt: AppendReceipt, ids: CommandRunner.IdempotentIDs, hash: String, key: String) async throws -> CommandResult {
        guard receipt.requestHash == hash else { throw DomainError.idempotencyMismatch(key: key) }
        switch CommandAnswer(json: receipt.answer) {
        case .refused(let error)?: throw error
        case let .done(kind, id, created, state, event)?:
            // Where the original's events landed: the last position, and the resource stream's version.
            let stored = try await store.events(ids: ids.all)
            let primary = stored.first { $0.id == event } ?? stored.first
            let version = stored.filter { $0.stream == primary?.stream }.map(\.version).max() ?? 0
            return CommandResult(kind: kind, id: id, created: created, position: stored.last?.position ?? 0, version: version, duplicate: true,
                                 state: JSONText(state), eventID: event)
        case nil: throw EventStoreError.unavailable("receipt \(receipt.id) cannot be read")
        }
    }
}

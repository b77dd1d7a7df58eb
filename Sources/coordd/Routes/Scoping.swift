import Coordination
import Events
import Foundation

// Scoped tokens (docs/PRIVACY.md, "Scopes"): writes outside the scope are refused by the domain (403
// `out-of-scope`); reads outside it are filtered out here: lists and exports, resources (404, as for what does not
// exist), replay, streams, the log and the live feed.
extension App {
    /// What the caller's token reaches for reading; nil: everything.
    func readScope(_ ctx: RequestContext) async throws -> ReadScope? {
        guard let scope = ctx.principal?.scope, !scope.isUnscoped else { return nil }
        return try await ReadScope.resolve(scope, queries: lists.queries)
    }

    /// Whether the scope reaches a resource, judged on its current state (`service.state`): a warehouse or a response
    /// by its id, a deployment or a task by its response, a transfer by either end. Items and people: the region's.
    static func reaches(_ scope: ReadScope, kind: String, id: String, state: JSONText) -> Bool {
        let value = try? JSONValue.parse(Data(state.text.utf8))
        func field(_ name: String) -> String? { if case .string(let s)? = value?[name] { return s } else { return nil } }
        switch kind {
        case "warehouse": return scope.warehouses.contains(id)
        case "response": return scope.responses.contains(id)
        case "deployment", "task": return field("response").map(scope.responses.contains) ?? false
        case "transfer": return [field("from"), field("to")].contains { $0.map(scope.warehouses.contains) ?? false }
        default: return true
        }
    }

    /// A response the caller's scope does not reach answers 404, as one that does not exist. Returns the scope (nil:
    /// unscoped), so a route that filters more by it resolves it once.
    @discardableResult
    func requireResponse(_ id: String, _ ctx: RequestContext) async throws -> ReadScope? {
        let scope = try await readScope(ctx)
        if let scope, !scope.responses.contains(id) { throw Problem(status: 404, detail: "response \(id) not found") }
        return scope
    }

    /// A person's record with only the deployments (and bookings) of responses the scope reaches.
    static func scoped(personState text: String, _ scope: ReadScope) -> String {
        guard var value = try? JSONValue.parse(Data(text.utf8)), case .array(let deployments)? = value["deployments"] else { return text }
        func string(_ v: JSONValue, _ key: String) -> String? { if case .string(let s)? = v[key] { return s } else { return nil } }
        let shown = deployments.filter { string($0, "response").map(scope.responses.contains) ?? false }
        let ids = Set(shown.compactMap { string($0, "id") })
        value = value.setting("deployments", .array(shown))
        if case .array(let bookings)? = value["bookings"] {
            value = value.setting("bookings", .array(bookings.filter { string($0, "deployment").map(ids.contains) ?? false }))
        }
        return value.json
    }

    /// Of a batch of events, the streams (`ReadScope.subject`) a scoped reader is shown, remembered in `known` as the feed goes: a creation
    /// decides its stream from its own data, the rest from the read models once.
    static func learnVisibility(_ events: [RecordedEvent], _ scope: ReadScope, known: inout [String: Bool], queries: ReadModelQueries) async throws {
        for event in events where known[event.stream] == nil {
            if let decoded = try? EventCodec.decode(event), let decided = scope.decides(decoded) { known[event.stream] = decided }
        }
        let unknown = Set(events.map(ReadScope.subject).filter { known[$0] == nil })
        guard !unknown.isEmpty else { return }
        let visible = try await scope.visible(unknown, queries: queries)
        for stream in unknown { known[stream] = visible.contains(stream) }
        // Bounded: a long feed over many streams forgets, and asks again.
        if known.count > 50_000 { known.removeAll() }
    }

    /// Whether a scoped feed shows an alert: its response's, or its warehouse's (stock below minimum), or its
    /// transfer's (overdue).
    static func reaches(_ scope: ReadScope, alert m: AlertOutbox.Message, queries: ReadModelQueries) async -> Bool {
        if let r = m.response { return scope.responses.contains(r) }
        guard let value = try? JSONValue.parse(Data(m.alert.utf8)), case .string(let kind)? = value["kind"],
              case .string(let subject)? = value["subject"] else { return false }
        if kind == "stock.below_minimum" { return scope.warehouses.contains(String(subject.prefix { $0 != ":" })) }
        if kind == "transfer.overdue" { return (try? await scope.visible(["transfer-\(subject)"], queries: queries))?.isEmpty == false }
        return false
    }
}

import Events
import Foundation
import Synchronization

/// Stream names: one stream per consistency boundary (docs/DOMAIN_MODEL.md explains each choice).
public enum Streams {
    public static func response(_ id: String) -> String { "response-\(id)" }
    public static func warehouse(_ code: String) -> String { "warehouse-\(code)" }
    public static func item(_ code: String) -> String { "item-\(code)" }
    /// All movements of one item at one warehouse: "on hand never negative" is decided on this stream.
    public static func stock(_ warehouse: String, _ item: String) -> String { "stock-\(warehouse):\(item)" }
    public static func transfer(_ id: String) -> String { "transfer-\(id)" }
    /// A person's profile, unavailability and bookings: "no double booking" is decided on this stream.
    public static func person(_ id: String) -> String { "person-\(id)" }
    public static func deployment(_ id: String) -> String { "deployment-\(id)" }
    public static func task(_ id: String) -> String { "task-\(id)" }
}

/// The write side of the domain: the one API through which coordd and coordctl change anything.
/// Every rule is enforced here, once.
public final class CoordinationService: Sendable {
    public let store: EventStore
    let runner: CommandRunner
    private let knownStreams = Mutex<Set<String>>([])

    public init(store: EventStore) {
        self.store = store
        self.runner = CommandRunner(store: store)
    }

    /// A service that stages decided events instead of appending them (bulk import, see `CommandImporter`).
    init(store: EventStore, staging: StagingBuffer) {
        self.store = store
        self.runner = CommandRunner(store: store, staging: staging)
    }

    /// Validates and runs `command`. Throws `DomainError` for anything the domain refuses; nothing is
    /// written then.
    public func execute(_ command: some DomainCommand, _ ctx: CommandContext) async throws -> CommandResult {
        var v = Validator()
        command.validate(&v)
        v.text(ctx.actor, "actor")
        try v.check()
        // Before the receipt: a refusal of the token, not of the command, is never kept as the key's answer.
        try await authorize(command, scope: ctx.scope)
        return try await withReceipt(command, ctx) { try await command.run(self, ctx) }
    }

    /// Decodes `json` as the command called `name` and runs it (NDJSON import, the HTTP API).
    public func execute(name: String, json: Data, _ ctx: CommandContext) async throws -> CommandResult {
        let command = try CommandCatalog.decode(name: name, json: json)
        return try await execute(command, ctx)
    }

    /// As `execute(name:json:)`, for a body the caller has already parsed.
    public func execute(name: String, value: JSONValue, _ ctx: CommandContext) async throws -> CommandResult {
        let command = try CommandCatalog.decode(name: name, value: value, ignoring: [])
        return try await execute(command, ctx)
    }

    /// The current state of one resource as JSON, with its stream version (for `GET` and `ETag`), or nil. The
    /// shape of a command's answer for that resource, with what lists add: a deployment's `person_name` and
    /// `response_country`, a person's deployments.
    public func state(kind: String, id: String) async throws -> (state: JSONText, version: Int64)? {
        func load<S: AggregateState>(_ stream: String, _ type: S.Type) async throws -> (S, Int64)? {
            let (state, version) = try await runner.load(stream, as: S.self, fresh: true)
            return version == 0 ? nil : (state, version)
        }
        func render<S: AggregateState>(_ loaded: (S, Int64)?, _ extra: [(String, String)] = []) throws -> (JSONText, Int64)? {
            guard let (state, version) = loaded else { return nil }
            return (JSONText(Self.merge(try CommandRunner.render(state).text, extra)), version)
        }
        guard Validator.isID(id) else { return nil }
        switch kind {
        case "response": return try render(try await load(Streams.response(id), ResponseState.self))
        case "deployment":
            guard let d = try await load(Streams.deployment(id), DeploymentState.self) else { return nil }
            let person = try await runner.load(Streams.person(d.0.person), as: PersonState.self)
            let response = try await runner.load(Streams.response(d.0.response), as: ResponseState.self)
            return try render(d, [("person_name", JSONWriter.quote(person.0.name)), ("response_country", JSONWriter.quote(response.0.country))])
        case "task": return try render(try await load(Streams.task(id), TaskState.self))
        case "transfer": return try render(try await load(Streams.transfer(id), TransferState.self))
        case "person":
            guard let p = try await load(Streams.person(id), PersonState.self) else { return nil }
            let deployments = try await ReadModelQueries(pool: store.pool).table("""
                SELECT id, response, profile, start_date AS "start", end_date AS "end", status FROM rm_deployments
                WHERE person = \(id) ORDER BY start_date, id
                """)
            return try render(p, [("deployments", deployments.jsonArray)])
        case "warehouse": return try render(try await load(Streams.warehouse(id), WarehouseState.self))
        case "item": return try render(try await load(Streams.item(id), ItemState.self))
        default: return nil
        }
    }

    /// A JSON object with `extra` members (already JSON) added at its end.
    static func merge(_ object: String, _ extra: [(String, String)]) -> String {
        guard !extra.isEmpty, object.hasSuffix("}") else { return object }
        let members = extra.map { JSONWriter.quote($0.0) + ":" + $0.1 }.joined(separator: ",")
        return String(object.dropLast()) + (object.count > 2 ? "," : "") + members + "}"
    }

    // MARK: Helpers for handlers

    /// Reference data (warehouses, items, people, responses) is never deleted: once seen to exist, a stream is
    /// remembered, and later checks cost no query.
    func requireExists(_ kind: String, _ id: String, stream: String) async throws {
        if knownStreams.withLock({ $0.contains(stream) }) { return }
        // While staging, the cache holds every stream the import created or read.
        var version = runner.staging == nil ? 0 : runner.cache.version(of: stream) ?? 0
        if version == 0 { version = try await store.version(of: stream) }
        if version == 0 { throw DomainError.notFound(kind: kind, id: id) }
        knownStreams.withLock { known in
            if known.count > 100_000 { known.removeAll() }
            known.insert(stream)
        }
    }

    /// The event with `id`: stored, or staged by the bulk import this service decides for.
    func event(id: UUID) async throws -> RecordedEvent? {
        if let (stream, e) = runner.staging?.staged(id) {
            return RecordedEvent(position: 0, stream: stream, version: 0, id: e.id, type: e.type, data: e.data, metadata: JSONText(e.metadataJSON),
                                 occurredAt: e.occurredAt, recordedAt: e.occurredAt, hash: "")
        }
        return try await store.event(id: id)
    }

    /// The canonical body of a command, for idempotency digests.
    static func canonical(_ command: some DomainCommand) -> String {
        (try? EventCodec.canonicalJSON(command)) ?? ""
    }

    /// Checks `If-Match` against the resource's version.
    static func checkIfMatch(_ ctx: CommandContext, kind: String, id: String, version: Int64) throws {
        if let expected = ctx.expectedVersion, expected != version {
            throw DomainError.stale(kind: kind, id: id, expected: expected, actual: version)
        }
    }

    /// Runs a one-stream step: load, refuse an unknown resource, check If-Match, decide (with the business
    /// time the step happened at), append.
    func step<C: DomainCommand, S: AggregateState>(
        _ command: C, _ ctx: CommandContext, kind: String, id: String, stream: String, state: S.Type,
        occurredAt: Date?, extraLocks: [String] = [],
        _ decide: @escaping @Sendable (_ state: S, _ version: Int64, _ at: Date) throws -> [DomainEvent]
    ) async throws -> CommandResult {
        let runner = self.runner
        let at = occurredAt ?? ctx.receivedAt
        return try await runner.run(command, ctx: ctx, occurredAt: occurredAt, locks: [stream] + extraLocks, state: S.self) {
            let (current, version) = try await runner.load(stream, as: S.self)
            guard version > 0 else { throw DomainError.notFound(kind: kind, id: id) }
            try Self.checkIfMatch(ctx, kind: kind, id: id, version: version)
            let events = try decide(current, version, at)
            return .init(appends: [(stream, .exact(version), events)], primary: stream, kind: kind, id: id, created: false)
        }
    }

    /// Runs a step on a resource and a partner stream its state names (a deployment and its person's bookings, a
    /// transfer and a stock card): both locked, both loaded fresh under the locks, both at expected versions.
    /// `decide` gets both states with their versions and the step's business time, and returns what to append
    /// (the partner's events may be empty).
    func pairedStep<C: DomainCommand, S: AggregateState, P: AggregateState>(
        _ command: C, _ ctx: CommandContext, kind: String, id: String, stream: String, state: S.Type,
        partner: @escaping @Sendable (S) -> String, partnerState: P.Type, occurredAt: Date?,
        _ decide: @escaping @Sendable (_ state: S, _ version: Int64, _ partner: P, _ at: Date) throws -> (own: [DomainEvent], partner: [DomainEvent])
    ) async throws -> CommandResult {
        let runner = self.runner
        let (initial, iv) = try await runner.load(stream, as: S.self)
        guard iv > 0 else { throw DomainError.notFound(kind: kind, id: id) }
        // The partner is named by the state, which its own stream's later events never change (a deployment's
        // person, a transfer's warehouses and item): read once before the locks.
        let other = partner(initial)
        let at = occurredAt ?? ctx.receivedAt
        return try await runner.run(command, ctx: ctx, occurredAt: occurredAt, locks: [stream, other], state: S.self) {
            let (current, version) = try await runner.load(stream, as: S.self)
            try Self.checkIfMatch(ctx, kind: kind, id: id, version: version)
            let (p, pv) = try await runner.load(other, as: P.self)
            let (own, theirs) = try decide(current, version, p, at)
            var appends: [CommandRunner.StreamEvents] = []
            // The partner's events come first when there are any: a stock card's goods row before the receipt
            // that closes its transfer.
            if !theirs.isEmpty { appends.append((other, .exact(pv), theirs)) }
            appends.append((stream, .exact(version), own))
            return .init(appends: appends, primary: stream, kind: kind, id: id, created: false)
        }
    }

    /// Runs a creation: the stream must not exist yet.
    func create<C: DomainCommand, S: AggregateState>(
        _ command: C, _ ctx: CommandContext, kind: String, id: String, stream: String, state: S.Type,
        occurredAt: Date?, check: @escaping @Sendable () async throws -> Void = {}, event: @escaping @Sendable () -> DomainEvent
    ) async throws -> CommandResult {
        let runner = self.runner
        return try await runner.run(command, ctx: ctx, occurredAt: occurredAt, locks: [stream], state: S.self) {
            let (_, version) = try await runner.load(stream, as: S.self)
            if version > 0 { throw DomainError.alreadyExists(kind: kind, id: id) }
            try await check()
            return .init(appends: [(stream, .noStream, [event()])], primary: stream, kind: kind, id: id, created: true)
        }
    }
}

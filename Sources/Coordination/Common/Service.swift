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

/// A command users issue: decoded strictly from JSON (unknown fields refused), validated, then run.
public protocol DomainCommand: Codable, Sendable {
    /// The NDJSON/event-log name, e.g. `stock.dispatch`.
    static var name: String { get }
    /// Every JSON field the command accepts.
    static var fields: [String] { get }
    /// Adds every field problem to `v`.
    func validate(_ v: inout Validator)
    func run(_ service: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult
    /// The stream this command creates, when its fields name it: a bulk import checks the streams of many
    /// commands for existence in one query instead of one read each.
    var createdStream: String? { get }
}

extension DomainCommand {
    public var createdStream: String? { nil }
}

/// A lifecycle step that names its resource and may say when it happened: `{"id", "occurred_at"}`.
public protocol StepCommand: DomainCommand {
    var id: String { get }
    var occurredAt: Date? { get }
}

extension StepCommand {
    public static var fields: [String] { ["id", "occurred_at"] }
    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.time(occurredAt, "occurred_at")
    }
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
        return try await command.run(self, ctx)
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

    /// The current state of one resource as JSON, with its stream version (for `GET` and `ETag`), or nil.
    public func state(kind: String, id: String) async throws -> (state: JSONText, version: Int64)? {
        func load<S: AggregateState>(_ stream: String, _ type: S.Type) async throws -> (JSONText, Int64)? {
            let (state, version) = try await runner.load(stream, as: S.self, fresh: true)
            return version == 0 ? nil : (try CommandRunner.render(state), version)
        }
        guard Validator.isID(id) else { return nil }
        switch kind {
        case "response": return try await load(Streams.response(id), ResponseState.self)
        case "deployment": return try await load(Streams.deployment(id), DeploymentState.self)
        case "task": return try await load(Streams.task(id), TaskState.self)
        case "transfer": return try await load(Streams.transfer(id), TransferState.self)
        case "person": return try await load(Streams.person(id), PersonState.self)
        case "warehouse": return try await load(Streams.warehouse(id), WarehouseState.self)
        case "item": return try await load(Streams.item(id), ItemState.self)
        default: return nil
        }
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

    /// The canonical body of a command, for idempotency digests.
    static func canonical(_ command: some DomainCommand) -> String {
        (try? JSONWriter.encode(command)) ?? ""
    }

    /// Checks `If-Match` against the resource's version.
    static func checkIfMatch(_ ctx: CommandContext, kind: String, id: String, version: Int64) throws {
        if let expected = ctx.expectedVersion, expected != version {
            throw DomainError.stale(kind: kind, id: id, expected: expected, actual: version)
        }
    }

    /// Runs a one-stream lifecycle step: load, check the transition (and If-Match), append one event.
    func step<S: AggregateState>(
        _ command: some DomainCommand, _ ctx: CommandContext, kind: String, id: String, stream: String, state: S.Type,
        occurredAt: Date?, extraLocks: [String] = [],
        _ decide: @escaping @Sendable (S, Int64) throws -> [any EventPayload]
    ) async throws -> CommandResult {
        let runner = self.runner
        return try await runner.run(command: type(of: command).name, body: Self.canonical(command), ctx: ctx, occurredAt: occurredAt,
                                    locks: [stream] + extraLocks, state: S.self) {
            let (current, version) = try await runner.load(stream, as: S.self)
            guard version > 0 else { throw DomainError.notFound(kind: kind, id: id) }
            try Self.checkIfMatch(ctx, kind: kind, id: id, version: version)
            let payloads = try decide(current, version)
            return .init(appends: [(stream, .exact(version), payloads)], primary: stream, kind: kind, id: id, created: false)
        }
    }

    /// Runs a creation: the stream must not exist yet.
    func create<S: AggregateState>(
        _ command: some DomainCommand, _ ctx: CommandContext, kind: String, id: String, stream: String, state: S.Type,
        occurredAt: Date?, check: @escaping @Sendable () async throws -> Void = {}, payload: @escaping @Sendable () -> any EventPayload
    ) async throws -> CommandResult {
        let runner = self.runner
        return try await runner.run(command: type(of: command).name, body: Self.canonical(command), ctx: ctx, occurredAt: occurredAt,
                                    locks: [stream], state: S.self) {
            let (_, version) = try await runner.load(stream, as: S.self)
            if version > 0 { throw DomainError.alreadyExists(kind: kind, id: id) }
            try await check()
            return .init(appends: [(stream, .noStream, [payload()])], primary: stream, kind: kind, id: id, created: true)
        }
    }
}

/// Decodes commands by name, refusing unknown fields and naming the field of every type error.
public enum CommandCatalog {
    static let commands: [any DomainCommand.Type] = [
        RegisterWarehouse.self, RegisterItem.self, SetLevels.self,
        DeclareResponse.self, ChangeSeverity.self, CloseResponse.self, AddAreas.self, ChangePhase.self,
        ReceiveStock.self, DispatchStock.self, AdjustStock.self, CountStock.self,
        TransferStock.self, ReceiveTransfer.self, CancelTransfer.self,
        RegisterPerson.self, AddUnavailability.self,
        RequestDeployment.self, ConfirmDeployment.self, ArriveDeployment.self, ExtendDeployment.self,
        CompleteDeployment.self, CancelDeployment.self,
        CreateTask.self, AssignTask.self, StartTask.self, BlockTask.self, CompleteTask.self, VerifyTask.self,
        CancelTask.self, ReopenTask.self, CommentTask.self,
    ]

    static let byName: [String: any DomainCommand.Type] = Dictionary(uniqueKeysWithValues: commands.map { ($0.name, $0) })

    public static var names: [String] { commands.map { $0.name } }

    /// The accepted JSON fields of a command, for documentation and the OpenAPI document.
    public static func fields(of name: String) -> [String]? { byName[name]?.fields }

    public static func decode(name: String, json: Data) throws -> any DomainCommand {
        guard let type = byName[name] else { throw DomainError.invalid("command", "unknown command \(name)") }
        return try decode(type, json: json)
    }

    public static func decode<C: DomainCommand>(_ type: C.Type, json: Data) throws -> C {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw DomainError.invalid("body", "is not valid JSON")
        }
        return try decode(type, value: value, ignoring: [])
    }

    /// Decodes a parsed body as the command `name`; the `ignoring` fields belong to the envelope (an import
    /// line's `command` and `idempotency_key`).
    public static func decode(name: String, value: JSONValue, ignoring: Set<String>) throws -> any DomainCommand {
        guard let type = byName[name] else { throw DomainError.invalid("command", "unknown command \(name)") }
        return try decode(type, value: value, ignoring: ignoring)
    }

    static func decode<C: DomainCommand>(_ type: C.Type, value: JSONValue, ignoring: Set<String>) throws -> C {
        guard let keys = value.keys else { throw DomainError.invalid("body", "must be a JSON object") }
        let unknown = keys.filter { !C.fields.contains($0) && !ignoring.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw DomainError.validation(unknown.map { FieldError($0, "unknown field") })
        }
        // The fast decoder answers the common case; whenever it is unsure, Foundation's decides (and words the error).
        if let command = try? FastJSONDecoder.decode(C.self, from: value) { return command }
        let json = Data(value.json.utf8)
        do {
            return try JSONWriter.makeDecoder().decode(C.self, from: json)
        } catch let error as DecodingError {
            throw DomainError.validation([Self.fieldError(error)])
        }
    }

    static func fieldError(_ error: DecodingError) -> FieldError {
        func path(_ codingPath: [CodingKey]) -> String {
            let parts = codingPath.map { key -> String in
                if let i = key.intValue { return "[\(i)]" }
                return snake(key.stringValue)
            }
            return parts.enumerated().map { i, p in i == 0 || p.hasPrefix("[") ? p : "." + p }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context):
            return FieldError(path(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return FieldError(path(context.codingPath), "must be \(describe(type))")
        case .valueNotFound(let type, let context):
            return FieldError(path(context.codingPath), "must be \(describe(type)), not null")
        case .dataCorrupted(let context):
            return FieldError(path(context.codingPath).isEmpty ? "body" : path(context.codingPath), context.debugDescription)
        @unknown default:
            return FieldError("body", "is malformed")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Day.Type, is Date.Type: return "a string"
        case is Int64.Type, is Int.Type: return "a whole number"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return String(describing: type).contains("Array") ? "an array" : "an object"
        }
    }

    static func snake(_ s: String) -> String {
        var out = ""
        for ch in s {
            if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }
}

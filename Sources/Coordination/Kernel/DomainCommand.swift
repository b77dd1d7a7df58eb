import Events
import Foundation

/// A command users issue: decoded strictly from JSON (unknown fields refused), validated, then run.
public protocol DomainCommand: Codable, Sendable {
    /// The NDJSON/event-log name, e.g. `stock.dispatch`.
    static var name: String { get }
    /// Adds every field problem to `v`.
    func validate(_ v: inout Validator)
    func run(_ service: CoordinationService, _ ctx: CommandContext) async throws -> CommandResult
    /// The stream this command creates, when its fields name it: a bulk import checks the streams of many
    /// commands for existence in one query instead of one read each.
    var createdStream: String? { get }
    /// True for commands that create their resource (an API answer 201 with a Location).
    static var creates: Bool { get }
}

extension DomainCommand {
    /// The body's fields, derived from the command's own decoding and validation.
    public static var schema: [FieldSchema] { CommandSchema.fields(of: Self.self) }
    /// Every JSON field the command accepts.
    public static var fields: [String] { schema.map(\.name) }
    public var createdStream: String? { nil }
    public static var creates: Bool { false }
}

/// A lifecycle step that names its resource and may say when it happened: `{"id", "occurred_at"}`.
public protocol StepCommand: DomainCommand {
    var id: String { get }
    var occurredAt: Date? { get }
}

extension StepCommand {
    public func validate(_ v: inout Validator) {
        v.id(id, "id")
        v.time(occurredAt, "occurred_at")
    }
}

/// Decodes commands by name, refusing unknown fields and naming the field of every type error.
public enum CommandCatalog {
    static let commands: [any DomainCommand.Type] = [
        RegisterWarehouse.self, AmendWarehouse.self, RegisterItem.self, AmendItem.self, SetLevels.self,
        DeclareResponse.self, AmendResponse.self, ChangeSeverity.self, CloseResponse.self, AddAreas.self, ChangePhase.self,
        ReceiveStock.self, DispatchStock.self, AdjustStock.self, CountStock.self, ReverseMovement.self,
        TransferStock.self, ReceiveTransfer.self, CancelTransfer.self,
        RegisterPerson.self, AmendPerson.self, AddUnavailability.self,
        RequestDeployment.self, AmendDeployment.self, ConfirmDeployment.self, ArriveDeployment.self, ExtendDeployment.self,
        CompleteDeployment.self, CancelDeployment.self,
        CreateTask.self, AmendTask.self, AssignTask.self, StartTask.self, BlockTask.self, CompleteTask.self, VerifyTask.self,
        CancelTask.self, ReopenTask.self, CommentTask.self,
    ]

    static let byName: [String: any DomainCommand.Type] = Dictionary(uniqueKeysWithValues: commands.map { ($0.name, $0) })

    public static var names: [String] { commands.map { $0.name } }

    /// The accepted JSON fields of a command, for documentation and the OpenAPI document.
    public static func fields(of name: String) -> [String]? { byName[name]?.fields }

    /// The body schema of a command, for the OpenAPI document.
    public static func schema(of name: String) -> [FieldSchema]? { byName[name]?.schema }

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

    static let namedUnknownFields = 20

    static func decode<C: DomainCommand>(_ type: C.Type, value: JSONValue, ignoring: Set<String>) throws -> C {
        guard let keys = value.keys else { throw DomainError.invalid("body", "must be a JSON object") }
        let schema = C.schema
        let known = Set(schema.map(\.name))
        let unknown = keys.filter { !known.contains($0) && !ignoring.contains($0) }.sorted()
        if !unknown.isEmpty {
            // Named up to a point: a body of 95,000 made-up keys gets a short answer, not a 3 MB one.
            var errors = unknown.prefix(Self.namedUnknownFields).map {
                $0.isEmpty ? FieldError("body", "has a field with an empty name") : FieldError(String($0.prefix(64)), "unknown field")
            }
            if unknown.count > Self.namedUnknownFields {
                errors.append(FieldError("body", "has \(unknown.count - Self.namedUnknownFields) more unknown fields"))
            }
            throw DomainError.validation(errors)
        }
        // Types first, against the schema: a whole number written `1e1` or `10.0` is refused here, where
        // Foundation's decoder would take it.
        let problems = CommandSchema.problems(value, schema)
        if !problems.isEmpty { throw DomainError.validation(problems) }
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
